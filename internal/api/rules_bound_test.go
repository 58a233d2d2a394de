package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
)

// TestOpenProposalsAreBounded: every proposal of the rules is a hotline
// item to every party that escalates until it is answered, so an
// operator that proposed without end buried each party's alerts under
// them. Past service.MaxOpenProposals open at once, one more is refused
// with 409 too-many-open-proposals naming the limit, and stores nothing;
// once one closes, the next is proposed.
func TestOpenProposalsAreBounded(t *testing.T) {
	e := newEnv(t, Options{})
	var first rules.Proposal
	for i := range service.MaxOpenProposals {
		var p rules.Proposal
		e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 50 + i}, 202, &p)
		if i == 0 {
			first = p
		}
	}
	status, body, _ := e.do("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 40})
	var pb Problem
	_ = json.Unmarshal(body, &pb)
	if status != 409 || !strings.HasSuffix(pb.Type, "/too-many-open-proposals") || !strings.Contains(pb.Detail, "at most 4") {
		t.Fatalf("one proposal past the bound: %d %s", status, body)
	}
	if got := len(e.proposals(e.tokens["coalition"])); got != service.MaxOpenProposals {
		t.Errorf("%d proposals open after the refusal, want %d", got, service.MaxOpenProposals)
	}
	var items struct{ Messages []map[string]any }
	e.mustDo("GET", "/v1/hotline/messages", e.tokens["russia"], nil, 200, &items)
	if len(items.Messages) != service.MaxOpenProposals {
		t.Errorf("russia has %d items, want one per open proposal: %v", len(items.Messages), items.Messages)
	}
	// One closes: there is room for another.
	e.mustDo("POST", answerPath(first.Version, "reject"), e.tokens["russia"], map[string]any{"reason": "no"}, 200, nil)
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 40}, 202, nil)
}

// TestProposalRefusesAnotherVersion: PUT /v1/rules took a "version" and
// ignored it (the service numbers the proposals), so an operator who
// sent "version":7 to name the proposal, or the version in force it read
// before another came into force, was answered 202 with a proposal made
// against other rules than it read. A version other than the one in
// force is refused naming it, and nothing is proposed; the rules of
// GET /v1/rules sent back as they are (the version in force) are taken.
func TestProposalRefusesAnotherVersion(t *testing.T) {
	e := newEnv(t, Options{})
	inForce := e.rulesInForce().Version
	refused := func(body string) {
		t.Helper()
		status, out, _ := e.do("PUT", "/v1/rules", e.operator, body)
		var pb Problem
		_ = json.Unmarshal(out, &pb)
		if status != 400 || pb.Field != "version" {
			t.Errorf("%s: %d %s, want 400 naming version", body, status, out)
		}
	}
	for _, body := range []string{`{"version":7,"time_buffer_s":50}`, `{"time_buffer_s":50,"version":null}`, `{"version":"1"}`, `{"version":0}`} {
		refused(body)
	}
	if got := e.proposals(e.tokens["coalition"]); len(got) != 0 {
		t.Errorf("proposed after the refusals: %+v", got)
	}
	// The rules as read, version in force and all: taken.
	var p rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"version": inForce, "time_buffer_s": 50}, 202, &p)
	if p.Base != inForce {
		t.Errorf("proposal %+v, want one against version %d", p, inForce)
	}
	// Once another version is in force, the one read before is refused.
	e.agreeRules(map[string]any{"time_buffer_s": 45})
	refused(`{"version":` + jsonNumber(inForce) + `,"time_buffer_s":55}`)
}
