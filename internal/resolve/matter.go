package resolve

import (
	"math"

	"github.com/deconflict/deconflict/internal/detect"
)

// This file answers, before any band or suggestion is computed, whether
// an intruder can matter to them at all: the service asks it of every
// track of a busy airspace, so that it converts, copies and hands over
// only the few that can (a manned aircraft's candidates reach a whole
// city of drones, but a drone far below it meets only the vertical-speed
// and altitude candidates, which keep its ground track).
//
// Each test is conservative: false only when no candidate can bring the
// pair within the reach (detect.Reach) of a level of its alerter that
// can change the answer, so that leaving the intruder out changes
// nothing: for a suggestion any level over the lookahead; for the bands
// only the levels that paint a region, within the longest of their
// alerting times (bandsReach). What
// a manoeuvre keeps of the ownship's straight flight is tested exactly
// (the vertical motion of track and ground-speed candidates and of
// turns, the horizontal motion of vertical-speed and altitude candidates
// and of climbs and descents); what it changes, by the fastest the
// manoeuvre flies. A loss at an instant needs both the vertical and the
// horizontal distance within reach at that instant: the horizontal test
// looks only at the instants the vertical one allows, and the other way
// round.

// matterSlackM covers the rounding of the detectors' tolerances, of the
// paths and of the frames the caller works the relative motion out in.
const matterSlackM = 1

// Matter tests whether intruders under one separation can matter to
// the resolution of one ownship: what the tests share is worked out once
// (NewMatter), as the service asks them of every track of a city.
type Matter struct {
	sep         *Separation
	own         Aircraft
	reach       detect.Reach
	lineM, look float64
	// bandsReach, bandsLineM and bandsLookS are what Bands tests with
	// (the function bandsReach): only the levels that paint a region,
	// within the longest of their alerting times.
	bandsReach             detect.Reach
	bandsLineM, bandsLookS float64
	// The bands' candidates: trackSpeed is the ground speed of a track
	// candidate, gLo and gHi bound those of a ground-speed candidate
	// along the current track (ux, uy), fastest the fastest of them.
	trackSpeed, gLo, gHi, fastest, ux, uy float64
	// gs is the current ground speed, kept by turns; vz the fastest
	// vertical speed of a climb or descent.
	gs, vz float64
}

// NewMatter is the Matter of own against intruders under sep (nil: none
// matters), its bands computed with cfg and its suggestions flown as k
// says.
func NewMatter(own Aircraft, sep *Separation, cfg *Config, k *Kinematics) Matter {
	m := Matter{sep: sep, own: own}
	if sep == nil {
		return m
	}
	m.reach, m.lineM, m.look = alerterReach(sep)
	m.bandsReach, m.bandsLineM, m.bandsLookS = bandsReach(sep)
	c := computation{cfg: cfg, own: newOwnship(own.Pos, own.Vel, cfg.MinAirspeedMps)}
	m.gs = math.Sqrt(own.Vel.X*own.Vel.X + own.Vel.Y*own.Vel.Y)
	m.trackSpeed = c.own.trackSpeed
	// A ground speed of the domain or the current one, which covers a
	// conflict aircraft now.
	m.gLo, m.gHi = c.domain(dimGs)
	m.gLo, m.gHi = min(m.gLo, m.gs), max(m.gHi, m.gs)
	m.fastest = max(math.Abs(m.gLo), math.Abs(m.gHi))
	m.ux, m.uy = c.own.ux, c.own.uy
	m.vz = max(math.Abs(own.Vel.Z), k.VerticalRateMps)
	return m
}

// Bands reports whether the intruder in can change the bands of the
// ownship (Compute with the Config of NewMatter): false only when it is
// not a conflict aircraft now and no candidate of any dimension within
// the configuration's domain can come into conflict with it under any
// level of its alerter that paints a region, within the longest alerting
// time of those levels (bandsReach), so that it is no member of any
// region (nor of recovery, which searches among the members).
func (m *Matter) Bands(in Aircraft) bool {
	if m.sep == nil {
		return false
	}
	reach := &m.bandsReach
	rel := in.Pos.Sub(m.own.Pos)
	w := in.Vel

	// Track and ground speed keep the vertical motion: only the instants
	// [t0, t1] at which the vertical distance is within reach count (the
	// first test, without a division, rules out most of a city's drones
	// below a manned aircraft).
	relVz := w.Z - m.own.Vel.Z
	vBound := reach.VerticalM + math.Abs(relVz)*reach.VerticalS + matterSlackM
	if t0, t1, ok := withinAbsIf(rel.Z, relVz, vBound, m.bandsLookS); ok {
		intH := math.Sqrt(w.X*w.X + w.Y*w.Y)
		// Track: the ownship flies from its position at trackSpeed in
		// any direction, so it is within trackSpeed·t of it at t; the
		// intruder's closest approach to that position over [t0, t1]
		// must come within trackSpeed·t1 plus the reach.
		near := nearestDist(rel.X, rel.Y, w.X, w.Y, t0, t1)
		if near-m.trackSpeed*t1 <= reach.HorizontalM+(intH+m.trackSpeed)*reach.HorizontalS+matterSlackM {
			return true
		}
		// Ground speed: along the current track at a speed g in
		// [gLo, gHi], straight: at t the ownship is on the track's line
		// within fastest·t of its position, and the relative motion is a
		// straight line whose miss distance must be within the
		// detectors' (lineReach).
		bound := reach.HorizontalM + (intH+m.fastest)*reach.HorizontalS + matterSlackM
		// The distance across the track's line, (−uy, ux)·(rel + w·t).
		across := nearestAbs(-m.uy*rel.X+m.ux*rel.Y, -m.uy*w.X+m.ux*w.Y, t0, t1)
		if near-m.fastest*t1 <= bound && across <= bound && missWithin(rel.X, rel.Y, w.X, w.Y, m.ux, m.uy, m.gLo, m.gHi, m.bandsLineM+matterSlackM) {
			return true
		}
	}
	// Vertical speed and altitude keep the horizontal motion: the
	// horizontal relative motion is as now, exactly, a straight line. An
	// altitude candidate can be any altitude, a vertical speed one any of
	// the domain: the vertical test of a vertical speed is left out (it
	// would spare only what altitude candidates keep).
	relVx, relVy := w.X-m.own.Vel.X, w.Y-m.own.Vel.Y
	return missWithin(rel.X, rel.Y, relVx, relVy, 0, 0, 0, 0, m.bandsLineM+matterSlackM) &&
		nearWithin(rel.X, rel.Y, relVx, relVy, reach.HorizontalM+math.Sqrt(relVx*relVx+relVy*relVy)*reach.HorizontalS+matterSlackM, m.bandsLookS)
}

// Suggestion reports whether the intruder in, one of the others of the
// ownship's party in Suggest (flown as the Kinematics of NewMatter say),
// can change the suggestion: false only when no path of either sense of
// manoeuvre (turns, which keep the vertical motion and the ground speed;
// climbs and descents, which keep the horizontal motion and change the
// vertical speed to at most the standard rate; flying on, which is both)
// can come into conflict with it under any level of its alerter over the
// lookahead, so that no candidate is ever checked against it with
// another verdict than clear.
func (m *Matter) Suggestion(in Aircraft) bool {
	if m.sep == nil {
		return false
	}
	reach := &m.reach
	rel := in.Pos.Sub(m.own.Pos)
	w := in.Vel

	// Turns: the vertical motion as now, the ground speed kept (each
	// chord of a turn is flown at it), so within gs·t of the start.
	relVz := w.Z - m.own.Vel.Z
	if t0, t1, ok := withinAbsIf(rel.Z, relVz, reach.VerticalM+math.Abs(relVz)*reach.VerticalS+matterSlackM, m.look); ok {
		intH := math.Sqrt(w.X*w.X + w.Y*w.Y)
		if nearestDist(rel.X, rel.Y, w.X, w.Y, t0, t1)-m.gs*t1 <= reach.HorizontalM+(intH+m.gs)*reach.HorizontalS+matterSlackM {
			return true
		}
	}
	// Climbs and descents: the horizontal motion as now (a straight
	// line, whose miss distance must be within the detectors'), the
	// vertical speed at most vz.
	relVx, relVy := w.X-m.own.Vel.X, w.Y-m.own.Vel.Y
	if !missWithin(rel.X, rel.Y, relVx, relVy, 0, 0, 0, 0, m.lineM+matterSlackM) {
		return false
	}
	hBound := reach.HorizontalM + math.Sqrt(relVx*relVx+relVy*relVy)*reach.HorizontalS + matterSlackM
	if !nearWithin(rel.X, rel.Y, relVx, relVy, hBound, m.look) {
		return false
	}
	t0, t1, ok := withinDist(rel.X, rel.Y, relVx, relVy, hBound, 0, m.look)
	if !ok {
		// Only by rounding, at the edge: every instant counts.
		t0, t1 = 0, m.look
	}
	return nearestAbs(rel.Z, w.Z, t0, t1)-m.vz*t1 <= reach.VerticalM+(math.Abs(w.Z)+m.vz)*reach.VerticalS+matterSlackM
}

// Reaches is the first test of Bands and of Suggestion, which a caller
// can run on a relative motion without converting it into the frame:
// false only when both would rule the intruder out at once, its vertical
// distance beyond reach over the whole lookahead and the miss distance
// of its horizontal relative line beyond the detectors' (lineReach), by
// a meter more than they allow. relZ and relVz are the vertical relative
// position and velocity in the frame (the intruder's minus the
// ownship's), crossH the cross product of the horizontal ones
// (x·vy − y·vx), relVh2 the square of the horizontal relative speed.
func (m *Matter) Reaches(relZ, relVz, crossH, relVh2 float64) bool {
	if m.sep == nil {
		return false
	}
	const slackM = matterSlackM + 1
	if nearestAbs(relZ, relVz, 0, m.look) <= m.reach.VerticalM+math.Abs(relVz)*m.reach.VerticalS+slackM {
		return true
	}
	bound := m.lineM + slackM
	return math.IsInf(bound, 1) || crossH*crossH <= bound*bound*max(0, relVh2)
}

// alerterReach is the union of the reaches of every level of sep's
// alerter, painting a region or not, the largest of their lineReach, and
// the alerter's lookahead.
func alerterReach(sep *Separation) (reach detect.Reach, lineM, lookaheadS float64) {
	for _, l := range sep.Alerter.Levels {
		reach = reach.Union(l.Detector.Reach())
		lineM = max(lineM, lineReach(l.Detector))
	}
	return reach, lineM, sep.Alerter.LookaheadS
}

// bandsReach is what can bring an intruder into the bands (Compute):
// the union of the reaches of the levels of sep's alerter that paint a
// region, the largest of their lineReach, and the longest of their
// alerting times within the lookahead. Compute tests nothing else: a
// level painting no region (DO-365's preventive, whose vertical threshold
// is 700 ft against the corrective's 450) never makes a member nor a
// conflict aircraft; an intruder other than a conflict aircraft is a
// member of a region only by a conflict within its level's alerting time
// (memberOf); and a conflict aircraft is one by a loss of its current
// state that starts within that time (detect.AlertLevel.Holds), the
// current state being a ground-speed candidate. So a manned aircraft's
// bands against drones look 55 s ahead, not the 180 s of their
// lookahead, which its suggestions still do.
func bandsReach(sep *Separation) (reach detect.Reach, lineM, horizonS float64) {
	for li, r := range sep.Regions {
		if r == RegionNone || r >= RegionRecovery || sep.levelFor(r) != li || li >= len(sep.Alerter.Levels) {
			continue
		}
		l := &sep.Alerter.Levels[li]
		reach = reach.Union(l.Detector.Reach())
		lineM = max(lineM, lineReach(l.Detector))
		horizonS = max(horizonS, min(l.AlertingTimeS, sep.Alerter.LookaheadS))
	}
	return reach, lineM, horizonS
}

// lineReach bounds the horizontal miss distance of a relative motion
// that is straight, at any instant the detector finds a loss on it: the
// cylinder's loss is within its radius; the well clear's horizontal
// violation (detect.WCV) is within DTHR or has its closest approach
// within DTHR. Infinite for a detector it knows nothing of.
func lineReach(d detect.Detector) float64 {
	switch d := d.(type) {
	case detect.Cylinder:
		return d.HorizontalM
	case detect.WCV:
		return d.DTHRM
	}
	return math.Inf(1)
}

// missWithin reports whether, for some g in [gLo, gHi], the straight
// horizontal line (x, y) + ((vx, vy) − g·(ux, uy))·t passes within bound
// of the origin (its miss distance, over all t). With |V| the speed of
// the line and A − g·B the cross product of the point and V, this is
// (A − g·B)² <= bound²·|V|², a quadratic in g.
func missWithin(x, y, vx, vy, ux, uy, gLo, gHi, bound float64) bool {
	if math.IsInf(bound, 1) {
		return true
	}
	a0, b := x*vy-y*vx, x*uy-y*ux
	wu, ww, b2 := vx*ux+vy*uy, vx*vx+vy*vy, bound*bound
	// (A − gB)² − b2·(|w|² − 2g·w·u + g²|u|²)
	uu := ux*ux + uy*uy
	qa, qb, qc := b*b-b2*uu, -2*(a0*b-b2*wu), a0*a0-b2*ww
	least := min(qa*gLo*gLo+qb*gLo+qc, qa*gHi*gHi+qb*gHi+qc)
	if qa > 0 {
		if g := -qb / (2 * qa); g > gLo && g < gHi {
			least = min(least, qc-qb*qb/(4*qa))
		}
	}
	return least <= 0
}

// withinAbsIf is withinAbs over [0, to], its division done only when
// some instant is within bound (nearestAbs, without one): the instants,
// all of [0, to] should the window found by division come out empty by
// rounding.
func withinAbsIf(x, v, bound, to float64) (t0, t1 float64, ok bool) {
	if nearestAbs(x, v, 0, to) > bound {
		return 0, 0, false
	}
	if t0, t1, ok = withinAbs(x, v, bound, 0, to); !ok {
		return 0, to, true
	}
	return t0, t1, true
}

// nearWithin reports whether the horizontal point (x, y) + (vx, vy)·t
// comes within bound of the origin for some t in [0, to], without a
// division or a square root.
func nearWithin(x, y, vx, vy, bound, to float64) bool {
	b2 := bound * bound
	r2 := x*x + y*y
	if r2 <= b2 {
		return true
	}
	rv := x*vx + y*vy
	if rv >= 0 {
		// Drawing apart: nearest at 0.
		return false
	}
	ex, ey := x+vx*to, y+vy*to
	if ex*ex+ey*ey <= b2 {
		return true
	}
	a := vx*vx + vy*vy
	if -rv >= a*to {
		// Nearest at to.
		return false
	}
	// Nearest within: r2 − rv²/a <= b2.
	return (r2-b2)*a <= rv*rv
}

// withinAbs returns the instants [t0, t1] of [from, to] at which
// |x + v·t| <= bound, ok false when there are none.
func withinAbs(x, v, bound, from, to float64) (t0, t1 float64, ok bool) {
	if v == 0 {
		return from, to, math.Abs(x) <= bound
	}
	lo, hi := (-bound-x)/v, (bound-x)/v
	if lo > hi {
		lo, hi = hi, lo
	}
	t0, t1 = max(from, lo), min(to, hi)
	return t0, t1, t0 <= t1
}

// withinDist returns the instants [t0, t1] of [from, to] at which the
// horizontal point (x, y) + (vx, vy)·t is within bound of the origin, ok
// false when there are none.
func withinDist(x, y, vx, vy, bound, from, to float64) (t0, t1 float64, ok bool) {
	a := vx*vx + vy*vy
	c := x*x + y*y - bound*bound
	if a == 0 {
		return from, to, c <= 0
	}
	b := x*vx + y*vy // half the linear coefficient
	disc := b*b - a*c
	if disc < 0 {
		return 0, 0, false
	}
	sq := math.Sqrt(disc)
	t0, t1 = max(from, (-b-sq)/a), min(to, (-b+sq)/a)
	return t0, t1, t0 <= t1
}
