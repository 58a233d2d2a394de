package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// TestBucketed: the items of all lists come out once each, grouped by
// bucket in bucket order, and within a bucket in the lists' order.
func TestBucketed(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		buckets := rapid.IntRange(1, 20).Draw(t, "buckets")
		lists := rapid.SliceOfN(rapid.SliceOfN(rapid.IntRange(0, buckets-1), 0, 40), 1, 4).Draw(t, "lists")
		// Tag each item with where it came from, to check the order.
		type item struct{ bucket, list, at int }
		in := make([][]item, len(lists))
		var want []item
		for w, l := range lists {
			for i, k := range l {
				in[w] = append(in[w], item{k, w, i})
			}
		}
		for k := range buckets {
			for w := range in {
				for _, it := range in[w] {
					if it.bucket == k {
						want = append(want, it)
					}
				}
			}
		}
		counts := make([][]int, len(in))
		// Over a list and starts left from an earlier, larger call.
		dst := slices.Repeat([]item{{-1, -1, -1}}, len(want)+5)
		starts := slices.Repeat([]int{-1}, buckets+9)
		got, starts := bucketed(in, dst[:2], starts, counts, buckets, func(it *item) int { return it.bucket })
		if !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if len(starts) != buckets+1 || starts[0] != 0 || starts[buckets] != len(want) {
			t.Fatalf("starts %v for %d items", starts, len(want))
		}
		for k := range buckets {
			for _, it := range got[starts[k]:starts[k+1]] {
				if it.bucket != k {
					t.Fatalf("bucket %d holds %v (starts %v)", k, it, starts)
				}
			}
		}
	})
}

// TestKeyRanks: after tracks join (a few, or so many that all are sorted
// again), expire and come back under a reused id, the ranks of the live
// tracks order them as their keys do.
func TestKeyRanks(t *testing.T) {
	e := NewEngine(rules.Default(), Grid{}, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	now := t0
	report := func(i int) track.Report {
		return track.Report{
			Party: fmt.Sprint("p", i%3), Aircraft: fmt.Sprint(rng.IntN(1_000_000)), Class: rules.ClassUAS,
			Pos:  geo.LLA{LatDeg: 48 + rng.Float64(), LonDeg: 2 + rng.Float64(), AltM: 100},
			Time: now,
		}
	}
	check := func(step string) {
		t.Helper()
		rank := e.keyRanks()
		var live []track.ID
		e.tracks.Each(func(id track.ID, _ *track.State) { live = append(live, id) })
		if len(live) < 2 {
			t.Fatalf("%s: %d live tracks", step, len(live))
		}
		slices.SortFunc(live, func(x, y track.ID) int {
			a, _ := e.tracks.Get(x)
			b, _ := e.tracks.Get(y)
			return a.Key().Compare(b.Key())
		})
		for i := 1; i < len(live); i++ {
			if rank[live[i-1]] >= rank[live[i]] {
				a, _ := e.tracks.Get(live[i-1])
				b, _ := e.tracks.Get(live[i])
				t.Fatalf("%s: %v has rank %d, %v after it %d", step, a.Key(), rank[live[i-1]], b.Key(), rank[live[i]])
			}
		}
	}
	// batches of newcomers, all merged into the order (the live tracks
	// grow with them, so they never outnumber them: the order is made
	// again only after most newcomers expired, see
	// TestKeyRanksRemadeAfterNewcomersExpire); then some expire and
	// others take their ids.
	for round, n := range []int{5, 300, 2_500, 40, 1} {
		var reps []track.Report
		for i := range n {
			reps = append(reps, report(i))
		}
		if _, err := e.Ingest(nil, reps, now); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprint("round ", round))
		if round == 1 {
			check("again, nothing new")
		}
	}
	// All but the last batch expire; newcomers take their ids.
	last := now
	now = now.Add(10 * time.Second)
	var keep []track.Report
	e.tracks.Each(func(id track.ID, s *track.State) {
		if id%2 == 0 {
			r := s.Report
			r.Time = now
			keep = append(keep, r)
		}
	})
	for i := range 70 {
		keep = append(keep, report(i))
	}
	if _, err := e.Ingest(nil, keep, now); err != nil {
		t.Fatal(err)
	}
	e.Expire(nil, last.Add(rules.Default().StaleAfter()+time.Second))
	for i := range 30 {
		if _, err := e.Ingest(nil, []track.Report{report(i)}, now); err != nil {
			t.Fatal(err)
		}
	}
	check("after expiry and reuse")
}

// TestFullCycleForgetsThePreviousCycle: a cycle after one that found many
// conflicts, in lists it keeps, finds only those of the airspace now,
// when passed the previous result too.
func TestFullCycleForgetsThePreviousCycle(t *testing.T) {
	e := NewEngine(rules.Default(), Grid{}, nil)
	center := geo.LLA{LatDeg: 52, LonDeg: 13}
	rng := rand.New(rand.NewPCG(5, 6))
	reports := func(spreadM float64, at time.Time) []track.Report {
		var out []track.Report
		for i := range 300 {
			class := rules.ClassUAS
			if i%50 == 0 {
				class = rules.ClassManned
			}
			out = append(out, track.Report{
				Party: fmt.Sprint("p", i%2), Aircraft: fmt.Sprint(i), Class: class,
				Pos:        offset(center, (rng.Float64()-0.5)*spreadM, (rng.Float64()-0.5)*spreadM, 100+rng.Float64()*50),
				VelEastMps: rng.Float64()*20 - 10, VelNorthMps: rng.Float64()*20 - 10,
				Time: at,
			})
		}
		return out
	}
	if _, err := e.Ingest(nil, reports(400, t0), t0); err != nil {
		t.Fatal(err)
	}
	crowded := e.FullCycle()
	now := t0.Add(time.Second)
	if _, err := e.Ingest(nil, reports(60_000, now), now); err != nil {
		t.Fatal(err)
	}
	brute := BruteForce(e.States(), e.Params())
	if len(crowded) < 4*len(brute)+100 {
		t.Fatalf("the crowded airspace has %d conflicts, the spread one %d: the test needs many more in the first", len(crowded), len(brute))
	}
	if same, diff := SameConflicts(e.FullCycleInto(crowded), brute); !same {
		t.Fatalf("second cycle vs brute force (%d): %s", len(brute), diff)
	}
	if same, diff := SameConflicts(e.FullCycle(), brute); !same {
		t.Fatalf("third cycle vs brute force (%d): %s", len(brute), diff)
	}
}

// TestEachDistinct: each distinct pair of a bucket once, in the order of
// the first aircraft, also when the stamps' epochs wrap in between.
func TestEachDistinct(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 300).Draw(t, "tracks")
		var b cycleBuffers
		b.ready(1, n)
		b.epoch[0] = rapid.SampledFrom([]uint32{0, math.MaxUint32 - 3}).Draw(t, "epoch")
		for round := range 2 {
			pairs := rapid.SliceOfN(rapid.Uint64(), 0, 200).Draw(t, "pairs")
			want := map[uint64]bool{}
			for i, r := range pairs {
				first := track.ID(r % uint64(n-1))
				second := first + 1 + track.ID((r>>32)%uint64(n-1-int(first)))
				pairs[i] = pairID(first, second)
				want[pairs[i]] = true
			}
			got := map[uint64]bool{}
			last := track.ID(-1)
			b.eachDistinct(0, slices.Clone(pairs), func(first, second track.ID) {
				key := pairID(first, second)
				if got[key] || !want[key] || first < last || key>>32 != uint64(first) {
					t.Fatalf("round %d: pair %d~%d (after first %d; seen %v, in the bucket %v)", round, first, second, last, got[key], want[key])
				}
				got[key], last = true, first
			})
			if len(got) != len(want) {
				t.Fatalf("round %d: %d distinct pairs of %d", round, len(got), len(want))
			}
		}
	})
}

// TestKeyRanksRemadeAfterNewcomersExpire: when more tracks were created
// since the last cycle than are live (most of them expired before it),
// the key order is made again from the live tracks, and the full cycle
// over it still gives the brute force's set.
func TestKeyRanksRemadeAfterNewcomersExpire(t *testing.T) {
	e := NewEngine(rules.Default(), Grid{}, nil)
	center := geo.LLA{LatDeg: 52, LonDeg: 13}
	rng := rand.New(rand.NewPCG(9, 10))
	report := func(at time.Time) track.Report {
		return track.Report{Party: fmt.Sprint("p", rng.IntN(5)), Aircraft: fmt.Sprint(rng.IntN(1_000_000)), Class: rules.ClassUAS,
			Pos:        offset(center, (rng.Float64()-0.5)*5000, (rng.Float64()-0.5)*5000, 100+rng.Float64()*80),
			VelEastMps: rng.Float64()*30 - 15, VelNorthMps: rng.Float64()*30 - 15, Time: at}
	}
	ingest := func(at time.Time) {
		t.Helper()
		reps := make([]track.Report, 1100)
		for i := range reps {
			reps[i] = report(at)
		}
		if _, err := e.Ingest(nil, reps, at); err != nil {
			t.Fatal(err)
		}
	}
	now := t0
	ingest(now) // no cycle: all of them newcomers
	for round := range 3 {
		now = now.Add(e.tracks.StaleAfter() + time.Second)
		e.Expire(nil, now)
		ingest(now)
		if round == 0 && !e.cycle.resort {
			t.Fatal("2,200 tracks created since the last cycle, 1,100 live: the order is not made again")
		}
		brute := BruteForce(e.States(), e.Params())
		if len(brute) == 0 {
			t.Fatalf("round %d: no conflict to compare", round)
		}
		if same, diff := SameConflicts(e.FullCycle(), brute); !same {
			t.Fatalf("round %d: full cycle vs brute force (%d): %s", round, len(brute), diff)
		}
	}
}

// TestFullCycleThroughChurn: cycle after cycle over the previous result,
// with tracks created, expired and their ids reused, the number of
// workers changing between cycles and the stamps' epochs about to wrap,
// the full cycle gives the brute force's set.
func TestFullCycleThroughChurn(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	e := NewEngine(rules.Default(), Grid{}, nil)
	center := geo.LLA{LatDeg: 52, LonDeg: 13}
	rng := rand.New(rand.NewPCG(7, 8))
	next := 0
	report := func(at time.Time) track.Report {
		class := rules.ClassUAS
		if next%40 == 0 {
			class = rules.ClassManned
		}
		next++
		return track.Report{Party: fmt.Sprint("p", next%3), Aircraft: fmt.Sprint(next), Class: class,
			Pos:        offset(center, (rng.Float64()-0.5)*3000, (rng.Float64()-0.5)*3000, 100+rng.Float64()*80),
			VelEastMps: rng.Float64()*30 - 15, VelNorthMps: rng.Float64()*30 - 15, Time: at}
	}
	now := t0
	var res []Conflict
	total := 0
	for round := range 12 {
		runtime.GOMAXPROCS([]int{1, 3, 2, 5, 1, 4}[round%6])
		reps := make([]track.Report, 250)
		for i := range reps {
			reps[i] = report(now)
		}
		if _, err := e.Ingest(nil, reps, now); err != nil {
			t.Fatal(err)
		}
		// Each worker's epoch brought close to the wrap, only ever
		// forward, as epochs go: set back, an epoch would meet stamps a
		// cycle before had written with it, which no cycle can.
		for w := range e.cycle.epoch {
			e.cycle.epoch[w] = max(e.cycle.epoch[w], math.MaxUint32-uint32(rng.IntN(3)))
		}
		res = e.FullCycleInto(res)
		brute := BruteForce(e.States(), e.Params())
		if same, diff := SameConflicts(res, brute); !same {
			t.Fatalf("round %d: full cycle vs brute force (%d): %s", round, len(brute), diff)
		}
		total += len(brute)
		now = now.Add(time.Duration(5+rng.IntN(20)) * time.Second)
		e.Expire(nil, now)
	}
	if total == 0 {
		t.Fatal("no conflict in any round: nothing was compared")
	}
}
