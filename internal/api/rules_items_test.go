package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/rules"
)

// settledReason is the reason of a settled item ("" when it is not).
func settledReason(item map[string]any) string {
	s, _ := item["settled"].(map[string]any)
	r, _ := s["reason"].(string)
	return r
}

// TestClosedProposalItemsSettle: when a proposal of the rules closes
// (rejected, superseded, in force), the items asking the parties that
// never answered it stayed open: they escalated every escalation deadline
// about a question that no longer existed, and a plain acknowledgment
// afterwards read as the party's word on a proposal it never answered.
// Each is settled when the proposal closes: acknowledged, with
// "settled" saying why (rejected by whom, superseded by which version,
// in force) and whom it no longer waits for, a message_settled record
// naming them, no escalation after; an acknowledgment of it is refused
// with 409 message-settled naming the state. A party's own message
// escalates on for a recipient that is revoked.
func TestClosedProposalItemsSettle(t *testing.T) {
	e := newEnv(t, Options{})
	e.addParty("drones")
	var waits wireMessage
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"drones"}, "kind": "request", "text": "climb"}, 201, &waits)

	// Rejected by russia: coalition and drones never answered.
	var rejected rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 40}, 202, &rejected)
	e.mustDo("POST", answerPath(rejected.Version, "reject"), e.tokens["russia"], map[string]any{"reason": "too short"}, 200, nil)
	for _, p := range []string{"coalition", "drones"} {
		item, _ := e.rulesItem(p, rejected.Version)
		if item["state"] != "acknowledged" || !strings.Contains(settledReason(item), "rejected by russia") {
			t.Errorf("%s's item of the rejected proposal: %v", p, item)
		}
	}

	// Two open; the first comes into force, the second is superseded.
	var kept, superseded rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 45}, 202, &kept)
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 50}, 202, &superseded)
	e.mustDo("POST", answerPath(superseded.Version, "accept"), e.tokens["russia"], e.acceptBody(superseded.Version), 200, nil)
	for _, p := range []string{"coalition", "russia", "drones"} {
		e.mustDo("POST", answerPath(kept.Version, "accept"), e.tokens[p], e.acceptBody(kept.Version), 200, nil)
	}
	if r := e.rulesInForce(); r.Version != kept.Version {
		t.Fatalf("rules in force: version %d, want %d", r.Version, kept.Version)
	}
	for _, p := range []string{"coalition", "drones"} {
		item, _ := e.rulesItem(p, superseded.Version)
		want := "superseded by version " + jsonNumber(kept.Version)
		if item["state"] != "acknowledged" || !strings.Contains(settledReason(item), want) {
			t.Errorf("%s's item of the superseded proposal: %v, want settled %q", p, item, want)
		}
	}
	// Russia answered it: its acknowledgment stands, as given.
	if item, _ := e.rulesItem("russia", superseded.Version); !strings.Contains(e.ackReply(item, "russia"), "accepted") {
		t.Errorf("russia's answer to the superseded proposal: %v", item)
	}
	// The proposal every party answered is acknowledged, not settled.
	if item, _ := e.rulesItem("coalition", kept.Version); item["state"] != "acknowledged" || item["settled"] != nil {
		t.Errorf("the item of the proposal every party accepted: %v", item)
	}

	// In force at the revocation of drones, the last it waited for.
	var inForce rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 55}, 202, &inForce)
	for _, p := range []string{"coalition", "russia"} {
		e.mustDo("POST", answerPath(inForce.Version, "accept"), e.tokens[p], e.acceptBody(inForce.Version), 200, nil)
	}
	e.mustDo("POST", "/v1/parties/drones/revoke", e.operator, nil, 200, nil)
	if r := e.rulesInForce(); r.Version != inForce.Version {
		t.Fatalf("rules in force: version %d, want %d", r.Version, inForce.Version)
	}
	item, _ := e.rulesItem("coalition", inForce.Version)
	if item["state"] != "acknowledged" || !strings.Contains(settledReason(item), "came into force") {
		t.Errorf("the item of the proposal in force without drones, revoked: %v", item)
	}

	// Deadlines pass: nothing settled escalates; the message to drones,
	// revoked, does.
	step := rules.Default().AckDeadline("") + rules.Default().EscalationDeadline()
	for range 3 {
		e.advance(step)
		e.svc.Tick(context.Background())
	}
	for _, v := range []int64{rejected.Version, superseded.Version} {
		if item, _ := e.rulesItem("coalition", v); item["state"] != "acknowledged" || item["escalations"].(float64) != 0 {
			t.Errorf("coalition's item of proposal %d after its deadlines: %v", v, item)
		}
	}
	var out struct{ Messages []map[string]any }
	e.mustDo("GET", "/v1/hotline/messages?thread="+waits.Thread, e.tokens["coalition"], nil, 200, &out)
	if len(out.Messages) != 1 || out.Messages[0]["state"] != "escalated" {
		t.Errorf("a message drones, revoked, has not acknowledged: %v", out.Messages)
	}

	// A plain acknowledgment of a settled item is refused, naming its
	// state, and records nothing.
	item, _ = e.rulesItem("coalition", rejected.Version)
	status, body, _ := e.do("POST", "/v1/hotline/messages/"+item["id"].(string)+"/ack", e.tokens["coalition"], map[string]any{"reply": "ok"})
	var pb Problem
	_ = json.Unmarshal(body, &pb)
	if status != 409 || !strings.HasSuffix(pb.Type, "/message-settled") || !strings.Contains(pb.Detail, "settled") || !strings.Contains(pb.Detail, "rejected by russia") {
		t.Errorf("acknowledging a settled item: %d %s", status, body)
	}
	if again, _ := e.rulesItem("coalition", rejected.Version); e.ackReply(again, "coalition") != "" {
		t.Errorf("the refused acknowledgment was recorded: %v", again)
	}

	// The record says why, and whom each item no longer waited for.
	export := string(e.mustDo("GET", "/v1/audit", e.tokens["coalition"], nil, 200, nil))
	settledRecords := 0
	for line := range strings.Lines(export) {
		if strings.Contains(line, `"kind":"message_settled"`) {
			settledRecords++
			if !strings.Contains(line, `"unanswered":[`) || !strings.Contains(line, `"reason":"`) {
				t.Errorf("a message_settled record without whom or why: %s", line)
			}
		}
	}
	if settledRecords != 3 {
		t.Errorf("%d message_settled records coalition reads, want 3 (rejected, superseded, in force)", settledRecords)
	}
}

func jsonNumber(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// ackReply is party's acknowledgment of item: its reply, "(none)" for
// one without, "" when it has not acknowledged it.
func (e *env) ackReply(item map[string]any, party string) string {
	acks, _ := item["acks"].([]any)
	for _, a := range acks {
		if m, _ := a.(map[string]any); m["party"] == party {
			if r, _ := m["reply"].(string); r != "" {
				return r
			}
			return "(none)"
		}
	}
	return ""
}
