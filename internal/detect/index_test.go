package detect

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// closest returns the smallest distance between two straight-line motions
// over the absolute time interval [fromS, toS] (seconds), where each starts
// at its position p at its own start time, and the difference of their
// distances from the Earth's centre then.
func closest(pa, va [3]float64, startA float64, pb, vb [3]float64, startB float64, fromS, toS float64) (distM, radialM float64) {
	// Relative position at time t: (pb + vb (t-startB)) - (pa + va (t-startA)).
	var r0, w [3]float64
	for k := 0; k < 3; k++ {
		r0[k] = (pb[k] - vb[k]*startB) - (pa[k] - va[k]*startA)
		w[k] = vb[k] - va[k]
	}
	dist := func(t float64) float64 {
		var d2 float64
		for k := 0; k < 3; k++ {
			d := r0[k] + w[k]*t
			d2 += d * d
		}
		return math.Sqrt(d2)
	}
	ww := w[0]*w[0] + w[1]*w[1] + w[2]*w[2]
	best := fromS
	if dist(toS) < dist(fromS) {
		best = toS
	}
	if ww > 0 {
		t := -(r0[0]*w[0] + r0[1]*w[1] + r0[2]*w[2]) / ww
		if t > fromS && t < toS && dist(t) < dist(best) {
			best = t
		}
	}
	radius := func(p, v [3]float64, start float64) float64 {
		var r2 float64
		for k := 0; k < 3; k++ {
			x := p[k] + v[k]*(best-start)
			r2 += x * x
		}
		return math.Sqrt(r2)
	}
	return dist(best), math.Abs(radius(pb, vb, startB) - radius(pa, va, startA))
}

// TestGridFindsEveryCloseApproach is the index's half of the no-miss
// proof: two paths that come within the sum of their grow distances of
// each other at a common instant are always paired by a query, whatever
// the cell and slice sizes, whether the querying path is listed (query)
// or not (queryPath), and a query never returns a path whose whole-span
// box is apart.
func TestGridFindsEveryCloseApproach(t *testing.T) {
	close := map[float64]int{} // close approaches checked, by spread
	rapid.Check(t, func(t *rapid.T) {
		// Jets in big cubes, or drones in small cubes and thin shells.
		sc := rapid.SampledFrom([]gridScale{
			{[]float64{8_000, 20_000, 100_000, 1_000_000}, []float64{10, 30, 1000}, []float64{0, 500, 5_000}, 10_000, 10_000, 60_000, 700, 400, 40},
			{[]float64{100, 250, 1_000}, []float64{1, 5, 10, 30}, []float64{0, 10, 30, 120}, 200, 100, 2_000, 50, 100, 10},
		}).Draw(t, "scale")
		g := newGrid(rapid.SampledFrom(sc.cells).Draw(t, "cell"), rapid.SampledFrom(sc.slices).Draw(t, "slice"), rapid.SampledFrom(sc.shells).Draw(t, "shell"))
		// Several pairs per grid: the grid is the costly draw.
		for range 5 {
			checkGridPair(t, g, sc, close)
		}
	})
	if close[2_000] < 10 || close[60_000] < 10 {
		t.Fatalf("close approaches checked, by spread: %v: the property was hardly exercised", close)
	}
	t.Logf("close approaches checked, by spread: %v", close)
}

// gridScale bounds the draws of TestGridFindsEveryCloseApproach: grid
// dimensions to draw from, the largest grows, how far apart and how fast
// the paths are, their longest span and how far apart their starts.
type gridScale struct {
	cells, slices, shells []float64
	growM, growVM         float64
	spreadM, speedMps     float64
	spanS, startS         float64
}

// checkGridPair draws two paths within the scale, often passing close,
// lists them in g and checks that the queries find each other when they
// are close; it counts the close pairs in close, by spread, and leaves g
// empty.
func checkGridPair(t *rapid.T, g *grid, sc gridScale, close map[float64]int) {
	growA, growB := rapid.Float64Range(20, sc.growM).Draw(t, "grow a"), rapid.Float64Range(20, sc.growM).Draw(t, "grow b")
	growVA, growVB := rapid.Float64Range(5, sc.growVM).Draw(t, "grow radial a"), rapid.Float64Range(5, sc.growVM).Draw(t, "grow radial b")
	spanS := rapid.Float64Range(0, sc.spanS).Draw(t, "span")
	drawPath := func(label string) ([3]float64, [3]float64, float64) {
		var p, v [3]float64
		for k := 0; k < 3; k++ {
			p[k] = rapid.Float64Range(-sc.spreadM, sc.spreadM).Draw(t, label+"p")
			v[k] = rapid.Float64Range(-sc.speedMps, sc.speedMps).Draw(t, label+"v")
		}
		p[0] += 6_400_000
		return p, v, float64(rapid.IntRange(-int(sc.startS), int(sc.startS)).Draw(t, label+"start"))
	}
	pa, va, sa := drawPath("a")
	pb, vb, sb := drawPath("b")
	if from, to := math.Max(sa, sb), math.Min(sa, sb)+spanS; from <= to && rapid.Bool().Draw(t, "near") {
		// b passes near where a is at some instant of both spans
		// (x is about radial here).
		at := rapid.Float64Range(from, to).Draw(t, "at")
		for k := 0; k < 3; k++ {
			reach := growA + growB
			if k == 0 {
				reach = min(reach, growVA+growVB)
			}
			// Within reach/2 on each axis: closer than reach.
			miss := rapid.Float64Range(-reach/2, reach/2).Draw(t, "miss")
			pb[k] = pa[k] + va[k]*(at-sa) - vb[k]*(at-sb) + miss
		}
	}
	const baseNs = 1_767_225_600_000_000_000 // 2026-01-01: absolute slice boundaries matter
	startA := baseNs + int64(sa*1e9)
	g.set(1, 1, pb, vb, baseNs+int64(sb*1e9), spanS, growB, growVB)
	var onTheFly bool
	g.queryPath(nil, 0, pa, va, startA, spanS, growA, growVA, make([]uint32, 2), 1, func(o int32) { onTheFly = onTheFly || o == 1 })
	g.set(0, 0, pa, va, startA, spanS, growA, growVA)
	found := false
	g.query(0, 0, make([]uint32, 2), 1, func(int32) { found = true })
	if found != onTheFly {
		t.Fatalf("the listed query found b %v, the query on the fly %v", found, onTheFly)
	}
	// The cell pass of the full cycle finds the pair exactly when the
	// query does (both test overlapping boxes in a shared cell), and in
	// one cell of each slice at most.
	if n, _ := pairsInAll(g); n != 0 && !found || n == 0 && found {
		t.Fatalf("the cell pass found the pair %d times, the query %v", n, found)
	}
	slicesOf := func(id int) map[int64]bool {
		in := map[int64]bool{}
		for _, m := range g.in[id] {
			in[m.key.slice] = true
		}
		return in
	}
	common := 0
	for s := range slicesOf(0) {
		if slicesOf(1)[s] {
			common++
		}
	}
	if n, _ := pairsInAll(g); n > common {
		t.Fatalf("the cell pass found the pair %d times, in %d common slices", n, common)
	}

	from, to := math.Max(sa, sb), math.Min(sa, sb)+spanS
	if from <= to {
		if d, dr := closest(pa, va, sa, pb, vb, sb, from, to); d < growA+growB-1e-6 && dr < growVA+growVB-1e-3 {
			if !found {
				t.Fatalf("paths within %v m (radially %v m) at a common instant not paired", growA+growB, growVA+growVB)
			}
			close[sc.spreadM]++
		}
	}
	// The grid's boxes are rounded outwards to float32, half a meter
	// at Earth radius: paths whose boxes are closer may be paired.
	whole := func(p, v [3]float64, grow float64) Box { return segmentBox(p, v, 0, spanS, grow+1) }
	if found && !whole(pa, va, growA).Overlaps(whole(pb, vb, growB)) {
		t.Fatal("paired paths whose whole boxes are apart")
	}
	// Removing b leaves a clean grid.
	g.remove(1)
	found = false
	g.query(0, 0, make([]uint32, 2), 1, func(int32) { found = true })
	g.queryPath(nil, 0, pa, va, startA, spanS, growA, growVA, make([]uint32, 2), 2, func(o int32) { found = found || o == 1 })
	if found || g.count != 1 {
		t.Fatalf("removed path still found (%v) or counted (%d)", found, g.count)
	}
	g.remove(0)
}

// TestGridSkipsOwnParty: a query never goes through the aircraft of its
// own party (they are not paired unless the rules say so), so a party that
// stacks its aircraft at one point makes no work for its own queries; the
// aircraft of other parties there are all found, and with allParties (the
// rules' same_party_alerts) every aircraft is.
func TestGridSkipsOwnParty(t *testing.T) {
	for _, all := range []bool{false, true} {
		g := newGrid(DefaultCellM, DefaultSliceS, 0)
		g.allParties = all
		p := [3]float64{6_378_137, 0, 0}
		const stacked = 1000
		for id := range int32(stacked) {
			g.set(id, 0, p, [3]float64{0, 100, 0}, 0, 60, 5_000, 5_000)
		}
		g.set(stacked, 1, p, [3]float64{0, -100, 0}, 0, 60, 5_000, 5_000)
		stamp := make([]uint32, stacked+1)
		for epoch, id := range []int32{0, stacked / 2} {
			var got []int32
			g.query(id, 0, stamp, uint32(2*epoch+1), func(o int32) { got = append(got, o) })
			var onTheFly []int32
			g.queryPath(nil, 0, p, [3]float64{0, 100, 0}, 0, 60, 5_000, 5_000, stamp, uint32(2*epoch+2), func(o int32) { onTheFly = append(onTheFly, o) })
			want, wantOnTheFly := 1, 1
			if all {
				want, wantOnTheFly = stacked, stacked+1
			}
			if len(got) != want || len(onTheFly) != wantOnTheFly || (!all && (got[0] != stacked || onTheFly[0] != stacked)) {
				t.Fatalf("all parties %v: query from %d found %d aircraft, on the fly %d; want %d and %d", all, id, len(got), len(onTheFly), want, wantOnTheFly)
			}
		}
		// The cell pass pairs the other party's aircraft with the whole
		// stack, and the stack within itself only with allParties.
		if _, n := pairsInAll(g); n != stacked && !all || all && n != stacked+stacked*(stacked-1)/2 {
			t.Fatalf("all parties %v: the cell pass found %d pairs", all, n)
		}
		// The other party's aircraft finds the whole stack.
		n := 0
		g.query(stacked, 0, stamp, 10, func(int32) { n++ })
		if n != stacked {
			t.Fatalf("all parties %v: the other party's query found %d of the %d stacked", all, n, stacked)
		}
		// Emptied groups go with their cell.
		for id := range int32(stacked + 1) {
			g.remove(id)
		}
		if len(g.index) != 0 || g.count != 0 {
			t.Fatalf("all parties %v: %d cells and %d aircraft left after removing all", all, len(g.index), g.count)
		}
	}
}

// pairsInAll is the number of times the cell pass finds a pair in the
// whole grid, and the number of distinct pairs it finds.
func pairsInAll(g *grid) (n, distinct int) {
	seen := map[uint64]bool{}
	var scratch cellScratch
	for ci := range g.cells {
		g.pairsIn(int32(ci), 0, nil, &scratch, func(a, b int32) {
			n++
			seen[pairID(a, b)] = true
		})
	}
	return n, len(seen)
}

// TestSortableBits32: the bits pairsIn sorts members by order floats as
// the floats do.
func TestSortableBits32(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.Float32().Draw(t, "a")
		b := rapid.Float32().Draw(t, "b")
		if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
			return
		}
		if x, y := sortableBits32(a), sortableBits32(b); (a < b) != (x < y) && !(a == b && a == 0) {
			t.Fatalf("%v < %v is %v, but bits %x < %x is %v", a, b, a < b, x, y, x < y)
		}
	})
}
