package wiretime

import (
	"errors"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
)

// profile is the package's accepted form (Format), written once more as
// a regular expression: RFC 3339's date-time with every field of its
// digits, upper-case T and Z, a fraction of 1 to 9 digits after a '.',
// and an offset of two-digit hour and minute.
var profile = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|([+-])([0-9]{2}):([0-9]{2}))$`)

// FuzzParse: a time is accepted exactly when it is of the profile, a real
// date and time of day (no hour 24, no leap second, an offset within
// ±23:59) within [Min, Max), and reads as the instant its fields say (in
// UTC), which written back with nanoseconds reads the same; anything else
// (what Go's time.Parse reads too: a one-digit hour, a comma, an offset
// of +24:00, a tenth digit of fraction) is refused naming the field.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"2026-11-24T08:00:00Z", "2026-11-24T08:00:00.123456789+14:00", "1970-01-01T00:00:00Z",
		"2199-12-31T23:59:59.999999999Z", "2200-01-01T00:00:00Z", "1969-12-31T23:59:59-00:00",
		"2026-11-24T08:00:00,5Z", "2026-11-24t08:00:00z", "2026-11-24T24:00:00Z", "2026-02-30T00:00:00Z",
		"2026-11-24T08:00:60Z", "2026-11-24T08:00:00+24:00", "2026-11-24T08:00:00-00:99", "2026-11-24T08:00:00.1234567891Z",
		"2026-11-24 08:00:00Z", "+2026-11-24T08:00:00Z", "yesterday", "",
		"2026-11-24T8:00:00Z", "2016-12-31T23:59:60Z", "2026-11-24T08:00:00+23:59", "2026-11-24T08:00:00.Z",
		"2026-11-24T08:00:00+0100", "10000-01-01T00:00:00Z", "-001-01-01T00:00:00Z", "2026-11-24T08:00:00Z\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse("since", s)
		// The bytes read the same as the string.
		if gotB, errB := ParseBytes("since", []byte(s)); (err == nil) != (errB == nil) || err == nil && !gotB.Equal(got) ||
			err != nil && err.Error() != errB.Error() {
			t.Fatalf("%q: Parse %v (%v), ParseBytes %v (%v)", s, got, err, gotB, errB)
		}
		// What the profile accepts, Go's RFC 3339 parser reads as the
		// same instant (it reads more besides).
		if err == nil {
			if std, serr := time.Parse(time.RFC3339Nano, s); serr != nil || !std.Equal(got) {
				t.Fatalf("%q reads as %v, time.Parse as %v (%v)", s, got, std, serr)
			}
		}
		want, ok := instant(s)
		inSpan := ok && !want.Before(Min) && want.Before(Max)
		if err != nil {
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field != "since" {
				t.Fatalf("%q: refusal %v does not name the field", s, err)
			}
			if inSpan {
				t.Fatalf("%q is of the profile and within the span, refused: %v", s, err)
			}
			return
		}
		if want, ok := instant(s); !ok || !got.Equal(want) {
			t.Fatalf("%q reads as %v, its fields say %v (%v)", s, got, want, ok)
		}
		if got.Location() != time.UTC || got.Before(Min) || !got.Before(Max) {
			t.Fatalf("%q reads as %v", s, got)
		}
		back, err := Parse("since", got.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(got) {
			t.Fatalf("%q reads as %v, which reads back as %v (%v)", s, got, back, err)
		}
	})
}

// instant is the time s denotes, field by field; false when s is not of
// the profile or its fields are no date and time of day.
func instant(s string) (time.Time, bool) {
	m := profile.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	y, mo, d, h, mi, sec := n(1), n(2), n(3), n(4), n(5), n(6)
	frac := (m[7] + "000000000")[:9]
	ns, _ := strconv.Atoi(frac)
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
	if t.Year() != y || int(t.Month()) != mo || t.Day() != d || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	if m[8] != "Z" {
		if n(10) > 23 || n(11) > 59 {
			return time.Time{}, false
		}
		off := time.Duration(n(10))*time.Hour + time.Duration(n(11))*time.Minute
		if m[9] == "-" {
			off = -off
		}
		t = t.Add(-off)
	}
	return t, true
}
