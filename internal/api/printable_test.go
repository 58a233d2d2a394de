package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestControlCharactersRefusedAtTheEdge: aircraft ids, callsigns, hotline
// threads, texts and replies holding a control or invisible formatting
// character are refused with a 400 naming the field, and change nothing
// (a position batch with one such report is refused as a whole); a line
// feed in a text is fine.
func TestControlCharactersRefusedAtTheEdge(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC()
	nul := report("C-1", 35, 36, 6000, 100, now)
	nul["callsign"] = "SU\x0024"
	override := report("C\u202e2", 35, 36.1, 6000, 100, now)
	zeroWidth := report("C-3", 35, 36.2, 6000, 100, now)
	zeroWidth["callsign"] = "SU\u200b24"
	bom := report("\ufeffC-4", 35, 36.3, 6000, 100, now)
	c1 := report("C-5", 35, 36.4, 6000, 100, now)
	c1["callsign"] = "SU\u008524"
	// The Arabic letter mark reorders like a right-to-left mark and shows
	// nothing; the word joiner is a zero-width no-break space.
	alm := report("C-8", 35, 36.7, 6000, 100, now)
	alm["callsign"] = "SU24\u061c-1"
	joiner := report("C\u20609", 35, 36.8, 6000, 100, now)
	before := fingerprint(t, e.st)
	for _, c := range []struct {
		bad   map[string]any
		field string
	}{{nul, "callsign"}, {override, "aircraft"}, {zeroWidth, "callsign"}, {bom, "aircraft"}, {c1, "callsign"}, {alm, "callsign"}, {joiner, "aircraft"}} {
		// The bad report among clean ones, one of which is refused alone
		// (too fast) and would otherwise be a per-report rejection.
		fast := report("C-7", 35, 36.6, 6000, 4000, now)
		batch := []any{report("C-6", 35, 36.5, 6000, 100, now), fast, c.bad}
		code, b, hdr := e.do("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": batch})
		var p Problem
		_ = json.Unmarshal(b, &p)
		if code != 400 || hdr.Get("Content-Type") != "application/problem+json" || p.Field != "reports[2]."+c.field {
			t.Errorf("batch with %q: %d %s, want 400 naming reports[2].%s", c.bad[c.field], code, b, c.field)
		}
	}
	var tracks struct{ Tracks []map[string]any }
	e.mustDo("GET", "/v1/tracks", e.tokens["coalition"], nil, 200, &tracks)
	if after := fingerprint(t, e.st); after != before || len(tracks.Tracks) != 0 {
		t.Fatalf("a refused batch was applied in part: %d tracks, store %q -> %q", len(tracks.Tracks), before, after)
	}
	// Without the bad report, the clean one is accepted and the fast one
	// rejected alone.
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{
		report("C-6", 35, 36.5, 6000, 100, now), report("C-7", 35, 36.6, 6000, 4000, now)}}, 202, &out)
	if out.Accepted != 1 || len(out.Rejected) != 1 || out.Rejected[0].Index != 1 {
		t.Fatalf("clean batch: %+v", out)
	}

	before = fingerprint(t, e.st)
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "climb\x00now"}, "text"},
		{map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "climb \u202eFL200"}, "text"},
		{map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "climb\u0085now"}, "text"},
		{map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "climb\r\nnow"}, "text"},
		{map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "x", "thread": "ops\u200b1"}, "thread"},
	} {
		code, b, hdr := e.do("POST", "/v1/hotline/messages", e.tokens["coalition"], c.body)
		if code != 400 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), `"field":"`+c.field+`"`) {
			t.Errorf("%q: %d %s, want 400 naming %s", c.body, code, b, c.field)
		}
	}
	if after := fingerprint(t, e.st); after != before {
		t.Fatal("a refused message changed the store")
	}
	var m wireMessage
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "request", "text": "climb to FL200\nthen report"}, 201, &m)
	code, b, _ := e.do("POST", "/v1/hotline/messages/"+m.ID+"/ack", e.tokens["russia"], map[string]string{"reply": "wil\u2066co"})
	if code != 400 || !strings.Contains(string(b), `"field":"reply"`) {
		t.Fatalf("reply with an isolate: %d %s", code, b)
	}
}

// TestInvalidUTF8RefusedAtTheEdge: a hotline text, a reply or a reason
// that is not valid UTF-8 is refused with a 400 naming the field and
// changes nothing. encoding/json read each invalid byte as U+FFFD: the
// message was stored and shown to its recipient otherwise than its
// sender sent and signed it.
func TestInvalidUTF8RefusedAtTheEdge(t *testing.T) {
	e := newEnv(t, Options{})
	var m wireMessage
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "request", "text": "climb to FL200"}, 201, &m)
	var p struct{ Version int64 }
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 45}, 202, &p)
	before := fingerprint(t, e.st)
	for _, c := range []struct {
		path, token, body, field string
	}{
		{"/v1/hotline/messages", e.tokens["coalition"], "{\"to\":[\"russia\"],\"kind\":\"notice\",\"text\":\"climb \xffFL200\"}", "text"},
		{"/v1/hotline/messages", e.tokens["coalition"], "{\"to\":[\"russia\"],\"kind\":\"notice\",\"text\":\"caf\xc3\"}", "text"},
		{"/v1/hotline/messages/" + m.ID + "/ack", e.tokens["russia"], "{\"reply\":\"wil\xedco\"}", "reply"},
		{answerPath(p.Version, "reject"), e.tokens["russia"], "{\"reason\":\"too \xf0\x9f short\"}", "reason"},
	} {
		code, b, hdr := e.do("POST", c.path, c.token, []byte(c.body))
		if code != 400 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), `"field":"`+c.field+`"`) {
			t.Errorf("%s %q: %d %s, want 400 naming %s", c.path, c.body, code, b, c.field)
		}
	}
	if after := fingerprint(t, e.st); after != before {
		t.Fatal("a refused request changed the store")
	}
}

// TestPositionsInvalidUTF8RefusedAsAWhole: a position batch whose
// aircraft id or callsign is not valid UTF-8 is refused as a whole, 400
// naming the report's field, and changes nothing, as the wire promises.
// encoding/json, which reads a batch that is not plain ASCII, read each
// invalid byte as U+FFFD, and the track was stored under another id than
// the one sent.
func TestPositionsInvalidUTF8RefusedAsAWhole(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC()
	clean, err := json.Marshal(report("C-1", 35, 36, 6000, 100, now))
	if err != nil {
		t.Fatal(err)
	}
	// A callsign of plain UTF-8 beyond ASCII (the slow path) is fine.
	accented := report("C-2", 35, 36.1, 6000, 100, now)
	accented["callsign"] = "CAFÉ1"
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{accented}}, 202, &out)
	if out.Accepted != 1 {
		t.Fatalf("a callsign of valid UTF-8: %+v", out)
	}
	before := fingerprint(t, e.st)
	for _, c := range []struct{ bad, field string }{
		{`{"aircraft":"C-` + "\xff" + `3","time":"` + now.Format(time.RFC3339Nano) + `","lat":35,"lon":36.2,"alt_m":6000}`, "reports[1].aircraft"},
		{`{"aircraft":"C-4","callsign":"SU` + "\xc3" + `","time":"` + now.Format(time.RFC3339Nano) + `","lat":35,"lon":36.3,"alt_m":6000}`, "reports[1].callsign"},
		{`{"aircraft":"C-5","cl` + "\xff" + `ass":"uas","time":"` + now.Format(time.RFC3339Nano) + `","lat":35,"lon":36.4,"alt_m":6000}`, ""},
	} {
		body := `{"reports":[` + string(clean) + `,` + c.bad + `]}`
		code, b, hdr := e.do("POST", "/v1/positions", e.tokens["coalition"], []byte(body))
		var p Problem
		_ = json.Unmarshal(b, &p)
		if code != 400 || hdr.Get("Content-Type") != "application/problem+json" || p.Field != c.field || !strings.Contains(p.Detail, "UTF-8") {
			t.Errorf("%q: %d %s, want 400 naming %q", c.bad, code, b, c.field)
		}
	}
	if after := fingerprint(t, e.st); after != before {
		t.Fatal("a refused batch changed the store")
	}
}
