package resolve

import (
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
)

// matterScene is a pair in conflict in a city's traffic, drawn around the
// first aircraft: each aircraft with its configuration, kinematics and
// the crowd it resolves against (the other aircraft of the pair first).
type matterScene struct {
	own  [2]Aircraft
	cfg  [2]*Config
	kin  [2]*Kinematics
	sep  *Separation // of the pair
	seen [2][]Intruder
}

// The separations and limits of the default rules' classes.
var (
	matterManned  = CylinderSeparation(detect.Cylinder{HorizontalM: geo.NMToM(5), VerticalM: geo.FeetToM(1000)}, 300, 300, 120, 60)
	matterDrones  = CylinderSeparation(detect.Cylinder{HorizontalM: 50, VerticalM: 15}, 60, 60, 30, 15)
	matterDO365   = DO365()
	matterMannedK = DefaultKinematics()
	matterDroneK  = droneKinematics()
)

// droneKinematics is how the default rules' drones fly suggestions.
func droneKinematics() Kinematics {
	k := DefaultKinematics()
	k.TurnRateDegPerS, k.VerticalRateMps, k.AltStepM, k.MaxClimbM, k.MinAltM, k.MaxAltM = 15, 2.5, 5, 60, 30, 150
	return k
}

// matterSepOf is the separation of a pair by whether each is manned:
// the manned cylinder, DO-365 between a manned aircraft and a drone, the
// drones' cylinder.
func matterSepOf(mannedA, mannedB bool) *Separation {
	switch {
	case mannedA && mannedB:
		return &matterManned
	case mannedA || mannedB:
		return &matterDO365
	}
	return &matterDrones
}

// drawMatterScene draws a metro scene: arrivals, departures and
// helicopters among delivery drones at 30-150 m, the pair a conflict of
// two manned aircraft, of a manned aircraft and a drone, or of two
// drones; the crowd spread over tens of kilometres around a manned pair
// (a few around drones), some of it close.
func drawMatterScene(t *rapid.T) matterScene {
	mannedCfg, droneCfg := DefaultConfig(), droneConfigOf()
	vel := func(name string, lo, hi, vz float64) detect.Vec3 {
		speed := rapid.Float64Range(lo, hi).Draw(t, name+"_speed")
		track := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
		return detect.Vec3{X: speed * math.Sin(track), Y: speed * math.Cos(track), Z: rapid.Float64Range(-vz, vz).Draw(t, name+"_vz")}
	}
	manned := func(name string, x, y float64) Aircraft {
		return Aircraft{Pos: detect.Vec3{X: x, Y: y, Z: rapid.Float64Range(100, 2500).Draw(t, name+"_z")}, Vel: vel(name, 30, 150, 8)}
	}
	drone := func(name string, x, y float64) Aircraft {
		return Aircraft{Pos: detect.Vec3{X: x, Y: y, Z: rapid.Float64Range(30, 150).Draw(t, name+"_z")}, Vel: vel(name, 5, 50, 3)}
	}
	var sc matterScene
	kind := rapid.IntRange(0, 2).Draw(t, "pair")
	mannedPair := [2]bool{kind < 2, kind == 0}
	for n, m := range mannedPair {
		sc.cfg[n], sc.kin[n] = &droneCfg, &matterDroneK
		if m {
			sc.cfg[n], sc.kin[n] = &mannedCfg, &matterMannedK
		}
	}
	sc.sep = matterSepOf(mannedPair[0], mannedPair[1])
	if mannedPair[0] {
		sc.own[0] = manned("a", 0, 0)
	} else {
		sc.own[0] = drone("a", 0, 0)
	}
	// The second aircraft meets the first within the lookahead, a little
	// off.
	tc := rapid.Float64Range(5, 0.8*sc.sep.Alerter.LookaheadS).Draw(t, "t_meet")
	a := sc.own[0]
	b := drone("b", 0, 0)
	if mannedPair[1] {
		b = manned("b", 0, 0)
	}
	off := detect.Vec3{X: rapid.Float64Range(-40, 40).Draw(t, "off_x"), Y: rapid.Float64Range(-40, 40).Draw(t, "off_y"), Z: rapid.Float64Range(-10, 10).Draw(t, "off_z")}
	b.Pos = detect.Vec3{X: a.Pos.X + (a.Vel.X-b.Vel.X)*tc + off.X, Y: a.Pos.Y + (a.Vel.Y-b.Vel.Y)*tc + off.Y, Z: a.Pos.Z + (a.Vel.Z-b.Vel.Z)*tc + off.Z}
	sc.own[1] = b
	spread := 3000.0
	if mannedPair[0] || mannedPair[1] {
		spread = 30000
	}
	// Close ones within a tenth of the spread.
	var crowd []Aircraft
	var isManned []bool
	for i := range rapid.IntRange(0, 60).Draw(t, "crowd") {
		s := spread
		if i%3 == 0 {
			s /= 10
		}
		x, y := rapid.Float64Range(-s, s).Draw(t, "x"), rapid.Float64Range(-s, s).Draw(t, "y")
		if rapid.IntRange(0, 5).Draw(t, "crowd_manned") == 0 {
			crowd, isManned = append(crowd, manned("m", x, y)), append(isManned, true)
		} else {
			crowd, isManned = append(crowd, drone("d", x, y)), append(isManned, false)
		}
	}
	for n := range 2 {
		sc.seen[n] = append(sc.seen[n], Intruder{Aircraft: sc.own[1-n], Sep: sc.sep})
		for i, o := range crowd {
			sc.seen[n] = append(sc.seen[n], Intruder{Aircraft: o, Sep: matterSepOf(mannedPair[n], isManned[i])})
		}
	}
	return sc
}

// droneConfigOf is the bands' configuration of the default rules' drones.
func droneConfigOf() Config {
	c := DefaultConfig()
	c.MinGsMps, c.MaxGsMps, c.MinAirspeedMps = 5, 50, 5
	c.MinVsMps, c.MaxVsMps = -5, 5
	c.MinAltM, c.MaxAltM = 30, 150
	c.Steps[3] = 5
	return c
}

// matterFilter keeps the intruders the Matter of own against each one's
// separation says may matter (test: Bands or Suggestion), each Matter
// first passed through tighten.
func matterFilter(own Aircraft, traffic []Intruder, cfg *Config, k *Kinematics, test func(*Matter, Aircraft) bool, tighten func(*Matter)) []Intruder {
	var out []Intruder
	for _, in := range traffic {
		m := NewMatter(own, in.Sep, cfg, k)
		tighten(&m)
		if test(&m, in.Aircraft) {
			out = append(out, in)
		}
	}
	return out
}

// resolveScene is the bands of both aircraft of the scene and their
// suggestion, each computed against the traffic filter keeps of what it
// sees (the suggestion's others without the pair's other aircraft).
func resolveScene(sc *matterScene, filter func(n int, traffic []Intruder, bands bool) []Intruder) ([2]Bands, Suggestion, bool) {
	var bands [2]Bands
	var parties [2]Party
	for n := range 2 {
		bands[n] = Compute(sc.own[n], filter(n, sc.seen[n], true), sc.cfg[n])
		parties[n] = Party{Aircraft: sc.own[n], Others: filter(n, sc.seen[n][1:], false)}
	}
	s, ok := Suggest(&parties[0], &parties[1], sc.sep, sc.kin[0], sc.kin[1])
	return bands, s, ok
}

// TestMatterIsExact: on pairs in conflict in a city's traffic (manned
// aircraft among drones), the bands of each aircraft and the pair's
// suggestion computed against only the traffic Matter says may matter
// are those computed against all of it. The check can fail: with the
// reaches Matter works with shrunk by a third, or the bands' horizon
// (the longest alerting time of a painting level), some scene's
// resolution changes.
func TestMatterIsExact(t *testing.T) {
	var left, kept, tightCaught, shortCaught int
	defer func() {
		t.Logf("%d intruders left out, %d kept; a filter too tight changed %d scenes, the bands' horizon too short %d", left, kept, tightCaught, shortCaught)
		if left == 0 || kept == 0 {
			t.Errorf("%d intruders left out and %d kept: nothing tested", left, kept)
		}
		if !t.Failed() && (tightCaught == 0 || shortCaught == 0) {
			t.Errorf("a filter too tight changed %d scenes, a horizon too short %d: the test cannot fail", tightCaught, shortCaught)
		}
	}()
	// A round of rapid's checks (100 by default) had no scene a horizon
	// too short changes in about one run in thirty: rounds, each of a
	// fresh seed, are checked until one has (10 rounds all without:
	// about 1e-15), so that the counts above tell a check that cannot
	// fail, not bad luck.
	for round := 0; round < 10 && !t.Failed() && (tightCaught == 0 || shortCaught == 0); round++ {
		rapid.Check(t, propMatterIsExact(&left, &kept, &tightCaught, &shortCaught))
	}
}

// propMatterIsExact is the property of TestMatterIsExact, counting the
// intruders left out and kept, and the scenes a filter too tight or a
// horizon too short changed.
func propMatterIsExact(left, kept, tightCaught, shortCaught *int) func(*rapid.T) {
	return func(t *rapid.T) {
		sc := drawMatterScene(t)
		wantBands, wantSugg, wantOK := resolveScene(&sc, func(_ int, traffic []Intruder, _ bool) []Intruder { return traffic })
		filtered := func(tighten func(*Matter)) func(n int, traffic []Intruder, bands bool) []Intruder {
			return func(n int, traffic []Intruder, bands bool) []Intruder {
				test := (*Matter).Suggestion
				if bands {
					test = (*Matter).Bands
				}
				return matterFilter(sc.own[n], traffic, sc.cfg[n], sc.kin[n], test, tighten)
			}
		}
		// Reaches, the first test of both, rules out nothing either keeps.
		for n := range 2 {
			for _, in := range sc.seen[n] {
				m := NewMatter(sc.own[n], in.Sep, sc.cfg[n], sc.kin[n])
				r, w := in.Pos.Sub(sc.own[n].Pos), in.Vel.Sub(sc.own[n].Vel)
				if !m.Reaches(r.Z, w.Z, r.X*w.Y-r.Y*w.X, w.X*w.X+w.Y*w.Y) && (m.Bands(in.Aircraft) || m.Suggestion(in.Aircraft)) {
					t.Fatalf("aircraft %d: %+v out of reach, kept by Bands %v or Suggestion %v", n, in.Aircraft, m.Bands(in.Aircraft), m.Suggestion(in.Aircraft))
				}
			}
		}
		exact := filtered(func(*Matter) {})
		for n := range 2 {
			k := len(exact(n, sc.seen[n], true))
			*kept, *left = *kept+k, *left+len(sc.seen[n])-k
		}
		gotBands, gotSugg, gotOK := resolveScene(&sc, exact)
		for n := range 2 {
			if !reflect.DeepEqual(gotBands[n], wantBands[n]) {
				t.Fatalf("aircraft %d: bands against the traffic that matters\n%+v\nagainst all of it\n%+v", n, gotBands[n], wantBands[n])
			}
		}
		if gotSugg != wantSugg || gotOK != wantOK {
			t.Fatalf("suggestion against the traffic that matters %+v %v, against all of it %+v %v", gotSugg, gotOK, wantSugg, wantOK)
		}
		tight := filtered(func(m *Matter) {
			m.reach.HorizontalM *= 2.0 / 3
			m.reach.VerticalM *= 2.0 / 3
			m.lineM *= 2.0 / 3
			m.bandsReach.HorizontalM *= 2.0 / 3
			m.bandsReach.VerticalM *= 2.0 / 3
			m.bandsLineM *= 2.0 / 3
		})
		if b, s, ok := resolveScene(&sc, tight); !reflect.DeepEqual(b, wantBands) || s != wantSugg || ok != wantOK {
			*tightCaught++
		}
		short := filtered(func(m *Matter) { m.bandsLookS *= 2.0 / 3 })
		if b, _, _ := resolveScene(&sc, short); !reflect.DeepEqual(b, wantBands) {
			*shortCaught++
		}
	}
}
