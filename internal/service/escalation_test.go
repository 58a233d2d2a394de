package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
)

// TestEscalationLadderSurvivesRestarts: an item nobody acknowledges
// escalates once at its deadline and once at each escalation deadline,
// however often the job runs and although the service restarts between
// and at the very instants of the levels, once after a crash (the old
// service never closed) and once after a clean stop: three levels, three
// escalations, each recorded once with the deadline it passed.
func TestEscalationLadderSurvivesRestarts(t *testing.T) {
	ctx := context.Background()
	dir, st := storeInDir(t)
	var clock atomic.Int64
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	clock.Store(t0.UnixNano())
	at := func(tm time.Time) { clock.Store(tm.UnixNano()) }
	open := func() *Service {
		t.Helper()
		s, err := New(ctx, Config{Store: st, DataDir: dir, Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	m, err := s.PostMessage(ctx, party.Principal{Party: "coalition"}, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindRequest, Text: "confirm your track"})
	if err != nil {
		t.Fatal(err)
	}
	step := s.Rules().EscalationDeadline()
	levels := []time.Time{m.Deadline, m.Deadline.Add(step), m.Deadline.Add(2 * step)}
	escalations := func() int {
		t.Helper()
		got, err := s.ListMessages(ctx, party.Principal{Party: "russia"}, m.Thread, time.Time{}, 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("messages %+v %v", got, err)
		}
		return got[0].Escalations
	}
	for i, level := range levels {
		at(level.Add(-time.Nanosecond))
		s.Tick(ctx)
		if n := escalations(); n != i {
			t.Fatalf("a nanosecond before level %d: %d escalations", i+1, n)
		}
		at(level)
		s.Tick(ctx)
		s.Tick(ctx)
		switch i {
		case 0: // a crash: the service is never closed
			s = open()
		case 1:
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			s = open()
		}
		s.Tick(ctx)
		if n := escalations(); n != i+1 {
			t.Fatalf("at level %d, across a restart: %d escalations", i+1, n)
		}
	}
	defer s.Close(ctx)
	var passed []time.Time
	var events int
	err = st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 1<<20)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Kind != "message_escalated" {
				continue
			}
			d, err := audit.Decode(r)
			if err != nil {
				return err
			}
			var c struct {
				ID             string    `json:"id"`
				DeadlinePassed time.Time `json:"deadline_passed"`
			}
			if err := json.Unmarshal(d.Content, &c); err != nil {
				return err
			}
			if c.ID == m.ID {
				passed = append(passed, c.DeadlinePassed)
			}
		}
		evs, err := tx.EventsAfter(0, 1<<20)
		for _, e := range evs {
			if e.Kind == hotline.EventEscalated {
				events++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(passed) != len(levels) || events != len(levels) {
		t.Fatalf("escalation records %v and %d events; want one of each per level %v", passed, events, levels)
	}
	for i := range levels {
		if !passed[i].Equal(levels[i]) {
			t.Fatalf("escalation %d passed the deadline %v, want %v", i+1, passed[i], levels[i])
		}
	}
}

// TestEveryDueItemEscalatesAtOneTick: more items due at once than one
// transaction of the job escalates (escalateBatch) all escalate at the
// same tick, not one batch a tick, the last ones seconds late.
func TestEveryDueItemEscalatesAtOneTick(t *testing.T) {
	ctx := context.Background()
	_, st := storeInDir(t)
	var clock atomic.Int64
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	clock.Store(t0.UnixNano())
	s, err := New(ctx, Config{Store: st, Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	const n = 2*escalateBatch + 1
	var deadline time.Time
	err = s.write(ctx, func(tx store.Tx) error {
		// Alert items, which no bound on a party's open messages holds
		// back: a flood of alerts is what must not wait.
		for i := range n {
			m, _, err := hotline.PostSystem(tx, s.alog, s.Rules(), hotline.SystemItem{Kind: hotline.KindAlert, To: []string{"coalition", "russia"}, Text: "x", Ref: hotline.Ref{AlertID: fmt.Sprintf("al-%d", i)}}, t0)
			if err != nil {
				return err
			}
			deadline = m.Deadline
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(deadline.UnixNano())
	s.Tick(ctx)
	got, err := s.ListMessages(ctx, party.Principal{Party: "russia"}, "", time.Time{}, hotline.MaxListLimit)
	if err != nil || len(got) != n {
		t.Fatalf("%d messages, %v", len(got), err)
	}
	escalated := 0
	for _, m := range got {
		if m.Escalations == 1 {
			escalated++
		}
	}
	if escalated != n {
		t.Fatalf("%d of %d items due escalated at the tick", escalated, n)
	}
}

// TestEscalationSurvivesAClockStepForwardAndBack: the server's clock steps
// a day ahead (a bad NTP step) and is corrected. The item escalated during
// the step, whose next deadline was set a day ahead, and the item posted
// during it, whose acknowledgment deadline was, escalate again an interval
// after the correction, not a day later: each is brought back once, with
// an audit record and a message event to its parties (their consoles
// showed the old deadline), and then escalates at its interval.
func TestEscalationSurvivesAClockStepForwardAndBack(t *testing.T) {
	ctx := context.Background()
	_, st := storeInDir(t)
	var clock atomic.Int64
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	at := func(tm time.Time) { clock.Store(tm.UnixNano()) }
	at(t0)
	s, err := New(ctx, Config{Store: st, Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	coalition := party.Principal{Party: "coalition"}
	before, err := s.PostMessage(ctx, coalition, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindRequest, Text: "confirm your track", Thread: "coalition/before"})
	if err != nil {
		t.Fatal(err)
	}
	at(t0.Add(24 * time.Hour)) // the step forward
	s.Tick(ctx)
	during, err := s.PostMessage(ctx, coalition, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindRequest, Text: "still there?", Thread: "coalition/during"})
	if err != nil {
		t.Fatal(err)
	}
	corrected := t0.Add(time.Minute) // the correction
	at(corrected)
	s.Tick(ctx)
	// Each rescheduled item's parties, and only they, are told of it as
	// it now stands: the last event about it carries the deadlines the
	// store holds, and is not an escalation.
	for _, m := range []hotline.Message{before, during} {
		got, err := s.ListMessages(ctx, party.Principal{Party: "russia"}, m.Thread, time.Time{}, 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("messages %+v %v", got, err)
		}
		var last store.Event
		var told hotline.Message
		err = st.View(ctx, func(tx store.Tx) error {
			evs, err := tx.EventsAfter(0, 1<<20)
			for _, e := range evs {
				var about hotline.Message
				if json.Unmarshal(e.Body, &about) == nil && about.ID == m.ID {
					last, told = e, about
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !told.Deadline.Equal(got[0].Deadline) || !told.EscalationDeadline.Equal(got[0].EscalationDeadline) {
			t.Fatalf("the last event about %s (%s) says deadlines %v and %v; the item, rescheduled, has %v and %v",
				m.Thread, last.Kind, told.Deadline, told.EscalationDeadline, got[0].Deadline, got[0].EscalationDeadline)
		}
		if last.Kind != hotline.EventMessage || !slices.Equal(last.Audience, []string{"coalition", "russia"}) {
			t.Fatalf("the rescheduling of %s sent %q to %v, want %q to its parties coalition and russia", m.Thread, last.Kind, last.Audience, hotline.EventMessage)
		}
	}
	escalations := func(thread string) int {
		t.Helper()
		got, err := s.ListMessages(ctx, party.Principal{Party: "russia"}, thread, time.Time{}, 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("messages %+v %v", got, err)
		}
		return got[0].Escalations
	}
	if n := escalations(before.Thread); n != 1 {
		t.Fatalf("the item due during the step escalated %d times, want 1", n)
	}
	r := s.Rules()
	at(corrected.Add(max(r.EscalationDeadline(), r.AckDeadline(""))))
	s.Tick(ctx)
	if n := escalations(before.Thread); n != 2 {
		t.Fatalf("an escalation deadline after the clock was corrected, the item escalated during the step has %d escalations, want 2", n)
	}
	if n := escalations(during.Thread); n != 1 {
		t.Fatalf("an acknowledgment deadline after the clock was corrected, the item posted during the step has %d escalations, want 1", n)
	}
	var rescheduled []string
	err = st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 1<<20)
		for _, rec := range recs {
			if rec.Kind != "message_rescheduled" {
				continue
			}
			d, err := audit.Decode(rec)
			if err != nil {
				return err
			}
			var c struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(d.Content, &c); err != nil {
				return err
			}
			rescheduled = append(rescheduled, c.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rescheduled) != 2 || !slices.Contains(rescheduled, before.ID) || !slices.Contains(rescheduled, during.ID) {
		t.Fatalf("rescheduled %v, want each of %s and %s once", rescheduled, before.ID, during.ID)
	}
}

// TestReplicaBehindTheRulesDoesNotRescheduleTheirLongerDeadlines: new
// rules lengthen the acknowledgment deadline to 600 s and one replica
// posts an item under them; another, which has not adopted them yet (it
// catches up at its next tick, after the escalation job), runs the
// escalation job. The item's deadline, legitimately 600 s ahead, is left
// alone: taken for the mark of a clock step under the old rules (their
// longest deadline 120 s), it was brought back to 120 s, escalated early
// and audited as a clock that went back.
func TestReplicaBehindTheRulesDoesNotRescheduleTheirLongerDeadlines(t *testing.T) {
	ctx := context.Background()
	pair := newReplicaPair(t)
	ahead, behind := pair.svc[0], pair.svc[1]
	for _, p := range []string{"coalition", "russia"} {
		if _, err := ahead.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	old := behind.Rules()
	longer := ahead.Rules()
	longer.AckDeadlineS = 600
	version := bringIntoForce(t, ahead, longer, "coalition", "russia")
	if got := behind.Rules().Version; got != old.Version {
		t.Fatalf("the replica behind runs with rules version %d, want %d still", got, old.Version)
	}
	item, err := ahead.PostMessage(ctx, party.Principal{Party: "coalition"}, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindRequest, Text: "confirm your track", Thread: "coalition/longer"})
	if err != nil {
		t.Fatal(err)
	}
	if want := item.Created.Add(600 * time.Second); !item.Deadline.Equal(want) {
		t.Fatalf("the item posted under rules version %d is due at %v, want %v", version, item.Deadline, want)
	}
	if err := behind.escalate(ctx, pair.clock.now()); err != nil {
		t.Fatal(err)
	}
	got, err := ahead.ListMessages(ctx, party.Principal{Party: "russia"}, item.Thread, time.Time{}, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("messages %+v %v", got, err)
	}
	if !got[0].Deadline.Equal(item.Deadline) {
		t.Fatalf("the replica behind the rules moved the item's deadline from %v to %v", item.Deadline, got[0].Deadline)
	}
}

// TestEscalationJobLateForTheLockDoesNotRescheduleNewItems: the escalation
// job's time is read as the job begins, before its transaction waits for
// the writers' lock (another replica's commit, up to its lock_timeout) and
// between its batches. An item posted meanwhile, by the clock as it is
// then, is due further ahead of the job's time than the rules set any:
// taken for the mark of a clock that went back, it was brought back by the
// wait, escalated early, and audited as a clock step that never happened.
func TestEscalationJobLateForTheLockDoesNotRescheduleNewItems(t *testing.T) {
	ctx := context.Background()
	_, st := storeInDir(t)
	clock := &testClock{}
	s, err := New(ctx, Config{Store: st, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	jobBegan := clock.now()
	// While the job waits for the lock, 10 s pass and an item is posted.
	clock.advance(10 * time.Second)
	item, err := s.PostMessage(ctx, party.Principal{Party: "coalition"}, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindRequest, Text: "confirm your track", Thread: "coalition/late"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.escalate(ctx, jobBegan); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListMessages(ctx, party.Principal{Party: "russia"}, item.Thread, time.Time{}, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("messages %+v %v", got, err)
	}
	if !got[0].Deadline.Equal(item.Deadline) {
		t.Fatalf("the escalation job, begun before the item was posted, moved its deadline from %v to %v", item.Deadline, got[0].Deadline)
	}
}
