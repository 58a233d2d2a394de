package detect

import (
	"math"
)

// Box is an axis-aligned box in Earth-centred, Earth-fixed coordinates
// (meters). The index stores one per aircraft: the segment the aircraft
// sweeps over the time a pair evaluation can look at, grown by half the
// prune radius on every side.
type Box struct {
	Min, Max [3]float64
}

// Overlaps reports whether the two closed boxes share a point.
func (b Box) Overlaps(o Box) bool {
	return b.Min[0] <= o.Max[0] && o.Min[0] <= b.Max[0] &&
		b.Min[1] <= o.Max[1] && o.Min[1] <= b.Max[1] &&
		b.Min[2] <= o.Max[2] && o.Min[2] <= b.Max[2]
}

// sweptBox is the box around the segment from p to p+v*spanS, grown by grow
// meters on every side.
func sweptBox(p, v [3]float64, spanS, grow float64) Box {
	var b Box
	for k := 0; k < 3; k++ {
		a, e := p[k], p[k]+v[k]*spanS
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

// grid is a uniform 3-D grid over ECEF space. Every member is listed in
// every cell its box touches, so two members whose boxes overlap share at
// least the cell holding the lowest corner of the boxes' intersection: a
// query over the cells of one box therefore finds every box that overlaps
// it (the prune never misses a pair; see Engine for why a pair outside the
// candidates cannot be in conflict).
type grid struct {
	cellM float64
	cells map[uint64][]int32
	// Per member, indexed by id: its box, the cells it is listed in, and
	// the query stamp that deduplicates members found in several cells.
	boxes   []Box
	inCells [][]uint64
	live    []bool
	stamp   []uint32
	epoch   uint32
}

func newGrid(cellM float64) *grid {
	return &grid{cellM: cellM, cells: make(map[uint64][]int32)}
}

func (g *grid) cellCoord(x float64) int64 {
	return int64(math.Floor(x/g.cellM)) + cellBias
}

func packCell(i, j, k int64) uint64 {
	return uint64(i)<<42 | uint64(j)<<21 | uint64(k)
}

func (g *grid) grow(id int32) {
	for int(id) >= len(g.boxes) {
		g.boxes = append(g.boxes, Box{})
		g.inCells = append(g.inCells, nil)
		g.live = append(g.live, false)
		g.stamp = append(g.stamp, 0)
	}
}

// set places member id with box b, replacing its previous box.
func (g *grid) set(id int32, b Box) {
	g.grow(id)
	if g.live[id] {
		old := g.boxes[id]
		if g.sameCells(old, b) {
			g.boxes[id] = b
			return
		}
		g.remove(id)
	}
	g.boxes[id] = b
	g.live[id] = true
	cs := g.inCells[id][:0]
	i0, i1 := g.cellCoord(b.Min[0]), g.cellCoord(b.Max[0])
	j0, j1 := g.cellCoord(b.Min[1]), g.cellCoord(b.Max[1])
	k0, k1 := g.cellCoord(b.Min[2]), g.cellCoord(b.Max[2])
	for i := i0; i <= i1; i++ {
		for j := j0; j <= j1; j++ {
			for k := k0; k <= k1; k++ {
				c := packCell(i, j, k)
				g.cells[c] = append(g.cells[c], id)
				cs = append(cs, c)
			}
		}
	}
	g.inCells[id] = cs
}

func (g *grid) sameCells(a, b Box) bool {
	for k := 0; k < 3; k++ {
		if g.cellCoord(a.Min[k]) != g.cellCoord(b.Min[k]) || g.cellCoord(a.Max[k]) != g.cellCoord(b.Max[k]) {
			return false
		}
	}
	return true
}

// remove takes member id out of the grid.
func (g *grid) remove(id int32) {
	if int(id) >= len(g.live) || !g.live[id] {
		return
	}
	for _, c := range g.inCells[id] {
		list := g.cells[c]
		for n, m := range list {
			if m == id {
				last := len(list) - 1
				list[n] = list[last]
				list = list[:last]
				break
			}
		}
		if len(list) == 0 {
			delete(g.cells, c)
		} else {
			g.cells[c] = list
		}
	}
	g.inCells[id] = g.inCells[id][:0]
	g.live[id] = false
}

// nextEpoch starts a new deduplication round.
func (g *grid) nextEpoch() uint32 {
	g.epoch++
	if g.epoch == 0 {
		// Wrapped: old stamps could collide with new epochs.
		clear(g.stamp)
		g.epoch = 1
	}
	return g.epoch
}

// query calls fn once for every other live member whose box overlaps the
// box of id, in the epoch given (members already marked in it are skipped,
// which lets the caller mark members it handles itself).
func (g *grid) query(id int32, epoch uint32, fn func(other int32)) {
	b := g.boxes[id]
	g.stamp[id] = epoch
	for _, c := range g.inCells[id] {
		for _, m := range g.cells[c] {
			if g.stamp[m] == epoch {
				continue
			}
			if !g.boxes[m].Overlaps(b) {
				continue
			}
			g.stamp[m] = epoch
			fn(m)
		}
	}
}

// cellKeys lists the occupied cells, for splitting a full pass.
func (g *grid) cellKeys() []uint64 {
	keys := make([]uint64, 0, len(g.cells))
	for c := range g.cells {
		keys = append(keys, c)
	}
	return keys
}

// pairsInCell calls fn for every pair of members of cell c whose boxes
// overlap and whose intersection's lowest corner lies in c, so that over all
// cells every overlapping pair is seen exactly once without a shared set.
func (g *grid) pairsInCell(c uint64, fn func(a, b int32)) {
	list := g.cells[c]
	for x := 0; x < len(list); x++ {
		a := list[x]
		ba := g.boxes[a]
		for y := x + 1; y < len(list); y++ {
			b := list[y]
			bb := g.boxes[b]
			if !ba.Overlaps(bb) {
				continue
			}
			lo0 := math.Max(ba.Min[0], bb.Min[0])
			lo1 := math.Max(ba.Min[1], bb.Min[1])
			lo2 := math.Max(ba.Min[2], bb.Min[2])
			if packCell(g.cellCoord(lo0), g.cellCoord(lo1), g.cellCoord(lo2)) != c {
				continue
			}
			fn(a, b)
		}
	}
}
