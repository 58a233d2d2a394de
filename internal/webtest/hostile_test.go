package webtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Strings another party controls, as a server that does not check them
// (or a record older than its checks) would pass them on: markup, a
// right-to-left override that would make airgroup's aircraft read as the
// coalition's, controls, zero widths, and huge texts.
const (
	hostileMarkup   = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>`
	hostileCallsign = "SU24\u202e)noitilaoc( "
	hostileText     = "Climb now\u202e ,noitilaoc morf\u0007\u200b\u2066 " + hostileMarkup
	hostileReply    = "wilco\u202e — coalition: acknowledged"
	hugeLen         = 200000
	floodLen        = 3000
)

// hostileAPI serves coalition's page an alert with airgroup's aircraft
// under hostileCallsign, hotline items and a reply with the strings above,
// a text of hugeLen characters, tracks and a proposal of the rules
// answered with them.
type hostileAPI struct {
	events chan string
}

func (h *hostileAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UTC()
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	answer := func(v any) { answerJSON(w, http.StatusOK, v) }
	msg := func(id, from string, to []string, thread, text string) map[string]any {
		return map[string]any{"id": id, "from": from, "to": to, "thread": thread, "kind": "request", "text": text,
			"created": ts(-time.Minute), "deadline": ts(4 * time.Minute), "escalation_deadline": ts(9 * time.Minute), "state": "open", "acks": []any{}}
	}
	switch p := r.URL.Path; {
	case p == "/v1/rules/proposals":
		answer(map[string]any{"proposals": []any{map[string]any{
			"version": 2, "base_version": 1, "state": "proposed", "proposed_by": airgroup, "created": ts(-time.Minute),
			"changes":     []any{map[string]any{"field": "lookahead_s" + hostileMarkup, "old": 180, "new": hostileText}},
			"answers":     []any{map[string]any{"party": airgroup, "accepted": false, "time": ts(-time.Second), "reason": hostileReply}},
			"waiting_for": []string{coalition},
		}}})
	case p == "/v1/tracks":
		answer(map[string]any{"tracks": []any{
			map[string]any{"party": airgroup, "aircraft": "ag-1", "callsign": hostileCallsign, "time": ts(0), "lat": 35.0, "lon": 36.0, "alt_m": 9000.0},
		}})
	case p == "/v1/events":
		alert := map[string]any{
			"id": "a1", "kind": "conflict", "level": "constructor", "time": ts(0), "t_in_s": 100.0, "d_h_cpa_m": 900.0,
			"aircraft": []any{
				map[string]any{"party": coalition, "aircraft": "co-1", "callsign": "VIPER1", "lat": 35.0, "lon": 36.0, "alt_m": 9000.0},
				map[string]any{"party": airgroup, "aircraft": "ag-1", "callsign": hostileCallsign, "lat": 35.0, "lon": 36.02, "alt_m": 9000.0},
			},
		}
		mine := msg("m-mine", coalition, []string{airgroup}, coalition+"/ops", "Keep FL240 clear")
		mine["acks"] = []any{map[string]any{"party": airgroup, "time": ts(-time.Second), "reply": hostileReply}}
		// A thread flooded with acknowledged messages, after one that
		// still waits for the coalition's acknowledgment.
		flood := []any{msg("m-flood-open", airgroup, []string{coalition}, airgroup+"/flood", "the one that waits")}
		for i := range floodLen {
			m := msg(fmt.Sprintf("m-flood-%d", i), airgroup, []string{coalition}, airgroup+"/flood", fmt.Sprintf("noise %d", i))
			m["created"], m["state"] = ts(time.Duration(i-floodLen)*time.Millisecond), "acknowledged"
			m["acks"] = []any{map[string]any{"party": coalition, "time": ts(0)}}
			flood = append(flood, m)
		}
		flood[0].(map[string]any)["created"] = ts(-time.Hour)
		snap, _ := json.Marshal(map[string]any{"id": 0, "time": now, "data": map[string]any{
			"alerts": []any{alert, map[string]any{
				"id": "a2", "kind": "nonconforming", "level": "advisory", "time": ts(0),
				"aircraft": []any{map[string]any{"party": airgroup, "aircraft": strings.Repeat("W", hugeLen), "lat": 35.5, "lon": 36.5, "alt_m": 9000.0}},
			}},
			"messages": append([]any{
				msg("m-1", airgroup, []string{coalition}, airgroup+"/ops", hostileText),
				msg("m-huge", airgroup, []string{coalition}, airgroup+"/huge", strings.Repeat("A", hugeLen)),
				mine,
			}, flood...),
			"alerts_after": 0, "messages_after": 0,
		}})
		serveEvents(w, r, snap, h.events)
	default:
		if !answerQuiet(w, r) {
			answerJSON(w, http.StatusNotFound, map[string]any{"type": "https://deconflict.dev/problems/not-found", "title": "Not found", "status": 404})
		}
	}
}

// hiddenJS matches the characters that must never be shown as
// themselves (docs/WIRE.md's list, the line feed and the tab aside).
const hiddenJS = `/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}]/u`

// Another party's strings are shown as text: markup stays characters,
// no control or bidi character reaches the page (each is shown as
// ⟨U+XXXX⟩, and none is said to screen readers), each such string sits in
// an isolate among the page's words (bdi, or unicode-bidi: isolate), so
// that a right-to-left override cannot make airgroup's aircraft or reply
// read as the coalition's, and a huge text is cut. An unknown alert
// level named like an inherited property ("constructor") does not break
// the page. The console used to put such strings into the page as they
// came.
func TestConsoleShowsHostileStringsAsText(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	fake := &hostileAPI{events: make(chan string)}
	page := openConsoleOn(t, fake)
	page.logInAnyToken(t)
	page.waitFor(t, "the alert", `!!document.querySelector('#alerts li[data-alert-id="a1"]')`, 15*time.Second)
	page.waitFor(t, "the proposal", `!!document.querySelector('#proposals li[data-version="2"]')`, 15*time.Second)
	page.waitFor(t, "the hostile thread", `!!document.querySelector('#threads button[data-thread="airgroup/ops"]')`, 15*time.Second)
	page.click(t, `#threads button[data-thread="airgroup/ops"]`)
	page.waitFor(t, "the hostile message", `!!document.querySelector('#messages li[data-message-id="m-1"]')`, 10*time.Second)

	// A new item on the stream, said to screen readers.
	ev, _ := json.Marshal(map[string]any{"id": 5, "time": time.Now().UTC().Format(time.RFC3339Nano), "data": map[string]any{
		"id": "m-2", "from": airgroup, "to": []string{coalition}, "thread": airgroup + "/ops", "kind": "request", "text": hostileText,
		"created": time.Now().UTC().Format(time.RFC3339Nano), "deadline": time.Now().Add(4 * time.Minute).UTC().Format(time.RFC3339Nano), "state": "open", "acks": []any{},
	}})
	select {
	case fake.events <- fmt.Sprintf("event: message\nid: 5\ndata: %s\n\n", ev):
	case <-time.After(10 * time.Second):
		t.Fatal("the stream is not read")
	}
	page.waitFor(t, "the new item", `!!document.querySelector('#messages li[data-message-id="m-2"]')`, 10*time.Second)
	page.waitFor(t, "the new item said", `deconflict.snapshot().said.some((s) => s.startsWith('New hotline request from airgroup'))`, 10*time.Second)

	// Markup is text: nothing of it became an element or ran.
	if n := eval[int](t, page, `document.querySelectorAll('img, iframe, object, embed, b, script:not([src])').length`); n != 0 {
		t.Errorf("%d elements made from another party's markup", n)
	}
	if eval[bool](t, page, `window.pwned !== undefined`) {
		t.Error("another party's markup ran")
	}
	if got := eval[string](t, page, `document.querySelector('#messages li[data-message-id="m-1"] .msg-text').textContent`); !strings.Contains(got, hostileMarkup) || !strings.Contains(got, "Climb now⟨U+202E⟩") {
		t.Errorf("the hostile text is shown as %q", got)
	}

	scanHostile(t, page, "the hostile thread")

	// Who is who stays apart: the sender and the replying party each in
	// an isolate of their own, the override shown, not obeyed.
	if got := eval[string](t, page, `[...document.querySelectorAll('#messages li[data-message-id="m-1"] .msg-from bdi')].map((b) => b.textContent).join('|')`); got != airgroup {
		t.Errorf("the sender of the hostile message: %q", got)
	}
	if got := eval[string](t, page, `[...document.querySelectorAll('#alerts li[data-alert-id="a1"] .pair bdi')].map((b) => b.textContent.slice(0, 24)).join('|')`); got != "VIPER1|coalition|SU24⟨U+202E⟩)noitilaoc( |airgroup" {
		t.Errorf("the alert's pair: %q", got)
	}

	if got := eval[string](t, page, `document.querySelector('#alerts li[data-alert-id="a1"] .badge').textContent`); got != "ADVISORY" {
		t.Errorf("an alert of level \"constructor\" is badged %q, want ADVISORY (a level the page does not know)", got)
	}

	// Huge strings are cut.
	page.click(t, `#threads button[data-thread="airgroup/huge"]`)
	page.waitFor(t, "the huge message", `!!document.querySelector('#messages li[data-message-id="m-huge"]')`, 10*time.Second)
	if n := eval[int](t, page, `document.querySelector('#messages li[data-message-id="m-huge"] .msg-text').textContent.length`); n > 9000 {
		t.Errorf("a %d-character text is shown %d characters long", hugeLen, n)
	}
	if n := eval[int](t, page, `document.querySelector('#alerts li[data-alert-id="a2"] .pair').textContent.length`); n > 9000 {
		t.Errorf("a %d-character aircraft id is shown %d characters long", hugeLen, n)
	}
	scanHostile(t, page, "the huge text")

	// airgroup's reply to the coalition's message.
	page.click(t, `#threads-done-list button[data-thread="coalition/ops"], #threads button[data-thread="coalition/ops"]`)
	page.waitFor(t, "the reply", `!!document.querySelector('#messages li[data-message-id="m-mine"] .acks')`, 10*time.Second)
	if got := eval[string](t, page, `[...document.querySelectorAll('#messages li[data-message-id="m-mine"] .acks bdi')].map((b) => b.textContent).join('|')`); got != airgroup+"|wilco⟨U+202E⟩ — coalition: acknowledged" {
		t.Errorf("airgroup's reply: %q", got)
	}
	scanHostile(t, page, "the reply")

	// The tooltip of airgroup's aircraft, whose callsign is hostile.
	page.waitFor(t, "the track", `deconflict.snapshot().tracks === 1`, 10*time.Second)
	page.do(t, chromedp.Evaluate[chromedp.Void](`deconflict.centerOn(36, 35)`))
	page.waitFor(t, "the track drawn", `deconflict.snapshot().drawn.tracks === 1`, 10*time.Second)
	for attempt := 0; ; attempt++ {
		// Aimed at where the map draws it now (a frame may be due).
		at := eval[map[string]float64](t, page, `deconflict.trackScreen('airgroup/ag-1')`)
		page.do(t, chromedp.MouseEvent(chromedp.MouseMoved, at["x"]+float64(attempt%2), at["y"]))
		if eval[bool](t, page, `!document.getElementById('tooltip').hidden && document.getElementById('tooltip').textContent.includes('(ag-1) · airgroup')`) {
			break
		}
		if attempt == 50 {
			t.Fatal("no tooltip over airgroup's aircraft")
		}
		time.Sleep(100 * time.Millisecond)
	}
	scanHostile(t, page, "the tooltip")

	// A thread of 3,001 messages shows the one that waits and the newest
	// others, and says how many it leaves out.
	page.click(t, `#threads button[data-thread="airgroup/flood"]`)
	page.waitFor(t, "the flooded thread", `!!document.querySelector('#messages li[data-message-id="m-flood-open"] button.ack')`, 10*time.Second)
	if n := eval[int](t, page, `document.querySelectorAll('#messages > li').length`); n > 200 {
		t.Errorf("a thread of %d messages shows %d of them, want at most 200", floodLen+1, n)
	}
	if got := eval[string](t, page, `document.getElementById('messages-more').textContent`); got != "2,801 earlier acknowledged messages not shown." {
		t.Errorf("the flooded thread says %q", got)
	}
	if !eval[bool](t, page, `!!document.querySelector('#messages li[data-message-id="m-flood-2999"]')`) {
		t.Error("the newest message of the flooded thread is not shown")
	}

	if errs := eval[[]string](t, page, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}

	// Nor can any string be parsed as markup: the page's policy (Trusted
	// Types, no policy allowed) makes every HTML sink throw. (Last: the
	// page records the attempt as a violation.)
	if got := eval[string](t, page, `(() => { try { document.createElement('div').innerHTML = '<img src=x>'; return 'parsed'; } catch (e) { return e.name; } })()`); got != "TypeError" {
		t.Errorf("a string given to innerHTML: %s, want refused (TypeError)", got)
	}
}

// scanHostile checks that no hidden character is shown as itself on the
// page (its text, labels, title, what was said) and that every string of
// another party is isolated among the page's words.
func scanHostile(t *testing.T, page *tab, where string) {
	t.Helper()
	// No hidden character anywhere on the page, said, or in a label.
	shownHidden := eval[[]string](t, page, `(() => {
		const hidden = `+hiddenJS+`;
		const out = [];
		const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) if (hidden.test(n.data)) out.push((n.parentElement.closest('[id]') || {}).id + ': ' + JSON.stringify(n.data.slice(0, 80)));
		for (const e of document.querySelectorAll('[aria-label], [title]')) for (const a of ['aria-label', 'title']) if (hidden.test(e.getAttribute(a) || '')) out.push(a + ': ' + JSON.stringify(e.getAttribute(a)));
		for (const s of deconflict.snapshot().said.concat(deconflict.snapshot().announced)) if (hidden.test(s)) out.push('said: ' + JSON.stringify(s));
		if (hidden.test(document.title)) out.push('title');
		return out;
	})()`)
	if len(shownHidden) > 0 {
		t.Errorf("%s: hidden characters shown as themselves:\n%s", where, strings.Join(shownHidden, "\n"))
	}

	// Every string of another party is isolated among the page's words:
	// the nearest element around it that is not plain inline text is a
	// bdi or has unicode-bidi isolate (as its own paragraph, dir=auto,
	// has).
	notIsolated := eval[[]string](t, page, `(() => {
		const marks = ['⟨U+', 'SU24', 'wilco', 'WWWW', 'AAAA', 'airgroup'];
		const out = [];
		const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			if (!marks.some((m) => n.data.includes(m))) continue;
			const e = n.parentElement;
			if (e.closest('[hidden], datalist, option')) continue;
			const bidi = getComputedStyle(e).unicodeBidi;
			if (e.tagName === 'BDI' || ['isolate', 'plaintext', 'isolate-override'].includes(bidi)) continue;
			// A text alone in its own block is its own paragraph.
			if (getComputedStyle(e).display !== 'inline' && e.childNodes.length === 1) continue;
			out.push((e.closest('[id]') || {}).id + ' ' + e.tagName + '.' + e.className + ': ' + JSON.stringify(n.data.slice(0, 60)));
		}
		return out;
	})()`)
	if len(notIsolated) > 0 {
		t.Errorf("%s: other parties' strings not isolated:\n%s", where, strings.Join(notIsolated, "\n"))
	}

}
