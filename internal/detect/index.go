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

// foldKey makes the map key of a cell of the space-time grid: a time slice
// (absolute, in slices since the Unix epoch) and a cube of ECEF space
// (coordinates i, j, k). It keeps 16 bits of each. Cube coordinates span
// fewer than 2^16 values when cells are at least minCellM (the Earth plus
// the longest box is under 16,000 km across), so distinct cubes of a slice
// get distinct keys; slices 2^16 apart share keys, which only merges lists
// of different aircraft (one aircraft spans fewer than 2^16 slices when
// slices are at least minSliceS): a merged list just adds candidates that
// the box test drops, so the prune stays conservative.
func foldKey(slice int64, i, j, k int32) uint64 {
	return uint64(uint16(slice))<<48 | uint64(uint16(i))<<32 | uint64(uint16(j))<<16 | uint64(uint16(k))
}

// Smallest grid dimensions foldKey is exact for.
const (
	minCellM  = 1000
	minSliceS = 1
)

// box32 is a Box rounded outwards to float32: half the memory, so twice
// the members per cache line in the scans that dominate a full cycle. At
// Earth radius a float32 step is half a meter, and rounding outwards only
// grows the box, which keeps the prune conservative.
//
// It also holds a band of distance from the Earth's centre, rlo to rhi:
// the radial extent of the path piece, grown by the aircraft's share of
// the vertical reach (grid.set). An ECEF box cannot tell a drone at 100 m
// from an airliner 2 km above it (the vertical is diagonal in ECEF), the
// band can.
type box32 struct {
	min, max [3]float32
	rlo, rhi float32
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
		b.min[2] <= o.max[2] && o.min[2] <= b.max[2] &&
		b.rlo <= o.rhi && o.rlo <= b.rhi
}

// radialBand is the range of distances from the Earth's centre of the
// segment from p+v*t0S to p+v*t1S, grown by grow meters: the largest at an
// end (the distance is convex along a line), the smallest at an end or at
// the point closest to the centre.
func radialBand(p, v [3]float64, t0S, t1S, grow float64) (lo, hi float64) {
	at := func(t float64) float64 {
		x, y, z := p[0]+v[0]*t, p[1]+v[1]*t, p[2]+v[2]*t
		return math.Sqrt(x*x + y*y + z*z)
	}
	r0, r1 := at(t0S), at(t1S)
	lo, hi = min(r0, r1), max(r0, r1)
	if vv := v[0]*v[0] + v[1]*v[1] + v[2]*v[2]; vv > 0 {
		t := -(p[0]*v[0] + p[1]*v[1] + p[2]*v[2]) / vv
		if t > t0S && t < t1S {
			lo = min(lo, at(t))
		}
	}
	return lo - grow, hi + grow
}

// member is one aircraft's part of the path in one time slice; mi is the
// index of the matching membership in the aircraft's list, so that a member
// moved within its cell's list can tell its owner where it went.
type member struct {
	id  int32
	mi  int32
	box box32
}

// membership is where an aircraft is listed (an index into grid.lists),
// with its box there. slice and cell order memberships the way set makes
// them, so that a move can be applied as a merge of the old and new lists.
type membership struct {
	list    int32
	pos     int32 // of the member in the list
	box     box32
	slice   int64
	i, j, k int32
}

func (m *membership) before(o *membership) bool {
	switch {
	case m.slice != o.slice:
		return m.slice < o.slice
	case m.i != o.i:
		return m.i < o.i
	case m.j != o.j:
		return m.j < o.j
	}
	return m.k < o.k
}

func (m *membership) sameCell(o *membership) bool {
	return m.slice == o.slice && m.i == o.i && m.j == o.j && m.k == o.k
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
//
// A grid serves one entry of the separation table. An entry between two
// classes lists only the aircraft of its second class here; those of the
// first are queried against it on the fly (queryPath) without being
// listed. With the default classes the drones are listed and the few
// manned aircraft, whose modified-tau reach makes big boxes, are not.
type grid struct {
	cellM   float64
	sliceNs int64
	// index finds a cell's list; memberships refer to lists by position
	// so that queries, the hot path of the full cycle, hash nothing.
	index    map[uint64]int32
	lists    [][]member
	listKeys []uint64
	free     []int32
	// Per aircraft, by id: where it is listed, ordered by (slice, cell).
	in      [][]membership
	live    []bool
	count   int
	scratch []membership
}

func newGrid(cellM float64, slice float64) *grid {
	cellM = max(cellM, minCellM)
	slice = max(slice, minSliceS)
	return &grid{cellM: cellM, sliceNs: int64(slice * 1e9), index: make(map[uint64]int32)}
}

func (g *grid) cellCoord(x float64) int64 {
	return int64(math.Floor(x / g.cellM))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// set lists aircraft id flying from pos (ECEF, at unix time startNs) at vel
// for spanS seconds, its boxes grown by grow meters and its radial bands by
// growV, replacing its previous listing.
// A report moves an aircraft a little, so most of its cells stay: those
// only get the new box, and only the cells it enters or leaves touch the
// map.
func (g *grid) set(id int32, pos, vel [3]float64, startNs int64, spanS, grow, growV float64) {
	for int(id) >= len(g.in) {
		g.in = append(g.in, nil)
		g.live = append(g.live, false)
	}
	next := g.pieces(g.scratch[:0], pos, vel, startNs, spanS, grow, growV)
	var old []membership
	if g.live[id] {
		old = g.in[id]
	} else {
		g.count++
	}
	o := 0
	for n := range next {
		m := &next[n]
		for o < len(old) && old[o].before(m) {
			g.unlist(&old[o])
			o++
		}
		if o < len(old) && old[o].sameCell(m) {
			m.list, m.pos = old[o].list, old[o].pos
			g.lists[m.list][m.pos] = member{id: id, mi: int32(n), box: m.box}
			o++
			continue
		}
		m.list = g.listFor(foldKey(m.slice, m.i, m.j, m.k))
		m.pos = int32(len(g.lists[m.list]))
		g.lists[m.list] = append(g.lists[m.list], member{id: id, mi: int32(n), box: m.box})
	}
	for ; o < len(old); o++ {
		g.unlist(&old[o])
	}
	g.in[id] = append(g.in[id][:0], next...)
	g.scratch = next
	g.live[id] = true
}

// pieces appends the memberships of a path (not yet listed: list -1), in
// (slice, cell) order: each slice's piece of the path, its box grown by
// grow and its radial band by growV, in every cube the box touches.
func (g *grid) pieces(dst []membership, pos, vel [3]float64, startNs int64, spanS, grow, growV float64) []membership {
	endNs := startNs + int64(spanS*1e9)
	for s := floorDiv(startNs, g.sliceNs); s*g.sliceNs <= endNs; s++ {
		t0 := max(startNs, s*g.sliceNs)
		t1 := min(endNs, (s+1)*g.sliceNs)
		from, to := float64(t0-startNs)/1e9, float64(t1-startNs)/1e9
		b := toBox32(segmentBox(pos, vel, from, to, grow))
		lo, hi := radialBand(pos, vel, from, to, growV)
		b.rlo, b.rhi = down32(lo), up32(hi)
		i0, i1 := g.cellCoord(float64(b.min[0])), g.cellCoord(float64(b.max[0]))
		j0, j1 := g.cellCoord(float64(b.min[1])), g.cellCoord(float64(b.max[1]))
		k0, k1 := g.cellCoord(float64(b.min[2])), g.cellCoord(float64(b.max[2]))
		for i := i0; i <= i1; i++ {
			for j := j0; j <= j1; j++ {
				for k := k0; k <= k1; k++ {
					dst = append(dst, membership{list: -1, box: b, slice: s, i: int32(i), j: int32(j), k: int32(k)})
				}
			}
		}
	}
	return dst
}

// listFor returns the position of the list of the cell with the key,
// making an empty one when the cell has none.
func (g *grid) listFor(key uint64) int32 {
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

// unlist takes a membership's member out of its list. The list's last
// member fills the hole and its owner is told its new position: an aircraft
// is listed at most once per list (cell keys are exact within the span of
// one aircraft), so the owner is never the aircraft being changed.
func (g *grid) unlist(m *membership) {
	list := g.lists[m.list]
	last := int32(len(list) - 1)
	if m.pos != last {
		moved := list[last]
		list[m.pos] = moved
		g.in[moved.id][moved.mi].pos = m.pos
	}
	list = list[:last]
	g.lists[m.list] = list
	if len(list) == 0 {
		// Slices pass: an emptied cell is forgotten so that the grid does
		// not grow with time.
		delete(g.index, g.listKeys[m.list])
		g.free = append(g.free, m.list)
	}
}

// remove takes aircraft id out of the grid.
func (g *grid) remove(id int32) {
	if int(id) >= len(g.live) || !g.live[id] {
		return
	}
	for i := range g.in[id] {
		g.unlist(&g.in[id][i])
	}
	g.in[id] = g.in[id][:0]
	g.live[id] = false
	g.count--
}

// listed reports whether id is in the grid.
func (g *grid) listed(id int32) bool { return int(id) < len(g.live) && g.live[id] }

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

// queryPath is query for a path that is not listed: the pieces of the path
// from pos (ECEF, at unix time startNs) at vel over spanS seconds, grown by
// grow, are found in the grid's cells as set would list them, and fn is
// called once for every listed aircraft whose box overlaps one of them.
// scratch is reused for the pieces and returned. Read-only on the grid.
func (g *grid) queryPath(scratch []membership, pos, vel [3]float64, startNs int64, spanS, grow, growV float64, stamp []uint32, epoch uint32, fn func(other int32)) []membership {
	scratch = g.pieces(scratch[:0], pos, vel, startNs, spanS, grow, growV)
	for mi := range scratch {
		m := &scratch[mi]
		l, ok := g.index[foldKey(m.slice, m.i, m.j, m.k)]
		if !ok {
			continue
		}
		list := g.lists[l]
		for oi := range list {
			o := &list[oi]
			if !o.box.overlaps(&m.box) || stamp[o.id] == epoch {
				continue
			}
			stamp[o.id] = epoch
			fn(o.id)
		}
	}
	return scratch
}
