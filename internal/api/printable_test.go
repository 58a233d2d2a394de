package api

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestControlCharactersRefusedAtTheEdge: aircraft ids, callsigns, hotline
// threads, texts and replies holding a control or invisible formatting
// character are refused naming the field, and change nothing; a line feed
// in a text is fine.
func TestControlCharactersRefusedAtTheEdge(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC()
	nul := report("C-1", 35, 36, 6000, 100, now)
	nul["callsign"] = "SU\x0024"
	override := report("C\u202e2", 35, 36.1, 6000, 100, now)
	zeroWidth := report("C-3", 35, 36.2, 6000, 100, now)
	zeroWidth["callsign"] = "SU\u200b24"
	bom := report("\ufeffC-4", 35, 36.3, 6000, 100, now)
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{
		nul, override, zeroWidth, bom, report("C-5", 35, 36.4, 6000, 100, now)}}, 202, &out)
	wantField := []string{"callsign", "aircraft", "callsign", "aircraft"}
	if out.Accepted != 1 || len(out.Rejected) != len(wantField) {
		t.Fatalf("answer %+v, want the clean report alone accepted", out)
	}
	for i, r := range out.Rejected {
		if prefix := fmt.Sprintf("reports[%d].%s:", i, wantField[i]); r.Index != i || !strings.HasPrefix(r.Error, prefix) {
			t.Errorf("rejection %+v, want %q", r, prefix)
		}
	}

	before := fingerprint(t, e.st)
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
