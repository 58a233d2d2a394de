package sqlcore

// This file implements the store.Events role (and store.PartyEventReader):
// the event stream and its audience index.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/deconflict/deconflict/internal/store"
)

// audienceKeys is what the audience index holds: "*" alone when the event
// concerns everyone, so a party's query never returns an event twice.
func audienceKeys(aud []string) []string {
	if slices.Contains(aud, "*") {
		return []string{"*"}
	}
	keys := append([]string{}, aud...)
	slices.Sort(keys)
	return slices.Compact(keys)
}

func insertAudience(ctx context.Context, q Querier, id int64, aud []string) error {
	keys := audienceKeys(aud)
	if len(keys) == 0 {
		return nil
	}
	// One statement for all parties: on PostgreSQL each statement is a
	// round trip.
	var b strings.Builder
	b.WriteString(`INSERT INTO event_audience (party, event_id) VALUES `)
	args := make([]any, 0, 2*len(keys))
	for i, p := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
		args = append(args, p, id)
	}
	if _, err := q.Exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("store: event %d audience: %w", id, err)
	}
	return nil
}

func (t *Tx) AppendEvent(e store.Event) (int64, error) {
	if err := t.writable("AppendEvent"); err != nil {
		return 0, err
	}
	if err := checkText("event.Kind", e.Kind); err != nil {
		return 0, err
	}
	if err := checkList("event.Audience", e.Audience); err != nil {
		return 0, err
	}
	ts, err := encTime("event.Time", e.Time)
	if err != nil {
		return 0, err
	}
	if t.d.AppendEventSQL != "" {
		var id int64
		err := t.queryOne(t.d.AppendEventSQL, []any{ts, e.Kind, encList(e.Audience), nz(e.Body), audienceKeys(e.Audience)}, &id)
		if err != nil {
			return 0, fmt.Errorf("store: append event: %w", err)
		}
		return id, nil
	}
	id, err := t.bump("event")
	if err != nil {
		return 0, err
	}
	if _, err := t.q.Exec(t.ctx, `INSERT INTO events (id, time_ns, kind, audience, body) VALUES (?, ?, ?, ?, ?)`,
		id, ts, e.Kind, encList(e.Audience), nz(e.Body)); err != nil {
		return 0, fmt.Errorf("store: append event: %w", err)
	}
	if err := t.insertNumberedAudience(id, e.Audience); err != nil {
		return 0, err
	}
	return id, nil
}

// The numbers of each party's events (store.PartySeqReader) are kept in
// the audience index, with each entry (migration 13):
//
//   - seq: for an entry of "*", how many events to everyone there are up
//     to this one (its number in everyone's sequence); for an entry of a
//     party, the event's number in that party's sequence: the party's own
//     events up to this one plus the events to everyone before it.
//   - everyone: how many events to everyone there are up to this one (for
//     "*", seq itself), so that seq - everyone is how many of the party's
//     own events there are up to this one.
//
// An event is indexed under "*" alone or under its parties
// (audienceKeys), so a party's number of an event to everyone is the
// party's own events before it plus the event's seq under "*". The
// numbers are read from the entries before the new one, in the writer's
// transaction (writers take turns): a transaction rolled back leaves no
// gap.
const (
	// lastEveryoneSQL: how many events to everyone there are (argument:
	// none), 0 when none.
	lastEveryoneSQL = `SELECT seq FROM event_audience WHERE party = '*' ORDER BY event_id DESC LIMIT 1`
	// lastOwnSQL: how many events of a party's own there are (argument:
	// the party).
	lastOwnSQL = `SELECT seq - everyone FROM event_audience WHERE party = ? ORDER BY event_id DESC LIMIT 1`
)

// insertNumberedAudience indexes the audience of event id with the
// numbers of each of its keys.
func (t *Tx) insertNumberedAudience(id int64, aud []string) error {
	keys := audienceKeys(aud)
	if len(keys) == 0 {
		return nil
	}
	everyone, err := t.counted(lastEveryoneSQL)
	if err != nil {
		return fmt.Errorf("store: event %d audience: %w", id, err)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO event_audience (party, event_id, seq, everyone) VALUES `)
	args := make([]any, 0, 4*len(keys))
	for i, p := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
		if p == "*" {
			args = append(args, p, id, everyone+1, everyone+1)
			continue
		}
		own, err := t.counted(lastOwnSQL, p)
		if err != nil {
			return fmt.Errorf("store: event %d audience: %w", id, err)
		}
		args = append(args, p, id, own+1+everyone, everyone)
	}
	if _, err := t.q.Exec(t.ctx, b.String(), args...); err != nil {
		return fmt.Errorf("store: event %d audience: %w", id, err)
	}
	return nil
}

// counted runs a query of one number, 0 when it finds no row.
func (t *Tx) counted(query string, args ...any) (int64, error) {
	var n int64
	if err := t.queryOne(query, args, &n); err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	return n, nil
}

// PartySeqAt adds the party's own events up to id and the events to
// everyone up to id, each one lookup of the primary key (party,
// event_id) backwards.
func (t *Tx) PartySeqAt(party string, id int64) (int64, error) {
	if !validText(party) {
		return 0, nil
	}
	everyone, err := t.counted(`SELECT seq FROM event_audience WHERE party = '*' AND event_id <= ? ORDER BY event_id DESC LIMIT 1`, id)
	if err != nil {
		return 0, fmt.Errorf("store: number of %q's event at %d: %w", party, id, err)
	}
	if party == "*" {
		return everyone, nil
	}
	own, err := t.counted(`SELECT seq - everyone FROM event_audience WHERE party = ? AND event_id <= ? ORDER BY event_id DESC LIMIT 1`, party, id)
	if err != nil {
		return 0, fmt.Errorf("store: number of %q's event at %d: %w", party, id, err)
	}
	return own + everyone, nil
}

// PartyEventAt finds the party's own entry numbered seq, or else the last
// one before it, after which the party's events up to seq are all events
// to everyone: the one numbered seq is the event to everyone whose number
// there is seq less the party's own events up to that entry. Two lookups
// of the index (party, seq).
func (t *Tx) PartyEventAt(party string, seq int64) (int64, error) {
	if seq < 1 || !validText(party) {
		return 0, store.ErrNotFound
	}
	var own int64
	if party != "*" {
		var id, at, everyone int64
		err := t.queryOne(`SELECT event_id, seq, everyone FROM event_audience WHERE party = ? AND seq <= ? ORDER BY seq DESC LIMIT 1`,
			[]any{party, seq}, &id, &at, &everyone)
		switch {
		case err == nil && at == seq:
			return id, nil
		case err == nil:
			own = at - everyone
		case !errors.Is(err, store.ErrNotFound):
			return 0, fmt.Errorf("store: %q's event numbered %d: %w", party, seq, err)
		}
	}
	var id int64
	err := t.queryOne(`SELECT event_id FROM event_audience WHERE party = '*' AND seq = ?`, []any{seq - own}, &id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("store: %q's event numbered %d: %w", party, seq, err)
	}
	return id, err
}

// PartySeqBase is kept in the counters by the migration that brought the
// numbers in.
func (t *Tx) PartySeqBase() (int64, error) {
	var v int64
	if err := t.queryOne(`SELECT value FROM counters WHERE name = 'event_seq_base'`, nil, &v); err != nil {
		return 0, fmt.Errorf("store: the base of the ids shown: %w", err)
	}
	return v, nil
}

// LegacyCursorMax is kept in the counters by the migration that brought
// the numbers in.
func (t *Tx) LegacyCursorMax() (int64, error) {
	var v int64
	if err := t.queryOne(`SELECT value FROM counters WHERE name = 'event_seq_legacy_last'`, nil, &v); err != nil {
		return 0, fmt.Errorf("store: the last event id before each party's numbers: %w", err)
	}
	return v, nil
}

func scanEvent(r Rows) (store.Event, error) {
	var e store.Event
	var ts int64
	var aud string
	if err := r.Scan(&e.ID, &ts, &e.Kind, &aud, &e.Body); err != nil {
		return e, err
	}
	e.Time = decTime(ts)
	var err error
	e.Audience, err = decList("event audience", aud)
	return e, err
}

func (t *Tx) EventsAfter(afterID int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	out := make([]store.Event, 0, min(limit, 1024))
	err := t.queryAll(`SELECT id, time_ns, kind, audience, body FROM events WHERE id > ? ORDER BY id LIMIT ?`,
		[]any{afterID, int64(limit)}, func(r Rows) error {
			e, err := scanEvent(r)
			out = append(out, e)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("store: events after %d: %w", afterID, err)
	}
	return out, nil
}

// EventsAfterForSQL reads the events of a party after an id (arguments:
// the party, the id and the limit, then the id and the limit again, then
// the limit). A filter on both audience keys at once (party IN (?, '*'))
// is no range of the index in event order: SQLite read every event of
// the party's backlog, body and all, and sorted them for each page (40
// ms a page behind 100,000 events). Each key's range is read in order
// here, at most limit of each, and only the first limit of both are read
// from events.
const EventsAfterForSQL = `SELECT e.id, e.time_ns, e.kind, e.audience, e.body FROM (
	SELECT event_id FROM (
		SELECT event_id FROM (SELECT event_id FROM event_audience WHERE party = ? AND event_id > ? ORDER BY event_id LIMIT ?) AS own
		UNION ALL
		SELECT event_id FROM (SELECT event_id FROM event_audience WHERE party = '*' AND event_id > ? ORDER BY event_id LIMIT ?) AS everyone
	) AS candidates ORDER BY event_id LIMIT ?) AS ids
	JOIN events e ON e.id = ids.event_id ORDER BY e.id`

// eventsAfterForEveryoneSQL is EventsAfterForSQL for "*" itself, whose
// own range is everyone's (arguments: the id and the limit).
const eventsAfterForEveryoneSQL = `SELECT e.id, e.time_ns, e.kind, e.audience, e.body
	FROM event_audience a JOIN events e ON e.id = a.event_id
	WHERE a.party = '*' AND a.event_id > ? ORDER BY a.event_id LIMIT ?`

func (t *Tx) EventsAfterFor(party string, afterID int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	if !validText(party) {
		return nil, nil
	}
	q, args := EventsAfterForSQL, []any{party, afterID, int64(limit), afterID, int64(limit), int64(limit)}
	if party == "*" {
		q, args = eventsAfterForEveryoneSQL, []any{afterID, int64(limit)}
	}
	out := make([]store.Event, 0, min(limit, 1024))
	err := t.queryAll(q, args, func(r Rows) error {
		e, err := scanEvent(r)
		out = append(out, e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: events of %q after %d: %w", party, afterID, err)
	}
	return out, nil
}

// CountEventsAfterFor counts entries of the audience index and reads no
// event: the first limit of the party's and the first limit of "*", each
// a range of the primary key (party, event_id) in order, so that neither
// planner counts, scans or sorts the whole backlog (a COUNT over the
// whole range would go through it however long; a filter on both keys at
// once was a scan of the table on PostgreSQL). An event is indexed under
// "*" alone or under its parties (audienceKeys), so the two are apart,
// and the sum of the two counts is at least limit exactly when the
// party has limit events after afterID.
func (t *Tx) CountEventsAfterFor(party string, afterID int64, limit int) (int, error) {
	if limit <= 0 || !validText(party) {
		return 0, nil
	}
	q := `SELECT COUNT(*) FROM (
		SELECT event_id FROM (SELECT event_id FROM event_audience WHERE party = ? AND event_id > ? ORDER BY event_id LIMIT ?) AS own
		UNION ALL
		SELECT event_id FROM (SELECT event_id FROM event_audience WHERE party = '*' AND event_id > ? ORDER BY event_id LIMIT ?) AS everyone
		) AS backlog`
	args := []any{party, afterID, int64(limit), afterID, int64(limit)}
	if party == "*" {
		// Its own range is that of everyone's: counted once.
		q = `SELECT COUNT(*) FROM (SELECT event_id FROM event_audience WHERE party = '*' AND event_id > ? ORDER BY event_id LIMIT ?) AS everyone`
		args = []any{afterID, int64(limit)}
	}
	var n int64
	if err := t.queryOne(q, args, &n); err != nil {
		return 0, fmt.Errorf("store: counting the events of %q after %d: %w", party, afterID, err)
	}
	return int(min(n, int64(limit))), nil
}

func (t *Tx) LastEventIDFor(party string, atOrBefore int64) (int64, error) {
	if !validText(party) {
		return 0, nil
	}
	// One lookup of the primary key (party, event_id) for each of the
	// party and "*", rather than a MAX over both that a planner may
	// answer by scanning.
	var last int64
	for _, who := range []string{party, "*"} {
		var id int64
		if err := t.queryOne(`SELECT COALESCE(MAX(event_id), 0) FROM event_audience WHERE party = ? AND event_id <= ?`,
			[]any{who, atOrBefore}, &id); err != nil {
			return 0, fmt.Errorf("store: last event of %q at or before %d: %w", party, atOrBefore, err)
		}
		last = max(last, id)
	}
	return last, nil
}

func (t *Tx) LastEventID() (int64, error) {
	var v int64
	if err := t.queryOne(`SELECT value FROM counters WHERE name = 'event'`, nil, &v); err != nil {
		return 0, fmt.Errorf("store: last event id: %w", err)
	}
	return v, nil
}
