package rules_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/deconflict/deconflict/internal/rules"
)

// olderSeeds are stored rules an older version accepted and this one
// does not (durations "above zero", an hour of lookahead and staleness,
// 10,000 vertices, a buffer before any bound), and rules at the bounds.
var olderSeeds = []string{
	`{}`,
	`{"lookahead_s": 3600, "stale_after_s": 3600, "max_vertices": 10000}`,
	`{"ack_deadline_s": 1e-10, "ack_deadline_highest_s": 5e-324, "escalation_deadline_s": 1e-300, "witness_max_age_s": 0.5}`,
	`{"time_buffer_s": 1e15, "max_window_s": 1e18, "disclose_linger_s": 1e300}`,
	`{"max_footprint_m": 1e9, "max_footprint_area_m2": 1e20, "max_alt_range_m": 1e6}`,
	`{"lookahead_s": 600, "stale_after_s": 300, "max_vertices": 2000, "time_buffer_s": 86400}`,
	`{"separation": [{"classes": ["manned", "manned"], "detector": {"kind": "cylinder", "horizontal_m": 9260, "vertical_m": 304.8}, "lookahead_s": 0.001, "levels": [{"name": "a", "max_time_to_los_s": 0.001}]}], "classes": ["manned"]}`,
}

// FuzzInUse: whatever rules a store holds, the rules the process runs
// with pass CheckOperable (every figure the process depends on within the
// bounds), InUse changes only what it lists and leaves the stored rules
// as they were, and rules that pass Validate are used exactly as agreed.
func FuzzInUse(f *testing.F) {
	for _, s := range olderSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := rules.Decode(body)
		if err != nil {
			return
		}
		before, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		u, clamped := r.InUse()
		if after, _ := json.Marshal(r); string(after) != string(before) {
			t.Fatalf("InUse changed the agreed rules:\n%s\n%s", before, after)
		}
		if err := u.CheckOperable(); err != nil {
			t.Fatalf("the rules in use are not operable: %v", err)
		}
		if again, c := u.InUse(); len(c) != 0 || !reflect.DeepEqual(again, u) {
			t.Fatalf("InUse is not idempotent: %v", c)
		}
		if r.Validate() == nil && (len(clamped) != 0 || !reflect.DeepEqual(u, r)) {
			t.Fatalf("valid rules clamped: %v", clamped)
		}
		changes, err := rules.Diff(r, u)
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, c := range clamped {
			listed[c.Field] = true
			if c.Agreed == c.InUse {
				t.Errorf("%s listed as clamped and unchanged", c.Field)
			}
		}
		for _, c := range changes {
			if c.Field == "separation" {
				continue // listed by entry
			}
			if !listed[c.Field] {
				t.Errorf("%s changed but not listed: %s -> %s", c.Field, c.Old, c.New)
			}
		}
	})
}

// TestInUseOfOlderRules: the figures of rules an older version accepted
// that the process cannot run with are clamped to the nearest bound, and
// named.
func TestInUseOfOlderRules(t *testing.T) {
	r, err := rules.Decode([]byte(olderSeeds[1]))
	if err != nil {
		t.Fatal(err)
	}
	r.AckDeadlineS = 1e-10
	r.Separation[0].LookaheadS = 3600
	u, clamped := r.InUse()
	want := map[string][2]float64{
		"lookahead_s": {3600, 600}, "stale_after_s": {3600, 300}, "ack_deadline_s": {1e-10, 1},
		"max_vertices": {10000, 2000}, "separation[0].lookahead_s": {3600, 600},
	}
	got := map[string][2]float64{}
	for _, c := range clamped {
		got[c.Field] = [2]float64{c.Agreed, c.InUse}
		if c.Why == "" {
			t.Errorf("%s: no reason", c.Field)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("clamped %v, want %v", got, want)
	}
	if u.LookaheadS != 600 || u.Separation[0].LookaheadS != 600 || r.Separation[0].LookaheadS != 3600 || u.MaxVertices != 2000 {
		t.Errorf("in use: lookahead %g, entry %g (agreed entry %g), vertices %d", u.LookaheadS, u.Separation[0].LookaheadS, r.Separation[0].LookaheadS, u.MaxVertices)
	}
}
