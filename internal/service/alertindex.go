package service

import (
	"context"
	"errors"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/track"
)

// The store keeps the alerts open and those cleared lately with their
// events (store.Alerts): persistTransitions records each transition in
// the transaction of its events, so that a start (New) and a takeover
// (ReconcileDetection, the server's replicas) read them at a cost that
// does not grow with the history, where they read every event of the
// store before (about 6 s a million on SQLite, and a restart waited that
// long before detection was back).

// clearedRecordKept is how long the store keeps a clear before the latest
// one: what readStoredAlerts returns (the SpentIDsKept before the last
// alert event), and as much again for transition times that do not grow
// with the event ids (the times of reports, a clock set back).
const clearedRecordKept = 2 * SpentIDsKept

// recordAlert records in the store's alerts transition a, whose events
// (of kind) ended with last: open with it after a raise or an update,
// cleared after a clear, the clears older than clearedRecordKept before it
// forgotten; with its pair and its times (the raise's, which the store
// keeps while it is open; the clear's), which are not its events' when it
// is recorded late.
func recordAlert(tx store.Alerts, a *alert.Transition, kind string, last store.Event) error {
	sa := store.StoredAlert{ID: a.ID, EventID: last.ID, Time: last.Time, Body: last.Body, Pair: pairOf(a)}
	if kind == alertEventKind(alert.StateRaised) {
		sa.RaisedAt = a.Time
	}
	// After an update or a clear the raise's time is the store's,
	// unknown (zero) for an alert it does not have open.
	if kind != alertEventKind(alert.StateCleared) {
		return tx.PutOpenAlert(sa)
	}
	sa.Body, sa.ClearedAt = nil, a.Time
	if err := tx.ClearAlert(sa); err != nil {
		return err
	}
	_, err := tx.ForgetClearedAlerts(sa.Time.Add(-clearedRecordKept))
	return err
}

// ReadStoredAlerts returns the alerts open in st and those it cleared in
// the SpentIDsKept before its last alert event.
func ReadStoredAlerts(ctx context.Context, st store.Store) (StoredAlerts, error) {
	stored, _, err := readStoredAlerts(ctx, st, false)
	return stored, err
}

// readStoredAlerts returns the alerts open in st and those it cleared in
// the SpentIDsKept before its last alert event, and the last event id of
// st they are as of: what a scan of every event up to it finds (the last
// transition of each alert open; the clears at or after the time of the
// last alert event, less SpentIDsKept) and their spans, read in one
// transaction from the store's alerts, with the history of the rules in
// force.
//
// withParts also reads, for each open alert, the events of its last
// transition (StoredAlerts.parts, what each party was last sent of it:
// with a resolution a transition is one event per party, and the store
// keeps the last one only).
func readStoredAlerts(ctx context.Context, st store.Store, withParts bool) (_ StoredAlerts, after int64, _ error) {
	var open, cleared []store.StoredAlert
	var history []store.RulesRecord
	var parts map[string]map[string]alertPart
	var reportTimes map[track.Key]time.Time
	var reportTimesUnreadable error
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		if open, err = tx.OpenAlerts(); err != nil {
			return err
		}
		reportTimes, err = readReportTimes(tx)
		if errors.Is(err, errReportTimesUnreadable) {
			reportTimesUnreadable, err = err, nil
		}
		if err != nil {
			return err
		}
		if cleared, err = tx.ClearedAlerts(); err != nil {
			return err
		}
		if withParts {
			if parts, err = lastTransitionParts(tx, open); err != nil {
				return err
			}
		}
		if history, err = tx.RulesHistory(); err != nil {
			return err
		}
		after, err = tx.LastEventID()
		return err
	})
	if err != nil {
		return StoredAlerts{}, 0, err
	}
	out := StoredAlerts{Open: make(map[string][]byte, len(open)), Cleared: map[string]bool{}, parts: parts,
		Spans: make(map[string]AlertSpan, len(open)+len(cleared)), RulesHistory: history, ReportTimes: reportTimes,
		reportTimesUnreadable: reportTimesUnreadable}
	// The last alert event: the latest of an alert open or cleared (the
	// store keeps it: a clear is forgotten only after a later one).
	var lastID int64
	var last time.Time
	for _, as := range [][]store.StoredAlert{open, cleared} {
		for _, a := range as {
			if a.EventID > lastID {
				lastID, last = a.EventID, a.Time
			}
		}
	}
	forgetBefore := last.Add(-SpentIDsKept)
	for _, a := range cleared {
		if !a.Time.Before(forgetBefore) {
			out.Cleared[a.ID] = true
			out.Spans[a.ID] = AlertSpan{Pair: a.Pair, From: a.RaisedAt, To: a.ClearedAt}
		}
	}
	// An alert raised again after its clear is open.
	for _, a := range open {
		out.Open[a.ID] = a.Body
		out.Spans[a.ID] = AlertSpan{Pair: a.Pair, From: a.RaisedAt}
	}
	return out, after, nil
}

// transitionEventsMax bounds the events one transition of an alert
// appends: one per party of its pair, or one for everyone
// (appendAlertEvents).
const transitionEventsMax = 2

// lastTransitionParts reads, for each open alert, the events its last
// transition appended, which end at the event the store keeps of it and
// precede it without a gap (one transaction appends them in a row), and
// returns what each party was last sent of it (putPart over them in id
// order; the window may begin with an earlier transition's event of the
// alert, which the later ones override, or another alert's, left out).
func lastTransitionParts(tx store.Events, open []store.StoredAlert) (map[string]map[string]alertPart, error) {
	parts := make(map[string]map[string]alertPart, len(open))
	for _, a := range open {
		from := max(0, a.EventID-transitionEventsMax)
		evs, err := tx.EventsAfter(from, int(a.EventID-from))
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if e.Kind == alertEventKind(alert.StateCleared) || e.ID > a.EventID {
				continue
			}
			if id, ok := alertIDOf(e.Body); ok && id == a.ID {
				parts[a.ID] = putPart(parts[a.ID], e)
			}
		}
	}
	return parts, nil
}
