package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
)

func TestMeAndRules(t *testing.T) {
	e := newEnv(t, Options{})
	var me struct {
		Party    string
		Operator bool
	}
	e.mustDo("GET", "/v1/me", e.tokens["coalition"], nil, 200, &me)
	if me.Party != "coalition" || me.Operator {
		t.Fatalf("me = %+v", me)
	}
	e.mustDo("GET", "/v1/me", e.operator, nil, 200, &me)
	if !me.Operator {
		t.Fatalf("operator token: me = %+v", me)
	}
	var r rules.Rules
	e.mustDo("GET", "/v1/rules", e.tokens["russia"], nil, 200, &r)
	if r.Version != 1 || r.HorizontalSepM != rules.Default().HorizontalSepM {
		t.Fatalf("rules = %+v", r)
	}
}

func TestPutRulesOperatorOnlyAndAnnounced(t *testing.T) {
	e := newEnv(t, Options{})
	s1 := e.openStream(e.tokens["coalition"], "")
	s2 := e.openStream(e.tokens["russia"], "")
	r := rules.Default()
	r.LookaheadS = 240
	r.Levels[0].MaxTimeToLoSS = 240

	code, body, _ := e.do("PUT", "/v1/rules", e.tokens["coalition"], r)
	if code != http.StatusForbidden {
		t.Fatalf("party PUT /v1/rules: %d %s", code, body)
	}
	var got rules.Rules
	if p := e.agreeRules(r); p.Version != 2 || p.Rules.LookaheadS != 240 {
		t.Fatalf("new rules = %+v", p)
	}
	e.mustDo("GET", "/v1/rules", e.tokens["coalition"], nil, 200, &got)
	if got.Version != 2 {
		t.Fatalf("rules in force: version %d", got.Version)
	}
	for _, s := range []*stream{s1, s2} {
		ev := s.next(t)
		for ev.Kind != "rules_changed" {
			ev = s.next(t) // the proposal, its hotline item, the answers
		}
		if ev.Data.ID != ev.ID {
			t.Fatalf("event %+v", ev)
		}
		var rr rules.Rules
		if err := json.Unmarshal(ev.Data.Data, &rr); err != nil || rr.Version != 2 {
			t.Fatalf("event data %s: %v", ev.Data.Data, err)
		}
	}

	// Invalid rules name the field and change nothing (sent with the
	// version in force, as read: another is refused on version).
	r.Version = got.Version
	r.VerticalSepM = -1
	code, body, _ = e.do("PUT", "/v1/rules", e.operator, r)
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != 400 || p.Field != "vertical_sep_m" {
		t.Fatalf("invalid rules: %d %s", code, body)
	}
	e.mustDo("GET", "/v1/rules", e.tokens["coalition"], nil, 200, &got)
	if got.Version != 2 {
		t.Fatalf("a refused rules change made version %d", got.Version)
	}
}

// TestPutRulesSeparationTable: a table that misses a pair of classes, a
// detector with a missing or out-of-range parameter, or performance
// limits missing a class or out of range, is refused naming the field; a
// valid table is proposed.
func TestPutRulesSeparationTable(t *testing.T) {
	e := newEnv(t, Options{})
	for _, c := range []struct {
		field  string
		mutate func(*rules.Rules)
	}{
		{"separation", func(r *rules.Rules) { r.Separation = r.Separation[:2] }},
		{"separation[1].detector.tthr_s", func(r *rules.Rules) { r.Separation[1].Detector.TTHRS = nil }},
		{"separation[1].detector.dthr_m", func(r *rules.Rules) { v := -5.0; r.Separation[1].Detector.DTHRM = &v }},
		{"separation[0].detector.kind", func(r *rules.Rules) { r.Separation[0].Detector.Kind = "sphere" }},
		{"classes", func(r *rules.Rules) { r.Classes = []string{"manned"} }},
		{"performance", func(r *rules.Rules) { r.Performance = r.Performance[:1] }},
		{"performance[1].max_alt_m", func(r *rules.Rules) { r.Performance[1].MaxAltM = 10 }},
		{"performance[0].turn_rate_deg_per_s", func(r *rules.Rules) { r.Performance[0].TurnRateDegPerS = -3 }},
	} {
		r := rules.Default()
		c.mutate(&r)
		code, body, _ := e.do("PUT", "/v1/rules", e.operator, r)
		var p Problem
		_ = json.Unmarshal(body, &p)
		if code != 400 || p.Field != c.field {
			t.Errorf("%s: %d %s", c.field, code, body)
		}
	}
	// A proposal may carry the table alone: the other fields stay.
	sep := rules.Default().Separation
	*sep[2].Detector.HorizontalM = 80
	var prop rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"separation": sep}, 202, &prop)
	if uu := prop.Rules.SeparationFor(rules.ClassUAS, rules.ClassUAS); uu == nil || *uu.Detector.HorizontalM != 80 || prop.Rules.HorizontalSepM != rules.Default().HorizontalSepM {
		t.Fatalf("proposal %+v", prop.Rules)
	}
}

func TestProblemJSON(t *testing.T) {
	e := newEnv(t, Options{})
	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		slug, field               string
	}{
		{"no token", "GET", "/v1/me", "", nil, 401, "unauthenticated", ""},
		{"malformed token", "GET", "/v1/me", "not-a-token", nil, 401, "unauthenticated", ""},
		{"unknown route", "GET", "/v1/nothing", e.tokens["russia"], nil, 404, "not-found", ""},
		{"bad json", "POST", "/v1/positions", e.tokens["russia"], `{"reports":[`, 400, "invalid-field", ""},
		{"wrong type", "POST", "/v1/positions", e.tokens["russia"], `{"reports":[{"lat":"north"}]}`, 400, "invalid-field", "reports.lat"},
		{"unknown field", "POST", "/v1/parties", e.operator, `{"name":"x","colour":"red"}`, 400, "invalid-field", "colour"},
		{"unknown volume field", "POST", "/v1/volumes", e.tokens["russia"], withField(circleVolume(35, 36, "x", nil), "priorty", 5), 400, "invalid-field", "priorty"},
		{"zero-area polygon", "POST", "/v1/volumes", e.tokens["russia"], withField(circleVolume(35, 36, "x", nil), "footprint",
			map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{0, 0}, {1, 0}, {2, 0}, {0, 0}}}}), 400, "invalid-field", "footprint.coordinates[0]"},
		{"bad party name", "POST", "/v1/parties", e.operator, `{"name":"Bad Name"}`, 400, "invalid-field", "name"},
		{"existing party", "POST", "/v1/parties", e.operator, `{"name":"russia"}`, 409, "exists", ""},
		{"wrong method", "DELETE", "/v1/me", e.tokens["russia"], nil, 405, "method-not-allowed", ""},
		{"wrong method with id", "DELETE", "/v1/volumes/x", e.tokens["russia"], nil, 405, "method-not-allowed", ""},
		{"bad cursor", "GET", "/v1/events?after=x", e.tokens["russia"], nil, 400, "invalid-field", "after"},
		{"since in year 9999", "GET", "/v1/hotline/messages?since=9999-01-01T00:00:00Z", e.tokens["russia"], nil, 400, "invalid-field", "since"},
		{"since in year 1600", "GET", "/v1/hotline/messages?since=1600-01-01T00:00:00Z", e.tokens["russia"], nil, 400, "invalid-field", "since"},
		{"from in year 9999", "GET", "/v1/volumes?from=9999-01-01T00:00:00Z", e.tokens["russia"], nil, 400, "invalid-field", "from"},
		{"to in year 1600", "GET", "/v1/volumes?to=1600-01-01T00:00:00Z", e.tokens["russia"], nil, 400, "invalid-field", "to"},
		{"volume in year 9999", "POST", "/v1/volumes", e.tokens["russia"], withField(withField(circleVolume(35, 36, "x", nil), "start", "9999-01-01T00:00:00Z"), "end", "9999-01-01T01:00:00Z"), 400, "invalid-field", "start"},
		{"details nested 10,000 deep", "POST", "/v1/volumes", e.tokens["russia"], `{"details":` + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + `}`, 400, "invalid-field", "details"},
		{"details nested 9,000 deep in a valid volume", "POST", "/v1/volumes", e.tokens["russia"], withField(circleVolume(35, 36, "x", nil), "details", json.RawMessage(strings.Repeat("[", 9_000)+strings.Repeat("]", 9_000))), 400, "invalid-field", "details"},
		{"nested body", "POST", "/v1/parties", e.operator, `{"name":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, 400, "invalid-field", "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, hdr := e.do(c.method, c.path, c.token, c.body)
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if p.Type != ProblemBase+c.slug || p.Status != c.status || p.Title == "" || p.Field != c.field {
				t.Fatalf("problem %+v, want slug %s field %q", p, c.slug, c.field)
			}
		})
	}
}

// withField returns body with one field set.
func withField(body map[string]any, field string, value any) map[string]any {
	body[field] = value
	return body
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, Options{})
	big := `{"name":"` + strings.Repeat("a", smallBody) + `"}`
	code, body, _ := e.do("POST", "/v1/parties", e.operator, big)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "body-too-large") {
		t.Fatalf("%d %s", code, body)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Options{RatePerSecond: 0.01, RateBurst: 3})
	// The env used the operator's bucket; a party starts with a full one.
	tok := e.tokens["coalition"]
	for i := range 3 {
		e.mustDo("GET", "/v1/me", tok, nil, 200, nil)
		_ = i
	}
	code, body, hdr := e.do("GET", "/v1/me", tok, nil)
	if code != http.StatusTooManyRequests || !strings.Contains(string(body), "rate-limited") {
		t.Fatalf("%d %s", code, body)
	}
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	// Another party has its own bucket.
	e.mustDo("GET", "/v1/me", e.tokens["russia"], nil, 200, nil)
	e.wantRefusals(budgetRequests, "coalition", 1)
	e.wantRefusals(budgetRequests, "russia", 0)
}

func TestPartyRevokeAndRotate(t *testing.T) {
	e := newEnv(t, Options{})
	old := e.tokens["russia"]
	e.mustDo("GET", "/v1/me", old, nil, 200, nil) // now cached
	var rot struct{ Token string }
	e.mustDo("POST", "/v1/parties/russia/rotate", e.operator, nil, 200, &rot)
	if code, _, _ := e.do("GET", "/v1/me", old, nil); code != 401 {
		t.Fatalf("rotated-out token: %d", code)
	}
	e.mustDo("GET", "/v1/me", rot.Token, nil, 200, nil)
	e.mustDo("POST", "/v1/parties/russia/revoke", e.operator, nil, 200, nil)
	if code, _, _ := e.do("GET", "/v1/me", rot.Token, nil); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}
	var list struct {
		Parties []struct {
			Name         string
			Disabled     bool
			ActiveTokens int `json:"active_tokens"`
		}
	}
	e.mustDo("GET", "/v1/parties", e.operator, nil, 200, &list)
	found := false
	for _, p := range list.Parties {
		if p.Name == "russia" {
			found = true
			if !p.Disabled || p.ActiveTokens != 0 {
				t.Fatalf("revoked party listed as %+v", p)
			}
		}
	}
	if !found {
		t.Fatal("russia not listed")
	}
	if code, _, _ := e.do("POST", "/v1/parties/nobody/revoke", e.operator, nil); code != 404 {
		t.Fatalf("revoke unknown party: %d", code)
	}
}

func TestPositionValidation(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC()
	good := map[string]any{"aircraft": "RF-1", "callsign": "A", "time": now, "lat": 35.0, "lon": 36.0, "alt_m": 6000.0, "vel_east_mps": 200.0}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	reports := []map[string]any{
		good,
		with("lat", 91.0),
		with("lon", -180.5),
		with("time", now.Add(30*time.Second)),
		with("time", now.Add(-2*time.Minute)),
		with("aircraft", ""),
		with("vel_up_mps", 1e6),
		with("alt_m", 1e9),
	}
	wantField := []string{"", "lat", "lon", "time", "time", "aircraft", "vel_up_mps", "alt_m"}
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": reports}, 202, &out)
	if out.Accepted != 1 || len(out.Rejected) != len(reports)-1 {
		t.Fatalf("answer %+v", out)
	}
	for _, r := range out.Rejected {
		prefix := fmt.Sprintf("reports[%d].%s:", r.Index, wantField[r.Index])
		if !strings.HasPrefix(r.Error, prefix) {
			t.Errorf("rejection %+v, want prefix %q", r, prefix)
		}
	}
	many := make([]map[string]any, MaxReportsPerRequest+1)
	for i := range many {
		many[i] = good
	}
	code, body, _ := e.do("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": many})
	if code != 400 || !strings.Contains(string(body), `"field":"reports"`) {
		t.Fatalf("too many reports: %d %.300s", code, body)
	}
	if code, _, _ := e.do("POST", "/v1/positions", e.operator, map[string]any{"reports": reports[:1]}); code != 403 {
		t.Fatalf("operator positions: %d", code)
	}
}

// TestRequestTimeLimit: a request that runs out of its time limit is
// answered with a problem, not left hanging.
func TestRequestTimeLimit(t *testing.T) {
	e := newEnv(t, Options{})
	// The same service behind a handler whose time limit is already over.
	slow := httptest.NewServer(NewHandler(e.svc, Options{RequestTimeout: time.Nanosecond}))
	defer slow.Close()
	req, _ := http.NewRequest("GET", slow.URL+"/v1/hotline/messages", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["coalition"])
	resp, err := slow.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	code, hdr := resp.StatusCode, resp.Header
	if code != http.StatusServiceUnavailable || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), "timeout") {
		t.Fatalf("%d %s", code, body)
	}
}

// Rules without upper bounds wiped out every volume (a time buffer of 1e15
// s overflowed and the next housekeeping ended every live volume). Every
// figure is bounded, and no rules change ends, shrinks or deletes a
// volume: the owners of the volumes that break the new rules are told.
func TestRulesChangeNeverEndsVolumes(t *testing.T) {
	e := newEnv(t, Options{})
	var a, b wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35, 36, "x", nil), 201, &a)
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(20, 20, "y", nil), 201, &b)
	sc := e.openStream(e.tokens["coalition"], "")

	for field, value := range map[string]float64{"time_buffer_s": 1e15, "lookahead_s": 1e12, "max_window_s": 1e18} {
		var r map[string]any
		e.mustDo("GET", "/v1/rules", e.operator, nil, 200, &r)
		r[field] = value
		code, body, _ := e.do("PUT", "/v1/rules", e.operator, r)
		var p Problem
		_ = json.Unmarshal(body, &p)
		if code != 400 || p.Field != field {
			t.Errorf("%s %g: %d %s", field, value, code, body)
		}
	}
	e.svc.Tick(context.Background())

	// Rules at their bounds, tighter than the volumes: nothing ends.
	r := rules.Default()
	r.TimeBufferS, r.MaxWindowS, r.MaxAltRangeM = 86_400, 3_600, 500
	got := e.agreeRules(r)
	e.svc.Tick(context.Background())
	e.advance(3 * time.Hour) // past the end of both windows, within the buffer
	e.svc.Tick(context.Background())
	for _, v := range []wireVolume{a, b} {
		var now wireVolume
		e.mustDo("GET", "/v1/volumes/"+v.ID, e.tokens["coalition"], nil, 200, &now)
		if now.State != "accepted" || now.Version != v.Version {
			t.Errorf("volume %s of %s after the rules changed: %+v", v.ID, v.Party, now)
		}
	}
	// The owner hears that its volume breaks the new rules.
	for {
		ev := sc.next(t)
		if ev.Kind != "volume_flagged" {
			continue
		}
		var f struct {
			Volume       struct{ ID, Party, Version string }
			RulesVersion int64 `json:"rules_version"`
			Field        string
		}
		if err := json.Unmarshal(ev.Data.Data, &f); err != nil || f.Volume.ID != a.ID || f.RulesVersion != got.Version || f.Field != "alt_upper_m" {
			t.Fatalf("flag %s (%v)", ev.Data.Data, err)
		}
		break
	}
}
