package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// scanStoredAlerts is what a start read before the store kept the alerts:
// every event of st, folded (the open alerts, the clears of the
// SpentIDsKept before the last alert event); readStoredAlerts must find
// the same. The clears are forgotten at the end here, where the start's
// read forgot them a page at a time, against the last alert event so far:
// the same while transition times grow with the event ids.
func scanStoredAlerts(ctx context.Context, st store.Store) (_ StoredAlerts, after int64, _ error) {
	out := StoredAlerts{Open: map[string][]byte{}, Cleared: map[string]bool{}, parts: map[string]map[string]alertPart{}, Spans: map[string]AlertSpan{}}
	clearedAt := map[string]time.Time{}
	// The span of an alert from the times of its transitions: its raise
	// starts it anew; an update of an alert not raised before leaves its
	// raise unknown; a clear ends it.
	span := func(e store.Event, raise, clear bool) {
		var a alert.Alert
		if json.Unmarshal(e.Body, &a) != nil {
			return
		}
		sp, known := out.Spans[a.ID]
		if !known || raise {
			sp = AlertSpan{Pair: pairOf(&a)}
		}
		switch {
		case raise:
			sp.From = a.Time
		case clear:
			sp.To = a.Time
		}
		out.Spans[a.ID] = sp
	}
	var last time.Time
	for {
		var evs []store.Event
		err := st.View(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.EventsAfter(after, 1000)
			return err
		})
		if err != nil {
			return StoredAlerts{}, 0, err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			after = e.ID
			switch e.Kind {
			case alertEventKind(alert.StateRaised), alertEventKind(alert.StateUpdated):
				if id, ok := alertIDOf(e.Body); ok {
					out.Open[id] = e.Body
					out.parts[id] = putPart(out.parts[id], e)
					last = e.Time
					span(e, e.Kind == alertEventKind(alert.StateRaised), false)
				}
			case alertEventKind(alert.StateCleared):
				if id, ok := alertIDOf(e.Body); ok {
					delete(out.Open, id)
					delete(out.parts, id)
					clearedAt[id] = e.Time
					last = e.Time
					span(e, false, true)
				}
			}
		}
	}
	forgetBefore := last.Add(-SpentIDsKept)
	for id, at := range clearedAt {
		if !at.Before(forgetBefore) {
			out.Cleared[id] = true
		}
	}
	for id := range out.Spans {
		if _, open := out.Open[id]; !open && !out.Cleared[id] {
			delete(out.Spans, id)
		}
	}
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		if out.RulesHistory, err = tx.RulesHistory(); err != nil {
			return err
		}
		out.ReportTimes, err = readReportTimes(tx)
		if errors.Is(err, errReportTimesUnreadable) {
			out.reportTimesUnreadable, err = err, nil
		}
		return err
	})
	return out, after, err
}

// fataler is what checkStoredAlertsAsScanned needs of a *testing.T or a
// *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// checkStoredAlertsAsScanned fails unless what the store keeps of its
// alerts is what a scan of its events finds.
func checkStoredAlertsAsScanned(t fataler, st store.Store) StoredAlerts {
	t.Helper()
	ctx := context.Background()
	kept, keptAfter, err := readStoredAlerts(ctx, st, true)
	if err != nil {
		t.Fatal(err)
	}
	scanned, scannedAfter, err := scanStoredAlerts(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if keptAfter != scannedAfter || !maps.EqualFunc(kept.Open, scanned.Open, func(a, b []byte) bool { return string(a) == string(b) }) || !maps.Equal(kept.Cleared, scanned.Cleared) {
		t.Fatalf("the store keeps as of event %d open %v, cleared %v;\na scan of its events finds as of %d open %v, cleared %v",
			keptAfter, slices.Sorted(maps.Keys(kept.Open)), slices.Sorted(maps.Keys(kept.Cleared)),
			scannedAfter, slices.Sorted(maps.Keys(scanned.Open)), slices.Sorted(maps.Keys(scanned.Cleared)))
	}
	// What each alert is about and when it was open, as the times of its
	// transitions say.
	if !maps.EqualFunc(kept.Spans, scanned.Spans, func(a, b AlertSpan) bool { return a.Pair == b.Pair && a.From.Equal(b.From) && a.To.Equal(b.To) }) {
		t.Fatalf("the store keeps the spans\n%v\na scan of its events finds\n%v", kept.Spans, scanned.Spans)
	}
	// What each party was last sent of each open alert (the snapshot's
	// parts), read from the events of its last transition.
	if !maps.EqualFunc(kept.parts, scanned.parts, func(a, b map[string]alertPart) bool {
		return maps.EqualFunc(a, b, func(x, y alertPart) bool { return x.id == y.id && string(x.body) == string(y.body) })
	}) {
		t.Fatalf("the parts of the open alerts read from their last transitions %v differ from a scan's %v", partIDs(kept.parts), partIDs(scanned.parts))
	}
	return kept
}

// partIDs is, for each open alert, the event id each party was last sent.
func partIDs(parts map[string]map[string]alertPart) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for id, ps := range parts {
		out[id] = map[string]int64{}
		for who, p := range ps {
			out[id][who] = p.id
		}
	}
	return out
}

// countingStore counts the events its transactions read.
type countingStore struct {
	store.Store
	eventsRead atomic.Int64
}

func (c *countingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	return c.Store.View(ctx, func(tx store.Tx) error { return fn(countingTx{tx, c}) })
}

func (c *countingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return c.Store.Update(ctx, func(tx store.Tx) error { return fn(countingTx{tx, c}) })
}

// countingTx hides the backend's EventsAfterFor: store.EventsAfterFor
// reads through EventsAfter, and is counted too.
type countingTx struct {
	store.Tx
	c *countingStore
}

func (t countingTx) EventsAfter(afterID int64, limit int) ([]store.Event, error) {
	evs, err := t.Tx.EventsAfter(afterID, limit)
	t.c.eventsRead.Add(int64(len(evs)))
	return evs, err
}

// TestAStartReadsTheStoresAlertsNotItsHistory: a process starts on a store
// whose alerts lie under a long history (100,000 events of other kinds
// after them). It takes up exactly the alerts open in the store, as a
// scan of every event would find them, and reads a number of events that
// does not grow with the history: a start read every event before, about
// 6 s a million, and detection waited for it.
func TestAStartReadsTheStoresAlertsNotItsHistory(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		startAfterHistory(t, st, 100_000)
	})
	// Shorter: each event is a round trip to the database.
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		startAfterHistory(t, st, 20_000)
	})
}

// startAfterHistory is TestAStartReadsTheStoresAlertsNotItsHistory on st,
// with history events after the alerts.
func startAfterHistory(t *testing.T, st store.Store, history int) {
	ctx := context.Background()
	clock := &testClock{}
	first, err := New(ctx, Config{Store: st, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	// A conflict the engine raises (an event per party: it carries a
	// resolution).
	c, r := headOnPair(clock.now())
	ingestBoth(t, first, c, r)
	raised := alertEvents(t, st)
	if len(raised) != 1 {
		t.Fatalf("the store has %v, want one raise", raised)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// More alerts as the service writes them: one raised and updated,
	// one raised and cleared.
	pair := func(id string, state string, level string) alert.Transition {
		return alert.Transition{ID: id, Kind: alert.KindConflict, Level: level, State: state, Time: clock.now(),
			Aircraft: []alert.Aircraft{{Party: "coalition", Aircraft: "C-" + id}, {Party: "russia", Aircraft: "R-" + id}}}
	}
	for _, tr := range []alert.Transition{
		pair("updated", alert.StateRaised, "advisory"), pair("ended", alert.StateRaised, "advisory"),
		pair("updated", alert.StateUpdated, "warning"), pair("ended", alert.StateCleared, "advisory"),
	} {
		err := st.Update(ctx, func(tx store.Tx) error {
			kind := alertEventKind(tr.State)
			_, last, err := appendAlertEvents(tx, &tr, kind, tr.Time, nil)
			if err != nil {
				return err
			}
			return recordAlert(tx, &tr, kind, last)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The history after them.
	for lo := 0; lo < history; lo += 10_000 {
		err := st.Update(ctx, func(tx store.Tx) error {
			for i := lo; i < min(lo+10_000, history); i++ {
				body := fmt.Appendf(nil, `{"id":"m%d"}`, i)
				if _, err := tx.AppendEvent(store.Event{Time: clock.now(), Kind: "message", Audience: []string{"coalition"}, Body: body}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"updated", raised[0][len("alert_raised "):]}
	slices.Sort(want)

	counting := &countingStore{Store: st}
	s, err := New(ctx, Config{Store: counting, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if n := counting.eventsRead.Load(); n > 100 {
		t.Errorf("the start read %d events of the %d in the store, want at most 100 however long its history", n, history)
	}
	var open []string
	for _, a := range s.Alerts(party.Principal{Operator: true}) {
		open = append(open, a.ID)
	}
	if !slices.Equal(open, want) {
		t.Errorf("after the start the service has %v open, want the store's %v", open, want)
	}
	if held := slices.Sorted(maps.Keys(s.tac.held)); !slices.Equal(held, want) {
		t.Errorf("the start took up %v, want the store's %v", held, want)
	}
	kept := checkStoredAlertsAsScanned(t, st)
	if !kept.Cleared["ended"] {
		t.Errorf("the store's clears %v lack the alert it cleared", kept.Cleared)
	}
	if got := alertEvents(t, st); len(got) != 5 {
		t.Errorf("the start wrote alert events: the store has %v", got)
	}
}
