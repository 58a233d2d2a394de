package detect

import (
	"slices"
	"testing"

	"github.com/deconflict/deconflict/internal/track"
	"pgregory.net/rapid"
)

func drawBox(t *rapid.T, label string) Box {
	var b Box
	for k := 0; k < 3; k++ {
		lo := rapid.Float64Range(-7e6, 7e6).Draw(t, label+"lo")
		b.Min[k] = lo
		b.Max[k] = lo + rapid.Float64Range(0, 300_000).Draw(t, label+"len")
	}
	return b
}

// TestGridFindsExactlyTheOverlappingBoxes compares the grid's query and its
// per-cell pair pass with a scan of every box, through moves and removals.
func TestGridFindsExactlyTheOverlappingBoxes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		g := newGrid(rapid.SampledFrom([]float64{10_000, 100_000, 1_000_000}).Draw(t, "cell"))
		n := rapid.IntRange(1, 30).Draw(t, "n")
		live := map[track.ID]Box{}
		// Boxes drawn near each other so that overlaps happen.
		base := drawBox(t, "base")
		near := func(label string) Box {
			b := base
			for k := 0; k < 3; k++ {
				d := rapid.Float64Range(-400_000, 400_000).Draw(t, label)
				l := rapid.Float64Range(0, 250_000).Draw(t, label+"len")
				b.Min[k] += d
				b.Max[k] = b.Min[k] + l
			}
			return b
		}
		for i := 0; i < n; i++ {
			b := near("box")
			g.set(track.ID(i), b)
			live[track.ID(i)] = b
		}
		ops := rapid.IntRange(0, 30).Draw(t, "ops")
		for o := 0; o <= ops; o++ {
			id := track.ID(rapid.IntRange(0, n-1).Draw(t, "id"))
			if rapid.IntRange(0, 3).Draw(t, "remove") == 0 {
				g.remove(id)
				delete(live, id)
			} else {
				b := near("move")
				g.set(id, b)
				live[id] = b
			}
			for q, qb := range live {
				var got, want []track.ID
				g.query(q, g.nextEpoch(), func(m track.ID) { got = append(got, m) })
				for m, mb := range live {
					if m != q && mb.Overlaps(qb) {
						want = append(want, m)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("query %d: grid %v, scan %v", q, got, want)
				}
			}
			var got, want [][2]track.ID
			for _, c := range g.cellKeys() {
				g.pairsInCell(c, func(a, b track.ID) { got = append(got, [2]track.ID{min(a, b), max(a, b)}) })
			}
			for a, ab := range live {
				for b, bb := range live {
					if a < b && ab.Overlaps(bb) {
						want = append(want, [2]track.ID{a, b})
					}
				}
			}
			cmp := func(x, y [2]track.ID) int {
				if x[0] != y[0] {
					return int(x[0] - y[0])
				}
				return int(x[1] - y[1])
			}
			slices.SortFunc(got, cmp)
			slices.SortFunc(want, cmp)
			if !slices.Equal(got, want) {
				t.Fatalf("pair pass %v, scan %v", got, want)
			}
		}
	})
}
