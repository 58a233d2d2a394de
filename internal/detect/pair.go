// Package detect owns tactical conflict detection: the exact closed-form
// prediction for one pair of aircraft (Pair) and, built on it, the
// whole-airspace detection cycle.
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

// PairResult is the linear prediction for one pair over [0, lookahead].
type PairResult struct {
	// Conflict is true when some t in [0, lookahead] has horizontal distance
	// < HorizontalM and vertical distance < VerticalM (both strict).
	Conflict bool
	// TInS and TOutS bound the conflict interval clipped to [0, lookahead];
	// both are zero when there is no conflict.
	TInS, TOutS float64
	// TCPAS is the time of horizontal closest approach clamped to
	// [0, lookahead]; 0 when the relative horizontal velocity is zero.
	TCPAS float64
	// DHCPAM and DVCPAM are the horizontal and vertical distances at TCPAS.
	DHCPAM, DVCPAM float64
}

// Pair predicts, by straight-line extrapolation, whether the ownship and the
// intruder lose separation sep within [0, lookaheadS] seconds, and when.
// Positions are in meters and velocities in m/s in the same local frame;
// lookaheadS must not be negative.
//
// The result is symmetric: swapping ownship and intruder gives the same
// numbers, since only the relative motion enters. It is computed in closed
// form without allocation.
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

	// The conflict is the intersection of the open interval (lo, hi) of
	// vertical loss |rz + vz t| < H, the open interval of horizontal loss
	// |r + v t| < D, and the closed [0, lookahead]. The vertical one is
	// cheaper, so it goes first and may end the work early.
	lo, hi := math.Inf(-1), math.Inf(1)
	h := sep.VerticalM
	if vz == 0 {
		if !(math.Abs(rz) < h) {
			return res
		}
	} else {
		inv := 1 / vz
		lo, hi = (-h-rz)*inv, (h-rz)*inv
		if lo > hi {
			lo, hi = hi, lo
		}
		if !(lo < hi && lo < lookaheadS && hi > 0) {
			return res
		}
	}

	// Horizontal: a t^2 + 2 rv t + c < 0.
	c := rx*rx + ry*ry - sep.HorizontalM*sep.HorizontalM
	if a == 0 {
		if !(c < 0) {
			return res
		}
	} else {
		// A quarter of the discriminant; not positive means the distance
		// never goes below D (touching at tangency is no conflict).
		disc := rv*rv - a*c
		if !(disc > 0) {
			return res
		}
		// Stable roots: q = -(b/2 + sign(b) sqrt(disc/4)) gives q/a and
		// c/q, neither computed by subtracting nearly equal numbers.
		// The sign test treats -0 as +0, so that swapping the aircraft
		// (which may flip the sign of a zero rv) takes the same branch.
		sq := math.Sqrt(disc)
		q := -(rv + sq)
		if rv < 0 {
			q = sq - rv
		}
		t1, t2 := q*invA, c/q
		if t1 > t2 {
			t1, t2 = t2, t1
		}
		lo, hi = max(lo, t1), min(hi, t2)
	}
	if !(lo < hi && lo < lookaheadS && hi > 0) || lookaheadS < 0 {
		return res
	}
	res.Conflict = true
	res.TInS = max(lo, 0)
	res.TOutS = min(hi, lookaheadS)
	return res
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
