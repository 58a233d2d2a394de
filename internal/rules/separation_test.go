package rules

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/fielderr"
)

// The default table: manned-manned is the top-level cylinder, lookahead and
// levels (today's detection); manned-uas DO-365B Phase I as DAIDALUS sets
// it (the float64 values of the DAIDALUS reference README, section 3.1);
// uas-uas a 50 m / 15 m cylinder looking 60 s ahead.
func TestDefaultTable(t *testing.T) {
	r := Default()
	if strings.Join(r.Classes, ",") != "manned,uas" {
		t.Fatalf("classes %v", r.Classes)
	}
	mm := r.SeparationFor(ClassManned, ClassManned)
	if mm == nil || mm.Detector.Kind != DetectorCylinder || *mm.Detector.HorizontalM != r.HorizontalSepM || *mm.Detector.VerticalM != r.VerticalSepM ||
		mm.LookaheadS != r.LookaheadS || len(mm.Levels) != len(r.Levels) {
		t.Fatalf("manned-manned %+v", mm)
	}
	for i, l := range r.Levels {
		if mm.Levels[i] != (SeparationLevel{Name: l.Name, MaxTimeToLoSS: l.MaxTimeToLoSS}) {
			t.Fatalf("manned-manned level %d: %+v, want %+v", i, mm.Levels[i], l)
		}
	}
	mu := r.SeparationFor(ClassUAS, ClassManned)
	if mu == nil || mu != r.SeparationFor(ClassManned, ClassUAS) {
		t.Fatal("manned-uas is not found in both orders")
	}
	d := mu.Detector
	if d.Kind != DetectorDO365WCV || *d.DTHRM != 1222.3200000000002 || *d.ZTHRM != 137.16 || *d.TTHRS != 35 || *d.TCOAS != 0 || mu.LookaheadS != 180 {
		t.Fatalf("manned-uas %+v", d)
	}
	want := []struct {
		name string
		t    float64
		zthr float64
	}{{"preventive", 55, 213.36000000000001}, {"corrective", 55, 137.16}, {"warning", 25, 137.16}}
	for i, w := range want {
		l := mu.Levels[i]
		if l.Name != w.name || l.MaxTimeToLoSS != w.t || *mu.LevelDetector(i).ZTHRM != w.zthr {
			t.Fatalf("manned-uas level %d: %+v", i, l)
		}
	}
	uu := r.SeparationFor(ClassUAS, ClassUAS)
	if uu == nil || *uu.Detector.HorizontalM != 50 || *uu.Detector.VerticalM != 15 || uu.LookaheadS != 60 {
		t.Fatalf("uas-uas %+v", uu)
	}
	if r.LevelRank("warning") != 2 || r.LevelRank("corrective") != 1 || r.LevelRank("preventive") != 0 || r.LevelRank("nope") != -1 {
		t.Fatal("level ranks")
	}
	if !r.IsHighest("warning") || r.IsHighest("corrective") || r.IsHighest("") {
		t.Fatal("highest levels")
	}
}

// Rules stored before the table existed (and bodies in that older shape)
// get the default table built from their own minima, lookahead and levels:
// their manned traffic is detected as it was.
func TestDecodeBuildsTheTableFromOldRules(t *testing.T) {
	old := `{"version":3,"horizontal_sep_m":5000,"vertical_sep_m":300,"time_buffer_s":60,"lookahead_s":200,
	 "levels":[{"name":"only","max_time_to_los_s":100}],"stale_after_s":30,"same_party_alerts":false,
	 "ack_deadline_s":120,"ack_deadline_highest_s":30,"escalation_deadline_s":120,
	 "max_window_s":86400,"max_footprint_m":500000,"max_vertices":1000}`
	r, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	mm := r.SeparationFor(ClassManned, ClassManned)
	if *mm.Detector.HorizontalM != 5000 || *mm.Detector.VerticalM != 300 || mm.LookaheadS != 200 || len(mm.Levels) != 1 || mm.Levels[0].Name != "only" {
		t.Fatalf("manned-manned %+v", mm)
	}
	// A table that is present is kept as sent, even empty (and then
	// refused).
	r, err = Decode([]byte(strings.Replace(old, `"version":3,`, `"version":3,"separation":[],`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	var fe *fielderr.Error
	if err := r.Validate(); !errors.As(err, &fe) || fe.Field != "separation" || !strings.Contains(fe.Msg, "manned and manned") {
		t.Fatalf("empty table: %v", err)
	}
}

func TestTableJSONRoundTrip(t *testing.T) {
	r := Default()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	// Absent parameters are absent on the wire, not zero.
	if strings.Contains(string(b), `"horizontal_m":null`) || !strings.Contains(string(b), `"tcoa_s":0`) || strings.Count(string(b), `"dthr_m"`) != 2 {
		t.Fatalf("wire form %s", b)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) {
		t.Fatalf("round trip changed the rules:\n%s\n%s", b, b2)
	}
}

func TestTableValidationNamesTheField(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		field, msg string
		mutate     func(*Rules)
	}{
		{"classes", "from 1", func(r *Rules) { r.Classes = []string{} }},
		{"classes[2]", "1 to 32 bytes", func(r *Rules) { r.Classes = append(r.Classes, "Heavy Jet") }},
		{"classes[2]", "duplicate", func(r *Rules) { r.Classes = append(r.Classes, "uas") }},
		{"classes", `"uas"`, func(r *Rules) { r.Classes = []string{"manned"} }},
		{"separation", "no entry for the classes uas and uas", func(r *Rules) { r.Separation = r.Separation[:2] }},
		{"separation", "no entry for the classes manned and glider", func(r *Rules) { r.Classes = append(r.Classes, "glider") }},
		{"separation[2].classes", "a second entry", func(r *Rules) { r.Separation[1].Classes = []string{"uas", "uas"} }},
		{"separation[0].classes", "exactly two", func(r *Rules) { r.Separation[0].Classes = []string{"manned"} }},
		{"separation[2].classes[1]", "unknown class", func(r *Rules) { r.Separation[2].Classes[1] = "drone" }},
		{"separation[0].detector.kind", "unknown detector", func(r *Rules) { r.Separation[0].Detector.Kind = "tcas" }},
		{"separation[0].detector.vertical_m", "required", func(r *Rules) { r.Separation[0].Detector.VerticalM = nil }},
		{"separation[0].detector.dthr_m", "not a parameter", func(r *Rules) { r.Separation[0].Detector.DTHRM = f(1000) }},
		{"separation[1].detector.tthr_s", "zero or more", func(r *Rules) { r.Separation[1].Detector.TTHRS = f(-1) }},
		{"separation[1].detector.tcoa_s", "at most", func(r *Rules) { r.Separation[1].Detector.TCOAS = f(1e9) }},
		{"separation[1].detector.dthr_m", "at least 1", func(r *Rules) { r.Separation[1].Detector.DTHRM = f(0) }},
		{"separation[1].detector.zthr_m", "finite", func(r *Rules) { r.Separation[1].Detector.ZTHRM = f(math.NaN()) }},
		{"separation[2].detector.horizontal_m", "at most", func(r *Rules) { r.Separation[2].Detector.HorizontalM = f(1e7) }},
		{"separation[2].lookahead_s", "at most", func(r *Rules) { r.Separation[2].LookaheadS = 1e9 }},
		{"separation[2].levels", "from 1", func(r *Rules) { r.Separation[2].Levels = nil }},
		{"separation[2].levels[1].name", "duplicate", func(r *Rules) { r.Separation[2].Levels[1].Name = "advisory" }},
		{"separation[2].levels[0].max_time_to_los_s", "lookahead", func(r *Rules) { r.Separation[2].Levels[0].MaxTimeToLoSS = 61 }},
		{"separation[2].levels[2].max_time_to_los_s", "ordered", func(r *Rules) { r.Separation[2].Levels[2].MaxTimeToLoSS = 31 }},
		// An alerting time below a second alerts no sooner than the loss
		// itself: no time a person or a surveillance source can work to.
		{"separation[2].levels[2].max_time_to_los_s", "at least 1 s", func(r *Rules) { r.Separation[2].Levels[2].MaxTimeToLoSS = 1e-300 }},
		{"separation[1].levels[2].max_time_to_los_s", "at least 1 s", func(r *Rules) { r.Separation[1].Levels[2].MaxTimeToLoSS = 0.5 }},
		{"separation[1].levels[0].detector.kind", "entry's kind", func(r *Rules) {
			c := Cylinder(10, 10)
			r.Separation[1].Levels[0].Detector = &c
		}},
		{"separation[1].levels[0].detector.zthr_m", "required", func(r *Rules) { r.Separation[1].Levels[0].Detector.ZTHRM = nil }},
	}
	for _, c := range cases {
		r := Default()
		c.mutate(&r)
		err := r.Validate()
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("%s: got %v, want the field named with %q", c.field, err, c.msg)
		}
	}
}
