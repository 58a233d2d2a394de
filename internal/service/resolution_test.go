package service

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/cputime"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/resolve"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestResolverSeparations checks the separation each pair of classes is
// resolved with under the default rules: manned pairs exactly as before
// the table (the rules' cylinder, lookahead and levels), a manned–UAS pair
// as DAIDALUS's DO-365B configuration, UAS pairs their own cylinder, and a
// class the rules do not know none at all.
func TestResolverSeparations(t *testing.T) {
	r := rules.Default()
	rv := (&Service{}).resolverFor(r)
	manned := &track.State{Report: track.Report{Class: rules.ClassManned}}
	unclassed := &track.State{}
	uas := &track.State{Report: track.Report{Class: rules.ClassUAS}}
	unknown := &track.State{Report: track.Report{Class: "balloon"}}

	times := make([]float64, len(r.Levels))
	for i, l := range r.Levels {
		times[i] = l.MaxTimeToLoSS
	}
	before := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: r.HorizontalSepM, VerticalM: r.VerticalSepM}, r.LookaheadS, times...)
	for _, pair := range [][2]*track.State{{manned, manned}, {unclassed, manned}, {unclassed, unclassed}} {
		if got := rv.separation(pair[0], pair[1]); got == nil || !reflect.DeepEqual(*got, before) {
			t.Fatalf("manned pair (%q, %q): %+v, want %+v", pair[0].Class, pair[1].Class, got, before)
		}
	}
	do365 := resolve.DO365()
	for _, pair := range [][2]*track.State{{manned, uas}, {uas, manned}, {uas, unclassed}} {
		if got := rv.separation(pair[0], pair[1]); got == nil || !reflect.DeepEqual(*got, do365) {
			t.Fatalf("manned-uas pair (%q, %q): %+v, want %+v", pair[0].Class, pair[1].Class, got, do365)
		}
	}
	drones := rv.separation(uas, uas)
	if want := (detect.Cylinder{HorizontalM: 50, VerticalM: 15}); drones == nil || drones.Alerter.Levels[0].Detector != want || drones.Alerter.LookaheadS != 60 {
		t.Fatalf("uas pair: %+v", drones)
	}
	if got := rv.separation(uas, unknown); got != nil {
		t.Fatalf("unknown class: %+v, want none", got)
	}
	// The reach of each entry covers its detectors: the DO-365 entry's
	// well clear's distance and the time its modified tau looks beyond
	// its lookahead; the drones' cylinder over their lookahead.
	do365Entry := rv.table.ForNames(rules.ClassManned, rules.ClassUAS).Index()
	if rv.lookaheadS[do365Entry] < 180+35 || rv.reachM[do365Entry] < math.Hypot(1222.32, 137.16) {
		t.Fatalf("reach %g m over %g s does not cover the manned-uas entry", rv.reachM[do365Entry], rv.lookaheadS[do365Entry])
	}
	dronesEntry := rv.table.ForNames(rules.ClassUAS, rules.ClassUAS).Index()
	if rv.lookaheadS[dronesEntry] != 60 || rv.reachM[dronesEntry] != math.Hypot(50, 15) {
		t.Fatalf("reach %g m over %g s, want the drones' cylinder over 60 s", rv.reachM[dronesEntry], rv.lookaheadS[dronesEntry])
	}
}

// TestSeparationOfLevelDetectors checks an entry whose levels watch
// cylinders of their own: each level keeps its detector and alerting
// time, the most severe paints NEAR, the one before it MID, the first
// FAR, and recovery starts from the most severe level's cylinder.
func TestSeparationOfLevelDetectors(t *testing.T) {
	r := rules.Default()
	r.FillTable()
	wide, mid := rules.Cylinder(3000, 300), rules.Cylinder(2000, 200)
	s := r.SeparationFor(rules.ClassUAS, rules.ClassUAS)
	s.Detector = rules.Cylinder(1000, 100)
	s.Levels[0].Detector = &wide
	s.Levels[1].Detector = &mid
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	table, err := detect.NewTable(r)
	if err != nil {
		t.Fatal(err)
	}
	got := resolve.SeparationOf(table.ForNames(rules.ClassUAS, rules.ClassUAS))
	wantDet := []detect.Detector{detect.Cylinder{HorizontalM: 3000, VerticalM: 300}, detect.Cylinder{HorizontalM: 2000, VerticalM: 200}, detect.Cylinder{HorizontalM: 1000, VerticalM: 100}}
	wantRegions := []resolve.Region{resolve.RegionFar, resolve.RegionMid, resolve.RegionNear}
	for i, l := range got.Alerter.Levels {
		if l.Detector != wantDet[i] || l.AlertingTimeS != s.Levels[i].MaxTimeToLoSS || got.Regions[i] != wantRegions[i] {
			t.Fatalf("level %d: %+v paints %v, want %v painting %v", i, l, got.Regions[i], wantDet[i], wantRegions[i])
		}
	}
	if got.Recovery != wantDet[2] || got.Alerter.LookaheadS != s.LookaheadS {
		t.Fatalf("recovery %+v over %g s", got.Recovery, got.Alerter.LookaheadS)
	}
}

// TestResolutionConsidersEveryAircraftThatMatters compares the resolution
// of every conflict alert in a busy mixed airspace (drones and manned
// aircraft, reports of different ages, resolved a few seconds after the
// alert) with the same computation against every live aircraft the party
// may see, with no reach applied: the tracks the service leaves out
// beyond the reach of each pair's separation change no band and no
// suggestion. Resolved in a batch (the tracks near all the alerts found
// in one pass, the bands of an aircraft in several computed once), each
// alert's resolution is the same as alone.
func TestResolutionConsidersEveryAircraftThatMatters(t *testing.T) {
	s, _ := newFaultyService(t)
	mixedAirspace(t, s)
	now := s.now().Add(2 * time.Second)
	rv := s.resolverFor(s.Rules())
	all := s.tac.eng.Load().States()
	// The tracks near every alert, found in one pass as a batch of
	// transitions has them.
	open := s.tac.eng.Load().Alerts()
	ptrs := make([]*alert.Alert, len(open))
	for i := range open {
		ptrs[i] = &open[i]
	}
	batch, matter := s.nearAlertsMatter(rv, ptrs, now)
	shared := sharedBands{}
	checked := 0
	for ai, a := range open {
		if a.Kind != alert.KindConflict || len(a.Aircraft) != 2 {
			continue
		}
		got := s.resolve(&a, now)
		if inBatch := s.resolveShared(rv, &a, now, batch[ai], matter[ai], shared); !reflect.DeepEqual(inBatch, got) {
			t.Fatalf("alert %s: resolved alone\n%+v\nin a batch\n%+v", a.ID, got, inBatch)
		}
		checkAgainstEveryAircraft(t, s, rv, &a, now, all, got)
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d conflict alerts to check", checked)
	}
	t.Logf("%d conflict alerts, %d aircraft", checked, len(all))
}

// TestResolutionInMetroTrafficConsidersEveryAircraftThatMatters is
// TestResolutionConsidersEveryAircraftThatMatters in a city's traffic
// (traffic.Generate's metro: drones on delivery routes, arrivals,
// departures and helicopters among them), where the tracks that can
// matter to a manned aircraft are looked for among every drone of the
// city and most are left out (resolve.Matter): every kind of pair, each
// resolved alone and in groups of resolveGroup (the bands of an aircraft
// in several alerts of a group computed once, sharedBands), a few
// seconds after the traffic's reports.
func TestResolutionInMetroTrafficConsidersEveryAircraftThatMatters(t *testing.T) {
	s, open, now := trafficAlerts(t, "metro", 1500)
	now = now.Add(3 * time.Second)
	rv := s.resolverFor(s.Rules())
	all := s.tac.eng.Load().States()
	ptrs := make([]*alert.Alert, len(open))
	for i := range open {
		ptrs[i] = &open[i]
	}
	byPair := map[string]int{}
	sharedHits := 0
	for start := 0; start < len(ptrs); start += resolveGroup {
		group := ptrs[start:min(start+resolveGroup, len(ptrs))]
		near, matter := s.nearAlertsMatter(rv, group, now)
		shared := sharedBands{}
		for i, a := range group {
			got := s.resolve(a, now)
			if inGroup := s.resolveShared(rv, a, now, near[i], matter[i], shared); !reflect.DeepEqual(inGroup, got) {
				t.Fatalf("alert %s: resolved alone\n%+v\nin a group\n%+v", a.ID, got, inGroup)
			}
			// Each aircraft against every track near the alert, whatever
			// it matters to.
			if all := s.resolveAmong(rv, a, now, near[i]); !reflect.DeepEqual(all, got) {
				t.Fatalf("alert %s: resolved against what matters to each aircraft\n%+v\nagainst every track near\n%+v", a.ID, got, all)
			}
			checkAgainstEveryAircraft(t, s, rv, a, now, all, got)
			byPair[a.Aircraft[0].Class+"/"+a.Aircraft[1].Class]++
		}
		// The bands taken from another alert of the group.
		sharedHits += 2*len(group) - len(shared)
	}
	if sharedHits < 20 {
		t.Fatalf("only %d bands shared within a group: sharing is not tested", sharedHits)
	}
	if byPair["manned/manned"] < 20 || byPair["uas/uas"] < 5 || byPair["manned/uas"]+byPair["uas/manned"] < 5 {
		t.Fatalf("conflict alerts by pair %v: too few of some kind to check", byPair)
	}
	t.Logf("conflict alerts by pair %v among %d aircraft, %d bands shared within a group", byPair, len(all), sharedHits)
}

// TestNearAlertsAreOfTheMomentOfTheRead: the tracks nearAlertsBy
// returns near a group of alerts of manned aircraft, and what each can
// matter to, are those of the moment the engine's lock was held
// (alert.Engine.NearOf), even though the tracks are tested against the
// centres after it is released: every
// aircraft of a city reporting again, elsewhere, between the read and
// the tests changes nothing, nor does another search reusing the buffer
// the tracks were copied into. The same search after those reports finds
// other tracks, so that the comparison is not vacuous.
func TestNearAlertsAreOfTheMomentOfTheRead(t *testing.T) {
	s, open, now := trafficAlerts(t, "metro", 1500)
	now = now.Add(3 * time.Second)
	rv := s.resolverFor(s.Rules())
	// Alerts of manned aircraft, which have drones of the city near.
	var group []*alert.Alert
	for i := range open {
		if a := &open[i]; len(group) < resolveGroup && a.Aircraft[0].Class == rules.ClassManned {
			group = append(group, a)
		}
	}
	// The values of the tracks found, as they are when asked.
	values := func(near [][]*track.State) [][]track.State {
		out := make([][]track.State, len(near))
		for a, tracks := range near {
			for _, st := range tracks {
				out[a] = append(out[a], *st)
			}
		}
		return out
	}
	near, wantMatter := s.nearAlertsMatter(rv, group, now)
	want := values(near)
	// Each is the engine's track of its aircraft.
	live := map[track.Key]track.State{}
	for _, st := range s.tac.eng.Load().States() {
		live[st.Key()] = st
	}
	others := 0
	for a, tracks := range want {
		for _, st := range tracks {
			if l, ok := live[st.Key()]; !ok || !reflect.DeepEqual(st, l) {
				t.Fatalf("alert %s: near track of %v is not the engine's", group[a].ID, st.Key())
			}
		}
		others += len(tracks) - len(group[a].Aircraft)
	}
	if others < 100 {
		t.Fatalf("%d tracks near the alerts besides their own: too few to test", others)
	}
	// Every aircraft reports again half a second later, 300 m higher and
	// 2 km east, flying the other way.
	moved := map[string][]PositionReport{}
	for _, st := range live {
		p := geo.NewFrame(st.Pos).FromENU(geo.ENU{EastM: 2_000, UpM: 300})
		moved[st.Party] = append(moved[st.Party], PositionReport{Aircraft: st.Aircraft, Callsign: st.Callsign, Class: st.Class, Time: st.Time.Add(500 * time.Millisecond),
			LatDeg: p.LatDeg, LonDeg: p.LonDeg, AltM: p.AltM, VelEastMps: -st.VelEastMps, VelNorthMps: -st.VelNorthMps, VelUpMps: -st.VelUpMps})
	}
	got, gotMatter := s.nearAlertsBy(rv, group, now, func(keys []track.Key, centresOf func([]*track.State) ([][3]float64, radiusFunc), keep func(*track.State)) {
		s.tac.eng.Load().NearOf(keys, now, centresOf, keep)
		for party, rs := range moved {
			if err := ingest(s, party, time.Minute, rs...); err != nil {
				t.Fatal(err)
			}
		}
	})
	later, _ := s.nearAlertsMatter(rv, group, now)
	if !reflect.DeepEqual(values(got), want) || !reflect.DeepEqual(gotMatter, wantMatter) {
		t.Fatal("the tracks near the alerts are not those of the moment of the read")
	}
	if reflect.DeepEqual(values(later), want) {
		t.Fatal("the reports after the read changed nothing near the alerts: nothing is tested")
	}
}

// resolveAmong is resolveShared resolving each aircraft of the alert
// against every track of near, whatever it can matter to, and sharing no
// bands: what the tests compare the resolution against what matters
// with.
func (s *Service) resolveAmong(rv *resolver, a *alert.Alert, now time.Time, near []*track.State) Resolution {
	return s.resolveShared(rv, a, now, near, nil, nil)
}

// visibleAmong is visibleWhereMatters asking the picture about every
// track of near: whether the party of one of the alert's aircraft may
// see near[i] at now (need to know).
func (s *Service) visibleAmong(near []*track.State, a *alert.Alert, now time.Time) func(party string, i int) bool {
	return s.visibleWhereMatters(near, nil, a, now)
}

// checkAgainstEveryAircraft compares got, the service's resolution of the
// conflict alert a at now, with the same computation against every live
// aircraft (all) the party of each aircraft may see, with no reach
// applied.
func checkAgainstEveryAircraft(t testing.TB, s *Service, rv *resolver, a *alert.Alert, now time.Time, all []track.State, got Resolution) {
	t.Helper()
	allPtrs := make([]*track.State, len(all))
	for i := range all {
		allPtrs[i] = &all[i]
	}
	visible := s.visibleAmong(allPtrs, a, now)
	var own [2]*track.State
	for n, ac := range a.Aircraft {
		for i := range all {
			if all[i].Party == ac.Party && all[i].Aircraft == ac.Aircraft {
				own[n] = &all[i]
			}
		}
	}
	// Every aircraft the party sees, in each aircraft's own frame.
	for n := range 2 {
		me := own[n]
		fr := geo.NewFrame(geo.LLA{LatDeg: me.Pos.LatDeg, LonDeg: me.Pos.LonDeg})
		var intruders []resolve.Intruder
		for i := range all {
			if all[i].Key() != me.Key() && visible(me.Party, i) {
				intruders = append(intruders, resolve.Intruder{Aircraft: inFrame(fr, &all[i], now), Sep: rv.separation(me, &all[i])})
			}
		}
		cfg, _ := rv.limits(me.Class)
		want := resolve.Compute(inFrame(fr, me, now), intruders, cfg)
		if !reflect.DeepEqual(got.Aircraft[n].Bands, want) {
			t.Fatalf("alert %s, aircraft %s: bands\n%+v\nagainst every aircraft\n%+v", a.ID, me.Aircraft, got.Aircraft[n].Bands, want)
		}
	}
	// The coordinated suggestion, in the pair's frame.
	fr := geo.NewFrame(midpoint(own[0], own[1], now))
	var parties [2]resolve.Party
	for n := range 2 {
		me, other := own[n], own[1-n]
		parties[n].Aircraft = inFrame(fr, me, now)
		for i := range all {
			if k := all[i].Key(); k != me.Key() && k != other.Key() && visible(me.Party, i) {
				parties[n].Others = append(parties[n].Others, resolve.Intruder{Aircraft: inFrame(fr, &all[i], now), Sep: rv.separation(me, &all[i])})
			}
		}
	}
	_, ka := rv.limits(own[0].Class)
	_, kb := rv.limits(own[1].Class)
	want, ok := resolve.Suggest(&parties[0], &parties[1], rv.separation(own[0], own[1]), ka, kb)
	if ok != (got.Aircraft[0].Suggestion != nil) || ok && (got.Aircraft[0].Suggestion.TurnDeg != want.A.TurnDeg ||
		got.Aircraft[0].Suggestion.ClimbM != want.A.ClimbM || got.Aircraft[1].Suggestion.TurnDeg != want.B.TurnDeg || got.Aircraft[1].Suggestion.ClimbM != want.B.ClimbM) {
		t.Fatalf("alert %s: suggestions %+v %+v, against every aircraft %+v (%v)", a.ID, got.Aircraft[0].Suggestion, got.Aircraft[1].Suggestion, want, ok)
	}
}

// mixedAirspace reports 400 aircraft of two parties around Paris: drones
// within 3 km of the centre at 30-180 m, and one in five manned aircraft
// within 30 km at 100-1,600 m, their reports up to 3 s apart.
func mixedAirspace(t testing.TB, s *Service) {
	t.Helper()
	rng := rand.New(rand.NewPCG(17, 3))
	base := time.Now().Add(-3 * time.Second)
	centre := geo.LLA{LatDeg: 48.86, LonDeg: 2.35}
	f := geo.NewFrame(centre)
	for i := range 400 {
		class, speed, alt := rules.ClassUAS, 5+rng.Float64()*45, 30+rng.Float64()*150
		spread := 3_000.0
		if i%5 == 0 {
			class, speed, alt = rules.ClassManned, 40+rng.Float64()*220, 100+rng.Float64()*1500
			spread = 30_000
		}
		heading := rng.Float64() * 2 * math.Pi
		p := f.FromENU(geo.ENU{EastM: (rng.Float64()*2 - 1) * spread, NorthM: (rng.Float64()*2 - 1) * spread})
		r := PositionReport{
			Aircraft: fmt.Sprintf("A%03d", i), Callsign: fmt.Sprintf("CS%03d", i), Class: class,
			Time:   base.Add(time.Duration(rng.IntN(3000)) * time.Millisecond),
			LatDeg: p.LatDeg, LonDeg: p.LonDeg, AltM: alt,
			VelEastMps: speed * math.Sin(heading), VelNorthMps: speed * math.Cos(heading), VelUpMps: (rng.Float64() - 0.5) * 4,
		}
		if err := ingest(s, []string{"coalition", "russia"}[i%2], 10*time.Second, r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResolutionSuperseded: a newer transition of an alert supersedes the
// resolution of the one before it, which the commit then takes only if
// ready and never waits for; the alert's events carry the newest.
func TestResolutionSuperseded(t *testing.T) {
	s, _ := newFaultyService(t)
	var tac tactical
	// The older is never computed, and its deadline is far: a commit
	// that waited for it would not return within the hang guard below.
	older := &pendingResolution{done: make(chan struct{}), deadline: time.Now().Add(time.Hour)}
	newer := &pendingResolution{done: make(chan struct{}), res: &Resolution{AlertID: "A1"}}
	close(newer.done)
	tac.supersede("A1", older)
	if older.superseded.Load() {
		t.Fatal("the only resolution of an alert is superseded")
	}
	tac.supersede("A1", newer)
	if !older.superseded.Load() || newer.superseded.Load() {
		t.Fatalf("superseded: older %v, newer %v", older.superseded.Load(), newer.superseded.Load())
	}
	taken := make(chan map[string]*Resolution, 1)
	go func() {
		taken <- s.resolutions([]queued{{tr: alert.Transition{ID: "A1"}, res: older}, {tr: alert.Transition{ID: "A1"}, res: newer}})
	}()
	var got map[string]*Resolution
	select {
	case got = <-taken:
	case <-time.After(time.Minute): // only a hang guard: a loaded -race run is slow
		t.Fatal("the commit waits for a superseded resolution")
	}
	if older.late.Load() {
		t.Fatal("the commit waited for a superseded resolution and gave up on it")
	}
	if got["A1"] != newer.res {
		t.Fatalf("the alert's events carry %+v, want the newest", got["A1"])
	}
	// A transition without a resolution (the alert cleared) supersedes
	// the last one too, and forgets the alert.
	tac.supersede("A1", nil)
	if !newer.superseded.Load() || len(tac.latest) != 0 {
		t.Fatalf("after the clear: newer superseded %v, %d alerts remembered", newer.superseded.Load(), len(tac.latest))
	}
}

// TestResolutionWithinClassLimits: each aircraft is resolved within the
// performance limits its class has in the rules. Manned aircraft keep
// DAIDALUS's configuration to the last bit (the reference encounters are
// computed with it); a drone's bands span its class's ground speeds,
// vertical speeds and altitudes, and its suggestions climb or descend in
// its steps, no further than its largest change, within its altitudes.
// The limits come from the rules in force: other rules, other limits.
func TestResolutionWithinClassLimits(t *testing.T) {
	s, _ := newFaultyService(t)
	rv := s.resolverFor(s.Rules())
	cfg, k := rv.limits(rules.ClassManned)
	if !reflect.DeepEqual(*cfg, resolve.DefaultConfig()) || !reflect.DeepEqual(*k, resolve.DefaultKinematics()) {
		t.Fatalf("manned limits %+v %+v, want DAIDALUS's", *cfg, *k)
	}
	mixedAirspace(t, s)
	now := s.now().Add(2 * time.Second)
	spans := func(rs []resolve.Range, lo, hi float64) bool {
		return len(rs) > 0 && rs[0].Low == lo && rs[len(rs)-1].High == hi
	}
	byClass := map[string]int{}
	for _, a := range s.tac.eng.Load().Alerts() {
		if a.Kind != alert.KindConflict {
			continue
		}
		res := s.resolve(&a, now)
		for n, ar := range res.Aircraft {
			class := a.Aircraft[n].Class
			p := s.Rules().PerformanceFor(class)
			b := ar.Bands
			if !spans(b.GsMps, p.MinGroundSpeedMps, p.MaxGroundSpeedMps) || !spans(b.VsMps, p.MinVerticalSpeedMps, p.MaxVerticalSpeedMps) ||
				!spans(b.AltM, p.MinAltM, p.MaxAltM) {
				t.Fatalf("alert %s, %s aircraft %s: bands %+v beyond or short of %+v", a.ID, class, ar.Aircraft, b, p)
			}
			m := ar.Suggestion
			if m == nil {
				continue
			}
			byClass[class]++
			steps := math.Abs(m.ClimbM) / p.AltStepM
			// The suggestion's altitude is in the aircraft's own frame,
			// its bounds were checked in the pair's: a metre apart at
			// most within the 30 km of this airspace.
			if m.TurnDeg < 0 || m.TurnDeg > 90 || math.Abs(m.ClimbM) > p.MaxClimbM || math.Abs(steps-math.Round(steps)) > 1e-6 ||
				m.ClimbM != 0 && (m.AltM < p.MinAltM-1 || m.AltM > p.MaxAltM+1) {
				t.Fatalf("alert %s, %s aircraft %s: suggestion %+v beyond %+v", a.ID, class, ar.Aircraft, *m, p)
			}
		}
	}
	// (Drones here turn: at 15°/s a turn is their cheapest manoeuvre;
	// their climbs are checked in package resolve.)
	if byClass[rules.ClassUAS] < 20 || byClass[rules.ClassManned] < 5 {
		t.Fatalf("suggestions by class %v: too few to check", byClass)
	}
	// Other rules, other limits.
	r := s.Rules()
	r.Version++
	r.Performance = slices.Clone(r.Performance)
	r.Performance[1].MaxAltM, r.Performance[1].MaxClimbM = 120, 40
	cfg, k = s.resolverFor(r).limits(rules.ClassUAS)
	if cfg.MaxAltM != 120 || k.MaxAltM != 120 || k.MaxClimbM != 40 {
		t.Fatalf("limits of the new rules: %+v %+v", *cfg, *k)
	}
}

// TestResolutionCentredOnEachAircraftsOwnTrack: the two reports of a pair
// of drones are 15 s apart, and a third drone stands still where the
// earlier-reported one can reach it with a faster ground speed. The
// search for the traffic that matters must start from where each
// aircraft is now, not from the alert's copy of it at the alert's time
// (the later report): from there, the third drone was out of reach, and
// the faster ground speeds that meet it were called free.
func TestResolutionCentredOnEachAircraftsOwnTrack(t *testing.T) {
	s, _ := newFaultyService(t)
	now := s.now()
	earlier := now.Add(-15 * time.Second)
	spot := geo.LLA{LatDeg: 48.86, LonDeg: 2.35, AltM: 100}
	f := geo.NewFrame(spot)
	east := func(m float64) geo.LLA {
		p := f.FromENU(geo.ENU{EastM: m})
		p.AltM = spot.AltM
		return p
	}
	x := east(3_550)
	reports := []struct {
		party string
		r     PositionReport
	}{
		{"coalition", PositionReport{Aircraft: "A", Callsign: "A", Class: rules.ClassUAS, Time: earlier, LatDeg: spot.LatDeg, LonDeg: spot.LonDeg, AltM: spot.AltM, VelEastMps: 40}},
		{"russia", PositionReport{Aircraft: "B", Callsign: "B", Class: rules.ClassUAS, Time: now, LatDeg: spot.LatDeg, LonDeg: spot.LonDeg, AltM: spot.AltM, VelEastMps: 50}},
		{"coalition", PositionReport{Aircraft: "X", Callsign: "X", Class: rules.ClassUAS, Time: now, LatDeg: x.LatDeg, LonDeg: x.LonDeg, AltM: x.AltM}},
	}
	for _, r := range reports {
		if err := ingest(s, r.party, 10*time.Second, r.r); err != nil {
			t.Fatal(err)
		}
	}
	var pair *alert.Alert
	for _, a := range s.tac.eng.Load().Alerts() {
		if a.Kind == alert.KindConflict && len(a.Aircraft) == 2 {
			pair = &a
		}
	}
	if pair == nil {
		t.Fatal("no alert between A and B")
	}
	rv := s.resolverFor(s.Rules())
	got := s.resolve(pair, now)
	checkAgainstEveryAircraft(t, s, rv, pair, now, s.tac.eng.Load().States(), got)
	// The third drone shows in A's bands: some ground speed meets it.
	for _, ac := range got.Aircraft {
		if ac.Aircraft != "A" {
			continue
		}
		red := false
		for _, b := range ac.Bands.GsMps {
			red = red || b.Region != resolve.RegionNone
		}
		if !red {
			t.Fatalf("A's ground speed bands %+v: every speed free, though faster ones meet X", ac.Bands.GsMps)
		}
	}
}

// TestResolutionMetrics: the resolutions of alert transitions are counted
// by outcome with the CPU time they took, and a transition committed
// without its resolution is counted late (what an operator watches for:
// events that say what the conflict is and not how to get clear).
func TestResolutionMetrics(t *testing.T) {
	s, _ := newFaultyService(t)
	m := s.Metrics()
	computed := m.Resolutions.WithLabelValues("computed")
	mixedAirspace(t, s)
	if n := counterValue(t, computed); n == 0 {
		t.Fatal("conflicts raised, no resolution counted as computed")
	}
	if _, ok := cputime.Thread(); ok && counterValue(t, m.ResolutionCPUSeconds) <= 0 {
		t.Fatal("resolutions computed in no CPU time")
	}

	// On a service of its own, with no resolution of traffic still
	// running or waiting its turn: the pool busy, a transition superseded
	// before its turn is skipped.
	s, _ = newFaultyService(t)
	m = s.Metrics()
	computed, skipped := m.Resolutions.WithLabelValues("computed"), m.Resolutions.WithLabelValues("skipped")
	tr := alert.Transition{ID: "A1", Kind: alert.KindConflict, State: alert.StateRaised}
	for range cap(s.resolving) {
		s.resolving <- struct{}{}
	}
	ps := s.startResolutions([]alert.Transition{tr})
	ps[0].superseded.Store(true)
	for range cap(s.resolving) {
		<-s.resolving
	}
	<-ps[0].done
	if got := counterValue(t, skipped); got != 1 || counterValue(t, computed) != 0 || ps[0].res != nil {
		t.Fatalf("superseded before its turn: skipped %v, computed %v, resolution %v", got, counterValue(t, computed), ps[0].res)
	}

	// A resolution never ready: the commit goes on without it, late.
	never := &pendingResolution{done: make(chan struct{})}
	if got := s.resolutions([]queued{{tr: tr, res: never}}); got["A1"] != nil {
		t.Fatalf("a resolution never ready was taken: %+v", got["A1"])
	}
	if got := counterValue(t, m.ResolutionsLate); got != 1 {
		t.Fatalf("late %v, want 1", got)
	}
	// The commit tried again (after a store failure): the same late
	// resolution is not counted twice.
	if got := s.resolutions([]queued{{tr: tr, res: never}}); got["A1"] != nil {
		t.Fatalf("a resolution never ready was taken on the retry: %+v", got["A1"])
	}
	if got := counterValue(t, m.ResolutionsLate); got != 1 {
		t.Fatalf("late %v after the retry, want 1", got)
	}
}

// counterValue is the value of counter c.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestEventResolutionsAreTheOnDemandOnes: the resolutions the pool
// computes for the transitions of a commit (startResolutions: groups of
// alerts searched in one pass, the tracks lent out of buffers the next
// search reuses, the bands of an aircraft shared within a group) are
// those asked for on demand of each alert alone, at the same time, in a
// city's traffic.
func TestEventResolutionsAreTheOnDemandOnes(t *testing.T) {
	s, open, now := trafficAlerts(t, "metro", 1500)
	now = now.Add(3 * time.Second)
	s.now = func() time.Time { return now }
	s.cfg.WithoutResolution = false
	if len(open) < 3*resolveGroup {
		t.Fatalf("only %d conflict alerts: too few for several groups", len(open))
	}
	ps := s.startResolutions(open)
	for i, p := range ps {
		<-p.done
		if p.res == nil {
			t.Fatalf("alert %s: no resolution computed", open[i].ID)
		}
		if want := s.resolve(&open[i], now); !reflect.DeepEqual(*p.res, want) {
			t.Fatalf("alert %s: resolved for the event\n%+v\non demand\n%+v", open[i].ID, *p.res, want)
		}
	}
}
