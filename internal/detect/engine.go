// Whole-airspace detection: keeping the set of aircraft pairs predicted to lose separation within the lookahead
// current as position reports arrive (Engine), computing it from scratch
// through the spatial index (Engine.FullCycle) and by checking every pair
// (BruteForce), all three through the one pair evaluation Evaluate.
//
// Why the prune never misses a pair. Evaluate looks at a pair over
// [ref, ref+lookahead], where ref is the later of the two report times, and
// only when the reports are at most the stale time S apart; each aircraft
// flies a straight line in ECEF from its report. So every position Evaluate
// can use for an aircraft lies on its path over the S+lookahead seconds after
// its report, at the same absolute instant for both aircraft. The pair
// geometry is a rotation plus a translation of ECEF (an east-north-up
// frame), which keeps distances; a conflict needs a horizontal distance
// below D and a vertical one below H at the same instant, hence a
// straight-line distance below R = sqrt(D²+H²) at that instant. The index
// (grid) cuts each path at fixed absolute time-slice boundaries and lists
// each piece's bounding box, grown by R/2 plus a margin, in every ECEF cube
// it touches within its slice. At the instant of a conflict both aircraft
// are in the same slice, their two pieces' grown boxes overlap (their
// points are less than R apart), and both boxes touch the cube holding the
// lowest corner of the overlap: the query over one aircraft's listed cells
// finds the other. Evaluate applies the same sphere test first (the closest
// approach of the two straight lines within the lookahead), so it is part
// of the pair function, identical in all three paths.

package detect

import (
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// pruneMarginM absorbs rounding in the frame rotation (a few nanometers at
// Earth radius) many times over.
const pruneMarginM = 1.0

// Params are the figures a pair evaluation depends on, taken from the rules.
type Params struct {
	Sep        Cylinder
	LookaheadS float64
	// MaxReportGapS: two tracks whose reports are further apart than this
	// (the stale time) are not paired: the older one is stale relative to
	// the newer.
	MaxReportGapS float64
	SameParty     bool
}

// ParamsFrom takes the pair parameters from the rules.
func ParamsFrom(r rules.Rules) Params {
	return Params{
		Sep:           Cylinder{HorizontalM: r.HorizontalSepM, VerticalM: r.VerticalSepM},
		LookaheadS:    r.LookaheadS,
		MaxReportGapS: r.StaleAfterS,
		SameParty:     r.SamePartyAlerts,
	}
}

// pruneRadiusM is the distance beyond which no conflict is possible.
func (p Params) pruneRadiusM() float64 {
	return math.Hypot(p.Sep.HorizontalM, p.Sep.VerticalM) + pruneMarginM
}

// spanS is how long after its report a track's path can enter a pair
// evaluation.
func (p Params) spanS() float64 { return p.MaxReportGapS + p.LookaheadS }

// growM is how much the index grows each path box: two boxes grown by half
// the prune radius (plus a margin) that do not overlap are further apart
// than the prune radius.
func (p Params) growM() float64 { return p.pruneRadiusM()/2 + pruneMarginM }

// Conflict is a pair predicted to lose separation. A is the aircraft with
// the smaller key (track.Key.Compare). Times in the result are seconds after
// Time, the later of the two report times, to which the older track was
// extrapolated.
type Conflict struct {
	A, B track.State
	Time time.Time
	PairResult
}

// PairKey identifies a pair, smaller key first.
type PairKey struct{ A, B track.Key }

// Key returns the pair's key.
func (c *Conflict) Key() PairKey { return PairKey{c.A.Key(), c.B.Key()} }

// Evaluate is the one pair function of the whole-airspace detection: the
// engine, the full cycle and the brute force all call it. It reports the
// conflict between the two tracks, if any, in a frame symmetric for the
// pair (east-north-up at the midpoint), and gives the same result whichever
// is passed first.
func Evaluate(a, b *track.State, p Params) (Conflict, bool) {
	if !p.SameParty && a.Party == b.Party {
		return Conflict{}, false
	}
	// The cheap tests come first and are symmetric in a and b (negating a
	// difference is exact), so the order of the arguments cannot matter.
	dt := b.Time.Sub(a.Time).Seconds()
	if math.Abs(dt) > p.MaxReportGapS {
		return Conflict{}, false
	}
	var pa, pb [3]float64
	if dt >= 0 {
		pa, pb = a.ECEFAt(dt), b.ECEF
	} else {
		pa, pb = a.ECEF, b.ECEFAt(-dt)
	}
	if !mayConflict(pa, a.VelECEF, pb, b.VelECEF, p) {
		return Conflict{}, false
	}
	if c := a.Key().Compare(b.Key()); c == 0 {
		return Conflict{}, false
	} else if c > 0 {
		a, b = b, a
		pa, pb = pb, pa
	}
	ref := a.Time
	if b.Time.After(ref) {
		ref = b.Time
	}
	mid := geo.FromECEF(geo.ECEF{XM: (pa[0] + pb[0]) / 2, YM: (pa[1] + pb[1]) / 2, ZM: (pa[2] + pb[2]) / 2})
	f := geo.NewFrame(mid)
	ownPos, ownVel := inFrame(f, a, ref)
	intPos, intVel := inFrame(f, b, ref)
	res := Pair(ownPos, ownVel, intPos, intVel, p.Sep, p.LookaheadS)
	if !res.Conflict {
		return Conflict{}, false
	}
	return Conflict{A: *a, B: *b, Time: ref, PairResult: res}, true
}

// inFrame returns the track's position at time ref and its velocity in
// frame f. Straight-line motion in ECEF is straight-line motion in any
// east-north-up frame (a rotation plus a translation), so extrapolating in
// the frame is the same motion the prune reasons about.
func inFrame(f geo.Frame, s *track.State, ref time.Time) (pos, vel Vec3) {
	dt := ref.Sub(s.Time).Seconds()
	p := f.ToENU(s.Pos)
	v := f.VelocityFrom(s.Pos, geo.ENU{EastM: s.VelEastMps, NorthM: s.VelNorthMps, UpM: s.VelUpMps})
	return Vec3{p.EastM + v.EastM*dt, p.NorthM + v.NorthM*dt, p.UpM + v.UpM*dt}, Vec3{v.EastM, v.NorthM, v.UpM}
}

// mayConflict is the sphere test: false when the straight lines stay more
// than the prune radius apart over the lookahead.
func mayConflict(pa, va, pb, vb [3]float64, p Params) bool {
	var r, w [3]float64
	for k := 0; k < 3; k++ {
		r[k] = pb[k] - pa[k]
		w[k] = vb[k] - va[k]
	}
	rw := r[0]*w[0] + r[1]*w[1] + r[2]*w[2]
	ww := w[0]*w[0] + w[1]*w[1] + w[2]*w[2]
	t := 0.0
	if ww > 0 {
		t = min(max(-rw/ww, 0), p.LookaheadS)
	}
	var d2 float64
	for k := 0; k < 3; k++ {
		d := r[k] + w[k]*t
		d2 += d * d
	}
	rad := p.pruneRadiusM()
	return d2 <= rad*rad
}

// Engine keeps the conflict set current as reports arrive: a report
// re-evaluates only the pairs of its aircraft, found through the grid. It is
// not safe for concurrent use (alert.Engine wraps it with a mutex).
type Engine struct {
	params Params
	tracks *track.Table
	grid   *grid
	conf   Conformance

	// partners[id] lists the tracks id is in conflict with.
	partners  [][]track.ID
	conflicts map[uint64]*Conflict
	nonconf   []bool
	stamp     []uint32
	epoch     uint32
}

// Grid dimensions that measured fastest (see BENCHMARKS.md).
const (
	DefaultCellM  = 50_000
	DefaultSliceS = 60
)

// Grid sets the space-time grid: the edge of its ECEF cubes and the length
// of its time slices. Zero values take the defaults.
type Grid struct {
	CellM  float64
	SliceS float64
}

// NewEngine makes an engine for the rules; conf may be nil (no conformance
// monitoring).
func NewEngine(r rules.Rules, g Grid, conf Conformance) *Engine {
	if g.CellM <= 0 {
		g.CellM = DefaultCellM
	}
	if g.SliceS <= 0 {
		g.SliceS = DefaultSliceS
	}
	return &Engine{
		params:    ParamsFrom(r),
		tracks:    track.NewTable(r.StaleAfter()),
		grid:      newGrid(g.CellM, g.SliceS),
		conf:      conf,
		conflicts: make(map[uint64]*Conflict),
	}
}

// Params returns the pair parameters in use.
func (e *Engine) Params() Params { return e.params }

func pairID(a, b track.ID) uint64 {
	if a > b {
		a, b = b, a
	}
	return uint64(uint32(a))<<32 | uint64(uint32(b))
}

func (e *Engine) growTo(n int) {
	for len(e.partners) < n {
		e.partners = append(e.partners, nil)
		e.nonconf = append(e.nonconf, false)
		e.stamp = append(e.stamp, 0)
	}
}

// Ingest applies the reports in order at time now and appends to dst what
// changed. A batch with an invalid report is refused whole, with an error
// naming the report and field, before anything is applied.
func (e *Engine) Ingest(dst []Event, reports []track.Report, now time.Time) ([]Event, error) {
	for i := range reports {
		if err := reports[i].Validate(); err != nil {
			return dst, &ReportError{Index: i, Err: err}
		}
	}
	for i := range reports {
		dst = e.apply(dst, &reports[i], now)
	}
	return dst, nil
}

func (e *Engine) apply(dst []Event, r *track.Report, now time.Time) []Event {
	id, outcome := e.tracks.Apply(*r, now)
	if !outcome.Applied() {
		return dst
	}
	e.growTo(e.tracks.Cap())
	s, _ := e.tracks.Get(id)
	e.grid.set(id, s.ECEF, s.VelECEF, s.Time.UnixNano(), e.params.spanS(), e.params.growM())

	e.epoch++
	if e.epoch == 0 {
		// Wrapped: stamps of the old round could match again.
		clear(e.stamp)
		e.epoch = 1
	}
	epoch := e.epoch
	// Re-evaluate the pairs already in conflict first: a pair can leave
	// the candidates (its boxes no longer overlap) and must then be ended.
	prev := e.partners[id]
	for n := 0; n < len(prev); {
		other := prev[n]
		e.stamp[other] = epoch
		o, _ := e.tracks.Get(other)
		key := pairID(id, other)
		if c, ok := Evaluate(s, o, e.params); ok {
			*e.conflicts[key] = c
			dst = append(dst, Event{Kind: ConflictPredicted, Conflict: c})
			n++
			continue
		}
		old := e.conflicts[key]
		delete(e.conflicts, key)
		dst = append(dst, Event{Kind: ConflictEnded, Reason: ReasonResolved, Conflict: *old})
		prev[n] = prev[len(prev)-1]
		prev = prev[:len(prev)-1]
		e.partners[other] = removeID(e.partners[other], id)
	}
	e.partners[id] = prev
	e.grid.query(id, 0, e.stamp, epoch, func(other track.ID) {
		o, _ := e.tracks.Get(other)
		c, ok := Evaluate(s, o, e.params)
		if !ok {
			return
		}
		cp := new(Conflict)
		*cp = c
		e.conflicts[pairID(id, other)] = cp
		e.partners[id] = append(e.partners[id], other)
		e.partners[other] = append(e.partners[other], id)
		dst = append(dst, Event{Kind: ConflictPredicted, Conflict: c})
	})

	if e.conf != nil {
		conforming, applies := e.conf.Conforms(s.Party, s.Pos, s.Time)
		nc := applies && !conforming
		switch {
		case nc:
			// Every report while nonconforming refreshes the alert's
			// position, like a continuing conflict.
			e.nonconf[id] = true
			dst = append(dst, Event{Kind: Nonconforming, Track: *s})
		case e.nonconf[id]:
			e.nonconf[id] = false
			dst = append(dst, Event{Kind: Conforming, Reason: ReasonResolved, Track: *s})
		}
	}
	return dst
}

func removeID(list []track.ID, id track.ID) []track.ID {
	for n, m := range list {
		if m == id {
			list[n] = list[len(list)-1]
			return list[:len(list)-1]
		}
	}
	return list
}

// Expire drops the tracks that are stale at now and appends the ends of
// their conflicts and nonconformances, with reason stale.
func (e *Engine) Expire(dst []Event, now time.Time) []Event {
	e.tracks.Expire(now, func(id track.ID, s *track.State) {
		for _, other := range e.partners[id] {
			key := pairID(id, other)
			c := e.conflicts[key]
			delete(e.conflicts, key)
			e.partners[other] = removeID(e.partners[other], id)
			dst = append(dst, Event{Kind: ConflictEnded, Reason: ReasonStale, Conflict: *c})
		}
		e.partners[id] = e.partners[id][:0]
		if e.nonconf[id] {
			e.nonconf[id] = false
			dst = append(dst, Event{Kind: Conforming, Reason: ReasonStale, Track: *s})
		}
		e.grid.remove(id)
	})
	return dst
}

// Conflicts returns the current conflict set, sorted by pair key.
func (e *Engine) Conflicts() []Conflict {
	out := make([]Conflict, 0, len(e.conflicts))
	for _, c := range e.conflicts {
		out = append(out, *c)
	}
	SortConflicts(out)
	return out
}

// NumConflicts is the size of the current conflict set.
func (e *Engine) NumConflicts() int { return len(e.conflicts) }

// NumTracks is the number of live tracks.
func (e *Engine) NumTracks() int { return e.tracks.Len() }

// Counters returns the track table's report counters.
func (e *Engine) Counters() track.Counters { return e.tracks.Counters() }

// States returns a copy of every live track, in id order.
func (e *Engine) States() []track.State {
	out := make([]track.State, 0, e.tracks.Len())
	e.tracks.Each(func(_ track.ID, s *track.State) { out = append(out, *s) })
	return out
}

// Nonconforming returns the tracks currently outside their party's volumes.
func (e *Engine) Nonconforming() []track.State {
	var out []track.State
	e.tracks.Each(func(id track.ID, s *track.State) {
		if e.nonconf[id] {
			out = append(out, *s)
		}
	})
	return out
}

// Tracks returns the live tracks inside the box, in id order.
func (e *Engine) Tracks(b BBox) []track.State {
	var out []track.State
	e.tracks.Each(func(_ track.ID, s *track.State) {
		if b.Contains(s.Pos) {
			out = append(out, *s)
		}
	})
	return out
}

// FullCycle computes the whole conflict set from scratch through the index,
// on all cores, sorted by pair key. It does not change the engine's set.
func (e *Engine) FullCycle() []Conflict {
	workers := runtime.GOMAXPROCS(0)
	n := int32(e.tracks.Cap())
	parts := make([][]Conflict, workers)
	var next atomic.Int32
	const chunk = 256
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			stamp := make([]uint32, n)
			var epoch uint32
			var out []Conflict
			for {
				lo := next.Add(chunk) - chunk
				if lo >= n {
					break
				}
				for id := lo; id < min(lo+chunk, n); id++ {
					s, ok := e.tracks.Get(id)
					if !ok {
						continue
					}
					epoch++
					// Each pair is handled from its smaller id.
					e.grid.query(id, id+1, stamp, epoch, func(other track.ID) {
						o, _ := e.tracks.Get(other)
						if c, ok := Evaluate(s, o, e.params); ok {
							out = append(out, c)
						}
					})
				}
			}
			parts[w] = out
		}(w)
	}
	wg.Wait()
	var all []Conflict
	for _, p := range parts {
		all = append(all, p...)
	}
	SortConflicts(all)
	return all
}

// BruteForce checks every pair of the tracks with Evaluate: the oracle of
// the tests and the baseline of the benchmark. It uses all cores, like
// FullCycle, so that the two compare like for like. Sorted by pair key.
func BruteForce(states []track.State, p Params) []Conflict {
	workers := runtime.GOMAXPROCS(0)
	parts := make([][]Conflict, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Rows interleaved between workers: row i has n-i-1 pairs.
			for i := w; i < len(states); i += workers {
				for j := i + 1; j < len(states); j++ {
					if c, ok := Evaluate(&states[i], &states[j], p); ok {
						parts[w] = append(parts[w], c)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	var out []Conflict
	for _, part := range parts {
		out = append(out, part...)
	}
	SortConflicts(out)
	return out
}

// SortConflicts orders conflicts by pair key.
func SortConflicts(cs []Conflict) {
	slices.SortFunc(cs, func(x, y Conflict) int { return x.Key().compare(y.Key()) })
}

// SameConflicts reports whether two sorted conflict sets hold the same pairs
// with bit-identical results, and if not, the first pair that differs.
func SameConflicts(x, y []Conflict) (bool, string) {
	n := min(len(x), len(y))
	for i := 0; i < n; i++ {
		if kx, ky := x[i].Key(), y[i].Key(); kx != ky {
			if kx.compare(ky) < 0 {
				return false, "only in first: " + kx.String()
			}
			return false, "only in second: " + ky.String()
		}
		if x[i].PairResult != y[i].PairResult || !x[i].Time.Equal(y[i].Time) {
			return false, "different result for " + x[i].Key().String()
		}
	}
	if len(x) > n {
		return false, "only in first: " + x[n].Key().String()
	}
	if len(y) > n {
		return false, "only in second: " + y[n].Key().String()
	}
	return true, ""
}

// compare orders pairs by their first key, then their second: the order of
// SortConflicts, which SameConflicts relies on to tell which set lacks a pair.
func (k PairKey) compare(o PairKey) int {
	if c := k.A.Compare(o.A); c != 0 {
		return c
	}
	return k.B.Compare(o.B)
}

func (k PairKey) String() string { return k.A.String() + "~" + k.B.String() }
