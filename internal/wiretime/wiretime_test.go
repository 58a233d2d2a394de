package wiretime

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
)

func TestParseBounds(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"2026-11-24T08:00:00Z", true},
		{"1970-01-01T00:00:00Z", true},
		{"2199-12-31T23:59:59.999999999Z", true},
		{"2200-01-01T00:00:00Z", false},
		{"9999-12-31T23:59:59Z", false},
		{"1600-01-01T00:00:00Z", false},
		{"1969-12-31T23:59:59Z", false},
		{"2026-11-24T08:00:00+14:00", true},
		{"yesterday", false},
	} {
		got, err := Parse("since", c.in)
		if c.ok != (err == nil) {
			t.Errorf("%s: err %v", c.in, err)
			continue
		}
		if err != nil {
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field != "since" {
				t.Errorf("%s: refusal %v does not name the field", c.in, err)
			}
			continue
		}
		if got.Location() != time.UTC || got.UnixNano()/1e9 != got.Unix() {
			t.Errorf("%s: %v", c.in, got)
		}
	}
}

// TestParseProfile: what Go's time.Parse reads as some instant but RFC
// 3339 (or the profile) does not write is refused, naming the field and
// what is wrong; RFC 3339 times of the profile are read.
func TestParseProfile(t *testing.T) {
	for _, c := range []struct{ in, why string }{
		{"2026-11-24T8:00:00Z", "hour must be 2 digits"},
		{"2026-11-24T08:00:00,5Z", "'.', not a ','"},
		{"2026-11-24T08:00:00+24:00", "offset must be from"},
		{"2026-11-24T08:00:00.1234567891Z", "at most 9 digits"},
		{"2016-12-31T23:59:60Z", "leap seconds"},
		{"2026-11-24T24:00:00Z", "hour 24 out of range"},
		{"2026-11-24t08:00:00z", "upper-case 'T'"},
		{"2026-02-30T00:00:00Z", "no such date"},
		{"2026-11-24T08:00:00", "offset is missing"},
		{"2026-11-24T08:00:00+01", "offset must be Z or ±hh:mm"},
		{"-001-01-01T00:00:00Z", "year must be 4 digits"},
		{"10000-01-01T00:00:00Z", "'-' after the year"},
		{"9999-12-31T23:59:59Z", "outside the times accepted"},
	} {
		_, err := Parse("time", c.in)
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != "time" || !strings.Contains(fe.Msg, c.why) {
			t.Errorf("%s: %v, want a refusal of time saying %q", c.in, err, c.why)
		}
	}
	for in, want := range map[string]time.Time{
		"2026-11-24T08:00:00Z":                time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC),
		"2026-11-24T08:00:00.5+01:30":         time.Date(2026, 11, 24, 6, 30, 0, 5e8, time.UTC),
		"2026-11-24T08:00:00.123456789-23:59": time.Date(2026, 11, 25, 7, 59, 0, 123456789, time.UTC),
		"1970-01-01T00:00:00-00:00":           time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := Parse("time", in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
}

// BenchmarkParse reads one report's time as the position decoders do
// (ParseBytes), next to Parse of a string and to Go's time.Parse (the
// baseline: the looser parser the profile replaced).
func BenchmarkParse(b *testing.B) {
	const s = "2026-12-07T05:04:03.123456789+01:00"
	raw := []byte(s)
	b.Run("ParseBytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseBytes("time", raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse("time", s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-time.Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
