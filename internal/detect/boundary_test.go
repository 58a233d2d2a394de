package detect

import (
	"math"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"
)

// boundedDetectors draws a cylinder or a well clear.
func boundedDetector(t *rapid.T) Bounded {
	if rapid.Bool().Draw(t, "wcv") {
		w := DO365PhaseICorrective()
		if rapid.Bool().Draw(t, "tcoa") {
			w.TCOAS = rapid.Float64Range(0, 30).Draw(t, "tcoa_s")
		}
		return w
	}
	return Cylinder{HorizontalM: rapid.Float64Range(50, 10000).Draw(t, "d"), VerticalM: rapid.Float64Range(15, 400).Draw(t, "h")}
}

func drawBoxed(t *rapid.T, name string, h, v float64) Vec3 {
	return Vec3{
		X: rapid.Float64Range(-h, h).Draw(t, name+"x"),
		Y: rapid.Float64Range(-h, h).Draw(t, name+"y"),
		Z: rapid.Float64Range(-v, v).Draw(t, name+"z"),
	}
}

// transitions walks the parameter from a to b and returns, to 1e-10 of
// the walk, every value at which the verdict of conflict changes.
func transitions(a, b float64, conflict func(x float64) bool) []float64 {
	const n = 400
	var out []float64
	prevX, prev := a, conflict(a)
	for i := 1; i <= n; i++ {
		x := a + (b-a)*float64(i)/n
		c := conflict(x)
		if c != prev {
			lo, hi := prevX, x
			for hi-lo > 1e-10*math.Abs(b-a) {
				mid := lo + (hi-lo)/2
				if conflict(mid) == prev {
					lo = mid
				} else {
					hi = mid
				}
			}
			out = append(out, lo+(hi-lo)/2)
		}
		prevX, prev = x, c
	}
	return out
}

// Windows are at least a millisecond long: in a shorter one DAIDALUS's
// tolerance (t_in almost less than t_out) decides, and a bands computation
// tests a window of almost zero length as DAIDALUS does, by where the loss
// starts (resolve's atStart).

// TestHorizontalBoundaries checks that wherever the verdict of a detector
// changes along a straight walk through the plane of horizontal relative
// velocities, the walk is on one of the curves the detector names.
func TestHorizontalBoundaries(t *testing.T) {
	var crossings atomic.Int64
	defer func() {
		if crossings.Load() < 10 {
			t.Errorf("only %d walks crossed a boundary", crossings.Load())
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		det := boundedDetector(t)
		pos := drawBoxed(t, "pos", 20000, 1500)
		vz := rapid.Float64Range(-30, 30).Draw(t, "vz")
		from := rapid.Float64Range(0, 60).Draw(t, "from")
		to := from + rapid.Float64Range(0.001, 240).Draw(t, "len")
		v1, v2 := drawBoxed(t, "v1", 400, 1), drawBoxed(t, "v2", 400, 1)
		if rapid.Bool().Draw(t, "aimed") {
			// A walk that must cross: the intruder is farther than any
			// detector's horizontal threshold (10 km at most), v1 flies
			// straight away from it (never closer, so never in
			// conflict) and v2 meets it within the window in all three
			// dimensions (the vertical speed, common to the walk, closes
			// the altitude at the same instant), so v2 is in conflict.
			// The window is long enough that v2 stays a speed of this
			// scale.
			to = max(to, from+30)
			tc := max(from+rapid.Float64Range(0.01, 1).Draw(t, "at")*(to-from), 30)
			bearing := rapid.Float64Range(0, 2*math.Pi).Draw(t, "bearing")
			r := rapid.Float64Range(10500, 20000).Draw(t, "range")
			pos = Vec3{X: r * math.Cos(bearing), Y: r * math.Sin(bearing), Z: -vz * tc}
			away := rapid.Float64Range(0, 400).Draw(t, "away")
			v1 = Vec3{X: away * math.Cos(bearing), Y: away * math.Sin(bearing)}
			v2 = Vec3{X: -pos.X / tc, Y: -pos.Y / tc}
		}
		crossed := false
		defer func() {
			if crossed {
				crossings.Add(1)
			}
		}()
		curves := det.HorizontalBoundaries(nil, pos, vz, from, to)
		at := func(s float64) (float64, float64) { return v1.X + s*(v2.X-v1.X), v1.Y + s*(v2.Y-v1.Y) }
		for _, s := range transitions(0, 1, func(s float64) bool {
			x, y := at(s)
			return det.Loss(pos, Vec3{x, y, vz}, from, to).Conflict
		}) {
			crossed = true
			x, y := at(s)
			best := math.Inf(1)
			for _, c := range curves {
				best = min(best, curveDistance(c, x, y))
			}
			if best > 1e-5 {
				t.Fatalf("%#v: the verdict changes at v = (%g, %g), %g m/s from the nearest of %d curves", det, x, y, best, len(curves))
			}
		}
	})
}

// curveDistance is the distance from (x, y) to the curve.
func curveDistance(c Curve, x, y float64) float64 {
	if c.A == 0 {
		n := math.Hypot(c.BX, c.BY)
		if n == 0 {
			return math.Inf(1)
		}
		return math.Abs(c.BX*x+c.BY*y+c.C) / n
	}
	cx, cy := -c.BX/(2*c.A), -c.BY/(2*c.A)
	r2 := cx*cx + cy*cy - c.C/c.A
	if r2 < 0 {
		return math.Inf(1)
	}
	return math.Abs(math.Hypot(x-cx, y-cy) - math.Sqrt(r2))
}

// TestVerticalBoundaries does the same for vertical speeds and
// altitudes: every change of verdict is at a value the detector names.
func TestVerticalBoundaries(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		det := boundedDetector(t)
		pos := drawBoxed(t, "pos", 20000, 1500)
		vel := drawBoxed(t, "vel", 400, 30)
		from := rapid.Float64Range(0, 60).Draw(t, "from")
		to := from + rapid.Float64Range(0.001, 240).Draw(t, "len")
		near := func(x float64, xs []float64, scale float64) bool {
			for _, b := range xs {
				if math.Abs(x-b) <= 1e-7*scale {
					return true
				}
			}
			return false
		}
		vzs := det.VerticalSpeedBoundaries(nil, pos, vel, from, to)
		for _, x := range transitions(-60, 60, func(vz float64) bool {
			return det.Loss(pos, Vec3{vel.X, vel.Y, vz}, from, to).Conflict
		}) {
			if !near(x, vzs, 120) {
				t.Fatalf("%#v: the verdict changes at vz %g, not among %v", det, x, vzs)
			}
		}
		zs := det.AltitudeBoundaries(nil, pos, vel, from, to)
		for _, x := range transitions(-16000, 16000, func(z float64) bool {
			return det.Loss(Vec3{pos.X, pos.Y, z}, vel, from, to).Conflict
		}) {
			if !near(x, zs, 32000) {
				t.Fatalf("%#v: the verdict changes at relative altitude %g, not among %v", det, x, zs)
			}
		}
	})
}
