package webtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// liveAPI stands in for the service: coalition's page opens on an alert of
// its own aircraft and an open hotline item from airgroup, both counting
// down to their deadlines; its tracks, its volumes and its first message
// are refused for now (429, Retry-After: 30), so that their waits count
// down too. Events pushed on events reach the page on its stream.
type liveAPI struct {
	events chan string

	mu     sync.Mutex
	tracks int
	vols   int
	posts  int
}

func (l *liveAPI) count(n *int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	*n++
	return *n
}

func liveMessage(id, state string, escalations int, now time.Time) map[string]any {
	return map[string]any{
		"id": id, "from": airgroup, "to": []string{coalition}, "thread": airgroup + "/ops", "kind": "request", "text": "Keep FL240 clear",
		"created": now.Add(-time.Minute).Format(time.RFC3339Nano), "deadline": now.Add(4 * time.Minute).Format(time.RFC3339Nano),
		"escalation_deadline": now.Add(9 * time.Minute).Format(time.RFC3339Nano), "state": state, "escalations": escalations, "acks": []any{},
	}
}

func (l *liveAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UTC()
	busy := func(slug string) {
		w.Header().Set("Retry-After", "30")
		answerJSON(w, http.StatusTooManyRequests, map[string]any{"type": "https://deconflict.dev/problems/" + slug, "title": "Busy", "status": 429})
	}
	switch p := r.URL.Path; {
	case p == "/v1/volumes" && l.count(&l.vols) == 1:
		busy("too-many-volume-reads")
	case p == "/v1/tracks" && l.count(&l.tracks) == 1:
		busy("too-many-track-reads")
	case p == "/v1/hotline/messages" && r.Method == "POST":
		if l.count(&l.posts) == 1 {
			busy("too-many-open-messages")
			return
		}
		m := liveMessage("m-mine", "open", 0, now)
		m["from"], m["to"], m["thread"], m["text"] = coalition, []string{airgroup}, coalition+"/new", "sent after the wait"
		answerJSON(w, http.StatusCreated, m)
	case p == "/v1/events":
		alert := map[string]any{
			"id": "a1", "kind": "conflict", "level": "caution", "time": now.Format(time.RFC3339Nano), "t_in_s": 100.0, "d_h_cpa_m": 900.0,
			"aircraft": []any{
				map[string]any{"party": coalition, "aircraft": "co-1", "callsign": "VIPER1", "lat": 34.0, "lon": 37.0, "alt_m": 9000.0},
				map[string]any{"party": airgroup, "aircraft": "ag-1", "callsign": "SU24", "lat": 34.0, "lon": 37.02, "alt_m": 9000.0},
			},
		}
		item := liveMessage("m-alert", "open", 0, now)
		item["from"], item["kind"], item["thread"], item["ref"], item["level"] = "deconflict", "alert", "alert:a1", map[string]any{"alert_id": "a1"}, "caution"
		item["to"] = []string{coalition, airgroup}
		snap, _ := json.Marshal(map[string]any{"id": 0, "time": now, "data": map[string]any{
			"alerts": []any{alert}, "messages": []any{liveMessage("m-1", "open", 0, now), item}, "alerts_after": 0, "messages_after": 0,
		}})
		serveEvents(w, r, snap, l.events)
	default:
		if !answerQuiet(w, r) {
			answerJSON(w, http.StatusNotFound, map[string]any{"type": "https://deconflict.dev/problems/not-found", "title": "Not found", "status": 404})
		}
	}
}

// pushEvent sends an event of kind with data to the page's stream.
func (l *liveAPI) pushEvent(t *testing.T, id int, kind string, data any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, "time": time.Now().UTC().Format(time.RFC3339Nano), "data": data})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case l.events <- fmt.Sprintf("event: %s\nid: %d\ndata: %s\n\n", kind, id, b):
	case <-time.After(10 * time.Second):
		t.Fatal("the page's stream is not read")
	}
}

// liveRegionJS defines liveRegionOf(node): the nearest element at or
// above node that a screen reader reads out when what is in it changes (a
// live region: aria-live other than off, or role status, alert, log or
// marquee, or an output element, without aria-live="off"), or null. An
// aria-live="off" below a live region does not count as leaving it: the
// countdowns must be out of every live region.
const liveRegionJS = `window.liveRegionOf = (node) => {
	const live = (e) => {
		const a = e.getAttribute('aria-live');
		if (a !== null) return a !== 'off';
		return ['status', 'alert', 'log', 'marquee'].includes(e.getAttribute('role')) || e.tagName === 'OUTPUT';
	};
	for (let e = node && node.nodeType === 1 ? node : node && node.parentElement; e; e = e.parentElement) if (live(e)) return e;
	return null;
};`

// The countdowns (a hotline item's deadline, an alert's, the time to loss
// of separation, the waits of refusals on the connection's line, the
// delays line and the compose form) are outside every live region, so a
// screen reader does not read each second of them; while nothing happens
// but the seconds passing, no live region changes. What matters is said
// once in a live region: a new hotline item, an escalation, a wait that
// starts and one that ends, the message sent. The console used to keep
// the countdowns inside role=status and aria-live regions.
func TestConsoleLiveRegionsSayChangesNotSeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	fake := &liveAPI{events: make(chan string)}
	page := openConsoleOn(t, fake)
	page.do(t, chromedp.Evaluate[chromedp.Void](`deconflict.useManualClock(); `+liveRegionJS))
	page.logInAnyToken(t)

	page.waitFor(t, "the busy tracks", `document.getElementById('conn').textContent.includes('tracks busy, retrying in 30 s')`, 15*time.Second)
	page.waitFor(t, "the busy volumes", `document.getElementById('delays').textContent.includes('Volumes busy, retrying in 30 s')`, 15*time.Second)
	page.waitFor(t, "the hotline item's deadline", `!!document.querySelector('#messages [data-deadline-at]')`, 15*time.Second)
	page.waitFor(t, "the alert's deadline", `!!document.querySelector('#alerts [data-deadline-at]') && !!document.querySelector('#alerts [data-alert-los]')`, 15*time.Second)
	page.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		document.getElementById('compose-to').value = 'airgroup';
		document.getElementById('compose-thread').value = 'new';
		document.getElementById('compose-text').value = 'sent after the wait';
		document.querySelector('#compose button[type=submit]').click();
	})()`))
	page.waitFor(t, "the busy message", `document.getElementById('compose').textContent.includes('Message busy: nothing sent yet, retrying in 30 s')`, 15*time.Second)

	// Every countdown is out of every live region.
	inLive := eval[[]string](t, page, `[...document.querySelectorAll('[data-retry-at], [data-deadline-at], [data-alert-los]')]
		.filter((e) => liveRegionOf(e))
		.map((e) => (e.closest('[id]') || e).id + ': ' + e.textContent + ' in ' + liveRegionOf(e).outerHTML.slice(0, 80))`)
	if len(inLive) > 0 {
		t.Errorf("countdowns inside live regions:\n%s", strings.Join(inLive, "\n"))
	}
	if n := eval[int](t, page, `document.querySelectorAll('[data-retry-at], [data-deadline-at], [data-alert-los]').length`); n < 6 {
		t.Fatalf("%d countdowns on the page, want the 6 above at least", n)
	}

	// Seconds pass, on the waits' clock and the deadlines' (the page's
	// own once-a-second tick, and as at later moments): no live region
	// changes. The changes are watched from the page's next turn, once
	// what was said of the start has been said.
	eval[bool](t, page, `new Promise((resolve) => setTimeout(() => {
		window.liveChanges = [];
		new MutationObserver((records) => {
			for (const r of records) {
				const region = liveRegionOf(r.target);
				if (region) window.liveChanges.push((region.id || region.tagName) + ': ' + region.textContent.trim());
			}
		}).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['hidden'] });
		resolve(true);
	}, 300))`)
	before := eval[string](t, page, `document.getElementById('compose').textContent`)
	for i := 1; i <= 3; i++ {
		page.do(t, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`deconflict.advanceClock(1000); deconflict.renderDeadlinesAt(Date.now() + %d)`, i*61000)))
	}
	// The page's own tick runs once a second.
	eval[bool](t, page, `new Promise((resolve) => setTimeout(() => resolve(true), 1300))`)
	if after := eval[string](t, page, `document.getElementById('compose').textContent`); after == before {
		t.Fatalf("the countdown did not move (%q): the test proves nothing", after)
	}
	if changes := eval[[]string](t, page, `window.liveChanges`); len(changes) > 0 {
		t.Errorf("live regions changed while only seconds passed:\n%s", strings.Join(changes, "\n"))
	}

	// What matters is said in a live region.
	fake.pushEvent(t, 10, "message", func() map[string]any {
		m := liveMessage("m-2", "open", 0, time.Now().UTC())
		m["text"] = "Descend to FL200 now"
		return m
	}())
	fake.pushEvent(t, 11, "escalated", liveMessage("m-1", "escalated", 1, time.Now().UTC()))
	page.do(t, chromedp.Evaluate[chromedp.Void](`deconflict.advanceClock(30000)`))
	for _, want := range []string{
		"New hotline request from airgroup, to acknowledge: Descend to FL200 now",
		"Escalated: request from airgroup",
		"Live",
		"Volumes loaded",
		"Sent.",
	} {
		page.waitFor(t, "said: "+want, `window.liveChanges.some((c) => c.includes(`+jsString(want)+`))`, 15*time.Second)
	}
	if errs := eval[[]string](t, page, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}
