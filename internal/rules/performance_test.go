package rules

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/fielderr"
)

// The default rules have one performance entry per class: manned with
// DAIDALUS's DO-365B ranges, uas with a small drone's.
func TestDefaultPerformance(t *testing.T) {
	r := Default()
	if len(r.Performance) != 2 || r.Performance[0].Class != ClassManned || r.Performance[1].Class != ClassUAS {
		t.Fatalf("performance %+v", r.Performance)
	}
	m := r.PerformanceFor(ClassManned)
	// 700 kt, 6,000 fpm, 50,000 ft, 1,500 fpm, 10,000 ft.
	if math.Abs(m.MaxGroundSpeedMps-360.1111) > 1e-3 || math.Abs(m.MaxVerticalSpeedMps-30.48) > 1e-9 || m.MaxAltM != 15240 ||
		math.Abs(m.VerticalRateMps-7.62) > 1e-9 || m.MaxClimbM != 3048 || m.TurnRateDegPerS != 3 {
		t.Fatalf("manned %+v", m)
	}
	u := r.PerformanceFor(ClassUAS)
	if u.MinGroundSpeedMps != 5 || u.MaxGroundSpeedMps != 50 || u.MinAltM != 30 || u.MaxAltM != 150 || u.MaxClimbM != 60 {
		t.Fatalf("uas %+v", u)
	}
	// A class of the parties' own without an entry: the manned limits,
	// the widest, under its own name.
	g := r.PerformanceFor("glider")
	if g.Class != "glider" {
		t.Fatalf("glider %+v", g)
	}
	g.Class = ClassManned
	if g != m {
		t.Fatalf("glider %+v, want the manned limits %+v", g, m)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Rules stored before the limits existed read with the default of each
// class (manned for a class of their own), and round-trip through JSON.
func TestDecodeFillsPerformance(t *testing.T) {
	r := Default()
	r.Classes = append(r.Classes, "glider")
	r.Separation = append(r.Separation,
		Separation{Classes: []string{"glider", "manned"}, Detector: Cylinder(1000, 100), LookaheadS: 60, Levels: []SeparationLevel{{Name: "advisory", MaxTimeToLoSS: 60}}},
		Separation{Classes: []string{"glider", "uas"}, Detector: Cylinder(1000, 100), LookaheadS: 60, Levels: []SeparationLevel{{Name: "advisory", MaxTimeToLoSS: 60}}},
		Separation{Classes: []string{"glider", "glider"}, Detector: Cylinder(1000, 100), LookaheadS: 60, Levels: []SeparationLevel{{Name: "advisory", MaxTimeToLoSS: 60}}})
	r.Performance = nil
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(b), `,"performance":null`, "", 1)
	if old == string(b) {
		t.Fatalf("no performance field to take out: %s", b)
	}
	back, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	g := DefaultPerformance(ClassManned)
	g.Class = "glider"
	want := []Performance{DefaultPerformance(ClassManned), DefaultPerformance(ClassUAS), g}
	if !reflect.DeepEqual(back.Performance, want) {
		t.Fatalf("filled %+v, want %+v", back.Performance, want)
	}
	b, _ = json.Marshal(back)
	again, err := Decode(b)
	if err != nil || !reflect.DeepEqual(again.Performance, want) {
		t.Fatalf("round trip: %+v %v", again.Performance, err)
	}
}

func TestPerformanceValidationNamesTheField(t *testing.T) {
	cases := []struct {
		field, msg string
		mutate     func(*Rules)
	}{
		{"performance", "no entry for the class uas", func(r *Rules) { r.Performance = r.Performance[:1] }},
		{"performance", "no entry for the class manned", func(r *Rules) { r.Performance = []Performance{} }},
		{"performance[1].class", "a second entry", func(r *Rules) { r.Performance[1].Class = ClassManned }},
		{"performance[1].class", "unknown class", func(r *Rules) { r.Performance[1].Class = "drone" }},
		{"performance[1].min_ground_speed_mps", "from 0", func(r *Rules) { r.Performance[1].MinGroundSpeedMps = -1 }},
		{"performance[1].max_ground_speed_mps", "finite", func(r *Rules) { r.Performance[1].MaxGroundSpeedMps = math.NaN() }},
		{"performance[1].max_ground_speed_mps", "above min_ground_speed_mps", func(r *Rules) { r.Performance[1].MaxGroundSpeedMps = 5 }},
		{"performance[0].max_ground_speed_mps", "to 1000", func(r *Rules) { r.Performance[0].MaxGroundSpeedMps = 1e6 }},
		{"performance[1].min_vertical_speed_mps", "to 0", func(r *Rules) { r.Performance[1].MinVerticalSpeedMps = 1 }},
		{"performance[1].max_vertical_speed_mps", "finite", func(r *Rules) { r.Performance[1].MaxVerticalSpeedMps = math.Inf(1) }},
		{"performance[1].max_vertical_speed_mps", "above min_vertical_speed_mps", func(r *Rules) {
			r.Performance[1].MinVerticalSpeedMps, r.Performance[1].MaxVerticalSpeedMps = 0, 0
		}},
		{"performance[1].min_alt_m", "from -1000", func(r *Rules) { r.Performance[1].MinAltM = -1e6 }},
		{"performance[1].max_alt_m", "above min_alt_m", func(r *Rules) { r.Performance[1].MaxAltM = 30 }},
		{"performance[1].alt_step_m", "at least 1", func(r *Rules) { r.Performance[1].AltStepM = 0 }},
		{"performance[1].alt_step_m", "at most", func(r *Rules) { r.Performance[1].AltStepM = 1000 }},
		{"performance[1].turn_rate_deg_per_s", "at least 0.5", func(r *Rules) { r.Performance[1].TurnRateDegPerS = 0 }},
		{"performance[1].vertical_rate_mps", "at most", func(r *Rules) { r.Performance[1].VerticalRateMps = 1e9 }},
		{"performance[1].max_climb_m", "zero or more", func(r *Rules) { r.Performance[1].MaxClimbM = -5 }},
		{"performance[1].max_climb_m", "at most", func(r *Rules) { r.Performance[1].MaxClimbM = 1000 }},
		{"performance[0].max_climb_m", "steps of alt_step_m", func(r *Rules) { r.Performance[0].AltStepM = 1 }},
		{"performance[0].max_climb_m", "at most 1000 steps", func(r *Rules) { r.Performance[0].AltStepM = 3 }},
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
	// A class added with an entry of its own is accepted.
	r := Default()
	r.Classes = append(r.Classes, "glider")
	for _, other := range []string{"manned", "uas", "glider"} {
		r.Separation = append(r.Separation, Separation{Classes: []string{"glider", other}, Detector: Cylinder(1000, 100), LookaheadS: 60,
			Levels: []SeparationLevel{{Name: "advisory", MaxTimeToLoSS: 60}}})
	}
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "no entry for the class glider") {
		t.Fatalf("a class without limits: %v", err)
	}
	g := DefaultPerformance("glider")
	g.MinGroundSpeedMps, g.MaxGroundSpeedMps, g.MinAltM, g.MaxAltM = 15, 80, 0, 6000
	r.Performance = append(r.Performance, g)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}
