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
func Parse(field, s string) (time.Time, error) { return parse(field, s) }

// ParseBytes is Parse of a time held in bytes (a JSON decoder's token),
// without copying them into a string: a position batch reads one time per
// report.
func ParseBytes(field string, b []byte) (time.Time, error) { return parse(field, b) }

func parse[T string | []byte](field string, s T) (time.Time, error) {
	f, why := fieldsOf(s)
	if why != "" {
		return time.Time{}, fielderr.Errorf(field, "%.64q is not an RFC 3339 time %s: %s", string(s), Format, why)
	}
	// The form is right; the day must be one of its month (not February
	// 30th), which time.Date would carry into the next.
	if f.day > daysIn(f.year, f.month) {
		return time.Time{}, fielderr.Errorf(field, "%.64q is not an RFC 3339 time: no such date", string(s))
	}
	t := time.Date(f.year, time.Month(f.month), f.day, f.hour, f.minute, f.second, f.nanos, time.UTC).
		Add(-time.Duration(f.offsetS) * time.Second)
	if err := Check(field, t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// daysIn is the number of days of month (1 to 12) of year, in the
// proleptic Gregorian calendar.
func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// timeFields are the fields of a time of the profile, each in its range
// but the day, which may exceed its month's.
type timeFields struct {
	year, month, day, hour, minute, second, nanos int
	offsetS                                       int // east of UTC
}

// dateTimeFields are the fields before the fraction, in their order.
var dateTimeFields = [...]struct {
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
}

// fieldsOf reads the fields of s, or says what in s breaks the profile.
func fieldsOf[T string | []byte](s T) (f timeFields, why string) {
	const stem = len("2006-01-02T15:04:05")
	digits := func(i, n int) (int, bool) {
		if i+n > len(s) {
			return 0, false
		}
		v := 0
		for j := i; j < i+n; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	// Field by field from the left, each with the separator after it, so
	// that the first thing wrong is the one named.
	var vals [len(dateTimeFields)]int
	for i, fd := range &dateTimeFields {
		v, ok := digits(fd.at, fd.n)
		switch {
		case !ok:
			return f, fmt.Sprintf("the %s must be %d digits", fd.name, fd.n)
		case fd.name == "second" && v == 60:
			return f, "leap seconds (second 60) are not accepted: the service counts Unix time"
		case v > fd.max || (v == 0 && (fd.name == "month" || fd.name == "day")):
			return f, fmt.Sprintf("%s %d out of range", fd.name, v)
		case fd.sep != 0 && (fd.at+fd.n >= len(s) || s[fd.at+fd.n] != fd.sep):
			return f, "expected " + fd.sepWhat
		}
		vals[i] = v
	}
	f.year, f.month, f.day, f.hour, f.minute, f.second = vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]
	rest := s[stem:]
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		switch {
		case n == 1:
			return f, "a fraction of a second needs 1 to 9 digits after the '.'"
		case n-1 > 9:
			return f, "a fraction of a second has at most 9 digits (nanoseconds)"
		}
		for i := 1; i < 10; i++ {
			f.nanos *= 10
			if i < n {
				f.nanos += int(rest[i] - '0')
			}
		}
		rest = rest[n:]
	}
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
		return f, ""
	case len(rest) == 0:
		return f, "the offset is missing (Z or ±hh:mm)"
	case rest[0] == ',':
		return f, "the fraction of a second follows a '.', not a ','"
	case len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':':
		return f, "the offset must be Z or ±hh:mm"
	}
	h, okH := digits(len(s)-5, 2)
	m, okM := digits(len(s)-2, 2)
	if !okH || !okM || h > 23 || m > 59 {
		return f, "the offset must be from -23:59 to +23:59"
	}
	f.offsetS = (h*60 + m) * 60
	if rest[0] == '-' {
		f.offsetS = -f.offsetS
	}
	return f, ""
}
