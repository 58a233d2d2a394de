package sim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

func builtinPlan(t *testing.T, seed uint64) *Plan {
	t.Helper()
	s, err := Builtin("syria-2015")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan(seed)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuiltinScenarioIsComplete(t *testing.T) {
	if names := BuiltinNames(); !slices.Contains(names, "syria-2015") {
		t.Fatalf("built-in scenarios %v", names)
	}
	p := builtinPlan(t, 1)
	sc := p.Scenario
	types := map[string]int{}
	parties := map[string]int{}
	for _, f := range p.Flights {
		types[f.Type]++
		parties[f.Party]++
	}
	if len(parties) != 2 || parties["coalition"] == 0 || parties["russia"] == 0 {
		t.Errorf("flights per party %v", parties)
	}
	// Tankers, ISR and transports of both kinds must be flown.
	for _, ty := range []string{"KC-135R", "RC-135V", "MQ-9A", "C-17A", "Il-20M", "Il-76MD", "Su-24M", "Su-34"} {
		if types[ty] == 0 {
			t.Errorf("no flight of type %s", ty)
		}
	}
	if len(sc.Encounters) < 3 {
		t.Errorf("%d designed encounters, want a handful", len(sc.Encounters))
	}
	noAck := 0
	for _, party := range sc.Parties {
		noAck += len(party.NoAck)
	}
	if noAck == 0 {
		t.Error("no sortie is left unacknowledged: the demo would show no escalation")
	}
	if p.EndS-sc.DemoStartS < 6*3600 {
		t.Errorf("the day ends %.0f s after the demo start", p.EndS-sc.DemoStartS)
	}
}

func TestPlanIsDeterministicWithASeed(t *testing.T) {
	a, b, c := builtinPlan(t, 7), builtinPlan(t, 7), builtinPlan(t, 8)
	differs := false
	for i, fa := range a.Flights {
		fb, fc := b.Flights[i], c.Flight(fa.ID)
		for ts := fa.StartS; ts < fa.EndS; ts += 600 {
			sa, _ := fa.At(ts)
			sb, _ := fb.At(ts)
			sc, okc := fc.At(ts)
			if sa != sb {
				t.Fatalf("%s at %.0f: %+v then %+v with the same seed", fa.ID, ts, sa, sb)
			}
			fixed := a.Scenario.sortie(fa.Sortie).Fixed
			if fixed && (!okc || sc != sa) {
				t.Fatalf("fixed sortie %s moved with the seed", fa.ID)
			}
			if !fixed && sc != sa {
				differs = true
			}
		}
	}
	if !differs {
		t.Error("another seed changed nothing")
	}
}

// TestKinematicsAreConsistent checks every flight of the day: it takes off
// from and lands at a base, stays below its ceiling and above ground, and
// its reported velocity is the derivative of its position.
func TestKinematicsAreConsistent(t *testing.T) {
	p := builtinPlan(t, 3)
	types := map[string]AircraftType{}
	for _, ty := range p.Scenario.AircraftTypes {
		types[ty.Name] = ty
	}
	bases := map[string]Base{}
	for _, b := range p.Scenario.Bases {
		bases[b.Name] = b
	}
	for _, f := range p.Flights {
		so := p.Scenario.sortie(f.Sortie)
		home, land := bases[so.Base], bases[so.Base]
		if so.LandAt != "" {
			land = bases[so.LandAt]
		}
		first, _ := f.At(f.StartS)
		last, _ := f.At(f.EndS)
		if d := geo.GeodesicM(first.Pos, geo.LLA{LatDeg: home.LatDeg, LonDeg: home.LonDeg}); d > 1 || first.Pos.AltM != home.ElevM {
			t.Errorf("%s takes off %.0f m from %s at %.0f m", f.ID, d, home.Name, first.Pos.AltM)
		}
		if d := geo.GeodesicM(last.Pos, geo.LLA{LatDeg: land.LatDeg, LonDeg: land.LonDeg}); d > 1 || math.Abs(last.Pos.AltM-land.ElevM) > 1 {
			t.Errorf("%s lands %.0f m from %s at %.0f m", f.ID, d, land.Name, last.Pos.AltM)
		}
		if _, ok := f.At(f.StartS - 1); ok {
			t.Errorf("%s airborne before take-off", f.ID)
		}
		ceiling := types[f.Type].CeilingM
		const dt = 1.0
		for ts := f.StartS; ts+dt <= f.EndS; ts += 97 {
			s0, _ := f.At(ts)
			s1, _ := f.At(ts + dt)
			if s0.Pos.AltM > ceiling || s0.Pos.AltM < 0 {
				t.Fatalf("%s at %.0f s: altitude %.0f m", f.ID, ts, s0.Pos.AltM)
			}
			// Finite difference in the local frame vs the reported velocity,
			// except across a waypoint, where the aircraft turns at once.
			if math.Hypot(s1.VelEastMps-s0.VelEastMps, s1.VelNorthMps-s0.VelNorthMps) > 3 {
				continue
			}
			fr := geo.NewFrame(s0.Pos)
			d := fr.ToENU(s1.Pos)
			vx, vy := (s0.VelEastMps+s1.VelEastMps)/2, (s0.VelNorthMps+s1.VelNorthMps)/2
			if math.Hypot(d.EastM/dt-vx, d.NorthM/dt-vy) > 2 {
				t.Fatalf("%s at %.0f s: moved (%.1f, %.1f) m in %v s, velocity says (%.1f, %.1f)",
					f.ID, ts, d.EastM, d.NorthM, dt, vx, vy)
			}
			if math.Abs((s1.Pos.AltM-s0.Pos.AltM)/dt-s0.VelUpMps) > 0.5 && s0.VelUpMps == s1.VelUpMps {
				t.Fatalf("%s at %.0f s: climbed %.1f m in %v s, vertical velocity %.1f", f.ID, ts, s1.Pos.AltM-s0.Pos.AltM, dt, s0.VelUpMps)
			}
		}
	}
}

func TestTimedWaypointsAreFlownThrough(t *testing.T) {
	p := builtinPlan(t, 1)
	n := 0
	for _, f := range p.Flights {
		for _, w := range p.Scenario.sortie(f.Sortie).Waypoints {
			if w.AtS == nil {
				continue
			}
			n++
			st, ok := f.At(*w.AtS)
			if !ok {
				t.Fatalf("%s not airborne at %.0f", f.ID, *w.AtS)
			}
			if d := geo.GeodesicM(st.Pos, geo.LLA{LatDeg: w.LatDeg, LonDeg: w.LonDeg}); d > 5 {
				t.Errorf("%s is %.0f m from its waypoint at %.0f s", f.ID, d, *w.AtS)
			}
		}
	}
	if n == 0 {
		t.Fatal("no timed waypoint in the scenario")
	}
}

// TestVolumesContainTheFlight: flying as planned never leaves the declared
// volumes (the strategic picture and conformance rely on it).
func TestVolumesContainTheFlight(t *testing.T) {
	p := builtinPlan(t, 5)
	for _, f := range p.Flights {
		vols := f.Volumes()
		if len(vols) == 0 {
			t.Fatalf("%s declares nothing", f.ID)
		}
		for _, v := range vols {
			if 2*v.RadiusM > rules.Default().MaxFootprintM || v.ToS-v.FromS > rules.Default().MaxWindowS {
				t.Fatalf("%s volume %d is beyond the rules' limits: %+v", f.ID, v.Index, v)
			}
		}
		for ts := f.StartS; ts <= f.EndS; ts += 5 {
			st, _ := f.At(ts)
			inside := false
			for _, v := range vols {
				d := geo.GeodesicM(st.Pos, geo.LLA{LatDeg: v.LatDeg, LonDeg: v.LonDeg})
				if d < v.RadiusM && st.Pos.AltM >= v.AltLowerM && st.Pos.AltM <= v.AltUpperM && ts >= v.FromS && ts <= v.ToS {
					inside = true
					break
				}
			}
			if !inside {
				t.Fatalf("%s at %.0f s (%+v) is outside all of its %d volumes", f.ID, ts, st.Pos, len(vols))
			}
		}
	}
}

// pairAt runs the project's pair math on two flights at scenario time ts, in
// the local frame at their midpoint, with the entry of the rules'
// separation table for their classes; level is the level of the entry it
// finds (0 none).
func pairAt(a, b *Flight, ts float64, r rules.Rules) (res detect.PairResult, level string, ok bool) {
	sa, oka := a.At(ts)
	sb, okb := b.At(ts)
	if !oka || !okb {
		return detect.PairResult{}, "", false
	}
	mid := geo.LLA{LatDeg: (sa.Pos.LatDeg + sb.Pos.LatDeg) / 2, LonDeg: (sa.Pos.LonDeg + sb.Pos.LonDeg) / 2,
		AltM: (sa.Pos.AltM + sb.Pos.AltM) / 2}
	fr := geo.NewFrame(mid)
	vec := func(s State) (detect.Vec3, detect.Vec3) {
		p := fr.ToENU(s.Pos)
		v := fr.VelocityFrom(s.Pos, geo.ENU{EastM: s.VelEastMps, NorthM: s.VelNorthMps, UpM: s.VelUpMps})
		return detect.Vec3{X: p.EastM, Y: p.NorthM, Z: p.UpM}, detect.Vec3{X: v.EastM, Y: v.NorthM, Z: v.UpM}
	}
	pa, va := vec(sa)
	pb, vb := vec(sb)
	e := detect.ParamsFrom(r).Table.ForNames(a.Class, b.Class)
	lv, _, loss := e.Grade(pb.Sub(pa), vb.Sub(va), 0)
	res = e.Levels[0].Detector.Detect(pa, va, pb, vb, e.LookaheadS)
	res.Loss = loss
	if lv > 0 {
		level = e.Levels[lv-1].Name
	}
	return res, level, true
}

// TestDesignedEncountersLoseSeparation checks every designed encounter with
// the pair math: if nobody reacts the two aircraft really come within the
// minima, and the prediction in the minutes before goes through every alert
// level in order.
func TestDesignedEncountersLoseSeparation(t *testing.T) {
	r := rules.Default()
	p := builtinPlan(t, 1)
	for _, e := range p.Scenario.Encounters {
		a, b := p.Flight(e.A), p.Flight(e.B)
		if a == nil || b == nil || a.Party == b.Party {
			t.Fatalf("encounter %s x %s: flights missing or of one party", e.A, e.B)
		}
		// Actual loss of separation near at_s.
		lost := false
		for ts := e.AtS - 60; ts <= e.AtS+60; ts++ {
			res, _, ok := pairAt(a, b, ts, r)
			if ok && res.Conflict && res.TInS == 0 {
				lost = true
				break
			}
		}
		if !lost {
			t.Errorf("%s x %s: no loss of separation around %.0f s", e.A, e.B, e.AtS)
			continue
		}
		// Levels, as the prediction sees them from 6 minutes before: they
		// rise to the most severe of the pair's entry, never falling back
		// (DO-365's preventive is skipped when the pair is level: the
		// corrective volume is entered at the same moment).
		var seen []string
		for ts := e.AtS - 360; ts <= e.AtS; ts += 5 {
			_, lv, ok := pairAt(a, b, ts, r)
			if !ok || lv == "" {
				continue
			}
			if len(seen) == 0 || seen[len(seen)-1] != lv {
				seen = append(seen, lv)
			}
		}
		sep := r.SeparationFor(classOr(a.Class), classOr(b.Class))
		var want []string
		for _, l := range sep.Levels {
			want = append(want, l.Name)
		}
		rising := len(seen) > 0 && seen[len(seen)-1] == want[len(want)-1]
		for i := 1; i < len(seen); i++ {
			rising = rising && r.LevelRank(seen[i]) > r.LevelRank(seen[i-1])
		}
		if !rising || (sep.Detector.Kind == rules.DetectorCylinder && fmt.Sprint(seen) != fmt.Sprint(want)) {
			t.Errorf("%s x %s: levels over the last 6 minutes %v, want a rise through %v", e.A, e.B, seen, want)
		}
		if e.AtS-p.Scenario.DemoStartS < r.LookaheadS || e.AtS-p.Scenario.DemoStartS > 1200 {
			t.Errorf("%s x %s at %.0f s: not within the demo's first minutes", e.A, e.B, e.AtS)
		}
	}
}

func TestLoadNamesTheFieldAtFault(t *testing.T) {
	good, err := builtin.ReadFile("scenarios/syria-2015.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ from, to, field string }{
		{`"base": "Incirlik"`, `"base": "Nowhere"`, ".base"},
		{`"type": "Su-34"`, `"type": "Su-57"`, ".type"},
		{`"at_s": 22020}`, `"at_s": 21300}`, "sorties[0].waypoints[0].at_s"},
		{`"report_every_s": 5`, `"report_every_s": 0`, "report_every_s"},
		{`"lat": 37.002`, `"lat": 97.002`, "bases[0].lat"},
		{`"no_ack": ["RU-SU24-STRIKE"]`, `"no_ack": ["RU-NOPE"]`, "parties[1].no_ack[0]"},
	}
	for _, c := range cases {
		bad := strings.Replace(string(good), c.from, c.to, 1)
		if bad == string(good) {
			t.Fatalf("case %q does not apply", c.from)
		}
		_, err := Load(strings.NewReader(bad))
		var fe *fielderr.Error
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s -> %s: err %v, want one naming %s", c.from, c.to, err, c.field)
		}
	}
	if _, err := Load(strings.NewReader(`{"name":"x","typo":1}`)); err == nil || !strings.Contains(err.Error(), "typo") {
		t.Errorf("unknown field: %v", err)
	}
}

// TestLoadRefusesWhatTheServerRefuses: a scenario whose flights would
// send reports the server refuses (an altitude or speed beyond a report's
// bounds, an aircraft id or callsign too long or unprintable, a party
// name the server does not take) is refused when loaded, naming the
// field; it loaded, and the run's reports were refused one by one.
func TestLoadRefusesWhatTheServerRefuses(t *testing.T) {
	good := strings.Replace(unreportableScenarios[0].doc, "1e7", "10000", 2)
	if _, err := Load(strings.NewReader(good)); err != nil {
		t.Fatalf("the scenario within the bounds: %v", err)
	}
	for _, c := range unreportableScenarios {
		_, err := Load(strings.NewReader(c.doc))
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: err %v, want one naming %s", c.doc, err, c.field)
		}
	}
}

// unreportableScenarios are scenarios whose flights report what the
// server refuses, with the field Load names.
var unreportableScenarios = func() []struct{ doc, field string } {
	doc := func(party, elev, ceiling, cruise, climb, maxMps, alt, id, callsign, repeat string) string {
		return `{"name":"x","report_every_s":5,"parties":[{"name":` + party + `},{"name":"b"}],"bases":[{"name":"B","party":` + party + `,"lat":35,"lon":36,"elev_m":` + elev + `}],` +
			`"aircraft_types":[{"name":"t","cruise_mps":` + cruise + `,"climb_mps":` + climb + `,"ceiling_m":` + ceiling + `,"max_mps":` + maxMps + `}],` +
			`"sorties":[{"id":` + id + `,"callsign":` + callsign + `,"party":` + party + `,"type":"t","base":"B","start_s":10,"alt_m":` + alt + repeat + `,"waypoints":[{"lat":35.5,"lon":36.5}]}]}`
	}
	long := func(n int) string { return `"` + strings.Repeat("x", n) + `"` }
	return []struct{ doc, field string }{
		{doc(`"a"`, "0", "1e7", "200", "20", "0", "1e7", `"s"`, `""`, ""), "aircraft_types[0].ceiling_m"},
		{doc(`"a"`, "1e6", "10000", "200", "20", "0", "5000", `"s"`, `""`, ""), "bases[0].elev_m"},
		{doc(`"a"`, "0", "10000", "5000", "20", "0", "5000", `"s"`, `""`, ""), "aircraft_types[0].cruise_mps"},
		{doc(`"a"`, "0", "10000", "200", "5000", "0", "5000", `"s"`, `""`, ""), "aircraft_types[0].cruise_mps"},
		{doc(`"a"`, "0", "10000", "200", "20", "4000", "5000", `"s"`, `""`, ""), "aircraft_types[0].max_mps"},
		{doc(`"a"`, "0", "10000", "200", "20", "0", "5000", long(65), `"C"`, ""), "sorties[0].id"},
		{doc(`"a"`, "0", "10000", "200", "20", "0", "5000", long(62), `"C"`, `,"repeat":{"count":10,"every_s":60}`), "sorties[0].id"},
		{doc(`"a"`, "0", "10000", "200", "20", "0", "5000", `"s\u202e"`, `"C"`, ""), "sorties[0].id"},
		{doc(`"a"`, "0", "10000", "200", "20", "0", "5000", long(17), `""`, ""), "sorties[0].callsign"},
		{doc(`"a"`, "0", "10000", "200", "20", "0", "5000", `"s"`, long(16), `,"repeat":{"count":2,"every_s":60}`), "sorties[0].callsign"},
		{doc(`"a"`, "0", "10000", "200", "20", "0", "5000", `"s"`, `"C\u0000"`, ""), "sorties[0].callsign"},
		{doc(`"A"`, "0", "10000", "200", "20", "0", "5000", `"s"`, `""`, ""), "parties[0].name"},
		// The last waypoint 50 m from the base, reached still climbing
		// (at 5 m/s, to 3,500 m): the descent was squeezed into a
		// quarter of a second.
		{strings.Replace(doc(`"a"`, "0", "10000", "200", "5", "0", "5000", `"s"`, `""`, ""), `{"lat":35.5,"lon":36.5}`, `{"lat":35.5,"lon":36.5},{"lat":35.0005,"lon":36}`, 1), "sorties[0].waypoints[1]"},
	}
}()

// TestDescentAtTheTypesRate: a flight home shorter than the descent
// begins the descent before it (on the last waypoint's leg), at the
// type's rate: no report of the flight descends faster than climb_mps.
func TestDescentAtTheTypesRate(t *testing.T) {
	const doc = `{"name":"x","report_every_s":5,"parties":[{"name":"a"},{"name":"b"}],"bases":[{"name":"B","party":"a","lat":35,"lon":36}],` +
		`"aircraft_types":[{"name":"t","cruise_mps":200,"climb_mps":20,"ceiling_m":10000}],` +
		`"sorties":[{"id":"s","party":"a","type":"t","base":"B","start_s":10,"alt_m":5000,"fixed":true,"waypoints":[{"lat":36,"lon":36},{"lat":35.05,"lon":36}]}]}`
	s, err := Load(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan(1)
	if err != nil {
		t.Fatal(err)
	}
	fl := p.Flights[0]
	last, _ := fl.At(fl.EndS)
	for ts := fl.StartS; ts <= fl.EndS; ts += 0.5 {
		st, _ := fl.At(ts)
		if math.Abs(st.VelUpMps) > 20*(1+1e-9) {
			t.Fatalf("at %.1f s of %.1f..%.1f: %.1f m/s up, the type climbs and descends at 20", ts, fl.StartS, fl.EndS, st.VelUpMps)
		}
	}
	if last.Pos.AltM != 0 {
		t.Fatalf("lands at %.1f m, the base is at 0", last.Pos.AltM)
	}
}

// TestLoadRefusesEndlessTime: a report interval that does not advance the
// time, or flights that land ages from now, would keep a run (its steps,
// the sampling of the volumes) looping without end; they are refused,
// naming the field.
func TestLoadRefusesEndlessTime(t *testing.T) {
	const doc = `{"name":"x","report_every_s":5,"parties":[{"name":"a"},{"name":"b"}],"bases":[{"name":"B","party":"a","lat":35,"lon":36}],` +
		`"aircraft_types":[{"name":"t","cruise_mps":200,"climb_mps":20,"ceiling_m":10000}],` +
		`"sorties":[{"id":"s","party":"a","type":"t","base":"B","start_s":0,"alt_m":5000,"duration_s":3600,"orbit":{"lat":35.5,"lon":36.5,"axis_deg":10,"length_m":0,"width_m":2000}}]}`
	if _, err := Load(strings.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	const orbit = `"duration_s":3600,"orbit":{"lat":35.5,"lon":36.5,"axis_deg":10,"length_m":0,"width_m":2000}`
	cases := []struct {
		replace []string // old, new, ...
		field   string
	}{
		{[]string{`"report_every_s":5`, `"report_every_s":1e-300`}, "report_every_s"},
		{[]string{`"duration_s":3600`, `"duration_s":1e18`}, "sorties[0]"},
		{[]string{`"start_s":0`, `"start_s":1e18`}, "sorties[0].start_s"},
		{[]string{`"orbit"`, `"repeat":{"count":100,"every_s":1e18},"orbit"`}, "sorties[0].repeat"},
		// A route flown at a crawl.
		{[]string{`"cruise_mps":200`, `"cruise_mps":1e-9`, orbit, `"waypoints":[{"lat":35.5,"lon":36.5}]`}, "sorties[0]"},
	}
	for _, c := range cases {
		bad := doc
		for i := 0; i < len(c.replace); i += 2 {
			if !strings.Contains(bad, c.replace[i]) {
				t.Fatalf("case %q does not apply", c.replace[i])
			}
			bad = strings.Replace(bad, c.replace[i], c.replace[i+1], 1)
		}
		_, err := Load(strings.NewReader(bad))
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%v: err %v, want one naming %s", c.replace, err, c.field)
		}
	}
}

// TestDocumentedExampleLoads keeps the example of docs/scenarios.md valid.
func TestDocumentedExampleLoads(t *testing.T) {
	doc, err := os.ReadFile("../../docs/scenarios.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```json\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no JSON example in docs/scenarios.md")
	}
	s, err := Load(strings.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan(1)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Encounters[0]
	if res, _, ok := pairAt(p.Flight(e.A), p.Flight(e.B), e.AtS, rules.Default()); !ok || !res.Conflict || res.TInS != 0 {
		t.Errorf("the example's encounter does not lose separation: %+v", res)
	}
}

func FuzzLoad(f *testing.F) {
	good, err := builtin.ReadFile("scenarios/syria-2015.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(good))
	f.Add(`{"name":"x","report_every_s":5,"parties":[{"name":"a"},{"name":"b"}],"bases":[{"name":"B","party":"a","lat":35,"lon":36}],` +
		`"aircraft_types":[{"name":"t","cruise_mps":200,"climb_mps":20,"ceiling_m":10000}],` +
		`"sorties":[{"id":"s","party":"a","type":"t","base":"B","start_s":10,"alt_m":5000,"waypoints":[{"lat":35.5,"lon":36.5,"at_s":400}]}]}`)
	f.Add(`{"name":"x","report_every_s":5,"parties":[{"name":"a"},{"name":"b"}],"bases":[{"name":"B","party":"a","lat":89.9,"lon":179.9}],` +
		`"aircraft_types":[{"name":"t","cruise_mps":200,"climb_mps":20,"ceiling_m":10000}],` +
		`"sorties":[{"id":"s","party":"a","type":"t","base":"B","start_s":0,"alt_m":5000,"duration_s":3600,"orbit":{"lat":89.5,"lon":-179.5,"axis_deg":10,"length_m":0,"width_m":2000}}]}`)
	f.Add(`{"name":""}`)
	f.Add(`[]`)
	for _, c := range unreportableScenarios {
		f.Add(c.doc)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		s, err := Load(strings.NewReader(doc))
		if err != nil {
			return
		}
		p, err := s.Plan(3)
		if err != nil {
			t.Fatalf("a scenario that validated does not plan: %v", err)
		}
		if len(p.Flights) > maxFlights || len(s.Parties) > maxParties {
			t.Fatalf("a scenario of %d flights and %d parties validated", len(p.Flights), len(s.Parties))
		}
		for _, fl := range p.Flights {
			for _, ts := range []float64{fl.StartS, (fl.StartS + fl.EndS) / 2, fl.EndS} {
				st, ok := fl.At(ts)
				if !ok {
					t.Fatalf("%s not airborne at %v, within its %v..%v", fl.ID, ts, fl.StartS, fl.EndS)
				}
				// What the runner posts of a scenario that validated
				// is a report the server takes: finite, in range, its
				// names printable and within their bounds.
				r := track.Report{Party: fl.Party, Aircraft: fl.ID, Callsign: fl.Callsign, Class: fl.Class, Time: time.Unix(1_767_225_600, 0),
					Pos: st.Pos, VelEastMps: st.VelEastMps, VelNorthMps: st.VelNorthMps, VelUpMps: st.VelUpMps}
				if err := r.Validate(); err != nil {
					t.Fatalf("%s at %v: a report the server refuses: %v: %+v", fl.ID, ts, err, st)
				}
			}
		}
	})
}

func classOr(c string) string {
	if c == "" {
		return rules.ClassManned
	}
	return c
}

// TestDronesAmongCrewedAircraft: the built-in day has reconnaissance drones
// of both parties, and a designed encounter between a drone and a crewed
// aircraft, judged by DO-365 well clear.
func TestDronesAmongCrewedAircraft(t *testing.T) {
	p := builtinPlan(t, 1)
	drones := map[string]bool{}
	for _, f := range p.Flights {
		if f.Class == rules.ClassUAS {
			drones[f.Party] = true
		}
	}
	if !drones["coalition"] || !drones["russia"] {
		t.Fatalf("drones by party %v, want both", drones)
	}
	r := rules.Default()
	mixed := false
	for _, e := range p.Scenario.Encounters {
		a, b := p.Flight(e.A), p.Flight(e.B)
		if sep := r.SeparationFor(classOr(a.Class), classOr(b.Class)); sep.Detector.Kind == rules.DetectorDO365WCV {
			mixed = true
		}
	}
	if !mixed {
		t.Fatal("no designed encounter between a drone and a crewed aircraft")
	}
}

// TestLoadBoundsTheScenario: a scenario that would fly a million
// aircraft, follow thousands of parties' event streams or start its demo
// years away, or a file larger than any scenario, is refused naming the
// field (or the size) before anything is planned; it was planned (a
// million flights took seconds and 600 MB) and then driven.
func TestLoadBoundsTheScenario(t *testing.T) {
	head := `{"name":"x","report_every_s":5,"demo_start_s":0,"parties":[{"name":"a"},{"name":"b"}],"bases":[{"name":"B","party":"a","lat":35,"lon":36}],` +
		`"aircraft_types":[{"name":"t","cruise_mps":200,"climb_mps":20,"ceiling_m":10000}],"sorties":[`
	sortie := func(i, repeat int) string {
		return fmt.Sprintf(`{"id":"s%d","party":"a","type":"t","base":"B","start_s":10,"alt_m":5000,"waypoints":[{"lat":35.5,"lon":36.5}],"repeat":{"count":%d,"every_s":60}}`, i, repeat)
	}
	doc := func(sorties, repeat int) string {
		var b strings.Builder
		b.WriteString(head)
		for i := range sorties {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(sortie(i, repeat))
		}
		b.WriteString("]}")
		return b.String()
	}
	if _, err := Load(strings.NewReader(doc(100, 100))); err != nil {
		t.Fatalf("10,000 flights: %v", err)
	}
	parties := `"parties":[`
	for i := range maxParties + 1 {
		parties += fmt.Sprintf(`{"name":"p%d"},`, i)
	}
	parties += `{"name":"a"},{"name":"b"}]`
	for _, c := range []struct{ doc, field string }{
		{doc(101, 100), "sorties[100]"},
		{doc(10_001, 1), "sorties[10000]"},
		{strings.Replace(doc(1, 1), `"repeat":{"count":1,`, `"repeat":{"count":9223372036854775807,`, 1), "sorties[0]"},
		{strings.Replace(doc(1, 1), `"parties":[{"name":"a"},{"name":"b"}]`, parties, 1), "parties"},
		{strings.Replace(doc(1, 1), `"demo_start_s":0`, `"demo_start_s":3e9`, 1), "demo_start_s"},
	} {
		_, err := Load(strings.NewReader(c.doc))
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%.80s...: err %v, want one naming %s", c.doc, err, c.field)
		}
	}
	huge := doc(1, 1) + strings.Repeat(" ", MaxScenarioBytes)
	if _, err := Load(strings.NewReader(huge)); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a file of %d bytes: %v", len(huge), err)
	}
}

// TestLoadRefusesAmbiguousJSON: a member given twice (the last one
// silently counted: a second sorties list dropped the first one's
// flights) or text that is not UTF-8 (read as U+FFFD) is refused naming
// the member of the scenario it is in.
func TestLoadRefusesAmbiguousJSON(t *testing.T) {
	good, err := builtin.ReadFile("scenarios/syria-2015.json")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimSpace(string(good))
	// Each loaded, one way or the other.
	for _, c := range []struct{ doc, field string }{
		{strings.Replace(body, `"report_every_s": 5,`, `"report_every_s": 5, "report_every_s": 10,`, 1), "report_every_s"},
		{strings.Replace(body, `"callsign": "VIPER11"`, `"callsign": "VIPER11", "callsign": "VIPER12"`, 1), "sorties"},
		{strings.Replace(body, `"description": "A day`, "\"description\": \"\xff day", 1), "description"},
	} {
		if c.doc == body {
			t.Fatalf("case %s does not apply", c.field)
		}
		_, err := Load(strings.NewReader(c.doc))
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: err %v, want one naming %s", c.field, err, c.field)
		}
	}
}

// TestLoadNamesLineAndColumn: a scenario file that is not one JSON
// document says where: the line and column of the fault, the data after
// the document (which was ignored), the end of a file cut short, or that
// it is empty. A byte order mark is read as nothing.
func TestLoadNamesLineAndColumn(t *testing.T) {
	good, err := builtin.ReadFile("scenarios/syria-2015.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bytes.NewReader(append([]byte("\ufeff"), good...))); err != nil {
		t.Fatalf("with a byte order mark: %v", err)
	}
	// JSON reads a carriage return as white space: a scenario saved with
	// CR-only line endings loads.
	if _, err := Load(bytes.NewReader(bytes.ReplaceAll(good, []byte("\n"), []byte("\r")))); err != nil {
		t.Fatalf("with CR-only line endings: %v", err)
	}
	for _, c := range []struct{ doc, want string }{
		{"{\"name\":\"x\",\n  \"report_every_s\": x5}", "line 2, column 21: invalid character 'x'"},
		{"{\"name\":\"x\",\n  \"report_every_s\": \"5\"}", "line 2, column 23: "},
		{string(good) + "\n{}", fmt.Sprintf("line %d, column 1: data after", bytes.Count(good, []byte("\n"))+2)},
		{"{\"name\":\"x\",\n", "line 2, column 1: unexpected EOF"},
		{" \n", "empty"},
		// Old Mac line endings: the fault was on "line 1, column 30"
		// of a file an editor shows as two lines, with no hint why.
		{"{\"name\":\"x\",\r  \"report_every_s\": x5}\r", "line 2, column 21 (the line endings are CR only"},
	} {
		_, err := Load(strings.NewReader(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60q: err %v, want %q", c.doc, err, c.want)
		}
	}
}
