package hotline

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// corrupt overwrites the stored body of message id with bytes that do not
// decode, as a fault of the store or a row of another version would.
func (e *env) corrupt(id string) {
	e.t.Helper()
	e.update(func(tx store.Tx) error {
		rec, err := tx.GetMessage(id)
		if err != nil {
			return err
		}
		rec.Body = []byte(`{"text": "cut short`)
		return tx.PutMessage(rec)
	})
}

// passedOver collects the ids a read passed over.
type passedOver []string

func (p *passedOver) tell(e *UnreadableError) { *p = append(*p, e.ID) }

func ids(ms []Message) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestListsPassOverAnUnreadableMessage: one stored message whose body does
// not decode failed every list of its parties (and the operator's list of
// every open item), so that no event stream of theirs could open its
// snapshot. The lists pass over it, telling passOver its id, and list the
// others; a read of it by id names it to a party that may read it, and is
// not found to any other.
func TestListsPassOverAnUnreadableMessage(t *testing.T) {
	e := newEnv(t, "")
	bad, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "first"}, t0)
	m2, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "second"}, t0.Add(time.Second))
	m3, _ := e.post("bravo", NewMessage{To: []string{"alpha"}, Kind: KindRequest, Text: "third"}, t0.Add(2*time.Second))
	e.corrupt(bad.ID)
	want := []string{m2.ID, m3.ID}
	e.view(func(tx store.Tx) error {
		for _, party := range []string{"alpha", "bravo"} {
			var told passedOver
			all, err := List(tx, party, "", time.Time{}, 0, told.tell)
			if err != nil || !slices.Equal(ids(all), want) {
				t.Errorf("List(%s) = %v, %v; want %v", party, ids(all), err, want)
			}
			newest, err := ListNewest(tx, party, time.Time{}, 10, told.tell)
			if err != nil || !slices.Equal(ids(newest), want) {
				t.Errorf("ListNewest(%s) = %v, %v; want %v", party, ids(newest), err, want)
			}
			open, _, err := ListOpen(tx, party, 10, told.tell)
			if err != nil || len(open) != 2 {
				t.Errorf("ListOpen(%s) = %v, %v; want %v", party, ids(open), err, want)
			}
			if !slices.Equal(told, []string{bad.ID, bad.ID, bad.ID}) {
				t.Errorf("%s's lists told of %v, want %s by each", party, told, bad.ID)
			}
		}
		var told passedOver
		if open, _, err := ListOpen(tx, "", 10, told.tell); err != nil || len(open) != 2 || !slices.Equal(told, []string{bad.ID}) {
			t.Errorf("the operator's ListOpen = %v, %v, told %v", ids(open), err, told)
		}
		_, err := Get(tx, "bravo", bad.ID)
		var ue *UnreadableError
		if !errors.As(err, &ue) || ue.ID != bad.ID {
			t.Errorf("Get of the unreadable message = %v, want an UnreadableError naming it", err)
		}
		if _, err := Get(tx, "charlie", bad.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of another's unreadable message = %v, want ErrNotFound", err)
		}
		return nil
	})
}

// TestEscalationPassesOverAnUnreadableMessage: the escalation job failed
// on one stored item that does not decode and escalated no other item of
// any party while it stayed; the item, the most overdue, stays due, so
// that passing over it must not spend the job's limit on it either.
func TestEscalationPassesOverAnUnreadableMessage(t *testing.T) {
	e := newEnv(t, "")
	bad, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "first"}, t0)
	m2, _ := e.post("charlie", NewMessage{To: []string{"delta"}, Kind: KindNotice, Text: "second"}, t0.Add(time.Second))
	m3, _ := e.post("delta", NewMessage{To: []string{"charlie"}, Kind: KindNotice, Text: "third"}, t0.Add(2*time.Second))
	e.corrupt(bad.ID)
	due := m3.Deadline.Add(time.Second)
	var told passedOver
	var first, rest []Message
	e.update(func(tx store.Tx) error {
		var err error
		if first, _, err = Escalate(tx, e.log, e.r, due, 1, told.tell); err != nil {
			return err
		}
		rest, _, err = Escalate(tx, e.log, e.r, due, 1, told.tell)
		return err
	})
	if !slices.Equal(ids(first), []string{m2.ID}) || !slices.Equal(ids(rest), []string{m3.ID}) {
		t.Errorf("escalated %v then %v, want %s then %s", ids(first), ids(rest), m2.ID, m3.ID)
	}
	if !slices.Equal(told, []string{bad.ID, bad.ID}) {
		t.Errorf("told of %v, want %s by each escalation", told, bad.ID)
	}

	// Reschedule alike: items a clock a day ahead set, one unreadable,
	// the furthest ahead (Reschedule takes those first).
	ahead := t0.Add(24 * time.Hour)
	okAhead, _ := e.post("charlie", NewMessage{To: []string{"delta"}, Kind: KindNotice, Text: "ahead"}, ahead)
	badAhead, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "ahead too"}, ahead.Add(time.Second))
	e.corrupt(badAhead.ID)
	told = nil
	var back []Message
	e.update(func(tx store.Tx) error {
		var err error
		back, _, err = Reschedule(tx, e.log, e.r, due, 1, told.tell)
		return err
	})
	if !slices.Equal(ids(back), []string{okAhead.ID}) || !slices.Equal(told, []string{badAhead.ID}) {
		t.Errorf("rescheduled %v told of %v, want %s told of %s", ids(back), told, okAhead.ID, badAhead.ID)
	}
}
