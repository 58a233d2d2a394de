package detect

import (
	"math"
)

// Box is an axis-aligned box in Earth-centred, Earth-fixed coordinates
// (meters).
type Box struct {
	Min, Max [3]float64
}

// Overlaps reports whether the two closed boxes share a point.
func (b Box) Overlaps(o Box) bool {
	return b.Min[0] <= o.Max[0] && o.Min[0] <= b.Max[0] &&
		b.Min[1] <= o.Max[1] && o.Min[1] <= b.Max[1] &&
		b.Min[2] <= o.Max[2] && o.Min[2] <= b.Max[2]
}

// segmentBox is the box around the segment from p+v*t0S to p+v*t1S, grown
// by grow meters on every side.
func segmentBox(p, v [3]float64, t0S, t1S, grow float64) Box {
	var b Box
	for k := 0; k < 3; k++ {
		a, e := p[k]+v[k]*t0S, p[k]+v[k]*t1S
		if e < a {
			a, e = e, a
		}
		b.Min[k] = a - grow
		b.Max[k] = e + grow
	}
	return b
}

// cellBias keeps cell coordinates positive so that three of them pack into
// one uint64 (21 bits each): the Earth spans a few thousand cells at the
// smallest sensible cell size.
const cellBias = 1 << 20

// cellKey is one cell of the space-time grid: a time slice (absolute, in
// slices since the Unix epoch) and a cube of ECEF space.
type cellKey struct {
	slice int64
	cell  uint64
}

// box32 is a Box rounded outwards to float32: half the memory, so twice
// the members per cache line in the scans that dominate a full cycle. At
// Earth radius a float32 step is half a meter, and rounding outwards only
// grows the box, which keeps the prune conservative.
type box32 struct {
	min, max [3]float32
}

func down32(x float64) float32 {
	f := float32(x)
	if float64(f) > x {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

func up32(x float64) float32 {
	f := float32(x)
	if float64(f) < x {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

func toBox32(b Box) box32 {
	var o box32
	for k := 0; k < 3; k++ {
		o.min[k] = down32(b.Min[k])
		o.max[k] = up32(b.Max[k])
	}
	return o
}

func (b *box32) overlaps(o *box32) bool {
	return b.min[0] <= o.max[0] && o.min[0] <= b.max[0] &&
		b.min[1] <= o.max[1] && o.min[1] <= b.max[1] &&
		b.min[2] <= o.max[2] && o.min[2] <= b.max[2]
}

// member is one aircraft's part of the path in one time slice.
type member struct {
	id  int32
	box box32
}

// membership is where an aircraft is listed (an index into grid.lists),
// with its box there.
type membership struct {
	list int32
	box  box32
}

// grid is a uniform space-time grid: ECEF cubes of cellM meters by time
// slices of sliceNs. An aircraft's path over the time a pair evaluation can
// use (see Engine) is cut at the slice boundaries; each piece's box, grown
// by half the prune radius, is listed in every cube of its slice it
// touches. Two aircraft closer than the prune radius at some instant are,
// at that instant, in the same slice with overlapping boxes there, so they
// share a listed cell: a query over one aircraft's cells finds every
// aircraft it can conflict with. Slicing time keeps fast aircraft crossing
// a dense area from being paired with everything their path passes near at
// other times; the slice length trades that against more listings per
// aircraft.
type grid struct {
	cellM   float64
	sliceNs int64
	// index finds a cell's list; memberships refer to lists by position
	// so that queries, the hot path of the full cycle, hash nothing.
	index    map[cellKey]int32
	lists    [][]member
	listKeys []cellKey
	free     []int32
	// Per aircraft, by id: where it is listed.
	in   [][]membership
	live []bool
}

func newGrid(cellM float64, slice float64) *grid {
	return &grid{cellM: cellM, sliceNs: int64(slice * 1e9), index: make(map[cellKey]int32)}
}

func (g *grid) cellCoord(x float64) int64 {
	return int64(math.Floor(x/g.cellM)) + cellBias
}

func packCell(i, j, k int64) uint64 {
	return uint64(i)<<42 | uint64(j)<<21 | uint64(k)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// set lists aircraft id flying from pos (ECEF, at unix time startNs) at vel
// for spanS seconds, grown by grow meters, replacing its previous listing.
func (g *grid) set(id int32, pos, vel [3]float64, startNs int64, spanS, grow float64) {
	for int(id) >= len(g.in) {
		g.in = append(g.in, nil)
		g.live = append(g.live, false)
	}
	g.remove(id)
	g.live[id] = true
	ms := g.in[id][:0]
	endNs := startNs + int64(spanS*1e9)
	for s := floorDiv(startNs, g.sliceNs); s*g.sliceNs <= endNs; s++ {
		t0 := max(startNs, s*g.sliceNs)
		t1 := min(endNs, (s+1)*g.sliceNs)
		b := segmentBox(pos, vel, float64(t0-startNs)/1e9, float64(t1-startNs)/1e9, grow)
		b32 := toBox32(b)
		i0, i1 := g.cellCoord(b.Min[0]), g.cellCoord(b.Max[0])
		j0, j1 := g.cellCoord(b.Min[1]), g.cellCoord(b.Max[1])
		k0, k1 := g.cellCoord(b.Min[2]), g.cellCoord(b.Max[2])
		for i := i0; i <= i1; i++ {
			for j := j0; j <= j1; j++ {
				for k := k0; k <= k1; k++ {
					l := g.list(cellKey{slice: s, cell: packCell(i, j, k)})
					g.lists[l] = append(g.lists[l], member{id: id, box: b32})
					ms = append(ms, membership{list: l, box: b32})
				}
			}
		}
	}
	g.in[id] = ms
}

// list returns the position of the cell's list, making an empty one when
// the cell has none.
func (g *grid) list(key cellKey) int32 {
	if l, ok := g.index[key]; ok {
		return l
	}
	var l int32
	if n := len(g.free); n > 0 {
		l = g.free[n-1]
		g.free = g.free[:n-1]
		g.listKeys[l] = key
	} else {
		l = int32(len(g.lists))
		g.lists = append(g.lists, nil)
		g.listKeys = append(g.listKeys, key)
	}
	g.index[key] = l
	return l
}

// remove takes aircraft id out of the grid.
func (g *grid) remove(id int32) {
	if int(id) >= len(g.live) || !g.live[id] {
		return
	}
	for _, m := range g.in[id] {
		list := g.lists[m.list]
		for n := range list {
			if list[n].id == id {
				last := len(list) - 1
				list[n] = list[last]
				list = list[:last]
				break
			}
		}
		g.lists[m.list] = list
		if len(list) == 0 {
			// Slices pass: an emptied cell is forgotten so that the
			// grid does not grow with time.
			delete(g.index, g.listKeys[m.list])
			g.free = append(g.free, m.list)
		}
	}
	g.in[id] = g.in[id][:0]
	g.live[id] = false
}

// query calls fn once for every other aircraft from minID up that shares
// a cell with id with overlapping boxes there. stamp (indexed by id) and
// epoch deduplicate: aircraft whose stamp already equals epoch are skipped,
// so the caller can exclude some by stamping them first. Read-only on the
// grid, so several queries may run at once with their own stamps.
func (g *grid) query(id int32, minID int32, stamp []uint32, epoch uint32, fn func(other int32)) {
	stamp[id] = epoch
	for mi := range g.in[id] {
		m := &g.in[id][mi]
		list := g.lists[m.list]
		for oi := range list {
			o := &list[oi]
			if o.id < minID || !o.box.overlaps(&m.box) || stamp[o.id] == epoch {
				continue
			}
			stamp[o.id] = epoch
			fn(o.id)
		}
	}
}
