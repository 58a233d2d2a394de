package detect

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/deconflict/deconflict/internal/track"
)

// The full cycle (Engine.FullCycle) computes the whole conflict set from
// scratch. Its work is spread over all cores in buckets: the candidate
// pairs of an entry within one class are grouped by their first aircraft
// (bucketed), and each bucket is rid of repeats (eachDistinct) and
// evaluated by whichever worker takes it; the hits are grouped the same
// way by the key order of their first aircraft, and each bucket is
// sorted and made into conflicts in place. No step merges lists on one
// core.

// bucketsPerWorker is how many buckets each worker has on average: enough
// that the buckets of the busiest part of the airspace do not leave one
// core working alone at the end.
const bucketsPerWorker = 16

// fewListed is the number of aircraft in the grid of an entry between two
// classes below which the full cycle pairs each with every aircraft of the
// first class instead of querying the grid for those.
const fewListed = 64

// cycleHit is a conflict the full cycle found: the pair (a has the smaller
// key), its entry, levels and result; the rest of the Conflict follows
// from the two tracks. order is the rank of a in key order (keyRanks) in
// its high 32 bits and that of b in its low: the order of pair keys.
type cycleHit struct {
	order             uint64
	a, b              track.ID
	entry             int32
	level, withMargin int32
	result            PairResult
}

// cycleBuffers are the full cycle's working lists, one per worker where
// the workers fill them at once, kept from one cycle to the next: a
// cycle over a city of 100,000 drones fills tens of megabytes of them,
// which, allocated afresh each cycle, had the garbage collector mark a
// heap of over a gigabyte every few cycles. The hits, candidates and
// result are emptied (or wholly overwritten) before they are used, so
// no conflict of a cycle reaches the next. Some state is kept on
// purpose: the stamps and their epochs (an epoch only grows within a
// wrap, and a wrap clears the stamps, so an old stamp never equals the
// current epoch) and the key order (byKey, rank, newcomers: keys never
// change, and a reused id is a newcomer; keyRanks).
type cycleBuffers struct {
	// Per worker: the hits, the candidate pair ids of the entry being
	// paired, the lists of the cell being paired, the pieces of the
	// path being queried, the stamps of the queries and the pair
	// repeats and their epoch, a count per bucket, and the groups of a
	// bucket's pairs by first aircraft (eachDistinct).
	hits    [][]cycleHit
	found   [][]uint64
	cells   []cellScratch
	pieces  [][]membership
	stamp   [][]uint32
	epoch   []uint32
	counts  [][]int
	ends    [][]int32
	seconds [][]track.ID

	// lastSlice[id] is the last slice of the entry's grid in which
	// aircraft id can be in a loss of separation, counted from the slice
	// of the latest report (32 bits: half the cache the cell pass's
	// lookups of it need).
	lastSlice []int32
	// pairs and hits by bucket, and where each bucket starts.
	pairs    []uint64
	byBucket []cycleHit
	starts   []int

	// The key order of the live tracks: byKey lists them in it and
	// rank[id] is the position of track id there. The tracks created
	// since byKey was made are in newcomers, unless there were so many
	// that they are sorted with the rest (resort).
	byKey     []track.ID
	rank      []uint32
	newcomers []track.ID
	resort    bool
	merged    []track.ID
	mark      []bool
}

// joined records that track id was created; live is the number of live
// tracks. The list is bounded: past as many newcomers as live tracks,
// all are sorted again.
func (b *cycleBuffers) joined(id track.ID, live int) {
	switch {
	case b.resort:
	case len(b.newcomers) >= max(1024, live):
		b.resort = true
		b.newcomers = b.newcomers[:0]
	default:
		b.newcomers = append(b.newcomers, id)
	}
}

// ready readies the per-worker lists for that many workers and n tracks
// (ids below n), emptying the hits.
func (b *cycleBuffers) ready(workers, n int) {
	for len(b.hits) < workers {
		b.hits = append(b.hits, nil)
		b.found = append(b.found, nil)
		b.cells = append(b.cells, cellScratch{})
		b.pieces = append(b.pieces, nil)
		b.stamp = append(b.stamp, nil)
		b.epoch = append(b.epoch, 0)
		b.counts = append(b.counts, nil)
		b.ends = append(b.ends, nil)
		b.seconds = append(b.seconds, nil)
	}
	for w := range workers {
		b.hits[w] = b.hits[w][:0]
		// A stamp of a new id is 0, which no epoch equals.
		b.stamp[w] = append(b.stamp[w], make([]uint32, max(0, n-len(b.stamp[w])))...)
	}
}

// keyRanks returns rank, the position of each live track in key order
// (track.Key.Compare), by id: the full cycle orders each pair and sorts
// its conflicts by comparing ranks where keys are two string comparisons
// on tracks all over memory. Keys do not change, so the order is made
// again only for the tracks created since: they are sorted and merged
// into it. A track that expired leaves a gap in the ranks, which keeps
// their order; its id, when reused, is a newcomer.
func (e *Engine) keyRanks() []uint32 {
	b := &e.cycle
	n := e.tracks.Cap()
	b.rank = append(b.rank, make([]uint32, max(0, n-len(b.rank)))...)
	if !b.resort && len(b.newcomers) == 0 {
		return b.rank
	}
	keyOf := func(id track.ID) track.Key {
		s, _ := e.tracks.Get(id)
		return s.Key()
	}
	byKey := func(x, y track.ID) int { return keyOf(x).Compare(keyOf(y)) }
	if b.resort {
		b.byKey = b.byKey[:0]
		e.tracks.Each(func(id track.ID, _ *track.State) { b.byKey = append(b.byKey, id) })
		slices.SortFunc(b.byKey, byKey)
	} else {
		b.mark = append(b.mark, make([]bool, max(0, n-len(b.mark)))...)
		// Each live newcomer once (an id can expire and be reused).
		fresh := b.newcomers[:0]
		for _, id := range b.newcomers {
			if _, ok := e.tracks.Get(id); ok && !b.mark[id] {
				b.mark[id] = true
				fresh = append(fresh, id)
			}
		}
		slices.SortFunc(fresh, byKey)
		merged := b.merged[:0]
		i := 0
		for _, id := range b.byKey {
			if _, ok := e.tracks.Get(id); !ok || b.mark[id] {
				continue
			}
			for ; i < len(fresh) && byKey(fresh[i], id) < 0; i++ {
				merged = append(merged, fresh[i])
			}
			merged = append(merged, id)
		}
		merged = append(merged, fresh[i:]...)
		for _, id := range fresh {
			b.mark[id] = false
		}
		b.byKey, b.merged = merged, b.byKey
	}
	for r, id := range b.byKey {
		b.rank[id] = uint32(r)
	}
	b.newcomers, b.resort = b.newcomers[:0], false
	return b.rank
}

// FullCycle computes the whole conflict set from scratch through the
// index, on all cores, sorted by pair key. It does not change the engine's
// set, but it writes the engine's cycle buffers: like every other call
// of the engine, it must not run at the same time as one (package alert
// holds its lock around each). Each entry's pairs are found once: within one class by a pass over
// the grid's cells, each pair in its reference cell (pairCells); between
// two classes from each aircraft of the first class, queried against the
// grid, or, when the grid lists few aircraft, from each of those, against
// every aircraft of the first class.
//
// The workers keep what they find as small records without pointers
// (cycleHit); the conflicts, each holding copies of two tracks, are made
// once at the end, in order.
func (e *Engine) FullCycle() []Conflict { return e.FullCycleInto(nil) }

// FullCycleInto is FullCycle writing the conflicts over dst, whose
// capacity it reuses when large enough: a caller that runs cycles one
// after another passes the previous cycle's result back. The result
// holds the new set only, whatever dst held; dst's elements, up to its
// capacity, are overwritten or cleared, so a caller that still needs the
// previous result (to compare, or held by another goroutine) passes nil
// or a slice of its own.
func (e *Engine) FullCycleInto(dst []Conflict) []Conflict {
	workers := runtime.GOMAXPROCS(0)
	n := e.tracks.Cap()
	b := &e.cycle
	b.ready(workers, n)
	rank := e.keyRanks()
	for _, ent := range e.params.Table.entries {
		x := e.index[ent.index]
		// What each worker goes through: ids (of the grid, or of plain).
		var ids []track.ID
		var from func(w int, id track.ID, fn func(track.ID))
		switch {
		case !ent.twoSided():
			e.pairCells(ent, x.grid, workers, rank)
			continue
		case len(x.plain) == 0 || x.grid.count == 0:
			continue
		case x.grid.count <= fewListed:
			from = func(_ int, id track.ID, fn func(track.ID)) {
				if x.grid.listed(id) {
					for _, other := range x.plain {
						fn(other)
					}
				}
			}
		default:
			ids = x.plain
			from = func(w int, id track.ID, fn func(track.ID)) {
				s, _ := e.tracks.Get(id)
				v := s.VelECEF
				speed := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
				reportNs := s.Time.UnixNano()
				epoch := b.nextEpoch(w)
				b.pieces[w] = x.grid.queryPath(b.pieces[w], e.party[id], s.ECEF, v, reportNs, e.params.querySpanS(ent, reportNs, e.latestNs), ent.growM(speed), ent.growVM(speed), b.stamp[w], epoch, fn)
			}
		}
		count := int32(n)
		if ids != nil {
			count = int32(len(ids))
		}
		var next atomic.Int32
		// Chunks of up to 256 ids, and at least eight per worker: the
		// 200 manned aircraft of a city, each querying the drones' grid,
		// would otherwise be one chunk on one core.
		chunk := min(256, max(1, count/int32(8*workers)))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				out := b.hits[w]
				for {
					lo := next.Add(chunk) - chunk
					if lo >= count {
						break
					}
					for k := lo; k < min(lo+chunk, count); k++ {
						id := k
						if ids != nil {
							id = ids[k]
						}
						if _, ok := e.tracks.Get(id); !ok {
							continue
						}
						from(w, id, func(other track.ID) {
							if h, ok := e.cycleHitOf(id, other, ent, rank); ok {
								out = append(out, h)
							}
						})
					}
				}
				b.hits[w] = out
			})
		}
		wg.Wait()
	}
	return e.conflictsOf(dst, workers)
}

// cycleHitOf evaluates the full cycle's candidate pair (a, b) of entry
// ent: pairs of one party and those mayPair's cheap tests
// drop (on e.kin, the same numbers evaluate reads) end there without
// reading the two tracks; the rest are judged in key order, which the
// ranks tell. The hit names the pair in key order.
func (e *Engine) cycleHitOf(a, b track.ID, ent *Entry, rank []uint32) (cycleHit, bool) {
	if !e.params.SameParty && e.party[a] == e.party[b] {
		return cycleHit{}, false
	}
	pa, pb, ok := mayPair(&e.kin[a], &e.kin[b], ent, &e.params)
	if !ok {
		return cycleHit{}, false
	}
	if rank[a] > rank[b] {
		a, b = b, a
		pa, pb = pb, pa
	}
	s, _ := e.tracks.Get(a)
	o, _ := e.tracks.Get(b)
	level, withMargin, res := judge(s, o, pa, pb, ent, &e.params)
	if level == 0 {
		return cycleHit{}, false
	}
	return cycleHit{order: uint64(rank[a])<<32 | uint64(rank[b]), a: a, b: b, level: int32(level), withMargin: int32(withMargin), entry: int32(ent.index), result: res}, true
}

// pairCells is the full cycle of an entry within one class: every cell
// of its grid is gone through once, on all cores, and its members paired
// in place (grid.pairsIn), each pair in its reference cell of each slice
// where the two boxes overlap, in the slices up to the earlier of the two
// aircraft's untilNs only. Those candidates are grouped in buckets by
// their first aircraft, and each bucket grouped by first aircraft (a
// counting sort), rid of repeats (stamps on the second) and evaluated,
// each pair once, by whichever worker takes it: the first aircraft's
// kinematics and track are read in order, the second's in no order. The hits are appended to the workers' lists; conflictsOf sorts
// them, so the order in which the workers take the cells does not matter.
func (e *Engine) pairCells(ent *Entry, g *grid, workers int, rank []uint32) {
	if g.count < 2 {
		return
	}
	b := &e.cycle
	n := e.tracks.Cap()
	// untilNs is at most the lookahead (and a millisecond) after the
	// latest report: the count of slices from there fits 32 bits.
	base := floorDiv(e.latestNs, g.sliceNs)
	b.lastSlice = append(b.lastSlice[:0], make([]int32, n)...)
	for id := range b.lastSlice {
		if g.listed(int32(id)) {
			last := floorDiv(e.params.untilNs(ent, e.kin[id].reportNs, e.latestNs), g.sliceNs) - base
			b.lastSlice[id] = int32(min(max(last, math.MinInt32), math.MaxInt32))
		}
	}
	cells := int32(len(g.cells))
	chunk := min(256, max(1, cells/int32(8*workers)))
	var next atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			out := b.found[w][:0]
			pair := func(x, y track.ID) { out = append(out, pairID(x, y)) }
			for {
				lo := next.Add(chunk) - chunk
				if lo >= cells {
					break
				}
				for ci := lo; ci < min(lo+chunk, cells); ci++ {
					g.pairsIn(ci, base, b.lastSlice, &b.cells[w], pair)
				}
			}
			b.found[w] = out
		})
	}
	wg.Wait()

	// Pair ids hold the smaller id in their high half.
	buckets := bucketsPerWorker * workers
	bucketOf := func(key *uint64) int { return int((*key >> 32) * uint64(buckets) / uint64(n)) }
	b.pairs, b.starts = bucketed(b.found[:workers], b.pairs, b.starts, b.counts, buckets, bucketOf)

	next.Store(0)
	for w := range workers {
		wg.Go(func() {
			out := b.hits[w]
			for {
				k := int(next.Add(1) - 1)
				if k >= buckets {
					break
				}
				b.eachDistinct(w, b.pairs[b.starts[k]:b.starts[k+1]], func(first, second track.ID) {
					if h, ok := e.cycleHitOf(first, second, ent, rank); ok {
						out = append(out, h)
					}
				})
			}
			b.hits[w] = out
		})
	}
	wg.Wait()
}

// eachDistinct calls fn once for each distinct pair of a bucket of pair
// ids, in the order of the first aircraft, as worker w: the pairs are
// grouped by their first aircraft (a counting sort: the bucket's first
// aircraft are a narrow range of ids), and the repeats of a second
// aircraft within a group are told by the worker's stamps. Linear where
// sorting the ids was not, which took a seventh of a city's full cycle.
func (b *cycleBuffers) eachDistinct(w int, pairs []uint64, fn func(first, second track.ID)) {
	if len(pairs) == 0 {
		return
	}
	lo, hi := track.ID(pairs[0]>>32), track.ID(pairs[0]>>32)
	for _, key := range pairs {
		lo, hi = min(lo, track.ID(key>>32)), max(hi, track.ID(key>>32))
	}
	// ends[a-lo] is, after the scatter, the end of a's group.
	ends := append(b.ends[w][:0], make([]int32, hi-lo+2)...)
	for _, key := range pairs {
		ends[track.ID(key>>32)-lo+1]++
	}
	for i := 1; i < len(ends); i++ {
		ends[i] += ends[i-1]
	}
	seconds := append(b.seconds[w][:0], make([]track.ID, len(pairs))...)
	for _, key := range pairs {
		at := &ends[track.ID(key>>32)-lo]
		seconds[*at] = track.ID(uint32(key))
		*at++
	}
	stamp := b.stamp[w]
	start := int32(0)
	for first := lo; first <= hi; first++ {
		end := ends[first-lo]
		epoch := b.nextEpoch(w)
		for _, second := range seconds[start:end] {
			if stamp[second] != epoch {
				stamp[second] = epoch
				fn(first, second)
			}
		}
		start = end
	}
	b.ends[w], b.seconds[w] = ends, seconds
}

// nextEpoch returns a new epoch for worker w's stamps, clearing them when
// the epochs wrap.
func (b *cycleBuffers) nextEpoch(w int) uint32 {
	b.epoch[w]++
	if b.epoch[w] == 0 {
		clear(b.stamp[w])
		b.epoch[w] = 1
	}
	return b.epoch[w]
}

// bucketed moves the items of the lists into dst (its capacity reused),
// grouped by bucket (bucketOf, in [0, buckets)) and within a bucket in
// the lists' order, one worker per list; it returns dst and where each
// bucket starts (bucket k is dst[starts[k]:starts[k+1]]). counts holds a
// scratch list per list.
func bucketed[T any](lists [][]T, dst []T, starts []int, counts [][]int, buckets int, bucketOf func(*T) int) ([]T, []int) {
	var wg sync.WaitGroup
	for w := range lists {
		counts[w] = append(counts[w][:0], make([]int, buckets)...)
		wg.Go(func() {
			for i := range lists[w] {
				counts[w][bucketOf(&lists[w][i])]++
			}
		})
	}
	wg.Wait()
	// Each list's place in each bucket, after the earlier lists'.
	starts = append(starts[:0], make([]int, buckets+1)...)
	at := 0
	for k := range buckets {
		starts[k] = at
		for w := range lists {
			c := counts[w][k]
			counts[w][k] = at
			at += c
		}
	}
	starts[buckets] = at
	if cap(dst) < at {
		dst = make([]T, at)
	}
	dst = dst[:at]
	for w := range lists {
		wg.Go(func() {
			for i := range lists[w] {
				k := bucketOf(&lists[w][i])
				dst[counts[w][k]] = lists[w][i]
				counts[w][k]++
			}
		})
	}
	wg.Wait()
	return dst, starts
}

// conflictsOf makes the conflicts of the workers' hits, sorted by pair
// key, over dst: the hits are grouped in buckets of the key order of
// their first aircraft, and each bucket is sorted and its conflicts made
// by whichever worker takes it.
func (e *Engine) conflictsOf(dst []Conflict, workers int) []Conflict {
	b := &e.cycle
	buckets := bucketsPerWorker * workers
	ranked := uint64(max(len(b.byKey), 1))
	bucketOf := func(h *cycleHit) int { return int((h.order >> 32) * uint64(buckets) / ranked) }
	b.byBucket, b.starts = bucketed(b.hits[:workers], b.byBucket, b.starts, b.counts, buckets, bucketOf)
	total := len(b.byBucket)
	if cap(dst) < total {
		dst = make([]Conflict, total)
	} else {
		// What is left past the new set would keep the old tracks'
		// strings alive.
		clear(dst[total:cap(dst)])
	}
	dst = dst[:total]
	var next atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= buckets {
					break
				}
				lo, hi := b.starts[k], b.starts[k+1]
				hits := b.byBucket[lo:hi]
				slices.SortFunc(hits, func(x, y cycleHit) int { return cmp.Compare(x.order, y.order) })
				for i := range hits {
					h := &hits[i]
					a, _ := e.tracks.Get(h.a)
					o, _ := e.tracks.Get(h.b)
					dst[lo+i] = Conflict{A: *a, B: *o, Time: laterReport(a, o), PairResult: h.result, Sep: e.params.Table.entries[h.entry], Level: int(h.level), LevelWithMargin: int(h.withMargin)}
				}
			}
		})
	}
	wg.Wait()
	return dst
}
