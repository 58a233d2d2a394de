package hotline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/store"
)

// TestPostingNeedsTheThreadAndTheReference: a party posts only into a
// thread it is a member of or a new one; alert threads are the service's,
// a volume's thread its owner's and the service's; what a message refers
// to must exist and concern the sender. A refusal writes nothing.
func TestPostingNeedsTheThreadAndTheReference(t *testing.T) {
	e := newEnv(t, "")
	// bravo's volume, and charlie's, which conflicts with delta's: both
	// owners are told on the thread of charlie's volume.
	e.update(func(tx store.Tx) error {
		for _, v := range []store.Volume{{ID: "vol-b", Party: "bravo"}, {ID: "vol-c", Party: "charlie"}, {ID: "vol-d", Party: "delta"}} {
			v.Version, v.State, v.Start, v.End, v.Body = "1", "accepted", t0, t0.Add(time.Hour), []byte(`{}`)
			if _, err := tx.PutVolume(v, ""); err != nil {
				return err
			}
		}
		if _, _, err := PostVolumeConflict(tx, e.log, e.r, SubjectVolume{ID: "vol-c", Party: "charlie", Version: "1"}, SubjectVolume{ID: "vol-d", Party: "delta", Version: "1"}, t0); err != nil {
			return err
		}
		// An alert between bravo and charlie.
		_, _, err := PostSystem(tx, e.log, e.r, SystemItem{Kind: KindAlert, To: []string{"bravo", "charlie"}, Text: "warning alert", Ref: Ref{AlertID: "al-1"}, Level: "warning"}, t0)
		return err
	})
	ops, _ := e.post("bravo", NewMessage{To: []string{"charlie"}, Kind: KindNotice, Thread: "bravo/ops", Text: "b to c"}, t0)
	// A thread of charlie's space that bravo began before names were
	// spaced: the one kind of thread a party's own space may hold without it.
	e.update(func(tx store.Tx) error {
		_, _, err := post(tx, e.log, e.r, Message{From: "bravo", To: []string{"delta"}, Thread: "charlie/squatted", Kind: KindNotice, Text: "b to d"}, t0)
		return err
	})

	refused := []struct {
		name  string
		from  string
		in    NewMessage
		field string // "" for ErrNotMember
	}{
		// A thread outside its own space that it is not on is refused
		// alike whether or not it has begun: alpha cannot try names to
		// learn which threads bravo and charlie talk in.
		{"into a thread of others it is not on", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Thread: ops.Thread, Text: "x"}, "thread"},
		{"into a thread of others that has not begun", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Thread: "bravo/none", Text: "x"}, "thread"},
		{"starting a thread outside its space", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Thread: "ops", Text: "x"}, "thread"},
		{"into a thread of its space others began without it", "charlie", NewMessage{To: []string{"delta"}, Kind: KindNotice, Thread: "charlie/squatted", Text: "x"}, ""},
		// A reserved thread is refused as when it has not begun: the
		// refusal does not tell alpha that charlie's volume is in conflict.
		{"into the alert thread of others", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Thread: "alert:al-1", Text: "x"}, "thread"},
		{"into the volume thread of others", "alpha", NewMessage{To: []string{"charlie"}, Kind: KindNotice, Thread: "volume:vol-c", Text: "x"}, "thread"},
		{"starting an alert thread", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Thread: "alert:made-up", Text: "x"}, "thread"},
		{"starting another party's volume thread", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Thread: "volume:vol-b", Text: "x"}, "thread"},
		{"starting the thread of no volume", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Thread: "volume:none", Text: "x"}, "thread"},
		{"referring to no alert", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Ref: &Ref{AlertID: "al-404"}, Text: "x"}, "ref.alert_id"},
		{"referring to an alert of others", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Ref: &Ref{AlertID: "al-1"}, Text: "x"}, "ref.alert_id"},
		{"referring to a volume of another party it was not told about", "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Ref: &Ref{VolumeID: "vol-b"}, Text: "x"}, "ref.volume_id"},
		{"referring to a volume conflict of others", "bravo", NewMessage{To: []string{"charlie"}, Kind: KindNotice, Thread: "bravo/ops", Ref: &Ref{VolumeID: "vol-c"}, Text: "x"}, "ref.volume_id"},
	}
	before := e.lastEventID()
	for _, c := range refused {
		err := e.st.Update(context.Background(), func(tx store.Tx) error {
			_, _, err := Post(tx, e.log, e.r, c.from, c.in, t0.Add(time.Second))
			return err
		})
		var fe *fielderr.Error
		switch {
		case c.field == "" && !errors.Is(err, ErrNotMember):
			t.Errorf("%s: got %v, want ErrNotMember", c.name, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%s: got %v, want an error on %s", c.name, err, c.field)
		}
	}
	if got := e.lastEventID(); got != before {
		t.Fatalf("refused posts appended events (%d -> %d)", before, got)
	}

	accepted := []struct {
		name   string
		from   string
		in     NewMessage
		thread string
	}{
		{"into a thread it received a message in", "charlie", NewMessage{To: []string{"bravo"}, Kind: KindReply, Thread: ops.Thread, Text: "c to b"}, "bravo/ops"},
		{"into the alert thread it was told on", "bravo", NewMessage{To: []string{"charlie"}, Kind: KindNotice, Thread: "alert:al-1", Text: "x"}, "alert:al-1"},
		{"referring to its alert", "charlie", NewMessage{To: []string{"bravo"}, Kind: KindReply, Ref: &Ref{AlertID: "al-1"}, Text: "x"}, "alert:al-1"},
		{"referring to its own volume", "bravo", NewMessage{To: []string{"alpha"}, Kind: KindNotice, Ref: &Ref{VolumeID: "vol-b"}, Text: "x"}, "volume:vol-b"},
		{"referring to a volume it was told conflicts with its own", "delta", NewMessage{To: []string{"charlie"}, Kind: KindRequest, Ref: &Ref{VolumeID: "vol-c"}, Text: "x"}, "volume:vol-c"},
		{"a new thread of its own", "alpha", NewMessage{To: []string{"delta"}, Kind: KindNotice, Thread: "alpha/delta", Text: "x"}, "alpha/delta"},
		{"a new thread named by the service", "alpha", NewMessage{To: []string{"delta"}, Kind: KindNotice, Text: "x"}, ""},
	}
	for _, c := range accepted {
		err := e.st.Update(context.Background(), func(tx store.Tx) error {
			m, _, err := Post(tx, e.log, e.r, c.from, c.in, t0.Add(2*time.Second))
			if err == nil && c.thread != "" && m.Thread != c.thread {
				t.Errorf("%s: thread %q, want %q", c.name, m.Thread, c.thread)
			}
			return err
		})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
