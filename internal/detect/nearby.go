package detect

import "math"

// Nearby is the engine's space-time grid (index.go) used as a plain spatial
// index of cubes, for the packages that need the same neighbour search
// outside conflict detection: package disclose keeps which aircraft and
// volumes are near which with it. Every entry lives in one time slice (the
// grid's time dimension is not used), so two entries are found together
// exactly when their cubes overlap; the caller applies its exact test to
// what a query returns. Not safe for concurrent use.
type Nearby struct {
	g     *grid
	stamp []uint32
	epoch uint32
}

// NewNearby makes an empty index of ECEF cubes of cellM meters. A cell
// about as large as the cubes listed keeps each cube in at most eight
// cells.
func NewNearby(cellM float64) *Nearby {
	g := newGrid(cellM, minSliceS, 0)
	// One party for all: every entry is everyone's neighbour.
	g.allParties = true
	return &Nearby{g: g}
}

// Set lists entry id (dense, from 0) as the cube of half-edge halfM
// centred on posECEF (meters), replacing its previous listing.
func (n *Nearby) Set(id int32, posECEF [3]float64, halfM float64) {
	for int(id) >= len(n.stamp) {
		n.stamp = append(n.stamp, 0)
	}
	// Every entry at time 0 with no extent in time: one slice for all; an
	// infinite radial band, so that only the cubes decide.
	n.g.set(id, 0, posECEF, [3]float64{}, 0, 0, halfM, math.Inf(1))
}

// Remove takes entry id out of the index.
func (n *Nearby) Remove(id int32) { n.g.remove(id) }

// Query calls fn once for every other entry whose cube overlaps id's.
func (n *Nearby) Query(id int32, fn func(other int32)) {
	if int(id) >= len(n.g.live) || !n.g.live[id] {
		return
	}
	n.epoch++
	if n.epoch == 0 {
		clear(n.stamp)
		n.epoch = 1
	}
	n.g.query(id, 0, n.stamp, n.epoch, fn)
}

// QueryUntil is Query that stops as soon as fn returns false: for callers
// that need only some of the neighbours (one of each party, say).
func (n *Nearby) QueryUntil(id int32, fn func(other int32) bool) {
	g := n.g
	if int(id) >= len(g.live) || !g.live[id] {
		return
	}
	n.epoch++
	if n.epoch == 0 {
		clear(n.stamp)
		n.epoch = 1
	}
	epoch := n.epoch
	n.stamp[id] = epoch
	for mi := range g.in[id] {
		m := &g.in[id][mi]
		c := &g.cells[m.cell]
		list := c.mixed
		for gi := -1; gi < len(c.groups); gi++ {
			if gi >= 0 {
				list = c.groups[gi].members
			}
			for oi := range list {
				o := &list[oi]
				if !o.box.overlaps(&m.box) || n.stamp[o.id] == epoch {
					continue
				}
				n.stamp[o.id] = epoch
				if !fn(o.id) {
					return
				}
			}
		}
	}
}
