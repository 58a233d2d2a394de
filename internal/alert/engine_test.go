package alert

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// closing returns two aircraft of different parties converging head-on at
// the same level at position t seconds after t0.
func closing(at time.Time, gapM float64) []track.Report {
	c := geo.LLA{LatDeg: 35, LonDeg: 38, AltM: 9000}
	f := geo.NewFrame(c)
	a := f.FromENU(geo.ENU{EastM: -gapM / 2})
	b := f.FromENU(geo.ENU{EastM: gapM / 2})
	a.AltM, b.AltM = 9000, 9000
	return []track.Report{
		{Party: "blue", Aircraft: "b1", Callsign: "BLUE1", Pos: a, VelEastMps: 200, Time: at},
		{Party: "red", Aircraft: "r1", Callsign: "RED1", Pos: b, VelEastMps: -200, Time: at},
	}
}

func TestEngineAlertIDStableAcrossReports(t *testing.T) {
	r := rules.Default()
	e := NewEngine(r, nil)
	out, err := e.Ingest(closing(t0, 80_000), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].State != StateRaised || out[0].Kind != KindConflict {
		t.Fatalf("raise: %v", states(out))
	}
	id := out[0].ID
	levels := map[string]bool{out[0].Level: true}
	// Fly the encounter second by second: levels rise, the id stays.
	for s := 1; s <= 150; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		out, err = e.Ingest(closing(at, 80_000-400*float64(s)), at)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out {
			if a.ID != id || a.State != StateUpdated {
				t.Fatalf("second %d: %v, id %s want %s", s, states(out), a.ID, id)
			}
			levels[a.Level] = true
		}
	}
	if !levels["advisory"] || !levels["caution"] || !levels["warning"] {
		t.Fatalf("levels seen %v, want all three", levels)
	}
	// Both go silent: cleared stale.
	out = e.Expire(t0.Add(150*time.Second + r.StaleAfter() + time.Second))
	if len(out) != 1 || out[0].State != StateCleared || out[0].Reason != ReasonStale || out[0].ID != id {
		t.Fatalf("stale: %v", states(out))
	}
}

type outsideSouth struct{}

func (outsideSouth) Conforms(party string, p geo.LLA, _ time.Time) (bool, bool) {
	if party != "blue" {
		return false, false
	}
	return p.LatDeg >= 0, true
}

func TestEngineNonconformingAlert(t *testing.T) {
	r := rules.Default()
	e := NewEngine(r, outsideSouth{})
	rep := track.Report{Party: "blue", Aircraft: "b1", Pos: geo.LLA{LatDeg: -1, AltM: 3000}, Time: t0}
	out, _ := e.Ingest([]track.Report{rep}, t0)
	if len(out) != 1 || out[0].Kind != KindNonconforming || !out[0].ForEveryone() || out[0].State != StateRaised {
		t.Fatalf("outside its volumes: %v", states(out))
	}
	id := out[0].ID
	rep.Pos.LatDeg, rep.Time = 1, t0.Add(time.Second)
	if out, _ = e.Ingest([]track.Report{rep}, rep.Time); len(out) != 0 {
		t.Fatalf("cleared without hysteresis: %v", states(out))
	}
	out = e.Expire(t0.Add(10 * time.Second))
	if len(out) != 1 || out[0].ID != id || out[0].State != StateCleared || out[0].Reason != ReasonResolved {
		t.Fatalf("back inside: %v", states(out))
	}
}

func TestEngineRefusesBadBatch(t *testing.T) {
	e := NewEngine(rules.Default(), nil)
	reps := closing(t0, 50_000)
	reps[1].Aircraft = ""
	if _, err := e.Ingest(reps, t0); err == nil || err.Error() != "reports[1].aircraft: must not be empty" {
		t.Fatalf("error %v", err)
	}
	if s := e.Stats(); s.Tracks != 0 || s.Alerts != 0 {
		t.Fatalf("refused batch changed the engine: %+v", s)
	}
}

// TestEngineConcurrentUse is for the race detector: ingest, expiry and
// reads from several goroutines.
func TestEngineConcurrentUse(t *testing.T) {
	e := NewEngine(rules.Default(), nil)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for s := 0; s < 50; s++ {
				at := t0.Add(time.Duration(s) * time.Second)
				reps := closing(at, 80_000-400*float64(s))
				for i := range reps {
					reps[i].Aircraft = fmt.Sprintf("%s-%d", reps[i].Aircraft, g)
				}
				if _, err := e.Ingest(reps, at); err != nil {
					t.Error(err)
					return
				}
				e.Expire(at)
				e.Alerts()
				e.Tracks(detect.World)
			}
		}(g)
	}
	wg.Wait()
	if s := e.Stats(); s.Tracks != 8 {
		t.Fatalf("tracks %d, want 8", s.Tracks)
	}
}

// TestEngineDroneAndAirlinerByDO365 flies a drone and an airliner head on
// at the same level: their pair is judged by the manned-uas entry of the
// default rules, DO-365 well clear. The levels rise preventive, corrective,
// warning, as DAIDALUS grades them (the detect tests check that grading
// against DAIDALUS itself), and each alert shows the classes and the
// detector of its level.
func TestEngineDroneAndAirlinerByDO365(t *testing.T) {
	r := rules.Default()
	e := NewEngine(r, nil)
	c := geo.LLA{LatDeg: 51.5, LonDeg: -0.1}
	f := geo.NewFrame(c)
	pair := func(at time.Time, gapM, aboveM float64) []track.Report {
		a, b := f.FromENU(geo.ENU{EastM: -gapM / 2}), f.FromENU(geo.ENU{EastM: gapM / 2})
		a.AltM, b.AltM = 120+aboveM, 120
		return []track.Report{
			{Party: "air", Aircraft: "a1", Class: rules.ClassManned, Pos: a, VelEastMps: 70, Time: at},
			{Party: "drones", Aircraft: "d1", Class: rules.ClassUAS, Pos: b, VelEastMps: -20, Time: at},
		}
	}
	// 90 m/s closure from 9 km: the modified tau reaches 35 s at
	// 3,568 m, 60 s ahead. For 20 s the airliner is 170 m above the
	// drone, within 700 ft but not 450 ft: preventive from 54 s ahead;
	// then level with it: corrective, then warning below 25 s.
	levels := map[string]bool{}
	var id string
	for s := 0; s <= 80; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		above := 0.0
		if s < 20 {
			above = 170
		}
		out, err := e.Ingest(pair(at, 9_000-90*float64(s), above), at)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out {
			if id == "" {
				id = a.ID
			}
			if a.ID != id || a.Kind != KindConflict {
				t.Fatalf("second %d: %v", s, states(out))
			}
			levels[a.Level] = true
			sep := a.Separation
			if sep == nil || sep.Classes[0] != rules.ClassManned || sep.Classes[1] != rules.ClassUAS || sep.Detector.Kind != rules.DetectorDO365WCV || sep.LookaheadS != 180 {
				t.Fatalf("second %d: separation %+v", s, sep)
			}
			// The preventive level watches a taller volume (700 ft).
			if zthr := *sep.Detector.ZTHRM; (a.Level == "preventive") != (zthr == geo.FeetToM(700)) {
				t.Fatalf("level %s with ZTHR %v", a.Level, zthr)
			}
			if a.Aircraft[0].Class != rules.ClassManned || a.Aircraft[1].Class != rules.ClassUAS {
				t.Fatalf("classes %+v", a.Aircraft)
			}
		}
	}
	if !levels["preventive"] || !levels["corrective"] || !levels["warning"] {
		t.Fatalf("levels seen %v, want DO-365's three", levels)
	}
	if e.Stats().Alerts != 1 {
		t.Fatalf("alerts %d", e.Stats().Alerts)
	}
}

// TestEngineRefusesUnknownClass: a class the rules do not know refuses the
// batch, naming the report and the field.
func TestEngineRefusesUnknownClass(t *testing.T) {
	e := NewEngine(rules.Default(), nil)
	reps := closing(t0, 50_000)
	reps[1].Class = "glider"
	_, err := e.Ingest(reps, t0)
	if err == nil || !strings.HasPrefix(err.Error(), `reports[1].class: unknown class "glider"`) {
		t.Fatalf("error %v", err)
	}
}

// TestStaleClearNamesTheAircraftNoLongerTracked: an alert cleared because
// a track went stale says which: the party of the aircraft still reporting
// learns that the other is no longer tracked (it may be flying on,
// unseen), not that the conflict was resolved, and the party whose feed
// stopped learns that it was its own aircraft. When both went stale, both
// are named.
func TestStaleClearNamesTheAircraftNoLongerTracked(t *testing.T) {
	r := rules.Default()
	for _, tc := range []struct {
		name      string
		reporting []int // the aircraft of closing that report on
	}{
		{"red stops", []int{0}},
		{"blue stops", []int{1}},
		{"both stop", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(r, nil)
			out, err := e.Ingest(closing(t0, 80_000), t0)
			if err != nil || len(out) != 1 {
				t.Fatalf("raise: %v %v", states(out), err)
			}
			id := out[0].ID
			var cleared []Alert
			at := t0
			for s := 1; len(cleared) == 0 && s < 120; s++ {
				at = t0.Add(time.Duration(s) * time.Second)
				pair := closing(at, 80_000-400*float64(s))
				var reports []track.Report
				for _, i := range tc.reporting {
					reports = append(reports, pair[i])
				}
				got, err := e.Ingest(reports, at)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range got {
					if a.State == StateCleared {
						cleared = append(cleared, a)
					}
				}
				cleared = append(cleared, e.Expire(at)...)
			}
			if len(cleared) != 1 || cleared[0].ID != id || cleared[0].State != StateCleared || cleared[0].Reason != ReasonStale {
				t.Fatalf("at %v: %v, want the alert cleared stale", at.Sub(t0), states(cleared))
			}
			for i, ac := range cleared[0].Aircraft {
				stopped := true
				for _, j := range tc.reporting {
					stopped = stopped && closing(t0, 0)[j].Aircraft != ac.Aircraft
				}
				if ac.Stale != stopped {
					t.Fatalf("aircraft %d (%s) of the clear: stale %v, want %v", i, ac.Aircraft, ac.Stale, stopped)
				}
			}
		})
	}
}

// TestAlertsNameTheRulesTheyWereJudgedUnder: every transition names the
// version of the engine's rules (a start or a takeover ends an alert the
// store has open under rules that detect otherwise: it must know which);
// rules relabelled onto the engine (they detect as its own) are named by
// the transitions from then on, a clear keeping the version its alert
// was open under.
func TestAlertsNameTheRulesTheyWereJudgedUnder(t *testing.T) {
	r := rules.Default()
	r.Version = 3
	e := NewEngine(r, nil)
	out, err := e.Ingest(closing(t0, 80_000), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].RulesVersion != 3 {
		t.Fatalf("raise: %+v, want one alert of rules version 3", out)
	}
	next := r
	next.Version = 4
	next.AckDeadlineS++
	if !e.DetectsAs(next) {
		t.Fatal("rules that change a deadline detect otherwise")
	}
	e.Relabel(next)
	if got := e.RulesVersion(); got != 4 {
		t.Fatalf("relabelled, the engine's rules are version %d, want 4", got)
	}
	if open := e.Alerts(); len(open) != 1 || open[0].RulesVersion != 3 {
		t.Fatalf("open after the relabel: %+v, want the alert as published under version 3", open)
	}
	var updated bool
	for s := 1; s <= 150 && !updated; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		if out, err = e.Ingest(closing(at, 80_000-400*float64(s)), at); err != nil {
			t.Fatal(err)
		}
		for _, a := range out {
			updated = true
			if a.State != StateUpdated || a.RulesVersion != 4 {
				t.Fatalf("second %d: %+v, want an update under rules version 4", s, a)
			}
		}
	}
	if !updated {
		t.Fatal("the encounter was never updated")
	}
	out = e.Expire(t0.Add(150*time.Second + r.StaleAfter() + time.Second))
	if len(out) != 1 || out[0].State != StateCleared || out[0].RulesVersion != 4 {
		t.Fatalf("stale: %+v, want the clear of the alert last published under version 4", out)
	}
}
