package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Query parameters. Every parameter a route reads goes through queryParam
// (or queryInt and queryOptionalInt, which read through it): a parameter
// given more than once is refused with 400 naming it, whatever its values.
// url.Values.Get answers the first of them, so that ?after=5&after=9 was
// read as 5 and the 9 dropped in silence, and a request meant which value
// as the server chose. Integers are read in one spelling only (decimal
// digits without a sign or a leading zero): "01" and "+1" are refused
// rather than read as 1, so that a request is spelled one way.

// queryParam returns the value of the query parameter name, "" when it is
// absent, and refuses it given more than once, or a query that does not
// parse.
func queryParam(r *http.Request, name string) (string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", malformedQuery(r.URL.RawQuery)
	}
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", givenMoreThanOnce(name, len(vs))
}

// givenMoreThanOnce refuses a parameter (or header) given n times, n > 1.
func givenMoreThanOnce(name string, n int) *Problem {
	times := "twice"
	if n > 2 {
		times = strconv.Itoa(n) + " times"
	}
	return badRequest(name, name+": given "+times+": give it once")
}

// queryInt reads a required integer query parameter, min or more, given
// once and spelled canonically. A proof is evidence a witness or an
// auditor keeps and compares: "01", "+1" or a parameter given twice would
// make two requests for one proof, or leave which value was meant to the
// server's choice.
func queryInt(r *http.Request, name string, min int64) (int64, error) {
	s, err := queryParam(r, name)
	if err != nil {
		return 0, err
	}
	return canonicalInt(name, s, min)
}

// queryOptionalInt is queryInt for a parameter that may be left out, or
// given empty: then it is absent.
func queryOptionalInt(r *http.Request, name string, min, absent int64) (n int64, given bool, err error) {
	s, err := queryParam(r, name)
	if err != nil || s == "" {
		return absent, false, err
	}
	n, err = canonicalInt(name, s, min)
	return n, err == nil, err
}

// canonicalInt parses s, the value of name, as an integer, min or more, in
// decimal digits without a sign or a leading zero.
func canonicalInt(name, s string, min int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || strconv.FormatInt(n, 10) != s {
		return 0, badRequest(name, name+": must be an integer, "+strconv.FormatInt(min, 10)+" or more, in decimal digits without a sign or a leading zero")
	}
	return n, nil
}

// queryFlag reads a parameter that is set with 1 or true, and absent
// (or empty) otherwise: any other value is refused, not read as set.
func queryFlag(r *http.Request, name string) (bool, error) {
	s, err := queryParam(r, name)
	switch {
	case err != nil:
		return false, err
	case s == "":
		return false, nil
	case s == "1" || s == "true":
		return true, nil
	}
	return false, badRequest(name, name+": must be 1 or true")
}

// malformedQuery refuses a query that does not parse, naming the first
// parameter that does not: url.Values drops such a pair in silence, so
// that ?after=5;after=9 (a ';' is no separator) or ?from=%zz was read as
// if the parameter were absent: a stream from the first event, an export
// from the first record.
func malformedQuery(raw string) *Problem {
	for pair := range strings.SplitSeq(raw, "&") {
		if _, err := url.ParseQuery(pair); err == nil {
			continue
		}
		name, _, _ := strings.Cut(pair, "=")
		name, _, _ = strings.Cut(name, ";")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		// A name to show as it is: short, printable, nothing to escape.
		if name == "" || len(name) > 100 || strconv.Quote(name) != `"`+name+`"` {
			name = "query"
		}
		if len(pair) > 100 {
			pair = pair[:100] + "..."
		}
		return badRequest(name, name+": "+strconv.Quote(pair)+" does not parse: separate parameters with & (not ;) and escape % as %25")
	}
	return badRequest("query", "the query does not parse")
}
