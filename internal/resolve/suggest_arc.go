package resolve

import (
	"math"

	"github.com/deconflict/deconflict/internal/detect"
)

// Turns judged on the arc. A suggested turn is flown on an arc, but the
// detectors decide a loss of straight relative motion in closed form. So
// a piece of a turn is judged on the chord of its arc, with each detector
// widened by what the arc can differ from the chord (widened): the arc
// loses the detector's separation at an instant only if the chord loses
// the widened one's then. A chord clear of the widened detectors is
// clear on the arc. Where it is not, the arc is tried with the detector
// itself at the middle, end and start of that loss (of the chord's loss
// of the detector itself, if it has one: nearer the arc's), any of which
// proves a loss on the arc; failing that the piece is halved and each half judged on its own,
// shorter chord, whose widening is about half as large (the velocity's)
// or a quarter (the position's), until it is at most turnSlackM: then
// the widened loss is taken for a loss. A loss is never missed, and a
// piece is called lost at most turnSlackM beyond the detectors' reach,
// within the meter of slack the prunes allow (outOfReach, Matter).
//
// The chord of an arc turned through θ = 2h at the ground speed gs and
// the rate ω (radius R = gs/ω) joins its ends at the constant velocity
// gs·k along the middle heading, k = sin h / h. At the same instant,
// the arc's point is off the chord's by at most R·(1 − cos h) across
// it and R·h³/6 along it (in the middle heading's frame, with ψ the
// arc's heading off the middle one, in [−h, h]: across, R·(cos h −
// cos ψ); along, R·(sin ψ − ψ·k), of the sign of ψ and at most
// |ψ|·(1 − k) ≤ h·h²/6); the arc's velocity, gs at ψ off the middle,
// is off the chord's gs·k by at most gs·√((1 − k)² + 2k·(1 − cos h)),
// at |ψ| = h. Both aircraft turning, the relative motion is off by the
// sum of the two. Turns keep the vertical motion: it is exact.

// turnSlackM is how far beyond the detectors' separation, at most, a
// widened detector may call a piece of a turn lost.
const turnSlackM = 0.25

// maxTurnHalvings bounds how often a piece of a turn is halved (a piece
// of 10° turned at 3°/s halved 24 times is 0.2 µs long); a piece still
// lost then is called lost.
const maxTurnHalvings = 24

// chordError bounds how far an arc flown at gsMps turning at turnRadPerS
// for durS is from its chord at the same instant: its position (meters)
// and its velocity (m/s).
func chordError(gsMps, turnRadPerS, durS float64) (posM, velMps float64) {
	h := math.Abs(turnRadPerS) * durS / 2
	if h == 0 {
		return 0, 0
	}
	radiusM := gsMps / math.Abs(turnRadPerS)
	// 1 − cos h and 1 − k without cancellation.
	sinQuarter := math.Sin(h / 2)
	oneMinusCos := 2 * sinQuarter * sinQuarter
	k := math.Sin(h) / h
	oneMinusK := 1 - k
	if h < 1e-4 {
		oneMinusK = h * h / 6
	}
	return radiusM * (oneMinusCos + h*h*h/6), gsMps * math.Sqrt(oneMinusK*oneMinusK+2*k*oneMinusCos)
}

// chordOver is the chord of segment s over [t0, t1], its position at t0
// and its velocity, and how far the flown path is from it (chordError);
// a straight piece is its own chord.
func (s *segment) chordOver(t0, t1 float64) (pos, vel detect.Vec3, posErrM, velErrMps float64) {
	if s.turnRadPerS == 0 {
		pos, vel = s.along(t0)
		return pos, vel, 0, 0
	}
	from, _ := s.arcAt(t0)
	to, _ := s.arcAt(t1)
	d := t1 - t0
	vel = detect.Vec3{X: (to.X - from.X) / d, Y: (to.Y - from.Y) / d, Z: s.vel.Z}
	posErrM, velErrMps = chordError(s.gsMps, s.turnRadPerS, d)
	return from, vel, posErrM, velErrMps
}

// flownAt is the position and velocity at time t of the path flown on
// segment s: on the arc of a turn.
func (s *segment) flownAt(t float64) (detect.Vec3, detect.Vec3) {
	if s.turnRadPerS == 0 {
		return s.along(t)
	}
	return s.arcAt(t)
}

// turnConflicts reports whether the detectors find a loss over [t0, t1]
// between the paths flown on segments sa and sb, either of them a turn
// (the file's comment), halved times times already. Unhalved, the piece
// is judged on the segments' own chords, whose errors hold all along
// them; halved, on the chords of its arcs.
func turnConflicts(sa, sb *segment, t0, t1 float64, dets []detect.Detector, halved int) bool {
	pa, va := sa.along(t0)
	pb, vb := sb.along(t0)
	pea, vea, peb, veb := sa.posErrM, sa.velErrMps, sb.posErrM, sb.velErrMps
	if halved > 0 {
		pa, va, pea, vea = sa.chordOver(t0, t1)
		pb, vb, peb, veb = sb.chordOver(t0, t1)
	}
	rp, rv := pb.Sub(pa), vb.Sub(va)
	posErrM, velErrMps := pea+peb, vea+veb
	durS := t1 - t0
	for _, d := range dets {
		loss, byM, ok := widenedLoss(d, rp, rv, durS, posErrM, velErrMps)
		if !loss.Conflict {
			continue
		}
		if !ok || byM <= turnSlackM || halved >= maxTurnHalvings {
			return true
		}
		// A loss on the arc itself, within the chord's?
		if own := d.Loss(rp, rv, 0, durS); own.Conflict {
			loss = own
		}
		for _, at := range [...]float64{(loss.TInS + loss.TOutS) / 2, loss.TOutS, loss.TInS} {
			fa, fva := sa.flownAt(t0 + at)
			fb, fvb := sb.flownAt(t0 + at)
			if violatedAt(d, fb.Sub(fa), fvb.Sub(fva)) {
				return true
			}
		}
		mid := t0 + durS/2
		return turnConflicts(sa, sb, t0, mid, dets, halved+1) || turnConflicts(sa, sb, mid, t1, dets, halved+1)
	}
	return false
}

// widened is detector d widened horizontally by how far a relative
// motion can be from the chord's rp + rv·t over [0, durS]: by posErrM in
// position and velErrMps in velocity, the vertical motion exact. Every
// relative state within those of the chord's at an instant that loses
// d's separation loses the widened detector's at that instant. byM is
// how far the separation was widened, ok false for a detector of
// unknown definition (returned as it is: judged on the chord alone).
//
// The cylinder is widened by the position's error: a horizontal
// distance on the path below H is below H + posErrM on the chord.
//
// Well clear (detect.WCV, DTHR D, TTHR T, a state s, v of the chord and
// u = s + e, w = v + f of the path, |e| ≤ P, |f| ≤ V) is widened to DTHR
// D′ (TTHR, ZTHR and TCOA as they are), the larger of
//
//	D + P + V·T and √(D² + 2P·U + P² + T·(P·W + U·V + P·V))
//
// with W = |v| + V bounding |w| and U bounding |u| at a violation: at
// most the chord's farthest horizontal distance over the piece plus P,
// and at most D + W·T (Reach). If the path violates with |u| ≤ D, then
// |s| ≤ D + P ≤ D′. Otherwise it closes (b̃ = −u·w > 0), its miss
// distance is within D and c̃ = |u|² − D² ≤ T·b̃ (tau_mod ≤ T). Then, with
// c = |s|² − D′² and b = −s·v ≥ b̃ − (U·V + P·W + P·V) (expanding
// (u − e)·(w − f)), and |s|² ≤ |u|² + 2P·U + P²:
//
//	c ≤ c̃ + 2P·U + P² − (D′² − D²) ≤ T·b̃ + 2P·U + P² − (D′² − D²) ≤ T·b,
//
// so either c ≤ 0 (within D′) or the chord closes (b > 0) with a
// modified tau c/b ≤ T. Its miss distance is within D′: the path's line
// u + w·t enters the D circle at t_e = c̃/(b̃ + √(b̃² − |w|²·c̃)) ≤ c̃/b̃ ≤ T,
// where the chord's line is within D + P + V·t_e ≤ D′.
func widened(d detect.Detector, rp, rv detect.Vec3, durS, posErrM, velErrMps float64) (wide detect.Detector, byM float64, ok bool) {
	switch d := d.(type) {
	case detect.Cylinder:
		c := widenedCylinder(d, posErrM)
		return c, c.HorizontalM - d.HorizontalM, true
	case detect.WCV:
		w := widenedWCV(d, rp, rv, durS, posErrM, velErrMps)
		return w, w.DTHRM - d.DTHRM, true
	}
	return d, 0, false
}

// widenedLoss is the loss of the widened detector d (widened) of the
// relative motion rp + rv·t over [0, durS], without putting it in an
// interface (a heap allocation a piece).
func widenedLoss(d detect.Detector, rp, rv detect.Vec3, durS, posErrM, velErrMps float64) (loss detect.Loss, byM float64, ok bool) {
	switch d := d.(type) {
	case detect.Cylinder:
		c := widenedCylinder(d, posErrM)
		return c.Loss(rp, rv, 0, durS), c.HorizontalM - d.HorizontalM, true
	case detect.WCV:
		w := widenedWCV(d, rp, rv, durS, posErrM, velErrMps)
		return w.Loss(rp, rv, 0, durS), w.DTHRM - d.DTHRM, true
	}
	return d.Loss(rp, rv, 0, durS), 0, false
}

// widenedCylinder and widenedWCV are widened of a cylinder and of well
// clear.
func widenedCylinder(c detect.Cylinder, posErrM float64) detect.Cylinder {
	c.HorizontalM += posErrM
	return c
}

func widenedWCV(d detect.WCV, rp, rv detect.Vec3, durS, posErrM, velErrMps float64) detect.WCV {
	p, v, dm, ts := posErrM, velErrMps, d.DTHRM, d.TTHRS
	// Square roots of sums of squares: no overflow at these magnitudes,
	// and Hypot costs more than the loss itself.
	w := math.Sqrt(rv.X*rv.X+rv.Y*rv.Y) + v
	ex, ey := rp.X+rv.X*durS, rp.Y+rv.Y*durS
	farM := math.Sqrt(max(rp.X*rp.X+rp.Y*rp.Y, ex*ex+ey*ey))
	u := min(farM+p, dm+w*ts)
	d.DTHRM = max(dm+p+v*ts, math.Sqrt(dm*dm+2*p*u+p*p+ts*(p*w+u*v+p*v)))
	return d
}

// violatedAt reports whether the relative state rp, rv loses detector
// d's separation at that instant: inside the cylinder, or within well
// clear (detect.WCV.Violation); false for a detector of unknown
// definition.
func violatedAt(d detect.Detector, rp, rv detect.Vec3) bool {
	switch d := d.(type) {
	case detect.Cylinder:
		return rp.X*rp.X+rp.Y*rp.Y < d.HorizontalM*d.HorizontalM && math.Abs(rp.Z) < d.VerticalM
	case detect.WCV:
		return d.Violation(rp, rv)
	}
	return false
}
