package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
)

// report is one position report on the wire.
func report(aircraft string, lat, lon, altM, velEastMps float64, at time.Time) map[string]any {
	return map[string]any{"aircraft": aircraft, "callsign": "CS-" + aircraft, "time": at.UTC(), "lat": lat, "lon": lon,
		"alt_m": altM, "vel_east_mps": velEastMps, "vel_north_mps": 0.0, "vel_up_mps": 0.0}
}

func TestConflictAlertReachesBothPartiesOnly(t *testing.T) {
	e := newEnv(t, Options{})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	sc := e.openStream(e.tokens["coalition"], "")
	sr := e.openStream(e.tokens["russia"], "")
	sb := e.openStream(third.Token, "")

	now := time.Now()
	// Head on at the same altitude, 20 km apart, 400 m/s closure: loss of
	// separation in about 27 s.
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RF-1", 35.0, 36.1, 6000, -200, now)}}, 202, &out)
	if out.Accepted != 1 {
		t.Fatalf("%+v", out)
	}
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-1", 35.0, 35.88, 6000, 200, now)}}, 202, &out)

	var ids []string
	for _, s := range []*stream{sc, sr} {
		ev := s.next(t)
		if ev.Kind != "alert_raised" {
			t.Fatalf("first event %s", ev.Kind)
		}
		var a struct {
			ID       string
			Kind     string
			Level    string
			TInS     float64 `json:"t_in_s"`
			Aircraft []struct{ Party, Aircraft string }
		}
		if err := json.Unmarshal(ev.Data.Data, &a); err != nil {
			t.Fatal(err)
		}
		if a.Kind != "conflict" || a.Level != "warning" || a.TInS <= 0 || a.TInS > 60 || len(a.Aircraft) != 2 {
			t.Fatalf("alert %+v", a)
		}
		ids = append(ids, a.ID)
	}
	if ids[0] != ids[1] {
		t.Fatalf("the two parties got different alerts: %v", ids)
	}
	for name, tok := range map[string]string{"coalition": e.tokens["coalition"], "russia": e.tokens["russia"]} {
		b := e.mustDo("GET", "/v1/alerts", tok, nil, 200, nil)
		if !strings.Contains(string(b), ids[0]) {
			t.Fatalf("%s: alerts lack %s: %s", name, ids[0], b)
		}
	}
	if b := e.mustDo("GET", "/v1/alerts", third.Token, nil, 200, nil); strings.Contains(string(b), ids[0]) {
		t.Fatalf("a third party sees the alert: %s", b)
	}
	// The bystander's stream got nothing of it: the next thing it sees is
	// a later event for everyone.
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{}, 202, nil)
	if ev := sb.next(t); ev.Kind != "rules_proposed" {
		t.Fatalf("bystander saw %s", ev.Kind)
	}

	var tr struct {
		Tracks []wireTrack
	}
	e.mustDo("GET", "/v1/tracks?bbox=35.5,34.5,36.5,35.5", e.tokens["russia"], nil, 200, &tr)
	if len(tr.Tracks) != 2 {
		t.Fatalf("tracks %+v", tr.Tracks)
	}
	e.mustDo("GET", "/v1/tracks?bbox=0,0,1,1", e.tokens["russia"], nil, 200, &tr)
	if len(tr.Tracks) != 0 {
		t.Fatalf("tracks outside the box: %+v", tr.Tracks)
	}
	if code, _, _ := e.do("GET", "/v1/tracks?bbox=1,2,3", e.tokens["russia"], nil); code != 400 {
		t.Fatalf("bad bbox: %d", code)
	}
}

func TestNonconformingAlertConcernsEveryone(t *testing.T) {
	e := newEnv(t, Options{})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	// The coalition declares where it flies, then flies elsewhere.
	var v wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35.4, 36.0, "orbit", nil), 201, &v)
	sb := e.openStream(third.Token, "")
	now := time.Now()
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-9", 20.0, 20.0, 6000, 100, now)}}, 202, nil)
	ev := sb.next(t)
	if ev.Kind != "alert_raised" || !strings.Contains(string(ev.Data.Data), `"nonconforming"`) {
		t.Fatalf("bystander got %s %s", ev.Kind, ev.Data.Data)
	}
}

// TestRulesChangeRetunesDetection: new rules rebuild the tactical picture:
// the open alerts are cleared (reason rules_changed) and the conflicts that
// still exist under the new rules raised again.
func TestRulesChangeRetunesDetection(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now()
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RF-1", 35.0, 36.1, 6000, -200, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-1", 35.0, 35.88, 6000, 200, now)}}, 202, nil)
	s := e.openStream(e.tokens["coalition"], "")
	first := s.next(t)
	if first.Kind != "alert_raised" {
		t.Fatalf("%s", first.Kind)
	}
	if item := s.next(t); item.Kind != "message" || !strings.Contains(string(item.Data.Data), `"alert"`) {
		t.Fatalf("no hotline item after the alert: %s %s", item.Kind, item.Data.Data)
	}
	if first.Kind != "alert_raised" {
		t.Fatalf("%s", first.Kind)
	}
	// A change of detection: the manned entry's vertical minimum
	// lowered, still a conflict with both at 6000 m. (The top-level
	// vertical_sep_m is the volumes' separation: a change of it alone
	// keeps the alerts.)
	r := rules.Default()
	manned := r.SeparationFor(rules.ClassManned, rules.ClassManned)
	manned.Detector = rules.Cylinder(rules.Param(manned.Detector.HorizontalM), 100)
	e.agreeRules(r)
	var kinds []string
	var cleared struct{ ID, Reason string }
	for len(kinds) < 3 {
		ev := s.next(t)
		switch ev.Kind {
		case "message", "ack", "rules_proposed", "rules_answered":
			continue // the hotline items, the proposal and its answers
		}
		kinds = append(kinds, ev.Kind)
		if ev.Kind == "alert_cleared" {
			_ = json.Unmarshal(ev.Data.Data, &cleared)
		}
	}
	if strings.Join(kinds, ",") != "rules_changed,alert_cleared,alert_raised" {
		t.Fatalf("events after the rules change: %v", kinds)
	}
	var a struct{ ID string }
	_ = json.Unmarshal(first.Data.Data, &a)
	if cleared.ID != a.ID || cleared.Reason != "rules_changed" {
		t.Fatalf("cleared %+v, want %s rules_changed", cleared, a.ID)
	}
}
