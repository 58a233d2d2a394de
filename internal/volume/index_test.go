package volume

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/golang/geo/s2"
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
		idx.longAbove = rapid.SampledFrom([]int64{1, 2, longBuckets}).Draw(t, "longAbove")
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
		idx.longAbove = rapid.SampledFrom([]int64{1, 2, longBuckets}).Draw(t, "longAbove")
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

// Conformance finds a party's active volume at a point and instant
// exactly when a direct test of each volume does, long volumes included.
func TestIndexConformsMatchesScan(t *testing.T) {
	rl := rules.Default()
	rapid.Check(t, func(t *rapid.T) {
		idx := NewIndex(rl)
		idx.longAbove = rapid.SampledFrom([]int64{1, 2, longBuckets}).Draw(t, "longAbove")
		var all []*Volume
		for i := 0; i < rapid.IntRange(1, 30).Draw(t, "n"); i++ {
			v := genVolume(t, fmt.Sprintf("v%02d", i))
			idx.Put(v)
			all = append(all, v)
		}
		// Probe around one of the volumes, so that the probe is often
		// inside it: its centre, an instant about its window, an
		// altitude about its band.
		o := rapid.SampledFrom(all).Draw(t, "near")
		p := o.shape.bound.Center()
		altM := o.AltLowerM + rapid.Float64Range(-100, o.AltUpperM-o.AltLowerM+100).Draw(t, "alt")
		tNs := o.Start.Add(time.Duration(rapid.IntRange(-10, int(o.End.Sub(o.Start).Minutes())+10).Draw(t, "at")) * time.Minute).UnixNano()
		party := rapid.SampledFrom([]string{o.Party, "a", "b", "c"}).Draw(t, "party")
		want := false
		for _, v := range all {
			want = want || v.Party == party && active(v, tNs) && v.AltLowerM <= altM && altM <= v.AltUpperM && v.shape.containsPoint(p)
		}
		if got := idx.conformsAt(party, p, altM, tNs); got != want {
			t.Fatalf("conforms: index %v, scan %v", got, want)
		}
	})
}

// A volume is listed once per cell of its footprint, however long its
// window: a month-long window over the largest footprint the rules allow
// took 3 million listings (390 MB) for one write. It is found as before.
func TestLongVolumeListedOncePerCell(t *testing.T) {
	rl := rules.Default()
	rl.MaxWindowS, rl.TimeBufferS = 31*86_400, 86_400
	idx := NewIndex(rl)
	month := input(circle(30, 40, 20_000), 1000, 2000, t0, t0.Add(31*24*time.Hour))
	s, err := month.compile(rl)
	if err != nil {
		t.Fatal(err)
	}
	v := &Volume{ID: "month", Party: "a", Version: "v1", State: Accepted, Footprint: month.Footprint,
		AltLowerM: month.AltLowerM, AltUpperM: month.AltUpperM, Start: month.Start, End: month.End, shape: s}
	idx.Put(v)
	if cells, listed := len(idx.grownCovering(s)), len(idx.keys[v.ID]); listed != cells {
		t.Fatalf("a month-long volume over %d cells is listed %d times", cells, listed)
	}
	for _, c := range []struct {
		at       time.Time
		conflict bool
	}{
		// Both windows grow by the buffer: two days apart they conflict.
		{t0.Add(-73 * time.Hour), false},
		{t0.Add(-40 * time.Hour), true},
		{t0.Add(15 * 24 * time.Hour), true},
		{t0.Add(31*24*time.Hour + 47*time.Hour), true},
		{t0.Add(31*24*time.Hour + 49*time.Hour), false},
	} {
		probe := mkVol(t, "probe", "b", input(circle(30, 40, 1000), 1500, 1600, c.at, c.at.Add(time.Hour)))
		got := ids(idx.Conflicts(probe))
		if want := c.conflict; (len(got) == 1) != want {
			t.Errorf("a volume at %v: conflicts %v, want a conflict %v", c.at, got, want)
		}
	}
	if !idx.conformsAt("a", s2.PointFromLatLng(s2.LatLngFromDegrees(30, 40)), 1500, t0.Add(20*24*time.Hour).UnixNano()) {
		t.Error("a point inside the month-long volume in its third week does not conform")
	}
	idx.Remove(v.ID)
	if len(idx.buckets) != 0 {
		t.Errorf("%d cells left after the removal", len(idx.buckets))
	}
}
