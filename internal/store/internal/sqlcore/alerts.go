package sqlcore

// This file implements the store.Alerts role: the alerts open in the event
// stream and those cleared lately, kept with the events (open_alerts,
// cleared_alerts), and the migration's fill of them from the events.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

func (t *Tx) PutOpenAlert(a store.StoredAlert) error {
	if err := t.writable("PutOpenAlert"); err != nil {
		return err
	}
	if err := checkText("alert.ID", a.ID, "alert.Pair", a.Pair); err != nil {
		return err
	}
	ts, err := encTime("alert.Time", a.Time)
	if err != nil {
		return err
	}
	raised, err := encTime("alert.RaisedAt", a.RaisedAt)
	if err != nil {
		return err
	}
	// The raise's time stays while the alert is open: an update does not
	// know it.
	_, err = t.q.Exec(t.ctx, `INSERT INTO open_alerts (id, event_id, time_ns, body, pair, raised_ns) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, time_ns = excluded.time_ns, body = excluded.body, pair = excluded.pair`,
		a.ID, a.EventID, ts, nz(a.Body), a.Pair, raised)
	if err != nil {
		return fmt.Errorf("store: put open alert %q: %w", a.ID, err)
	}
	return nil
}

func (t *Tx) ClearAlert(a store.StoredAlert) error {
	if err := t.writable("ClearAlert"); err != nil {
		return err
	}
	if err := checkText("alert.ID", a.ID, "alert.Pair", a.Pair); err != nil {
		return err
	}
	ts, err := encTime("alert.Time", a.Time)
	if err != nil {
		return err
	}
	raised, err := encTime("alert.RaisedAt", a.RaisedAt)
	if err != nil {
		return err
	}
	cleared, err := encTime("alert.ClearedAt", a.ClearedAt)
	if err != nil {
		return err
	}
	// The raise's time as it was open, before the open alert goes.
	_, err = t.q.Exec(t.ctx, `INSERT INTO cleared_alerts (id, event_id, time_ns, pair, raised_ns, cleared_ns)
		VALUES (?, ?, ?, ?, COALESCE((SELECT raised_ns FROM open_alerts WHERE id = ?), ?), ?)
		ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, time_ns = excluded.time_ns,
			pair = excluded.pair, raised_ns = excluded.raised_ns, cleared_ns = excluded.cleared_ns`,
		a.ID, a.EventID, ts, a.Pair, a.ID, raised, cleared)
	if err != nil {
		return fmt.Errorf("store: clear alert %q: %w", a.ID, err)
	}
	if _, err := t.q.Exec(t.ctx, `DELETE FROM open_alerts WHERE id = ?`, a.ID); err != nil {
		return fmt.Errorf("store: clear alert %q: %w", a.ID, err)
	}
	return nil
}

func (t *Tx) OpenAlerts() ([]store.StoredAlert, error) {
	var out []store.StoredAlert
	err := t.queryAll(`SELECT id, event_id, time_ns, body, pair, raised_ns FROM open_alerts ORDER BY id`, nil, func(r Rows) error {
		var a store.StoredAlert
		var ts, raised int64
		if err := r.Scan(&a.ID, &a.EventID, &ts, &a.Body, &a.Pair, &raised); err != nil {
			return err
		}
		a.Time, a.RaisedAt = decTime(ts), decTime(raised)
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: open alerts: %w", err)
	}
	return out, nil
}

func (t *Tx) ClearedAlerts() ([]store.StoredAlert, error) {
	var out []store.StoredAlert
	err := t.queryAll(`SELECT id, event_id, time_ns, pair, raised_ns, cleared_ns FROM cleared_alerts ORDER BY id`, nil, func(r Rows) error {
		var a store.StoredAlert
		var ts, raised, cleared int64
		if err := r.Scan(&a.ID, &a.EventID, &ts, &a.Pair, &raised, &cleared); err != nil {
			return err
		}
		a.Time, a.RaisedAt, a.ClearedAt = decTime(ts), decTime(raised), decTime(cleared)
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: cleared alerts: %w", err)
	}
	return out, nil
}

func (t *Tx) ForgetClearedAlerts(before time.Time) (int64, error) {
	if err := t.writable("ForgetClearedAlerts"); err != nil {
		return 0, err
	}
	ts, err := encTime("before", before)
	if err != nil {
		return 0, err
	}
	n, err := t.q.Exec(t.ctx, `DELETE FROM cleared_alerts WHERE time_ns < ?`, ts)
	if err != nil {
		return 0, fmt.Errorf("store: forget cleared alerts: %w", err)
	}
	return n, nil
}

// The kinds of the events that open, change and end an alert, as the
// service writes them (the migration's fill reads them).
const (
	alertRaisedKind  = "alert_raised"
	alertUpdatedKind = "alert_updated"
	alertClearedKind = "alert_cleared"
)

// BackfillClearedKept is how far back from the last alert event of an
// existing store its fill (backfillAlerts) keeps the clears: a day, well
// over what a reader asks of them (the service's takeover, an hour).
const BackfillClearedKept = 24 * time.Hour

// backfillAlerts fills open_alerts and cleared_alerts, once, from the
// alert events of a store written before they existed: the fold of the
// events in id order that the writer of later ones keeps up (PutOpenAlert
// for a raise or an update, ClearAlert for a clear), the clears older
// than BackfillClearedKept before the last alert event left out. It reads
// the events a page at a time, keeping only the alerts in memory.
func backfillAlerts(ctx context.Context, q Querier) error {
	open := map[string]store.StoredAlert{}
	cleared := map[string]store.StoredAlert{}
	var last time.Time
	forget := func() {
		before := last.Add(-BackfillClearedKept)
		for id, c := range cleared {
			if c.Time.Before(before) {
				delete(cleared, id)
			}
		}
	}
	for after := int64(0); ; {
		var page []store.StoredAlert
		var kinds []string
		rows, err := q.Query(ctx, `SELECT id, time_ns, kind, body FROM events WHERE id > ? AND kind IN (?, ?, ?) ORDER BY id LIMIT 1000`,
			after, alertRaisedKind, alertUpdatedKind, alertClearedKind)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e store.StoredAlert
			var ts int64
			var kind string
			if err := rows.Scan(&e.EventID, &ts, &kind, &e.Body); err != nil {
				rows.Close()
				return err
			}
			e.Time = decTime(ts)
			page, kinds = append(page, e), append(kinds, kind)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for i, e := range page {
			after = e.EventID
			var id struct{ ID string }
			if json.Unmarshal(e.Body, &id) != nil || id.ID == "" || !validText(id.ID) {
				continue // not an alert's: a scan skips it too
			}
			e.ID = id.ID
			last = e.Time
			if kinds[i] == alertClearedKind {
				delete(open, e.ID)
				e.Body = nil
				cleared[e.ID] = e
				continue
			}
			open[e.ID] = e
		}
		forget()
	}
	for _, a := range open {
		if _, err := q.Exec(ctx, `INSERT INTO open_alerts (id, event_id, time_ns, body) VALUES (?, ?, ?, ?)`,
			a.ID, a.EventID, encTimeOrZero(a.Time), nz(a.Body)); err != nil {
			return fmt.Errorf("open alert %q: %w", a.ID, err)
		}
	}
	for _, c := range cleared {
		if _, err := q.Exec(ctx, `INSERT INTO cleared_alerts (id, event_id, time_ns) VALUES (?, ?, ?)`,
			c.ID, c.EventID, encTimeOrZero(c.Time)); err != nil {
			return fmt.Errorf("cleared alert %q: %w", c.ID, err)
		}
	}
	return nil
}

// alertBody is what the fill of the alerts' spans reads of an alert
// event's body.
type alertBody struct {
	ID       string
	Kind     string
	Time     time.Time
	Aircraft []store.AlertAircraft
}

// spanRow is an alert kept (in open_alerts or in cleared_alerts), as
// backfillAlertSpans fills it.
type spanRow struct {
	id                string
	cleared           bool
	eventID           int64 // its last event's
	pair              string
	raised, clearedAt time.Time
}

// backfillAlertSpans fills the pair and the times of the alerts kept
// (open_alerts, cleared_alerts) of a store written before they had them,
// from their events: the pair from the last event (kept as the body of an
// open alert; for a cleared one, the clear event, read by its id, a page
// at a time), the time of the clear from the clear event, and the time of
// the raise from the last raise of its id up to its last event, read from
// the raises of the store a page at a time (once, as the fill of the
// alerts read every alert event). An alert whose raise is not found (the
// events begin after it) keeps the time of its raise unknown (zero).
func backfillAlertSpans(ctx context.Context, q Querier) error {
	var open, cleared []*spanRow
	byID := map[string][]*spanRow{}
	var lastEventID int64
	read := func(query string, scan func(r Rows) error, args ...any) error {
		rs, err := q.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			if err := scan(rs); err != nil {
				return err
			}
		}
		return rs.Err()
	}
	err := read(`SELECT id, event_id, body FROM open_alerts`, func(r Rows) error {
		row := &spanRow{}
		var body []byte
		if err := r.Scan(&row.id, &row.eventID, &body); err != nil {
			return err
		}
		var a alertBody
		_ = json.Unmarshal(body, &a) // a body not an alert's is about nothing
		row.pair = store.AlertPair(a.Kind, a.Aircraft)
		open = append(open, row)
		return nil
	})
	if err != nil {
		return err
	}
	err = read(`SELECT id, event_id FROM cleared_alerts ORDER BY event_id`, func(r Rows) error {
		row := &spanRow{cleared: true}
		if err := r.Scan(&row.id, &row.eventID); err != nil {
			return err
		}
		cleared = append(cleared, row)
		return nil
	})
	if err != nil {
		return err
	}
	for _, rows := range [][]*spanRow{open, cleared} {
		for _, row := range rows {
			byID[row.id] = append(byID[row.id], row)
			lastEventID = max(lastEventID, row.eventID)
		}
	}
	// The clear events, by id, a page at a time.
	const page = 500
	for lo := 0; lo < len(cleared); lo += page {
		rows := cleared[lo:min(lo+page, len(cleared))]
		byEvent := make(map[int64]*spanRow, len(rows))
		args := make([]any, len(rows))
		for i, row := range rows {
			byEvent[row.eventID] = row
			args[i] = row.eventID
		}
		err := read(`SELECT id, body FROM events WHERE id IN (?`+strings.Repeat(", ?", len(rows)-1)+`)`, func(r Rows) error {
			var eventID int64
			var body []byte
			if err := r.Scan(&eventID, &body); err != nil {
				return err
			}
			var a alertBody
			_ = json.Unmarshal(body, &a)
			if row := byEvent[eventID]; row != nil {
				row.pair, row.clearedAt = store.AlertPair(a.Kind, a.Aircraft), a.Time
			}
			return nil
		}, args...)
		if err != nil {
			return err
		}
	}
	// The raises, up to the last event of an alert kept, a page at a
	// time.
	for after := int64(0); after < lastEventID; {
		n := 0
		err := read(`SELECT id, body FROM events WHERE id > ? AND id <= ? AND kind = ? ORDER BY id LIMIT 1000`, func(r Rows) error {
			var body []byte
			if err := r.Scan(&after, &body); err != nil {
				return err
			}
			n++
			var a alertBody
			if json.Unmarshal(body, &a) != nil {
				return nil
			}
			for _, row := range byID[a.ID] {
				if after <= row.eventID {
					row.raised = a.Time // the last raise before its last event
				}
			}
			return nil
		}, after, lastEventID, alertRaisedKind)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	for _, row := range open {
		if _, err := q.Exec(ctx, `UPDATE open_alerts SET pair = ?, raised_ns = ? WHERE id = ?`,
			row.pair, encTimeOrZero(row.raised), row.id); err != nil {
			return fmt.Errorf("open alert %q: %w", row.id, err)
		}
	}
	for _, row := range cleared {
		if _, err := q.Exec(ctx, `UPDATE cleared_alerts SET pair = ?, raised_ns = ?, cleared_ns = ? WHERE id = ?`,
			row.pair, encTimeOrZero(row.raised), encTimeOrZero(row.clearedAt), row.id); err != nil {
			return fmt.Errorf("cleared alert %q: %w", row.id, err)
		}
	}
	return nil
}

// encTimeOrZero encodes a time read back from the store (always in range).
func encTimeOrZero(t time.Time) int64 {
	ns, err := encTime("", t)
	if err != nil {
		return zeroTimeNs
	}
	return ns
}
