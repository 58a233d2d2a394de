package detect

import (
	"maps"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// nearbyEntry is what the brute force knows of a listed entry.
type nearbyEntry struct {
	party int32
	pos   [3]float64
	halfM float64
}

// cubesApart returns by how much the cubes of a and b miss each other
// along the axis where they miss the most (negative or zero: they meet).
func cubesApart(a, b nearbyEntry) float64 {
	gap := math.Inf(-1)
	for k := range 3 {
		gap = max(gap, math.Abs(a.pos[k]-b.pos[k])-a.halfM-b.halfM)
	}
	return gap
}

// TestQueryOthersUntilAsBruteForce lists entries of a few parties in cubes
// of a few cells, moves, re-parties and removes some, and checks each
// query against every pair: it finds each entry of another party, not
// done, whose cube meets the querier's, once, and nothing else (the
// index's boxes are rounded outward to float32, which at the Earth's
// radius is half a meter); a party that becomes done with its first
// entry found gets no second; and the query stops at the first false.
// Cells are split by party after a few entries (groupAt), so that both
// the mixed lists and the groups are walked.
func TestQueryOthersUntilAsBruteForce(t *testing.T) {
	defer func(at int) { groupAt = at }(groupAt)
	rapid.Check(t, func(t *rapid.T) {
		groupAt = rapid.SampledFrom([]int{0, 1, 3, 64}).Draw(t, "group at")
		cellM := rapid.Float64Range(100, 5000).Draw(t, "cell_m")
		spreadM := rapid.Float64Range(cellM/4, 4*cellM).Draw(t, "spread_m")
		parties := int32(rapid.IntRange(1, 4).Draw(t, "parties"))
		n := NewNearby(cellM)
		// Over the Earth's surface, where the float32 rounding is real.
		base := [3]float64{4_100_000, 800_000, 4_800_000}
		live := map[int32]nearbyEntry{}
		for range rapid.IntRange(1, 60).Draw(t, "ops") {
			id := int32(rapid.IntRange(0, 24).Draw(t, "id"))
			if rapid.IntRange(0, 5).Draw(t, "remove") == 0 {
				n.Remove(id)
				delete(live, id)
				continue
			}
			e := nearbyEntry{party: rapid.Int32Range(0, parties-1).Draw(t, "party"), halfM: rapid.Float64Range(1, cellM).Draw(t, "half_m")}
			for k := range 3 {
				e.pos[k] = base[k] + rapid.Float64Range(-spreadM, spreadM).Draw(t, "offset_m")
			}
			n.Set(id, e.party, e.pos, e.halfM)
			live[id] = e
		}
		// In id order, so that each query's draws replay.
		for _, id := range slices.Sorted(maps.Keys(live)) {
			me := live[id]
			done := make([]bool, parties)
			for p := range done {
				done[p] = rapid.IntRange(0, 3).Draw(t, "done") == 0
			}
			var got []int32
			n.QueryOthersUntil(id, func(p int32) bool { return done[p] }, func(other int32) bool {
				got = append(got, other)
				return true
			})
			for _, o := range got {
				e, ok := live[o]
				switch {
				case !ok || o == id:
					t.Fatalf("query of %d found %d, which is not listed or itself", id, o)
				case e.party == me.party || done[e.party]:
					t.Fatalf("query of %d (party %d) found %d of party %d (done %v)", id, me.party, o, e.party, done)
				case cubesApart(me, e) > 1:
					t.Fatalf("query of %d found %d, whose cube is %.3f m from its own", id, o, cubesApart(me, e))
				}
			}
			sorted := slices.Clone(got)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != len(got) {
				t.Fatalf("query of %d found some twice: %v", id, got)
			}
			for o, e := range live {
				if o != id && e.party != me.party && !done[e.party] && cubesApart(me, e) <= 0 && !slices.Contains(got, o) {
					t.Fatalf("query of %d (party %d) missed %d of party %d, whose cube meets its own (%.3f m)", id, me.party, o, e.party, cubesApart(me, e))
				}
			}
			// A party done once one of its entries is found: one each.
			found := make([]bool, parties)
			n.QueryOthersUntil(id, func(p int32) bool { return done[p] || found[p] }, func(other int32) bool {
				p := live[other].party
				if found[p] {
					t.Fatalf("query of %d went on through party %d after it was done", id, p)
				}
				found[p] = true
				return true
			})
			for p := range parties {
				want := slices.ContainsFunc(got, func(o int32) bool { return live[o].party == p })
				if found[p] != want {
					t.Fatalf("query of %d, one of each party: found party %d %v, the full query %v", id, p, found[p], want)
				}
			}
			// Stopping at the k-th.
			if len(got) > 0 {
				k := rapid.IntRange(1, len(got)).Draw(t, "stop at")
				calls := 0
				n.QueryOthersUntil(id, func(p int32) bool { return done[p] }, func(int32) bool {
					calls++
					return calls < k
				})
				if calls != k {
					t.Fatalf("query of %d told to stop at the %dth made %d calls", id, k, calls)
				}
			}
		}
	})
}
