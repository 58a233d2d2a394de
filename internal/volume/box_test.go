package volume

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/rules"
)

func TestBoxMeets(t *testing.T) {
	hour := t0.Add(time.Hour)
	// Five kilometres east of the antimeridian on the equator, in degrees.
	r := 5000.0
	reachDeg := deg(r / meanEarthRadiusM)
	cases := []struct {
		name                   string
		fp                     Footprint
		minLon, minLat, maxLon float64
		maxLat                 float64
		want                   bool
	}{
		{"circle reaching across the antimeridian", circle(0, 179.99, r), -180, -1, -179.99 + reachDeg - 0.01, 1, true},
		{"circle short of a box beyond the antimeridian", circle(0, 179.99, r), -179.99 + reachDeg + 0.01, -1, -179, 1, false},
		{"polygon inside a box crossing the antimeridian", regular(0, 179.9, 1000, 5, 0), 179.5, -1, -179.5, 1, true},
		{"polygon west of a box crossing the antimeridian", regular(0, 179.0, 1000, 5, 0), 179.5, -1, -179.5, 1, false},
		{"triangle around the pole in a polar cap box", polygon([2]float64{0, 89.5}, [2]float64{120, 89.5}, [2]float64{-120, 89.5}), -180, 89.9, 180, 90, true},
		{"box at the pole inside a triangle around it", polygon([2]float64{0, 89}, [2]float64{120, 89}, [2]float64{-120, 89}), -10, 89.95, 10, 90, true},
		{"circle far from a polar box", circle(85, 0, r), -180, 89, 180, 90, false},
		{"box inside a large polygon", regular(35, 36, 100_000, 8, 0), 35.9, 34.9, 36.1, 35.1, true},
		{"corridor crossing a box with no vertex inside", polygon([2]float64{35, 34.99}, [2]float64{37, 34.99}, [2]float64{37, 35.01}, [2]float64{35, 35.01}), 35.9, 34.5, 36.1, 35.5, true},
		{"circle inside a band of latitudes", circle(30.9, 40, r), -180, 30.5, 180, 31, true},
		{"circle south of a band of latitudes", circle(30, 40, r), -180, 30.5, 180, 31, false},
	}
	for _, c := range cases {
		v := mkVol(t, "v", "p", input(c.fp, 0, 100, t0, hour))
		b, err := newBox(Box{MinLonDeg: c.minLon, MinLatDeg: c.minLat, MaxLonDeg: c.maxLon, MaxLatDeg: c.maxLat})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := b.meets(v.shape); got != c.want {
			t.Errorf("%s: meets %v, want %v", c.name, got, c.want)
		}
	}
	for _, bad := range [][4]float64{{-181, 0, 0, 1}, {0, 2, 1, 1}, {0, 0, 1, math.NaN()}, {0, -91, 1, 0}} {
		if _, err := newBox(Box{MinLonDeg: bad[0], MinLatDeg: bad[1], MaxLonDeg: bad[2], MaxLatDeg: bad[3]}); fieldOf(err)[:4] != "bbox" {
			t.Errorf("box %v: %v", bad, err)
		}
	}
}

// QueryBox through the index returns what testing every volume returns.
func TestQueryBoxMatchesScan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := &env{t: nil, reg: NewRegistry(rules.Default())}
		e.reg.idx.scanAbove = math.Inf(1) // always through the cells
		var all []*Volume
		for i := 0; i < rapid.IntRange(1, 30).Draw(t, "n"); i++ {
			v := genVolume(t, fmt.Sprintf("v%02d", i))
			e.reg.mu.Lock()
			e.reg.apply(v, nil)
			e.reg.mu.Unlock()
			all = append(all, v)
		}
		h := hotspots[rapid.IntRange(0, len(hotspots)-1).Draw(t, "spot")]
		minLat := math.Max(-90, h[0]-rapid.Float64Range(0, 1).Draw(t, "s"))
		maxLat := math.Min(90, minLat+rapid.Float64Range(0, 2).Draw(t, "h"))
		minLon := h[1] - rapid.Float64Range(0, 1).Draw(t, "w")
		maxLon := minLon + rapid.Float64Range(0, 2).Draw(t, "e")
		wrap := func(l float64) float64 { return math.Mod(l+540, 360) - 180 }
		minLon, maxLon = wrap(minLon), wrap(maxLon)
		b, err := newBox(Box{MinLonDeg: minLon, MinLatDeg: minLat, MaxLonDeg: maxLon, MaxLatDeg: maxLat})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, v := range all {
			if v.State.Live() && b.meets(v.shape) {
				want = append(want, v.ID)
			}
		}
		slices.Sort(want)
		got, err := e.reg.QueryBox("x", Box{MinLonDeg: minLon, MinLatDeg: minLat, MaxLonDeg: maxLon, MaxLatDeg: maxLat}, Extent{LowerM: -1e6, UpperM: 1e6, From: t0.Add(-time.Hour), To: t0.Add(10 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []string
		for _, v := range got {
			gotIDs = append(gotIDs, v.ID)
		}
		if !slices.Equal(gotIDs, want) {
			t.Fatalf("box %v..%v lon, %v..%v lat: index %v, scan %v", minLon, maxLon, minLat, maxLat, gotIDs, want)
		}
	})
}
