package wiretime

import (
	"errors"
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
