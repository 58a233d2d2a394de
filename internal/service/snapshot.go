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
// MessagesAfter, and nothing else of those kinds (but see
// MessagesTruncated): the two parts are read from different places (the
// alerts as this process delivered the store's events, the hotline from
// the store), each consistent with its own id. The ids are those the
// principal is shown (eventids.go): a party's own numbers of its events,
// the operator's the global ones.
type EventsSnapshot struct {
	// Alerts are the open alerts concerning the party, in id order, each
	// as the last event of it the party was sent says it (with the
	// party's own part of its resolution, where it has one).
	Alerts []json.RawMessage `json:"alerts"`
	// AlertsAfter is the id shown of the principal's last event at or
	// before the global id alertsAfter (0: none).
	AlertsAfter int64 `json:"alerts_after"`
	// Messages are the party's hotline items created within
	// SnapshotMessagesWindow of now (the newest hotline.MaxListLimit of
	// them when there are more), and those still open or escalated
	// however old, oldest first. The
	// operator's are the items of every party still open or escalated
	// (what may need its word), not the acknowledged ones of the day.
	Messages []hotline.Message `json:"messages"`
	// MessagesAfter is the id shown of the principal's last event at or
	// before the global id messagesAfter (0: none).
	MessagesAfter int64 `json:"messages_after"`
	// alertsAfter and messagesAfter are the global ids each part is the
	// state of.
	alertsAfter, messagesAfter int64
	// ResumeAfter, when Resumable, is the id shown of an event of the party
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
	// MessagesTruncated says that the party has more items open or
	// escalated than a snapshot carries (Config.SnapshotOpenMessages):
	// Messages holds those due first. The hotline events of the others
	// are not covered by the snapshot, wherever they are: a client
	// applies every hotline event of an item not in Messages, so that
	// each of the others reaches it with its next event (its escalation
	// at its deadline, at the latest).
	MessagesTruncated bool `json:"messages_truncated"`
	// carried holds the ids of Messages when MessagesTruncated.
	carried map[string]bool
}

// After is the global id an event stream that follows the snapshot starts
// after: the earlier of its two parts.
func (s EventsSnapshot) After() int64 { return min(s.alertsAfter, s.messagesAfter) }

// Covers reports whether the snapshot already holds what event e says (an
// alert or hotline event at or before its part's id; when the hotline part
// is truncated, a hotline event of an item it holds), so that a client
// applying the snapshot and then the stream applies nothing twice, and
// misses nothing the snapshot left out.
func (s EventsSnapshot) Covers(e store.Event) bool {
	switch e.Kind {
	case alertEventKind(alert.StateRaised), alertEventKind(alert.StateUpdated), alertEventKind(alert.StateCleared):
		return e.ID <= s.alertsAfter
	case hotline.EventMessage, hotline.EventAck, hotline.EventEscalated:
		if e.ID > s.messagesAfter {
			return false
		}
		if !s.MessagesTruncated {
			return true
		}
		// The data of a hotline event is the item as it stands.
		var item struct {
			ID string `json:"id"`
		}
		return json.Unmarshal(e.Body, &item) == nil && s.carried[item.ID]
	}
	return false
}

// SnapshotMessagesWindow is how far back a snapshot lists every hotline
// item of the party; older ones are listed while they are open.
const SnapshotMessagesWindow = 24 * time.Hour

// DefaultSnapshotOpenMessages is the default of
// Config.SnapshotOpenMessages.
const DefaultSnapshotOpenMessages = hotline.MaxListLimit

// Snapshot returns the state p's events tell now (EventsSnapshot). Its cost
// is that of the open alerts and of the party's recent and open hotline
// items (at most hotline.MaxListLimit and Config.SnapshotOpenMessages, read
// by the party's own index), not of the history nor of the other parties'
// items; the operator's, of every party's open items, as many at most.
func (s *Service) Snapshot(ctx context.Context, p party.Principal) (EventsSnapshot, error) {
	var out EventsSnapshot
	out.Alerts, out.alertsAfter = s.story.snapshot(p.Party, p.Operator)
	now := s.now()
	err := s.st.View(ctx, func(tx store.Tx) error {
		// One read transaction: the messages are those of the events up
		// to this id, and of none after it.
		last, err := tx.LastEventID()
		if err != nil {
			return err
		}
		if p.Operator {
			// The operator has no hotline of its own, but it watches
			// the escalations of every party's items: those open or
			// escalated (before the snapshot, its stream replayed
			// their events from the start).
			open, truncated, err := hotline.ListOpen(tx, "", s.snapshotOpenMessages(), s.passOverMessage)
			if err != nil {
				return err
			}
			out.Messages = mergeMessages(open, nil)
			out.messagesAfter, out.MessagesTruncated = last, truncated
			// The operator is sent every event, under the global
			// ids: a stream resumed after the alerts' part continues
			// exactly as the one after the snapshot when no event lies
			// between the two parts.
			out.AlertsAfter, out.MessagesAfter = out.alertsAfter, out.messagesAfter
			out.ResumeAfter, out.Resumable = out.alertsAfter, out.alertsAfter >= out.messagesAfter
			return nil
		}
		recent, err := hotline.ListNewest(tx, p.Party, now.Add(-SnapshotMessagesWindow), hotline.MaxListLimit, s.passOverMessage)
		if err != nil {
			return err
		}
		open, truncated, err := hotline.ListOpen(tx, p.Party, s.snapshotOpenMessages(), s.passOverMessage)
		if err != nil {
			return err
		}
		out.messagesAfter, out.MessagesTruncated = last, truncated
		out.Messages = mergeMessages(recent, open)
		// Read in this transaction, which sees every event up to both
		// parts' ids (the alerts' were delivered, so committed, before).
		resume, err := store.LastEventIDFor(tx, p.Party, max(out.alertsAfter, out.messagesAfter))
		if err != nil {
			return err
		}
		out.Resumable = resume <= out.After()
		shown, err := s.shownIDsAt(tx, p, out.alertsAfter, out.messagesAfter, resume)
		if err != nil {
			return err
		}
		out.AlertsAfter, out.MessagesAfter, out.ResumeAfter = shown[0], shown[1], shown[2]
		return nil
	})
	if err != nil {
		return EventsSnapshot{}, err
	}
	if out.MessagesTruncated {
		out.carried = make(map[string]bool, len(out.Messages))
		for _, m := range out.Messages {
			out.carried[m.ID] = true
		}
	}
	return out, nil
}

func (s *Service) snapshotOpenMessages() int {
	if s.cfg.SnapshotOpenMessages > 0 {
		return s.cfg.SnapshotOpenMessages
	}
	return DefaultSnapshotOpenMessages
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
