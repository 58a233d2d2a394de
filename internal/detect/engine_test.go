package detect

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// offset places a point eastM/northM from center on its tangent plane, at
// altitude altM.
func offset(center geo.LLA, eastM, northM, altM float64) geo.LLA {
	p := geo.NewFrame(center).FromENU(geo.ENU{EastM: eastM, NorthM: northM})
	p.AltM = altM
	return p
}

// picture draws a random traffic layout: where it is (anywhere, near a pole,
// across the antimeridian) and how spread out (clustered so that pairs
// conflict, or uniform over a wide area).
type picture struct {
	center  geo.LLA
	spreadM float64
	altLoM  float64
	altHiM  float64
}

func drawPicture(t *rapid.T) picture {
	var c geo.LLA
	switch rapid.IntRange(0, 3).Draw(t, "where") {
	case 0:
		c = geo.LLA{LatDeg: rapid.Float64Range(-80, 80).Draw(t, "lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon")}
	case 1:
		c = geo.LLA{LatDeg: rapid.SampledFrom([]float64{-1, 1}).Draw(t, "pole") * rapid.Float64Range(88, 90).Draw(t, "lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon")}
	case 2:
		c = geo.LLA{LatDeg: rapid.Float64Range(-60, 60).Draw(t, "lat"), LonDeg: rapid.SampledFrom([]float64{-179.95, 179.95, 180}).Draw(t, "lon")}
	case 3:
		c = geo.LLA{LatDeg: rapid.Float64Range(-30, 30).Draw(t, "lat"), LonDeg: rapid.Float64Range(-30, 30).Draw(t, "lon")}
	}
	p := picture{center: c}
	switch rapid.IntRange(0, 2).Draw(t, "scale") {
	case 0:
		p.spreadM = rapid.Float64Range(1_000, 30_000).Draw(t, "spread")
		p.altLoM = rapid.Float64Range(0, 12_000).Draw(t, "alt")
		p.altHiM = p.altLoM + rapid.Float64Range(0, 1_500).Draw(t, "band")
	case 1:
		p.spreadM = rapid.Float64Range(50_000, 2_000_000).Draw(t, "spread")
		p.altLoM, p.altHiM = 0, 20_000
	case 2:
		// A city: drones tens of meters apart, low.
		p.spreadM = rapid.Float64Range(30, 3_000).Draw(t, "spread")
		p.altLoM, p.altHiM = 0, rapid.Float64Range(0, 300).Draw(t, "ceiling")
	}
	return p
}

// drawReport draws a report of the class: drones up to 50 m/s and 5 m/s
// vertically, manned aircraft up to Mach 2 with the vertical rates of a
// fighter.
func (p picture) drawReport(t *rapid.T, party, id, class string, at time.Time) track.Report {
	e := rapid.Float64Range(-p.spreadM, p.spreadM).Draw(t, "east")
	n := rapid.Float64Range(-p.spreadM, p.spreadM).Draw(t, "north")
	alt := rapid.Float64Range(p.altLoM, p.altHiM).Draw(t, "alt")
	maxSpeed, maxVS := 700.0, 60.0
	if class == rules.ClassUAS {
		maxSpeed, maxVS = 50, 5
	}
	speed := rapid.Float64Range(0, maxSpeed).Draw(t, "speed")
	hdg := rapid.Float64Range(0, 2*math.Pi).Draw(t, "heading")
	return track.Report{
		Party: party, Aircraft: id, Callsign: "C" + id, Class: class,
		Pos:        offset(p.center, e, n, alt),
		VelEastMps: speed * math.Sin(hdg), VelNorthMps: speed * math.Cos(hdg),
		VelUpMps: rapid.Float64Range(-maxVS, maxVS).Draw(t, "vs"),
		Time:     at,
	}
}

// drawClass draws the class of an aircraft: mostly drones in a city
// picture, a mix elsewhere; "" (manned by default) now and then.
func drawClass(t *rapid.T) string {
	return rapid.SampledFrom([]string{rules.ClassManned, rules.ClassUAS, rules.ClassUAS, ""}).Draw(t, "class")
}

func checkSame(t *rapid.T, step string, e *Engine) {
	inc := e.Conflicts()
	brute := BruteForce(e.States(), e.Params())
	if same, diff := SameConflicts(inc, brute); !same {
		t.Fatalf("%s: incremental (%d) vs brute force (%d): %s", step, len(inc), len(brute), diff)
	}
	if same, diff := SameConflicts(e.FullCycle(), brute); !same {
		t.Fatalf("%s: full cycle vs brute force (%d): %s", step, len(brute), diff)
	}
	// The brute force prunes as the engine does (mayConflict): without
	// the prune, the same set, so that a prune too tight for some pair
	// cannot hide behind an oracle that shares it.
	if same, diff := SameConflicts(bruteForceUnpruned(e.States(), e.Params()), brute); !same {
		t.Fatalf("%s: every pair judged unpruned vs brute force (%d): %s", step, len(brute), diff)
	}
	// Over a result that holds other conflicts, more than the set: none
	// of them is left in it.
	junk := Conflict{A: track.State{Report: track.Report{Party: "x", Aircraft: "1"}}, B: track.State{Report: track.Report{Party: "y", Aircraft: "1"}}}
	old := slices.Repeat([]Conflict{junk}, len(brute)+3)
	if same, diff := SameConflicts(e.FullCycleInto(old[:1]), brute); !same {
		t.Fatalf("%s: full cycle over an old result vs brute force (%d): %s", step, len(brute), diff)
	}
}

// TestIncrementalMatchesBruteForce is the exactness property: after every
// report and every expiry, the event-driven set, the full cycle and the
// brute force hold the same pairs with the same numbers, with the grids'
// cells mixed or split by party, over mixed
// classes (manned and drones, now and then changing class) and random
// separation tables, where each pair is judged by its classes' entry.
func TestIncrementalMatchesBruteForce(t *testing.T) {
	conflicts := map[string]int{}
	defer func(at int) { groupAt = at }(groupAt)
	rapid.Check(t, func(t *rapid.T) {
		// Cells split by party at once, after a few, or (as in service)
		// past more aircraft than a run draws.
		groupAt = rapid.SampledFrom([]int{0, 1, 3, 64}).Draw(t, "group at")
		r := rules.Default()
		r.SamePartyAlerts = rapid.Bool().Draw(t, "same_party")
		random := rapid.Bool().Draw(t, "random table")
		if random {
			r = drawTable(t)
		}
		var g Grid
		// An explicit grid sizes every entry alike: cells sized for jets
		// with drones, or the reverse, are correct but slow, so the
		// random tables keep the grids sized per entry.
		if !random && rapid.Bool().Draw(t, "explicit grid") {
			g = Grid{
				CellM:  rapid.SampledFrom([]float64{10_000, 40_000, DefaultCellM, 1_000_000}).Draw(t, "cell"),
				SliceS: rapid.SampledFrom([]float64{7, DefaultSliceS, 400}).Draw(t, "slice"),
				ShellM: rapid.SampledFrom([]float64{0, -1, 50, 1_000}).Draw(t, "shell"),
			}
		}
		e := NewEngine(r, g, nil)
		pic := drawPicture(t)
		n := rapid.IntRange(2, 24).Draw(t, "aircraft")
		parties := []string{"blue", "red", "green"}
		classes := make([]string, n)
		for i := range classes {
			classes[i] = drawClass(t)
		}
		now := t0
		last := make([]time.Time, n)
		defer func() {
			for _, c := range e.Conflicts() {
				conflicts[c.Sep.Rule.Classes[0]+"-"+c.Sep.Rule.Classes[1]]++
			}
		}()
		for i := range n {
			rep := pic.drawReport(t, parties[i%len(parties)], fmt.Sprint(i), classes[i], now)
			if _, err := e.Ingest(nil, []track.Report{rep}, now); err != nil {
				t.Fatal(err)
			}
			last[i] = now
		}
		checkSame(t, "initial", e)
		steps := rapid.IntRange(1, 40).Draw(t, "steps")
		for s := range steps {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op == 0:
				now = now.Add(time.Duration(rapid.IntRange(0, 40).Draw(t, "wait")) * time.Second)
				e.Expire(nil, now)
			default:
				i := rapid.IntRange(0, n-1).Draw(t, "who")
				// Mostly newer, sometimes a duplicate or an older report.
				at := last[i].Add(time.Duration(rapid.IntRange(-3, 8).Draw(t, "dt")) * time.Second)
				if at.After(now) {
					now = at
				}
				if rapid.IntRange(0, 19).Draw(t, "reclass") == 0 {
					classes[i] = drawClass(t)
				}
				rep := pic.drawReport(t, parties[i%len(parties)], fmt.Sprint(i), classes[i], at)
				if _, err := e.Ingest(nil, []track.Report{rep}, now); err != nil {
					t.Fatal(err)
				}
				if at.After(last[i]) {
					last[i] = at
				}
			}
			checkSame(t, fmt.Sprintf("step %d", s), e)
		}
	})
	// Every entry of the table had pairs in conflict at some step.
	for _, k := range []string{"manned-manned", "manned-uas", "uas-uas"} {
		if conflicts[k] == 0 {
			t.Errorf("no %s conflicts drawn: the property was not exercised for them (%v)", k, conflicts)
		}
	}
	t.Logf("conflicts at the end of the runs, by entry: %v", conflicts)
}

// drawTable draws rules with a random separation table: for each pair of
// the classes manned and uas, a cylinder or a DO-365 well clear with
// random thresholds (levels with their own detectors too), lookahead and
// levels, so that the prune is checked for entries of every shape.
func drawTable(t *rapid.T) rules.Rules {
	r := rules.Default()
	r.SamePartyAlerts = rapid.Bool().Draw(t, "same_party")
	r.StaleAfterS = float64(rapid.IntRange(1, 60).Draw(t, "stale"))
	for i := range r.Separation {
		s := &r.Separation[i]
		if rapid.IntRange(0, 2).Draw(t, "keep") == 0 {
			continue
		}
		s.LookaheadS = float64(rapid.IntRange(1, 400).Draw(t, "lookahead"))
		det := func() rules.Detector {
			if s.Detector.Kind == rules.DetectorCylinder {
				return rules.Cylinder(rapid.Float64Range(1, 20_000).Draw(t, "D"), rapid.Float64Range(1, 1_000).Draw(t, "H"))
			}
			// TTHR and TCOA are zero or at least a second, as the rules
			// take them.
			zeroOrFrom1 := rapid.OneOf(rapid.Just(0.0), rapid.Float64Range(1, 120))
			return rules.DO365WCV(rapid.Float64Range(1, 5_000).Draw(t, "DTHR"), rapid.Float64Range(1, 500).Draw(t, "ZTHR"),
				zeroOrFrom1.Draw(t, "TTHR"), zeroOrFrom1.Draw(t, "TCOA"))
		}
		if rapid.Bool().Draw(t, "switch kind") {
			if s.Detector.Kind == rules.DetectorCylinder {
				s.Detector.Kind = rules.DetectorDO365WCV
			} else {
				s.Detector.Kind = rules.DetectorCylinder
			}
		}
		s.Detector = det()
		s.Levels = nil
		for k := range rapid.IntRange(1, 3).Draw(t, "levels") {
			l := rules.SeparationLevel{Name: fmt.Sprint("l", k), MaxTimeToLoSS: max(1, s.LookaheadS/float64(k+1))}
			if rapid.Bool().Draw(t, "own detector") {
				d := det()
				l.Detector = &d
			}
			s.Levels = append(s.Levels, l)
		}
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("drawn rules are not valid: %v", err)
	}
	return r
}

// gradeUnpruned is evaluate without the sphere test: what the pair math
// says with nothing pruned.
func gradeUnpruned(a, b *track.State, e *Entry) (Conflict, bool) {
	if a.Key().Compare(b.Key()) > 0 {
		a, b = b, a
	}
	dt := b.Time.Sub(a.Time).Seconds()
	ref := b.Time
	if dt < 0 {
		ref = a.Time
	}
	pa, pb := a.ECEF, b.ECEF
	if dt >= 0 {
		pa = a.ECEFAt(dt)
	} else {
		pb = b.ECEFAt(-dt)
	}
	f := geo.NewFrame(geo.FromECEF(geo.ECEF{XM: (pa[0] + pb[0]) / 2, YM: (pa[1] + pb[1]) / 2, ZM: (pa[2] + pb[2]) / 2}))
	op, ov := inFrame(f, a, ref)
	ip, iv := inFrame(f, b, ref)
	level, _, loss := e.Grade(ip.Sub(op), iv.Sub(ov), 0)
	return Conflict{PairResult: PairResult{Loss: loss}, Level: level}, level > 0
}

// bruteForceUnpruned is BruteForce with no prune: every pair the rules
// let be paired (parties, classes, reports within the stale time) is
// judged by the pair math, whatever mayConflict says of it.
func bruteForceUnpruned(states []track.State, p Params) []Conflict {
	var out []Conflict
	for i := range states {
		for j := i + 1; j < len(states); j++ {
			a, b := &states[i], &states[j]
			e := p.Table.ForNames(a.Class, b.Class)
			if e == nil || (!p.SameParty && a.Party == b.Party) || a.Key() == b.Key() {
				continue
			}
			if a.Key().Compare(b.Key()) > 0 {
				a, b = b, a
			}
			dt := b.Time.Sub(a.Time).Seconds()
			if math.Abs(dt) > p.MaxReportGapS {
				continue
			}
			pa, pb := a.ECEF, b.ECEF
			if dt >= 0 {
				pa = at(&a.ECEF, &a.VelECEF, dt)
			} else {
				pb = at(&b.ECEF, &b.VelECEF, -dt)
			}
			level, withMargin, res := judge(a, b, pa, pb, e, &p)
			if level == 0 {
				continue
			}
			out = append(out, Conflict{A: *a, B: *b, Time: laterReport(a, b), Sep: e, Level: level, LevelWithMargin: withMargin, PairResult: res})
		}
	}
	SortConflicts(out)
	return out
}

// pruneKeepsConflict returns the conflict the pair math, with nothing
// pruned, finds between a (reported first) and b under ent, if any, and
// fails the test when the prune (mayConflict) drops that pair.
func pruneKeepsConflict(t *rapid.T, a, b *track.State, ent *Entry) (Conflict, bool) {
	c, ok := gradeUnpruned(a, b, ent)
	if !ok {
		return c, false
	}
	dt := b.Time.Sub(a.Time).Seconds()
	if !mayConflict(a.ECEFAt(dt), a.VelECEF, b.ECEF, b.VelECEF, ent) {
		t.Fatalf("the prune (mayConflict) dropped a conflict: %+v", c.PairResult)
	}
	return c, true
}

// TestPruneIsConservative checks the two prunes against the pair math with
// nothing pruned, for every entry of random tables: whenever the full
// evaluation finds a conflict, the sphere test passes and the two index
// boxes of the entry's grid overlap. The pairs are drawn to pass close
// (often only within the modified-tau reach of fast closing aircraft), so
// that conflicts are common.
func TestPruneIsConservative(t *testing.T) {
	var found int
	rapid.Check(t, func(t *rapid.T) {
		r := drawTable(t)
		p := ParamsFrom(r)
		// Several pairs per table: the table is the costly draw.
		for range 20 {
			found += checkPrune(t, r, p)
		}
	})
	if found < 200 {
		t.Fatalf("only %d conflicts drawn: the property was hardly exercised", found)
	}
	t.Logf("%d conflicts checked", found)
}

// checkPrune draws one pair of one entry of p near a loss of separation
// and, if the pair math finds one, checks that the prunes keep it; it
// returns 1 when there was a conflict to check.
func checkPrune(t *rapid.T, r rules.Rules, p Params) int {
	ent := p.Table.Entries()[rapid.IntRange(0, len(p.Table.Entries())-1).Draw(t, "entry")]
	center := geo.LLA{LatDeg: rapid.Float64Range(-89, 89).Draw(t, "lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon")}
	alt := rapid.Float64Range(0, 12_000).Draw(t, "alt")
	// b starts near where a will be at a random time of the
	// lookahead, flying at it; both at any speed up to Mach 2.
	speed := func(name string) float64 { return rapid.Float64Range(0, 700).Draw(t, name) }
	hdg := rapid.Float64Range(0, 2*math.Pi).Draw(t, "heading")
	sa := speed("speed a")
	a := track.Report{Party: "a", Aircraft: "1", Class: p.Table.Classes()[ent.A], Time: t0,
		Pos: offset(center, 0, 0, alt), VelEastMps: sa * math.Sin(hdg), VelNorthMps: sa * math.Cos(hdg), VelUpMps: rapid.Float64Range(-60, 60).Draw(t, "vs a")}
	// The closest approach may come after the lookahead (and after
	// the stale time that the index adds to it): a well clear
	// violation starts up to TTHR before it.
	meet := rapid.Float64Range(0, ent.LookaheadS+ent.reachTimeS).Draw(t, "meet")
	if rapid.Bool().Draw(t, "late") {
		meet = ent.LookaheadS + rapid.Float64Range(0, ent.reachTimeS).Draw(t, "after")
	}
	reach := ent.pruneRadiusM(2 * 700)
	missE, missN := rapid.Float64Range(-reach, reach).Draw(t, "miss east"), rapid.Float64Range(-reach, reach).Draw(t, "miss north")
	sb, hb := speed("speed b"), rapid.Float64Range(0, 2*math.Pi).Draw(t, "heading b")
	vb := [3]float64{sb * math.Sin(hb), sb * math.Cos(hb), rapid.Float64Range(-60, 60).Draw(t, "vs b")}
	be := a.VelEastMps*meet + missE - vb[0]*meet
	bn := a.VelNorthMps*meet + missN - vb[1]*meet
	bz := alt + a.VelUpMps*meet + rapid.Float64Range(-1_000, 1_000).Draw(t, "miss up") - vb[2]*meet
	gap := rapid.SampledFrom([]int{0, int(r.StaleAfterS), rapid.IntRange(0, int(r.StaleAfterS)).Draw(t, "some gap")}).Draw(t, "gap")
	b := track.Report{Party: "b", Aircraft: "2", Class: p.Table.Classes()[ent.B], Time: t0.Add(time.Duration(gap) * time.Second),
		Pos: offset(center, be, bn, bz), VelEastMps: vb[0], VelNorthMps: vb[1], VelUpMps: vb[2]}
	if b.Pos.AltM < track.MinAltM || b.Pos.AltM > track.MaxAltM {
		return 0
	}
	sta, stb := track.NewState(a), track.NewState(b)
	c, ok := pruneKeepsConflict(t, &sta, &stb, ent)
	if !ok {
		return 0
	}
	gd := gridFor(ent)
	g := newGrid(gd.CellM, gd.SliceS, gd.ShellM)
	speedOf := func(s *track.State) float64 {
		v := s.VelECEF
		return math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
	}
	g.set(1, 1, stb.ECEF, stb.VelECEF, stb.Time.UnixNano(), p.spanS(ent), ent.growM(speedOf(&stb)), ent.growVM(speedOf(&stb)))
	hit := false
	g.queryPath(nil, 0, sta.ECEF, sta.VelECEF, sta.Time.UnixNano(), p.spanS(ent), ent.growM(speedOf(&sta)), ent.growVM(speedOf(&sta)), make([]uint32, 2), 1, func(int32) { hit = true })
	if !hit {
		t.Fatalf("the index does not pair a conflicting pair (on the fly): %+v", c.PairResult)
	}
	g.set(0, 0, sta.ECEF, sta.VelECEF, sta.Time.UnixNano(), p.spanS(ent), ent.growM(speedOf(&sta)), ent.growVM(speedOf(&sta)))
	hit = false
	g.query(0, 0, make([]uint32, 2), 1, func(int32) { hit = true })
	if !hit {
		t.Fatalf("the index does not pair a conflicting pair: %+v", c.PairResult)
	}
	if got, ok := Evaluate(&sta, &stb, p); !ok || got.PairResult.Loss != c.Loss || got.Level != c.Level {
		t.Fatalf("Evaluate %v %+v, the pair math %+v", ok, got, c)
	}
	return 1
}

func TestEvaluateIsSymmetric(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := ParamsFrom(drawTable(t))
		pic := drawPicture(t)
		a := track.NewState(pic.drawReport(t, "a", "1", drawClass(t), t0))
		b := track.NewState(pic.drawReport(t, "b", "2", drawClass(t), t0.Add(time.Duration(rapid.IntRange(-10, 10).Draw(t, "gap"))*time.Second)))
		ab, okAB := Evaluate(&a, &b, p)
		ba, okBA := Evaluate(&b, &a, p)
		if okAB != okBA || ab.PairResult != ba.PairResult || ab.Key() != ba.Key() || ab.Level != ba.Level || ab.Sep != ba.Sep {
			t.Fatalf("a,b gives %v %+v; b,a gives %v %+v", okAB, ab, okBA, ba)
		}
	})
}

// TestMannedOnlyAsBefore: with the default rules, a pair of manned
// aircraft is judged as before the separation table existed: a conflict
// exactly when Pair with the rules' top-level minima and lookahead finds
// one in the pair frame (the same numbers), at the level LevelFor gives
// its t_in (the alert lifecycle's old rule).
func TestMannedOnlyAsBefore(t *testing.T) {
	var conflicts int
	defer func() {
		if conflicts < 10 {
			t.Errorf("only %d conflicts drawn", conflicts)
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		r := rules.Default()
		p := ParamsFrom(r)
		pic := drawPicture(t)
		// Close enough that many pairs conflict.
		pic.spreadM = min(pic.spreadM, 20_000)
		pic.altHiM = min(pic.altHiM, pic.altLoM+600)
		class := rapid.SampledFrom([]string{"", rules.ClassManned}).Draw(t, "class")
		a := track.NewState(pic.drawReport(t, "a", "1", class, t0))
		b := track.NewState(pic.drawReport(t, "b", "2", class, t0.Add(time.Duration(rapid.IntRange(0, 30).Draw(t, "gap"))*time.Second)))
		got, ok := Evaluate(&a, &b, p)
		pa := a.ECEFAt(b.Time.Sub(a.Time).Seconds())
		f := geo.NewFrame(geo.FromECEF(geo.ECEF{XM: (pa[0] + b.ECEF[0]) / 2, YM: (pa[1] + b.ECEF[1]) / 2, ZM: (pa[2] + b.ECEF[2]) / 2}))
		op, ov := inFrame(f, &a, b.Time)
		ip, iv := inFrame(f, &b, b.Time)
		want := Pair(op, ov, ip, iv, Cylinder{HorizontalM: r.HorizontalSepM, VerticalM: r.VerticalSepM}, r.LookaheadS)
		if ok != want.Conflict {
			t.Fatalf("Evaluate %v, Pair %+v", ok, want)
		}
		if !ok {
			return
		}
		conflicts++
		if got.PairResult != want {
			t.Fatalf("Evaluate %+v, Pair %+v", got.PairResult, want)
		}
		lv, err := r.LevelFor(want.TInS)
		if err != nil || got.LevelName() != lv.Name {
			t.Fatalf("level %s, LevelFor gives %v %v", got.LevelName(), lv, err)
		}
	})
}

// headOn returns two reports of different parties flying at each other at
// the same level, startM apart, centred on c.
func headOn(c geo.LLA, startM float64, at time.Time) (track.Report, track.Report) {
	a := track.Report{Party: "blue", Aircraft: "b1", Pos: offset(c, -startM/2, 0, 9000), VelEastMps: 200, Time: at}
	b := track.Report{Party: "red", Aircraft: "r1", Pos: offset(c, startM/2, 0, 9000), VelEastMps: -200, Time: at}
	return a, b
}

func TestEngineEventsAndStaleness(t *testing.T) {
	r := rules.Default()
	e := NewEngine(r, Grid{}, nil)
	a, b := headOn(geo.LLA{LatDeg: 35, LonDeg: 38}, 60_000, t0)
	evs, err := e.Ingest(nil, []track.Report{a, b}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != ConflictPredicted {
		t.Fatalf("head-on pair: events %v, want one conflict", kinds(evs))
	}
	c := evs[0].Conflict
	// 60 km closing at 400 m/s, 9.26 km separation: loss at about 127 s.
	if want := (60_000 - r.HorizontalSepM) / 400; math.Abs(c.TInS-want) > 1 {
		t.Fatalf("t_in %v, want about %v", c.TInS, want)
	}

	// A duplicate is ignored: no event, counted.
	evs, _ = e.Ingest(nil, []track.Report{a}, t0)
	if len(evs) != 0 || e.Counters().Duplicate != 1 {
		t.Fatalf("duplicate gave events %v, counters %+v", kinds(evs), e.Counters())
	}
	// b turns away: the conflict ends, resolved.
	b2 := b
	b2.Time = t0.Add(time.Second)
	b2.VelEastMps, b2.VelNorthMps = 0, 200
	b2.Pos.AltM = 12000
	evs, _ = e.Ingest(nil, []track.Report{b2}, b2.Time)
	if len(evs) != 1 || evs[0].Kind != ConflictEnded || evs[0].Reason != ReasonResolved {
		t.Fatalf("turn away: events %v", kinds(evs))
	}
	// An out-of-order report of the old heading must not bring it back.
	evs, _ = e.Ingest(nil, []track.Report{b}, b2.Time)
	if len(evs) != 0 || e.NumConflicts() != 0 || e.Counters().OutOfOrder != 1 {
		t.Fatalf("out-of-order report: events %v, conflicts %d", kinds(evs), e.NumConflicts())
	}
	// Back on the collision course, then a goes silent.
	b3 := b
	b3.Time = t0.Add(2 * time.Second)
	if evs, _ = e.Ingest(nil, []track.Report{b3}, b3.Time); len(evs) != 1 || evs[0].Kind != ConflictPredicted {
		t.Fatalf("back on course: events %v", kinds(evs))
	}
	evs = e.Expire(nil, t0.Add(r.StaleAfter()))
	if len(evs) != 0 {
		t.Fatalf("expiry at exactly the stale time: %v", kinds(evs))
	}
	evs = e.Expire(nil, t0.Add(r.StaleAfter()+time.Second))
	if len(evs) != 1 || evs[0].Kind != ConflictEnded || evs[0].Reason != ReasonStale || evs[0].Conflict.Key() != c.Key() {
		t.Fatalf("a stale: events %v", kinds(evs))
	}
	if e.NumTracks() != 1 || e.NumConflicts() != 0 {
		t.Fatalf("after expiry: %d tracks, %d conflicts", e.NumTracks(), e.NumConflicts())
	}
}

func TestSamePartySwitch(t *testing.T) {
	a, b := headOn(geo.LLA{LatDeg: -33, LonDeg: 151}, 40_000, t0)
	b.Party = a.Party
	r := rules.Default()
	for _, same := range []bool{false, true} {
		r.SamePartyAlerts = same
		e := NewEngine(r, Grid{}, nil)
		if _, err := e.Ingest(nil, []track.Report{a, b}, t0); err != nil {
			t.Fatal(err)
		}
		if got := e.NumConflicts() == 1; got != same {
			t.Errorf("same_party_alerts=%v: conflict found %v", same, got)
		}
	}
}

func TestInvalidBatchChangesNothing(t *testing.T) {
	e := NewEngine(rules.Default(), Grid{}, nil)
	a, b := headOn(geo.LLA{LatDeg: 10, LonDeg: 10}, 40_000, t0)
	b.Pos.LatDeg = 91
	_, err := e.Ingest(nil, []track.Report{a, b}, t0)
	var re *ReportError
	var fe *fielderr.Error
	if !errors.As(err, &re) || re.Index != 1 || !errors.As(err, &fe) || fe.Field != "lat" {
		t.Fatalf("error %v, want reports[1].lat", err)
	}
	if err.Error() != "reports[1].lat: must be within [-90, 90] degrees" {
		t.Errorf("message %q", err.Error())
	}
	if e.NumTracks() != 0 {
		t.Fatal("a refused batch applied a report")
	}
}

type fakeConformance struct{ inside map[string]bool }

func (f fakeConformance) Conforms(party string, p geo.LLA, _ time.Time) (bool, bool) {
	in, has := f.inside[party]
	if !has {
		return false, false
	}
	// The party's one volume is everything north of the equator, or
	// nothing when inside is false.
	return in && p.LatDeg > 0, true
}

func TestConformanceHook(t *testing.T) {
	conf := fakeConformance{inside: map[string]bool{"blue": true}}
	e := NewEngine(rules.Default(), Grid{}, conf)
	north := track.Report{Party: "blue", Aircraft: "1", Pos: geo.LLA{LatDeg: 5, LonDeg: 0, AltM: 1000}, Time: t0}
	south := north
	south.Pos.LatDeg, south.Time = -5, t0.Add(time.Second)
	noVolumes := track.Report{Party: "red", Aircraft: "1", Pos: geo.LLA{LatDeg: -5, LonDeg: 90, AltM: 1000}, Time: t0}

	evs, _ := e.Ingest(nil, []track.Report{north, noVolumes}, t0)
	if len(evs) != 0 {
		t.Fatalf("conforming aircraft and a party without volumes: %v", kinds(evs))
	}
	evs, _ = e.Ingest(nil, []track.Report{south}, south.Time)
	if len(evs) != 1 || evs[0].Kind != Nonconforming || evs[0].Track.Key() != south.Key() {
		t.Fatalf("left its volume: %v", kinds(evs))
	}
	back := north
	back.Time = t0.Add(2 * time.Second)
	evs, _ = e.Ingest(nil, []track.Report{back}, back.Time)
	if len(evs) != 1 || evs[0].Kind != Conforming || evs[0].Reason != ReasonResolved {
		t.Fatalf("back inside: %v", kinds(evs))
	}
	gone := south
	gone.Time = t0.Add(3 * time.Second)
	e.Ingest(nil, []track.Report{gone}, gone.Time)
	evs = e.Expire(nil, gone.Time.Add(time.Minute))
	if len(evs) != 1 || evs[0].Kind != Conforming || evs[0].Reason != ReasonStale {
		t.Fatalf("stale nonconforming track: %v", kinds(evs))
	}
}

func TestTracksBBoxAcrossAntimeridian(t *testing.T) {
	e := NewEngine(rules.Default(), Grid{}, nil)
	var reps []track.Report
	for i, lon := range []float64{179.5, -179.5, 0, 170} {
		reps = append(reps, track.Report{Party: "p", Aircraft: fmt.Sprint(i), Pos: geo.LLA{LatDeg: 10, LonDeg: lon}, Time: t0})
	}
	if _, err := e.Ingest(nil, reps, t0); err != nil {
		t.Fatal(err)
	}
	got := e.Tracks(BBox{MinLatDeg: 0, MinLonDeg: 179, MaxLatDeg: 20, MaxLonDeg: -179})
	if len(got) != 2 || got[0].Aircraft != "0" || got[1].Aircraft != "1" {
		t.Fatalf("tracks across the antimeridian: %v", got)
	}
	if n := len(e.Tracks(World)); n != 4 {
		t.Fatalf("world box holds %d tracks", n)
	}
}

func kinds(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind.String()+"/"+e.Reason)
	}
	return out
}

// TestSameConflictsNamesTheMissingPair checks the ordering SortConflicts and
// SameConflicts share: with one pair dropped from either side, the message
// names that pair and the side that holds it.
func TestSameConflictsNamesTheMissingPair(t *testing.T) {
	pair := func(pa, a, pb, b string) Conflict {
		return Conflict{
			A: track.State{Report: track.Report{Party: pa, Aircraft: a}},
			B: track.State{Report: track.Report{Party: pb, Aircraft: b}},
		}
	}
	set := []Conflict{pair("b", "1", "c", "1"), pair("a", "2", "b", "1"), pair("a", "1", "b", "1"), pair("a", "1", "a", "2")}
	SortConflicts(set)
	// With one-letter ids the printed keys sort the same way as the keys.
	for i := 1; i < len(set); i++ {
		if set[i-1].Key().String() >= set[i].Key().String() {
			t.Fatalf("not sorted: %v before %v", set[i-1].Key(), set[i].Key())
		}
	}
	if same, diff := SameConflicts(set, slices.Clone(set)); !same {
		t.Fatalf("a set differs from its copy: %s", diff)
	}
	for i := range set {
		without := slices.Delete(slices.Clone(set), i, i+1)
		name := set[i].Key().String()
		if same, diff := SameConflicts(set, without); same || diff != "only in first: "+name {
			t.Errorf("dropping %s from the second: same=%v, %q", name, same, diff)
		}
		if same, diff := SameConflicts(without, set); same || diff != "only in second: "+name {
			t.Errorf("dropping %s from the first: same=%v, %q", name, same, diff)
		}
	}
}

// TestInFrameMatchesTheReport: inFrame rotates the track's ECEF position
// and velocity; that is bit for bit what converting its report's position
// and local velocity into the frame gives (track.NewState computes them
// the same way), so the pair function gives the same numbers either way.
func TestInFrameMatchesTheReport(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := track.Report{
			Pos:        geo.LLA{LatDeg: rapid.Float64Range(-90, 90).Draw(t, "lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon"), AltM: rapid.Float64Range(-500, 20_000).Draw(t, "alt")},
			VelEastMps: rapid.Float64Range(-700, 700).Draw(t, "east"), VelNorthMps: rapid.Float64Range(-700, 700).Draw(t, "north"), VelUpMps: rapid.Float64Range(-60, 60).Draw(t, "up"),
			Time: t0,
		}
		s := track.NewState(r)
		f := geo.NewFrame(geo.LLA{LatDeg: rapid.Float64Range(-90, 90).Draw(t, "frame lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(t, "frame lon")})
		p := f.ToENU(r.Pos)
		v := f.VelocityFrom(r.Pos, geo.ENU{EastM: r.VelEastMps, NorthM: r.VelNorthMps, UpM: r.VelUpMps})
		dt := rapid.Float64Range(0, 90).Draw(t, "dt")
		pos, vel := inFrame(f, &s, t0.Add(time.Duration(dt*1e9)))
		dt = time.Duration(dt * 1e9).Seconds()
		want := Vec3{p.EastM + v.EastM*dt, p.NorthM + v.NorthM*dt, p.UpM + v.UpM*dt}
		if pos != want || vel != (Vec3{v.EastM, v.NorthM, v.UpM}) {
			t.Fatalf("inFrame %v %v, from the report %v %v", pos, vel, want, v)
		}
	})
}

// TestPruneKeepsLossesAtTheEdgeOfReach aims at what the prune cuts: the
// pair's relative position at a random instant of the lookahead is put at
// 90-100.01% of the entry's horizontal and vertical reach (often
// perpendicular to the relative velocity, at a random stale gap between
// the two reports), and every conflict the pair math finds unpruned must
// pass the prune (mayConflict).
func TestPruneKeepsLossesAtTheEdgeOfReach(t *testing.T) {
	var found int
	rapid.Check(t, func(t *rapid.T) {
		r := drawTable(t)
		p := ParamsFrom(r)
		for range 200 {
			ent := p.Table.Entries()[rapid.IntRange(0, len(p.Table.Entries())-1).Draw(t, "entry")]
			center := geo.LLA{LatDeg: rapid.Float64Range(-89, 89).Draw(t, "lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon")}
			alt := rapid.Float64Range(0, 12_000).Draw(t, "alt")
			// The relative velocity w, horizontal and vertical.
			whMps := rapid.Float64Range(0, 1400).Draw(t, "relative ground speed")
			whDir := rapid.Float64Range(0, 2*math.Pi).Draw(t, "relative track")
			wzMps := rapid.Float64Range(-120, 120).Draw(t, "relative vertical speed")
			wx, wy := whMps*math.Sin(whDir), whMps*math.Cos(whDir)
			hReachM := ent.reach.HorizontalM + whMps*ent.reach.HorizontalS
			vReachM := ent.reach.VerticalM + math.Abs(wzMps)*ent.reach.VerticalS
			hShare := rapid.Float64Range(0.9, 1.0001).Draw(t, "horizontal share of reach")
			vShare := rapid.Float64Range(0.9, 1.0001).Draw(t, "vertical share of reach")
			bearing := rapid.Float64Range(0, 2*math.Pi).Draw(t, "bearing")
			if rapid.Bool().Draw(t, "perpendicular") && whMps > 0 {
				bearing = whDir + math.Pi/2
			}
			if rapid.Bool().Draw(t, "below") {
				vShare = -vShare
			}
			// The relative position at a's report time that puts b there
			// at the instant atS.
			atS := rapid.Float64Range(0, ent.LookaheadS).Draw(t, "instant")
			rx := hReachM*hShare*math.Sin(bearing) - wx*atS
			ry := hReachM*hShare*math.Cos(bearing) - wy*atS
			rz := vReachM*vShare - wzMps*atS
			sa := rapid.Float64Range(0, 300).Draw(t, "speed a")
			ha := rapid.Float64Range(0, 2*math.Pi).Draw(t, "track a")
			vza := rapid.Float64Range(-60, 60).Draw(t, "vertical speed a")
			a := track.Report{Party: "a", Aircraft: "1", Class: p.Table.Classes()[ent.A], Time: t0,
				Pos: offset(center, 0, 0, alt), VelEastMps: sa * math.Sin(ha), VelNorthMps: sa * math.Cos(ha), VelUpMps: vza}
			gapS := float64(rapid.IntRange(0, int(r.StaleAfterS)).Draw(t, "gap"))
			b := track.Report{Party: "b", Aircraft: "2", Class: p.Table.Classes()[ent.B], Time: t0.Add(time.Duration(gapS) * time.Second),
				Pos:        offset(center, rx+(a.VelEastMps+wx)*gapS, ry+(a.VelNorthMps+wy)*gapS, alt+rz+(vza+wzMps)*gapS),
				VelEastMps: a.VelEastMps + wx, VelNorthMps: a.VelNorthMps + wy, VelUpMps: vza + wzMps}
			if b.Pos.AltM < track.MinAltM || b.Pos.AltM > track.MaxAltM {
				continue
			}
			sta, stb := track.NewState(a), track.NewState(b)
			if _, ok := pruneKeepsConflict(t, &sta, &stb, ent); ok {
				found++
			}
		}
	})
	if found < 1000 {
		t.Fatalf("only %d conflicts drawn: the property was hardly exercised", found)
	}
	t.Logf("%d conflicts checked", found)
}

// The cubes of an entry's grid are at least twice its reach, so that an
// aircraft's path boxes each meet a few: with 50 km cubes whatever the
// reach, a 200 km separation (within the rules' bounds) listed an
// airliner in 825 cubes where the default rules list it in 17, and the
// cost of detection grew as the cube of the separation. The default
// entries keep their grids.
func TestGridGrowsWithTheReach(t *testing.T) {
	r := rules.Default()
	for _, e := range ParamsFrom(r).Table.Entries() {
		if g, want := gridFor(e), min(max(5.4*(e.reachM+50*e.reachTimeS), 1_000), DefaultCellM); g.CellM != want {
			t.Errorf("%v: cubes of %g m, were %g m", e.Rule.Classes, g.CellM, want)
		}
	}
	r.HorizontalSepM, r.VerticalSepM = 200_000, 5_000
	r.Separation = nil
	r.FillTable()
	e := NewEngine(r, Grid{}, nil)
	rep := track.Report{Party: "blue", Aircraft: "b1", Pos: geo.LLA{LatDeg: 45, LonDeg: 10, AltM: 10_000}, VelEastMps: 250, Time: t0}
	if _, err := e.Ingest(nil, []track.Report{rep}, t0); err != nil {
		t.Fatal(err)
	}
	g := e.index[0].grid
	listed := 0
	for _, in := range g.in {
		listed += len(in)
	}
	slices := math.Ceil(e.params.spanS(e.params.Table.Entries()[0])*1e9/float64(g.sliceNs)) + 1
	if listed > int(8*slices) {
		t.Errorf("an airliner under a 200 km separation is listed in %d cells over %g slices of %g km cubes", listed, slices, g.cellM/1000)
	}
}
