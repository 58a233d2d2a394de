// Package wiretime owns the span of times the service accepts from outside
// (bodies, query parameters, feeds): RFC 3339 times from Min to Max. Every
// time inside that span fits the service's time arithmetic (Unix
// nanoseconds in an int64 run from 1677 to 2262), so a time of year 9999
// or 1600 is refused at the edge, naming its field, instead of wrapping
// around deeper down.
package wiretime

import (
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
)

// Min and Max bound the times accepted: [Min, Max).
var (
	Min = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	Max = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Check refuses a time outside [Min, Max), naming field.
func Check(field string, t time.Time) error {
	if t.Before(Min) || !t.Before(Max) {
		return fielderr.Errorf(field, "%s is outside the times accepted (%d to %d)",
			t.UTC().Format(time.RFC3339), Min.Year(), Max.Year()-1)
	}
	return nil
}

// Parse reads an RFC 3339 time inside [Min, Max), in UTC, naming field
// when it refuses it.
func Parse(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fielderr.Errorf(field, "not an RFC 3339 time: %q", s)
	}
	if err := Check(field, t); err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
