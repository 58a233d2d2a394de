package detect

import (
	"math"
	"slices"
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

// cellKey is the map key of a cell of the space-time grid: a time slice
// (absolute, in slices since the Unix epoch), a cube of ECEF space
// (coordinates i, j, k) and a shell of distance from the Earth's centre
// (0 in a grid without shells). Every coordinate is kept whole, so
// distinct cells have distinct keys whatever the grid's dimensions.
type cellKey struct {
	slice          int64
	i, j, k, shell int32
}

// Smallest grid dimensions: a cube coordinate must fit an int32 (the
// Earth plus the longest box, under 16,000 km across, in cubes of
// minCellM), and an aircraft's span must not cut into more slices than a
// query can afford.
const (
	minCellM  = 10
	minSliceS = 1
	// maxShell bounds a shell coordinate: shells beyond are one.
	maxShell = 1 << 30
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
// moved within its group can tell its owner where it went.
type member struct {
	id  int32
	mi  int32
	box box32
}

// cell is the members of one cell of the grid. A cell starts as one
// list of every party's members (mixed), which is what queries scan
// fastest; when it grows past groupAt it is split into one group per
// party, and a query skips its own party's group whole (a party's
// aircraft are not paired with each other, unless the rules say so): a
// party stacking its aircraft in one place then makes no work for its own
// queries. A group emptied stays, with its capacity, until the cell
// empties and starts mixed again.
type cell struct {
	mixed   []member
	groups  []group
	grouped bool
	count   int32 // members in all
}

type group struct {
	party   int32
	members []member
}

// groupAt is the size of a mixed cell past which it is split by party: a
// query scans at most this many members of its own party in one cell. A
// variable so that the property tests split cells of a few aircraft.
var groupAt = 64

// membership is where an aircraft is listed (a cell of grid.cells, a group
// there or -1 for the mixed list, and a position in it), with its box
// there. The cell's key orders memberships the way set makes them, so
// that a move can be applied as a merge of the old and new lists.
type membership struct {
	key   cellKey
	cell  int32
	group int32
	pos   int32 // of the member in the group
	box   box32
}

func (m *membership) before(o *membership) bool {
	a, b := &m.key, &o.key
	switch {
	case a.slice != b.slice:
		return a.slice < b.slice
	case a.i != b.i:
		return a.i < b.i
	case a.j != b.j:
		return a.j < b.j
	case a.k != b.k:
		return a.k < b.k
	}
	return a.shell < b.shell
}

func (m *membership) sameCell(o *membership) bool { return m.key == o.key }

// grid is a uniform space-time grid: ECEF cubes of cellM meters by time
// slices of sliceNs, optionally cut again into shells of shellM meters of
// distance from the Earth's centre. An aircraft's path over the time a
// pair evaluation can use (see Engine) is cut at the slice boundaries;
// each piece's box, grown by half the prune radius, is listed in every
// cube of its slice it touches, and, with shells, in every shell its
// radial band touches. Two aircraft closer than the prune radius at some
// instant are, at that instant, in the same slice with overlapping boxes
// and bands there, so they share a listed cell (the cube of the lowest
// corner of the boxes' overlap, the shell of the higher of the bands'
// lower ends): a query over one aircraft's cells finds every aircraft it
// can conflict with. Slicing time keeps fast aircraft crossing a dense
// area from being paired with everything their path passes near at other
// times; the slice length trades that against more listings per
// aircraft. Shells do for altitude what slices do for time: drones low
// over a city share the cubes of every altitude they fly at (in ECEF the
// vertical is diagonal, a cube spans all of them), not the shells.
//
// A grid serves one entry of the separation table. An entry between two
// classes lists only the aircraft of its second class here; those of the
// first are queried against it on the fly (queryPath) without being
// listed. With the default classes the drones are listed and the few
// manned aircraft, whose modified-tau reach makes big boxes, are not.
type grid struct {
	cellM   float64
	sliceNs int64
	// shellM is the thickness of a shell; 0 for no shells.
	shellM float64
	// index finds a cell; memberships refer to cells by position so that
	// queries, the hot path of the full cycle, hash nothing.
	index    map[cellKey]int32
	cells    []cell
	cellKeys []cellKey
	free     []int32
	// Per aircraft, by id: where it is listed, ordered by (slice, cell),
	// and its party.
	in    [][]membership
	party []int32
	live  []bool
	count int
	// allParties makes queries pair aircraft of one party too.
	allParties bool
	scratch    []membership
}

// newGrid makes an empty grid of cubes of cellM meters, slices of slice
// seconds and shells of shellM meters (0: none).
func newGrid(cellM, slice, shellM float64) *grid {
	cellM = max(cellM, minCellM)
	slice = max(slice, minSliceS)
	if shellM > 0 {
		shellM = max(shellM, minCellM)
	}
	return &grid{cellM: cellM, sliceNs: int64(slice * 1e9), shellM: max(shellM, 0), index: make(map[cellKey]int32)}
}

func (g *grid) cellCoord(x float64) int64 {
	return int64(math.Floor(x / g.cellM))
}

// shellOf is the shell of a distance from the Earth's centre, within
// [0, maxShell]: a band reaching below the centre or far out in space
// (never a path a report can make) is clamped, which only merges shells.
func (g *grid) shellOf(r float32) int64 {
	return int64(min(max(math.Floor(float64(r)/g.shellM), 0), maxShell))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// set lists aircraft id of the party flying from pos (ECEF, at unix time
// startNs) at vel for spanS seconds, its boxes grown by grow meters and its
// radial bands by growV, replacing its previous listing.
// A report moves an aircraft a little, so most of its cells stay: those
// only get the new box, and only the cells it enters or leaves touch the
// map.
func (g *grid) set(id, party int32, pos, vel [3]float64, startNs int64, spanS, grow, growV float64) {
	for int(id) >= len(g.in) {
		g.in = append(g.in, nil)
		g.live = append(g.live, false)
		g.party = append(g.party, 0)
	}
	if g.live[id] && g.party[id] != party {
		g.remove(id)
	}
	g.party[id] = party
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
			m.cell, m.group, m.pos = old[o].cell, old[o].group, old[o].pos
			*g.slot(m) = member{id: id, mi: int32(n), box: m.box}
			o++
			continue
		}
		m.cell = g.cellFor(m.key)
		c := &g.cells[m.cell]
		c.count++
		if !c.grouped && len(c.mixed) < groupAt {
			m.group, m.pos = -1, int32(len(c.mixed))
			c.mixed = append(c.mixed, member{id: id, mi: int32(n), box: m.box})
			continue
		}
		if !c.grouped {
			g.split(c)
		}
		m.group = c.groupFor(party)
		gr := &c.groups[m.group]
		m.pos = int32(len(gr.members))
		gr.members = append(gr.members, member{id: id, mi: int32(n), box: m.box})
	}
	for ; o < len(old); o++ {
		g.unlist(&old[o])
	}
	g.in[id] = append(g.in[id][:0], next...)
	g.scratch = next
	g.live[id] = true
}

// slot is the member of a membership.
func (g *grid) slot(m *membership) *member {
	c := &g.cells[m.cell]
	if m.group < 0 {
		return &c.mixed[m.pos]
	}
	return &c.groups[m.group].members[m.pos]
}

// split moves a mixed cell's members into one group per party, telling
// each owner where its member went. The aircraft being set has no member
// there (one per cell), so every owner's memberships are current.
func (g *grid) split(c *cell) {
	c.grouped = true
	for _, o := range c.mixed {
		gi := c.groupFor(g.party[o.id])
		gr := &c.groups[gi]
		in := &g.in[o.id][o.mi]
		in.group, in.pos = gi, int32(len(gr.members))
		gr.members = append(gr.members, o)
	}
	c.mixed = c.mixed[:0]
}

// groupFor returns the position of the party's group in the cell, making
// one (reusing an emptied group's capacity) when it has none.
func (c *cell) groupFor(party int32) int32 {
	for i := range c.groups {
		if c.groups[i].party == party {
			return int32(i)
		}
	}
	n := len(c.groups)
	if n < cap(c.groups) {
		c.groups = c.groups[:n+1]
		c.groups[n].party = party
		c.groups[n].members = c.groups[n].members[:0]
	} else {
		c.groups = append(c.groups, group{party: party})
	}
	return int32(n)
}

// pieces appends the memberships of a path (not yet listed: cell -1), in
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
		var h0, h1 int64
		if g.shellM > 0 {
			h0, h1 = g.shellOf(b.rlo), g.shellOf(b.rhi)
		}
		for i := i0; i <= i1; i++ {
			for j := j0; j <= j1; j++ {
				for k := k0; k <= k1; k++ {
					for h := h0; h <= h1; h++ {
						dst = append(dst, membership{cell: -1, box: b, key: cellKey{slice: s, i: int32(i), j: int32(j), k: int32(k), shell: int32(h)}})
					}
				}
			}
		}
	}
	return dst
}

// cellFor returns the position of the cell with the key, making an empty
// one when there is none.
func (g *grid) cellFor(key cellKey) int32 {
	if c, ok := g.index[key]; ok {
		return c
	}
	var c int32
	if n := len(g.free); n > 0 {
		c = g.free[n-1]
		g.free = g.free[:n-1]
		g.cellKeys[c] = key
	} else {
		c = int32(len(g.cells))
		g.cells = append(g.cells, cell{})
		g.cellKeys = append(g.cellKeys, key)
	}
	g.index[key] = c
	return c
}

// unlist takes a membership's member out of its list. The list's last
// member fills the hole and its owner is told its new position: an
// aircraft is listed at most once per cell (cell keys are exact within the
// span of one aircraft), so the owner is never the aircraft being changed.
func (g *grid) unlist(m *membership) {
	c := &g.cells[m.cell]
	list := &c.mixed
	if m.group >= 0 {
		list = &c.groups[m.group].members
	}
	last := int32(len(*list) - 1)
	if m.pos != last {
		moved := (*list)[last]
		(*list)[m.pos] = moved
		g.in[moved.id][moved.mi].pos = m.pos
	}
	*list = (*list)[:last]
	c.count--
	if c.count == 0 {
		// Slices pass: an emptied cell is forgotten so that the grid does
		// not grow with time. Its lists keep their capacity for reuse.
		c.mixed, c.groups, c.grouped = c.mixed[:0], c.groups[:0], false
		delete(g.index, g.cellKeys[m.cell])
		g.free = append(g.free, m.cell)
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
// a cell with id with overlapping boxes there; in a cell split by party
// (cell), id's own party is left out unless the grid pairs all parties.
// stamp (indexed by id) and epoch deduplicate: aircraft whose stamp
// already equals epoch are skipped, so the caller can exclude some by
// stamping them first. Read-only on the grid, so several queries may run
// at once with their own stamps.
func (g *grid) query(id int32, minID int32, stamp []uint32, epoch uint32, fn func(other int32)) {
	g.queryUntil(id, minID, math.MaxInt64, stamp, epoch, fn)
}

// queryUntil is query over the part of id's path up to unix time untilNs:
// the cells of the slices that start by then.
func (g *grid) queryUntil(id int32, minID int32, untilNs int64, stamp []uint32, epoch uint32, fn func(other int32)) {
	stamp[id] = epoch
	party := g.party[id]
	last := floorDiv(untilNs, g.sliceNs)
	for mi := range g.in[id] {
		m := &g.in[id][mi]
		if m.key.slice > last {
			// Memberships are ordered by slice: the rest start later.
			break
		}
		g.visitCell(&g.cells[m.cell], &m.box, party, minID, stamp, epoch, fn)
	}
}

// visitCell calls fn once for every member of cell c from minID up whose
// box overlaps b and whose stamp is not epoch yet (stamping it), leaving
// out party's group of a cell split by party unless the grid pairs all
// parties: the one walk of a cell that query and queryPath share.
func (g *grid) visitCell(c *cell, b *box32, party, minID int32, stamp []uint32, epoch uint32, fn func(other int32)) {
	list := c.mixed
	for gi := -1; gi < len(c.groups); gi++ {
		if gi >= 0 {
			if c.groups[gi].party == party && !g.allParties {
				continue
			}
			list = c.groups[gi].members
		}
		for oi := range list {
			o := &list[oi]
			if o.id < minID || !o.box.overlaps(b) || stamp[o.id] == epoch {
				continue
			}
			stamp[o.id] = epoch
			fn(o.id)
		}
	}
}

// queryPath is query for a path of the party that is not listed: the
// pieces of the path from pos (ECEF, at unix time startNs) at vel over
// spanS seconds, grown by grow, are found in the grid's cells as set would
// list them, and fn is called once for every listed aircraft (of another
// party in a cell split by party, unless the grid pairs all parties) whose
// box overlaps one of them. scratch is reused for the pieces and returned.
// Read-only on the grid.
func (g *grid) queryPath(scratch []membership, party int32, pos, vel [3]float64, startNs int64, spanS, grow, growV float64, stamp []uint32, epoch uint32, fn func(other int32)) []membership {
	scratch = g.pieces(scratch[:0], pos, vel, startNs, spanS, grow, growV)
	for mi := range scratch {
		m := &scratch[mi]
		ci, ok := g.index[m.key]
		if !ok {
			continue
		}
		g.visitCell(&g.cells[ci], &m.box, party, 0, stamp, epoch, fn)
	}
	return scratch
}

// sortMembersFrom is the number of members of a cell from which pairsIn
// sorts them by band.
const sortMembersFrom = 8

// cellMember is a member of a cell as pairsIn pairs it: its box, owner
// and group in the cell (-1 in a mixed cell).
type cellMember struct {
	box      box32
	id, part int32
}

// pairsIn calls fn for every pair of aircraft listed in cell ci whose
// boxes (and bands) overlap there, when this cell is the pair's reference
// cell in its slice: the cell holding the lowest corner of the boxes'
// overlap (and the shell of the higher of the bands' lower ends). Both
// boxes are listed in every cube (and shell) of the slice they touch, and
// the overlap's corner lies in both, so in each slice where the two boxes
// overlap the pair is found in exactly one cell, without a set of the
// pairs seen: the full cycle can go through the cells once, pairing each
// cell's members in place, where a query per aircraft goes through every
// cell it is listed in and scans each pair from both sides. A pair whose
// boxes overlap in several slices is found once in each (the caller
// removes the repeats).
//
// In a cell split by party, the members of one party are not paired with
// each other unless the grid pairs all parties (fn must still tell the
// parties of a mixed cell apart). lastSlice[id], when not nil, is the
// last slice in which aircraft id can be in a loss of separation,
// counted from slice base: its members in later slices are left out.
// s holds the lists it reuses: the
// cell's members, in a cell of 8 or more sorted by the lower ends of their
// bands so that each is tested only against those whose bands reach it
// (a smaller cell pairs each member with each). Read-only on the grid,
// so several cells may be paired at once, each with its own s.
func (g *grid) pairsIn(ci int32, base int64, lastSlice []int32, s *cellScratch, fn func(a, b int32)) {
	c := &g.cells[ci]
	if c.count < 2 {
		return
	}
	key := g.cellKeys[ci]
	slice := key.slice - base
	ms := s.members[:0]
	add := func(list []member, part int32) {
		for i := range list {
			m := &list[i]
			if lastSlice == nil || slice <= int64(lastSlice[m.id]) {
				ms = append(ms, cellMember{box: m.box, id: m.id, part: part})
			}
		}
	}
	add(c.mixed, -1)
	for gi := range c.groups {
		part := int32(gi)
		if g.allParties {
			part = -1
		}
		add(c.groups[gi].members, part)
	}
	s.members = ms
	if len(ms) < 2 {
		return
	}
	// A few members are paired each with each: sorting them costs more
	// than the band tests it saves. The sort is of numbers (the band's
	// lower end, whose bits order as the float does, above the member's
	// position), the members then copied in their order.
	sorted := len(ms) >= sortMembersFrom
	if sorted {
		keys := s.keys[:0]
		for i := range ms {
			keys = append(keys, uint64(sortableBits32(ms[i].box.rlo))<<32|uint64(i))
		}
		slices.Sort(keys)
		byBand := s.sorted[:0]
		for _, k := range keys {
			byBand = append(byBand, ms[uint32(k)])
		}
		s.keys, s.sorted = keys, byBand
		ms = byBand
	}
	for x := range ms {
		p := &ms[x]
		for y := x + 1; y < len(ms); y++ {
			q := &ms[y]
			if sorted && q.box.rlo > p.box.rhi {
				break
			}
			if (p.part >= 0 && p.part == q.part) || !p.box.overlaps(&q.box) {
				continue
			}
			// The reference point: the lowest corner of the overlap, in
			// the cube (and shell) that pieces gives it.
			if g.cellCoord(float64(max(p.box.min[0], q.box.min[0]))) != int64(key.i) ||
				g.cellCoord(float64(max(p.box.min[1], q.box.min[1]))) != int64(key.j) ||
				g.cellCoord(float64(max(p.box.min[2], q.box.min[2]))) != int64(key.k) ||
				g.shellM > 0 && g.shellOf(max(p.box.rlo, q.box.rlo)) != int64(key.shell) {
				continue
			}
			fn(p.id, q.id)
		}
	}
}

// cellScratch is what pairsIn reuses from one cell to the next.
type cellScratch struct {
	members, sorted []cellMember
	keys            []uint64
}

// sortableBits32 maps a float32 that is not NaN to a uint32 of the same
// order: the sign bit flipped for a positive number, every bit for a
// negative one.
func sortableBits32(f float32) uint32 {
	b := math.Float32bits(f)
	if b&(1<<31) != 0 {
		return ^b
	}
	return b | 1<<31
}
