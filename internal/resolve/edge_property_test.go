package resolve

// Properties at the edge: intruders placed where a drawn candidate or a
// drawn manoeuvre's path just meets, or just misses, the edge of a
// level's loss region or of its reach, where a filter or a prune a metre
// too tight shows (uniform traffic over kilometres puts almost none
// there). Matter must keep every intruder some candidate or path
// conflicts with, and Reaches, its first test, rule out none it keeps;
// the pruned Compute must give the unpruned bands, and Suggest, handed
// what Matter keeps, the unpruned answer against everything. They fail
// with Matter's reaches 1% smaller, its slack half a metre inside the
// reach (its metre of margin for rounding is not itself shown needed),
// or its turn speed 5% slower.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"testing"

	"github.com/deconflict/deconflict/internal/detect"
)

// edgeScene is an ownship of a drawn class with its limits and the
// separation of its pair with a drawn intruder class.
type edgeScene struct {
	own Aircraft
	cfg *Config
	kin *Kinematics
	sep *Separation
}

func edgeVel(r *rand.Rand, maxH, maxV float64) detect.Vec3 {
	switch r.IntN(8) {
	case 0:
		return detect.Vec3{}
	case 1:
		return detect.Vec3{Z: (2*r.Float64() - 1) * maxV} // vertical only
	case 2:
		a := r.Float64() * 2 * math.Pi
		return detect.Vec3{X: maxH * math.Sin(a), Y: maxH * math.Cos(a), Z: (2*r.Float64() - 1) * maxV}
	}
	s := r.Float64() * maxH
	a := r.Float64() * 2 * math.Pi
	return detect.Vec3{X: s * math.Sin(a), Y: s * math.Cos(a), Z: (2*r.Float64() - 1) * maxV}
}

// edgeClassVel is edgeVel within the speeds of a manned aircraft or of
// a drone.
func edgeClassVel(r *rand.Rand, manned bool) detect.Vec3 {
	if manned {
		return edgeVel(r, 360, 30)
	}
	return edgeVel(r, 50, 5)
}

var edgeDroneCfg = droneConfigOf()
var edgeMannedCfg = DefaultConfig()

func drawEdgeScene(r *rand.Rand) (edgeScene, bool) {
	var s edgeScene
	ownManned := r.IntN(2) == 0
	intManned := r.IntN(2) == 0
	if ownManned {
		s.cfg, s.kin = &edgeMannedCfg, &matterMannedK
		z := []float64{30, 31, 100, 500, 2500, 15000, 15240}[r.IntN(7)] + (r.Float64()-0.5)*20
		s.own = Aircraft{Pos: detect.Vec3{Z: z}, Vel: edgeClassVel(r, true)}
	} else {
		s.cfg, s.kin = &edgeDroneCfg, &matterDroneK
		z := []float64{30, 150, 90, 0, 200}[r.IntN(5)] + (r.Float64()-0.5)*10
		s.own = Aircraft{Pos: detect.Vec3{Z: z}, Vel: edgeClassVel(r, false)}
	}
	s.sep = matterSepOf(ownManned, intManned)
	return s, intManned
}

// edgeRel draws a relative position near the edge of the detector's
// loss region, for a relative velocity rv.
func edgeRel(r *rand.Rand, sep *Separation, rv detect.Vec3) detect.Vec3 {
	reach, lineM, _ := alerterReach(sep)
	if r.IntN(2) == 0 {
		// The edge of what the bands look at: the painting levels'.
		reach, lineM, _ = bandsReach(sep)
	}
	vh := math.Hypot(rv.X, rv.Y)
	edge := func() float64 { return 1 + (r.Float64()-0.5)*0.02 }
	var h, v float64
	switch r.IntN(3) {
	case 0: // at the edge of the core
		h = lineM * edge()
		v = reach.VerticalM * (2*r.Float64() - 1) * 1.02
	case 1: // at the edge of the reach
		h = (reach.HorizontalM + vh*reach.HorizontalS) * edge()
		v = (reach.VerticalM + math.Abs(rv.Z)*reach.VerticalS) * edge()
		if r.IntN(2) == 0 {
			v = -v
		}
	default:
		h = r.Float64() * (reach.HorizontalM + vh*reach.HorizontalS) * 1.02
		v = (2*r.Float64() - 1) * (reach.VerticalM + math.Abs(rv.Z)*reach.VerticalS) * 1.02
	}
	a := r.Float64() * 2 * math.Pi
	// Often ahead of the relative motion, closing.
	if r.IntN(2) == 0 && vh > 0 {
		a = math.Atan2(-rv.X, -rv.Y) + (r.Float64()-0.5)*1.2
	}
	return detect.Vec3{X: h * math.Sin(a), Y: h * math.Cos(a), Z: v}
}

// anyCandidateConflicts: is x a conflict aircraft now, or does some candidate of
// some dimension conflict with it under a painting level within the
// level's alerting time (memberOf's horizon for an intruder that is not a
// conflict aircraft; red, and a grid of candidates).
func anyCandidateConflicts(own Aircraft, cfg *Config, x Intruder) (bool, string) {
	c := &computation{cfg: cfg, own: newOwnship(own.Pos, own.Vel, cfg.MinAirspeedMps), traffic: []Intruder{x}, unpruned: true}
	c.classify()
	for r := RegionFar; r < RegionRecovery; r++ {
		if c.conflict[r][0] {
			return true, "conflict now"
		}
	}
	sep := x.Sep
	look := sep.Alerter.LookaheadS
	for d := range numDims {
		lo, hi := c.domain(d)
		for li, rg := range sep.Regions {
			if rg == RegionNone || rg >= RegionRecovery || sep.levelFor(rg) != li {
				continue
			}
			lvl := &sep.Alerter.Levels[li]
			t := test{det: lvl.Detector, pos: x.Pos, vel: x.Vel, toS: min(look, lvl.AlertingTimeS)}
			if red := c.own.red(nil, &c.sc, d, lo, hi, &t, cfg.Samples); len(red) > 0 {
				return true, fmt.Sprintf("dim %d red %v", d, red)
			}
			for i := 0; i <= 400; i++ {
				v := lo + (hi-lo)*float64(i)/400
				p, vel := c.own.state(d, v)
				if t.conflicts(p, vel) {
					return true, fmt.Sprintf("dim %d grid %g", d, v)
				}
			}
		}
	}
	return false, ""
}

// matterTally counts the scenes of an edge property: those Matter keeps,
// those some candidate or path meets (the oracle), and the misses (met
// but not kept).
type matterTally struct{ scenes, kept, met, misses int }

// add counts a scene and reports whether it is a miss to be told (the
// first ten).
func (m *matterTally) add(kept, met bool) bool {
	m.scenes++
	if kept {
		m.kept++
	}
	if met {
		m.met++
	}
	if met && !kept {
		m.misses++
		return m.misses <= 10
	}
	return false
}

// notVacuous fails t when the scenes exercised only one side of the
// property: none met by a candidate or a path, or every one kept.
func (m matterTally) notVacuous(t *testing.T) {
	t.Helper()
	if m.met == 0 || m.kept == m.scenes {
		t.Errorf("vacuous: %v", m)
	}
}

// checkReaches fails t when Matter's first test, Reaches, would rule out
// an intruder that Bands or Suggestion keeps (kept): a caller that asks it
// first would then leave out what matters.
func checkReaches(t *testing.T, m *Matter, own, in Aircraft, kept bool) {
	t.Helper()
	r, w := in.Pos.Sub(own.Pos), in.Vel.Sub(own.Vel)
	if kept && !m.Reaches(r.Z, w.Z, r.X*w.Y-r.Y*w.X, w.X*w.X+w.Y*w.Y) {
		t.Fatalf("Reaches rules out an intruder Matter keeps: own %+v intruder %+v", own, in)
	}
}

func (m matterTally) String() string {
	return fmt.Sprintf("%d scenes, Matter keeps %d, met %d, misses %d", m.scenes, m.kept, m.met, m.misses)
}

// TestMatterBandsAtTheEdge: intruders placed at the edge of a conflict
// with a drawn candidate; whenever some candidate conflicts, Matter.Bands
// must say it may matter.
func TestMatterBandsAtTheEdge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, uint64(edgeSeed())))
	var tally matterTally
	equalChecked := 0
	for it := 0; it < edgeScenes(); it++ {
		s, intManned := drawEdgeScene(r)
		c := &computation{cfg: s.cfg, own: newOwnship(s.own.Pos, s.own.Vel, s.cfg.MinAirspeedMps)}
		d := dim(r.IntN(int(numDims)))
		lo, hi := c.domain(d)
		v := lo + (hi-lo)*r.Float64()
		if r.IntN(4) == 0 {
			v = []float64{lo, hi}[r.IntN(2)]
		}
		op, ov := c.own.state(d, v)
		look := s.sep.Alerter.LookaheadS
		_, _, horizon := bandsReach(s.sep)
		tau := r.Float64() * look
		switch r.IntN(4) {
		case 0:
			tau = []float64{0, look, horizon}[r.IntN(3)]
		case 1:
			// About the end of the bands' horizon.
			tau = horizon * (1 + (r.Float64()-0.5)*0.04)
		}
		iv := edgeClassVel(r, intManned)
		rel := edgeRel(r, s.sep, iv.Sub(ov))
		// intruder at 0 such that at tau the relative position is rel.
		pos := detect.Vec3{X: op.X + ov.X*tau + rel.X - iv.X*tau, Y: op.Y + ov.Y*tau + rel.Y - iv.Y*tau, Z: op.Z + ov.Z*tau + rel.Z - iv.Z*tau}
		x := Intruder{Aircraft: Aircraft{Pos: pos, Vel: iv}, Sep: s.sep}
		m := NewMatter(s.own, s.sep, s.cfg, s.kin)
		got := m.Bands(x.Aircraft)
		checkReaches(t, &m, s.own, x.Aircraft, got)
		want, why := anyCandidateConflicts(s.own, s.cfg, x)
		if tally.add(got, want) {
			t.Errorf("Matter.Bands false but %s: own %+v cfg gs [%g,%g] sep %p intruder %+v (dim %d v %g tau %g)", why, s.own, s.cfg.MinGsMps, s.cfg.MaxGsMps, s.sep, x.Aircraft, d, v, tau)
		}
		if !got && r.IntN(20) == 0 {
			// End to end: bands with and without it.
			a := compute(s.own, []Intruder{x}, s.cfg, true)
			b := compute(s.own, nil, s.cfg, true)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("bands differ with an intruder Matter leaves out: %+v", x)
			}
			equalChecked++
		}
	}
	t.Logf("%v, end to end %d", tally, equalChecked)
	tally.notVacuous(t)
	if equalChecked == 0 {
		t.Errorf("no intruder left out was checked end to end")
	}
}

// TestMatterSuggestionAtTheEdge: intruders at the edge of a conflict with
// a drawn manoeuvre's path; whenever some path (turn right 0..90, climb or
// descend) conflicts, Matter.Suggestion must say it may matter.
func TestMatterSuggestionAtTheEdge(t *testing.T) {
	r := rand.New(rand.NewPCG(2, uint64(edgeSeed())))
	var tally matterTally
	for it := 0; it < edgeScenes()/4; it++ {
		s, intManned := drawEdgeScene(r)
		p := &Party{Aircraft: s.own}
		sg := &suggester{a: p, b: &Party{}, ka: s.kin, kb: s.kin}
		// every path
		var paths []path
		for turn := 0.0; turn <= s.kin.MaxTurnDeg; turn += s.kin.TurnStepDeg {
			m := Manoeuvre{Kind: KindTurn, TurnDeg: turn}
			if turn == 0 {
				m.Kind = KindMaintain
			}
			paths = append(paths, sg.flown(p, m))
		}
		for _, sign := range []float64{1, -1} {
			for climb := s.kin.AltStepM; climb <= s.kin.MaxClimbM; climb += s.kin.AltStepM {
				alt := p.Pos.Z + sign*climb
				if alt < s.kin.MinAltM || alt > s.kin.MaxAltM {
					continue
				}
				kind := KindClimb
				if sign < 0 {
					kind = KindDescend
				}
				paths = append(paths, sg.flown(p, Manoeuvre{Kind: kind, ClimbM: sign * climb, AltM: alt}))
			}
		}
		pick := paths[r.IntN(len(paths))]
		look := s.sep.Alerter.LookaheadS
		tau := r.Float64() * look
		op, ov := pick.state(tau)
		iv := edgeClassVel(r, intManned)
		rel := edgeRel(r, s.sep, iv.Sub(ov))
		pos := detect.Vec3{X: op.X + rel.X - iv.X*tau, Y: op.Y + rel.Y - iv.Y*tau, Z: op.Z + rel.Z - iv.Z*tau}
		x := Intruder{Aircraft: Aircraft{Pos: pos, Vel: iv}, Sep: s.sep}
		m := NewMatter(s.own, s.sep, s.cfg, s.kin)
		got := m.Suggestion(x.Aircraft)
		checkReaches(t, &m, s.own, x.Aircraft, got)
		dets := pairDetectors(nil, s.sep)
		want := false
		which := -1
		for i, pa := range paths {
			if conflictsUnder(pa, straight(x.Aircraft), look, dets) {
				want, which = true, i
				break
			}
		}
		if tally.add(got, want) {
			t.Errorf("Matter.Suggestion false but path %d conflicts: own %+v intruder %+v tau %g", which, s.own, x.Aircraft, tau)
		}
	}
	t.Logf("%v", tally)
	tally.notVacuous(t)
}

// edgeSeed and edgeScenes: EDGE_SEED and EDGE_SCENES run the edge
// properties longer or elsewhere (the defaults run in make test).
func edgeSeed() int64 {
	if s, err := strconv.ParseInt(os.Getenv("EDGE_SEED"), 10, 64); err == nil {
		return s
	}
	return 7
}

func edgeScenes() int {
	if n, err := strconv.Atoi(os.Getenv("EDGE_SCENES")); err == nil && n > 0 {
		return n
	}
	return 100000
}

// TestComputePrunesAtTheEdge: Compute (pruned) against compute unpruned, on
// scenes of several intruders each placed at the edge of a conflict with
// a drawn candidate (often saturating, so recovery runs).
func TestComputePrunesAtTheEdge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, uint64(edgeSeed())))
	var rec, diff int
	for it := 0; it < edgeScenes()/20; it++ {
		s, _ := drawEdgeScene(r)
		c := &computation{cfg: s.cfg, own: newOwnship(s.own.Pos, s.own.Vel, s.cfg.MinAirspeedMps)}
		var traffic []Intruder
		n := 1 + r.IntN(8)
		for range n {
			intManned := r.IntN(2) == 0
			sep := matterSepOf(s.cfg == &edgeMannedCfg, intManned)
			d := dim(r.IntN(int(numDims)))
			lo, hi := c.domain(d)
			v := lo + (hi-lo)*r.Float64()
			op, ov := c.own.state(d, v)
			look := sep.Alerter.LookaheadS
			tau := r.Float64() * look
			iv := edgeClassVel(r, intManned)
			rel := edgeRel(r, sep, iv.Sub(ov))
			if r.IntN(3) == 0 {
				rel = detect.Vec3{X: rel.X * r.Float64(), Y: rel.Y * r.Float64(), Z: rel.Z * r.Float64()}
			}
			pos := detect.Vec3{X: op.X + ov.X*tau + rel.X - iv.X*tau, Y: op.Y + ov.Y*tau + rel.Y - iv.Y*tau, Z: op.Z + ov.Z*tau + rel.Z - iv.Z*tau}
			traffic = append(traffic, Intruder{Aircraft: Aircraft{Pos: pos, Vel: iv}, Sep: sep})
		}
		got := compute(s.own, traffic, s.cfg, false)
		want := compute(s.own, traffic, s.cfg, true)
		if got.RecoveryTimeS > 0 {
			rec++
		}
		if !reflect.DeepEqual(got, want) {
			diff++
			if diff <= 5 {
				t.Errorf("pruned\n%+v\nunpruned\n%+v\nown %+v traffic %+v", got, want, s.own, traffic)
			}
		}
	}
	t.Logf("%d scenes in recovery, %d differ", rec, diff)
	if rec == 0 {
		t.Errorf("no scene went to recovery: its prunes were not tested")
	}
}

// TestSuggestWithMatterAtTheEdge: a pair in conflict, each with others placed at
// the edge of a conflict with one of its manoeuvres' paths; the pruned
// Suggest against the others Matter keeps is the unpruned one against all.
func TestSuggestWithMatterAtTheEdge(t *testing.T) {
	r := rand.New(rand.NewPCG(4, uint64(edgeSeed())))
	var diff, found, left int
	for it := 0; it < edgeScenes()/200; it++ {
		var parties [2]Party
		var kins [2]*Kinematics
		var cfgs [2]*Config
		var manned [2]bool
		for n := range 2 {
			s, _ := drawEdgeScene(r)
			parties[n].Aircraft = s.own
			kins[n], cfgs[n] = s.kin, s.cfg
			manned[n] = s.cfg == &edgeMannedCfg
		}
		sep := matterSepOf(manned[0], manned[1])
		// b meets a at tc, a little off.
		tc := 5 + r.Float64()*0.8*sep.Alerter.LookaheadS
		a, b := parties[0].Aircraft, parties[1].Aircraft
		parties[1].Pos = detect.Vec3{X: a.Pos.X + (a.Vel.X-b.Vel.X)*tc + (r.Float64()-0.5)*80, Y: a.Pos.Y + (a.Vel.Y-b.Vel.Y)*tc + (r.Float64()-0.5)*80, Z: a.Pos.Z + (a.Vel.Z-b.Vel.Z)*tc + (r.Float64()-0.5)*20}
		for n := range 2 {
			p := &parties[n]
			sg := &suggester{a: p, b: &Party{}, ka: kins[n], kb: kins[n]}
			for range 1 + r.IntN(12) {
				var m Manoeuvre
				if r.IntN(2) == 0 {
					m = Manoeuvre{Kind: KindTurn, TurnDeg: float64(r.IntN(int(kins[n].MaxTurnDeg) + 1))}
				} else {
					sign := []float64{1, -1}[r.IntN(2)]
					climb := float64(1+r.IntN(int(kins[n].MaxClimbM/kins[n].AltStepM))) * kins[n].AltStepM
					m = Manoeuvre{Kind: KindClimb, ClimbM: sign * climb, AltM: p.Pos.Z + sign*climb}
				}
				path := sg.flown(p, m)
				intManned := r.IntN(2) == 0
				osep := matterSepOf(manned[n], intManned)
				look := osep.Alerter.LookaheadS
				tau := r.Float64() * look
				op, ov := path.state(tau)
				iv := edgeClassVel(r, intManned)
				rel := edgeRel(r, osep, iv.Sub(ov))
				pos := detect.Vec3{X: op.X + rel.X - iv.X*tau, Y: op.Y + rel.Y - iv.Y*tau, Z: op.Z + rel.Z - iv.Z*tau}
				p.Others = append(p.Others, Intruder{Aircraft: Aircraft{Pos: pos, Vel: iv}, Sep: osep})
			}
		}
		want, wantOK := suggest(&parties[0], &parties[1], sep, kins[0], kins[1], true)
		var filtered [2]Party
		for n := range 2 {
			filtered[n].Aircraft = parties[n].Aircraft
			for _, o := range parties[n].Others {
				m := NewMatter(parties[n].Aircraft, o.Sep, cfgs[n], kins[n])
				if m.Suggestion(o.Aircraft) {
					filtered[n].Others = append(filtered[n].Others, o)
				} else {
					left++
				}
			}
		}
		got, gotOK := Suggest(&filtered[0], &filtered[1], sep, kins[0], kins[1])
		if wantOK {
			found++
		}
		if got != want || gotOK != wantOK {
			diff++
			if diff <= 5 {
				t.Errorf("filtered+pruned %+v %v, unpruned all %+v %v", got, gotOK, want, wantOK)
			}
		}
	}
	t.Logf("%d suggestions found, %d others left out, %d differ", found, left, diff)
	if found == 0 || left == 0 {
		t.Errorf("%d suggestions found, %d others left out: nothing compared", found, left)
	}
}
