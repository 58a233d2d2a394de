package detect

import "math"

// A bands computation (package resolve) asks, for one intruder and many
// manoeuvres of the ownship, which manoeuvres lead to a loss of
// separation. Each dimension of manoeuvre is a one-parameter family of
// relative motions in which only one part changes: the horizontal
// relative velocity (a new track or ground speed), the vertical relative
// velocity (a new vertical speed) or the vertical relative position (a new
// altitude). Bounded detectors name, for each family, a finite set of
// boundaries such that whether Loss finds a conflict is the same all along
// each piece between two of them: the bands are then exact by testing one
// point per piece, however thin a conflicting range is.

// Curve is the curve A·|v|² + BX·vx + BY·vy + C = 0 in the plane of
// horizontal relative velocities (m/s): a circle when A ≠ 0, a line when
// A = 0.
type Curve struct{ A, BX, BY, C float64 }

// Bounded is a Detector that names the boundaries of its conflicts in the
// families a bands computation walks. Each method appends to dst and
// returns it; relPos and relVel are intruder minus ownship, and the window
// is the one Loss would be called with. Boundaries may be listed more than
// once or be superfluous (the conflict is the same on both sides): a
// caller tests each piece.
type Bounded interface {
	Detector
	// HorizontalBoundaries: relPos and relVel.Z fixed, the horizontal
	// relative velocity (relVel.X, relVel.Y) free. Outside these curves
	// the conflict is the same within each connected region.
	HorizontalBoundaries(dst []Curve, relPos Vec3, relVelZ, fromS, toS float64) []Curve
	// VerticalSpeedBoundaries: relPos and the horizontal relative
	// velocity fixed, the vertical relative velocity free: the values of
	// relVel.Z at which the conflict may change.
	VerticalSpeedBoundaries(dst []float64, relPos, relVel Vec3, fromS, toS float64) []float64
	// AltitudeBoundaries: the horizontal relative position and relVel
	// fixed, the vertical relative position free: the values of relPos.Z
	// at which the conflict may change.
	AltitudeBoundaries(dst []float64, relPos, relVel Vec3, fromS, toS float64) []float64
}

var (
	_ Bounded = Cylinder{}
	_ Bounded = WCV{}
)

// circleAt is the curve |s + t·v| = d of the horizontal velocities v whose
// path is at distance d at time t: t²|v|² + 2t·s·v + |s|² − d² = 0.
func circleAt(sx, sy, t, d float64) Curve {
	return Curve{A: t * t, BX: 2 * t * sx, BY: 2 * t * sy, C: sx*sx + sy*sy - d*d}
}

// tangentLines appends the two lines through the origin of the velocities
// whose straight path from s passes at exactly d from the origin (the
// horizontal miss distance is d: (s×v)² = d²|v|²); none when |s| ≤ d,
// where every path passes within d.
func tangentLines(dst []Curve, sx, sy, d float64) []Curve {
	r := math.Hypot(sx, sy)
	if !(r > d) {
		return dst
	}
	beta := math.Asin(d / r)
	psi := math.Atan2(sy, sx)
	for _, phi := range []float64{psi + beta, psi - beta} {
		// The line of direction (cos φ, sin φ); its normal is B.
		dst = append(dst, Curve{BX: -math.Sin(phi), BY: math.Cos(phi)})
	}
	return dst
}

// HorizontalBoundaries of the cylinder: within the window of vertical loss
// [lo, up] the path s + t·v meets the open disk of radius HorizontalM for
// the velocities inside the convex hull of the two disks of the velocities
// that reach it at lo and at up; its boundary lies on the two circles
// |s + lo·v| = D and |s + up·v| = D and on the two lines through the
// origin tangent to both (the paths passing at exactly D).
func (c Cylinder) HorizontalBoundaries(dst []Curve, relPos Vec3, relVelZ, fromS, toS float64) []Curve {
	zl, zh := verticalLoss(relPos.Z, relVelZ, c.VerticalM)
	if !overlaps(zl, zh, fromS, toS) {
		return dst
	}
	lo, up := max(zl, fromS), min(zh, toS)
	for _, t := range []float64{lo, up} {
		if t != 0 {
			dst = append(dst, circleAt(relPos.X, relPos.Y, t, c.HorizontalM))
		}
	}
	return tangentLines(dst, relPos.X, relPos.Y, c.HorizontalM)
}

// VerticalSpeedBoundaries of the cylinder: within the window of horizontal
// loss (lo, up) the vertical distance |sz + t·vz| goes below VerticalM for
// an interval of vz whose ends are where it is exactly VerticalM at lo or
// at up; vz = 0 is where the vertical interval becomes all of time.
func (c Cylinder) VerticalSpeedBoundaries(dst []float64, relPos, relVel Vec3, fromS, toS float64) []float64 {
	lo, up, ok := c.horizontalWindow(relPos, relVel, fromS, toS)
	if !ok {
		return dst
	}
	dst = append(dst, 0)
	for _, t := range []float64{lo, up} {
		if t != 0 {
			dst = append(dst, (c.VerticalM-relPos.Z)/t, (-c.VerticalM-relPos.Z)/t)
		}
	}
	return dst
}

// AltitudeBoundaries of the cylinder: the relative altitudes at which the
// vertical distance is exactly VerticalM at either end of the window of
// horizontal loss.
func (c Cylinder) AltitudeBoundaries(dst []float64, relPos, relVel Vec3, fromS, toS float64) []float64 {
	lo, up, ok := c.horizontalWindow(relPos, relVel, fromS, toS)
	if !ok {
		return dst
	}
	for _, t := range []float64{lo, up} {
		dst = append(dst, c.VerticalM-t*relVel.Z, -c.VerticalM-t*relVel.Z)
	}
	return dst
}

// horizontalWindow is the part of the window [fromS, toS] in which the
// horizontal distance is below HorizontalM: ok when it meets the open
// interval of horizontal loss (a window of one instant included).
func (c Cylinder) horizontalWindow(relPos, relVel Vec3, fromS, toS float64) (lo, up float64, ok bool) {
	a := relVel.X*relVel.X + relVel.Y*relVel.Y
	var invA float64
	if a > 0 {
		invA = 1 / a
	}
	d := c.HorizontalM
	hlo, hhi := horizontalLoss(relPos.X*relPos.X+relPos.Y*relPos.Y-d*d, relPos.X*relVel.X+relPos.Y*relVel.Y, a, invA)
	lo, up = max(hlo, fromS), min(hhi, toS)
	return lo, up, overlaps(hlo, hhi, fromS, toS)
}

// HorizontalBoundaries of well clear: within the vertical window [lo, up]
// (which does not depend on the horizontal velocity) the horizontal test
// holds on [tau entry, exit of the DTHR circle] of the path, where the
// tau entry is the first instant with tau_mod = TTHR, provided the path
// passes within DTHR. Each case of horizontalInterval changes where one of
// these is zero: the path is within DTHR at lo or at up (circles), the
// relative motion is closing at lo or at up (s(t)·v = 0, circles through
// the origin), tau_mod is TTHR at lo or at up (circles: with
// s(t) = s + t·v, |s(t)|² + TTHR·s(t)·v = DTHR² is
// (t² + TTHR·t)|v|² + (2t + TTHR)·s·v + |s|² − DTHR² = 0), the miss
// distance is DTHR (the tangent lines), and the relative speed is almost
// zero (a small circle).
func (w WCV) HorizontalBoundaries(dst []Curve, relPos Vec3, relVelZ, fromS, toS float64) []Curve {
	lo, up, ok := w.verticalWindow(relPos.Z, relVelZ, fromS, toS)
	if !ok || almostEquals(lo, up) {
		// No window, or one instant long: never a conflict (the interval
		// would have almost equal ends).
		return dst
	}
	sx, sy, d := relPos.X, relPos.Y, w.DTHRM
	for _, t := range []float64{lo, up} {
		if t != 0 {
			dst = append(dst, circleAt(sx, sy, t, d))
		}
		dst = append(dst,
			Curve{A: t, BX: sx, BY: sy},
			Curve{A: t*t + w.TTHRS*t, BX: (2*t + w.TTHRS) * sx, BY: (2*t + w.TTHRS) * sy, C: sx*sx + sy*sy - d*d})
	}
	dst = append(dst, Curve{A: 1, C: -almostZero})
	return tangentLines(dst, sx, sy, d)
}

// VerticalSpeedBoundaries of well clear: the horizontal test holds on a
// fixed interval [h1, h2] of time; the vertical window is entered at
// −sign(vz)·max(ZTHR, |vz|·TCOA) and left at sign(vz)·ZTHR of relative
// altitude. The conflict can change where either end of the vertical
// window meets h1, h2 or the ends of the window asked for, where vz
// changes sign or is almost zero, and where |vz|·TCOA = ZTHR.
func (w WCV) VerticalSpeedBoundaries(dst []float64, relPos, relVel Vec3, fromS, toS float64) []float64 {
	h1, h2, ok := w.horizontalTimes(relPos, relVel, fromS, toS)
	if !ok {
		return dst
	}
	z, sz := w.ZTHRM, relPos.Z
	dst = append(dst, 0, almostZero, -almostZero)
	if w.TCOAS > 0 {
		dst = append(dst, z/w.TCOAS, -z/w.TCOAS)
	}
	for _, c := range []float64{h1, h2, fromS, toS} {
		if c != 0 {
			dst = append(dst, (z-sz)/c, (-z-sz)/c)
		}
		if c+w.TCOAS != 0 {
			dst = append(dst, -sz/(c+w.TCOAS))
		}
	}
	return dst
}

// AltitudeBoundaries of well clear: the relative altitudes at which the
// vertical window starts or ends at h1, h2 or the ends of the window asked
// for, and those at which the vertical test holds at an instant.
func (w WCV) AltitudeBoundaries(dst []float64, relPos, relVel Vec3, fromS, toS float64) []float64 {
	h1, h2, ok := w.horizontalTimes(relPos, relVel, fromS, toS)
	if !ok {
		return dst
	}
	z, vz := w.ZTHRM, relVel.Z
	h := max(z, math.Abs(vz)*w.TCOAS)
	dst = append(dst, z, -z, h, -h)
	if almostEquals(vz, 0) {
		return dst
	}
	for _, c := range []float64{h1, h2, fromS, toS} {
		dst = append(dst, -sign(vz)*h-c*vz, sign(vz)*z-c*vz)
	}
	return dst
}

// horizontalTimes is the interval of the horizontal test within
// [fromS, toS], ok false when it is empty.
func (w WCV) horizontalTimes(relPos, relVel Vec3, fromS, toS float64) (h1, h2 float64, ok bool) {
	if !(fromS < toS) {
		return 0, 0, false
	}
	sx, sy := fromS*relVel.X+relPos.X, fromS*relVel.Y+relPos.Y
	in, out := w.horizontalInterval(sx, sy, relVel.X, relVel.Y, toS-fromS)
	if in > out {
		return 0, 0, false
	}
	return in + fromS, out + fromS, true
}

// AlmostEquals is DAIDALUS's Util::almost_equals at PRECISION13, the
// tolerance of the well-clear logic, for the callers that must decide as
// DAIDALUS does around it (the recovery search of package resolve).
func AlmostEquals(a, b float64) bool { return almostEquals(a, b) }
