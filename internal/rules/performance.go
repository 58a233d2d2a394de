package rules

import (
	"fmt"
	"math"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
)

// Performance is what the aircraft of one class can fly, as the parties
// agree it: the ranges a resolution's bands span for an aircraft of the
// class (ground speed, vertical speed, altitude), and the rates and size
// of the manoeuvres suggested to it. They also bound how far from an
// alert the traffic that can matter to its resolution is looked for: an
// aircraft is searched for within what the class can fly, not what an
// airliner can.
type Performance struct {
	Class string `json:"class"`
	// The ground speed and vertical speed (negative descending) bands
	// span these, and the altitude bands MinAltM to MaxAltM: no
	// candidate outside them is offered.
	MinGroundSpeedMps   float64 `json:"min_ground_speed_mps"`
	MaxGroundSpeedMps   float64 `json:"max_ground_speed_mps"`
	MinVerticalSpeedMps float64 `json:"min_vertical_speed_mps"`
	MaxVerticalSpeedMps float64 `json:"max_vertical_speed_mps"`
	MinAltM             float64 `json:"min_alt_m"`
	MaxAltM             float64 `json:"max_alt_m"`
	// AltStepM is the step of altitude: of the altitudes suggested and
	// the narrowest altitude band that counts as free.
	AltStepM float64 `json:"alt_step_m"`
	// TurnRateDegPerS and VerticalRateMps are the rates a suggested turn
	// or change of altitude is flown at; MaxClimbM is the largest change
	// of altitude suggested.
	TurnRateDegPerS float64 `json:"turn_rate_deg_per_s"`
	VerticalRateMps float64 `json:"vertical_rate_mps"`
	MaxClimbM       float64 `json:"max_climb_m"`
}

// DefaultPerformance returns the limits of a class of the default rules.
//
// manned: NASA DAIDALUS's DO-365B ranges (ground speed 10 to 700 kt,
// vertical speed ±6,000 fpm, altitude 100 to 50,000 ft, steps of 100 ft),
// a rate-one turn (3°/s), 1,500 fpm, and changes of altitude of up to
// 10,000 ft: the resolutions of manned aircraft are DAIDALUS's.
//
// uas: a small drone of urban delivery and
// inspection, the traffic the metro scenario flies: ground speed 5 to
// 50 m/s (a multirotor's slow flight to a fast fixed-wing delivery
// drone's cruise), vertical speed ±5 m/s (what such drones climb and
// descend at; the scenario's climb out at 2-5 m/s), altitude 30 to 150 m
// (the very low level airspace open to drones, up to 150 m or 500 ft
// above the ground, over a city near sea level as the scenario's is: the
// service's altitudes are above mean sea level, so the parties over
// higher ground agree limits of their own), in steps of 5 m (a third of the drones' 15 m vertical separation), turns
// at 15°/s, changes of altitude at 2.5 m/s and of at most 60 m (the
// height of one of the scenario's two layers of routes).
//
// Any other class: the manned limits, the widest, which every class was
// resolved with before the rules had limits (a class the parties add
// gets limits of its own when they agree them).
func DefaultPerformance(class string) Performance {
	if class != ClassUAS {
		// Computed as DAIDALUS's configuration is (resolve.DefaultConfig),
		// to the last bit.
		kt, fpm := 1852.0/3600.0, 0.3048/60.0
		return Performance{
			Class:             class,
			MinGroundSpeedMps: 10 * kt, MaxGroundSpeedMps: 700 * kt,
			MinVerticalSpeedMps: -6000 * fpm, MaxVerticalSpeedMps: 6000 * fpm,
			MinAltM: geo.FeetToM(100), MaxAltM: geo.FeetToM(50_000),
			AltStepM:        geo.FeetToM(100),
			TurnRateDegPerS: 3,
			VerticalRateMps: geo.FeetToM(1500) / 60,
			MaxClimbM:       geo.FeetToM(10_000),
		}
	}
	return Performance{
		Class:             class,
		MinGroundSpeedMps: 5, MaxGroundSpeedMps: 50,
		MinVerticalSpeedMps: -5, MaxVerticalSpeedMps: 5,
		MinAltM: 30, MaxAltM: 150,
		AltStepM:        5,
		TurnRateDegPerS: 15,
		VerticalRateMps: 2.5,
		MaxClimbM:       60,
	}
}

// PerformanceFor returns the limits of a class: its entry, or the
// default of the class when the rules have none (rules of callers that
// did not fill them).
func (r Rules) PerformanceFor(class string) Performance {
	for _, p := range r.Performance {
		if p.Class == class {
			return p
		}
	}
	return DefaultPerformance(class)
}

// fillPerformance gives rules without performance limits (stored before
// they existed, or sent in that older shape) one entry per class: the
// default of uas for uas, and for every other class the manned one, the
// limits every class was resolved with before.
func (r *Rules) fillPerformance() {
	if r.Performance != nil {
		return
	}
	r.Performance = []Performance{}
	for _, c := range r.Classes {
		r.Performance = append(r.Performance, DefaultPerformance(c))
	}
}

// Bounds of the performance limits: what flies, with the altitude
// candidates of a suggestion (MaxClimbM / AltStepM each way) kept to a
// bounded number: the coordinated search tries pairs of them, so their
// cost grows as the square (DAIDALUS's 10,000 ft in steps of 100 ft make
// 100).
const (
	maxSpeedMps         = 1_000 // Mach 3
	maxVerticalSpeedMps = 300
	minAltM             = -1_000 // below the Dead Sea
	maxAltM             = 30_500 // 100,000 ft
	maxTurnRateDegPerS  = 180
	maxAltCandidates    = 1_000
)

// Lower bounds of the performance limits (see minSepM): below them a
// figure above zero is no manoeuvre, and the times derived from it (a
// turn's or a climb's duration is its size over the rate) run to 1e300 s.
//
//   - minAltStepM: no altimeter or GNSS tells altitudes a metre apart, and
//     a step of 1e-300 m suggested altitudes the float could not tell from
//     the aircraft's own (DAIDALUS steps by 100 ft, the drones by 5 m);
//   - minTurnRateDegPerS: a full circle in 12 minutes, beyond the longest
//     lookahead; a heavy jet at its ceiling turns at about 1°/s;
//   - minVerticalSpeedMps: about 100 fpm, DAIDALUS's step of vertical
//     speed: the vertical rate a change of altitude is flown at, and each
//     limit of vertical speed unless zero (the class does not climb, or
//     does not descend);
//   - minMaxGroundSpeedMps: 3.6 km/h, a walk: what cannot fly as fast as
//     that is no aircraft.
const (
	minAltStepM          = 1
	minTurnRateDegPerS   = 0.5
	minVerticalSpeedMps  = 0.5
	minMaxGroundSpeedMps = 1
)

// validatePerformance checks that every class has exactly one entry and
// that each entry's limits are finite, ordered and within bounds.
func (r *Rules) validatePerformance() error {
	if len(r.Performance) > maxClasses {
		return fielderr.Errorf("performance", "at most one entry per class (%d)", maxClasses)
	}
	for i := range r.Performance {
		p := &r.Performance[i]
		f := fmt.Sprintf("performance[%d]", i)
		if !r.HasClass(p.Class) {
			return fielderr.Errorf(f+".class", "unknown class %q (not in classes)", p.Class)
		}
		for _, o := range r.Performance[:i] {
			if o.Class == p.Class {
				return fielderr.Errorf(f+".class", "a second entry for %s", p.Class)
			}
		}
		if err := p.validate(f); err != nil {
			return err
		}
	}
	for _, c := range r.Classes {
		found := false
		for _, p := range r.Performance {
			found = found || p.Class == c
		}
		if !found {
			return fielderr.Errorf("performance", "no entry for the class %s", c)
		}
	}
	return nil
}

func (p *Performance) validate(f string) error {
	for _, b := range []struct {
		name     string
		v        float64
		min, max float64
	}{
		{"min_ground_speed_mps", p.MinGroundSpeedMps, 0, maxSpeedMps},
		{"max_ground_speed_mps", p.MaxGroundSpeedMps, 0, maxSpeedMps},
		{"min_vertical_speed_mps", p.MinVerticalSpeedMps, -maxVerticalSpeedMps, 0},
		{"max_vertical_speed_mps", p.MaxVerticalSpeedMps, 0, maxVerticalSpeedMps},
		{"min_alt_m", p.MinAltM, minAltM, maxAltM},
		{"max_alt_m", p.MaxAltM, minAltM, maxAltM},
	} {
		switch {
		case math.IsNaN(b.v) || math.IsInf(b.v, 0):
			return fielderr.New(f+"."+b.name, "must be a finite number")
		case b.v < b.min || b.v > b.max:
			return fielderr.Errorf(f+"."+b.name, "must be from %g to %g", b.min, b.max)
		}
	}
	switch {
	case p.MaxGroundSpeedMps < minMaxGroundSpeedMps:
		return fielderr.Errorf(f+".max_ground_speed_mps", "must be at least %g", float64(minMaxGroundSpeedMps))
	case p.MinVerticalSpeedMps < 0 && p.MinVerticalSpeedMps > -minVerticalSpeedMps:
		return fielderr.Errorf(f+".min_vertical_speed_mps", "must be zero or at most %g", -minVerticalSpeedMps)
	case p.MaxVerticalSpeedMps > 0 && p.MaxVerticalSpeedMps < minVerticalSpeedMps:
		return fielderr.Errorf(f+".max_vertical_speed_mps", "must be zero or at least %g", minVerticalSpeedMps)
	case p.MaxGroundSpeedMps <= p.MinGroundSpeedMps:
		return fielderr.New(f+".max_ground_speed_mps", "must be above min_ground_speed_mps")
	case p.MaxVerticalSpeedMps <= p.MinVerticalSpeedMps:
		return fielderr.New(f+".max_vertical_speed_mps", "must be above min_vertical_speed_mps")
	case p.MaxAltM <= p.MinAltM:
		return fielderr.New(f+".max_alt_m", "must be above min_alt_m")
	}
	if err := checkBounded(f+".alt_step_m", p.AltStepM, false, minAltStepM, p.MaxAltM-p.MinAltM); err != nil {
		return err
	}
	if err := checkBounded(f+".turn_rate_deg_per_s", p.TurnRateDegPerS, false, minTurnRateDegPerS, maxTurnRateDegPerS); err != nil {
		return err
	}
	if err := checkBounded(f+".vertical_rate_mps", p.VerticalRateMps, false, minVerticalSpeedMps, maxVerticalSpeedMps); err != nil {
		return err
	}
	// A largest change of altitude below one step suggests none: zero
	// says so.
	if err := checkBounded(f+".max_climb_m", p.MaxClimbM, true, p.AltStepM, p.MaxAltM-p.MinAltM); err != nil {
		return err
	}
	if p.MaxClimbM/p.AltStepM > maxAltCandidates {
		return fielderr.Errorf(f+".max_climb_m", "at most %d steps of alt_step_m", maxAltCandidates)
	}
	return nil
}
