package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
)

// rawStream keeps every byte of one party's event stream.
type rawStream struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *env) openRawStream(token string) *rawStream {
	e.t.Helper()
	return e.openRawStreamAt(token, "/v1/events")
}

// openRawStreamAt is openRawStream at path (a replay: ?after=0).
func (e *env) openRawStreamAt(token, path string) *rawStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		e.t.Fatalf("events: %v %v", resp, err)
	}
	s := &rawStream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		b := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); <-s.done })
	return s
}

// waitFor waits until the stream holds marker, and returns every byte so
// far.
func (s *rawStream) waitFor(t *testing.T, marker string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		b := slices.Clone(s.buf.Bytes())
		s.mu.Unlock()
		if bytes.Contains(b, []byte(marker)) {
			return b
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the stream never showed %q", marker)
	return nil
}

// TestNeedToKnowAircraft is the table of issue 14 for the aircraft rule,
// over REST (tracks and alerts) and the event stream: every byte of each
// party's stream is scanned for the other party's aircraft id and
// callsign wherever the rule hides them. Coalition's aircraft flies at
// 35 N 36 E, 6,000 m; russia's is placed by the case.
func TestNeedToKnowAircraft(t *testing.T) {
	const (
		coalID = "COAL-7Q"
		russID = "RUSS-9Z"
	)
	base := geo.LLA{LatDeg: 35, LonDeg: 36, AltM: 6000}
	east := func(distM, altM float64) geo.LLA {
		p := geo.Destination(base, 90, distM)
		p.AltM = altM
		return p
	}
	type step struct {
		after   time.Duration // from the first report
		russPos geo.LLA
		russVel float64 // east, m/s
		coalVel float64
	}
	cases := []struct {
		name  string
		steps []step
		// lookAt is when the parties look, from the first report.
		lookAt time.Duration
		want   bool
		alert  bool
	}{
		{name: "far apart: hidden both ways", steps: []step{{russPos: east(200_000, 6000)}}, want: false},
		{name: "within both distances: visible", steps: []step{{russPos: east(80_000, 7000)}}, want: true},
		{name: "within distance, above the altitude limit: hidden", steps: []step{{russPos: east(80_000, 9500)}}, want: false},
		// Head on from 100 km at 400 m/s closure: separation is lost in
		// under 300 s, an alert while still beyond 50 NM.
		{name: "in an alert beyond the distance: visible", steps: []step{{russPos: east(100_000, 6000), russVel: -200, coalVel: 200}}, want: true, alert: true},
		{name: "left, within the linger: visible", steps: []step{
			{russPos: east(80_000, 6000)}, {after: 5 * time.Second, russPos: east(300_000, 6000)},
			{after: 50 * time.Second, russPos: east(300_000, 6000)}}, lookAt: 50 * time.Second, want: true},
		{name: "left, after the linger: hidden", steps: []step{
			{russPos: east(80_000, 6000)}, {after: 5 * time.Second, russPos: east(300_000, 6000)},
			{after: 30 * time.Second, russPos: east(300_000, 6000)},
			{after: 66 * time.Second, russPos: east(300_000, 6000)}}, lookAt: 66 * time.Second, want: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			sc := e.openRawStream(e.tokens["coalition"])
			sr := e.openRawStream(e.tokens["russia"])
			t0 := time.Now()
			for _, s := range c.steps {
				// Each aircraft's disclosure is decided at its own reports:
				// both report twice a second apart, as feeds do.
				for _, dt := range []time.Duration{0, time.Second} {
					e.skew.Store(int64(s.after + dt))
					at := t0.Add(s.after + dt)
					e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report(coalID, base.LatDeg, base.LonDeg, base.AltM, s.coalVel, at)}}, 202, nil)
					e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report(russID, s.russPos.LatDeg, s.russPos.LonDeg, s.russPos.AltM, s.russVel, at)}}, 202, nil)
				}
			}
			e.skew.Store(int64(c.lookAt))
			views := []struct{ viewer, own, other string }{{"coalition", coalID, russID}, {"russia", russID, coalID}}
			for _, v := range views {
				var tr struct{ Tracks []wireTrack }
				e.mustDo("GET", "/v1/tracks", e.tokens[v.viewer], nil, 200, &tr)
				var ids []string
				for _, x := range tr.Tracks {
					ids = append(ids, x.Aircraft)
				}
				slices.Sort(ids)
				want := []string{v.own}
				if c.want {
					want = append(want, v.other)
					slices.Sort(want)
				}
				if !slices.Equal(ids, want) {
					t.Errorf("%s's tracks: %v, want %v", v.viewer, ids, want)
				}
				alerts := e.mustDo("GET", "/v1/alerts", e.tokens[v.viewer], nil, 200, nil)
				if got := strings.Contains(string(alerts), v.other); got != c.alert {
					t.Errorf("%s's alerts name %s: %v, want %v", v.viewer, v.other, got, c.alert)
				}
			}
			var all struct{ Tracks []wireTrack }
			e.mustDo("GET", "/v1/tracks", e.operator, nil, 200, &all)
			if len(all.Tracks) != 2 {
				t.Errorf("the operator sees %d tracks, want both", len(all.Tracks))
			}
			// A message each way marks the end of what the streams carry.
			e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "end-of-case-c"}, 201, nil)
			e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "notice", "text": "end-of-case-r"}, 201, nil)
			// The same streams replayed from the first event, as a client
			// that resumes does.
			rc := e.openRawStreamAt(e.tokens["coalition"], "/v1/events?after=0")
			rr := e.openRawStreamAt(e.tokens["russia"], "/v1/events?after=0")
			for _, s := range []struct {
				viewer string
				raw    *rawStream
				other  string
			}{{"coalition", sc, russID}, {"russia", sr, coalID}, {"coalition (replay)", rc, russID}, {"russia (replay)", rr, coalID}} {
				b := s.raw.waitFor(t, "end-of-case-r")
				b = append(b, s.raw.waitFor(t, "end-of-case-c")...)
				for _, secret := range []string{s.other, "CS-" + s.other} {
					if found := bytes.Contains(b, []byte(secret)); found && !c.alert {
						t.Errorf("%s's stream carries %q, which the rule hides:\n%s", s.viewer, secret, b)
					} else if !found && c.alert {
						t.Errorf("%s's stream lacks %q of the alert that concerns it", s.viewer, secret)
					}
				}
			}
		})
	}
}

// Metrics carry no aircraft id and no party name in their labels.
func TestMetricsNameNoAircraft(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now()
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("COAL-M1", 35, 36, 6000, 0, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RUSS-M1", 35, 36.1, 6000, 0, now)}}, 202, nil)
	e.mustDo("GET", "/v1/tracks", e.tokens["russia"], nil, 200, nil)
	req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+e.operator)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, secret := range []string{"COAL-M1", "RUSS-M1", "coalition", "russia"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("/metrics names %q", secret)
		}
	}
}

// An alert between two parties reaches a third party's audit export only
// as hashes: the record, its aircraft ids, callsigns and positions are for
// the two (their own exports show them); the third party's event stream,
// live or replayed, never names them.
func TestNeedToKnowAuditExport(t *testing.T) {
	e := newEnv(t, Options{})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	live := e.openRawStream(third.Token)
	sc := e.openStream(e.tokens["coalition"], "")
	now := time.Now()
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RUSS-A1", 35.0, 36.1, 6000, -200, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("COAL-A1", 35.0, 35.88, 6000, 200, now)}}, 202, nil)
	if ev := sc.next(t); ev.Kind != "alert_raised" {
		t.Fatalf("first event %s", ev.Kind)
	}
	// Nor does the bystander's event stream carry it, live or replayed
	// from the first event.
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"bystander"}, "kind": "notice", "text": "end-of-alert-case"}, 201, nil)
	replay := e.openRawStreamAt(third.Token, "/v1/events?after=0")
	for name, s := range map[string]*rawStream{"live": live, "replayed": replay} {
		b := s.waitFor(t, "end-of-alert-case")
		for _, secret := range []string{"RUSS-A1", "COAL-A1"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("the bystander's %s stream names %s:\n%s", name, secret, b)
			}
		}
	}
	for viewer, tok := range map[string]string{"bystander": third.Token, "coalition": e.tokens["coalition"], "russia": e.tokens["russia"]} {
		b := e.mustDo("GET", "/v1/audit", tok, nil, 200, nil)
		if got, want := bytes.Contains(b, []byte(`"kind":"alert_raised"`)), viewer != "bystander"; got != want {
			t.Errorf("%s's export shows the alert record: %v, want %v", viewer, got, want)
		}
		for _, secret := range []string{"RUSS-A1", "COAL-A1", "CS-RUSS-A1"} {
			if got, want := bytes.Contains(b, []byte(secret)), viewer != "bystander"; got != want {
				t.Errorf("%s's export names %s: %v, want %v", viewer, secret, got, want)
			}
		}
	}
}

// TestNeedToKnowVolumes is the table of issue 14 for volumes under
// volume_visibility need_to_know: russia declares a volume at 35 N 37 E
// (5 km circle, 5,000 to 7,000 m); what coalition sees of it by
// bounding box, by id, on its event stream and when it writes.
func TestNeedToKnowVolumes(t *testing.T) {
	base := geo.LLA{LatDeg: 35, LonDeg: 37}
	from := func(distM, altM float64) geo.LLA {
		p := geo.Destination(base, 270, distM)
		p.AltM = altM
		return p
	}
	type aircraft struct {
		after time.Duration
		pos   geo.LLA
	}
	cases := []struct {
		name       string
		visibility string
		flights    []aircraft // coalition's aircraft C1
		conflict   bool       // coalition declares a volume that conflicts
		lookAt     time.Duration
		want       bool
	}{
		{name: "all: visible anywhere", visibility: "all", want: true},
		{name: "far from everything of coalition: hidden", visibility: "need_to_know", flights: []aircraft{{pos: from(300_000, 6000)}}, want: false},
		{name: "conflicts with a coalition volume: visible", visibility: "need_to_know", conflict: true, want: true},
		{name: "near a coalition aircraft: visible", visibility: "need_to_know", flights: []aircraft{{pos: from(60_000, 6000)}}, want: true},
		{name: "near, above the altitude limit: hidden", visibility: "need_to_know", flights: []aircraft{{pos: from(60_000, 11_000)}}, want: false},
		{name: "aircraft left, within the linger: visible", visibility: "need_to_know",
			flights: []aircraft{{pos: from(60_000, 6000)}, {after: 5 * time.Second, pos: from(300_000, 6000)}}, lookAt: 40 * time.Second, want: true},
		{name: "aircraft left, after the linger: hidden", visibility: "need_to_know",
			flights: []aircraft{{pos: from(60_000, 6000)}, {after: 5 * time.Second, pos: from(300_000, 6000)}, {after: 50 * time.Second, pos: from(300_000, 6000)}}, lookAt: 70 * time.Second, want: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			if c.visibility != "all" {
				e.agreeRules(map[string]any{"volume_visibility": c.visibility})
			}
			sc := e.openRawStream(e.tokens["coalition"])
			var v wireVolume
			e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(base.LatDeg, base.LonDeg, "russia-secret", nil), 201, &v)
			if c.conflict {
				// The first write is refused, naming russia's volume in
				// its 409: the one place a hidden volume is shown.
				b := circleVolume(base.LatDeg, base.LonDeg+0.05, "coal", nil)
				code, body, _ := e.do("POST", "/v1/volumes", e.tokens["coalition"], b)
				if code != 409 || !strings.Contains(string(body), v.ID) {
					t.Fatalf("conflicting write: %d %s", code, body)
				}
				b["key"] = []map[string]string{{"id": v.ID, "version": v.Version}}
				e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], b, 201, nil)
			}
			t0 := time.Now()
			for _, f := range c.flights {
				e.skew.Store(int64(f.after))
				e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("C1", f.pos.LatDeg, f.pos.LonDeg, f.pos.AltM, 0, t0.Add(f.after))}}, 202, nil)
			}
			e.skew.Store(int64(c.lookAt))
			var list struct{ Volumes []wireVolume }
			e.mustDo("GET", "/v1/volumes?bbox=30,30,40,40", e.tokens["coalition"], nil, 200, &list)
			listed := false
			for _, x := range list.Volumes {
				listed = listed || x.ID == v.ID
			}
			if listed != c.want {
				t.Errorf("listed by bounding box: %v, want %v", listed, c.want)
			}
			code, body, _ := e.do("GET", "/v1/volumes/"+v.ID, e.tokens["coalition"], nil)
			if want := map[bool]int{true: 200, false: 404}[c.want]; code != want {
				t.Errorf("GET by id: %d, want %d: %s", code, want, body)
			}
			if strings.Contains(string(body), "russia-secret") {
				t.Errorf("the details leak: %s", body)
			}
			// Writing on it: 403 when visible, 404 as if absent when not.
			upd := circleVolume(base.LatDeg, base.LonDeg, "x", nil)
			upd["version"] = v.Version
			code, body, _ = e.do("PUT", "/v1/volumes/"+v.ID, e.tokens["coalition"], upd)
			if want := map[bool]int{true: 403, false: 404}[c.want]; code != want {
				t.Errorf("PUT on it: %d, want %d: %s", code, want, body)
			}
			// Russia always sees its own; the operator everything.
			e.mustDo("GET", "/v1/volumes/"+v.ID, e.tokens["russia"], nil, 200, nil)
			e.mustDo("GET", "/v1/volumes/"+v.ID, e.operator, nil, 200, nil)
			e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "notice", "text": "end-of-volume-case"}, 201, nil)
			raw := sc.waitFor(t, "end-of-volume-case")
			if found := bytes.Contains(raw, []byte(v.ID)); found && !c.want {
				t.Errorf("coalition's stream names the hidden volume:\n%s", raw)
			}
		})
	}
}

// TestNeedToKnowProbesAnswerAsAbsent plays coalition as an attacker that
// learned the id of russia's volume (it once saw it) and probes it once it
// may no longer see it: under need_to_know every request that names the
// id must answer exactly as it does for an id that never existed, so that
// no status, field or text confirms the volume, its version or its
// priority. Russia's volume has priority 2 (its grant), above anything
// coalition may give a volume.
func TestNeedToKnowProbesAnswerAsAbsent(t *testing.T) {
	e := newEnv(t, Options{})
	e.agreeRules(map[string]any{"volume_visibility": "need_to_know", "priority_max": map[string]int{"russia": 2}})
	body := circleVolume(35, 37, "russia-secret", nil)
	body["priority"] = 2
	var v wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], body, 201, &v)
	const absent = "vol-never-existed-0000"
	coal := e.tokens["coalition"]
	write := circleVolume(20, 20, "probe", nil)
	write["version"] = "v-guess"
	probes := []struct {
		name, method, path string
		body               func(id string) any
	}{
		{"read", "GET", "/v1/volumes/{id}", func(string) any { return nil }},
		{"replace", "PUT", "/v1/volumes/{id}", func(string) any { return write }},
		{"replace at its version", "PUT", "/v1/volumes/{id}", func(string) any {
			w := circleVolume(20, 20, "probe", nil)
			w["version"] = v.Version
			return w
		}},
		{"accept", "POST", "/v1/volumes/{id}/state", func(string) any { return map[string]any{"state": "accepted", "version": "v-guess"} }},
		{"activate at its version", "POST", "/v1/volumes/{id}/state", func(string) any { return map[string]any{"state": "activated", "version": v.Version} }},
		{"end", "POST", "/v1/volumes/{id}/state", func(string) any { return map[string]any{"state": "ended", "version": "v-guess"} }},
		{"cancel at its version", "POST", "/v1/volumes/{id}/state", func(string) any { return map[string]any{"state": "cancelled", "version": v.Version} }},
		{"hotline reference", "POST", "/v1/hotline/messages", func(id string) any {
			return map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "probe", "ref": map[string]string{"volume_id": id}}
		}},
		{"key entry", "POST", "/v1/volumes", func(id string) any {
			return circleVolume(20, 20, "probe", []map[string]string{{"id": id, "version": "v-guess"}})
		}},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			answer := func(id string) (int, string) {
				code, b, _ := e.do(p.method, strings.ReplaceAll(p.path, "{id}", id), coal, p.body(id))
				s := strings.ReplaceAll(string(b), id, "ID")
				// A key entry's write succeeds with fresh ids either way.
				if code == 201 {
					var w wireVolume
					_ = json.Unmarshal(b, &w)
					s = "created, conflicts " + strconv.Itoa(len(w.Conflicts))
				}
				return code, s
			}
			hc, hb := answer(v.ID)
			ac, ab := answer(absent)
			if hc != ac || hb != ab {
				t.Errorf("the hidden volume answers %d %s\nan absent one %d %s", hc, hb, ac, ab)
			}
			if strings.Contains(hb, "russia") || strings.Contains(hb, v.Version) {
				t.Errorf("the answer names the owner or the version: %s", hb)
			}
		})
	}
	// Still there, unchanged, for its owner.
	var after wireVolume
	e.mustDo("GET", "/v1/volumes/"+v.ID, e.tokens["russia"], nil, 200, &after)
	if after.Version != v.Version || after.State != "accepted" {
		t.Errorf("the probes changed russia's volume: %+v", after)
	}
}

// TestNeedToKnowConflictsOfAnotherPartysVolume plays coalition probing
// russia's volume under need_to_know. Russia's volume conflicts with a
// bystander's volume just below it, which russia accepted with its key;
// coalition's probe meets russia's volume but is 1,000 m above the
// bystander's, which it may not see. Whatever shows coalition russia's
// volume (the 409 missing list, POST /v1/volumes/alternatives, the
// volume read and listed once it conflicts with coalition's own, the
// volume_conflict event) shows it without the conflicts russia accepted:
// they name the bystander's volume (id, party, version), which meets
// nothing of coalition's.
func TestNeedToKnowConflictsOfAnotherPartysVolume(t *testing.T) {
	e := newEnv(t, Options{})
	e.agreeRules(map[string]any{"volume_visibility": "need_to_know"})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	sc := e.openRawStream(e.tokens["coalition"])

	var hidden wireVolume
	low := circleVolume(35, 36, "bystander-secret", nil)
	low["alt_lower_m"], low["alt_upper_m"] = 5000, 7000
	e.mustDo("POST", "/v1/volumes", third.Token, low, 201, &hidden)
	// Russia's, 100 m above it: a conflict, accepted with the key.
	var theirs wireVolume
	mid := circleVolume(35, 36, "russia-secret", []map[string]string{{"id": hidden.ID, "version": hidden.Version}})
	mid["alt_lower_m"], mid["alt_upper_m"] = 7100, 9100
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], mid, 201, &theirs)
	if len(theirs.Conflicts) != 1 || theirs.Conflicts[0].ID != hidden.ID {
		t.Fatalf("russia's volume conflicts with %+v, want the bystander's", theirs.Conflicts)
	}

	probe := circleVolume(35, 36, "probe", nil)
	probe["alt_lower_m"], probe["alt_upper_m"] = 8000, 10000
	leaks := func(what string, body []byte) {
		t.Helper()
		if bytes.Contains(body, []byte(hidden.ID)) || bytes.Contains(body, []byte(hidden.Version)) {
			t.Errorf("%s names the bystander's volume:\n%s", what, body)
		}
	}
	code, body, _ := e.do("POST", "/v1/volumes", e.tokens["coalition"], probe)
	if code != http.StatusConflict || !bytes.Contains(body, []byte(theirs.ID)) {
		t.Fatalf("the probe: %d %s", code, body)
	}
	leaks("the 409", body)
	leaks("the alternatives", e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], probe, 200, nil))

	probe["key"] = []map[string]string{{"id": theirs.ID, "version": theirs.Version}}
	var mine wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], probe, 201, &mine)
	leaks("the volume read", e.mustDo("GET", "/v1/volumes/"+theirs.ID, e.tokens["coalition"], nil, 200, nil))
	listed := e.mustDo("GET", "/v1/volumes?bbox=30,30,40,40", e.tokens["coalition"], nil, 200, nil)
	if !bytes.Contains(listed, []byte(theirs.ID)) {
		t.Fatalf("russia's volume is not listed to coalition: %s", listed)
	}
	leaks("the volume list", listed)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "notice", "text": "end-of-probe"}, 201, nil)
	leaks("coalition's stream", sc.waitFor(t, "end-of-probe"))

	// The premise: coalition may not see the bystander's volume.
	e.mustDo("GET", "/v1/volumes/"+hidden.ID, e.tokens["coalition"], nil, 404, nil)
	// Russia, its owner, still sees what it accepted.
	var own wireVolume
	e.mustDo("GET", "/v1/volumes/"+theirs.ID, e.tokens["russia"], nil, 200, &own)
	if len(own.Conflicts) != 1 || own.Conflicts[0].ID != hidden.ID {
		t.Fatalf("russia's own view: conflicts %+v", own.Conflicts)
	}
	// Another party's volume shows its conflicts with the viewer's own.
	var probed wireVolume
	e.mustDo("GET", "/v1/volumes/"+mine.ID, e.tokens["russia"], nil, 200, &probed)
	if len(probed.Conflicts) != 1 || probed.Conflicts[0].ID != theirs.ID {
		t.Fatalf("coalition's volume as russia sees it: conflicts %+v", probed.Conflicts)
	}
}

// TestNeedToKnowAuditOfAWriteConflictingWithTwo: the audit record of a
// write is read by its writer and by every party whose volume it
// conflicts with; each of those reads of the conflicts only its own
// volume's (sealed for it and the writer), not the other parties'.
func TestNeedToKnowAuditOfAWriteConflictingWithTwo(t *testing.T) {
	e := newEnv(t, Options{})
	e.agreeRules(map[string]any{"volume_visibility": "need_to_know"})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)

	declare := func(token string, lowerM, upperM float64, key []map[string]string) wireVolume {
		t.Helper()
		in := circleVolume(35, 36, "", key)
		in["alt_lower_m"], in["alt_upper_m"] = lowerM, upperM
		var v wireVolume
		e.mustDo("POST", "/v1/volumes", token, in, 201, &v)
		return v
	}
	low := declare(third.Token, 5000, 7000, nil)
	high := declare(e.tokens["russia"], 9000, 11000, nil)
	// Coalition's meets both: the 409 named both to it, and its key
	// holds both.
	mine := declare(e.tokens["coalition"], 6900, 9100, []map[string]string{
		{"id": low.ID, "version": low.Version}, {"id": high.ID, "version": high.Version}})
	if len(mine.Conflicts) != 2 {
		t.Fatalf("coalition's volume conflicts with %+v, want both", mine.Conflicts)
	}
	for _, c := range []struct {
		token     string
		sees, not []string
	}{
		{e.tokens["coalition"], []string{low.ID, high.ID}, nil},
		{e.tokens["russia"], []string{high.ID, mine.ID}, []string{low.ID}},
		{third.Token, []string{low.ID, mine.ID}, []string{high.ID}},
		{e.operator, []string{low.ID, high.ID, mine.ID}, nil},
	} {
		export := e.mustDo("GET", "/v1/audit", c.token, nil, 200, nil)
		for _, id := range c.sees {
			if !bytes.Contains(export, []byte(id)) {
				t.Errorf("an export lacks %s:\n%s", id, export)
			}
		}
		for _, id := range c.not {
			if bytes.Contains(export, []byte(id)) {
				t.Errorf("an export names %s, a volume its viewer may not see:\n%s", id, export)
			}
		}
	}
}

// TestConflictsOfAnotherPartysVolumeWhereAllIsSeen: need to know hides
// the conflicts of another party's volume because they name volumes the
// caller may not see; a caller that may see every volume (every party
// under volume_visibility "all", the default, and the operator always)
// sees them, as it sees those volumes.
func TestConflictsOfAnotherPartysVolumeWhereAllIsSeen(t *testing.T) {
	for _, visibility := range []string{"all", "need_to_know"} {
		e := newEnv(t, Options{})
		e.agreeRules(map[string]any{"volume_visibility": visibility})
		var third struct{ Token string }
		e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
		var low wireVolume
		in := circleVolume(35, 36, "bystander-secret", nil)
		in["alt_lower_m"], in["alt_upper_m"] = 5000, 7000
		e.mustDo("POST", "/v1/volumes", third.Token, in, 201, &low)
		var theirs wireVolume
		in = circleVolume(35, 36, "russia-secret", []map[string]string{{"id": low.ID, "version": low.Version}})
		in["alt_lower_m"], in["alt_upper_m"] = 7100, 9100
		e.mustDo("POST", "/v1/volumes", e.tokens["russia"], in, 201, &theirs)

		callers := map[string]string{"operator": e.operator}
		if visibility == "all" {
			callers["coalition"] = e.tokens["coalition"]
		} else {
			// Nothing of coalition's meets russia's volume.
			e.mustDo("GET", "/v1/volumes/"+theirs.ID, e.tokens["coalition"], nil, 404, nil)
		}
		for who, token := range callers {
			var got wireVolume
			e.mustDo("GET", "/v1/volumes/"+theirs.ID, token, nil, 200, &got)
			if len(got.Conflicts) != 1 || got.Conflicts[0].ID != low.ID {
				t.Errorf("%s, %s: russia's volume read with conflicts %+v, want the bystander's", visibility, who, got.Conflicts)
			}
			var listed struct{ Volumes []wireVolume }
			e.mustDo("GET", "/v1/volumes?bbox=30,30,40,40", token, nil, 200, &listed)
			for _, v := range listed.Volumes {
				if v.ID == theirs.ID && (len(v.Conflicts) != 1 || v.Conflicts[0].ID != low.ID) {
					t.Errorf("%s, %s: russia's volume listed with conflicts %+v", visibility, who, v.Conflicts)
				}
			}
		}
	}
}
