package sqlcore

// This file implements the store.Alerts role: the alerts open in the event
// stream and those cleared lately, kept with the events (open_alerts,
// cleared_alerts), and the migration's fill of them from the events.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

func (t *Tx) PutOpenAlert(a store.StoredAlert) error {
	if err := t.writable("PutOpenAlert"); err != nil {
		return err
	}
	if err := checkText("alert.ID", a.ID); err != nil {
		return err
	}
	ts, err := encTime("alert.Time", a.Time)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO open_alerts (id, event_id, time_ns, body) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, time_ns = excluded.time_ns, body = excluded.body`,
		a.ID, a.EventID, ts, nz(a.Body))
	if err != nil {
		return fmt.Errorf("store: put open alert %q: %w", a.ID, err)
	}
	return nil
}

func (t *Tx) ClearAlert(a store.StoredAlert) error {
	if err := t.writable("ClearAlert"); err != nil {
		return err
	}
	if err := checkText("alert.ID", a.ID); err != nil {
		return err
	}
	ts, err := encTime("alert.Time", a.Time)
	if err != nil {
		return err
	}
	if _, err := t.q.Exec(t.ctx, `DELETE FROM open_alerts WHERE id = ?`, a.ID); err != nil {
		return fmt.Errorf("store: clear alert %q: %w", a.ID, err)
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO cleared_alerts (id, event_id, time_ns) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, time_ns = excluded.time_ns`,
		a.ID, a.EventID, ts)
	if err != nil {
		return fmt.Errorf("store: clear alert %q: %w", a.ID, err)
	}
	return nil
}

func (t *Tx) OpenAlerts() ([]store.StoredAlert, error) {
	var out []store.StoredAlert
	err := t.queryAll(`SELECT id, event_id, time_ns, body FROM open_alerts ORDER BY id`, nil, func(r Rows) error {
		var a store.StoredAlert
		var ts int64
		if err := r.Scan(&a.ID, &a.EventID, &ts, &a.Body); err != nil {
			return err
		}
		a.Time = decTime(ts)
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
	err := t.queryAll(`SELECT id, event_id, time_ns FROM cleared_alerts ORDER BY id`, nil, func(r Rows) error {
		var a store.StoredAlert
		var ts int64
		if err := r.Scan(&a.ID, &a.EventID, &ts); err != nil {
			return err
		}
		a.Time = decTime(ts)
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

// encTimeOrZero encodes a time read back from the store (always in range).
func encTimeOrZero(t time.Time) int64 {
	ns, err := encTime("", t)
	if err != nil {
		return zeroTimeNs
	}
	return ns
}
