package detect

import "math"

// Detector is one definition of a loss of separation between two aircraft
// flying straight lines, as DAIDALUS has Detection3D with CD3D (the
// cylinder) and WCV_TAUMOD (DO-365 well clear) behind it. Implementations
// are small comparable values (Cylinder, WCV) that document their exact
// definition and the DAIDALUS function they equal.
//
// Positions are meters and velocities m/s in one local flat frame (x east,
// y north, z up). Relative quantities are intruder minus ownship; every
// detector depends only on the relative motion and is unchanged when both
// signs flip, so swapping the aircraft gives the same result.
type Detector interface {
	// Detect predicts the pair over [0, lookaheadS]: its loss of
	// separation and its (horizontal) closest approach. lookaheadS must
	// not be negative.
	Detect(ownPos, ownVel, intPos, intVel Vec3, lookaheadS float64) PairResult
	// Loss is the loss of separation alone of the relative motion
	// relPos + relVel·t within the window [fromS, toS] (DAIDALUS's
	// conflictDetection over [B, T]): the call a bands computation makes
	// for each of many candidate velocities, with the relative position
	// computed once and no closest approach to pay for. Detect's Loss is
	// Loss(intPos−ownPos, intVel−ownVel, 0, lookaheadS).
	Loss(relPos, relVel Vec3, fromS, toS float64) Loss
	// Reach bounds where a loss can be. The whole-airspace index and its
	// prune are sized by it.
	Reach() Reach
}

// Reach bounds the relative position of two aircraft at an instant of loss
// of separation, in the pair's frame: the horizontal distance is within
// HorizontalM + |relVel_h|·HorizontalS and the vertical within
// VerticalM + |relVel_z|·VerticalS (up to the rounding of the tolerances a
// detector applies, far below a millimeter).
type Reach struct {
	HorizontalM, VerticalM float64
	HorizontalS, VerticalS float64
}

// Union is the smallest reach that holds both.
func (r Reach) Union(o Reach) Reach {
	return Reach{max(r.HorizontalM, o.HorizontalM), max(r.VerticalM, o.VerticalM), max(r.HorizontalS, o.HorizontalS), max(r.VerticalS, o.VerticalS)}
}

var (
	_ Detector = Cylinder{}
	_ Detector = WCV{}
)

// Sub returns a − b.
func (a Vec3) Sub(b Vec3) Vec3 { return Vec3{a.X - b.X, a.Y - b.Y, a.Z - b.Z} }

// closestApproach is the horizontal closest approach of the relative
// motion r + v·t within [0, lookaheadS]: its time (0 when the horizontal
// relative velocity is zero) and the horizontal and vertical distances
// then. Pair computes the same, fused with its interval.
func closestApproach(r, v Vec3, lookaheadS float64) (tcpaS, dhM, dvM float64) {
	if a := v.X*v.X + v.Y*v.Y; a > 0 {
		invA := 1 / a
		tcpaS = clamp(-(r.X*v.X+r.Y*v.Y)*invA, 0, lookaheadS)
	}
	hx, hy := r.X+v.X*tcpaS, r.Y+v.Y*tcpaS
	return tcpaS, math.Sqrt(hx*hx + hy*hy), math.Abs(r.Z + v.Z*tcpaS)
}
