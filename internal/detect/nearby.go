package detect

import "math"

// Nearby is the engine's space-time grid (index.go) used as a plain spatial
// index of cubes, for the packages that need the same neighbour search
// outside conflict detection: package disclose keeps which aircraft and
// volumes are near which with it. Every entry lives in one time slice (the
// grid's time dimension is not used), so two entries of different parties
// are found together exactly when their cubes overlap; the caller applies
// its exact test to what a query returns. Not safe for concurrent use.
type Nearby struct {
	g     *grid
	stamp []uint32
	epoch uint32
}

// NewNearby makes an empty index of ECEF cubes of cellM meters. A cell
// about as large as the cubes listed keeps each cube in at most eight
// cells.
func NewNearby(cellM float64) *Nearby {
	return &Nearby{g: newGrid(cellM, minSliceS, 0)}
}

// Set lists entry id (dense, from 0), of party (a number of the
// caller's, from 0), as the cube of half-edge halfM centred on posECEF
// (meters), replacing its previous listing. A crowded cell keeps each
// party's entries apart (the grid's groups), so that QueryOthersUntil
// passes over a party's entries whole.
func (n *Nearby) Set(id, party int32, posECEF [3]float64, halfM float64) {
	for int(id) >= len(n.stamp) {
		n.stamp = append(n.stamp, 0)
	}
	// Every entry at time 0 with no extent in time: one slice for all; an
	// infinite radial band, so that only the cubes decide.
	n.g.set(id, party, posECEF, [3]float64{}, 0, 0, halfM, math.Inf(1))
}

// Remove takes entry id out of the index.
func (n *Nearby) Remove(id int32) { n.g.remove(id) }

// QueryOthersUntil calls fn once for every entry of another party than
// id's whose cube overlaps id's, until fn returns false, leaving out the
// entries of each party done reports as done (asked again after each
// call of fn): for callers that need one neighbour of each other party.
// In a crowded cell, where the grid keeps each party's entries apart, the
// entries of id's own party and of a party done are passed over whole, not
// looked at one by one: scanned one by one, a city of a party's drones
// listed before the other party's made each of its reports look at all of
// them (BENCHMARKS.md, "Need to know in a crowded cell").
func (n *Nearby) QueryOthersUntil(id int32, done func(party int32) bool, fn func(other int32) bool) {
	g := n.g
	if !g.listed(id) {
		return
	}
	n.epoch++
	if n.epoch == 0 {
		clear(n.stamp)
		n.epoch = 1
	}
	epoch := n.epoch
	n.stamp[id] = epoch
	party := g.party[id]
	// visit calls fn for member o if its cube overlaps b and it was not
	// visited yet; false when the query is over.
	visit := func(o *member, b *box32) bool {
		if !o.box.overlaps(b) || n.stamp[o.id] == epoch {
			return true
		}
		n.stamp[o.id] = epoch
		return fn(o.id)
	}
	for mi := range g.in[id] {
		m := &g.in[id][mi]
		c := &g.cells[m.cell]
		for oi := range c.mixed {
			o := &c.mixed[oi]
			if op := g.party[o.id]; op == party || done(op) {
				continue
			}
			if !visit(o, &m.box) {
				return
			}
		}
		for gi := range c.groups {
			gr := &c.groups[gi]
			for oi := range gr.members {
				if gr.party == party || done(gr.party) {
					break
				}
				if !visit(&gr.members[oi], &m.box) {
					return
				}
			}
		}
	}
}
