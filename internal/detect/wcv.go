package detect

import (
	"math"

	"github.com/deconflict/deconflict/internal/geo"
)

// WCV is the well-clear volume of RTCA DO-365 between an unmanned and
// another aircraft: DAIDALUS's WCV_TAUMOD (horizontal test with the
// modified tau) with the vertical test of WCV_TCOA (time to co-altitude).
// Distances are meters, times seconds.
//
// At an instant, with relative horizontal position s and velocity v and
// relative vertical position sz and velocity vz (Violation, DAIDALUS's
// WCV_tvar::violation), well clear is violated when both tests hold:
//   - horizontal (WCV_tvar::horizontal_WCV): |s| ≤ DTHR, or
//     dcpa ≤ DTHR and 0 ≤ tau_mod ≤ TTHR, where dcpa = |s + tcpa·v| with
//     tcpa = −(s·v)/|v|² (undefined, so the test fails, when v = 0) and
//     tau_mod = (DTHR² − |s|²)/(s·v) while closing (s·v < 0), −1
//     otherwise (WCV_TAUMOD::horizontal_tvar). DTHR is also the
//     horizontal miss-distance threshold;
//   - vertical (WCV_TCOA::vertical_WCV): |sz| ≤ ZTHR, or vz ≠ 0,
//     sz·vz ≤ 0 and tcoa = −sz/vz ≤ TCOA (closing to co-altitude within
//     TCOA).
//
// Over a window (Loss, DAIDALUS's WCV_tvar::WCV_interval) the violation
// is the interval [t_in, t_out] of the instants at which it holds, clipped
// to the window, computed in closed form exactly as DAIDALUS does (the
// vertical window of WCV_TCOA::vertical_WCV_interval, then the horizontal
// interval of WCV_TAUMOD::horizontal_WCV_interval within it), with
// DAIDALUS's tolerances (almostEquals) in the same places, so that only
// answers decided by the last bit of an input can differ, and one on
// purpose: a pair outside DTHR whose relative horizontal speed squares
// to zero never closes in, where DAIDALUS's roots divide by zero. A conflict
// exists when t_in is almost less than t_out (LossData): an interval of
// (almost) zero length is none.
type WCV struct {
	// DTHRM is the horizontal distance threshold, meters.
	DTHRM float64
	// ZTHRM is the vertical distance threshold, meters.
	ZTHRM float64
	// TTHRS is the modified-tau threshold, seconds.
	TTHRS float64
	// TCOAS is the time-to-co-altitude threshold, seconds.
	TCOAS float64
}

// DO365PhaseICorrective is the DO-365B Phase I well clear of the
// corrective and warning alert levels (DAIDALUS's DWC_Phase_I, levels 2
// and 3): DTHR 0.66 NM, ZTHR 450 ft, TTHR 35 s, TCOA 0 s.
func DO365PhaseICorrective() WCV {
	return WCV{DTHRM: geo.NMToM(0.66), ZTHRM: geo.FeetToM(450), TTHRS: 35, TCOAS: 0}
}

// DO365PhaseIPreventive is the well clear of the preventive level (level
// 1): the corrective one with ZTHR 700 ft.
func DO365PhaseIPreventive() WCV {
	w := DO365PhaseICorrective()
	w.ZTHRM = geo.FeetToM(700)
	return w
}

// Detect predicts the pair over [0, lookaheadS]: the violation interval of
// Loss and the horizontal closest approach, as Pair reports it.
func (w WCV) Detect(ownPos, ownVel, intPos, intVel Vec3, lookaheadS float64) PairResult {
	r, v := intPos.Sub(ownPos), intVel.Sub(ownVel)
	var res PairResult
	res.Loss = w.Loss(r, v, 0, lookaheadS)
	res.TCPAS, res.DHCPAM, res.DVCPAM = closestApproach(r, v, lookaheadS)
	return res
}

// Loss is the violation interval within [fromS, toS] (WCV_tvar::WCV_interval
// with B = fromS, T = toS).
func (w WCV) Loss(relPos, relVel Vec3, fromS, toS float64) Loss {
	lo, up, ok := w.verticalWindow(relPos.Z, relVel.Z, fromS, toS)
	if !ok {
		return Loss{}
	}
	// The horizontal state at the start of the vertical window.
	sx, sy := lo*relVel.X+relPos.X, lo*relVel.Y+relPos.Y
	var tIn, tOut float64
	if almostEquals(lo, up) {
		if !w.horizontalViolation(sx, sy, relVel.X, relVel.Y) {
			return Loss{}
		}
		tIn, tOut = lo, up
	} else {
		hIn, hOut := w.horizontalInterval(sx, sy, relVel.X, relVel.Y, up-lo)
		tIn, tOut = hIn+lo, hOut+lo
	}
	if !almostLess(tIn, tOut) {
		return Loss{}
	}
	return Loss{Conflict: true, TInS: tIn, TOutS: tOut}
}

// Reach is DTHR plus TTHR seconds of relative horizontal motion, and ZTHR
// plus TCOA seconds of relative vertical motion. In a violation the
// horizontal distance is at most DTHR + |v|·TTHR: within DTHR, or closing
// with dcpa ≤ DTHR, where the path enters the DTHR circle after
// c/(b + √(b² − a·c)) ≤ c/b = tau_mod ≤ TTHR seconds (with a = |v|²,
// b = −s·v > 0, c = |s|² − DTHR² > 0, b² ≥ a·c because dcpa ≤ DTHR). The
// vertical distance is at most max(ZTHR, |vz|·TCOA). DAIDALUS's
// tolerances widen this by the motion over a lookahead at a speed it takes
// for zero (below 3.2e-7 m/s): about a millimeter.
func (w WCV) Reach() Reach {
	return Reach{HorizontalM: w.DTHRM, VerticalM: w.ZTHRM, HorizontalS: w.TTHRS, VerticalS: w.TCOAS}
}

// Violation is the test at an instant (WCV_tvar::violation): true when
// the relative state violates well clear now.
func (w WCV) Violation(relPos, relVel Vec3) bool {
	return w.horizontalViolation(relPos.X, relPos.Y, relVel.X, relVel.Y) && w.verticalViolation(relPos.Z, relVel.Z)
}

// horizontalViolation is WCV_tvar::horizontal_WCV with the modified tau of
// WCV_TAUMOD::horizontal_tvar.
func (w WCV) horizontalViolation(sx, sy, vx, vy float64) bool {
	if math.Sqrt(sx*sx+sy*sy) <= w.DTHRM {
		return true
	}
	// NaN when v = 0: the comparison fails, as in DAIDALUS.
	tcpa := -(sx*vx + sy*vy) / (vx*vx + vy*vy)
	cx, cy := sx+tcpa*vx, sy+tcpa*vy
	if !(math.Sqrt(cx*cx+cy*cy) <= w.DTHRM) {
		return false
	}
	tauMod := -1.0
	if sdv := sx*vx + sy*vy; sdv < 0 {
		tauMod = (w.DTHRM*w.DTHRM - (sx*sx + sy*sy)) / sdv
	}
	return 0 <= tauMod && tauMod <= w.TTHRS
}

// verticalViolation is WCV_TCOA::vertical_WCV.
func (w WCV) verticalViolation(sz, vz float64) bool {
	if math.Abs(sz) <= w.ZTHRM {
		return true
	}
	if vz == 0 || sz*vz > 0 {
		return false
	}
	tcoa := 0.0
	if sz != 0 {
		tcoa = -sz / vz
	}
	return tcoa <= w.TCOAS
}

// verticalWindow is WCV_TCOA::vertical_WCV_interval over [b, t]: the window
// [lo, up] in which the vertical test holds, ok false when there is none.
// It is entered at −sign(vz)·max(ZTHR, |vz|·TCOA) of relative altitude
// (the start of the time-to-co-altitude test, or of the ZTHR band) and
// left at sign(vz)·ZTHR.
func (w WCV) verticalWindow(sz, vz, b, t float64) (lo, up float64, ok bool) {
	if almostEquals(vz, 0) {
		if math.Abs(sz) <= w.ZTHRM {
			return b, t, true
		}
		return 0, 0, false
	}
	h := max(w.ZTHRM, math.Abs(vz)*w.TCOAS)
	entry := (-sign(vz)*h - sz) / vz
	exit := (sign(vz)*w.ZTHRM - sz) / vz
	if t < entry || exit < b {
		return 0, 0, false
	}
	lo, up = max(b, entry), min(t, exit)
	if lo > up {
		return 0, 0, false
	}
	return lo, up, true
}

// horizontalInterval is WCV_TAUMOD::horizontal_WCV_interval over [0, th]
// for the horizontal state s, v: the interval in which the horizontal test
// holds, (th, 0) when there is none. Outside the DTHR circle it is entered
// where tau_mod reaches TTHR, the first root of a·t² + b·t + c = 0 with
// the coefficients below, provided the miss distance is within DTHR
// (Δ ≥ 0), and left where the path leaves the DTHR circle.
func (w WCV) horizontalInterval(sx, sy, vx, vy, th float64) (in, out float64) {
	a := vx*vx + vy*vy
	sdv := sx*vx + sy*vy
	sqs := sx*sx + sy*sy
	sqD := w.DTHRM * w.DTHRM
	if almostEquals(a, 0) && sqs <= sqD {
		return 0, th
	}
	if sqs <= sqD {
		return 0, min(th, thetaD(sx, sy, vx, vy, w.DTHRM, 1))
	}
	if a == 0 {
		// Outside DTHR with no relative motion the arithmetic can
		// square (a speed below about 1e-162 m/s squares to zero; a
		// subnormal square takes the general path): the pair never
		// closes in, as horizontalViolation finds at every instant. The
		// roots below would divide by zero, and a product that does not
		// underflow (s·v) would place the entry at once.
		return th, 0
	}
	b := 2*sdv + w.TTHRS*a
	c := sqs + w.TTHRS*sdv - sqD
	discr := b*b - 4*a*c
	if sdv >= 0 || discr < 0 {
		return th, 0
	}
	t := (-b - math.Sqrt(discr)) / (2 * a)
	det := sx*vy - sy*vx
	if delta := sqD*a - det*det; delta >= 0 && t <= th {
		return max(0, t), min(th, thetaD(sx, sy, vx, vy, w.DTHRM, 1))
	}
	return th, 0
}

// thetaD is DAIDALUS's Horizontal::Theta_D (through Util::root2b): the time
// at which s + v·t crosses the circle of radius d, entering for eps = −1
// and leaving for eps = +1; NaN when it never does.
func thetaD(sx, sy, vx, vy, d, eps float64) float64 {
	qa := vx*vx + vy*vy
	qb := sx*vx + sy*vy
	qc := sx*sx + sy*sy - d*d
	if qa == 0 && qb == 0 {
		return math.NaN()
	}
	if qa == 0 {
		return -qc / (2 * qb)
	}
	discr := qb*qb - qa*qc
	if almostEquals(qb*qb, qa*qc) || qb*qb > qa*qc {
		return (-qb + eps*math.Sqrt(max(0, discr))) / qa
	}
	return math.NaN()
}

// sign is Util::sign: +1 for zero and positive numbers, −1 otherwise.
func sign(x float64) float64 {
	if x >= 0 {
		return 1
	}
	return -1
}
