package service

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
)

// EventsSnapshot is the state a party's events tell, for a client that
// starts (or cannot resume) its event stream without replaying the whole
// history: the open alerts and the hotline items that matter, each part
// with the id of the last event it is exactly the state of. A client
// applies the alert events after AlertsAfter and the hotline events after
// MessagesAfter, and nothing else of those kinds: the two parts are read
// from different places (the alerts as this process delivered the store's
// events, the hotline from the store), each consistent with its own id.
type EventsSnapshot struct {
	// Alerts are the open alerts concerning the party, in id order, each
	// as the last event of it the party was sent says it (with the
	// party's own part of its resolution, where it has one).
	Alerts      []json.RawMessage `json:"alerts"`
	AlertsAfter int64             `json:"alerts_after"`
	// Messages are the party's hotline items created within
	// SnapshotMessagesWindow of now (a shorter window when that one holds
	// more than hotline.MaxListLimit: the newest, messagesWindow), and
	// those still open or
	// escalated however old, oldest first (none for the operator, which
	// has no hotline).
	Messages      []hotline.Message `json:"messages"`
	MessagesAfter int64             `json:"messages_after"`
	// ResumeAfter, when Resumable, is the id of an event of the party
	// (0: none) that a stream resumed after it (Last-Event-ID) continues
	// from exactly as the stream after the snapshot does: the party has
	// no event after it up to the later of the two parts' ids, so that
	// such a stream brings none the snapshot holds and misses none after
	// it. An event of the party's own, not a bare id: a cursor is judged
	// against the party's events (one beyond them is of another
	// history). Not resumable when the party has events between the
	// two parts' ids: the snapshot holds some of them and not others,
	// and no one id tells which.
	ResumeAfter int64 `json:"-"`
	Resumable   bool  `json:"-"`
}

// After is the id an event stream that follows the snapshot starts after:
// the earlier of its two parts.
func (s EventsSnapshot) After() int64 { return min(s.AlertsAfter, s.MessagesAfter) }

// Covers reports whether the snapshot already holds what event e says (an
// alert or hotline event at or before its part's id), so that a client
// applying the snapshot and then the stream applies nothing twice.
func (s EventsSnapshot) Covers(e store.Event) bool {
	switch e.Kind {
	case alertEventKind(alert.StateRaised), alertEventKind(alert.StateUpdated), alertEventKind(alert.StateCleared):
		return e.ID <= s.AlertsAfter
	case hotline.EventMessage, hotline.EventAck, hotline.EventEscalated:
		return e.ID <= s.MessagesAfter
	}
	return false
}

// SnapshotMessagesWindow is how far back a snapshot lists every hotline
// item of the party; older ones are listed while they are open.
const SnapshotMessagesWindow = 24 * time.Hour

// snapshotOpenScan bounds the open items (of every party) a snapshot reads
// to find the party's.
const snapshotOpenScan = 20 * hotline.MaxListLimit

// Snapshot returns the state p's events tell now (EventsSnapshot). Its cost
// is that of the open alerts and the recent and open hotline items, not of
// the history.
func (s *Service) Snapshot(ctx context.Context, p party.Principal) (EventsSnapshot, error) {
	var out EventsSnapshot
	out.Alerts, out.AlertsAfter = s.story.snapshot(p.Party, p.Operator)
	if p.Operator {
		// No hotline: the operator's stream brings its items from here on.
		// The operator is sent every event: the parts' id is its own.
		out.Messages, out.MessagesAfter = []hotline.Message{}, out.AlertsAfter
		out.ResumeAfter, out.Resumable = out.AlertsAfter, true
		return out, nil
	}
	now := s.now()
	err := s.st.View(ctx, func(tx store.Tx) error {
		// One read transaction: the messages are those of the events up
		// to this id, and of none after it.
		last, err := tx.LastEventID()
		if err != nil {
			return err
		}
		window, err := messagesWindow(tx, p.Party, now)
		if err != nil {
			return err
		}
		recent, err := hotline.List(tx, p.Party, "", now.Add(-window), hotline.MaxListLimit)
		if err != nil {
			return err
		}
		open, err := hotline.ListOpen(tx, p.Party, snapshotOpenScan)
		if err != nil {
			return err
		}
		out.MessagesAfter = last
		out.Messages = mergeMessages(recent, open)
		// Read in this transaction, which sees every event up to both
		// parts' ids (the alerts' were delivered, so committed, before).
		resume, err := store.LastEventIDFor(tx, p.Party, max(out.AlertsAfter, out.MessagesAfter))
		if err != nil {
			return err
		}
		out.ResumeAfter, out.Resumable = resume, resume <= out.After()
		return nil
	})
	if err != nil {
		return EventsSnapshot{}, err
	}
	return out, nil
}

// messagesWindow is how far back from now a snapshot lists every item of
// the party: SnapshotMessagesWindow, or when that holds more than a list
// does (which is oldest first: it would list the oldest of the window, not
// the newest), the longest window that holds fewer, to within 1/256 of it.
func messagesWindow(tx store.Tx, party string, now time.Time) (time.Duration, error) {
	fits := func(w time.Duration) (bool, error) {
		recs, err := tx.MessagesFor(party, "", now.Add(-w), hotline.MaxListLimit)
		return len(recs) < hotline.MaxListLimit, err
	}
	lo, hi := time.Duration(0), SnapshotMessagesWindow
	if ok, err := fits(hi); ok || err != nil {
		return hi, err
	}
	for range 8 {
		mid := lo + (hi-lo)/2
		ok, err := fits(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// mergeMessages lists the messages of both lists once, oldest first.
func mergeMessages(a, b []hotline.Message) []hotline.Message {
	seen := make(map[string]bool, len(a))
	out := make([]hotline.Message, 0, len(a)+len(b))
	for _, l := range [][]hotline.Message{a, b} {
		for _, m := range l {
			if !seen[m.ID] {
				seen[m.ID] = true
				out = append(out, m)
			}
		}
	}
	slices.SortStableFunc(out, func(x, y hotline.Message) int {
		return cmp.Or(x.Created.Compare(y.Created), cmp.Compare(x.ID, y.ID))
	})
	return out
}
