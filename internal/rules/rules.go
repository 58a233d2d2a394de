// Package rules owns the agreed rules between the parties: separation
// minima, time buffer and lookahead, alert levels, acknowledgment deadlines
// and the limits on declarations. The rules are data: versioned, visible to
// every party, and changed only as a whole new version.
package rules

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
)

// Level is one alert level: a conflict whose loss of separation starts within
// MaxTimeToLoSS seconds is at least at this level.
type Level struct {
	Name          string  `json:"name"`
	MaxTimeToLoSS float64 `json:"max_time_to_los_s"`
}

// Rules is one version of the agreed rules. Lengths are meters, times
// seconds; the defaults are the aviation figures (5 NM, 1000 ft) converted.
type Rules struct {
	Version int64 `json:"version"`

	HorizontalSepM float64 `json:"horizontal_sep_m"`
	VerticalSepM   float64 `json:"vertical_sep_m"`
	// TimeBufferS grows every volume's time window on both sides before
	// the strategic check.
	TimeBufferS float64 `json:"time_buffer_s"`

	LookaheadS float64 `json:"lookahead_s"`
	// Levels, ordered from the least to the most severe (decreasing
	// MaxTimeToLoSS). The last one is the highest level.
	Levels          []Level `json:"levels"`
	StaleAfterS     float64 `json:"stale_after_s"`
	SamePartyAlerts bool    `json:"same_party_alerts"`

	AckDeadlineS        float64 `json:"ack_deadline_s"`
	AckDeadlineHighestS float64 `json:"ack_deadline_highest_s"`
	EscalationDeadlineS float64 `json:"escalation_deadline_s"`

	MaxWindowS    float64 `json:"max_window_s"`
	MaxFootprintM float64 `json:"max_footprint_m"`
	MaxVertices   int     `json:"max_vertices"`
}

// Default returns version 1 of the rules with the conventional figures.
func Default() Rules {
	return Rules{
		Version:        1,
		HorizontalSepM: geo.NMToM(5),
		VerticalSepM:   geo.FeetToM(1000),
		TimeBufferS:    60,
		LookaheadS:     300,
		Levels: []Level{
			{Name: "advisory", MaxTimeToLoSS: 300},
			{Name: "caution", MaxTimeToLoSS: 120},
			{Name: "warning", MaxTimeToLoSS: 60},
		},
		StaleAfterS:         30,
		AckDeadlineS:        120,
		AckDeadlineHighestS: 30,
		EscalationDeadlineS: 120,
		MaxWindowS:          24 * 3600,
		MaxFootprintM:       500_000,
		MaxVertices:         1000,
	}
}

// Validate reports the first field that makes the rules unusable, naming it
// by its JSON name.
func (r Rules) Validate() error {
	positive := []struct {
		name string
		v    float64
	}{
		{"horizontal_sep_m", r.HorizontalSepM},
		{"vertical_sep_m", r.VerticalSepM},
		{"lookahead_s", r.LookaheadS},
		{"stale_after_s", r.StaleAfterS},
		{"ack_deadline_s", r.AckDeadlineS},
		{"ack_deadline_highest_s", r.AckDeadlineHighestS},
		{"escalation_deadline_s", r.EscalationDeadlineS},
		{"max_window_s", r.MaxWindowS},
		{"max_footprint_m", r.MaxFootprintM},
	}
	for _, p := range positive {
		if math.IsNaN(p.v) || math.IsInf(p.v, 0) || p.v <= 0 {
			return fielderr.New(p.name, "must be a finite number above zero")
		}
	}
	if math.IsNaN(r.TimeBufferS) || math.IsInf(r.TimeBufferS, 0) || r.TimeBufferS < 0 {
		return fielderr.New("time_buffer_s", "must be a finite number, zero or more")
	}
	if r.MaxVertices < 4 {
		return fielderr.New("max_vertices", "must be at least 4")
	}
	if len(r.Levels) == 0 {
		return fielderr.New("levels", "at least one alert level is needed")
	}
	seen := map[string]bool{}
	for i, l := range r.Levels {
		f := fmt.Sprintf("levels[%d]", i)
		if l.Name == "" {
			return fielderr.New(f+".name", "must not be empty")
		}
		if seen[l.Name] {
			return fielderr.New(f+".name", "duplicate level name "+l.Name)
		}
		seen[l.Name] = true
		if math.IsNaN(l.MaxTimeToLoSS) || l.MaxTimeToLoSS <= 0 || l.MaxTimeToLoSS > r.LookaheadS {
			return fielderr.New(f+".max_time_to_los_s", "must be above zero and at most lookahead_s")
		}
		if i > 0 && l.MaxTimeToLoSS >= r.Levels[i-1].MaxTimeToLoSS {
			return fielderr.New(f+".max_time_to_los_s", "levels must be ordered from least to most severe (decreasing time)")
		}
	}
	return nil
}

// ErrNoLevel is returned by LevelFor when the time to loss of separation is
// beyond every level.
var ErrNoLevel = errors.New("rules: no alert level for this time to loss of separation")

// LevelFor returns the most severe level whose threshold the time to loss
// of separation is within, or ErrNoLevel.
func (r Rules) LevelFor(timeToLoSS float64) (Level, error) {
	idx := sort.Search(len(r.Levels), func(i int) bool { return timeToLoSS > r.Levels[i].MaxTimeToLoSS })
	// Levels are decreasing; every level before idx has a threshold >= t.
	if idx == 0 {
		return Level{}, ErrNoLevel
	}
	return r.Levels[idx-1], nil
}

// Highest returns the most severe level.
func (r Rules) Highest() Level { return r.Levels[len(r.Levels)-1] }

// AckDeadline is how long a recipient has to acknowledge a hotline item at
// the given alert level ("" for plain messages).
func (r Rules) AckDeadline(level string) time.Duration {
	if level != "" && level == r.Highest().Name {
		return seconds(r.AckDeadlineHighestS)
	}
	return seconds(r.AckDeadlineS)
}

// EscalationDeadline is the second deadline that runs after an item escalated.
func (r Rules) EscalationDeadline() time.Duration { return seconds(r.EscalationDeadlineS) }

// StaleAfter is how long a track lives without a report.
func (r Rules) StaleAfter() time.Duration { return seconds(r.StaleAfterS) }

// Lookahead is the tactical prediction horizon.
func (r Rules) Lookahead() time.Duration { return seconds(r.LookaheadS) }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
