package service

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// TestSnapshotHoldsEveryOpenItemOfTheParty: a party's snapshot holds each
// of its items still open, older than the snapshot's window, although
// other parties have more open items than a snapshot carries, due before
// its own (the snapshot read the open items of every party, the earliest
// deadlines first, as many as it carries, and kept the party's: it found
// none of them). With one more open item than it carries, the snapshot
// says so and holds those due first; the events of the one left out are
// not covered, so that the stream sends them, while those of the items it
// holds are.
func TestSnapshotHoldsEveryOpenItemOfTheParty(t *testing.T) {
	ctx := context.Background()
	const carried = 4
	s, step := newSnapshotService(t, carried)
	post := func(from, to string) hotline.Message {
		t.Helper()
		step(time.Second)
		m, err := s.PostMessage(ctx, party.Principal{Party: from}, hotline.NewMessage{To: []string{to}, Kind: hotline.KindRequest, Text: "confirm"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for range 3 * carried {
		post("russia", "ukraine")
	}
	var own []string
	for range carried {
		own = append(own, post("russia", "coalition").ID)
	}
	// A day later, none of them is recent: only the open ones are listed.
	step(SnapshotMessagesWindow + time.Hour)
	coalition := party.Principal{Party: "coalition"}
	snap, err := s.Snapshot(ctx, coalition)
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(snap.Messages); !slices.Equal(got, own) || snap.MessagesTruncated {
		t.Fatalf("coalition's snapshot holds %v (truncated %v), want its open items %v", got, snap.MessagesTruncated, own)
	}

	// One more than a snapshot carries: the one due last is left out.
	step(-SnapshotMessagesWindow - time.Hour)
	left := post("russia", "coalition")
	step(SnapshotMessagesWindow + time.Hour)
	snap, err = s.Snapshot(ctx, coalition)
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(snap.Messages); !slices.Equal(got, own) || !snap.MessagesTruncated {
		t.Fatalf("coalition's snapshot holds %v (truncated %v), want %v and truncated", got, snap.MessagesTruncated, own)
	}
	evs, err := s.EventsAfter(ctx, coalition, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var sawLeft, sawCarried bool
	for _, e := range evs {
		if e.Kind != hotline.EventMessage {
			continue
		}
		switch id := eventItemID(t, e); {
		case id == left.ID:
			sawLeft = true
			if snap.Covers(e) {
				t.Errorf("the event %d of the item left out of the snapshot is covered: the stream leaves it out", e.ID)
			}
		case slices.Contains(own, id):
			sawCarried = true
			if !snap.Covers(e) {
				t.Errorf("the event %d of item %s, in the snapshot, is not covered", e.ID, id)
			}
		}
	}
	if !sawLeft || !sawCarried {
		t.Fatalf("coalition's events %+v lack its items'", evs)
	}
}

// TestOperatorSnapshotHoldsEscalations: the operator's snapshot holds the
// items of every party still open or escalated (it held none, and the
// events of the escalations before it were left out as covered: an
// operator's console that started after an escalation never showed it);
// an acknowledged one is not in it.
func TestOperatorSnapshotHoldsEscalations(t *testing.T) {
	ctx := context.Background()
	s, step := newSnapshotService(t, 0)
	coalition, russia := party.Principal{Party: "coalition"}, party.Principal{Party: "russia"}
	escalated, err := s.PostMessage(ctx, coalition, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindRequest, Text: "confirm"})
	if err != nil {
		t.Fatal(err)
	}
	step(s.Rules().AckDeadline(escalated.Level) + time.Second)
	s.Tick(ctx)
	open, err := s.PostMessage(ctx, russia, hotline.NewMessage{To: []string{"coalition"}, Kind: hotline.KindRequest, Text: "and yours"})
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.PostMessage(ctx, russia, hotline.NewMessage{To: []string{"coalition"}, Kind: hotline.KindNotice, Text: "seen"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AckMessage(ctx, coalition, done.ID, ""); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx, party.Principal{Party: "operator", Operator: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(snap.Messages); !slices.Equal(got, []string{escalated.ID, open.ID}) {
		t.Fatalf("the operator's snapshot holds %v, want the escalated item %s and the open one %s", got, escalated.ID, open.ID)
	}
	if snap.Messages[0].State != hotline.StateEscalated {
		t.Fatalf("the operator's snapshot holds %+v, not escalated", snap.Messages[0])
	}
	last, err := s.EventsAfter(ctx, party.Principal{Party: "operator", Operator: true}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(last); n == 0 || snap.MessagesAfter < last[n-1].ID {
		t.Fatalf("the operator's snapshot is as of event %d, before the last %+v", snap.MessagesAfter, last)
	}
}

func messageIDs(ms []hotline.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func eventItemID(t *testing.T, e store.Event) string {
	t.Helper()
	var m hotline.Message
	if err := json.Unmarshal(e.Body, &m); err != nil {
		t.Fatalf("event %d: %v", e.ID, err)
	}
	return m.ID
}

// newSnapshotService is a service on a fresh SQLite store with coalition,
// russia and ukraine, whose snapshots carry at most carried open items (0:
// the default), on a clock that moves only by step.
func newSnapshotService(t *testing.T, carried int) (*Service, func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC).UnixNano())
	s, err := New(ctx, Config{Store: st, SnapshotOpenMessages: carried, Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(ctx) })
	for _, p := range []string{"coalition", "russia", "ukraine"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return s, func(d time.Duration) { clock.Add(int64(d)) }
}
