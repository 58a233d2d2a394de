package volume

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"
	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// changesTx serves a fixed list of stored volumes, in change order, the
// way a store's VolumesChangedSince does; the rest of store.Volumes is not
// used by Load.
type changesTx struct {
	store.Volumes
	recs []store.Volume
}

func (t *changesTx) VolumesChangedSince(seq int64, limit int) ([]store.Volume, error) {
	i := sort.Search(len(t.recs), func(i int) bool { return t.recs[i].ChangeSeq > seq })
	return slices.Clone(t.recs[i:min(i+limit, len(t.recs))]), nil
}

// loadRecords stores n random volumes of four parties: circles and
// polygons clustered in a few places over a day, some of them ended or
// cancelled, so that Load meets every kind and many conflict.
func loadRecords(t testing.TB, n int, seed uint64) []store.Volume {
	rng := rand.New(rand.NewPCG(seed, 7))
	rl := rules.Default()
	places := [][2]float64{{35, 36}, {0, 179.95}, {89.8, 0}, {-33, -70}}
	recs := make([]store.Volume, n)
	for i := range recs {
		h := places[rng.IntN(len(places))]
		lat, lon := destination(h[0], h[1], rng.Float64()*360, rng.Float64()*300_000/meanEarthRadiusM)
		r := 500 + rng.Float64()*10_000
		var fp Footprint
		if rng.IntN(3) == 0 {
			fp = regular(lat, lon, r, 3+rng.IntN(6), rng.Float64()*360)
		} else {
			fp = circle(lat, lon, r)
		}
		lo := float64(rng.IntN(10)) * 500
		start := t0.Add(time.Duration(rng.IntN(24*60)) * time.Minute)
		in := input(fp, lo, lo+300+rng.Float64()*1000, start, start.Add(time.Duration(10+rng.IntN(180))*time.Minute))
		in.State = States[rng.IntN(len(States))]
		v, err := NewVolume(fmt.Sprintf("v%06d", i), fmt.Sprintf("p%d", rng.IntN(4)), in, rl)
		if err != nil {
			t.Fatalf("volume %d: %v", i, err)
		}
		rec, err := v.record()
		if err != nil {
			t.Fatal(err)
		}
		rec.ChangeSeq = int64(i + 1)
		recs[i] = rec
	}
	return recs
}

// Load, which decodes and covers in parallel once the store returns full
// batches, gives exactly the answers of a scan of every stored volume.
func TestLoadMatchesScan(t *testing.T) {
	rl := rules.Default()
	recs := loadRecords(t, 3*catchUpBatch+137, 1)
	reg := NewRegistry(rl)
	if err := reg.Load(&changesTx{recs: recs}); err != nil {
		t.Fatal(err)
	}
	all := make([]*Volume, len(recs))
	live := 0
	for i, rec := range recs {
		v, err := Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		all[i] = v
		if v.State.Live() {
			live++
		}
	}
	if reg.idx.Len() != live || len(reg.all) != len(recs) {
		t.Fatalf("index holds %d live of %d volumes, want %d of %d", reg.idx.Len(), len(reg.all), live, len(recs))
	}
	if reg.lastSeq != recs[len(recs)-1].ChangeSeq {
		t.Fatalf("lastSeq %d, want %d", reg.lastSeq, recs[len(recs)-1].ChangeSeq)
	}
	conflicting := 0
	for i := 0; i < len(all); i += 7 {
		p := all[i]
		got, want := ids(reg.conflicts(p, nil)), ids(ScanConflicts(all, p, rl))
		if !slices.Equal(got, want) {
			t.Fatalf("probe %s: loaded index %v, scan %v", p.ID, got, want)
		}
		if len(want) > 0 {
			conflicting++
		}
	}
	if conflicting == 0 {
		t.Fatal("no probe conflicts: the test data does not exercise the index")
	}
	vs, err := reg.Query("p0", nil, Extent{LowerM: -1e9, UpperM: 1e9, From: t0.Add(-48 * time.Hour), To: t0.Add(48 * time.Hour)})
	if err != nil || len(vs) != live {
		t.Fatalf("query of everything: %d volumes, %v; want %d", len(vs), err, live)
	}
}

// A body that cannot be decoded fails the Load with an error naming the
// volume, wherever it is in the stream.
func TestLoadReportsUndecodableVolume(t *testing.T) {
	recs := loadRecords(t, 2*catchUpBatch+10, 2)
	for _, at := range []int{3, catchUpBatch + 500, len(recs) - 1} {
		bad := slices.Clone(recs)
		bad[at].Body = []byte(`{"footprint":{"type":"Square"}}`)
		err := NewRegistry(rules.Default()).Load(&changesTx{recs: bad})
		if err == nil || !strings.Contains(err.Error(), bad[at].ID) {
			t.Fatalf("corrupt volume %s at %d: Load error %v, want one naming it", bad[at].ID, at, err)
		}
	}
}

// loadBench loads n stored volumes per iteration. serial is the baseline
// of the same run, the way Load worked before: decode and insert one
// volume after the other, circles covered by the RegionCoverer.
func loadBench(b *testing.B, n int, serial bool) {
	recs := loadRecords(b, n, 3)
	rl := rules.Default()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if serial {
			idx := NewIndex(rl)
			for _, rec := range recs {
				v, err := Decode(rec)
				if err != nil {
					b.Fatal(err)
				}
				var cells []s2.CellID
				if v.State.Live() && v.shape.circle {
					cu := idx.coverer.Covering(s2.CapFromCenterAngle(v.shape.center, v.shape.radius+idx.p.lim))
					cu.Denormalize(idx.level, 1)
					cells = cu
				}
				idx.put(v, cells)
			}
			continue
		}
		reg := NewRegistry(rl)
		if err := reg.Load(&changesTx{recs: recs}); err != nil {
			b.Fatal(err)
		}
		if reg.idx.Len() == 0 {
			b.Fatal("nothing loaded")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/volume")
}

func BenchmarkLoad10k(b *testing.B)        { loadBench(b, 10_000, false) }
func BenchmarkLoad100k(b *testing.B)       { loadBench(b, 100_000, false) }
func BenchmarkLoad100kSerial(b *testing.B) { loadBench(b, 100_000, true) }

// capCovering lists every cell the RegionCoverer lists for a cap, and
// only cells that meet the cap, also over a pole, the antimeridian and the
// corners of the cube faces.
func TestCapCoveringMatchesCoverer(t *testing.T) {
	x := NewIndex(rules.Default())
	spots := append(slices.Clone(hotspots), [2]float64{35.26439, 45}, [2]float64{-35.26439, -135}, [2]float64{0, 45})
	rapid.Check(t, func(t *rapid.T) {
		h := spots[rapid.IntRange(0, len(spots)-1).Draw(t, "spot")]
		lat, lon := destination(h[0], h[1], rapid.Float64Range(0, 360).Draw(t, "bearing"),
			rapid.Float64Range(0, 30_000).Draw(t, "off")/meanEarthRadiusM)
		c := s2.CapFromCenterAngle(s2.PointFromLatLng(s2.LatLngFromDegrees(lat, lon)),
			s1.Angle(rapid.Float64Range(0, 200_000).Draw(t, "r")/meanEarthRadiusM))
		got := x.capCovering(c)
		want := x.coverer.Covering(c)
		want.Denormalize(x.level, 1)
		for _, id := range want {
			if !slices.Contains(got, id) {
				t.Fatalf("cap at %v,%v radius %v: cell %v of the coverer missing from %v", lat, lon, c.Radius(), id, got)
			}
		}
		grown := c.Expanded(capSlack)
		for _, id := range got {
			if id.Level() != x.level || !grown.IntersectsCell(s2.CellFromCellID(id)) {
				t.Fatalf("cap at %v,%v: cell %v does not meet it", lat, lon, id)
			}
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("cells not sorted or repeated: %v", got)
		}
	})
}
