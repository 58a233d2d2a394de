package resolve

import (
	"cmp"
	"math"
	"slices"
	"sync"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
)

// Coordinated suggestions. For a pair in conflict, Suggest picks one
// manoeuvre per aircraft, by convention so that the two agree without
// talking: either both turn right (each by zero or more degrees), or the
// higher one climbs while the lower one descends (each by zero or more
// steps), as the rules of the air have it for aircraft converging head
// on. Among these it takes the pair of manoeuvres that is smallest (the
// longer of the two manoeuvre times at standard rates, then their sum)
// such that, both flown at once as Kinematics says (straight for the
// reaction time, then turning or changing altitude at the standard rate,
// then straight and level), the pair is conflict-free over its lookahead
// and neither aircraft comes into conflict with any of its other
// intruders it was clear of. The check simulates both paths: each is cut
// into pieces, straight or, on a turn, arcs of at most 10°, and the
// pair's detectors are run piece by piece on the relative motion. While
// both fly straight that is exact, since every detector decides from the
// relative position and velocity at each instant; while either turns,
// the arc is judged through its chord with each detector widened by what
// the arc can differ from it (suggest_arc.go): never clear where the arc
// is not, and lost at most turnSlackM (a quarter meter) beyond the
// detectors' separation.

// Kinematics is how suggestions are flown and how large they may be.
type Kinematics struct {
	// ReactionS is how long an aircraft flies on before it starts the
	// manoeuvre.
	ReactionS float64
	// TurnRateDegPerS and VerticalRateMps are the standard rates.
	TurnRateDegPerS float64
	VerticalRateMps float64
	// TurnStepDeg and AltStepM are the steps of the candidates, and
	// MaxTurnDeg and MaxClimbM their largest size.
	TurnStepDeg, MaxTurnDeg float64
	AltStepM, MaxClimbM     float64
	// MinAltM and MaxAltM bound the altitudes suggested.
	MinAltM, MaxAltM float64
}

// DefaultKinematics: a reaction time of 10 s, a rate-one turn (3°/s), a
// vertical rate of 1,500 fpm, turns of up to 90° in steps of 1°, altitude
// changes of up to 10,000 ft in steps of 100 ft between 100 and 50,000 ft.
func DefaultKinematics() Kinematics {
	return Kinematics{
		ReactionS:       10,
		TurnRateDegPerS: 3,
		VerticalRateMps: geo.FeetToM(1500) / 60,
		TurnStepDeg:     1, MaxTurnDeg: 90,
		AltStepM: geo.FeetToM(100), MaxClimbM: geo.FeetToM(10000),
		MinAltM: geo.FeetToM(100), MaxAltM: geo.FeetToM(50000),
	}
}

// Manoeuvre kinds.
const (
	KindMaintain = "maintain"
	KindTurn     = "turn"
	KindClimb    = "climb"
	KindDescend  = "descend"
)

// Manoeuvre is what one aircraft is suggested to do.
type Manoeuvre struct {
	// Kind is maintain (fly on: the other aircraft manoeuvres), turn,
	// climb or descend.
	Kind string `json:"kind"`
	// TurnDeg is the change of track, positive to the right, and TrackDeg
	// the track to fly (degrees clockwise from true north).
	TurnDeg  float64 `json:"turn_deg"`
	TrackDeg float64 `json:"track_deg"`
	// ClimbM is the change of altitude, positive up, and AltM the altitude
	// to fly level at (meters).
	ClimbM float64 `json:"climb_m"`
	AltM   float64 `json:"alt_m"`
}

// Party is one aircraft of the pair and the other traffic it must not
// come into conflict with.
type Party struct {
	Aircraft
	Others []Intruder
}

// Suggestion is the coordinated pair of manoeuvres.
type Suggestion struct {
	A, B Manoeuvre
	// CostS is the longer manoeuvre time of the two at standard rates.
	CostS float64
}

// Suggest finds the coordinated suggestion for the pair a, b separated by
// sep (in a local flat frame, z up), each flying as its own Kinematics
// (ka, kb) say; ok is false when no manoeuvre within their limits clears
// the pair without a new conflict.
func Suggest(a, b *Party, sep *Separation, ka, kb *Kinematics) (Suggestion, bool) {
	return suggest(a, b, sep, ka, kb, false)
}

// suggest is Suggest, with unpruned checking every candidate against every
// other aircraft its party is clear of, in order, flying every pair it
// tries through all its pieces and sorting each cost level's pairs (the
// test oracle of the prunes and shortcuts).
func suggest(a, b *Party, sep *Separation, ka, kb *Kinematics, unpruned bool) (Suggestion, bool) {
	s := suggesters.Get().(*suggester)
	defer s.release()
	s.start(a, b, sep, ka, kb, unpruned)
	s.sharedStart = !unpruned && ka.ReactionS > 0 && kb.ReactionS > 0 && sep.Alerter.LookaheadS > 0
	if s.sharedStart && s.everyPairConflictsAtStart() {
		return Suggestion{}, false
	}
	s.sideA.start(a, s.fastestMps(a))
	s.sideB.start(b, s.fastestMps(b))
	turn, turnOK := s.search(s.turnCandidates, familyTurn, math.Inf(1))
	limit := math.Inf(1)
	if turnOK {
		// A change of altitude must be strictly smaller to be preferred.
		limit = math.Nextafter(turn.CostS, 0)
	}
	if vert, ok := s.search(s.verticalCandidates, familyVertical, limit); ok {
		return vert, true
	}
	return turn, turnOK
}

// suggester is the state of one Suggest.
type suggester struct {
	a, b   *Party
	sep    *Separation
	ka, kb *Kinematics
	// sideA and sideB are what is known of a's and b's others.
	sideA, sideB side
	// pairDets are the detectors of sep (pairDetectors), and seps those
	// of each separation of the others met, with their reach, by its
	// pointer.
	pairDets []detect.Detector
	seps     []sepReach
	// unpruned is suggest's: the search without its prunes and
	// shortcuts, their test oracle.
	unpruned bool
	// sharedStart is set when every pair of candidates starts with the
	// same piece of relative motion (startConflicts), and starts holds
	// the verdicts of that piece by its end.
	sharedStart bool
	starts      []startVerdict
	// pieces holds the pieces of the paths flown (flown).
	pieces []segment
}

// suggesters keeps the working memory of finished Suggests for the next
// (the lists by other of an aircraft among a city's drones are large).
var suggesters = sync.Pool{New: func() any { return new(suggester) }}

// start makes s ready for a Suggest, keeping the memory of the last.
func (s *suggester) start(a, b *Party, sep *Separation, ka, kb *Kinematics, unpruned bool) {
	s.a, s.b, s.sep, s.ka, s.kb, s.unpruned = a, b, sep, ka, kb, unpruned
	s.pairDets = pairDetectors(s.pairDets[:0], sep)
	s.seps, s.starts, s.pieces = s.seps[:0], s.starts[:0], s.pieces[:0]
}

// release gives s back to suggesters, holding on to no traffic.
func (s *suggester) release() {
	s.a, s.b, s.sep, s.ka, s.kb = nil, nil, nil, nil, nil
	s.sideA.p, s.sideB.p = nil, nil
	clear(s.seps)
	clear(s.sideA.paths)
	clear(s.sideB.paths)
	suggesters.Put(s)
}

// side is what one Suggest knows of the others of one aircraft of the
// pair, found out as the candidates are checked (mustCheck).
type side struct {
	p *Party
	// speedMps is the fastest p flies in any manoeuvre (outOfReach).
	speedMps float64
	// checks lists, by index in p.Others, the others a candidate of the
	// family being searched may have to be checked against: each is
	// dropped once found not to matter to the family.
	checks []int32
	// known holds, by index in p.Others, what is known of the other.
	known []otherKnown
	// ok caches the verdicts of the candidates of the family being
	// searched against the others, and paths their paths flown, by
	// candidate.
	ok    []verdict
	paths []path
	// clearNow is, for the unpruned oracle only, by index in p.Others,
	// whether p is clear of the other now (clearOfEvery).
	clearNow []bool
}

// otherKnown is what is known of one other of an aircraft, one bit
// each: judgedReach when outOfReach was asked (outOfReach its answer),
// judgedClear when its conflict with the aircraft flying on was
// (clearNow: none), judged(f) when whether family f must check it was
// (checkedBy(f): it must).
type otherKnown uint8

const (
	judgedReach otherKnown = 1 << iota
	outOfReachNow
	judgedClear
	clearNow
	judgedTurn
	checkedByTurn
	judgedVertical
	checkedByVertical
)

// judged and checkedBy are the bits of otherKnown of family f.
func judged(f family) otherKnown {
	if f == familyTurn {
		return judgedTurn
	}
	return judgedVertical
}

func checkedBy(f family) otherKnown {
	if f == familyTurn {
		return checkedByTurn
	}
	return checkedByVertical
}

// verdict is a candidate's verdict against its aircraft's other traffic.
type verdict uint8

const (
	unknown verdict = iota
	clearOfOthers
	conflictsWithOthers
)

// startVerdict is whether the relative motion of the pair flying on
// conflicts over [0, endS].
type startVerdict struct {
	endS     float64
	conflict bool
}

// The start of every pair. Both aircraft fly on for their reaction time
// before any manoeuvre begins, so every pair of candidates, of either
// family, starts with the same piece of relative motion, from the two
// positions now, and the pieces differ only in where they end: at the
// first bend of either path, or at the lookahead. conflictsUnder runs
// the detectors on that piece over [0, end] as on any other, so a pair
// whose start conflicts conflicts, whatever comes after; and there are
// few ends (the lookahead, each reaction time), each judged once. This
// needs both reaction times positive (a path bends only after its first
// piece, which is then flying on) and a positive lookahead (else no
// piece is run at all).

// startConflicts reports whether the pair flying on conflicts over
// [0, endS]: the first piece conflictsUnder runs for every pair whose
// paths first bend at endS (or never bend before the lookahead endS).
func (s *suggester) startConflicts(endS float64) bool {
	for _, v := range s.starts {
		if v.endS == endS {
			return v.conflict
		}
	}
	a, b := path{{pos: s.a.Pos, vel: s.a.Vel}}, path{{pos: s.b.Pos, vel: s.b.Vel}}
	v := startVerdict{endS: endS, conflict: conflictsUnder(a, b, endS, s.pairDets)}
	s.starts = append(s.starts, v)
	return v.conflict
}

// firstEnd is where the first piece of the pair of paths a and b ends, as
// conflictsUnder cuts them: at the earliest time either bends, or at the
// lookahead if sooner.
func firstEnd(a, b path, look float64) float64 {
	end := look
	for _, p := range []path{a, b} {
		if len(p) > 1 && p[1].t < end {
			end = p[1].t
		}
	}
	return end
}

// everyPairConflictsAtStart reports whether every pair of candidates
// conflicts at its start: a candidate flying on never bends, and every
// other first bends at its aircraft's reaction time (flown), so the
// start of a pair ends at the lookahead or at either reaction time or
// the earlier of the two, whichever is sooner than the lookahead. A pair
// already in conflict before the earlier manoeuvre can begin (arrivals
// in trail closer than their separation) has no suggestion.
func (s *suggester) everyPairConflictsAtStart() bool {
	look := s.sep.Alerter.LookaheadS
	ra, rb := min(s.ka.ReactionS, look), min(s.kb.ReactionS, look)
	for _, end := range []float64{look, ra, rb, min(ra, rb)} {
		if !s.startConflicts(end) {
			return false
		}
	}
	return true
}

// kinematics is how p flies.
func (s *suggester) kinematics(p *Party) *Kinematics {
	if p == s.a {
		return s.ka
	}
	return s.kb
}

// start makes sd the side of p, whose fastest is speedMps (fastestMps),
// before any of its others is judged.
func (sd *side) start(p *Party, speedMps float64) {
	sd.p, sd.speedMps, sd.clearNow = p, speedMps, nil
	sd.known = slices.Grow(sd.known[:0], len(p.Others))[:len(p.Others)]
	clear(sd.known)
}

// fastestMps is the fastest p flies in any manoeuvre: its speed, its
// vertical speed turned into the standard rate.
func (s *suggester) fastestMps(p *Party) float64 {
	return math.Hypot(math.Hypot(p.Vel.X, p.Vel.Y), max(math.Abs(p.Vel.Z), s.kinematics(p).VerticalRateMps))
}

// mustCheck reports whether the candidates of family f must be checked
// against other n of the side's aircraft p: it has a separation, p is
// clear of it now (no level of its alerter finds a loss over the
// lookahead), and some path of the family may bring p into conflict with
// it (it is not beyond the family, beyondFamily, nor out of reach of any
// manoeuvre, outOfReach).
// Each is judged once, when first needed: the candidates that meet an
// other mostly meet one of the first tried (clearWith), and the rest
// are never judged.
func (s *suggester) mustCheck(sd *side, n int32, f family) bool {
	k := sd.known[n]
	if k&judged(f) == 0 {
		p, o := sd.p, &sd.p.Others[n]
		if o.Sep == nil {
			sd.known[n] = k | judged(f)
			return false
		}
		r := s.reach(o.Sep)
		if k&judgedReach == 0 {
			k |= judgedReach
			if r.outOfReach(p.Aircraft, sd.speedMps, o) {
				k |= outOfReachNow
			}
		}
		check := k&outOfReachNow == 0 && !r.beyondFamily(p.Aircraft, o, f)
		if check && k&judgedClear == 0 {
			k |= judgedClear
			own, other := [1]segment{{pos: p.Pos, vel: p.Vel}}, [1]segment{{pos: o.Pos, vel: o.Vel}}
			if !conflictsUnder(own[:], other[:], o.Sep.Alerter.LookaheadS, r.dets) {
				k |= clearNow
			}
		}
		k |= judged(f)
		if check && k&clearNow != 0 {
			k |= checkedBy(f)
		}
		sd.known[n] = k
	}
	return k&checkedBy(f) != 0
}

// outOfReach reports whether no path of an aircraft at a from a.Pos at
// most speedMps fast can come within the separation of intruder o (of
// separation r.sep) over o's lookahead: the two start further apart than
// they can close, plus the detectors' reach. Only detectors whose reach
// is known (the cylinder, well clear) are judged; any other is never out
// of reach.
func (r *sepReach) outOfReach(a Aircraft, speedMps float64, o *Intruder) bool {
	if r.unknownReach {
		return false
	}
	look := o.Sep.Alerter.LookaheadS
	closing := speedMps + math.Sqrt(o.Vel.X*o.Vel.X+o.Vel.Y*o.Vel.Y+o.Vel.Z*o.Vel.Z)
	reach := r.cylinderM
	for _, w := range r.wellClear {
		reach = max(reach, w.m+closing*w.s)
	}
	d := o.Pos.Sub(a.Pos)
	return math.Sqrt(d.X*d.X+d.Y*d.Y+d.Z*d.Z)-closing*look > reach+1
}

// family is a sense of manoeuvre: what its paths keep of the aircraft's
// straight flight.
type family uint8

const (
	// familyTurn keeps the vertical motion: every turn (and flying on)
	// climbs or descends as the aircraft does now.
	familyTurn family = iota
	// familyVertical keeps the horizontal motion: every climb or descent
	// (and flying on) goes along the current track at the current ground
	// speed.
	familyVertical
)

// sepReach is what one separation is judged with: its detectors
// (pairDetectors) and their reach, as outOfReach and beyondFamily bound
// it.
type sepReach struct {
	sep  *Separation
	dets []detect.Detector
	// reach is the union of the levels' detect.Reach (alerterReach).
	reach detect.Reach
	// cylinderM is the largest hypot of a cylinder level's distances,
	// and wellClear the hypot of DTHR and ZTHR (m) and the larger of
	// TTHR and TCOA (s) of each well clear level; unknownReach is set
	// when a level has another detector.
	cylinderM    float64
	wellClear    []wellClearReach
	unknownReach bool
}

// wellClearReach is the reach of one well clear level: m plus s seconds
// of closing.
type wellClearReach struct{ m, s float64 }

// reach is sep's sepReach, worked out once per separation of a Suggest.
func (s *suggester) reach(sep *Separation) *sepReach {
	for i := range s.seps {
		if s.seps[i].sep == sep {
			return &s.seps[i]
		}
	}
	s.seps = append(s.seps, reachOf(sep))
	return &s.seps[len(s.seps)-1]
}

// reachOf is sep's sepReach: the union of its levels' reaches as Matter
// has it (alerterReach), and what each level's detector bounds.
func reachOf(sep *Separation) sepReach {
	r := sepReach{sep: sep, dets: pairDetectors(nil, sep)}
	r.reach, _, _ = alerterReach(sep)
	for _, l := range sep.Alerter.Levels {
		switch d := l.Detector.(type) {
		case detect.Cylinder:
			r.cylinderM = max(r.cylinderM, math.Hypot(d.HorizontalM, d.VerticalM))
		case detect.WCV:
			r.wellClear = append(r.wellClear, wellClearReach{m: math.Hypot(d.DTHRM, d.ZTHRM), s: max(d.TTHRS, d.TCOAS)})
		default:
			r.unknownReach = true
		}
	}
	return r
}

// beyondFamily reports whether no path of family f flown by a can come
// within the reach (detect.Reach) of any level of the alerter of o (of
// separation r.sep) over its lookahead. What the family keeps of a's
// straight flight is exact: the vertical relative motion of a turn is
// a's and o's vertical motion as now, so a turn can conflict only when
// the vertical distance comes within the vertical reach; the horizontal
// relative motion of a climb or descent is as now, so one can conflict
// only when the horizontal closest approach comes within the horizontal
// reach. A meter of slack covers the rounding of the detectors'
// tolerances and of the paths.
func (r *sepReach) beyondFamily(a Aircraft, o *Intruder, f family) bool {
	reach := &r.reach
	look := o.Sep.Alerter.LookaheadS
	rel, relVel := o.Pos.Sub(a.Pos), o.Vel.Sub(a.Vel)
	const slackM = 1
	if f == familyTurn {
		return nearestAbs(rel.Z, relVel.Z, 0, look) > reach.VerticalM+math.Abs(relVel.Z)*reach.VerticalS+slackM
	}
	return nearestDist(rel.X, rel.Y, relVel.X, relVel.Y, 0, look) >
		reach.HorizontalM+math.Sqrt(relVel.X*relVel.X+relVel.Y*relVel.Y)*reach.HorizontalS+slackM
}

// candidates lists the manoeuvres of one sense: for a, for b, with their
// manoeuvre times; index 0 is no manoeuvre.
type candidates func() (ma, mb []Manoeuvre, ta, tb []float64)

func (s *suggester) turnCandidates() (ma, mb []Manoeuvre, ta, tb []float64) {
	for _, p := range []*Party{s.a, s.b} {
		k := s.kinematics(p)
		track := math.Mod(math.Atan2(p.Vel.X, p.Vel.Y)*180/math.Pi+360, 360)
		n := int(k.MaxTurnDeg/k.TurnStepDeg) + 1
		ms, ts := make([]Manoeuvre, 0, n), make([]float64, 0, n)
		for turn := 0.0; turn <= k.MaxTurnDeg; turn += k.TurnStepDeg {
			m := Manoeuvre{Kind: KindTurn, TurnDeg: turn, TrackDeg: math.Mod(track+turn, 360), AltM: p.Pos.Z}
			if turn == 0 {
				m.Kind = KindMaintain
			}
			ms, ts = append(ms, m), append(ts, turn/k.TurnRateDegPerS)
		}
		if p == s.a {
			ma, ta = ms, ts
		} else {
			mb, tb = ms, ts
		}
	}
	return ma, mb, ta, tb
}

func (s *suggester) verticalCandidates() (ma, mb []Manoeuvre, ta, tb []float64) {
	// The higher aircraft climbs; at equal altitudes, a.
	up := s.a.Pos.Z >= s.b.Pos.Z
	for _, p := range []*Party{s.a, s.b} {
		sign := -1.0
		if (p == s.a) == up {
			sign = 1
		}
		k := s.kinematics(p)
		track := math.Mod(math.Atan2(p.Vel.X, p.Vel.Y)*180/math.Pi+360, 360)
		n := int(k.MaxClimbM/k.AltStepM) + 1
		ms, ts := make([]Manoeuvre, 0, n), make([]float64, 0, n)
		for climb := 0.0; climb <= k.MaxClimbM; climb += k.AltStepM {
			alt := p.Pos.Z + sign*climb
			if climb > 0 && (alt < k.MinAltM || alt > k.MaxAltM) {
				// Outside the altitudes: not a candidate, but an aircraft
				// above its ceiling (or below its floor) may still be
				// told to descend (climb) into them, and flying on is
				// always one.
				continue
			}
			m := Manoeuvre{Kind: KindClimb, ClimbM: sign * climb, AltM: alt, TrackDeg: track}
			switch {
			case climb == 0:
				m.Kind = KindMaintain
			case sign < 0:
				m.Kind = KindDescend
			}
			ms, ts = append(ms, m), append(ts, climb/k.VerticalRateMps)
		}
		if p == s.a {
			ma, ta = ms, ts
		} else {
			mb, tb = ms, ts
		}
	}
	return ma, mb, ta, tb
}

// search returns the smallest feasible pair of one sense, up to a cost
// limit: by the longer manoeuvre time, then by the sum. The pair of no
// manoeuvres comes first: a pair already clear needs none.
func (s *suggester) search(cands candidates, f family, limitS float64) (Suggestion, bool) {
	ma, mb, ta, tb := cands()
	for _, sd := range []*side{&s.sideA, &s.sideB} {
		sd.checks = slices.Grow(sd.checks[:0], len(sd.p.Others))
		for n := range sd.p.Others {
			sd.checks = append(sd.checks, int32(n))
		}
	}
	for _, c := range []struct {
		sd *side
		n  int
	}{{&s.sideA, len(ma)}, {&s.sideB, len(mb)}} {
		c.sd.ok = slices.Grow(c.sd.ok[:0], c.n)[:c.n]
		clear(c.sd.ok)
		c.sd.paths = slices.Grow(c.sd.paths[:0], c.n)[:c.n]
		clear(c.sd.paths)
	}
	// Flying on is the path each aircraft is clear of its others on.
	if !s.unpruned {
		if ma[0].Kind == KindMaintain {
			s.sideA.ok[0] = clearOfOthers
		}
		if mb[0].Kind == KindMaintain {
			s.sideB.ok[0] = clearOfOthers
		}
	}
	pathsA, pathsB := s.sideA.paths, s.sideB.paths
	// The distinct manoeuvre times, each the longer of a pair.
	levels := append(append([]float64(nil), ta...), tb...)
	levels = sortUnique(levels)
	var pairs []pair
	increasing := increasingFromZero(ta) && increasingFromZero(tb)
	// upTo is the number of leading times (sorted) at most c.
	upTo := func(ts []float64, c float64) int {
		n, _ := slices.BinarySearch(ts, math.Nextafter(c, math.Inf(1)))
		return n
	}
	for _, c := range levels {
		if c > limitS {
			break
		}
		pairs = pairs[:0]
		na, nb := upTo(ta, c), upTo(tb, c)
		// The pairs whose longer time is c, in the order of i then j:
		// below fromA, a's time is under c and b's must be c (from
		// fromB); from fromA on, a's is c and any b goes. Then by their
		// sum, stably.
		fromA, fromB := upTo(ta, math.Nextafter(c, math.Inf(-1))), upTo(tb, math.Nextafter(c, math.Inf(-1)))
		if increasing && !s.unpruned {
			pairs = mergedPairs(pairs, ta, tb, fromA, na, fromB, nb)
		} else {
			for i := range na {
				lo, hi := fromB, nb
				if i >= fromA {
					lo = 0
				}
				for j := lo; j < hi; j++ {
					pairs = append(pairs, pair{i, j, ta[i] + tb[j]})
				}
			}
			slices.SortStableFunc(pairs, func(x, y pair) int { return cmp.Compare(x.sum, y.sum) })
		}
		for _, p := range pairs {
			// A candidate already found to conflict with another
			// intruder fails in any pair: no need to fly the pair.
			if s.sideA.ok[p.i] == conflictsWithOthers || s.sideB.ok[p.j] == conflictsWithOthers {
				continue
			}
			if pathsA[p.i] == nil {
				pathsA[p.i] = s.flown(s.a, ma[p.i])
			}
			if pathsB[p.j] == nil {
				pathsB[p.j] = s.flown(s.b, mb[p.j])
			}
			look := s.sep.Alerter.LookaheadS
			if s.sharedStart && s.startConflicts(firstEnd(pathsA[p.i], pathsB[p.j], look)) {
				continue
			}
			if conflictsUnder(pathsA[p.i], pathsB[p.j], look, s.pairDets) {
				continue
			}
			if s.clearWith(&s.sideA, f, p.i, pathsA[p.i]) && s.clearWith(&s.sideB, f, p.j, pathsB[p.j]) {
				return Suggestion{A: ma[p.i], B: mb[p.j], CostS: c}, true
			}
		}
	}
	return Suggestion{}, false
}

// pair is a pair of candidates, by index, and the sum of their times.
type pair struct {
	i, j int
	sum  float64
}

// increasingFromZero reports whether the times ts strictly increase from
// zero or more: then at most one candidate of each aircraft takes a given
// time (mergedPairs), and the sums of two are never NaN.
func increasingFromZero(ts []float64) bool {
	if len(ts) == 0 || !(ts[0] >= 0) {
		return false
	}
	for i := 1; i < len(ts); i++ {
		if !(ts[i] > ts[i-1]) {
			return false
		}
	}
	return true
}

// mergedPairs appends to dst the pairs whose longer time is c, sorted
// stably by their sum from the order of i then j, when ta and tb
// increase strictly (increasingFromZero): ta[i] is c for i in
// [fromA, na) and tb[j] for j in [fromB, nb), at most one each. The pairs
// where b's time is c, (i, fromB) for i below fromA, come first in that
// order and their sums grow with i; those where a's is, (fromA, j) for j
// below nb, grow with j: the stable sort is their merge, ties to the
// first.
func mergedPairs(dst []pair, ta, tb []float64, fromA, na, fromB, nb int) []pair {
	// The number of pairs where b's time is c, and where a's is.
	bLonger, aLonger := 0, 0
	if nb > fromB {
		bLonger = fromA
	}
	if na > fromA {
		aLonger = nb
	}
	i, j := 0, 0
	for i < bLonger || j < aLonger {
		if j == aLonger || i < bLonger && ta[i]+tb[fromB] <= ta[fromA]+tb[j] {
			dst = append(dst, pair{i, fromB, ta[i] + tb[fromB]})
			i++
		} else {
			dst = append(dst, pair{fromA, j, ta[fromA] + tb[j]})
			j++
		}
	}
	return dst
}

// clearWith reports whether the flown path of candidate i of family f
// keeps the side's aircraft clear of every other intruder it was clear
// of (cached by candidate): of those the family must check (mustCheck),
// each dropped from the side's checks once found not to be. The other a
// candidate meets is moved to the front of the checks: the candidates
// tried next are most often its neighbours, which most often meet it
// too. The verdict does not depend on the order the others are tried in.
func (s *suggester) clearWith(sd *side, f family, i int, path path) bool {
	if sd.ok[i] != unknown {
		return sd.ok[i] == clearOfOthers
	}
	if s.unpruned {
		sd.ok[i] = s.clearOfEvery(sd, path)
		return sd.ok[i] == clearOfOthers
	}
	sd.ok[i] = clearOfOthers
	for c := 0; c < len(sd.checks); {
		n := sd.checks[c]
		if !s.mustCheck(sd, n, f) {
			last := len(sd.checks) - 1
			sd.checks[c] = sd.checks[last]
			sd.checks = sd.checks[:last]
			continue
		}
		o := &sd.p.Others[n]
		other := [1]segment{{pos: o.Pos, vel: o.Vel}} // flying on (straight), without an allocation
		if conflictsUnder(path, other[:], o.Sep.Alerter.LookaheadS, s.reach(o.Sep).dets) {
			sd.ok[i] = conflictsWithOthers
			sd.checks[0], sd.checks[c] = sd.checks[c], sd.checks[0]
			break
		}
		c++
	}
	return sd.ok[i] == clearOfOthers
}

// clearOfEvery is the verdict of the path of one of the side's
// aircraft's candidates against every other it is clear of now, in their
// order: clearWith without its prunes (outOfReach among them), its test
// oracle. Which others it is clear of is worked out at the first
// call, for all.
func (s *suggester) clearOfEvery(sd *side, path path) verdict {
	p := sd.p
	if sd.clearNow == nil {
		sd.clearNow = make([]bool, len(p.Others))
		for n := range p.Others {
			o := &p.Others[n]
			if o.Sep == nil {
				continue
			}
			r := s.reach(o.Sep)
			own, other := [1]segment{{pos: p.Pos, vel: p.Vel}}, [1]segment{{pos: o.Pos, vel: o.Vel}}
			sd.clearNow[n] = !conflictsUnder(own[:], other[:], o.Sep.Alerter.LookaheadS, r.dets)
		}
	}
	for n := range p.Others {
		if !sd.clearNow[n] {
			continue
		}
		o := &p.Others[n]
		other := [1]segment{{pos: o.Pos, vel: o.Vel}}
		if conflictsUnder(path, other[:], o.Sep.Alerter.LookaheadS, s.reach(o.Sep).dets) {
			return conflictsWithOthers
		}
	}
	return clearOfOthers
}

// flown is the path of p flying manoeuvre m as its Kinematics say.
func (s *suggester) flown(p *Party, m Manoeuvre) path {
	k := s.kinematics(p)
	// Room for every piece: the start, a chord per turnChordDeg of a turn
	// and its end, or the climb and the level flight after it; taken from
	// the pieces of the Suggest's paths, a few allocations for them all.
	room := 3 + int(m.TurnDeg/turnChordDeg)
	if cap(s.pieces)-len(s.pieces) < room {
		s.pieces = make([]segment, 0, max(room, 2*cap(s.pieces), 32))
	}
	n := len(s.pieces)
	segs := path(s.pieces[n : n+1 : n+room])
	segs[0] = segment{pos: p.Pos, vel: p.Vel}
	at := func(t float64) detect.Vec3 {
		last := segs[len(segs)-1]
		dt := t - last.t
		return detect.Vec3{X: last.pos.X + last.vel.X*dt, Y: last.pos.Y + last.vel.Y*dt, Z: last.pos.Z + last.vel.Z*dt}
	}
	switch {
	case m.Kind == KindTurn:
		// The whole arc, from where the turn starts: each chord joins
		// two of its points.
		startS := k.ReactionS
		arc := segment{t: startS, pos: at(startS), vel: p.Vel, turnRadPerS: k.TurnRateDegPerS * math.Pi / 180,
			headingRad: math.Atan2(p.Vel.X, p.Vel.Y), gsMps: math.Hypot(p.Vel.X, p.Vel.Y)}
		arc.sinHeading, arc.cosHeading = math.Sincos(arc.headingRad)
		// Consecutive chords share their ends, and every whole chord its
		// errors.
		from, sinFrom, cosFrom := arc.pos, arc.sinHeading, arc.cosHeading
		wholeS := turnChordDeg / k.TurnRateDegPerS
		wholePosErrM, wholeVelErrMps := chordError(arc.gsMps, arc.turnRadPerS, wholeS)
		for done := 0.0; done < m.TurnDeg; {
			chunk := min(turnChordDeg, m.TurnDeg-done)
			t, next := startS+done/k.TurnRateDegPerS, startS+(done+chunk)/k.TurnRateDegPerS
			to, sinTo, cosTo := arc.arcPoint(next)
			chord := segment{t: t, pos: from, turnRadPerS: arc.turnRadPerS, headingRad: arc.headingRad + done*math.Pi/180, gsMps: arc.gsMps,
				sinHeading: sinFrom, cosHeading: cosFrom, posErrM: wholePosErrM, velErrMps: wholeVelErrMps}
			chord.vel = detect.Vec3{X: (to.X - from.X) / (next - t), Y: (to.Y - from.Y) / (next - t), Z: p.Vel.Z}
			if chunk != turnChordDeg {
				chord.posErrM, chord.velErrMps = chordError(arc.gsMps, arc.turnRadPerS, next-t)
			}
			segs = append(segs, chord)
			done += chunk
			from, sinFrom, cosFrom = to, sinTo, cosTo
		}
		// Straight on from the arc's end at its heading.
		endS := startS + m.TurnDeg/k.TurnRateDegPerS
		segs = append(segs, segment{t: endS, pos: from, vel: detect.Vec3{X: arc.gsMps * sinFrom, Y: arc.gsMps * cosFrom, Z: p.Vel.Z}})
	case m.Kind == KindClimb || m.Kind == KindDescend:
		t := k.ReactionS
		start := at(t)
		dz := m.AltM - start.Z
		vz := math.Copysign(k.VerticalRateMps, dz)
		segs = append(segs, segment{t: t, pos: start, vel: detect.Vec3{X: p.Vel.X, Y: p.Vel.Y, Z: vz}})
		t += math.Abs(dz) / k.VerticalRateMps
		segs = append(segs, segment{t: t, pos: at(t), vel: detect.Vec3{X: p.Vel.X, Y: p.Vel.Y}})
	}
	if len(segs) <= room {
		s.pieces = s.pieces[:n+len(segs)]
	}
	return segs
}

// turnChordDeg is the largest turn of one chord of a flown turn.
const turnChordDeg = 10

// segment is a piece of a path from time t on: straight from pos at vel;
// or, on a turn (turnRadPerS not zero), the chord of the arc flown from
// pos at heading headingRad (clockwise from north; its sine and cosine
// worked out once) and ground speed gsMps, turning at turnRadPerS
// (positive to the right): vel joins pos to the arc's point where the
// next piece starts, so that the chords meet the arc at their ends and
// the path after the turn is the arc's; the arc is within posErrM and
// velErrMps of the chord all along it (chordError).
type segment struct {
	t                              float64
	pos, vel                       detect.Vec3
	turnRadPerS, headingRad, gsMps float64
	sinHeading, cosHeading         float64
	posErrM, velErrMps             float64
}

// arcAt is the position and velocity at time t on the arc of the turning
// segment s.
func (s *segment) arcAt(t float64) (pos, vel detect.Vec3) {
	pos, sinH, cosH := s.arcPoint(t)
	return pos, detect.Vec3{X: s.gsMps * sinH, Y: s.gsMps * cosH, Z: s.vel.Z}
}

// arcPoint is the position at time t on the arc of the turning segment
// s, and the sine and cosine of the heading there.
func (s *segment) arcPoint(t float64) (pos detect.Vec3, sinH, cosH float64) {
	dt := t - s.t
	sinH, cosH = math.Sincos(s.headingRad + s.turnRadPerS*dt)
	// The signed radius: the heading h turns at the rate ω, the velocity
	// is gs·(sin h, cos h), and its integral gs/ω·(−cos h, sin h).
	r := s.gsMps / s.turnRadPerS
	return detect.Vec3{X: s.pos.X + r*(s.cosHeading-cosH), Y: s.pos.Y + r*(sinH-s.sinHeading), Z: s.pos.Z + s.vel.Z*dt}, sinH, cosH
}

// path is an aircraft's simulated flight: pieces in time order, the last
// one flown on for ever.
type path []segment

// straight is the path of an aircraft flying on.
func straight(a Aircraft) path { return path{{pos: a.Pos, vel: a.Vel}} }

// pieceAt is the index of the piece of p flown at time t.
func (p path) pieceAt(t float64) int {
	i := len(p) - 1
	for i > 0 && p[i].t > t {
		i--
	}
	return i
}

// state is the position and velocity on the path's pieces (a turn's
// chords) at time t.
func (p path) state(t float64) (detect.Vec3, detect.Vec3) { return p[p.pieceAt(t)].along(t) }

// along is the position and velocity at time t on the straight piece s
// (on a turn, its chord).
func (s *segment) along(t float64) (detect.Vec3, detect.Vec3) {
	dt := t - s.t
	return detect.Vec3{X: s.pos.X + s.vel.X*dt, Y: s.pos.Y + s.vel.Y*dt, Z: s.pos.Z + s.vel.Z*dt}, s.vel
}

// conflicts reports whether any level of sep's alerter finds a loss of
// separation between the two paths within its lookahead: the relative
// motion is straight between the times where either path bends, and each
// piece is run through the detectors over its own length.
func conflicts(a, b path, sep *Separation) bool {
	return conflictsUnder(a, b, sep.Alerter.LookaheadS, pairDetectors(nil, sep))
}

// pairDetectors appends to dst the detectors conflicts runs for sep: each
// level's, a detector the level before has too once.
func pairDetectors(dst []detect.Detector, sep *Separation) []detect.Detector {
	for i, l := range sep.Alerter.Levels {
		if i > 0 && l.Detector == sep.Alerter.Levels[i-1].Detector {
			continue
		}
		dst = append(dst, l.Detector)
	}
	return dst
}

// conflictsUnder is conflicts with sep's lookahead and detectors
// (pairDetectors) given.
func conflictsUnder(a, b path, look float64, dets []detect.Detector) bool {
	// The last piece first, before the others are cut: it is the
	// longest, flown once both manoeuvres are over, and where most
	// candidates that fail still meet; the verdict is the same in any
	// order. It starts at the later of the last times either path bends
	// within (0, look), or at 0.
	last := max(lastBend(a, look), lastBend(b, look))
	if look > last && pieceConflicts(a, b, last, look, dets) {
		return true
	}
	// The times where either path bends, within (0, look): both paths
	// are in time order, so a merge sorts them.
	var cuts [64]float64
	ts := append(cuts[:0], 0)
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var t float64
		if j == len(b) || i < len(a) && a[i].t <= b[j].t {
			t, i = a[i].t, i+1
		} else {
			t, j = b[j].t, j+1
		}
		if t > ts[len(ts)-1] && t < look {
			ts = append(ts, t)
		}
	}
	if look > ts[len(ts)-1] {
		ts = append(ts, look)
	}
	// The pieces before the last (ts ends with last and look when there
	// is a piece at all), backwards.
	for n := len(ts) - 3; n >= 0; n-- {
		if pieceConflicts(a, b, ts[n], ts[n+1], dets) {
			return true
		}
	}
	return false
}

// lastBend is the last time path p bends within (0, look), 0 if none.
func lastBend(p path, look float64) float64 {
	for k := len(p) - 1; k >= 0 && p[k].t > 0; k-- {
		if p[k].t < look {
			return p[k].t
		}
	}
	return 0
}

// pieceConflicts reports whether the detectors find a loss of the
// relative motion of paths a and b over [t0, t1], pieces of both: on
// straight pieces the relative motion is straight; while either turns,
// the arc is judged (turnConflicts).
func pieceConflicts(a, b path, t0, t1 float64, dets []detect.Detector) bool {
	sa, sb := &a[a.pieceAt(t0)], &b[b.pieceAt(t0)]
	if sa.turnRadPerS != 0 || sb.turnRadPerS != 0 {
		return turnConflicts(sa, sb, t0, t1, dets, 0)
	}
	pa, va := sa.along(t0)
	pb, vb := sb.along(t0)
	rp, rv := pb.Sub(pa), vb.Sub(va)
	for _, d := range dets {
		if d.Loss(rp, rv, 0, t1-t0).Conflict {
			return true
		}
	}
	return false
}
