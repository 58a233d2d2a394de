// Package detect owns tactical conflict detection: the detectors of one
// pair of aircraft flying straight lines, interchangeable behind Detector
// (the separation cylinder, Pair, and DO-365 well clear, WCV, each stating
// the DAIDALUS function it equals), the DO-365B alerter that grades a pair
// by levels, and, built on the pair math, the whole-airspace detection
// cycle.
package detect

import (
	"math"

	"github.com/deconflict/deconflict/internal/geo"
)

// Vec3 is a vector in a local flat frame: X east, Y north, Z up. It holds
// positions in meters or velocities in m/s, depending on the argument.
type Vec3 struct{ X, Y, Z float64 }

// Cylinder is the separation minimum around an aircraft: a conflict is a
// horizontal distance below HorizontalM and, at the same time, a vertical
// distance below VerticalM.
type Cylinder struct{ HorizontalM, VerticalM float64 }

// Loss is a loss of separation predicted within a time window (DAIDALUS's
// LossData): Conflict says whether there is one, TInS and TOutS bound it,
// clipped to the window; both are zero when there is none.
type Loss struct {
	Conflict    bool
	TInS, TOutS float64
}

// PairResult is the linear prediction for one pair over [0, lookahead]: the
// loss of separation of its detector and the closest approach, which is
// the same horizontal geometry whatever the detector.
type PairResult struct {
	// Loss: for the cylinder, Conflict is true when some t in
	// [0, lookahead] has horizontal distance < HorizontalM and vertical
	// distance < VerticalM (both strict); other detectors document theirs.
	Loss
	// TCPAS is the time of horizontal closest approach clamped to
	// [0, lookahead]; 0 when the relative horizontal velocity is zero.
	TCPAS float64
	// DHCPAM and DVCPAM are the horizontal and vertical distances at TCPAS.
	DHCPAM, DVCPAM float64
}

// Pair predicts, by straight-line extrapolation, whether the ownship and the
// intruder lose separation sep within [0, lookaheadS] seconds, and when.
// Positions are in meters and velocities in m/s in the same local frame;
// lookaheadS must not be negative. It is Cylinder.Detect, in closed form
// and without allocation.
//
// The loss is the intersection of three intervals of time: the open
// interval of vertical loss (verticalLoss), the open interval of
// horizontal loss (horizontalLoss) and the closed window [0, lookaheadS].
//
// It equals DAIDALUS's CD3D::detection (CD3D.cpp, the cylinder of
// CDCylinder) with B = 0 and T = lookaheadS, in the relative frame of
// intruder minus ownship (DAIDALUS takes ownship minus intruder; only
// products of two relative quantities enter, so the sign cancels
// exactly), and differs where DAIDALUS rounds on purpose:
//   - both loss intervals are open and the tests exact: a pair that only
//     touches the cylinder (passing at exactly D, or exactly H apart, or
//     whose horizontal and vertical intervals only share an end) is no
//     conflict. DAIDALUS compares with ULP tolerances (Util::almost_equals,
//     16348 ULPs): its case "horizontal velocities almost equal" is here
//     a == 0 exactly, its tangency test Δ > 0 is disc > 0, and its final
//     almost_less(t_in, t_out) is lo < hi;
//   - the quadratic is solved with the cancellation-free pair of roots
//     (q/a, c/q), where DAIDALUS's Horizontal::Theta_D uses
//     (−b ± √Δ)/a: the two agree to rounding;
//   - DAIDALUS reports "no conflict" as the interval (T+1, B); Pair as
//     Conflict false with zero times;
//   - the closest approach is the horizontal one (Horizontal::tcpa,
//     clamped to the window), not CD3D's cylindrical tccpa.
//
// The result is symmetric: swapping ownship and intruder gives the same
// numbers, since only the relative motion enters.
func Pair(ownPos, ownVel, intPos, intVel Vec3, sep Cylinder, lookaheadS float64) PairResult {
	rx, ry, rz := intPos.X-ownPos.X, intPos.Y-ownPos.Y, intPos.Z-ownPos.Z
	vx, vy, vz := intVel.X-ownVel.X, intVel.Y-ownVel.Y, intVel.Z-ownVel.Z

	var res PairResult
	a := vx*vx + vy*vy
	rv := rx*vx + ry*vy
	// Divisions dominate the cost: divide once, multiply after.
	var invA float64
	if a > 0 {
		invA = 1 / a
		res.TCPAS = clamp(-rv*invA, 0, lookaheadS)
	}
	hx, hy := rx+vx*res.TCPAS, ry+vy*res.TCPAS
	res.DHCPAM = math.Sqrt(hx*hx + hy*hy)
	res.DVCPAM = math.Abs(rz + vz*res.TCPAS)

	// The vertical interval is cheaper, so it goes first and may end the
	// work early.
	lo, hi := verticalLoss(rz, vz, sep.VerticalM)
	if !overlaps(lo, hi, 0, lookaheadS) {
		return res
	}
	hlo, hhi := horizontalLoss(rx*rx+ry*ry-sep.HorizontalM*sep.HorizontalM, rv, a, invA)
	lo, hi = max(lo, hlo), min(hi, hhi)
	if !overlaps(lo, hi, 0, lookaheadS) {
		return res
	}
	res.Conflict, res.TInS, res.TOutS = true, max(lo, 0), min(hi, lookaheadS)
	return res
}

// Detect is Pair with this cylinder: the Detector method.
func (c Cylinder) Detect(ownPos, ownVel, intPos, intVel Vec3, lookaheadS float64) PairResult {
	return Pair(ownPos, ownVel, intPos, intVel, c, lookaheadS)
}

// Loss is the interval of Pair alone, of the relative motion over
// [fromS, toS]: the Detector method a bands computation calls for each
// candidate velocity, with no closest approach to pay for.
func (c Cylinder) Loss(relPos, relVel Vec3, fromS, toS float64) Loss {
	lo, hi := verticalLoss(relPos.Z, relVel.Z, c.VerticalM)
	if !overlaps(lo, hi, fromS, toS) {
		return Loss{}
	}
	a := relVel.X*relVel.X + relVel.Y*relVel.Y
	var invA float64
	if a > 0 {
		invA = 1 / a
	}
	d := c.HorizontalM
	hlo, hhi := horizontalLoss(relPos.X*relPos.X+relPos.Y*relPos.Y-d*d, relPos.X*relVel.X+relPos.Y*relVel.Y, a, invA)
	return clip(max(lo, hlo), min(hi, hhi), fromS, toS)
}

// Reach is the cylinder itself, at any speed: a loss needs the horizontal
// distance below HorizontalM and the vertical below VerticalM at the same
// instant.
func (c Cylinder) Reach() Reach { return Reach{HorizontalM: c.HorizontalM, VerticalM: c.VerticalM} }

// verticalLoss is the open interval (lo, hi) of the times t at which
// |rz + vz·t| < h: the vertical loss of the cylinder (DAIDALUS's
// Vertical::Theta_H at ε = −1 and +1). It is all of time when vz = 0 and
// |rz| < h, and empty (lo >= hi) when vz = 0 otherwise.
func verticalLoss(rz, vz, h float64) (lo, hi float64) {
	if vz == 0 {
		if rz < h && -rz < h {
			return -math.MaxFloat64, math.MaxFloat64
		}
		return 0, 0
	}
	inv := 1 / vz
	lo, hi = (-h-rz)*inv, (h-rz)*inv
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// horizontalLoss is the open interval (lo, hi) of the times t at which the
// horizontal relative position r + v·t is closer than d: between the roots
// of a·t² + 2·rv·t + c = 0, with a = |v|², invA = 1/a (any value when
// a = 0), rv = r·v and c = |r|² − d² (DAIDALUS's Horizontal::Theta_D at
// ε = −1 and +1). It is all of time when a = 0 and |r| < d, and empty
// (lo >= hi) when the distance never goes below d: touching at tangency is
// no loss.
func horizontalLoss(c, rv, a, invA float64) (lo, hi float64) {
	if a == 0 {
		if c < 0 {
			return -math.MaxFloat64, math.MaxFloat64
		}
		return 0, 0
	}
	// A quarter of the discriminant.
	disc := rv*rv - a*c
	if !(disc > 0) {
		return 0, 0
	}
	// Stable roots: q = -(b/2 + sign(b) sqrt(disc/4)) gives q/a and c/q,
	// neither computed by subtracting nearly equal numbers. The sign test
	// treats -0 as +0, so that swapping the aircraft (which may flip the
	// sign of a zero rv) takes the same branch.
	sq := math.Sqrt(disc)
	q := -(rv + sq)
	if rv < 0 {
		q = sq - rv
	}
	lo, hi = q*invA, c/q
	if lo > hi {
		return hi, lo
	}
	return lo, hi
}

// overlaps reports whether the open interval (lo, hi) shares a point with
// the closed window [fromS, toS].
func overlaps(lo, hi, fromS, toS float64) bool {
	return lo < hi && lo < toS && hi > fromS && fromS <= toS
}

// clip is the loss of the open interval (lo, hi) within the closed window
// [fromS, toS].
func clip(lo, hi, fromS, toS float64) Loss {
	if !overlaps(lo, hi, fromS, toS) {
		return Loss{}
	}
	return Loss{Conflict: true, TInS: max(lo, fromS), TOutS: min(hi, toS)}
}

// PairGeodetic is Pair for aircraft given in WGS84: both are projected into
// the east-north-up frame of the ownship, and the intruder's velocity
// (east, north, up in m/s at its own position) is rotated into that frame.
// "Horizontal" and "vertical" are then those of the ownship's tangent plane,
// so the result depends slightly on which aircraft is the ownship; for a
// symmetric result, project both into the frame at their midpoint and call
// Pair directly.
func PairGeodetic(own geo.LLA, ownVel geo.ENU, intruder geo.LLA, intVel geo.ENU, sep Cylinder, lookaheadS float64) PairResult {
	f := geo.NewFrame(own)
	ip := f.ToENU(intruder)
	iv := f.VelocityFrom(intruder, intVel)
	return Pair(Vec3{},
		Vec3{ownVel.EastM, ownVel.NorthM, ownVel.UpM},
		Vec3{ip.EastM, ip.NorthM, ip.UpM},
		Vec3{iv.EastM, iv.NorthM, iv.UpM},
		sep, lookaheadS)
}

// clamp returns lo for -0 and NaN too, so that no "-0.000000" is printed.
func clamp(x, lo, hi float64) float64 {
	if x > hi {
		return hi
	}
	if x > lo {
		return x
	}
	return lo
}
