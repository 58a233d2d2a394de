package resolve

import (
	"math"
	"slices"

	"github.com/deconflict/deconflict/internal/detect"
)

// recovery is DAIDALUS's compute_recovery_bands for dimension d over the
// members of the corrective region (package comment, Recovery): the
// recovery set and the time from which it regains separation; an empty
// set when even the smallest cylinders cannot be avoided.
func (c *computation) recovery(d dim, ms []member, lo, hi float64) (spans, float64) {
	if len(ms) == 0 {
		return nil, 0
	}
	// The near-mid-air-collision cylinders: if no candidate avoids them,
	// there is nothing to recover to.
	step := c.cfg.step(d)
	if !c.cylinderUsable(d, ms, lo, hi, 0, step) {
		return nil, 0
	}
	lookahead := 0.0
	for _, m := range ms {
		lookahead = max(lookahead, m.in.Sep.Alerter.LookaheadS)
	}
	factor := 1.0
	for c.shrinkable(ms, factor) {
		if c.cylinderUsable(d, ms, lo, hi, factor, step) {
			// Binary search of the earliest time from which some
			// candidate recovers, to half a second.
			pr, pg, p := 0.0, lookahead+1, lookahead
			for pg-pr > 0.5 {
				if !c.recoveryUsable(d, ms, lo, hi, factor, p, step) {
					pr = p
				} else {
					pg = p
				}
				p = (pr + pg) / 2
			}
			t := pr
			if pg <= lookahead {
				t = min(lookahead, pg+c.cfg.RecoveryStabilityS)
			}
			if g := c.recoveryWide(d, ms, lo, hi, factor, t, step, false); len(g) > 0 {
				return g, t
			}
		}
		factor *= 1 - c.cfg.CollisionAvoidFactor
	}
	return nil, 0
}

// cylinder is member m's recovery cylinder shrunk by factor, never below
// its NMAC cylinder; factor 0 gives the NMAC cylinder.
func cylinder(m *member, factor float64) detect.Cylinder {
	s := m.in.Sep
	return detect.Cylinder{
		HorizontalM: max(s.NMAC.HorizontalM, factor*s.Recovery.HorizontalM),
		VerticalM:   max(s.NMAC.VerticalM, factor*s.Recovery.VerticalM),
	}
}

// shrinkable reports whether some member's cylinder at factor is still
// larger than its NMAC cylinder.
func (c *computation) shrinkable(ms []member, factor float64) bool {
	for i := range ms {
		cyl, nmac := cylinder(&ms[i], factor), ms[i].in.Sep.NMAC
		if cyl.HorizontalM > nmac.HorizontalM || cyl.VerticalM > nmac.VerticalM {
			return true
		}
	}
	return false
}

// cylinderUsable reports whether the candidates in conflict with none of
// the members' cylinders at factor over their horizons hold a range at
// least width wide: recoveryUsable recovering from a time past every
// horizon, which tests the cylinders alone over each whole horizon.
func (c *computation) cylinderUsable(d dim, ms []member, lo, hi, factor, width float64) bool {
	return c.recoveryUsable(d, ms, lo, hi, factor, math.Inf(1), width)
}

// recoveryGreen is the set of candidates that recover from time b: for
// each member, no corrective conflict over [b, horizon] and no cylinder
// conflict over [0, b]; past a member's horizon, no cylinder conflict
// within it.
func (c *computation) recoveryGreen(d dim, ms []member, lo, hi, factor, b float64) spans {
	var red []span
	for i := range ms {
		red = c.recoveryRed(red, d, &ms[i], lo, hi, factor, b, nil)
	}
	return unite(red).complement(lo, hi)
}

// recoveryUsable reports whether recoveryGreen holds a range at least
// width wide, stopping at the first member after which none is left (as
// more conflicts only take candidates away: the ranges left are pieces of
// those before, so none grows wider), moving that member to the front of
// ms (toFront), and leaving out the members no candidate can reach.
func (c *computation) recoveryUsable(d dim, ms []member, lo, hi, factor, b, width float64) bool {
	return len(c.recoveryWide(d, ms, lo, hi, factor, b, width, true)) > 0
}

// recoveryWide is recoveryGreen(d, ms, lo, hi, factor, b).wide(width),
// worked out member by member: the ranges at least width wide the members
// so far leave are the only ones the next can take anything from that
// matters (it takes nothing wider from a narrower range), so only its
// pieces that meet them are tested (redWithin). With stop, it returns as
// soon as none is left, moving the member that took the last to the front
// (toFront), and its answer is in the scratch buffers: only its length
// tells. Without stop, the ranges are the caller's (none: empty).
func (c *computation) recoveryWide(d dim, ms []member, lo, hi, factor, b, width float64, stop bool) spans {
	if c.unpruned {
		return c.recoveryGreen(d, ms, lo, hi, factor, b).wide(width)
	}
	red, gaps := c.sc.spans[:0], spans(nil).appendWideGaps(c.sc.gaps[:0], lo, hi, width)
	defer func() { c.sc.spans, c.sc.gaps = red[:0], gaps[:0] }()
	for i := 0; i < len(ms) && len(gaps) > 0; i++ {
		n := len(red)
		red = c.recoveryRed(red, d, &ms[i], lo, hi, factor, b, gaps)
		if len(red) > n {
			red = unite(red)
			if gaps = spans(red).appendWideGaps(gaps[:0], lo, hi, width); len(gaps) == 0 && stop {
				toFront(ms, i)
			}
		}
	}
	switch {
	case len(gaps) == 0:
		return nil
	case stop:
		return gaps
	}
	return slices.Clone(gaps)
}

// recoveryRed appends to red the candidates member m keeps from
// recovering from time b: in conflict with its cylinder at factor over
// [0, b] (its horizon, when shorter), or with its corrective detector over
// [b, horizon]. A window [b, horizon] of (almost) zero length is tested
// as DAIDALUS does, by whether a loss starts at b. The tests no candidate
// can reach are left out, and of the others only the pieces that meet
// within are tested (redWithin; nil: all).
func (c *computation) recoveryRed(red []span, d dim, m *member, lo, hi, factor, b float64, within spans) []span {
	// Out of reach of every candidate between the first and the last
	// range of within: no conflict there.
	rlo, rhi := within.hull(lo, hi)
	cyl := test{det: cylinder(m, factor), pos: m.in.Pos, vel: m.in.Vel, toS: min(b, m.horizonS)}
	if c.unpruned || !c.own.beyondReach(d, rlo, rhi, &cyl) {
		red = c.own.redWithin(red, &c.sc, d, lo, hi, &cyl, c.cfg.Samples, within)
	}
	if b > m.horizonS {
		return red
	}
	t := test{det: m.det, pos: m.in.Pos, vel: m.in.Vel, fromS: b, toS: m.horizonS}
	if detect.AlmostEquals(b, m.horizonS) {
		t.atStart = true
		t.toS = b + 1
	}
	if c.unpruned || !c.own.beyondReach(d, rlo, rhi, &t) && !c.own.beyondLine(d, rlo, rhi, &t) {
		red = c.own.redWithin(red, &c.sc, d, lo, hi, &t, c.cfg.Samples, within)
	}
	return red
}

// toFront moves ms[i] to the front, the others kept in order: the member
// that left no usable range for one factor or time most often does so
// for the next, tested first. The order of the members changes nothing
// of what the recovery finds (unions of their conflicts).
func toFront(ms []member, i int) {
	if i > 0 {
		m := ms[i]
		copy(ms[1:i+1], ms[:i])
		ms[0] = m
	}
}

// sortUnique sorts the values and drops repeats.
func sortUnique(xs []float64) []float64 {
	slices.Sort(xs)
	return slices.Compact(xs)
}
