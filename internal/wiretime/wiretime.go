// Package wiretime owns the times the service accepts from outside
// (bodies, query parameters, feeds): RFC 3339 times in one strict profile,
// from Min to Max. Every time inside that span fits the service's time
// arithmetic (Unix nanoseconds in an int64 run from 1677 to 2262), so a
// time of year 9999 or 1600 is refused at the edge, naming its field,
// instead of wrapping around deeper down.
//
// The profile (Format) is RFC 3339's date-time (section 5.6) as most
// writers produce it:
//
//	YYYY-MM-DDThh:mm:ss[.f]Z   or   YYYY-MM-DDThh:mm:ss[.f]±hh:mm
//
// with every field of exactly its digits, an upper-case T and Z, a
// fraction of 1 to 9 digits after a full stop, an hour from 00 to 23, a
// minute and a second from 00 to 59 and an offset from -23:59 to +23:59.
// Go's time.Parse (and encoding/json, which reads time.Time with it)
// accepts more, each read as some instant: a one-digit hour, a comma
// before the fraction, an offset of "+24:00", digits beyond the
// nanosecond (dropped). A time in a safety record must mean the instant
// its writer meant, so each of these is refused naming what is wrong.
// Refused too: the lower-case t and z that RFC 3339 allows (no writer
// the service knows sends them), and the leap second 23:59:60 (the
// service counts Unix time, which has no such second: Go refuses it too).
package wiretime

import (
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
)

// Min and Max bound the times accepted: [Min, Max).
var (
	Min = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	Max = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Format describes the accepted form, for error messages and documents.
const Format = "YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)"

// Check refuses a time outside [Min, Max), naming field.
func Check(field string, t time.Time) error {
	if t.Before(Min) || !t.Before(Max) {
		return fielderr.Errorf(field, "%s is outside the times accepted (%d to %d)",
			t.UTC().Format(time.RFC3339), Min.Year(), Max.Year()-1)
	}
	return nil
}

// Parse reads a time of the profile (Format) inside [Min, Max), in UTC,
// naming field when it refuses it.
func Parse(field, s string) (time.Time, error) {
	if why := checkForm(s); why != "" {
		return time.Time{}, fielderr.Errorf(field, "%.64q is not an RFC 3339 time %s: %s", s, Format, why)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// The form is right, the date is not (February 30th).
		return time.Time{}, fielderr.Errorf(field, "%.64q is not an RFC 3339 time: no such date", s)
	}
	if err := Check(field, t); err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// checkForm says what in s breaks the profile, or "" when nothing does
// (the day of the month is left to time.Parse, which knows the calendar).
func checkForm(s string) string {
	const stem = len("2006-01-02T15:04:05")
	digits := func(i, n int) (int, bool) {
		if i+n > len(s) {
			return 0, false
		}
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	// Field by field from the left, each with the separator after it, so
	// that the first thing wrong is the one named.
	for _, f := range []struct {
		at, n, max int
		name       string
		sep        byte
		sepWhat    string
	}{
		{0, 4, 9999, "year", '-', "a '-' after the year"},
		{5, 2, 12, "month", '-', "a '-' after the month"},
		{8, 2, 31, "day", 'T', "an upper-case 'T' between date and time"},
		{11, 2, 23, "hour", ':', "a ':' after the hour"},
		{14, 2, 59, "minute", ':', "a ':' after the minute"},
		{17, 2, 59, "second", 0, ""},
	} {
		v, ok := digits(f.at, f.n)
		switch {
		case !ok:
			return fmt.Sprintf("the %s must be %d digits", f.name, f.n)
		case f.name == "second" && v == 60:
			return "leap seconds (second 60) are not accepted: the service counts Unix time"
		case v > f.max || (v == 0 && (f.name == "month" || f.name == "day")):
			return fmt.Sprintf("%s %d out of range", f.name, v)
		case f.sep != 0 && (f.at+f.n >= len(s) || s[f.at+f.n] != f.sep):
			return "expected " + f.sepWhat
		}
	}
	rest := s[stem:]
	if rest != "" && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		switch {
		case n == 1:
			return "a fraction of a second needs 1 to 9 digits after the '.'"
		case n-1 > 9:
			return "a fraction of a second has at most 9 digits (nanoseconds)"
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
		return ""
	case rest == "":
		return "the offset is missing (Z or ±hh:mm)"
	case rest[0] == ',':
		return "the fraction of a second follows a '.', not a ','"
	case len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':':
		return "the offset must be Z or ±hh:mm"
	}
	h, okH := digits(len(s)-5, 2)
	m, okM := digits(len(s)-2, 2)
	if !okH || !okM || h > 23 || m > 59 {
		return "the offset must be from -23:59 to +23:59"
	}
	return ""
}
