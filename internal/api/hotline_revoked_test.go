package api

import (
	"context"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/rules"
)

// TestProposalItemOfARevokedPartySettles: a proposal waits for coalition,
// russia and drones; coalition and russia accept, drones is revoked, and
// the proposal comes into force. Its hotline item then waited for drones
// alone, which can no longer answer nor acknowledge, about a proposal no
// longer open: it escalated for ever, every escalation deadline, to
// parties that had done all they could. It is settled when it comes into force:
// acknowledged, with a record naming drones as revoked, and escalates no
// more. A message that waits for drones escalates on (drones may be given
// access again, and must find what it did not acknowledge).
func TestProposalItemOfARevokedPartySettles(t *testing.T) {
	e := newEnv(t, Options{})
	e.addParty("drones")
	var waits wireMessage
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia", "drones"}, "kind": "request", "text": "climb"}, 201, &waits)
	e.mustDo("POST", "/v1/hotline/messages/"+waits.ID+"/ack", e.tokens["russia"], nil, 200, nil)
	var active, rejected rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 45}, 202, &active)
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 40}, 202, &rejected)
	e.mustDo("POST", answerPath(rejected.Version, "reject"), e.tokens["russia"], nil, 200, nil)
	for _, party := range []string{"coalition", "russia"} {
		e.mustDo("POST", answerPath(active.Version, "accept"), e.tokens[party], e.acceptBody(active.Version), 200, nil)
	}
	e.mustDo("POST", "/v1/parties/drones/revoke", e.operator, nil, 200, nil)
	if r := e.rulesInForce(); r.Version != active.Version {
		t.Fatalf("rules in force: version %d, want %d", r.Version, active.Version)
	}

	step := rules.Default().AckDeadline("") + rules.Default().EscalationDeadline()
	for range 3 {
		e.advance(step)
		e.svc.Tick(context.Background())
	}
	item, _ := e.rulesItem("coalition", active.Version)
	if item["state"] != "acknowledged" || item["escalations"].(float64) != 0 {
		t.Errorf("the item of the proposal in force, which only drones, revoked, did not answer: %v", item)
	}
	// The rejected one's item, which coalition never answered, was
	// settled at the rejection (TestClosedProposalItemsSettle).
	if other, _ := e.rulesItem("coalition", rejected.Version); other["state"] != "acknowledged" || other["escalations"].(float64) != 0 {
		t.Errorf("the item of the rejected proposal, which coalition never answered: %v", other)
	}
	var out struct{ Messages []map[string]any }
	e.mustDo("GET", "/v1/hotline/messages?thread="+waits.Thread, e.tokens["coalition"], nil, 200, &out)
	if len(out.Messages) != 1 || out.Messages[0]["state"] != "escalated" || out.Messages[0]["escalations"].(float64) < 3 {
		t.Errorf("a message drones, revoked, has not acknowledged: %v", out.Messages)
	}
	// The record says why, and whom it no longer waited for.
	export := string(e.mustDo("GET", "/v1/audit", e.tokens["coalition"], nil, 200, nil))
	found := false
	for line := range strings.Lines(export) {
		found = found || strings.Contains(line, `"kind":"message_settled"`) && strings.Contains(line, `"id":"`+item["id"].(string)+`"`) &&
			strings.Contains(line, `"revoked":["drones"]`) && strings.Contains(line, `"state":"acknowledged"`)
	}
	if !found {
		t.Errorf("no record says the item of proposal %d was settled without drones, revoked", active.Version)
	}
	// It escalates no more.
	e.advance(step)
	e.svc.Tick(context.Background())
	if again, _ := e.rulesItem("coalition", active.Version); again["state"] != "acknowledged" || again["escalations"].(float64) != 0 {
		t.Errorf("after one more deadline: %v", again)
	}
}
