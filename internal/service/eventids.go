package service

import (
	"context"
	"errors"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
)

// The ids of the event stream as each principal is shown them.
//
// The store numbers every event in one global sequence: the gaps between
// the global ids of a party's own events would tell it how many events the
// other parties get (their alerts, messages, volume conflicts), which need
// to know does not let it learn. So a party is shown its own numbering
// (store.PartySeqReader): its events numbered 1, 2, 3... in id order, as
// the id of each event (the SSE id: line and the data's id), as the cursor
// it resumes from (Last-Event-ID, ?after=) and in its snapshot
// (alerts_after, messages_after, the snapshot's id: line). The operator,
// which is sent every event, is shown the global ids: its sequence has no
// gaps either, and there is nobody it must not learn of.
//
// A store that had events when it began numbering each party's (its
// migration) keeps a base (store.PartySeqBase, store.UpgradedSeqBase,
// 2^40): a party's event numbered n is shown as base + n, above every
// global id a client may hold. A cursor at or below the base is such a
// global id (a console or a client that stayed connected over the upgrade)
// and resumes after that global id, losing nothing; one above it is a
// number of the party's own. Only a global id up to the last of the store
// at the upgrade (store.LegacyCursorMax) is taken: the events after it
// were never a party's by global id but on a replica of the older version
// still streaming after the upgrade (it writes nothing more), whose
// clients are refused as of another history and start again from a
// snapshot. Answering such a cursor, refused when the party has no event
// at or after it, would let a party find its own events' places in the
// global order, and so, again, how many events the others get. The base
// is a constant, so it tells nothing of how many events the store held.
// On a store created since, the base is 0.

// shownID is the id a party is shown for its event numbered seq (0: none).
func (s *Service) shownID(seq int64) int64 {
	if seq == 0 {
		return 0
	}
	return s.eventIDBase + seq
}

// EventIDBase is the base of the ids a party is shown (above).
func (s *Service) EventIDBase() int64 { return s.eventIDBase }

// ErrCursorBeyond is returned by ResumeAfter for a cursor beyond the last
// event of the principal: one of another history (a store restored from an
// older copy, another server).
var ErrCursorBeyond = errors.New("service: the cursor is beyond the last event of the party")

// ResumeAfter returns the global id after which a stream of p resumed from
// shown, an id p was shown, goes on: the id itself for the operator and
// for an id from before the store numbered each party's events (at most
// the base), else that of p's event numbered shown - base. ErrCursorBeyond
// when p has no such event (for an id from before, no event at or after
// it), and for an id below the base beyond the last of before: the test
// is of p's own events, and of ids p could have been shown, so that a
// refusal tells nothing of the others'.
func (s *Service) ResumeAfter(ctx context.Context, p party.Principal, shown int64) (int64, error) {
	if shown <= 0 {
		return 0, nil
	}
	if !p.Operator && shown <= s.eventIDBase && shown > s.legacyCursorMax {
		// Below the base, and yet no id of before.
		return 0, ErrCursorBeyond
	}
	var global int64
	err := s.st.View(ctx, func(tx store.Tx) error {
		if p.Operator || shown <= s.eventIDBase {
			// Counted from the index: whether one is there, not its
			// body.
			var n int
			var err error
			if p.Operator {
				var last int64
				last, err = tx.LastEventID()
				n = int(min(max(last-shown+1, 0), 1))
			} else {
				n, err = store.CountEventsAfterFor(tx, p.Party, shown-1, 1)
			}
			if err == nil && n == 0 {
				err = ErrCursorBeyond
			}
			global = shown
			return err
		}
		var err error
		global, err = store.PartyEventAt(tx, p.Party, shown-s.eventIDBase)
		if errors.Is(err, store.ErrNotFound) {
			err = ErrCursorBeyond
		}
		return err
	})
	return global, err
}

// StreamIDs gives the events of one stream of a principal, in id order
// from a point on, the ids the principal is shown. Every event of the
// principal after that point must be passed to Next, in order, those the
// stream does not send (held by its snapshot) too: a party's ids count its
// events, so one left out would shift the rest.
type StreamIDs struct {
	operator bool
	base     int64
	// seq is the party's number of the last event passed (or of its last
	// event at the point the stream started from).
	seq int64
}

// StreamIDs returns the ids of p's events after the global id after.
func (s *Service) StreamIDs(ctx context.Context, p party.Principal, after int64) (*StreamIDs, error) {
	ids := &StreamIDs{operator: p.Operator, base: s.eventIDBase}
	if p.Operator || after <= 0 {
		return ids, nil
	}
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		ids.seq, err = store.PartySeqAt(tx, p.Party, after)
		return err
	})
	return ids, err
}

// Next returns the id shown for e, the principal's next event.
func (ids *StreamIDs) Next(e store.Event) int64 {
	if ids.operator {
		return e.ID
	}
	ids.seq++
	return ids.base + ids.seq
}

// shownIDsAt returns the ids p is shown for its last event at or before
// each of the global ids at, in tx.
func (s *Service) shownIDsAt(tx store.Events, p party.Principal, at ...int64) ([]int64, error) {
	out := make([]int64, len(at))
	for i, id := range at {
		if p.Operator {
			out[i] = id
			continue
		}
		seq, err := store.PartySeqAt(tx, p.Party, id)
		if err != nil {
			return nil, err
		}
		out[i] = s.shownID(seq)
	}
	return out, nil
}
