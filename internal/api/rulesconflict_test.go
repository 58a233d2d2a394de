package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"
)

// A rules change that raises the separation or the time buffer makes
// stored volumes conflict that did not: both owners hear of each such pair
// as of a conflict found at a write (a volume_conflict event naming the
// rules version, an audit record for the two of them, a hotline item),
// once, and the volumes stay as they are.
func TestRulesChangeReportsNewConflicts(t *testing.T) {
	e := newEnv(t, Options{})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, http.StatusCreated, &third)
	start := time.Now().UTC().Truncate(time.Second).Add(time.Hour)
	declare := func(party string, lat, lon, lowerM float64, from, to time.Time) wireVolume {
		var v wireVolume
		e.mustDo("POST", "/v1/volumes", e.tokens[party], map[string]any{
			"footprint":   map[string]any{"type": "Circle", "center": []float64{lon, lat}, "radius_m": 5000},
			"alt_lower_m": lowerM, "alt_upper_m": lowerM + 1000, "start": from, "end": to,
		}, http.StatusCreated, &v)
		if len(v.Conflicts) != 0 {
			t.Fatalf("%s's volume conflicts when written: %+v", party, v.Conflicts)
		}
		return v
	}
	// 25 km between the centres of two 5 km circles: 15 km apart, more
	// than the 9,260 m separation in force.
	nearA := declare("coalition", 35, 36, 5000, start, start.Add(time.Hour))
	nearB := declare("russia", 35.2248, 36, 5000, start, start.Add(time.Hour))
	// The same place and band, windows ten minutes apart: more than twice
	// the 60 s time buffer.
	laterA := declare("coalition", 30, 30, 5000, start, start.Add(time.Hour))
	laterB := declare("russia", 30, 30, 5000, start.Add(70*time.Minute), start.Add(2*time.Hour))
	far := declare("russia", 20, 20, 5000, start, start.Add(time.Hour))
	streams := map[string]*stream{"coalition": e.openStream(e.tokens["coalition"], ""), "russia": e.openStream(e.tokens["russia"], "")}

	type conflict struct {
		Volumes []struct {
			ID, Party, Version string
			Details            json.RawMessage
		}
		RulesVersion int64 `json:"rules_version"`
	}
	// nextConflict is the next volume_conflict event on party's stream
	// after the rules_changed of version.
	nextConflict := func(party string, version int64) conflict {
		t.Helper()
		changed := false
		for {
			ev := streams[party].next(t)
			if ev.Kind == "rules_changed" {
				var r struct{ Version int64 }
				_ = json.Unmarshal(ev.Data.Data, &r)
				changed = r.Version == version
				continue
			}
			if !changed || ev.Kind != "volume_conflict" {
				continue
			}
			var c conflict
			if err := json.Unmarshal(ev.Data.Data, &c); err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	ids := func(c conflict) []string {
		var out []string
		for _, v := range c.Volumes {
			out = append(out, v.ID+"@"+v.Version)
			if v.Details != nil {
				t.Errorf("a conflict's event shows volume %s with its details", v.ID)
			}
		}
		return out
	}
	sep := e.agreeRules(map[string]any{"horizontal_sep_m": 20_000}, third.Token)
	buffer := e.agreeRules(map[string]any{"time_buffer_s": 600}, third.Token)
	for _, step := range []struct {
		version int64
		a, b    wireVolume
	}{{sep.Version, nearA, nearB}, {buffer.Version, laterA, laterB}} {
		want := []string{step.a.ID + "@" + step.a.Version, step.b.ID + "@" + step.b.Version}
		slices.Sort(want)
		for _, party := range []string{"coalition", "russia"} {
			c := nextConflict(party, step.version)
			if got := ids(c); !slices.Equal(got, want) || c.RulesVersion != step.version {
				t.Errorf("%s after rules version %d: conflict %v of version %d, want %v", party, step.version, got, c.RulesVersion, want)
			}
			// The hotline item, to both, in the thread of the first volume.
			var out struct{ Messages []map[string]any }
			e.mustDo("GET", "/v1/hotline/messages?thread=volume:"+min(step.a.ID, step.b.ID), e.tokens[party], nil, 200, &out)
			if !slices.ContainsFunc(out.Messages, func(m map[string]any) bool { return m["kind"] == "volume_conflict" && m["from"] == "deconflict" }) {
				t.Errorf("%s has no hotline item of the conflict brought by rules version %d: %v", party, step.version, out.Messages)
			}
		}
	}

	// One audit record per new pair, for its two owners only; the pair
	// that already conflicted is not reported again by the second change.
	for viewer, tok := range map[string]string{"coalition": e.tokens["coalition"], "russia": e.tokens["russia"], "bystander": third.Token} {
		var found []int64
		for line := range bytes.Lines(e.mustDo("GET", "/v1/audit", tok, nil, 200, nil)) {
			var rec struct {
				Kind    string
				Content conflict
			}
			if json.Unmarshal(line, &rec) == nil && rec.Kind == "volume_conflict" {
				found = append(found, rec.Content.RulesVersion)
			}
		}
		want := []int64{sep.Version, buffer.Version}
		if viewer == "bystander" {
			want = nil
		}
		if !slices.Equal(found, want) {
			t.Errorf("%s's export has volume_conflict records of rules versions %v, want %v", viewer, found, want)
		}
	}
	for _, v := range []wireVolume{nearA, nearB, laterA, laterB, far} {
		var now wireVolume
		e.mustDo("GET", "/v1/volumes/"+v.ID, e.tokens[v.Party], nil, 200, &now)
		if now.State != v.State || now.Version != v.Version {
			t.Errorf("volume %s changed with the rules: %+v", v.ID, now)
		}
	}
}
