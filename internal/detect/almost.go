package detect

import "math"

// DAIDALUS compares the quantities of its well-clear logic with a tolerance
// in units in the last place (Util::almost_equals at PRECISION13), so that
// a result does not flip with the last bit of an input. The WCV detector
// uses the same relations, so that it agrees with DAIDALUS wherever the
// answer is not decided by rounding itself. The cylinder (Pair) does not:
// its tests are exact.
const (
	// almostULPs is PRECISION13's tolerance: 16348 units in the last place
	// (a relative tolerance of about 3.6e-12).
	almostULPs = 16348
	// almostZero is PRECISION13's absolute tolerance around zero, where
	// units in the last place mean nothing.
	almostZero = 1e-13
)

// almostEquals is DAIDALUS's Util::almost_equals(a, b) at PRECISION13:
// equal, or both within almostZero of a zero one of them, or finite and at
// most almostULPs representable doubles apart.
func almostEquals(a, b float64) bool {
	switch {
	case a == b:
		return true
	case a == 0 || b == 0:
		return math.Abs(a) < almostZero && math.Abs(b) < almostZero
	case math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0):
		return false
	}
	ia, ib := orderedBits(a), orderedBits(b)
	// The true difference is below 2^64, so the unsigned wrap-around
	// difference is exact.
	d := uint64(ia) - uint64(ib)
	if ia < ib {
		d = uint64(ib) - uint64(ia)
	}
	return d <= almostULPs
}

// orderedBits maps a double to an integer that is monotonic in its value
// and counts representable doubles: the bit pattern for non-negative
// values, minus the pattern without its sign bit for negative ones.
func orderedBits(x float64) int64 {
	b := math.Float64bits(x)
	if b>>63 == 0 {
		return int64(b)
	}
	return -int64(b &^ (1 << 63))
}

// almostLess is Util::almost_less: a < b and not almost equal.
func almostLess(a, b float64) bool { return a < b && !almostEquals(a, b) }
