package resolve

import (
	"math"
	"slices"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
)

// Separation is how the ownship is kept apart from one intruder: the
// pair's alerter, the region each of its levels paints, and the cylinders
// of the recovery search.
type Separation struct {
	Alerter detect.Alerter
	// Regions has one region per level of Alerter: the band a conflict
	// found by that level's detector paints (RegionNone: none).
	Regions []Region
	// Recovery is the cylinder recovery starts from (DAIDALUS's
	// min_horizontal_recovery and min_vertical_recovery) and NMAC the
	// smallest it shrinks to (horizontal_nmac, vertical_nmac).
	Recovery, NMAC detect.Cylinder
}

// levelFor is the index of the first level painting region r, -1 when
// none does.
func (s *Separation) levelFor(r Region) int {
	for i, lr := range s.Regions {
		if lr == r {
			return i
		}
	}
	return -1
}

// DO365 is DAIDALUS's DO-365B Phase I configuration without SUM
// (set_DO_365B(true, false)): its alerter, the preventive level painting
// no band, corrective MID and warning NEAR; recovery from the corrective
// well clear (0.66 NM, 450 ft) down to the NMAC cylinder (500 ft, 100 ft).
func DO365() Separation {
	a := detect.DO365BPhaseI()
	return Separation{
		Alerter:  a,
		Regions:  []Region{RegionNone, RegionMid, RegionNear},
		Recovery: detect.Cylinder{HorizontalM: geo.NMToM(0.66), VerticalM: geo.FeetToM(450)},
		NMAC:     nmac,
	}
}

// nmac is DAIDALUS's near-mid-air-collision cylinder (500 ft, 100 ft).
var nmac = detect.Cylinder{HorizontalM: geo.FeetToM(500), VerticalM: geo.FeetToM(100)}

// CylinderSeparation is the separation of a cylinder watched over
// lookaheadS with alert levels by alerting time, from the least severe:
// every level's detector is the cylinder; the most severe level paints
// NEAR, the one before it MID (the corrective region) and any before that
// FAR. Recovery starts from the cylinder and shrinks down to DAIDALUS's
// NMAC cylinder, or the cylinder itself when smaller.
func CylinderSeparation(cyl detect.Cylinder, lookaheadS float64, alertingTimesS ...float64) Separation {
	s := Separation{
		Alerter:  detect.Alerter{LookaheadS: lookaheadS},
		Recovery: cyl,
		NMAC:     detect.Cylinder{HorizontalM: min(cyl.HorizontalM, nmac.HorizontalM), VerticalM: min(cyl.VerticalM, nmac.VerticalM)},
	}
	n := len(alertingTimesS)
	for i, t := range alertingTimesS {
		s.Alerter.Levels = append(s.Alerter.Levels, detect.AlertLevel{Detector: cyl, AlertingTimeS: t})
		switch i {
		case n - 1:
			s.Regions = append(s.Regions, RegionNear)
		case n - 2:
			s.Regions = append(s.Regions, RegionMid)
		default:
			s.Regions = append(s.Regions, RegionFar)
		}
	}
	return s
}

// Aircraft is a position (meters) and velocity (m/s) in one local flat
// frame: x east, y north, z up.
type Aircraft struct {
	Pos, Vel detect.Vec3
}

// Intruder is an aircraft the bands are tested against, with the
// separation of its pair with the ownship.
type Intruder struct {
	Aircraft
	Sep *Separation
}

// Config bounds the candidates of each dimension and sets the recovery
// search; DefaultConfig has DAIDALUS's DO-365B values.
type Config struct {
	MinGsMps, MaxGsMps   float64
	MinVsMps, MaxVsMps   float64
	MinAltM, MaxAltM     float64
	MinAirspeedMps       float64
	CorrectiveRegion     Region
	RecoveryStabilityS   float64
	CollisionAvoidFactor float64
	// Steps are, by dimension (track in degrees, ground speed m/s,
	// vertical speed m/s, altitude m), the narrowest range a manoeuvre can
	// use, DAIDALUS's candidate steps: a set of free candidates counts as
	// free (it stops saturation, it can be a recovery set) only by its
	// ranges at least one step wide, as DAIDALUS gives no band to a free
	// candidate whose neighbours conflict.
	Steps [4]float64
	// Samples is the number of candidates per dimension tested for a
	// detector that is not detect.Bounded.
	Samples int
}

// DefaultConfig returns DAIDALUS's DO-365B ranges (reference README
// section 3.1): ground speed 10 to 700 kt, vertical speed ±6000 fpm,
// altitude 100 to 50,000 ft, minimum airspeed 10 kt, corrective region
// MID, recovery stability 3 s, collision-avoidance factor 0.1.
func DefaultConfig() Config {
	kt := 1852.0 / 3600.0
	fpm := 0.3048 / 60.0
	return Config{
		MinGsMps: 10.0 * kt, MaxGsMps: 700.0 * kt,
		MinVsMps: -6000.0 * fpm, MaxVsMps: 6000.0 * fpm,
		MinAltM: 100 * 0.3048, MaxAltM: 50000 * 0.3048,
		MinAirspeedMps:       10.0 * kt,
		CorrectiveRegion:     RegionMid,
		RecoveryStabilityS:   3,
		CollisionAvoidFactor: 0.1,
		Steps:                [4]float64{1, 5.0 * kt, 100.0 * fpm, 100 * 0.3048},
		Samples:              720,
	}
}

// step is the narrowest usable range of dimension d, in its internal unit
// (track in radians).
func (c *Config) step(d dim) float64 {
	if d == dimTrack {
		return c.Steps[d] * math.Pi / 180
	}
	return c.Steps[d]
}

// span of dimension d's candidates.
func (c *Config) span(d dim) (lo, hi float64) {
	switch d {
	case dimTrack:
		return 0, 2 * math.Pi
	case dimGs:
		return c.MinGsMps, c.MaxGsMps
	case dimVs:
		return c.MinVsMps, c.MaxVsMps
	}
	return c.MinAltM, c.MaxAltM
}

// member is an intruder contributing to one region of one dimension: the
// detector of its level for the region, over [0, horizonS].
type member struct {
	in       *Intruder
	det      detect.Detector
	horizonS float64
}

// memberOf is intruder i as a member of region r: the detector of its
// level painting r, over the whole lookahead when it is a conflict
// aircraft of r and up to the level's alerting time otherwise; false when
// no level of its alerter paints r.
func (c *computation) memberOf(i int, r Region) (member, bool) {
	in := &c.traffic[i]
	li := in.Sep.levelFor(r)
	if li < 0 {
		return member{}, false
	}
	lvl := &in.Sep.Alerter.Levels[li]
	horizon := in.Sep.Alerter.LookaheadS
	if !c.conflict[r][i] {
		horizon = min(horizon, lvl.AlertingTimeS)
	}
	return member{in: in, det: lvl.Detector, horizonS: horizon}, true
}

// test is the detection the member submits a candidate to.
func (m *member) test() test {
	return test{det: m.det, pos: m.in.Pos, vel: m.in.Vel, fromS: 0, toS: m.horizonS}
}

// computation is the state of one Compute.
type computation struct {
	cfg     *Config
	own     ownship
	traffic []Intruder
	regions []Region // painted by some intruder, most severe first
	// conflict[r][i]: intruder i's current state holds its level for r.
	conflict [RegionRecovery][]bool
	// inside: the ownship is inside the corrective volume of a conflict
	// aircraft of the corrective region now (its loss starts at 0).
	inside bool
	// reachable lists, for the dimension being computed, the intruders
	// some candidate of it may conflict with (reachableIn).
	reachable []int
	// keep has, for each intruder, bit d when it matters to dimension d
	// (reachMasks).
	keep []uint8
	// infos and lastInfo are the separations met (info).
	infos    []*sepInfo
	lastInfo *sepInfo
	sc       scratch
	// unpruned runs every test of every intruder, as the test oracle of
	// the prunes: every intruder's detection in classify (beyondReachNow),
	// and in each dimension every intruder (reachMasks) and its red, of
	// the regions and of the recovery (beyondReach).
	unpruned bool
}

// Compute returns the bands of the ownship against the traffic. Intruders
// with a nil Sep are ignored.
func Compute(own Aircraft, traffic []Intruder, cfg *Config) Bands {
	return compute(own, traffic, cfg, false)
}

// compute is Compute, with every prune left out when unpruned (the
// oracle of the prunes' tests).
func compute(own Aircraft, traffic []Intruder, cfg *Config, unpruned bool) Bands {
	c := &computation{cfg: cfg, own: newOwnship(own.Pos, own.Vel, cfg.MinAirspeedMps), traffic: traffic, unpruned: unpruned}
	c.classify()
	c.reachMasks()
	var b Bands
	var rec [numDims]float64
	b.TrackDeg, rec[dimTrack] = c.dimension(dimTrack)
	b.GsMps, rec[dimGs] = c.dimension(dimGs)
	b.VsMps, rec[dimVs] = c.dimension(dimVs)
	b.AltM, rec[dimAlt] = c.dimension(dimAlt)
	for i := range b.TrackDeg {
		b.TrackDeg[i].Low *= 180 / math.Pi
		b.TrackDeg[i].High *= 180 / math.Pi
	}
	for _, t := range rec {
		b.RecoveryTimeS = max(b.RecoveryTimeS, t)
	}
	return b
}

// classify finds the regions painted and, for each intruder, whether it is
// a conflict aircraft of each (DaidalusCore::conflict_aircraft).
func (c *computation) classify() {
	var painted [RegionRecovery]bool
	for r := RegionFar; r < RegionRecovery; r++ {
		c.conflict[r] = make([]bool, len(c.traffic))
	}
	for i := range c.traffic {
		in := &c.traffic[i]
		if in.Sep == nil {
			continue
		}
		inf := c.info(in.Sep)
		rp, rv := in.Pos.Sub(c.own.pos), in.Vel.Sub(c.own.vel)
		// Levels of one detector share its reach: tested once.
		lastReach, beyond := -1, false
		for _, pl := range inf.levels {
			r := pl.region
			painted[r] = true
			if !c.unpruned {
				if pl.reach != lastReach {
					lastReach = pl.reach
					beyond = beyondReachNow(rp, rv, inf.horizonS, inf.reaches[pl.reach])
				}
				if beyond {
					// No loss starting within the level's alerting
					// time, which is all Holds looks at: most of a busy
					// airspace, spared its detection.
					continue
				}
			}
			lvl := &in.Sep.Alerter.Levels[pl.level]
			loss := lvl.Detector.Loss(rp, rv, 0, in.Sep.Alerter.LookaheadS)
			if lvl.Holds(loss) {
				c.conflict[r][i] = true
				if r == c.cfg.CorrectiveRegion && loss.TInS == 0 {
					c.inside = true
				}
			}
		}
	}
	for r := RegionNear; r > RegionNone; r-- {
		if painted[r] {
			c.regions = append(c.regions, r)
		}
	}
}

// beyondReachNow reports whether the relative motion relPos + relVel·t
// stays beyond reach over [0, lookaheadS]: its horizontal closest approach
// further than reach.HorizontalM + |relVel_h|·HorizontalS, or its vertical
// distance always further than reach.VerticalM + |relVel_z|·VerticalS, so
// that a detector of that reach finds no loss. A meter of slack covers
// the rounding of the detectors' tolerances (Reach: far below it).
func beyondReachNow(relPos, relVel detect.Vec3, lookaheadS float64, reach detect.Reach) bool {
	const slackM = 1
	if nearestAbs(relPos.Z, relVel.Z, 0, lookaheadS) > reach.VerticalM+math.Abs(relVel.Z)*reach.VerticalS+slackM {
		return true
	}
	return nearestDist(relPos.X, relPos.Y, relVel.X, relVel.Y, 0, lookaheadS) >
		reach.HorizontalM+math.Sqrt(relVel.X*relVel.X+relVel.Y*relVel.Y)*reach.HorizontalS+slackM
}

// members returns the intruders contributing to region r in dimension d,
// and the union of their conflicting candidates, testing every candidate
// of every intruder: the unpruned computation's, and the reference of the
// pruned green and memberList in their tests.
func (c *computation) members(d dim, r Region, lo, hi float64) ([]member, spans) {
	var ms []member
	var red []span
	for _, i := range c.reachable {
		m, ok := c.memberOf(i, r)
		if !ok {
			continue
		}
		t := m.test()
		n := len(red)
		red = c.own.red(red, &c.sc, d, lo, hi, &t, c.cfg.Samples)
		if c.conflict[r][i] || len(red) > n {
			ms = append(ms, m)
		}
	}
	return ms, unite(red)
}

// green is the free ranges of region r in dimension d: the candidates
// no member conflicts with, in ranges at least a step wide (narrower ones
// are not offered), as members' union of conflicts leaves them. Member by
// member, the conflict aircraft first, only the pieces that meet the
// ranges a step wide the members before leave are tested (redWithin: a
// conflict takes nothing wider from a narrower range), a member out of
// reach of every candidate between the first and the last of them not at
// all, and none once none is left (saturated).
func (c *computation) green(d dim, r Region, lo, hi float64) spans {
	step := c.cfg.step(d)
	if c.unpruned {
		_, red := c.members(d, r, lo, hi)
		return red.complement(lo, hi).wide(step)
	}
	red, gaps := c.sc.spans[:0], spans(nil).appendWideGaps(c.sc.gaps[:0], lo, hi, step)
	defer func() { c.sc.spans, c.sc.gaps = red[:0], gaps[:0] }()
	// The conflict aircraft first: they take most, leaving the others
	// less to test.
	for _, conflicts := range [...]bool{true, false} {
		for _, i := range c.reachable {
			if len(gaps) == 0 {
				return nil
			}
			if c.conflict[r][i] != conflicts {
				continue
			}
			m, ok := c.memberOf(i, r)
			if !ok {
				continue
			}
			t := m.test()
			if rlo, rhi := spans(gaps).hull(lo, hi); c.own.beyondReach(d, rlo, rhi, &t) || c.own.beyondLine(d, rlo, rhi, &t) {
				// No candidate of the ranges left conflicts.
				continue
			}
			n := len(red)
			red = c.own.redWithin(red, &c.sc, d, lo, hi, &t, c.cfg.Samples, gaps)
			if len(red) > n {
				red = unite(red)
				gaps = spans(red).appendWideGaps(gaps[:0], lo, hi, step)
			}
		}
	}
	if len(gaps) == 0 {
		return nil
	}
	return slices.Clone(gaps)
}

// memberList is the members of region r in dimension d, as members
// returns them, without the union of their conflicts: a conflict aircraft
// is a member without a test, any other is one as soon as one candidate
// conflicts (anyRed).
func (c *computation) memberList(d dim, r Region, lo, hi float64) []member {
	if c.unpruned {
		ms, _ := c.members(d, r, lo, hi)
		return ms
	}
	var ms []member
	for _, i := range c.reachable {
		m, ok := c.memberOf(i, r)
		if !ok {
			continue
		}
		if c.conflict[r][i] {
			ms = append(ms, m)
			continue
		}
		t := m.test()
		if !c.own.beyondReach(d, lo, hi, &t) && !c.own.beyondLine(d, lo, hi, &t) && c.own.anyRed(&c.sc, d, lo, hi, &t, c.cfg.Samples) {
			ms = append(ms, m)
		}
	}
	return ms
}

// reachMasks sets c.keep: for each intruder, bit d when it matters to
// the bands of dimension d within the dimension's domain: a conflict
// aircraft of some region, or one that some candidate may conflict with
// under the detector of a level painting a region within the longest
// alerting time of those levels (sepInfo.horizonS: members tests the
// others over their level's, which only finds less). One pass by the
// detectors' Reach for all dimensions, each distinct reach of a
// separation once, so that the passes of each region go over the few
// intruders of a busy airspace that can matter.
func (c *computation) reachMasks() {
	var lo, hi [numDims]float64
	for d := range numDims {
		lo[d], hi[d] = c.domain(d)
	}
	c.keep = make([]uint8, len(c.traffic))
	const all = 1<<numDims - 1
	for i := range c.traffic {
		in := &c.traffic[i]
		if in.Sep == nil {
			continue
		}
		var keep uint8
		for r := RegionFar; r < RegionRecovery; r++ {
			if c.conflict[r][i] {
				keep = all
				break
			}
		}
		if keep == all || c.unpruned {
			c.keep[i] = all
			continue
		}
		inf := c.info(in.Sep)
		t := test{pos: in.Pos, vel: in.Vel, toS: inf.horizonS}
		for _, reach := range inf.reaches {
			keep |= all &^ c.own.beyondMask(&lo, &hi, &t, reach)
			if keep == all {
				break
			}
		}
		c.keep[i] = keep
	}
}

// sepInfo is what the passes over every intruder use of a separation,
// worked out once per separation of a computation (info): the levels that
// paint a region, in order, each with the index of its detector's reach
// among the distinct reaches of those levels.
type sepInfo struct {
	sep     *Separation
	reaches []detect.Reach
	levels  []paintLevel
	// horizonS is the longest alerting time of those levels within the
	// lookahead: a conflict aircraft's loss starts within it
	// (detect.AlertLevel.Holds), and any other intruder is a member of a
	// region only by a conflict within it (memberOf).
	horizonS float64
}

// paintLevel is a level of a separation painting a region: the first
// level painting it.
type paintLevel struct {
	level  int
	region Region
	reach  int
}

// info returns sep's sepInfo.
func (c *computation) info(sep *Separation) *sepInfo {
	if c.lastInfo != nil && c.lastInfo.sep == sep {
		return c.lastInfo
	}
	for _, inf := range c.infos {
		if inf.sep == sep {
			c.lastInfo = inf
			return inf
		}
	}
	inf := &sepInfo{sep: sep}
	for li, r := range sep.Regions {
		if r == RegionNone || r >= RegionRecovery || sep.levelFor(r) != li {
			continue
		}
		reach := sep.Alerter.Levels[li].Detector.Reach()
		k := slices.Index(inf.reaches, reach)
		if k < 0 {
			k = len(inf.reaches)
			inf.reaches = append(inf.reaches, reach)
		}
		inf.levels = append(inf.levels, paintLevel{level: li, region: r, reach: k})
		inf.horizonS = max(inf.horizonS, min(sep.Alerter.Levels[li].AlertingTimeS, sep.Alerter.LookaheadS))
	}
	c.infos = append(c.infos, inf)
	c.lastInfo = inf
	return inf
}

// reachableIn lists in c.reachable the intruders that matter to the bands
// of dimension d (reachMasks).
func (c *computation) reachableIn(d dim) {
	c.reachable = c.reachable[:0]
	for i, k := range c.keep {
		if k&(1<<d) != 0 {
			c.reachable = append(c.reachable, i)
		}
	}
}

// dimension computes the bands of one dimension (track in radians) and
// its recovery time (0 when not in recovery).
func (c *computation) dimension(d dim) ([]Range, float64) {
	spanLo, spanHi := c.cfg.span(d)
	lo, hi := c.domain(d)
	c.reachableIn(d)
	var layers []layer
	recovery := false
	var recSet spans
	var recTime float64
	for _, r := range c.regions {
		green := c.green(d, r, lo, hi)
		saturated := len(green) == 0
		switch {
		case saturated && r >= c.cfg.CorrectiveRegion:
			recovery = true
			corrective := c.memberList(d, c.cfg.CorrectiveRegion, lo, hi)
			recSet, recTime = c.recovery(d, corrective, lo, hi)
			if r == c.cfg.CorrectiveRegion {
				// The corrective region is painted outside the recovery
				// set; a more severe one that saturated covers all.
				layers = append(layers, layer{region: r, free: recSet})
			} else {
				layers = append(layers, layer{region: r, free: nil})
			}
		case r == c.cfg.CorrectiveRegion && c.inside:
			recovery = true
			recSet = green
			layers = append(layers, layer{region: r, free: green})
		default:
			layers = append(layers, layer{region: r, free: green})
		}
		if recovery || saturated {
			break
		}
	}
	for i := range layers {
		layers[i].free = layers[i].free.clamp(spanLo, spanHi)
	}
	return paint(spanLo, spanHi, layers, recovery, recSet.clamp(spanLo, spanHi)), recTime
}

// domain is the extent of the candidates of dimension d: its span, and,
// for ground speed, vertical speed and altitude, as DAIDALUS does, out to
// the first step at or beyond each limit from the current value (from the
// lowest altitude for altitude), so that a free range is usable when it
// is one step wide there, even if the limit cuts it narrower.
func (c *computation) domain(d dim) (lo, hi float64) {
	lo, hi = c.cfg.span(d)
	step := c.cfg.step(d)
	if d == dimTrack || step <= 0 {
		return lo, hi
	}
	val := lo
	switch d {
	case dimGs:
		val = math.Hypot(c.own.vel.X, c.own.vel.Y)
	case dimVs:
		val = c.own.vel.Z
	}
	if val >= lo {
		lo = val - math.Ceil((val-lo)/step)*step
	}
	if val <= hi {
		hi = val + math.Ceil((hi-val)/step)*step
	}
	return lo, hi
}

// layer paints region on the complement of free.
type layer struct {
	region Region
	free   spans
}

// paint colours [lo, hi]: each value takes the most severe region whose
// layer does not call it free; in recovery, the recovery set is RECOVERY
// and so is what no layer paints (ColorValue and BandsRange of DAIDALUS).
func paint(lo, hi float64, layers []layer, recovery bool, recSet spans) []Range {
	cuts := []float64{lo, hi}
	for _, l := range layers {
		for _, s := range l.free {
			cuts = append(cuts, s.lo, s.hi)
		}
	}
	for _, s := range recSet {
		cuts = append(cuts, s.lo, s.hi)
	}
	cuts = sortUnique(cuts)
	// Pieces a billionth of the span wide are rounding between two cuts
	// that are one: they join their neighbour.
	hair := (hi - lo) * 1e-9
	var out []Range
	for i := 0; i+1 < len(cuts); i++ {
		a, b := cuts[i], cuts[i+1]
		if a < lo || b > hi {
			continue
		}
		n := len(out)
		if b-a <= hair {
			if n > 0 {
				out[n-1].High = b
			}
			continue
		}
		mid := a + (b-a)/2
		region := RegionNone
		for _, l := range layers {
			if l.region > region && !l.free.contains(mid) {
				region = l.region
			}
		}
		if recovery {
			if recSet.contains(mid) || region == RegionNone {
				region = RegionRecovery
			}
		}
		switch {
		case n == 0:
			a = lo
		case out[n-1].Region == region:
			out[n-1].High = b
			continue
		default:
			a = out[n-1].High
		}
		out = append(out, Range{Low: a, High: b, Region: region})
	}
	return out
}
