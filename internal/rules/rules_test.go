package rules

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
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
