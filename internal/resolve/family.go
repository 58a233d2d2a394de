package resolve

import (
	"math"
	"slices"

	"github.com/deconflict/deconflict/internal/detect"
)

// dim is one dimension of manoeuvre: a one-parameter family of ownship
// states, each flown straight from now.
type dim uint8

const (
	// dimTrack: the track angle θ in radians clockwise from north, at the
	// ground speed trackSpeed, the vertical speed kept.
	dimTrack dim = iota
	// dimGs: the ground speed along the current track, the vertical speed
	// kept.
	dimGs
	// dimVs: the vertical speed, the horizontal velocity kept.
	dimVs
	// dimAlt: the altitude, reached at once and flown level (DAIDALUS's
	// instantaneous altitude bands), the horizontal velocity kept.
	dimAlt
	numDims
)

// ownship is the aircraft the bands are for, with what the families derive
// from its state.
type ownship struct {
	pos, vel detect.Vec3
	// trackSpeed is the ground speed of track candidates: the current one,
	// at least the minimum airspeed (DAIDALUS's DaidalusDirBands).
	trackSpeed float64
	// ux, uy is the unit vector of the current track (north when the
	// aircraft does not move horizontally): the direction of ground-speed
	// candidates.
	ux, uy float64
}

func newOwnship(pos, vel detect.Vec3, minAirspeedMps float64) ownship {
	o := ownship{pos: pos, vel: vel, ux: 0, uy: 1}
	gs := math.Hypot(vel.X, vel.Y)
	if gs > 0 {
		o.ux, o.uy = vel.X/gs, vel.Y/gs
	}
	o.trackSpeed = max(gs, minAirspeedMps)
	return o
}

// state is the ownship's position and velocity for the candidate x of
// dimension d.
func (o *ownship) state(d dim, x float64) (pos, vel detect.Vec3) {
	pos, vel = o.pos, o.vel
	switch d {
	case dimTrack:
		sin, cos := math.Sincos(x)
		vel.X, vel.Y = o.trackSpeed*sin, o.trackSpeed*cos
	case dimGs:
		vel.X, vel.Y = x*o.ux, x*o.uy
	case dimVs:
		vel.Z = x
	case dimAlt:
		pos.Z, vel.Z = x, 0
	}
	return pos, vel
}

// test is one detection a candidate is submitted to: the detector over
// [fromS, toS] against one intruder. With atStart, the candidate
// conflicts only when the loss starts (almost) at fromS: DAIDALUS's test
// of a window of (almost) zero length, made over [fromS, fromS+1].
type test struct {
	det        detect.Detector
	pos, vel   detect.Vec3 // the intruder's
	fromS, toS float64
	atStart    bool
}

// conflicts runs the test on the ownship state.
func (t *test) conflicts(ownPos, ownVel detect.Vec3) bool {
	loss := t.det.Loss(t.pos.Sub(ownPos), t.vel.Sub(ownVel), t.fromS, t.toS)
	if t.atStart {
		return loss.Conflict && detect.AlmostEquals(loss.TInS, t.fromS)
	}
	return loss.Conflict
}

// beyondReach reports whether no candidate of dimension d within [lo, hi]
// can conflict under t, by the detector's Reach (where a loss can be at
// all) rather than by its boundaries: a test of a few multiplications
// that spares red most of the traffic of a busy airspace. It is
// conservative: true only when every candidate is out of reach at every
// instant of [t.fromS, t.toS]. What a dimension keeps of the ownship's
// state is tested exactly (the vertical motion of track and ground-speed
// candidates, the horizontal motion of vertical-speed and altitude
// candidates); what it changes, by the fastest candidate.
func (o *ownship) beyondReach(d dim, lo, hi float64, t *test) bool {
	return o.beyondReachOf(d, lo, hi, t, t.det.Reach())
}

// beyondLine reports whether no candidate of dimension d within [lo, hi]
// can conflict under t by the detector's reach across a straight line
// (lineReach): a ground-speed, vertical-speed or altitude candidate flies
// a straight horizontal relative line, on which a loss needs the line's
// miss distance within that reach (for well clear DTHR, which its reach by
// time, DTHR + TTHR·|v|, is far wider than); over the ground speeds of
// [lo, hi], the least of their lines' (missWithin); and a pair drawing
// apart over the whole window needs to be within that reach at its start.
// A meter of slack covers the rounding. False for track candidates, and
// for a detector it knows nothing of.
func (o *ownship) beyondLine(d dim, lo, hi float64, t *test) bool {
	const slackM = 1
	bound := lineReach(t.det) + slackM
	if math.IsInf(bound, 1) {
		return false
	}
	rx, ry := t.pos.X-o.pos.X, t.pos.Y-o.pos.Y
	switch d {
	case dimGs:
		if !missWithin(rx, ry, t.vel.X, t.vel.Y, o.ux, o.uy, lo, hi, bound) {
			return true
		}
		// From now, drawing apart at every ground speed (rel·(w − g·u)
		// is linear in g: at both ends), and beyond the reach now.
		wr, ur := rx*t.vel.X+ry*t.vel.Y, rx*o.ux+ry*o.uy
		return t.fromS == 0 && wr-lo*ur >= 0 && wr-hi*ur >= 0 && math.Sqrt(rx*rx+ry*ry) > bound
	case dimVs, dimAlt:
		vx, vy := t.vel.X-o.vel.X, t.vel.Y-o.vel.Y
		if !missWithin(rx, ry, vx, vy, 0, 0, 0, 0, bound) {
			return true
		}
		// Drawing apart over the whole window (its closest approach
		// before its start): the nearest is at the start, and a loss
		// when drawing apart needs the pair within the line reach (for
		// well clear, a tau needs them closing).
		if rx*vx+ry*vy+t.fromS*(vx*vx+vy*vy) >= 0 {
			sx, sy := rx+t.fromS*vx, ry+t.fromS*vy
			return math.Sqrt(sx*sx+sy*sy) > bound
		}
	}
	return false
}

// beyondReachOf is beyondReach with the detector's reach given.
func (o *ownship) beyondReachOf(d dim, lo, hi float64, t *test, reach detect.Reach) bool {
	from, to := t.fromS, t.toS
	if t.atStart {
		to = from + 1
	}
	rel := t.pos.Sub(o.pos)
	// Square roots rather than math.Hypot, which guards against
	// overflows no speed or distance here comes near, at several times
	// the cost: this runs for every intruder of every dimension.
	intH := math.Sqrt(t.vel.X*t.vel.X + t.vel.Y*t.vel.Y)
	switch d {
	case dimTrack, dimGs:
		relVz := t.vel.Z - o.vel.Z
		if nearestAbs(rel.Z, relVz, from, to) > reach.VerticalM+math.Abs(relVz)*reach.VerticalS {
			return true
		}
		if d == dimGs {
			return o.gsBeyond(rel, t.vel, lo, hi, from, to, reach)
		}
		closing := intH + o.trackSpeed
		return math.Sqrt(rel.X*rel.X+rel.Y*rel.Y)-closing*to > reach.HorizontalM+closing*reach.HorizontalS
	case dimVs, dimAlt:
		relVx, relVy := t.vel.X-o.vel.X, t.vel.Y-o.vel.Y
		if nearestDist(rel.X, rel.Y, relVx, relVy, from, to) > reach.HorizontalM+math.Sqrt(relVx*relVx+relVy*relVy)*reach.HorizontalS {
			return true
		}
		if d == dimAlt {
			// Any altitude is a candidate.
			return false
		}
		closing := math.Abs(t.vel.Z) + max(math.Abs(lo), math.Abs(hi))
		return math.Abs(rel.Z)-closing*to > reach.VerticalM+closing*reach.VerticalS
	}
	return false
}

// beyondMask is beyondReachOf for every dimension at once, the domain of
// dimension d being [lo[d], hi[d]]: bit d is set when dimension d is
// beyond reach. The parts two dimensions share (the vertical test of
// track and ground speed, the horizontal one of vertical speed and
// altitude) are worked out once, by the same expressions.
func (o *ownship) beyondMask(lo, hi *[numDims]float64, t *test, reach detect.Reach) uint8 {
	from, to := t.fromS, t.toS
	if t.atStart {
		to = from + 1
	}
	rel := t.pos.Sub(o.pos)
	intH := math.Sqrt(t.vel.X*t.vel.X + t.vel.Y*t.vel.Y)
	var mask uint8
	relVz := t.vel.Z - o.vel.Z
	if nearestAbs(rel.Z, relVz, from, to) > reach.VerticalM+math.Abs(relVz)*reach.VerticalS {
		mask |= 1<<dimTrack | 1<<dimGs
	} else {
		closing := intH + o.trackSpeed
		if math.Sqrt(rel.X*rel.X+rel.Y*rel.Y)-closing*to > reach.HorizontalM+closing*reach.HorizontalS {
			mask |= 1 << dimTrack
		}
		if o.gsBeyond(rel, t.vel, lo[dimGs], hi[dimGs], from, to, reach) {
			mask |= 1 << dimGs
		}
	}
	relVx, relVy := t.vel.X-o.vel.X, t.vel.Y-o.vel.Y
	if nearestDist(rel.X, rel.Y, relVx, relVy, from, to) > reach.HorizontalM+math.Sqrt(relVx*relVx+relVy*relVy)*reach.HorizontalS {
		return mask | 1<<dimVs | 1<<dimAlt
	}
	closing := math.Abs(t.vel.Z) + max(math.Abs(lo[dimVs]), math.Abs(hi[dimVs]))
	if math.Abs(rel.Z)-closing*to > reach.VerticalM+closing*reach.VerticalS {
		mask |= 1 << dimVs
	}
	return mask
}

// gsBeyond is the horizontal test of beyondReachOf for the ground-speed
// candidates within [lo, hi], the intruder at rel from the ownship
// flying intVel: every horizontal relative position the candidates reach
// over [from, to] is further than reach.HorizontalM plus the fastest
// horizontal relative speed times reach.HorizontalS (and a meter of
// slack for rounding). A candidate g moves the relative position by
// t·(w − g·u), w the intruder's horizontal velocity and u the ownship's
// track: over g in [lo, hi] and t in [from, to] these displacements fill
// the convex quadrilateral of the four corners t·(w − g·u) at the ends of
// both, so the closest relative position is rel's distance to it. Along
// the track, not around the ownship: a drone off an airliner's track is
// out of reach of any of its speeds, however fast.
func (o *ownship) gsBeyond(rel, intVel detect.Vec3, lo, hi, from, to float64, reach detect.Reach) bool {
	const slackM = 1
	ax, ay := intVel.X-lo*o.ux, intVel.Y-lo*o.uy // w − lo·u
	bx, by := intVel.X-hi*o.ux, intVel.Y-hi*o.uy // w − hi·u
	fastest := math.Sqrt(max(ax*ax+ay*ay, bx*bx+by*by))
	limit := reach.HorizontalM + fastest*reach.HorizontalS + slackM
	// Across the track no ground speed moves the ownship: the distance
	// across it is the same for every candidate, and no more than the
	// distance to the quadrilateral. Most traffic is decided by it.
	if nearestAbs(o.uy*rel.X-o.ux*rel.Y, o.uy*intVel.X-o.ux*intVel.Y, from, to) > limit {
		return true
	}
	// The relative positions at the corners, in order around the
	// quadrilateral; the origin is where the two aircraft coincide.
	cx := [4]float64{rel.X + from*ax, rel.X + from*bx, rel.X + to*bx, rel.X + to*ax}
	cy := [4]float64{rel.Y + from*ay, rel.Y + from*by, rel.Y + to*by, rel.Y + to*ay}
	nearest2 := math.Inf(1)
	var pos, neg bool
	for i := range 4 {
		j := (i + 1) % 4
		ex, ey := cx[j]-cx[i], cy[j]-cy[i]
		e2 := ex*ex + ey*ey
		if e2 == 0 {
			// A corner twice (from = 0, or lo = hi): no edge.
			nearest2 = min(nearest2, cx[i]*cx[i]+cy[i]*cy[i])
			continue
		}
		// The side of the edge the origin is on, and its squared
		// distance to the edge.
		switch cross := ex*(-cy[i]) - ey*(-cx[i]); {
		case cross > 0:
			pos = true
		case cross < 0:
			neg = true
		default:
			pos, neg = true, true
		}
		u := max(0, min(1, -(cx[i]*ex+cy[i]*ey)/e2))
		px, py := cx[i]+u*ex, cy[i]+u*ey
		nearest2 = min(nearest2, px*px+py*py)
	}
	if pos != neg {
		// Strictly inside: some candidate flies through the intruder.
		return false
	}
	return nearest2 > limit*limit
}

// nearestAbs is the least |x + v·t| over t in [from, to].
func nearestAbs(x, v, from, to float64) float64 {
	a, b := x+v*from, x+v*to
	if (a <= 0) != (b <= 0) {
		return 0
	}
	return min(math.Abs(a), math.Abs(b))
}

// nearestDist is the least distance of the horizontal point
// (x, y) + (vx, vy)·t from the origin over t in [from, to].
func nearestDist(x, y, vx, vy, from, to float64) float64 {
	tc := from
	if a := vx*vx + vy*vy; a > 0 {
		tc = max(from, min(to, -(x*vx+y*vy)/a))
	}
	cx, cy := x+vx*tc, y+vy*tc
	return math.Sqrt(cx*cx + cy*cy)
}

// scratch holds the buffers a computation reuses.
type scratch struct {
	xs     []float64
	curves []detect.Curve
	// spans and gaps are a union of conflicts and the ranges it leaves
	// (recovery).
	spans, gaps []span
}

// red appends to dst the candidates of dimension d within [lo, hi] that
// conflict under t, as spans: the values between two consecutive
// boundaries share the verdict of the value midway.
func (o *ownship) red(dst []span, sc *scratch, d dim, lo, hi float64, t *test, samples int) []span {
	return o.pieces(dst, sc, d, lo, hi, t, samples, false, nil)
}

// redWithin is red testing only the pieces that meet a span of within
// (sorted, disjoint; nil: every piece): the others' verdicts are left
// out, as a caller that asks only what becomes of within wants. The
// pieces tested, and the spans they give, are red's.
func (o *ownship) redWithin(dst []span, sc *scratch, d dim, lo, hi float64, t *test, samples int, within spans) []span {
	return o.pieces(dst, sc, d, lo, hi, t, samples, false, within)
}

// anyRed reports whether some candidate of dimension d within [lo, hi]
// conflicts under t: whether red would find any, found by the same
// pieces, stopping at the first in conflict.
func (o *ownship) anyRed(sc *scratch, d dim, lo, hi float64, t *test, samples int) bool {
	var one [1]span
	return len(o.pieces(one[:0], sc, d, lo, hi, t, samples, true, nil)) > 0
}

// pieces is red, stopping at the first span in conflict when first is
// set, testing only the pieces that meet within unless it is nil.
func (o *ownship) pieces(dst []span, sc *scratch, d dim, lo, hi float64, t *test, samples int, first bool, within spans) []span {
	xs := append(sc.xs[:0], lo, hi)
	if b, ok := t.det.(detect.Bounded); ok {
		xs = o.boundaries(xs, sc, d, b, t)
	} else {
		for i := 1; i < samples; i++ {
			xs = append(xs, lo+(hi-lo)*float64(i)/float64(samples))
		}
	}
	slices.Sort(xs)
	sc.xs = xs
	start := len(dst)
	prev := lo
	k := 0 // the first span of within not before the piece
	for _, x := range xs {
		if x <= prev {
			continue
		}
		if x > hi {
			x = hi
		}
		meets := true
		if within != nil {
			for k < len(within) && within[k].hi < prev {
				k++
			}
			if k == len(within) {
				return dst
			}
			meets = within[k].lo <= x
		}
		if meets && t.conflicts(o.state(d, prev+(x-prev)/2)) {
			if n := len(dst); n > start && dst[n-1].hi == prev {
				dst[n-1].hi = x
			} else {
				dst = append(dst, span{prev, x})
			}
			if first {
				return dst
			}
		}
		prev = x
		if x == hi {
			break
		}
	}
	return dst
}

// boundaries appends the candidates of dimension d at which the verdict of
// t may change, from what the detector names in the relative frame.
func (o *ownship) boundaries(xs []float64, sc *scratch, d dim, b detect.Bounded, t *test) []float64 {
	relPos, relVel := t.pos.Sub(o.pos), t.vel.Sub(o.vel)
	from, to := t.fromS, t.toS
	if t.atStart {
		to = from + 1
	}
	switch d {
	case dimTrack, dimGs:
		sc.curves = b.HorizontalBoundaries(sc.curves[:0], relPos, relVel.Z, from, to)
		for _, c := range sc.curves {
			if d == dimTrack {
				xs = o.onTrackCircle(xs, c, t.vel)
			} else {
				xs = o.onGsLine(xs, c, t.vel)
			}
		}
	case dimVs:
		n := len(xs)
		xs = b.VerticalSpeedBoundaries(xs, relPos, relVel, from, to)
		// Relative vertical speed = intruder's − ownship's.
		for i := n; i < len(xs); i++ {
			xs[i] = t.vel.Z - xs[i]
		}
	case dimAlt:
		relVel.Z = t.vel.Z // the ownship flies level
		n := len(xs)
		xs = b.AltitudeBoundaries(xs, relPos, relVel, from, to)
		for i := n; i < len(xs); i++ {
			xs[i] = t.pos.Z - xs[i]
		}
	}
	return xs
}

// onTrackCircle appends the track angles (radians in [0, 2π)) at which
// the relative velocity w − g·(sin θ, cos θ) lies on the curve c, w being
// the intruder's horizontal velocity and g the track speed. On the curve
// A|v|² + B·v + C = 0 this is P·(sin θ, cos θ) = K with
// P = g(2A·w + B) and K = A(|w|² + g²) + B·w + C, so
// θ = φ ± acos(K/|P|) with φ = atan2(Px, Py). A curve the circle only
// touches (|K| ≈ |P|) gives its point of contact.
func (o *ownship) onTrackCircle(xs []float64, c detect.Curve, intVel detect.Vec3) []float64 {
	g := o.trackSpeed
	wx, wy := intVel.X, intVel.Y
	px, py := g*(2*c.A*wx+c.BX), g*(2*c.A*wy+c.BY)
	k := c.A*(wx*wx+wy*wy+g*g) + c.BX*wx + c.BY*wy + c.C
	p := math.Hypot(px, py)
	if p == 0 {
		return xs
	}
	ratio := k / p
	if math.Abs(ratio) > 1+1e-9 {
		return xs
	}
	ratio = max(-1, min(1, ratio))
	phi := math.Atan2(px, py)
	a := math.Acos(ratio)
	return append(xs, wrapAngle(phi+a), wrapAngle(phi-a))
}

// onGsLine appends the ground speeds g at which the relative velocity
// w − g·u lies on c: A·g² − (2A·w·u + B·u)·g + A|w|² + B·w + C = 0. A
// curve the line only touches gives its point of contact.
func (o *ownship) onGsLine(xs []float64, c detect.Curve, intVel detect.Vec3) []float64 {
	wx, wy := intVel.X, intVel.Y
	wu := wx*o.ux + wy*o.uy
	bu := c.BX*o.ux + c.BY*o.uy
	qa := c.A
	qb := -(2*c.A*wu + bu)
	qc := c.A*(wx*wx+wy*wy) + c.BX*wx + c.BY*wy + c.C
	if qa == 0 {
		if qb != 0 {
			xs = append(xs, -qc/qb)
		}
		return xs
	}
	disc := qb*qb - 4*qa*qc
	vertex := -qb / (2 * qa)
	if disc < 0 {
		if disc > -1e-9*qb*qb {
			xs = append(xs, vertex)
		}
		return xs
	}
	sq := math.Sqrt(disc)
	return append(xs, (-qb-sq)/(2*qa), (-qb+sq)/(2*qa), vertex)
}

// wrapAngle reduces an angle in radians to [0, 2π).
func wrapAngle(a float64) float64 {
	a = math.Mod(a, 2*math.Pi)
	if a < 0 {
		a += 2 * math.Pi
	}
	if a >= 2*math.Pi {
		a = 0
	}
	return a
}
