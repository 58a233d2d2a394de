package service

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
)

// TestUnreadableMessageHidesNoOtherItem: one stored hotline message whose
// body does not decode failed every snapshot of its parties' event streams
// and of the operator's (the console could not open its stream at all),
// the REST list of their messages, and the escalation job, which then
// escalated no item of any party. Each passes over it and serves the
// others; the ERROR naming it is logged once per unreadableLogEvery, not
// at every pass, and the metric counts it once; asked for by id, it is an
// error naming it.
func TestUnreadableMessageHidesNoOtherItem(t *testing.T) {
	ctx := context.Background()
	s, step := newSnapshotService(t, 0)
	logs, log := newLogBuffer()
	s.log = log
	coalition, russia := party.Principal{Party: "coalition"}, party.Principal{Party: "russia"}
	operator := party.Principal{Party: "operator", Operator: true}
	post := func(from party.Principal, to string) hotline.Message {
		t.Helper()
		step(time.Second)
		m, err := s.PostMessage(ctx, from, hotline.NewMessage{To: []string{to}, Kind: hotline.KindRequest, Text: "confirm"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	bad := post(coalition, "russia")
	other := post(russia, "coalition")
	err := s.st.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.GetMessage(bad.ID)
		if err != nil {
			return err
		}
		rec.Body = []byte("{not json")
		return tx.PutMessage(rec)
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, p := range []party.Principal{coalition, russia, operator} {
		snap, err := s.Snapshot(ctx, p)
		if err != nil {
			t.Fatalf("%s's snapshot: %v", p.Party, err)
		}
		if got := messageIDs(snap.Messages); !slices.Equal(got, []string{other.ID}) {
			t.Errorf("%s's snapshot holds %v, want %s", p.Party, got, other.ID)
		}
	}
	listed, err := s.ListMessages(ctx, coalition, "", time.Time{}, 0)
	if err != nil || !slices.Equal(messageIDs(listed), []string{other.ID}) {
		t.Errorf("coalition's messages: %v, %v; want %s", messageIDs(listed), err, other.ID)
	}
	var ue *hotline.UnreadableError
	if _, err := s.AckMessage(ctx, russia, bad.ID, ""); !errors.As(err, &ue) || ue.ID != bad.ID {
		t.Errorf("acknowledging the unreadable message: %v, want an error naming it", err)
	}

	step(s.Rules().AckDeadline("") + time.Minute)
	if err := s.escalate(ctx, s.now()); err != nil {
		t.Fatalf("the escalation job failed: %v", err)
	}
	snap, err := s.Snapshot(ctx, russia)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Messages) != 1 || snap.Messages[0].State != hotline.StateEscalated {
		t.Errorf("after the escalation russia's snapshot holds %+v, want %s escalated", snap.Messages, other.ID)
	}

	naming := func() int {
		n := 0
		for _, line := range logs.errors() {
			if strings.Contains(line, bad.ID) {
				n++
			}
		}
		return n
	}
	if n := naming(); n != 1 {
		t.Errorf("%d ERRORs name the unreadable message after several passes, want 1: %q", n, logs.errors())
	}
	if n := counterValue(t, s.m.HotlineUnreadable); n != 1 {
		t.Errorf("unreadable messages counted %v, want 1", n)
	}
	step(unreadableLogEvery)
	if _, err := s.Snapshot(ctx, russia); err != nil {
		t.Fatal(err)
	}
	if n := naming(); n != 2 {
		t.Errorf("%d ERRORs name the unreadable message after %s more, want 2", n, unreadableLogEvery)
	}
	if n := counterValue(t, s.m.HotlineUnreadable); n != 1 {
		t.Errorf("unreadable messages counted %v, want 1 (one message)", n)
	}
}
