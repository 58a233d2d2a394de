package rules

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/witness"
)

func TestDefaultIsValidAndConventional(t *testing.T) {
	r := Default()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.HorizontalSepM != 9260 {
		t.Errorf("5 NM = %v m, want 9260", r.HorizontalSepM)
	}
	if r.VerticalSepM < 304.79 || r.VerticalSepM > 304.81 {
		t.Errorf("1000 ft = %v m, want 304.8", r.VerticalSepM)
	}
}

func TestLevelFor(t *testing.T) {
	r := Default()
	cases := []struct {
		t    float64
		want string
	}{{0, "warning"}, {60, "warning"}, {60.1, "caution"}, {120, "caution"}, {299, "advisory"}, {300, "advisory"}}
	for _, c := range cases {
		l, err := r.LevelFor(c.t)
		if err != nil || l.Name != c.want {
			t.Errorf("LevelFor(%v) = %v, %v; want %s", c.t, l.Name, err, c.want)
		}
	}
	if _, err := r.LevelFor(300.5); !errors.Is(err, ErrNoLevel) {
		t.Errorf("LevelFor beyond every level: err = %v", err)
	}
}

func TestAckDeadlines(t *testing.T) {
	r := Default()
	if got := r.AckDeadline(""); got != 120*time.Second {
		t.Errorf("message deadline %v", got)
	}
	if got := r.AckDeadline("caution"); got != 120*time.Second {
		t.Errorf("caution deadline %v", got)
	}
	if got := r.AckDeadline("warning"); got != 30*time.Second {
		t.Errorf("highest-level deadline %v", got)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := map[string]func(*Rules){
		"horizontal_sep_m":            func(r *Rules) { r.HorizontalSepM = -1 },
		"time_buffer_s":               func(r *Rules) { r.TimeBufferS = -5 },
		"max_vertices":                func(r *Rules) { r.MaxVertices = 3 },
		"levels":                      func(r *Rules) { r.Levels = nil },
		"levels[1].max_time_to_los_s": func(r *Rules) { r.Levels[1].MaxTimeToLoSS = 400 },
		"levels[2].name":              func(r *Rules) { r.Levels[2].Name = "advisory" },
		"levels[0].max_time_to_los_s": func(r *Rules) { r.Levels[0].MaxTimeToLoSS = 301 },
		"levels[2].max_time_to_los_s": func(r *Rules) { r.Levels[2].MaxTimeToLoSS = 1e-300 },
	}
	for field, mutate := range cases {
		r := Default()
		mutate(&r)
		err := r.Validate()
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("mutating %s: got %v", field, err)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := Default()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Rules
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.HorizontalSepM != r.HorizontalSepM || len(back.Levels) != 3 || back.Levels[2] != r.Levels[2] {
		t.Errorf("round trip changed the rules: %+v", back)
	}
}

// Every figure of the rules has an upper bound: rules with a time buffer
// of 1e15 s were accepted, overflowed the time arithmetic and ended every
// volume.
func TestEveryFieldIsBounded(t *testing.T) {
	cases := []struct {
		field  string
		mutate func(*Rules)
	}{
		{"horizontal_sep_m", func(r *Rules) { r.HorizontalSepM = 1e9 }},
		{"vertical_sep_m", func(r *Rules) { r.VerticalSepM = 1e9 }},
		{"time_buffer_s", func(r *Rules) { r.TimeBufferS = 1e15 }},
		{"lookahead_s", func(r *Rules) { r.LookaheadS = 1e12 }},
		{"stale_after_s", func(r *Rules) { r.StaleAfterS = 1e12 }},
		{"ack_deadline_s", func(r *Rules) { r.AckDeadlineS = 1e12 }},
		{"ack_deadline_highest_s", func(r *Rules) { r.AckDeadlineHighestS = 1e12 }},
		{"escalation_deadline_s", func(r *Rules) { r.EscalationDeadlineS = 1e12 }},
		{"max_window_s", func(r *Rules) { r.MaxWindowS = 1e18 }},
		{"max_footprint_m", func(r *Rules) { r.MaxFootprintM = 1e12 }},
		{"max_footprint_area_m2", func(r *Rules) { r.MaxFootprintAreaM2 = 1e20 }},
		{"max_alt_range_m", func(r *Rules) { r.MaxAltRangeM = 1e6 }},
		{"max_vertices", func(r *Rules) { r.MaxVertices = 1 << 40 }},
		{"levels", func(r *Rules) {
			for i := range 100 {
				r.Levels = append(r.Levels, Level{Name: fmt.Sprint("l", i), MaxTimeToLoSS: 59 - float64(i)*0.1})
			}
		}},
		{"levels[0].name", func(r *Rules) { r.Levels[0].Name = strings.Repeat("x", 1000) }},
		{"priority_max.coalition", func(r *Rules) { r.PriorityMax = map[string]int{"coalition": math.MaxInt} }},
		{"priority_max.coalition", func(r *Rules) { r.PriorityMax = map[string]int{"coalition": -1} }},
		{"priority_max", func(r *Rules) {
			r.PriorityMax = map[string]int{}
			for i := range 5000 {
				r.PriorityMax[fmt.Sprint("p", i)] = 1
			}
		}},
		{"max_footprint_area_m2", func(r *Rules) { r.MaxFootprintAreaM2 = 0 }},
		{"max_alt_range_m", func(r *Rules) { r.MaxAltRangeM = math.NaN() }},
		{"max_aircraft", func(r *Rules) { r.MaxAircraft = 0 }},
		{"max_aircraft", func(r *Rules) { r.MaxAircraft = MaxAircraftBound + 1 }},
		{"max_aircraft_by_party.russia", func(r *Rules) { r.MaxAircraftByParty = map[string]int{"russia": -1} }},
		{"max_aircraft_by_party.russia", func(r *Rules) { r.MaxAircraftByParty = map[string]int{"russia": math.MaxInt} }},
		{"max_aircraft_by_party", func(r *Rules) {
			r.MaxAircraftByParty = map[string]int{}
			for i := range 5000 {
				r.MaxAircraftByParty[fmt.Sprint("p", i)] = 1
			}
		}},
	}
	for _, c := range cases {
		r := Default()
		c.mutate(&r)
		err := r.Validate()
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
	// The bounds themselves are accepted.
	r := Default()
	r.TimeBufferS, r.LookaheadS, r.MaxWindowS, r.PriorityMax = 86_400, 600, 31*86_400, map[string]int{"coalition": MaxPriority}
	r.StaleAfterS, r.Separation[0].LookaheadS, r.MaxVertices = 300, 600, 2_000
	if err := r.Validate(); err != nil {
		t.Errorf("rules at their bounds: %v", err)
	}
}

// Durations saturate instead of wrapping around to negative ones, whatever
// figure reaches them.
func TestDurationsSaturate(t *testing.T) {
	r := Default()
	r.TimeBufferS, r.MaxWindowS, r.LookaheadS = 1e15, 1e18, math.Inf(1)
	for name, d := range map[string]time.Duration{"time buffer": r.TimeBuffer(), "max window": r.MaxWindow(), "lookahead": r.Lookahead()} {
		if d != math.MaxInt64 {
			t.Errorf("%s: %v, want the largest Duration", name, d)
		}
	}
	r.TimeBufferS = math.NaN()
	if d := r.TimeBuffer(); d != 0 {
		t.Errorf("NaN time buffer: %v", d)
	}
}

// Rules stored before a field existed load with that field's default.
func TestDecodeFillsNewFields(t *testing.T) {
	old := `{"version":3,"horizontal_sep_m":5000,"vertical_sep_m":300,"time_buffer_s":60,"lookahead_s":300,
	 "levels":[{"name":"only","max_time_to_los_s":100}],"stale_after_s":30,"same_party_alerts":false,
	 "ack_deadline_s":120,"ack_deadline_highest_s":30,"escalation_deadline_s":120,
	 "max_window_s":86400,"max_footprint_m":500000,"max_vertices":1000}`
	r, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if r.HorizontalSepM != 5000 || len(r.Levels) != 1 || r.Levels[0].Name != "only" {
		t.Errorf("stored fields lost: %+v", r)
	}
	if d := Default(); r.MaxFootprintAreaM2 != d.MaxFootprintAreaM2 || r.MaxAltRangeM != d.MaxAltRangeM || r.PriorityMax != nil ||
		r.MaxAircraft != DefaultMaxAircraft || r.MaxAircraftByParty != nil {
		t.Errorf("new fields: %+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Error(err)
	}
}

func TestDisclosureFields(t *testing.T) {
	r := Default()
	if r.DiscloseWithinM != 92_600 || r.DiscloseWithinAltM != 3048 || r.DiscloseLingerS != 60 || r.VolumeVisibility != VolumesAll {
		t.Errorf("disclosure defaults %v m, %v m, %v s, %q", r.DiscloseWithinM, r.DiscloseWithinAltM, r.DiscloseLingerS, r.VolumeVisibility)
	}
	cases := map[string]func(*Rules){
		"disclose_within_m":     func(r *Rules) { r.DiscloseWithinM = -1 },
		"disclose_within_alt_m": func(r *Rules) { r.DiscloseWithinAltM = 60_000 },
		"disclose_linger_s":     func(r *Rules) { r.DiscloseLingerS = 1e9 },
		"volume_visibility":     func(r *Rules) { r.VolumeVisibility = "some" },
	}
	for field, mutate := range cases {
		r := Default()
		mutate(&r)
		var fe *fielderr.Error
		if err := r.Validate(); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("mutating %s: got %v", field, err)
		}
	}
	// Rules stored before the fields existed take their defaults.
	old, err := Decode([]byte(`{"version":3,"horizontal_sep_m":9000}`))
	if err != nil || old.DiscloseWithinM != 92_600 || old.VolumeVisibility != VolumesAll || old.HorizontalSepM != 9000 {
		t.Errorf("decoding old rules: %+v, %v", old, err)
	}
}

// The names in the rules reach every party as they are (alerts, hotline
// items, the console, a terminal), so a party reviewing a proposal must
// see what it accepts: a level named "warning" with a zero-width space,
// or with a line feed or an escape sequence, was accepted, and so were a
// grant of priority or a witness for a name no party can have.
func TestNamesArePlain(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	vkey := func(name string) string {
		_, k, err := witness.CosignerKeys(name, priv)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cases := []struct {
		field  string
		mutate func(*Rules)
	}{
		{"levels[2].name", func(r *Rules) { r.Levels[2].Name = "warn\u200bing" }},
		{"levels[0].name", func(r *Rules) { r.Levels[0].Name = "advisory\nOPERATOR: disregard" }},
		{"separation[2].levels[1].name", func(r *Rules) { r.Separation[2].Levels[1].Name = "\x1b[2Jcaution" }},
		{"separation[1].levels[2].name", func(r *Rules) { r.Separation[1].Levels[2].Name = "warning\u202e" }},
		{`priority_max.coal\u200bition`, func(r *Rules) { r.PriorityMax = map[string]int{"coal\u200bition": 2} }},
		{"priority_max.Coalition", func(r *Rules) { r.PriorityMax = map[string]int{"Coalition": 2} }},
		{"witnesses[0].party", func(r *Rules) {
			r.Witnesses = []Witness{{Party: "coalition\x1b[0m", URL: "https://w.example/", VKey: vkey("w1")}}
		}},
		{"witnesses[0].vkey", func(r *Rules) {
			r.Witnesses = []Witness{{Party: "coalition", URL: "https://w.example/", VKey: vkey("w\u200b1")}}
		}},
		// The witness's URL is what a party checks it is its own witness
		// by: one that reads as another, reordered or with an invisible
		// character, would send its checkpoints elsewhere unseen.
		{"witnesses[0].url", func(r *Rules) {
			r.Witnesses = []Witness{{Party: "coalition", URL: "https://w.coalition\u202egro.example/", VKey: vkey("w1")}}
		}},
		{"witnesses[0].url", func(r *Rules) {
			r.Witnesses = []Witness{{Party: "coalition", URL: "https://w.coali\u200btion.example/", VKey: vkey("w1")}}
		}},
		{"witnesses[0].url", func(r *Rules) {
			r.Witnesses = []Witness{{Party: "coalition", URL: "https://w.example/\u0085add", VKey: vkey("w1")}}
		}},
		{"witnesses[0].url", func(r *Rules) {
			r.Witnesses = []Witness{{Party: "coalition", URL: "https://w.example/" + strings.Repeat("a", 4096), VKey: vkey("w1")}}
		}},
	}
	for _, c := range cases {
		r := Default()
		c.mutate(&r)
		var fe *fielderr.Error
		if err := r.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
	// Plain names are accepted.
	r := Default()
	r.Levels[0].Name = "Advisory (TA)"
	r.Separation[2].Levels[0].Name = "préventif"
	r.PriorityMax = map[string]int{"coalition": 2, "air-group_2": 1}
	r.Witnesses = []Witness{{Party: "coalition", URL: "https://w.example/", VKey: vkey("witness.example/w1")}}
	if err := r.Validate(); err != nil {
		t.Errorf("plain names: %v", err)
	}
}

// Every duration that must be above zero is at least a second: a deadline
// of 1e-10 s passed "above zero", converted to 0 ns, and every hotline
// item escalated the moment it was posted and again at every tick.
func TestDurationsAreAtLeastASecond(t *testing.T) {
	set := map[string]func(*Rules, float64){
		"lookahead_s":               func(r *Rules, v float64) { r.LookaheadS = v },
		"stale_after_s":             func(r *Rules, v float64) { r.StaleAfterS = v },
		"ack_deadline_s":            func(r *Rules, v float64) { r.AckDeadlineS = v },
		"ack_deadline_highest_s":    func(r *Rules, v float64) { r.AckDeadlineHighestS = v },
		"escalation_deadline_s":     func(r *Rules, v float64) { r.EscalationDeadlineS = v },
		"max_window_s":              func(r *Rules, v float64) { r.MaxWindowS = v },
		"witness_max_age_s":         func(r *Rules, v float64) { r.WitnessMaxAgeS = v },
		"separation[0].lookahead_s": func(r *Rules, v float64) { r.Separation[0].LookaheadS = v },
	}
	for field, mutate := range set {
		for _, v := range []float64{5e-324, 1e-10, 0.999} {
			r := Default()
			mutate(&r, v)
			var fe *fielderr.Error
			if err := r.Validate(); !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("%s = %g: got %v", field, v, err)
			}
		}
	}
	r := Default()
	r.AckDeadlineS, r.AckDeadlineHighestS, r.EscalationDeadlineS, r.StaleAfterS, r.WitnessMaxAgeS = 1, 1, 1, 1, 1
	if err := r.Validate(); err != nil {
		t.Errorf("deadlines of a second (the demo's): %v", err)
	}
	if d := r.AckDeadline(""); d != time.Second {
		t.Errorf("a deadline of 1 s is %v", d)
	}
}

// The lookahead is at most ten minutes and the staleness five: at an hour
// each (the former bounds) every aircraft's path was indexed over two
// hours, and a drone cost 75 times what it costs under the defaults. A
// footprint has at most 2,000 vertices: the conflict test of two
// polygons of 10,000 took 0.7 s.
func TestCostlyFiguresAreBounded(t *testing.T) {
	cases := []struct {
		field  string
		mutate func(*Rules)
	}{
		{"lookahead_s", func(r *Rules) { r.LookaheadS = 3_600 }},
		{"lookahead_s", func(r *Rules) { r.LookaheadS = 601 }},
		{"separation[2].lookahead_s", func(r *Rules) { r.Separation[2].LookaheadS = 3_600 }},
		{"stale_after_s", func(r *Rules) { r.StaleAfterS = 3_600 }},
		{"stale_after_s", func(r *Rules) { r.StaleAfterS = 301 }},
		{"max_vertices", func(r *Rules) { r.MaxVertices = 10_000 }},
		{"max_vertices", func(r *Rules) { r.MaxVertices = 2_001 }},
	}
	for _, c := range cases {
		r := Default()
		c.mutate(&r)
		var fe *fielderr.Error
		if err := r.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
}

// The fleet a party may fly is the agreed figure for it, or the figure of
// every party not named.
func TestMaxAircraftFor(t *testing.T) {
	r := Default()
	r.MaxAircraft, r.MaxAircraftByParty = 300, map[string]int{"russia": 20, "observer": 0}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for party, want := range map[string]int{"russia": 20, "observer": 0, "coalition": 300} {
		if got := r.MaxAircraftFor(party); got != want {
			t.Errorf("MaxAircraftFor(%s) = %d, want %d", party, got, want)
		}
	}
}

// A witness's URL is read by every party in the rules: one with userinfo
// (https://user:password@host/) publishes a credential to them all, and
// one with a bare "user@" reads as a host it is not ("w.coalition@evil").
func TestWitnessURLWithUserinfoIsRefused(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, vkey, err := witness.CosignerKeys("w1", priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"https://user:password@w.example/",
		"https://token@w.example/",
		"https://w.coalition.example@w.other.example/",
		"https://:secret@w.example/",
		"http://@w.example/",
	} {
		r := Default()
		r.Witnesses = []Witness{{Party: "coalition", URL: u, VKey: vkey}}
		var fe *fielderr.Error
		if err := r.Validate(); !errors.As(err, &fe) || fe.Field != "witnesses[0].url" || !strings.Contains(fe.Msg, "user") {
			t.Errorf("%s: got %v, want a refusal of witnesses[0].url naming the user information", u, err)
		}
	}
}

// Every figure has a lower bound too: a separation of 1e-300 m, a
// detector's threshold of 0.001 m or a step of altitude of 1e-9 m passed
// "above zero" and made separation meaningless while the proposal read
// as one. A figure that may be zero is zero or at least its minimum.
func TestEveryFieldHasALowerBound(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	set := map[string]func(*Rules, float64){
		"horizontal_sep_m":                        func(r *Rules, v float64) { r.HorizontalSepM = v },
		"vertical_sep_m":                          func(r *Rules, v float64) { r.VerticalSepM = v },
		"time_buffer_s":                           func(r *Rules, v float64) { r.TimeBufferS = v },
		"max_footprint_m":                         func(r *Rules, v float64) { r.MaxFootprintM = v },
		"max_footprint_area_m2":                   func(r *Rules, v float64) { r.MaxFootprintAreaM2 = v },
		"max_alt_range_m":                         func(r *Rules, v float64) { r.MaxAltRangeM = v },
		"disclose_within_m":                       func(r *Rules, v float64) { r.DiscloseWithinM = v },
		"disclose_within_alt_m":                   func(r *Rules, v float64) { r.DiscloseWithinAltM = v },
		"disclose_linger_s":                       func(r *Rules, v float64) { r.DiscloseLingerS = v },
		"separation[0].detector.horizontal_m":     func(r *Rules, v float64) { r.Separation[0].Detector.HorizontalM = p(v) },
		"separation[2].detector.vertical_m":       func(r *Rules, v float64) { r.Separation[2].Detector.VerticalM = p(v) },
		"separation[1].detector.dthr_m":           func(r *Rules, v float64) { r.Separation[1].Detector.DTHRM = p(v) },
		"separation[1].detector.zthr_m":           func(r *Rules, v float64) { r.Separation[1].Detector.ZTHRM = p(v) },
		"separation[1].detector.tthr_s":           func(r *Rules, v float64) { r.Separation[1].Detector.TTHRS = p(v) },
		"separation[1].detector.tcoa_s":           func(r *Rules, v float64) { r.Separation[1].Detector.TCOAS = p(v) },
		"separation[1].levels[0].detector.zthr_m": func(r *Rules, v float64) { r.Separation[1].Levels[0].Detector.ZTHRM = p(v) },
		"performance[1].alt_step_m":               func(r *Rules, v float64) { r.Performance[1].AltStepM = v },
		"performance[0].turn_rate_deg_per_s":      func(r *Rules, v float64) { r.Performance[0].TurnRateDegPerS = v },
		"performance[1].vertical_rate_mps":        func(r *Rules, v float64) { r.Performance[1].VerticalRateMps = v },
		"performance[1].max_climb_m":              func(r *Rules, v float64) { r.Performance[1].MaxClimbM = v },
		"performance[1].max_vertical_speed_mps":   func(r *Rules, v float64) { r.Performance[1].MaxVerticalSpeedMps = v },
		"performance[1].min_vertical_speed_mps":   func(r *Rules, v float64) { r.Performance[1].MinVerticalSpeedMps = -v },
		"performance[1].max_ground_speed_mps": func(r *Rules, v float64) {
			r.Performance[1].MinGroundSpeedMps, r.Performance[1].MaxGroundSpeedMps = 0, v
		},
	}
	for field, mutate := range set {
		for _, v := range []float64{5e-324, 1e-300, 1e-9, 0.001, 0.4} {
			r := Default()
			mutate(&r, v)
			var fe *fielderr.Error
			if err := r.Validate(); !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("%s = %g: got %v", field, v, err)
			}
		}
	}
	// Every figure at its lower bound is accepted; zero where zero means
	// none, negative zero too.
	r := Default()
	r.HorizontalSepM, r.VerticalSepM, r.MaxFootprintM, r.MaxFootprintAreaM2, r.MaxAltRangeM = 1, 1, 1, 1, 1
	r.DiscloseWithinM, r.DiscloseWithinAltM, r.TimeBufferS, r.DiscloseLingerS = 1, 1, 1, 1
	r.Separation[0].Detector = Cylinder(1, 1)
	r.Separation[1].Detector = DO365WCV(1, 1, 1, 1)
	r.Separation[1].Levels[0].Detector = nil
	r.Performance[1].AltStepM, r.Performance[1].MaxClimbM, r.Performance[1].TurnRateDegPerS = 1, 1, 0.5
	r.Performance[1].VerticalRateMps, r.Performance[1].MinVerticalSpeedMps, r.Performance[1].MaxVerticalSpeedMps = 0.5, -0.5, 0.5
	r.Performance[1].MinGroundSpeedMps, r.Performance[1].MaxGroundSpeedMps = 0, 1
	if err := r.Validate(); err != nil {
		t.Errorf("rules at their lower bounds: %v", err)
	}
	negZero := math.Copysign(0, -1)
	r.DiscloseWithinM, r.DiscloseWithinAltM, r.TimeBufferS, r.DiscloseLingerS = 0, negZero, negZero, 0
	r.Separation[1].Detector = DO365WCV(1, 1, negZero, 0)
	r.Performance[1].MaxClimbM, r.Performance[1].MinVerticalSpeedMps = negZero, negZero
	if err := r.Validate(); err != nil {
		t.Errorf("rules with zero (and negative zero) where zero means none: %v", err)
	}
}
