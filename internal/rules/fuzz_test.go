package rules_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/disclose"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/resolve"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/volume"
)

// FuzzRules: a proposal is input from a party, and once every party has
// accepted it every part of the service runs on it. For every body that a
// proposal (PUT /v1/rules: fields over the rules in force) or a stored
// version (Decode) makes into rules that pass Validate, the rules
// round-trip through their JSON unchanged, name nothing unprintable, and
// each consumer runs on them without a panic, within a bounded time and a
// bounded amount of memory: detection and alert levels, resolution bands
// and suggestions, need to know, the hotline's deadlines, the strategic
// check of volumes at the rules' own limits and the search of
// alternatives.
func FuzzRules(f *testing.F) {
	for _, s := range seeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if r, ok := proposed(body); ok {
			exercise(t, r)
		}
		if r, err := rules.Decode(body); err == nil && r.Validate() == nil {
			exercise(t, r)
		}
	})
}

// seeds are bodies of proposals at and beyond the bounds.
func seeds() []string {
	return []string{
		`{}`,
		`{"lookahead_s": 600, "stale_after_s": 300, "horizontal_sep_m": 200000, "vertical_sep_m": 5000}`,
		`{"time_buffer_s": 86400, "max_window_s": 2678400, "max_footprint_area_m2": 1e12, "max_footprint_m": 2000000, "horizontal_sep_m": 100}`,
		`{"ack_deadline_s": 5e-324, "ack_deadline_highest_s": 1e-300, "escalation_deadline_s": 1e-10}`,
		`{"horizontal_sep_m": 5e-324, "vertical_sep_m": 5e-324, "stale_after_s": 1e-300}`,
		`{"time_buffer_s": -0, "disclose_within_m": -0}`,
		`{"levels": [{"name": "warn\u202eing", "max_time_to_los_s": 60}]}`,
		`{"levels": [{"name": "a\nb", "max_time_to_los_s": 60}]}`,
		`{"priority_max": {"coal\u200bition": 3}}`,
		`{"disclose_within_m": 1000000, "disclose_within_alt_m": 50000, "disclose_linger_s": 86400}`,
		`{"performance": [{"class": "manned", "min_ground_speed_mps": 0, "max_ground_speed_mps": 1000, "min_vertical_speed_mps": -300, "max_vertical_speed_mps": 300, "min_alt_m": -1000, "max_alt_m": 30500, "alt_step_m": 1e-9, "turn_rate_deg_per_s": 1e-300, "vertical_rate_mps": 1e-300, "max_climb_m": 0},` +
			`{"class": "uas", "min_ground_speed_mps": 0, "max_ground_speed_mps": 1e-300, "min_vertical_speed_mps": -0, "max_vertical_speed_mps": 1e-300, "min_alt_m": 0, "max_alt_m": 1e-300, "alt_step_m": 1e-300, "turn_rate_deg_per_s": 180, "vertical_rate_mps": 300, "max_climb_m": 1e-300}]}`,
		`{"performance": null, "classes": ["manned", "uas", "heavy"], "separation": [` +
			`{"classes": ["manned", "manned"], "detector": {"kind": "cylinder", "horizontal_m": 200000, "vertical_m": 5000}, "lookahead_s": 600, "levels": [{"name": "a", "max_time_to_los_s": 600}]},` +
			`{"classes": ["manned", "uas"], "detector": {"kind": "do365_wcv", "dthr_m": 1e-300, "zthr_m": 1e-300, "tthr_s": 300, "tcoa_s": 300}, "lookahead_s": 600, "levels": [{"name": "a", "max_time_to_los_s": 1}]},` +
			`{"classes": ["uas", "uas"], "detector": {"kind": "cylinder", "horizontal_m": 1e-300, "vertical_m": 1e-300}, "lookahead_s": 1, "levels": [{"name": "a", "max_time_to_los_s": 1}]},` +
			`{"classes": ["heavy", "manned"], "detector": {"kind": "do365_wcv", "dthr_m": 200000, "zthr_m": 5000, "tthr_s": 0, "tcoa_s": 0}, "lookahead_s": 600, "levels": [{"name": "a", "max_time_to_los_s": 600}]},` +
			`{"classes": ["heavy", "uas"], "detector": {"kind": "cylinder", "horizontal_m": 1, "vertical_m": 1}, "lookahead_s": 1, "levels": [{"name": "a", "max_time_to_los_s": 1}]},` +
			`{"classes": ["heavy", "heavy"], "detector": {"kind": "cylinder", "horizontal_m": 1, "vertical_m": 1}, "lookahead_s": 1, "levels": [{"name": "a", "max_time_to_los_s": 1}]}]}`,
		widest(),
		// Every figure at its lower bound (and the most altitude steps),
		// but the height of a volume, which volumes below needs at 100 m.
		`{"horizontal_sep_m": 1, "vertical_sep_m": 1, "time_buffer_s": 1, "max_footprint_m": 1, "max_footprint_area_m2": 1, "max_alt_range_m": 100,` +
			`"disclose_within_m": 1, "disclose_within_alt_m": 1, "disclose_linger_s": 1, "lookahead_s": 1, "stale_after_s": 1, "levels": [{"name": "a", "max_time_to_los_s": 1}],` +
			`"separation": [{"classes": ["manned", "manned"], "detector": {"kind": "cylinder", "horizontal_m": 1, "vertical_m": 1}, "lookahead_s": 1, "levels": [{"name": "a", "max_time_to_los_s": 1}]},` +
			`{"classes": ["manned", "uas"], "detector": {"kind": "do365_wcv", "dthr_m": 1, "zthr_m": 1, "tthr_s": 1, "tcoa_s": 1}, "lookahead_s": 1, "levels": [{"name": "a", "max_time_to_los_s": 1}]},` +
			`{"classes": ["uas", "uas"], "detector": {"kind": "cylinder", "horizontal_m": 1, "vertical_m": 1}, "lookahead_s": 1, "levels": [{"name": "a", "max_time_to_los_s": 1}]}],` +
			`"performance": [{"class": "manned", "min_ground_speed_mps": 0, "max_ground_speed_mps": 1, "min_vertical_speed_mps": -0.5, "max_vertical_speed_mps": 0.5, "min_alt_m": -1000, "max_alt_m": 30500, "alt_step_m": 1, "turn_rate_deg_per_s": 0.5, "vertical_rate_mps": 0.5, "max_climb_m": 1000},` +
			`{"class": "uas", "min_ground_speed_mps": 0, "max_ground_speed_mps": 1000, "min_vertical_speed_mps": -300, "max_vertical_speed_mps": 300, "min_alt_m": 0, "max_alt_m": 1, "alt_step_m": 1, "turn_rate_deg_per_s": 0.5, "vertical_rate_mps": 0.5, "max_climb_m": 1}]}`,
	}
}

// widest is a proposal of every figure at its bound: 16 classes, a
// separation table of 136 entries of 16 levels each with its own
// detector, reaching 200 km and ten minutes ahead, the widest
// performance.
func widest() string {
	classes := []string{"manned", "uas"}
	for i := len(classes); i < 16; i++ {
		classes = append(classes, fmt.Sprintf("c%02d", i))
	}
	type level struct {
		Name          string         `json:"name"`
		MaxTimeToLoSS float64        `json:"max_time_to_los_s"`
		Detector      map[string]any `json:"detector"`
	}
	var sep []map[string]any
	for i, a := range classes {
		for j, b := range classes[i:] {
			kind := map[string]any{"kind": "cylinder", "horizontal_m": 200_000, "vertical_m": 5_000}
			if j%2 == 1 {
				kind = map[string]any{"kind": "do365_wcv", "dthr_m": 200_000, "zthr_m": 5_000, "tthr_s": 300, "tcoa_s": 300}
			}
			var levels []level
			for l := range 16 {
				d := maps.Clone(kind)
				for k, v := range d {
					if x, ok := v.(int); ok {
						d[k] = x - l
					}
				}
				levels = append(levels, level{Name: fmt.Sprintf("l%d", l), MaxTimeToLoSS: 600 - float64(l), Detector: d})
			}
			sep = append(sep, map[string]any{"classes": []string{a, b}, "detector": kind, "lookahead_s": 600, "levels": levels})
		}
	}
	var perf []map[string]any
	for _, c := range classes {
		perf = append(perf, map[string]any{"class": c, "min_ground_speed_mps": 0, "max_ground_speed_mps": 1000,
			"min_vertical_speed_mps": -300, "max_vertical_speed_mps": 300, "min_alt_m": -1000, "max_alt_m": 30500,
			"alt_step_m": 31.5, "turn_rate_deg_per_s": 180, "vertical_rate_mps": 300, "max_climb_m": 31500})
	}
	var levels []map[string]any
	for l := range 16 {
		levels = append(levels, map[string]any{"name": fmt.Sprintf("l%d", l), "max_time_to_los_s": 600 - float64(l)})
	}
	b, err := json.Marshal(map[string]any{
		"horizontal_sep_m": 200_000, "vertical_sep_m": 5_000, "time_buffer_s": 86_400, "lookahead_s": 600,
		"stale_after_s": 300, "levels": levels, "max_window_s": 31 * 86_400, "max_footprint_m": 2_000_000,
		"max_vertices": 2_000, "max_footprint_area_m2": 1e12, "max_alt_range_m": 30_500,
		"disclose_within_m": 1_000_000, "disclose_within_alt_m": 50_000, "disclose_linger_s": 86_400,
		"classes": classes, "separation": sep, "performance": perf,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// proposed is what PUT /v1/rules makes of a body (api.amendRules, then
// service.ProposeRules): its fields over the defaults, the table filled,
// validated.
func proposed(body []byte) (rules.Rules, bool) {
	var given map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&given) != nil || given == nil {
		return rules.Rules{}, false
	}
	r, err := rules.Amend(rules.Default(), given)
	if err != nil {
		return rules.Rules{}, false
	}
	r.FillTable()
	if r.Validate() != nil {
		return rules.Rules{}, false
	}
	return r, true
}

// budget bounds what the consumers may take of one valid rule set: far
// beyond what any of them takes under the default rules, far below what
// would stall the service.
const (
	budgetTime  = 20 * time.Second
	budgetAlloc = 64 << 20
)

// exercise runs the consumers on r under the budget.
func exercise(t *testing.T, r rules.Rules) {
	t.Helper()
	roundTrip(t, r)
	done := make(chan struct{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	go func() {
		defer close(done)
		consume(t, r)
	}()
	select {
	case <-done:
	case <-time.After(budgetTime):
		t.Fatalf("the consumers of these rules ran past %v: %s", budgetTime, describe(r))
	}
	runtime.ReadMemStats(&after)
	if used := after.TotalAlloc - before.TotalAlloc; used > budgetAlloc {
		t.Fatalf("the consumers of these rules allocated %d MB: %s", used>>20, describe(r))
	}
}

// describe is what r changes of the defaults, each value clipped.
func describe(r rules.Rules) string {
	changes, err := rules.Diff(rules.Default(), r)
	if err != nil {
		return err.Error()
	}
	var b bytes.Buffer
	for _, c := range changes {
		v := c.New
		if len(v) > 200 {
			v = append(v[:200:200], "..."...)
		}
		fmt.Fprintf(&b, "\n  %s: %s", c.Field, v)
	}
	return b.String()
}

// roundTrip: the rules as stored load again to the same rules, and every
// name in them is printable.
func roundTrip(t *testing.T, r rules.Rules) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("valid rules do not encode: %v", err)
	}
	back, err := rules.Decode(b)
	if err != nil {
		t.Fatalf("valid rules do not decode: %v\n%s", err, b)
	}
	if err := back.Validate(); err != nil {
		t.Fatalf("valid rules fail validation once stored: %v\n%s", err, b)
	}
	again, _ := json.Marshal(back)
	if !bytes.Equal(b, again) {
		t.Fatalf("the rules change when stored:\n%s\n%s", b, again)
	}
	if ch, err := rules.Diff(r, back); err != nil || len(ch) != 0 {
		t.Fatalf("the rules as stored differ from the rules: %v %v", ch, err)
	}
	var names []string
	for _, l := range r.Levels {
		names = append(names, l.Name)
	}
	for _, s := range r.Separation {
		for _, l := range s.Levels {
			names = append(names, l.Name)
		}
	}
	for p := range r.PriorityMax {
		names = append(names, p)
	}
	for _, w := range r.Witnesses {
		names = append(names, w.Party)
	}
	for _, n := range names {
		if err := printable.Check(n); err != nil {
			t.Fatalf("valid rules name %q: %v", n, err)
		}
	}
}

// consume runs one small computation of each consumer on r.
func consume(t *testing.T, r rules.Rules) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	deadlines(t, r)
	detection(t, r, now)
	resolution(t, r)
	disclosure(t, r)
	volumes(t, r, now)
}

// deadlines: every deadline is one a person can meet and none wraps.
func deadlines(t *testing.T, r rules.Rules) {
	for _, l := range append([]string{""}, levelNames(r)...) {
		if d := r.AckDeadline(l); d < time.Second || d > 24*time.Hour {
			t.Errorf("the deadline to acknowledge %q is %v", l, d)
		}
	}
	for name, d := range map[string]time.Duration{
		"escalation": r.EscalationDeadline(), "stale": r.StaleAfter(), "lookahead": r.Lookahead(),
	} {
		if d <= 0 || d > 24*time.Hour {
			t.Errorf("the %s duration is %v", name, d)
		}
	}
}

func levelNames(r rules.Rules) []string {
	var out []string
	for _, l := range r.Levels {
		out = append(out, l.Name)
	}
	for _, s := range r.Separation {
		for _, l := range s.Levels {
			out = append(out, l.Name)
		}
	}
	return out
}

// classesOf is at most the first four classes, to keep each run cheap.
func classesOf(r rules.Rules) []string { return r.Classes[:min(len(r.Classes), 4)] }

// detection: two aircraft of each pair of classes head-on at the same
// altitude, reported twice; every alert is at a level the rules name.
func detection(t *testing.T, r rules.Rules, now time.Time) {
	eng := alert.NewEngine(r, nil)
	cs := classesOf(r)
	var reports []track.Report
	n := 0
	for i, a := range cs {
		for _, b := range cs[i:] {
			lat := 40 + float64(n)*0.5
			n++
			pa, pb := r.PerformanceFor(a), r.PerformanceFor(b)
			alt := (max(pa.MinAltM, pb.MinAltM) + min(pa.MaxAltM, pb.MaxAltM)) / 2
			alt = min(max(alt, 0), 15_000)
			reports = append(reports,
				track.Report{Party: "alpha", Aircraft: fmt.Sprintf("a%d", n), Class: a, Pos: geo.LLA{LatDeg: lat, LonDeg: 10, AltM: alt}, VelEastMps: 60, Time: now},
				track.Report{Party: "bravo", Aircraft: fmt.Sprintf("b%d", n), Class: b, Pos: geo.LLA{LatDeg: lat, LonDeg: 10.03, AltM: alt}, VelEastMps: -60, Time: now})
		}
	}
	names := levelNames(r)
	check := func(trs []alert.Transition, err error) {
		if err != nil {
			t.Errorf("ingest: %v", err)
			return
		}
		for _, tr := range trs {
			if tr.Level != "" && !slices.Contains(names, tr.Level) {
				t.Errorf("an alert at level %q, which the rules do not name", tr.Level)
			}
		}
	}
	check(eng.Ingest(reports, now))
	for i := range reports {
		reports[i].Pos.LonDeg += reports[i].VelEastMps / 80_000
		reports[i].Time = now.Add(time.Second)
	}
	check(eng.Ingest(reports, now.Add(time.Second)))
	check(eng.Expire(now.Add(r.StaleAfter()+time.Minute)), nil)
}

// resolution: the bands of an aircraft of each class head-on with one of
// each class, and the suggestion for the pair.
func resolution(t *testing.T, r rules.Rules) {
	table := detect.ParamsFrom(r).Table
	cs := classesOf(r)
	for _, a := range cs {
		pa := r.PerformanceFor(a)
		cfg := resolve.ConfigOf(pa)
		ka := kinematics(pa)
		for _, b := range cs {
			pb := r.PerformanceFor(b)
			kb := kinematics(pb)
			e := table.ForNames(a, b)
			sep := resolve.SeparationOf(e)
			alt := (pa.MinAltM + pa.MaxAltM) / 2
			speed := (pa.MinGroundSpeedMps + pa.MaxGroundSpeedMps) / 2
			own := resolve.Aircraft{Pos: detect.Vec3{Z: alt}, Vel: detect.Vec3{X: speed}}
			in := resolve.Aircraft{Pos: detect.Vec3{X: 3000, Z: alt}, Vel: detect.Vec3{X: -speed}}
			bands := resolve.Compute(own, []resolve.Intruder{{Aircraft: in, Sep: &sep}}, &cfg)
			for _, rs := range [][]resolve.Range{bands.TrackDeg, bands.GsMps, bands.VsMps, bands.AltM} {
				for _, x := range rs {
					if math.IsNaN(x.Low) || math.IsNaN(x.High) || x.Low > x.High {
						t.Errorf("%s-%s: a band %+v", a, b, x)
					}
				}
			}
			pA := resolve.Party{Aircraft: own}
			pB := resolve.Party{Aircraft: in}
			resolve.Suggest(&pA, &pB, &sep, &ka, &kb)
		}
	}
}

// kinematics is the suggestions' kinematics of a class, as the service
// makes them (service.limitsOf).
func kinematics(p rules.Performance) resolve.Kinematics {
	k := resolve.DefaultKinematics()
	k.TurnRateDegPerS, k.VerticalRateMps = p.TurnRateDegPerS, p.VerticalRateMps
	k.AltStepM, k.MaxClimbM = p.AltStepM, p.MaxClimbM
	k.MinAltM, k.MaxAltM = p.MinAltM, p.MaxAltM
	return k
}

// disclosure: need to know's proximity test.
func disclosure(t *testing.T, r rules.Rules) {
	rule := disclose.RuleFrom(r)
	a := disclose.PointOf(geo.LLA{LatDeg: 50, LonDeg: 10, AltM: 1000})
	if !rule.Near(a, a) && r.DiscloseWithinM > 0 && r.DiscloseWithinAltM > 0 {
		t.Errorf("an aircraft is not near itself")
	}
}

// volumes: a volume at the rules' limits, another party's in conflict with
// it, and the alternatives to the second.
func volumes(t *testing.T, r rules.Rules, now time.Time) {
	reg := volume.NewRegistry(r)
	st := &memVolumes{byID: map[string]store.Volume{}}
	radius := min(math.Sqrt(r.MaxFootprintAreaM2/math.Pi)*0.99, r.MaxFootprintM/2*0.99)
	start := now.Add(time.Hour)
	window := min(r.MaxWindow(), 31*24*time.Hour)
	big := volume.Input{
		Footprint: volume.Footprint{Type: "Circle", Center: []float64{10, 50}, RadiusM: radius},
		AltLowerM: 0, AltUpperM: min(r.MaxAltRangeM, 15_000), Start: start, End: start.Add(window),
	}
	res, err := reg.Create(st, "alpha", big, r, now)
	if err != nil {
		t.Errorf("a volume at the limits of the rules: %v", err)
		return
	}
	reg.Apply(res)
	small := volume.Input{
		Footprint: volume.Footprint{Type: "Circle", Center: []float64{10, 50}, RadiusM: min(1000, radius)},
		AltLowerM: 100, AltUpperM: 200, Start: start, End: start.Add(min(window, time.Hour)),
	}
	_, err = reg.Create(st, "bravo", small, r, now)
	var mk *volume.MissingKeyError
	if !errors.As(err, &mk) {
		t.Errorf("a volume in conflict: %v", err)
	}
	if _, _, err := reg.Alternatives("bravo", "", small, r, now, func(*volume.Volume) bool { return true }); err != nil {
		t.Errorf("alternatives: %v", err)
	}
}

// memVolumes is the volumes of a store, in memory.
type memVolumes struct {
	byID map[string]store.Volume
	seq  int64
}

func (m *memVolumes) LockVolumes() error { return nil }

func (m *memVolumes) PutVolume(v store.Volume, prevVersion string) (int64, error) {
	if cur, ok := m.byID[v.ID]; ok != (prevVersion != "") || ok && cur.Version != prevVersion {
		return 0, store.ErrConflict
	}
	m.seq++
	v.ChangeSeq = m.seq
	m.byID[v.ID] = v
	return m.seq, nil
}

func (m *memVolumes) GetVolume(id string) (store.Volume, error) {
	v, ok := m.byID[id]
	if !ok {
		return store.Volume{}, store.ErrNotFound
	}
	return v, nil
}

func (m *memVolumes) VolumesChangedSince(seq int64, limit int) ([]store.Volume, error) {
	var out []store.Volume
	for _, v := range m.byID {
		if v.ChangeSeq > seq {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ChangeSeq < out[j].ChangeSeq })
	return out[:min(len(out), limit)], nil
}
