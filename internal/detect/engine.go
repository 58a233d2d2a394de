// Whole-airspace detection: keeping the set of aircraft pairs predicted to
// lose separation within the lookahead current as position reports arrive
// (Engine), computing it from scratch through the spatial index
// (Engine.FullCycle) and by checking every pair (BruteForce), all three
// through the one pair evaluation Evaluate. Each pair is judged by the
// entry of the separation table for the classes of its two aircraft: its
// detectors, lookahead and alert levels (Table, Entry).
//
// Why the prune never misses a pair. Evaluate looks at a pair over
// [ref, ref+L], where ref is the later of the two report times and L the
// lookahead of the pair's entry, and only when the reports are at most the
// stale time S apart; each aircraft flies a straight line in ECEF from its
// report. So every position Evaluate can use for an aircraft lies on its
// path over the S+L seconds after its report, at the same absolute instant
// for both aircraft. The pair geometry is a rotation plus a translation of
// ECEF (an east-north-up frame), which keeps distances. At an instant of
// loss of separation the two aircraft are within R + |w|·T of each other,
// where w is their relative velocity and R and T come from the reach of
// the entry's detectors (Detector.Reach: horizontal H + |w|·TH, vertical
// V + |w|·TV, so R = hypot(H, V) and T = max(TH, TV); for a cylinder H
// and V are its minima and the times zero, for DO-365 well clear DTHR,
// ZTHR, TTHR and TCOA); call that, plus a margin for rounding, the prune
// radius. Since |w| is at most the sum of the two speeds, the prune radius
// is at most g(a) + g(b) with g(x) = (R + margin)/2 + margin + |v_x|·T for
// each aircraft x.
//
// Each entry has its own index (grid), holding the aircraft of its
// classes: it cuts each path at fixed absolute time-slice boundaries and
// lists each piece's bounding box, grown by the aircraft's g, in every
// ECEF cube it touches within its slice. At the instant of a loss both
// aircraft are in the same slice, their two pieces' grown boxes overlap
// (their points are less than g(a) + g(b) apart), and both boxes touch the
// cube holding the lowest corner of the overlap: the query over one
// aircraft's listed cells finds the other. Each piece also carries the band
// of its distances from the Earth's centre, grown by the aircraft's share
// of the vertical reach (Entry.growVM): at the instant of a loss the two
// distances differ by less than the two shares, so the bands overlap too,
// and a drone low over a city is not a candidate of the airliner 2 km above
// it. An entry between two classes
// lists only its second class; an aircraft of the first is queried with
// the pieces a listing would give it (grid.queryPath), which meet the
// same cubes, or is paired with every listed aircraft when those are few.
// Evaluate prunes first too (mayConflict: the reach, vertical and
// horizontal at the same instant, against the straight lines over the
// lookahead), as
// part of the pair function, identical in all three paths.
//
// A listing covers the S+L seconds after the report, since a partner may
// report up to S later; a query needs less. The instant of a loss is at
// most L after the later of the two reports, which is at most S after the
// querying aircraft's and no later than the latest report the engine has
// applied (Params.untilNs): a query goes through the cells of the slices
// that start by then only. Tracks report every few seconds, so this is
// about L after the report, two thirds of the listing with the default
// rules.

package detect

import (
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// pruneMarginM absorbs rounding in the frame rotation (a few nanometers at
// Earth radius) and the tolerances of the detectors (Detector.Reach) many
// times over.
const pruneMarginM = 1.0

// Params are the figures a pair evaluation depends on, taken from the rules.
type Params struct {
	// Table is the compiled separation table: each pair's detectors,
	// lookahead and levels.
	Table *Table
	// MaxReportGapS: two tracks whose reports are further apart than this
	// (the stale time) are not paired: the older one is stale relative to
	// the newer.
	MaxReportGapS float64
	SameParty     bool
	// LevelMarginS is added to every level's time for
	// Conflict.LevelWithMargin: the hysteresis of the alert lifecycle.
	LevelMarginS float64
}

// ParamsFrom takes the pair parameters from valid rules
// (rules.Rules.Validate); it panics on a table that does not compile,
// which validation refuses.
func ParamsFrom(r rules.Rules) Params {
	t, err := NewTable(r)
	if err != nil {
		panic(err)
	}
	return Params{
		Table:         t,
		MaxReportGapS: r.StaleAfterS,
		SameParty:     r.SamePartyAlerts,
	}
}

// spanS is how long after its report a track's path can enter a pair
// evaluation of the entry.
func (p *Params) spanS(e *Entry) float64 { return p.MaxReportGapS + e.LookaheadS }

// untilNs is the latest unix time at which a track reported at reportNs
// can be in a loss of separation of the entry with a track reported by
// latestNs: a pair is looked at over [ref, ref+L], ref the later of the
// two reports, which is at most the stale time after this one's and at
// most latestNs. Tracks report every few seconds, so this is most often
// the lookahead after the report, not the stale time plus the lookahead
// that listings cover (a later report can come). A millisecond is added
// for the rounding of times to seconds.
func (p *Params) untilNs(e *Entry, reportNs, latestNs int64) int64 {
	ref := min(reportNs+int64(p.MaxReportGapS*1e9), max(latestNs, reportNs))
	return ref + int64(e.LookaheadS*1e9) + int64(time.Millisecond)
}

// querySpanS is untilNs as seconds after the report.
func (p *Params) querySpanS(e *Entry, reportNs, latestNs int64) float64 {
	return min(float64(p.untilNs(e, reportNs, latestNs)-reportNs)/1e9, p.spanS(e))
}

// Conflict is a pair predicted to lose separation. A is the aircraft with
// the smaller key (track.Key.Compare). Times in the result are seconds after
// Time, the later of the two report times, to which the older track was
// extrapolated.
type Conflict struct {
	A, B track.State
	Time time.Time
	// PairResult is the loss of the detector of the most severe level that
	// holds, and the closest approach within the entry's lookahead.
	PairResult
	// Sep is the entry of the separation table for the two classes.
	Sep *Entry
	// Level is the most severe level of Sep that holds (1 is
	// Sep.Levels[0]); a pair is a conflict when some level holds.
	// LevelWithMargin is the level that would hold with every level's
	// time grown by Params.LevelMarginS: the lifecycle lowers an alert's
	// level only below it.
	Level, LevelWithMargin int
}

// LevelName is the name of the conflict's level.
func (c *Conflict) LevelName() string { return c.Sep.Levels[c.Level-1].Name }

// PairKey identifies a pair, smaller key first.
type PairKey struct{ A, B track.Key }

// Key returns the pair's key.
func (c *Conflict) Key() PairKey { return PairKey{c.A.Key(), c.B.Key()} }

// Evaluate is the one pair function of the whole-airspace detection: the
// engine, the full cycle and the brute force all call it. It judges the
// two tracks by the entry of their classes, in a frame symmetric for the
// pair (east-north-up at the midpoint), and gives the same result
// whichever is passed first. A track of a class the table does not know
// is in no conflict.
func Evaluate(a, b *track.State, p Params) (Conflict, bool) {
	e := p.Table.ForNames(a.Class, b.Class)
	if e == nil {
		return Conflict{}, false
	}
	var c Conflict
	ok := evaluate(a, b, e, &p, &c)
	return c, ok
}

// evaluate is Evaluate with the pair's entry known, writing a conflict to
// out (left as it is otherwise): a pair most often is no conflict, and a
// Conflict is large to clear and copy.
func evaluate(a, b *track.State, e *Entry, p *Params, out *Conflict) bool {
	if !p.SameParty && a.Party == b.Party {
		return false
	}
	return evaluateParties(a, b, e, p, out)
}

// evaluateParties is evaluate for two tracks whose parties the caller has
// found may be paired (the engine compares its party numbers, not the
// names).
func evaluateParties(a, b *track.State, e *Entry, p *Params, out *Conflict) bool {
	ka, kb := kinematicsOf(a), kinematicsOf(b)
	pa, pb, ok := mayPair(&ka, &kb, e, p)
	if !ok {
		return false
	}
	if c := a.Key().Compare(b.Key()); c == 0 {
		return false
	} else if c > 0 {
		a, b = b, a
		pa, pb = pb, pa
	}
	level, withMargin, res := judge(a, b, pa, pb, e, p)
	if level == 0 {
		return false
	}
	*out = Conflict{A: *a, B: *b, Time: laterReport(a, b), Sep: e, Level: level, LevelWithMargin: withMargin, PairResult: res}
	return true
}

// judge is the pair function past its cheap tests (mayPair, which gave
// pa and pb): a is the track of the smaller key. It returns the most
// severe level that holds (0 for none), the level with the margin and
// the pair's result.
func judge(a, b *track.State, pa, pb [3]float64, e *Entry, p *Params) (level, withMargin int, res PairResult) {
	ref := laterReport(a, b)
	mid := geo.FromECEF(geo.ECEF{XM: (pa[0] + pb[0]) / 2, YM: (pa[1] + pb[1]) / 2, ZM: (pa[2] + pb[2]) / 2})
	f := geo.NewFrame(mid)
	ownPos, ownVel := inFrame(f, a, ref)
	intPos, intVel := inFrame(f, b, ref)
	r, v := intPos.Sub(ownPos), intVel.Sub(ownVel)
	level, withMargin, loss := e.Grade(r, v, p.LevelMarginS)
	if level == 0 {
		return 0, 0, PairResult{}
	}
	res.Loss = loss
	res.TCPAS, res.DHCPAM, res.DVCPAM = closestApproach(r, v, e.LookaheadS)
	return level, max(level, withMargin), res
}

// laterReport is the later of the two tracks' report times, the time of
// their pair's result.
func laterReport(a, b *track.State) time.Time {
	if b.Time.After(a.Time) {
		return b.Time
	}
	return a.Time
}

// kinematics is what the cheap tests of the pair function read of a
// track: 56 bytes of data, padded to 64, where a track.State is 200, so
// that the full cycle can drop most candidates without reading their
// tracks. The padding makes a record one cache line: the full cycle reads
// those of its candidates' second aircraft in no order, and 56-byte
// records would most often straddle two lines.
type kinematics struct {
	ecef, vel [3]float64 // meters, m/s
	reportNs  int64      // unix time of the report
	_         [8]byte
}

func kinematicsOf(s *track.State) kinematics {
	return kinematics{ecef: s.ECEF, vel: s.VelECEF, reportNs: s.Time.UnixNano()}
}

// mayPair is the cheap part of the pair function: false when the reports
// are more than the stale time apart or the prune (mayConflict) drops the
// pair; else the two positions at the later report time. The tests are
// symmetric in a and b (negating a difference is exact), so the order of
// the arguments cannot matter. The difference of the report times is
// that of time.Time.Sub for any time a report can carry.
func mayPair(a, b *kinematics, e *Entry, p *Params) (pa, pb [3]float64, ok bool) {
	dt := time.Duration(b.reportNs - a.reportNs).Seconds()
	if math.Abs(dt) > p.MaxReportGapS {
		return pa, pb, false
	}
	if dt >= 0 {
		pa, pb = at(&a.ecef, &a.vel, dt), b.ecef
	} else {
		pa, pb = a.ecef, at(&b.ecef, &b.vel, -dt)
	}
	return pa, pb, mayConflict(pa, a.vel, pb, b.vel, e)
}

// at is track.State.ECEFAt. The conversions round each product, so that
// no platform fuses a multiply-add in one caller and not in another: the
// prefilter of the full cycle must compute what evaluate computes.
func at(p, v *[3]float64, dtS float64) [3]float64 {
	return [3]float64{p[0] + float64(v[0]*dtS), p[1] + float64(v[1]*dtS), p[2] + float64(v[2]*dtS)}
}

// inFrame returns the track's position at time ref and its velocity in
// frame f. Straight-line motion in ECEF is straight-line motion in any
// east-north-up frame (a rotation plus a translation), so extrapolating in
// the frame is the same motion the prune reasons about. The track's ECEF
// position and velocity are what f.ToENU and f.VelocityFrom would compute
// first from its report (track.NewState), so they are rotated as they
// are, without the trigonometry of the track's latitude and longitude.
func inFrame(f geo.Frame, s *track.State, ref time.Time) (pos, vel Vec3) {
	dt := ref.Sub(s.Time).Seconds()
	p := f.FromECEF(geo.ECEF{XM: s.ECEF[0], YM: s.ECEF[1], ZM: s.ECEF[2]})
	v := f.VelocityFromECEF(geo.ECEF{XM: s.VelECEF[0], YM: s.VelECEF[1], ZM: s.VelECEF[2]})
	return Vec3{p.EastM + v.EastM*dt, p.NorthM + v.NorthM*dt, p.UpM + v.UpM*dt}, Vec3{v.EastM, v.NorthM, v.UpM}
}

// mayConflict is the prune of the pair function: false when, over the
// entry's lookahead, the two straight lines never come within the entry's
// reach vertically and horizontally at the same instant. Vertical and horizontal are
// taken along the geocentric radius through the pair's midpoint, which is
// within maxVerticalTiltRad of the vertical of the pair's frame (the
// geodetic normal there): a relative position within horizontal distance H
// and vertical distance V in the pair's frame is within H + (H+V)·tilt and
// V + (H+V)·tilt in these. The reach grows with the relative speed |w|
// (DO-365's TTHR and TCOA), bounded here by the speed itself.
func mayConflict(pa, va, pb, vb [3]float64, e *Entry) bool {
	var r, w, m [3]float64
	for k := 0; k < 3; k++ {
		r[k] = pb[k] - pa[k]
		w[k] = vb[k] - va[k]
		m[k] = pa[k] + pb[k]
	}
	wn := math.Sqrt(w[0]*w[0] + w[1]*w[1] + w[2]*w[2])
	h := e.reach.HorizontalM + wn*e.reach.HorizontalS
	v := e.reach.VerticalM + wn*e.reach.VerticalS
	slack := (h+v)*maxVerticalTiltRad + pruneMarginM
	mn := math.Sqrt(m[0]*m[0] + m[1]*m[1] + m[2]*m[2])
	u := [3]float64{m[0] / mn, m[1] / mn, m[2] / mn}
	rv := r[0]*u[0] + r[1]*u[1] + r[2]*u[2]
	wv := w[0]*u[0] + w[1]*u[1] + w[2]*u[2]
	// The instants of [0, L] when the vertical distance is within reach:
	// an interval [lo, hi], empty when lo > hi. A loss needs both at the
	// same instant, so the horizontal test looks at these only. The
	// instant of a loss is inside by the margin's worth of time at the
	// vertical speed (1 m over it), far more than the rounding of the
	// interval's ends.
	vLim := v + slack
	lo, hi := 0.0, e.LookaheadS
	if wv == 0 {
		if math.Abs(rv) > vLim {
			return false
		}
	} else {
		t0, t1 := (-vLim-rv)/wv, (vLim-rv)/wv
		lo, hi = max(lo, min(t0, t1)), min(hi, max(t0, t1))
		if lo > hi {
			return false
		}
	}
	// The least horizontal distance over [lo, hi], at the horizontal
	// closest approach clamped to it.
	var rh, wh [3]float64
	for k := 0; k < 3; k++ {
		rh[k] = r[k] - rv*u[k]
		wh[k] = w[k] - wv*u[k]
	}
	t := lo
	if ww := wh[0]*wh[0] + wh[1]*wh[1] + wh[2]*wh[2]; ww > 0 {
		t = min(max(-(rh[0]*wh[0]+rh[1]*wh[1]+rh[2]*wh[2])/ww, lo), hi)
	}
	var d2 float64
	for k := 0; k < 3; k++ {
		d := rh[k] + wh[k]*t
		d2 += d * d
	}
	lim := h + slack
	return d2 <= lim*lim
}

// maxVerticalTiltRad bounds the angle between the geodetic normal and the
// geocentric radius on and near the WGS84 ellipsoid: 0.1924° at 45° of
// latitude, rounded up.
const maxVerticalTiltRad = 0.0034

// Engine keeps the conflict set current as reports arrive: a report
// re-evaluates only the pairs of its aircraft, found through the grids of
// the entries of its class. It is not safe for concurrent use
// (alert.Engine wraps it with a mutex).
type Engine struct {
	params Params
	tracks *track.Table
	// index[i] finds the pairs of table entry i.
	index []*entryIndex
	// class[id] is the class index of track id, party[id] the index of
	// its party in parties (the grids keep each party's aircraft apart).
	class   []uint8
	party   []int32
	parties map[string]int32
	conf    Conformance
	// scratch holds the pieces of a path queried on the fly; found the
	// conflict a candidate gives.
	scratch []membership
	found   Conflict

	// partners[id] lists the tracks id is in conflict with.
	partners  [][]track.ID
	conflicts map[uint64]*Conflict
	nonconf   []bool
	stamp     []uint32
	epoch     uint32
	// kin[id] is kinematicsOf(track id), for the cheap tests.
	kin []kinematics
	// latestNs is the latest report time (unix ns) applied: no live
	// track reported later.
	latestNs int64
	// cycle is the full cycle's working lists and key order, kept from
	// one cycle to the next.
	cycle cycleBuffers
	// near lists the live tracks by place, for SelectNear.
	near nearIndex
}

// Grid dimensions that measured fastest for the default manned-manned
// entry (see BENCHMARKS.md).
const (
	DefaultCellM  = 50_000
	DefaultSliceS = 60
)

// Grid sets the space-time grid of every entry: the edge of its ECEF cubes,
// the length of its time slices and the thickness of its shells of
// distance from the Earth's centre. Zero values size each entry's grid by
// its reach (gridFor); a negative ShellM means no shells.
type Grid struct {
	CellM  float64
	SliceS float64
	ShellM float64
}

// gridFor is the default grid of an entry: cubes about 5.4 times the reach
// of a pair closing at 50 m/s (the ratio that measured fastest for the
// manned cylinder, 50 km for 5 NM), within [1 km, 50 km], and slices of
// one cube at 100 m/s, within [10 s, 60 s]: 50 km and 60 s for the manned
// cylinder, 16 km and 60 s for DO-365 well clear, 1 km and 10 s for
// drones 50 m apart.
//
// An entry between two classes gets shells twice its vertical reach (at
// 50 m/s) thick, 427 m for the default manned-uas entry (the ZTHR of its
// preventive level is 213 m): there the grid lists one
// class (drones, low over a city) and the other is queried on the fly
// (airliners, most of them far above), and a 16 km cube spans every
// altitude. On metro 100,000 the shells cut the drones an airliner's
// query goes through 2.4-fold. Within one class they did not pay for the
// extra listings (measured with 1 km cubes and 30-60 m shells).
//
// Cubes are never narrower than twice the reach, so that a path box,
// about the reach wide, meets at most two each way: 50 km cubes under a
// separation of 200 km (which the rules allow) listed every airliner in
// some 800 cubes instead of 17, and the cost of detection grew as the
// cube of the separation. The default entries' reach is far below it.
func gridFor(e *Entry) Grid {
	cell := max(min(max(5.4*(e.reachM+50*e.reachTimeS), 1_000), DefaultCellM), 2*e.reachM)
	g := Grid{CellM: cell, SliceS: min(max(cell/100, 10), DefaultSliceS), ShellM: -1}
	if e.twoSided() {
		g.ShellM = 2 * (e.reach.VerticalM + 50*e.reach.VerticalS)
	}
	return g
}

// NewEngine makes an engine for valid rules; conf may be nil (no
// conformance monitoring).
func NewEngine(r rules.Rules, g Grid, conf Conformance) *Engine {
	p := ParamsFrom(r)
	e := &Engine{
		params:    p,
		tracks:    track.NewTable(r.StaleAfter()),
		conf:      conf,
		conflicts: make(map[uint64]*Conflict),
		parties:   make(map[string]int32),
		near:      newNearIndex(nearCellsM(r, p.Table)),
	}
	for _, ent := range p.Table.entries {
		eg := g
		if eg.CellM <= 0 || eg.SliceS <= 0 || eg.ShellM == 0 {
			d := gridFor(ent)
			eg.CellM, eg.SliceS = cmpOr(eg.CellM, d.CellM), cmpOr(eg.SliceS, d.SliceS)
			if eg.ShellM == 0 {
				eg.ShellM = d.ShellM
			}
		}
		if eg.ShellM < 0 {
			eg.ShellM = 0
		}
		g := newGrid(eg.CellM, eg.SliceS, eg.ShellM)
		g.allParties = p.SameParty
		e.index = append(e.index, &entryIndex{grid: g})
	}
	return e
}

// entryIndex finds the pairs of one entry of the separation table. Its grid
// lists the aircraft of the entry's class, or of its second class for an
// entry between two classes; the aircraft of the first class of such an
// entry are kept in plain and queried against the grid on the fly.
type entryIndex struct {
	grid  *grid
	plain []track.ID
	// plainAt[id] is the position of id in plain, -1 when absent.
	plainAt []int32
}

func (x *entryIndex) addPlain(id track.ID) {
	for int(id) >= len(x.plainAt) {
		x.plainAt = append(x.plainAt, -1)
	}
	if x.plainAt[id] < 0 {
		x.plainAt[id] = int32(len(x.plain))
		x.plain = append(x.plain, id)
	}
}

// remove takes id out of the grid and the plain list.
func (x *entryIndex) remove(id track.ID) {
	x.grid.remove(id)
	if int(id) >= len(x.plainAt) || x.plainAt[id] < 0 {
		return
	}
	at, last := x.plainAt[id], x.plain[len(x.plain)-1]
	x.plain[at] = last
	x.plainAt[last] = at
	x.plain = x.plain[:len(x.plain)-1]
	x.plainAt[id] = -1
}

// plainSide reports whether aircraft of class c are kept in plain for the
// entry: its first class, when it has two.
func plainSide(ent *Entry, c uint8) bool { return ent.twoSided() && c == ent.A }

// cmpOr is x when positive, else the default d.
func cmpOr(x, d float64) float64 {
	if x > 0 {
		return x
	}
	return d
}

// Grids returns the grid of each entry of the table, in its order.
func (e *Engine) Grids() []Grid {
	out := make([]Grid, len(e.index))
	for i, x := range e.index {
		out[i] = Grid{CellM: x.grid.cellM, SliceS: float64(x.grid.sliceNs) / 1e9, ShellM: x.grid.shellM}
	}
	return out
}

// SetLevelMargin sets Params.LevelMarginS (the alert lifecycle's
// hysteresis) before the first report.
func (e *Engine) SetLevelMargin(s float64) { e.params.LevelMarginS = s }

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
		e.class = append(e.class, 0)
		e.party = append(e.party, 0)
		e.kin = append(e.kin, kinematics{})
	}
}

// Ingest applies the reports in order at time now and appends to dst what
// changed. A batch with an invalid report, or one of a class the rules do
// not know, is refused whole, with an error naming the report and field,
// before anything is applied.
func (e *Engine) Ingest(dst []Event, reports []track.Report, now time.Time) ([]Event, error) {
	for i := range reports {
		if err := reports[i].Validate(); err != nil {
			return dst, &ReportError{Index: i, Err: err}
		}
		if _, ok := e.params.Table.Class(reports[i].Class); !ok {
			return dst, &ReportError{Index: i, Err: fielderr.Errorf("class", "unknown class %q (the rules know %v)", reports[i].Class, e.params.Table.classes)}
		}
	}
	for i := range reports {
		dst = e.apply(dst, &reports[i], now)
	}
	return dst, nil
}

func (e *Engine) apply(dst []Event, r *track.Report, now time.Time) []Event {
	rep := *r
	if rep.Class == "" {
		rep.Class = rules.ClassManned
	}
	id, outcome := e.tracks.Apply(rep, now)
	if !outcome.Applied() {
		return dst
	}
	e.growTo(e.tracks.Cap())
	if outcome == track.Created {
		e.cycle.joined(id, e.tracks.Len())
	}
	s, _ := e.tracks.Get(id)
	reportNs := s.Time.UnixNano()
	e.latestNs = max(e.latestNs, reportNs)
	e.kin[id] = kinematicsOf(s)
	cls, _ := e.params.Table.Class(s.Class)
	if outcome == track.Updated && e.class[id] != cls {
		// A new class: the entries of the old one forget the aircraft.
		for _, x := range e.index {
			x.remove(id)
		}
	}
	e.class[id] = cls
	party, ok := e.parties[s.Party]
	if !ok {
		party = int32(len(e.parties))
		e.parties[s.Party] = party
	}
	e.party[id] = party
	speed := speedOf(s)
	e.near.set(id, cls, s.ECEF, speed, reportNs)
	for _, ent := range e.params.Table.entries {
		switch x := e.index[ent.index]; {
		case !ent.Involves(cls):
		case plainSide(ent, cls):
			x.addPlain(id)
		default:
			x.grid.set(id, party, s.ECEF, s.VelECEF, s.Time.UnixNano(), e.params.spanS(ent), ent.growM(speed), ent.growVM(speed))
		}
	}

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
		if c := e.conflicts[key]; evaluate(s, o, e.params.Table.For(cls, e.class[other]), &e.params, c) {
			dst = append(dst, Event{Kind: ConflictPredicted, Conflict: *c})
			n++
			continue
		}
		old := e.conflicts[key]
		delete(e.conflicts, key)
		ended := Event{Kind: ConflictEnded, Reason: ReasonResolved, Conflict: *old}
		// Not paired any more because one report is further than the
		// stale time behind the other (mayPair): that track went stale,
		// nothing was resolved. Said so at once, naming it, rather than
		// as resolved once the hysteresis is over (before Expire drops
		// the track, it would find the pair ended already).
		if dt := time.Duration(e.kin[id].reportNs - e.kin[other].reportNs).Seconds(); math.Abs(dt) > e.params.MaxReportGapS {
			older := o
			if dt < 0 {
				older = s
			}
			ended.Reason, ended.Stale = ReasonStale, []track.Key{older.Key()}
		}
		dst = append(dst, ended)
		prev[n] = prev[len(prev)-1]
		prev = prev[:len(prev)-1]
		e.partners[other] = removeID(e.partners[other], id)
	}
	e.partners[id] = prev
	e.stamp[id] = epoch
	for _, ent := range e.params.Table.entries {
		if !ent.Involves(cls) {
			continue
		}
		found := func(other track.ID) {
			if !e.params.SameParty && e.party[other] == party {
				return
			}
			o, _ := e.tracks.Get(other)
			if !evaluateParties(s, o, ent, &e.params, &e.found) {
				return
			}
			cp := new(Conflict)
			*cp = e.found
			e.conflicts[pairID(id, other)] = cp
			e.partners[id] = append(e.partners[id], other)
			e.partners[other] = append(e.partners[other], id)
			dst = append(dst, Event{Kind: ConflictPredicted, Conflict: *cp})
		}
		x := e.index[ent.index]
		switch {
		case !ent.twoSided():
			x.grid.queryUntil(id, 0, e.params.untilNs(ent, reportNs, e.latestNs), e.stamp, epoch, found)
		case plainSide(ent, cls):
			if x.grid.count > 0 {
				e.scratch = x.grid.queryPath(e.scratch, party, s.ECEF, s.VelECEF, reportNs, e.params.querySpanS(ent, reportNs, e.latestNs), ent.growM(speed), ent.growVM(speed), e.stamp, epoch, found)
			}
		default:
			// Listed: the aircraft of the other class are few, each is
			// a candidate (Evaluate's sphere test comes first).
			for _, other := range x.plain {
				if e.stamp[other] != epoch {
					e.stamp[other] = epoch
					found(other)
				}
			}
		}
	}

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
			// The partner goes stale in this call too when its last
			// report is as old (its own turn finds the pair gone).
			stale := []track.Key{s.Key()}
			if o, ok := e.tracks.Get(other); ok && now.Sub(o.Time) > e.tracks.StaleAfter() {
				stale = append(stale, o.Key())
			}
			dst = append(dst, Event{Kind: ConflictEnded, Reason: ReasonStale, Conflict: *c, Stale: stale})
		}
		e.partners[id] = e.partners[id][:0]
		if e.nonconf[id] {
			e.nonconf[id] = false
			dst = append(dst, Event{Kind: Conforming, Reason: ReasonStale, Track: *s, Stale: []track.Key{s.Key()}})
		}
		for _, x := range e.index {
			x.remove(id)
		}
		e.near.remove(id)
	})
	e.tightenNear()
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

// Admit returns the indices of the reports that Ingest must not be given
// so that no party holds more than maxPerParty tracks (track.Table.Admit).
func (e *Engine) Admit(reports []track.Report, maxPerParty int) []int {
	return e.tracks.Admit(reports, maxPerParty)
}

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

// BruteForce checks every pair of the tracks with the entry of their
// classes, through the pair function of Evaluate: the oracle of the tests
// and the baseline of the benchmark. It uses all cores, like FullCycle, so
// that the two compare like for like. Sorted by pair key. Tracks of classes
// the table does not know are in no pair.
func BruteForce(states []track.State, p Params) []Conflict {
	class := make([]int, len(states))
	for i := range states {
		c, ok := p.Table.Class(states[i].Class)
		class[i] = int(c)
		if !ok {
			class[i] = -1
		}
	}
	workers := runtime.GOMAXPROCS(0)
	parts := make([][]Conflict, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var c Conflict
			// Rows interleaved between workers: row i has n-i-1 pairs.
			for i := w; i < len(states); i += workers {
				if class[i] < 0 {
					continue
				}
				for j := i + 1; j < len(states); j++ {
					if class[j] < 0 {
						continue
					}
					if evaluate(&states[i], &states[j], p.Table.For(uint8(class[i]), uint8(class[j])), &p, &c) {
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
		if x[i].PairResult != y[i].PairResult || !x[i].Time.Equal(y[i].Time) ||
			x[i].Sep.Index() != y[i].Sep.Index() || x[i].Level != y[i].Level || x[i].LevelWithMargin != y[i].LevelWithMargin {
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
