package rules

// This file holds the rules this version of the service runs with when the
// rules in force were agreed under an older version whose bounds were
// wider (or absent): a database keeps its rules across upgrades, and the
// rules change only when every party agrees, so the service must keep
// working with them until the parties agree on rules within the bounds.
//
// The record is never changed: the rules in force stay what the parties
// agreed, as stored and as GET /v1/rules shows them. The process runs with
// a copy (InUse) in which only the figures it cannot run with safely are
// clamped into this version's bounds, each named with the agreed value,
// the value in use and why (Clamped). They are:
//
//   - every duration below a second (lookahead, staleness, the
//     deadlines, the longest window, the witness's age, each entry's
//     lookahead), raised to a second: below it a deadline converted to
//     0 ns and every hotline item escalated at every tick, a staleness
//     dropped every track at once, a witness age pushed at every tick;
//   - every time figure above its bound (the time buffer, the deadlines,
//     the linger, the witness's age, the longest window: a day or 31
//     days), lowered to it: beyond them the time arithmetic nears
//     overflow, and the volume index already builds its buckets for a
//     buffer of at most a day (so the checks and the index agree);
//   - the lookahead (top level and each entry's) above 600 s and the
//     staleness above 300 s, lowered to them: detection indexes every
//     aircraft's path over both, and at an hour each a drone cost 75
//     times what it costs under the defaults, enough to starve the
//     ingest of a theatre (an alert late for everyone);
//   - the declaration limits (max_vertices, max_footprint_m,
//     max_footprint_area_m2, max_alt_range_m) above their bounds, lowered
//     to them: they only refuse new declarations (a clear 400 naming the
//     field), and a footprint of 10,000 vertices held the lock every
//     volume writer waits for 0.7 s.
//
// Everything else is kept as agreed even outside the bounds (the
// separation minima, the disclosure distances, names, grants, witnesses,
// the classes and performance): lowering a separation or a disclosure
// distance would make the airspace less safe than agreed, and renaming a
// level or dropping a grant would change what the parties see. Such rules
// fail Validate, and Validate's error names the field a proposal must
// bring within bounds.

import (
	"fmt"
	"slices"
)

// Clamped is one figure of the rules in force that the process uses
// clamped into this version's bounds (see InUse).
type Clamped struct {
	// Field is the JSON name of the figure ("separation[1].lookahead_s").
	Field string `json:"field"`
	// Agreed is the figure of the rules in force; InUse the one the
	// process runs with.
	Agreed float64 `json:"agreed"`
	InUse  float64 `json:"in_use"`
	Why    string  `json:"why"`
}

func (c Clamped) String() string {
	return fmt.Sprintf("%s: agreed %g, in use %g (%s)", c.Field, c.Agreed, c.InUse, c.Why)
}

// Reasons of the clamping, one per kind of figure.
const (
	whyBelowSecond  = "below a second a duration means no time: deadlines escalate at every tick, tracks drop at once"
	whyTimeBound    = "beyond it the time arithmetic nears overflow"
	whyDetectCost   = "detection indexes every aircraft's path over the lookahead and the staleness; beyond it its cost starves the ingest"
	whyDeclaration  = "a limit on new declarations; beyond it a single write holds the volume writers' lock too long"
	whyBufferBucket = "the volume index buckets volumes for a time buffer of at most a day"
)

// InUse returns the rules the process runs with for r: r itself when
// every figure the process depends on is within this version's bounds,
// else a copy with those figures clamped into them, and the list of what
// was clamped (in the order of the fields). r is not modified, and its
// Version is kept.
func (r Rules) InUse() (Rules, []Clamped) {
	out := r
	out.Separation = slices.Clone(r.Separation)
	var clamped []Clamped
	clamp := func(field string, v *float64, lo, hi float64, whyHigh string) {
		agreed := *v
		switch {
		case !(agreed >= lo): // NaN included
			*v = lo
			clamped = append(clamped, Clamped{Field: field, Agreed: agreed, InUse: lo, Why: whyBelowSecond})
		case agreed > hi:
			*v = hi
			clamped = append(clamped, Clamped{Field: field, Agreed: agreed, InUse: hi, Why: whyHigh})
		}
	}
	// The buffer may be zero; only its upper bound matters here.
	if out.TimeBufferS > maxTimeS {
		clamped = append(clamped, Clamped{Field: "time_buffer_s", Agreed: out.TimeBufferS, InUse: maxTimeS, Why: whyBufferBucket})
		out.TimeBufferS = maxTimeS
	}
	clamp("lookahead_s", &out.LookaheadS, minDurationS, maxLookaheadS, whyDetectCost)
	clamp("stale_after_s", &out.StaleAfterS, minDurationS, maxStaleS, whyDetectCost)
	clamp("ack_deadline_s", &out.AckDeadlineS, minDurationS, maxTimeS, whyTimeBound)
	clamp("ack_deadline_highest_s", &out.AckDeadlineHighestS, minDurationS, maxTimeS, whyTimeBound)
	clamp("escalation_deadline_s", &out.EscalationDeadlineS, minDurationS, maxTimeS, whyTimeBound)
	clamp("max_window_s", &out.MaxWindowS, minDurationS, maxWindowS, whyTimeBound)
	if out.MaxFootprintM > maxWidthM {
		clamped = append(clamped, Clamped{Field: "max_footprint_m", Agreed: out.MaxFootprintM, InUse: maxWidthM, Why: whyDeclaration})
		out.MaxFootprintM = maxWidthM
	}
	if out.MaxVertices > maxVertices {
		clamped = append(clamped, Clamped{Field: "max_vertices", Agreed: float64(out.MaxVertices), InUse: maxVertices, Why: whyDeclaration})
		out.MaxVertices = maxVertices
	}
	if out.MaxFootprintAreaM2 > maxAreaM2 {
		clamped = append(clamped, Clamped{Field: "max_footprint_area_m2", Agreed: out.MaxFootprintAreaM2, InUse: maxAreaM2, Why: whyDeclaration})
		out.MaxFootprintAreaM2 = maxAreaM2
	}
	if out.MaxAltRangeM > maxAltRangeM {
		clamped = append(clamped, Clamped{Field: "max_alt_range_m", Agreed: out.MaxAltRangeM, InUse: maxAltRangeM, Why: whyDeclaration})
		out.MaxAltRangeM = maxAltRangeM
	}
	if out.DiscloseLingerS > maxTimeS {
		clamped = append(clamped, Clamped{Field: "disclose_linger_s", Agreed: out.DiscloseLingerS, InUse: maxTimeS, Why: whyTimeBound})
		out.DiscloseLingerS = maxTimeS
	}
	clamp("witness_max_age_s", &out.WitnessMaxAgeS, minDurationS, maxTimeS, whyTimeBound)
	for i := range out.Separation {
		clamp(fmt.Sprintf("separation[%d].lookahead_s", i), &out.Separation[i].LookaheadS, minDurationS, maxLookaheadS, whyDetectCost)
	}
	if len(clamped) == 0 {
		return r, nil
	}
	return out, clamped
}

// CheckOperable reports, as an error naming the first, a figure that InUse
// would clamp: rules the process must not run with as they are.
func (r Rules) CheckOperable() error {
	if _, c := r.InUse(); len(c) > 0 {
		return fmt.Errorf("rules: version %d: %s is outside this version's bounds", r.Version, c[0])
	}
	return nil
}
