package hotline

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// putProposal stores p as the service does.
func (e *env) putProposal(p rules.Proposal) {
	e.t.Helper()
	body, err := json.Marshal(p)
	if err != nil {
		e.t.Fatal(err)
	}
	e.update(func(tx store.Tx) error {
		return tx.PutRulesProposal(store.RulesProposal{Version: p.Version, Created: t0, Actor: "operator", State: p.State, Body: body})
	})
}

func (e *env) postProposalItem(version int64, to ...string) Message {
	e.t.Helper()
	var m Message
	e.update(func(tx store.Tx) error {
		var err error
		m, _, err = PostRulesProposal(tx, e.log, e.r, version, to, "rules version proposed. Answer with accept or reject.", t0)
		return err
	})
	return m
}

func (e *env) get(party, id string) Message {
	e.t.Helper()
	var m Message
	e.view(func(tx store.Tx) error {
		var err error
		m, err = Get(tx, party, id)
		return err
	})
	return m
}

// TestClosedProposalItemsAreSettled: the items of a proposal of the rules
// that closed stayed open for the recipients that never answered it,
// escalating about a question that no longer existed, and took a plain
// acknowledgment that read as an answer to it. SettleProposal settles them
// when the proposal closes, saying why; an acknowledgment after is
// refused (*SettledError); an item the close did not settle (stored
// before) is settled at its deadline instead of escalated. The items of
// an open proposal are left alone.
func TestClosedProposalItemsAreSettled(t *testing.T) {
	e := newEnv(t, "")
	e.update(func(tx store.Tx) error {
		return tx.PutRules(store.RulesRecord{Version: 1, Created: t0, Actor: "operator", Body: []byte(`{}`)})
	})
	rejected := e.postProposalItem(2, "alpha", "bravo", "charlie")
	open := e.postProposalItem(3, "alpha", "bravo")
	superseded := e.postProposalItem(4, "alpha", "bravo")
	if _, _, err := e.ack(rejected.ID, "alpha", "rejected: no", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	e.putProposal(rules.Proposal{Version: 2, State: rules.ProposalRejected, Base: 1,
		Answers: []rules.Answer{{Party: "alpha", Accepted: false, Reason: "no", Time: t0}}})
	e.putProposal(rules.Proposal{Version: 3, State: rules.ProposalOpen, Base: 1})

	now := t0.Add(2 * time.Second)
	e.update(func(tx store.Tx) error {
		for _, v := range []int64{2, 3} {
			if _, err := SettleProposal(tx, e.log, v, now, nil); err != nil {
				return err
			}
		}
		return nil
	})
	m := e.get("alpha", rejected.ID)
	if m.State != StateAcknowledged || m.Settled == nil || !strings.Contains(m.Settled.Reason, "rejected by alpha") ||
		!slices.Equal(m.Settled.Unanswered, []string{"bravo", "charlie"}) || !m.Settled.Time.Equal(now) {
		t.Errorf("the item of the rejected proposal: %+v, settled %+v", m, m.Settled)
	}
	if m := e.get("alpha", open.ID); m.State != StateOpen || m.Settled != nil {
		t.Errorf("the item of the open proposal: %+v", m)
	}
	if got := e.auditKinds()["message_settled"]; got != 1 {
		t.Errorf("%d message_settled records, want 1", got)
	}

	// A plain acknowledgment after is refused, naming the state and why.
	_, _, err := e.ack(rejected.ID, "bravo", "", now.Add(time.Second))
	var se *SettledError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "is acknowledged") || !strings.Contains(err.Error(), "rejected by alpha") {
		t.Errorf("acknowledging a settled item: %v", err)
	}
	if m := e.get("bravo", rejected.ID); m.AckedBy("bravo") {
		t.Errorf("the refused acknowledgment was recorded: %+v", m.Acks)
	}

	// Superseded by version 5 under a program that settled nothing: at
	// its deadline it is settled, not escalated; the open one escalates.
	e.update(func(tx store.Tx) error {
		return tx.PutRules(store.RulesRecord{Version: 5, Created: t0, Actor: "operator", Body: []byte(`{}`)})
	})
	e.putProposal(rules.Proposal{Version: 4, State: rules.ProposalSuperseded, Base: 1})
	escalated, _ := e.escalate(superseded.Deadline)
	if len(escalated) != 1 || escalated[0].ID != open.ID {
		t.Errorf("escalated %v, want only the open proposal's item %s", escalated, open.ID)
	}
	m = e.get("alpha", superseded.ID)
	if m.State != StateAcknowledged || m.Escalations != 0 || m.Settled == nil || !strings.Contains(m.Settled.Reason, "superseded by version 5") {
		t.Errorf("the item of the superseded proposal at its deadline: %+v, settled %+v", m, m.Settled)
	}
}
