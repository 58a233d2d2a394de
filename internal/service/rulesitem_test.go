package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
)

// The hotline item of a proposal of the rules is acknowledged by the
// party's answer: a plain acknowledgment while the proposal waits for the
// party's answer is refused (ErrAnswerRequired) and changes nothing, so
// that the item keeps escalating until the party answers and its
// acknowledgment carries the answer. Once the party answered, the item
// is acknowledged by the answer; once the proposal closed without its
// answer (another party rejected it), there is nothing left to answer:
// the item is settled at the close, saying so, and a plain acknowledgment
// after is refused (*hotline.SettledError), so that none reads as an
// answer to a proposal that no longer exists.
func TestRulesItemIsAcknowledgedByTheAnswer(t *testing.T) {
	ctx := context.Background()
	s, _ := newEmbedded(t)
	for _, p := range []string{"coalition", "russia", "turkey"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	op := party.Principal{Party: party.OperatorName, Operator: true}
	proposed := s.Rules()
	proposed.SamePartyAlerts = !proposed.SamePartyAlerts
	prop, err := s.ProposeRules(ctx, op, proposed)
	if err != nil {
		t.Fatal(err)
	}
	item := func(p string) hotline.Message {
		t.Helper()
		ms, err := s.ListMessages(ctx, party.Principal{Party: p}, hotline.RulesThread(prop.Version), time.Time{}, 0)
		if err != nil || len(ms) != 1 {
			t.Fatalf("%s's items about proposal %d: %+v %v", p, prop.Version, ms, err)
		}
		return ms[0]
	}
	coalition := party.Principal{Party: "coalition"}
	it := item("coalition")
	if _, err := s.AckMessage(ctx, coalition, it.ID, "seen"); !errors.Is(err, ErrAnswerRequired) {
		t.Fatalf("plain acknowledgment of an unanswered proposal's item: %v, want ErrAnswerRequired", err)
	}
	if got := item("coalition"); got.State != hotline.StateOpen || len(got.Acks) != 0 {
		t.Fatalf("after the refused acknowledgment the item is %s with acks %+v", got.State, got.Acks)
	}
	// Unanswered, it escalates.
	if err := s.escalate(ctx, it.Deadline); err != nil {
		t.Fatal(err)
	}
	if got := item("coalition"); got.State != hotline.StateEscalated || got.Escalations != 1 {
		t.Fatalf("unanswered at its deadline the item is %s after %d escalations", got.State, got.Escalations)
	}
	// The answer acknowledges it, with the answer as reply (the item is
	// the one every party asked got: it waits for the others).
	if _, err := s.AnswerRules(ctx, coalition, prop.Version, true, "", prop.RulesSHA256); err != nil {
		t.Fatal(err)
	}
	if got := item("coalition"); len(got.Acks) != 1 || got.Acks[0].Party != "coalition" || got.Acks[0].Reply != "accepted" {
		t.Fatalf("after the answer the item has acks %+v", got.Acks)
	}
	// Closed by another's rejection: turkey has nothing left to answer,
	// and its item is settled.
	if _, err := s.AnswerRules(ctx, party.Principal{Party: "russia"}, prop.Version, false, "no", ""); err != nil {
		t.Fatal(err)
	}
	if p, err := s.RulesProposal(ctx, prop.Version); err != nil || p.State != rules.ProposalRejected {
		t.Fatalf("proposal after a rejection: %+v %v", p, err)
	}
	settled := item("turkey")
	if settled.State != hotline.StateAcknowledged || settled.Settled == nil || !strings.Contains(settled.Settled.Reason, "rejected by russia") {
		t.Fatalf("turkey's item of the rejected proposal: %+v, settled %+v", settled, settled.Settled)
	}
	var se *hotline.SettledError
	if _, err := s.AckMessage(ctx, party.Principal{Party: "turkey"}, settled.ID, ""); !errors.As(err, &se) {
		t.Fatalf("plain acknowledgment of a closed proposal's settled item: %v, want a *hotline.SettledError", err)
	}
	if got := item("turkey"); got.AckedBy("turkey") {
		t.Fatalf("the refused acknowledgment was recorded: %+v", got.Acks)
	}
}

// A rejection's reason as long as a hotline text may be (4,096 bytes) is
// taken or refused on its own field, reason: the party's item is
// acknowledged with "rejected: <reason>", which must fit a hotline reply,
// and an answer must never be refused for a field the party did not send.
func TestLongestRejectionReason(t *testing.T) {
	ctx := context.Background()
	s, _ := newEmbedded(t)
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	op := party.Principal{Party: party.OperatorName, Operator: true}
	proposed := s.Rules()
	proposed.SamePartyAlerts = !proposed.SamePartyAlerts
	prop, err := s.ProposeRules(ctx, op, proposed)
	if err != nil {
		t.Fatal(err)
	}
	coalition := party.Principal{Party: "coalition"}
	_, err = s.AnswerRules(ctx, coalition, prop.Version, false, strings.Repeat("x", hotline.MaxTextBytes), "")
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "reason" {
		t.Fatalf("a reason of %d bytes: %v, want a refusal of field reason", hotline.MaxTextBytes, err)
	}
	reason := strings.Repeat("x", hotline.MaxTextBytes-len("rejected: "))
	if _, err := s.AnswerRules(ctx, coalition, prop.Version, false, reason, ""); err != nil {
		t.Fatalf("the longest reason that fits: %v", err)
	}
	ms, err := s.ListMessages(ctx, coalition, hotline.RulesThread(prop.Version), time.Time{}, 0)
	if err != nil || len(ms) != 1 || len(ms[0].Acks) != 1 || ms[0].Acks[0].Reply != "rejected: "+reason {
		t.Fatalf("the item after the rejection: %+v %v", ms, err)
	}
}
