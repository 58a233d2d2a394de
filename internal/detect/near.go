package detect

import (
	"math"
	"math/bits"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// nearIndex lists the live tracks by class and by cube of earth-centred
// space, so that SelectNear finds the tracks near a few points without
// reading every track. It is kept with the track table: a report moves
// its track to the cube of its reported position (one map update when
// the cube changes), an expiry takes the track out.
//
// A track is found near a point by where it will be, not where it was
// reported: the query's radius grows with each track's speed and age.
// The index keeps, by class, an upper bound of the speed of the live
// tracks and a lower bound of their report times, which bound that
// growth for the whole class: each report loosens them, each Expire
// (the periodic job, which reads every track anyway) makes them exact.
type nearIndex struct {
	// cellM[c] is the edge of the cubes of class c (nearCellsM but in
	// tests).
	cellM []float64
	cells map[nearCell]*nearList
	// cellOf[id] is the cube track id is listed in, at[id] its place in
	// the cube's list (-1: not listed).
	cellOf []nearCell
	at     []int32
	// count[c] is the number of listed tracks of class c;
	// maxSpeedMps[c] is at least the speed of every one of them and
	// minTimeNs[c] at most the report time (unix ns) of every one.
	count       []int
	maxSpeedMps []float64
	minTimeNs   []int64
	// query counts SelectNear's queries: a cube whose seen is query has
	// been read by the current one. marked has bit id%64 of word id/64
	// set for each track the query read, kept between queries.
	query  uint32
	marked []uint64
}

// nearList lists the tracks of a cube.
type nearList struct {
	ids  []track.ID
	seen uint32
}

// nearCell is a cube of the index of one class.
type nearCell struct {
	class   uint8
	x, y, z int32
}

// nearCellM is the largest edge of the index's cubes. The resolution of
// an airliner reaches some 200-250 km (its lookahead at its fastest
// candidate and the fastest track's speed): a query then reads some 64
// cubes per centre, most of them empty above or below the traffic.
// Measured on global 25,000 (BenchmarkNearAlerts in package service),
// cubes of 200 km cost the least CPU per group of alerts, against 50,
// 100 and 400 km (see BENCHMARKS.md).
const nearCellM = 200_000

// nearMinCellM is the smallest edge: below it a query of a slow class
// reads more cubes than it saves tracks.
const nearMinCellM = 1_000

// nearCellsM is the edge of the cubes of each class of t: about the
// radius of the query around an aircraft of the class for the tracks of
// the class, twice its fastest ground speed over the lookahead of its
// pair with itself, within nearMinCellM and nearCellM. With one edge
// for every class, 200 km, the query for the drones near a drone (6 km
// with the default rules) read every drone of a city (19,000 of metro
// 25,000's): at 6 km it reads some 5,000, and the search for an alert
// of two drones takes about half the CPU (BENCHMARKS.md). An airliner's
// query for drones reaches past a city and reads the city's cubes
// whatever their edge.
func nearCellsM(r rules.Rules, t *Table) []float64 {
	out := make([]float64, len(t.classes))
	for c, class := range t.classes {
		// Every pair of classes has its entry (NewTable).
		lookS := t.For(uint8(c), uint8(c)).LookaheadS
		out[c] = min(max(2*r.PerformanceFor(class).MaxGroundSpeedMps*lookS, nearMinCellM), nearCellM)
	}
	return out
}

// nearPadM widens each query: the exact test the caller applies rounds
// differently from the cube arithmetic.
const nearPadM = 1

func newNearIndex(cellM []float64) nearIndex {
	classes := len(cellM)
	x := nearIndex{
		cellM:       cellM,
		cells:       make(map[nearCell]*nearList),
		count:       make([]int, classes),
		maxSpeedMps: make([]float64, classes),
		minTimeNs:   make([]int64, classes),
	}
	for c := range x.minTimeNs {
		x.minTimeNs[c] = math.MaxInt64
	}
	return x
}

func (x *nearIndex) cellAt(class uint8, ecef [3]float64) nearCell {
	return nearCell{class: class,
		x: int32(math.Floor(ecef[0] / x.cellM[class])),
		y: int32(math.Floor(ecef[1] / x.cellM[class])),
		z: int32(math.Floor(ecef[2] / x.cellM[class])),
	}
}

// set lists track id of class c at its reported position, with its
// speed and report time.
func (x *nearIndex) set(id track.ID, c uint8, ecef [3]float64, speedMps float64, timeNs int64) {
	for int(id) >= len(x.at) {
		x.at = append(x.at, -1)
		x.cellOf = append(x.cellOf, nearCell{})
	}
	x.maxSpeedMps[c] = max(x.maxSpeedMps[c], speedMps)
	x.minTimeNs[c] = min(x.minTimeNs[c], timeNs)
	cell := x.cellAt(c, ecef)
	if x.at[id] >= 0 {
		if x.cellOf[id] == cell {
			return
		}
		x.remove(id)
	}
	list := x.cells[cell]
	if list == nil {
		list = &nearList{}
		x.cells[cell] = list
	}
	x.at[id] = int32(len(list.ids))
	x.cellOf[id] = cell
	list.ids = append(list.ids, id)
	x.count[c]++
}

// remove takes track id out of the index.
func (x *nearIndex) remove(id track.ID) {
	if int(id) >= len(x.at) || x.at[id] < 0 {
		return
	}
	cell := x.cellOf[id]
	list := x.cells[cell]
	at, last := x.at[id], list.ids[len(list.ids)-1]
	list.ids[at] = last
	x.at[last] = at
	list.ids = list.ids[:len(list.ids)-1]
	if len(list.ids) == 0 {
		delete(x.cells, cell)
	}
	x.at[id] = -1
	x.count[cell.class]--
}

// wholeEarthM is more than any two points on or above the earth are
// apart.
const wholeEarthM = 1e8

// SelectNear returns a copy of the live tracks, in id order, for which
// keep returns true among those that may lie within radiusM of one of
// the centres (earth-centred coordinates, metres): keep is called with
// every track of class c listed within radiusM(i, c, maxSpeedMps,
// maxStaleS) of centre i, and perhaps others, where maxSpeedMps is at
// least the speed of every live track of that class and maxStaleS at
// least how long before now any of them was reported (0 when none was
// before now). A negative radius asks for no track of that class. So
// that it returns the same as a scan of every live track with keep
// (Select, in the tests), keep must accept only the tracks of class c
// within the radius radiusM would give for the track's own speed and
// age.
func (e *Engine) SelectNear(centres [][3]float64, now time.Time, radiusM func(centre int, class string, maxSpeedMps, maxStaleS float64) float64, keep func(*track.State) bool) []track.State {
	x := &e.near
	x.query++
	if x.query == 0 {
		// Wrapped: cubes read by an old query could look read.
		for _, list := range x.cells {
			list.seen = 0
		}
		x.query = 1
	}
	if words := (e.tracks.Cap() + 63) / 64; len(x.marked) < words {
		x.marked = append(x.marked, make([]uint64, words-len(x.marked))...)
	}
	// read marks the tracks of a cube, once per query: each track is
	// listed in one cube.
	read := func(list *nearList) {
		if list == nil || list.seen == x.query {
			return
		}
		list.seen = x.query
		for _, id := range list.ids {
			x.marked[id/64] |= 1 << (id % 64)
		}
	}
	nowNs := now.UnixNano()
	for i, ce := range centres {
		for c, class := range e.params.Table.classes {
			if x.count[c] == 0 {
				continue
			}
			staleS := max(0, float64(nowNs-x.minTimeNs[c])/1e9)
			r := radiusM(i, class, x.maxSpeedMps[c], staleS)
			if r < 0 {
				continue
			}
			r += nearPadM
			// A radius that is not a number or reaches past the earth
			// (an infinite one would overflow the cube numbers) reads
			// every cube of the class: never fewer tracks than asked.
			whole := math.IsNaN(r) || r > wholeEarthM
			var lo, hi [3]int64
			cubes := 1.0
			for k := range 3 {
				if whole {
					lo[k], hi[k] = math.MinInt32, math.MaxInt32
					continue
				}
				lo[k] = int64(math.Floor((ce[k] - r) / x.cellM[c]))
				hi[k] = int64(math.Floor((ce[k] + r) / x.cellM[c]))
				cubes *= float64(hi[k] - lo[k] + 1)
			}
			if whole || cubes > float64(len(x.cells)) {
				// A reach wider than the traffic: every listed cube
				// of the class within the box.
				for cell, list := range x.cells {
					if cell.class == uint8(c) && inBox(cell, lo, hi) {
						read(list)
					}
				}
				continue
			}
			for cx := lo[0]; cx <= hi[0]; cx++ {
				for cy := lo[1]; cy <= hi[1]; cy++ {
					for cz := lo[2]; cz <= hi[2]; cz++ {
						read(x.cells[nearCell{class: uint8(c), x: int32(cx), y: int32(cy), z: int32(cz)}])
					}
				}
			}
		}
	}
	// The tracks read, in id order, their marks cleared.
	var out []track.State
	for w, word := range x.marked {
		if word == 0 {
			continue
		}
		x.marked[w] = 0
		for ; word != 0; word &= word - 1 {
			id := track.ID(w*64 + bits.TrailingZeros64(word))
			if s, ok := e.tracks.Get(id); ok && keep(s) {
				out = append(out, *s)
			}
		}
	}
	return out
}

func inBox(cell nearCell, lo, hi [3]int64) bool {
	return int64(cell.x) >= lo[0] && int64(cell.x) <= hi[0] &&
		int64(cell.y) >= lo[1] && int64(cell.y) <= hi[1] &&
		int64(cell.z) >= lo[2] && int64(cell.z) <= hi[2]
}

// tightenNear makes the index's bounds of speed and report time exact
// for the live tracks.
func (e *Engine) tightenNear() {
	x := &e.near
	for c := range x.count {
		x.maxSpeedMps[c], x.minTimeNs[c] = 0, math.MaxInt64
	}
	e.tracks.Each(func(id track.ID, s *track.State) {
		c := e.class[id]
		x.maxSpeedMps[c] = max(x.maxSpeedMps[c], speedOf(s))
		x.minTimeNs[c] = min(x.minTimeNs[c], s.Time.UnixNano())
	})
}

// speedOf is the track's speed in earth-centred space, computed as
// SelectNear's callers compute it.
func speedOf(s *track.State) float64 {
	return math.Sqrt(s.VelECEF[0]*s.VelECEF[0] + s.VelECEF[1]*s.VelECEF[1] + s.VelECEF[2]*s.VelECEF[2])
}
