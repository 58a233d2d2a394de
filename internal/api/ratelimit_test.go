package api

import (
	"math"
	"testing"
	"time"
)

// A cost below zero or NaN is no number of tokens: it does not pass, and
// it neither credits the bucket above its burst nor poisons it, and a
// refund or a charge of one changes nothing.
func TestRateLimiterTakesNoCostThatIsNotANumberOfTokens(t *testing.T) {
	const burst = 10.0
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	for _, cost := range []float64{-5, math.Inf(-1), math.NaN()} {
		l := newRateLimiter(1, burst)
		if _, ok := l.take("p", 0, now); !ok {
			t.Fatalf("a full bucket does not pass a cost of 0")
		}
		if wait, ok := l.take("p", cost, now); ok || wait <= 0 {
			t.Errorf("cost %g: passed %v, wait %v; want a refusal", cost, ok, wait)
		}
		l.refund("p", cost, now)
		l.charge("p", cost, now)
		if got := l.buckets["p"].tokens; got != burst {
			t.Errorf("cost %g: the bucket holds %g tokens after it, want its burst %g", cost, got, burst)
		}
		// The bucket passes its burst, no more, as before.
		if _, ok := l.take("p", burst, now); !ok {
			t.Errorf("cost %g: the bucket no longer passes its burst", cost)
		}
		if _, ok := l.take("p", 1, now); ok {
			t.Errorf("cost %g: the bucket passes more than its burst", cost)
		}
	}
}
