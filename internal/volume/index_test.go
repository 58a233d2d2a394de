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

// Hot spots where random volumes gather: an ordinary place, the
// antimeridian on the equator, and both poles.
var hotspots = [][2]float64{{35, 36}, {0, 179.95}, {89.8, 0}, {-89.85, 100}}

func genVolume(t *rapid.T, id string) *Volume {
	h := hotspots[rapid.IntRange(0, len(hotspots)-1).Draw(t, id+"_spot")]
	lat, lon := destination(h[0], h[1], rapid.Float64Range(0, 360).Draw(t, id+"_bearing"),
		rapid.Float64Range(0, 40_000).Draw(t, id+"_off")/meanEarthRadiusM)
	var fp Footprint
	r := rapid.Float64Range(100, 15_000).Draw(t, id+"_r")
	switch rapid.IntRange(0, 3).Draw(t, id+"_kind") {
	case 0:
		fp = circle(lat, lon, r)
	case 1:
		fp = regular(lat, lon, r, rapid.IntRange(3, 8).Draw(t, id+"_n"), rapid.Float64Range(0, 360).Draw(t, id+"_rot"))
	default:
		fp = genTube(t, id, lat, lon, 2*r)
	}
	lo := rapid.Float64Range(0, 3000).Draw(t, id+"_lo")
	hi := lo + rapid.Float64Range(10, 2000).Draw(t, id+"_h")
	start := t0.Add(time.Duration(rapid.IntRange(0, 240).Draw(t, id+"_start")) * time.Minute)
	end := start.Add(time.Duration(rapid.IntRange(1, 180).Draw(t, id+"_dur")) * time.Minute)
	in := input(fp, lo, hi, start, end)
	in.State = rapid.SampledFrom(States).Draw(t, id+"_state")
	return mkVol(t, id, rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, id+"_party"), in)
}

func ids(vs []*Volume) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

// The index finds exactly the conflicts a scan of every volume finds, also
// after replacements and removals.
func TestIndexMatchesScan(t *testing.T) {
	rl := rules.Default()
	rapid.Check(t, func(t *rapid.T) {
		idx := NewIndex(rl)
		byID := map[string]*Volume{}
		n := rapid.IntRange(1, 40).Draw(t, "n")
		for i := 0; i < n; i++ {
			v := genVolume(t, fmt.Sprintf("v%02d", i))
			idx.Put(v)
			byID[v.ID] = v
		}
		// Replace some volumes in place (an update), remove others.
		for i := 0; i < n/3; i++ {
			id := fmt.Sprintf("v%02d", rapid.IntRange(0, n-1).Draw(t, "upd"))
			v := genVolume(t, id)
			idx.Put(v)
			byID[id] = v
		}
		for i := 0; i < n/5; i++ {
			id := fmt.Sprintf("v%02d", rapid.IntRange(0, n-1).Draw(t, "del"))
			idx.Remove(id)
			delete(byID, id)
		}
		var all []*Volume
		for _, v := range byID {
			all = append(all, v)
		}
		probes := append(slices.Clone(all), genVolume(t, "probe"))
		for _, p := range probes {
			got, want := ids(idx.Conflicts(p)), ids(ScanConflicts(all, p, rl))
			if !slices.Equal(got, want) {
				t.Fatalf("probe %s: index %v, scan %v", p.ID, got, want)
			}
		}
	})
}

// Query returns every live volume meeting the area, band and window, and
// nothing else, compared with a direct test of each volume.
func TestIndexQueryMatchesScan(t *testing.T) {
	rl := rules.Default()
	rapid.Check(t, func(t *rapid.T) {
		idx := NewIndex(rl)
		var all []*Volume
		for i := 0; i < rapid.IntRange(1, 30).Draw(t, "n"); i++ {
			v := genVolume(t, fmt.Sprintf("v%02d", i))
			idx.Put(v)
			all = append(all, v)
		}
		area := genVolume(t, "area")
		lo := rapid.Float64Range(0, 4000).Draw(t, "qlo")
		hi := lo + rapid.Float64Range(0, 3000).Draw(t, "qh")
		from := t0.Add(time.Duration(rapid.IntRange(0, 300).Draw(t, "qfrom")) * time.Minute)
		to := from.Add(time.Duration(rapid.IntRange(0, 120).Draw(t, "qdur")) * time.Minute)
		var want []*Volume
		for _, v := range all {
			if v.State.Live() && v.AltLowerM <= hi && lo <= v.AltUpperM && !v.Start.After(to) && !from.After(v.End) &&
				area.shape.near(v.shape, touching) {
				want = append(want, v)
			}
		}
		sortByID(want)
		idx.scanAbove = math.Inf(1) // always through the cells
		got := idx.query(shapeArea(area.shape), lo, hi, from.UnixNano(), to.UnixNano())
		if !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("query: index %v, scan %v", ids(got), ids(want))
		}
	})
}
