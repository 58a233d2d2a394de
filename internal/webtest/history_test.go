package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/store"
)

// writeHistory writes n events straight to the backend's store: alerts of
// coalition and airgroup raised and cleared long ago, the history of a busy
// service; the service delivers them as another replica's.
func writeHistory(t *testing.T, be *backend, n int) {
	t.Helper()
	at := time.Now().Add(-72 * time.Hour).UTC()
	const perTx = 5000
	for done := 0; done < n; done = min(n, done+perTx) {
		err := be.st.Update(context.Background(), func(tx store.Tx) error {
			for i := 0; i < perTx && done+i < n; i++ {
				state := alert.StateRaised
				if i%2 == 1 {
					state = alert.StateCleared
				}
				a := alert.Alert{ID: fmt.Sprintf("old-%d", (done+i)/2), Kind: alert.KindConflict, Level: "advisory", State: state, Time: at,
					Aircraft: []alert.Aircraft{{Party: coalition, Aircraft: "CO-OLD", Callsign: "OLD1", Class: "manned"}, {Party: airgroup, Aircraft: "AG-OLD", Callsign: "OLD2", Class: "manned"}}}
				body, err := json.Marshal(a)
				if err != nil {
					return err
				}
				if _, err := tx.AppendEvent(store.Event{Time: at, Kind: "alert_" + state, Audience: []string{coalition, airgroup}, Body: body}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := be.svc.CatchUpEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// storedKinds returns the kinds of the first events of the store.
func storedKinds(t *testing.T, be *backend) []string {
	t.Helper()
	var kinds []string
	err := be.st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100)
		for _, e := range evs {
			kinds = append(kinds, e.Kind)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return kinds
}

// TestConsoleStartsAtThePresentOnALongHistory: with 50,000 events of the
// party's history behind it, the console opened (and reloaded) shows at
// once the alert raised before that history, then a new alert and a
// message as they happen, having applied only the events after its
// snapshot, not the history. A message committed while the stream starts
// (after the server subscribed it to live events, before it read the
// snapshot: in both) is shown once. (The console replayed the history
// before the live events: its start took as long as the history.)
func TestConsoleStartsAtThePresentOnALongHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	var be *backend
	var armed, fired atomic.Bool
	hookErr := make(chan error, 1)
	be = startBackendWith(t, api.Options{StreamStartHook: func(step string) {
		if step != "subscribed" || !armed.CompareAndSwap(true, false) {
			return
		}
		fired.Store(true)
		hookErr <- be.post(airgroup, "/v1/hotline/messages", map[string]any{"to": []string{coalition}, "kind": "notice", "text": "during the start"})
	}})
	feed := startFeeder(t, be)
	// Head on, 32 km apart, closing at 440 m/s: a warning from the start.
	feed.add(
		aircraft{party: coalition, id: "CO-1", callsign: "VIPER1", lat: 35.5, lon: 36.625, altM: 7500, velEastMps: 220},
		aircraft{party: airgroup, id: "AG-1", callsign: "SU24-1", lat: 35.5, lon: 36.975, altM: 7500, velEastMps: -220},
	)
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Contains(storedKinds(t, be), "alert_raised") {
		if time.Now().After(deadline) {
			t.Fatal("no alert raised within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	const history = 50_000
	writeHistory(t, be, history)

	front := httptestServer(t, newCutProxy(be.url))
	a := openTab(t, startBrowser(t), coalition, false)
	armed.Store(true)
	began := time.Now()
	a.do(t, chromedp.Navigate(front.URL), chromedp.Focus(chromedp.ID("token")), chromedp.SendKeys(chromedp.ID("token"), be.tokens[coalition]+kb.Enter))
	a.waitFor(t, "the alert raised before the history", `deconflict.snapshot().alerts.some(x => x.aircraft.includes('CO-1'))`, 30*time.Second)
	shown := time.Since(began)
	// What happens next: a message posted now, then a new alert.
	be.call(t, airgroup, "POST", "/v1/hotline/messages", map[string]any{"to": []string{coalition}, "kind": "notice", "text": "live"}, nil)
	a.waitFor(t, "the live message", `deconflict.snapshot().messages.some(m => m.text === 'live')`, 30*time.Second)
	t.Logf("console start on a history of %d events: the open alert shown %v after the login, a message posted then %v after it", history, shown, time.Since(began))
	feed.add(
		aircraft{party: coalition, id: "CO-2", callsign: "VIPER2", lat: 35.0, lon: 36.625, altM: 7500, velEastMps: 220},
		aircraft{party: airgroup, id: "AG-2", callsign: "SU24-2", lat: 35.0, lon: 36.975, altM: 7500, velEastMps: -220},
	)
	a.waitFor(t, "the new alert, live", `deconflict.snapshot().alerts.some(x => x.aircraft.includes('CO-2'))`, 20*time.Second)
	if applied := eval[int](t, a, `deconflict.snapshot().eventsApplied`); applied > 1000 {
		t.Errorf("the console applied %d events to start: the history (%d events), not the present", applied, history)
	}
	if !fired.Load() {
		t.Fatal("the console's stream did not start with a snapshot")
	}
	if err := <-hookErr; err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "the message committed during the start", `deconflict.snapshot().messages.some(m => m.text === 'during the start')`, 10*time.Second)
	if puts := eval[[]int](t, a, `deconflict.snapshot().messages.filter(m => m.text === 'during the start').map(m => m.puts)`); !slices.Equal(puts, []int{1}) {
		t.Errorf("the message committed during the start: listed and applied %v times, want once", puts)
	}

	// Reloaded, it starts from the present again.
	began = time.Now()
	a.do(t, chromedp.Reload())
	a.waitFor(t, "the two alerts after a reload", `deconflict.snapshot().alerts.some(x => x.aircraft.includes('CO-1')) && deconflict.snapshot().alerts.some(x => x.aircraft.includes('CO-2'))`, 30*time.Second)
	t.Logf("console reload: the open alerts shown %v after the reload", time.Since(began))
	if applied := eval[int](t, a, `deconflict.snapshot().eventsApplied`); applied > 1000 {
		t.Errorf("the reloaded console applied %d events", applied)
	}
}
