package webtest

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestLongNamesKeepTheAlertInView: another party's aircraft ids are up to
// 64 bytes without a space, and its aircraft need no callsign. Such a name
// in an alert must wrap inside the alerts panel, not widen the list and
// push the time to loss of separation and the Acknowledge button of every
// alert out of sight; and so must a long hotline text in its thread.
func TestLongNamesKeepTheAlertInView(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	be := startBackend(t)
	front := httptestServer(t, newCutProxy(be.url))
	browser := startBrowser(t)
	feed := startFeeder(t, be)
	long := strings.Repeat("W", 64)
	feed.add(
		aircraft{party: coalition, id: "CO-9", callsign: "VIPER9", lat: 35.5, lon: 36.625, altM: 7500, velEastMps: 220},
		aircraft{party: airgroup, id: long, lat: 35.5, lon: 36.975, altM: 7500, velEastMps: -220},
	)
	a := openTab(t, browser, coalition, false)
	a.do(t, chromedp.EmulateViewport(1366, 768), chromedp.Navigate(front.URL), chromedp.Focus(chromedp.ID("token")), chromedp.SendKeys(chromedp.ID("token"), be.tokens[coalition]+kb.Enter))
	a.waitFor(t, "the alert row", `[...document.querySelectorAll('#alerts li')].some(li => li.textContent.includes(`+jsString(long)+`) && li.querySelector('button.ack'))`, 30*time.Second)
	type box struct {
		ListRight, ListScroll, ListClient, LosRight, AckRight float64
	}
	got := eval[box](t, a, `(() => {
		const list = document.getElementById('alerts');
		const li = [...list.querySelectorAll('li')].find(li => li.textContent.includes(`+jsString(long)+`));
		return {ListRight: list.getBoundingClientRect().right, ListScroll: list.scrollWidth, ListClient: list.clientWidth,
			LosRight: li.querySelector('.los').getBoundingClientRect().right, AckRight: li.querySelector('button.ack').getBoundingClientRect().right};
	})()`)
	if got.ListScroll > got.ListClient+1 || got.LosRight > got.ListRight+1 || got.AckRight > got.ListRight+1 {
		a.screenshot(t, "long-names.png")
		t.Errorf("a 64-character aircraft id widens the alerts list: %+v", got)
	}

	// A hotline text is up to 4,096 bytes, which need hold no space: it
	// wraps in the thread's view, the Acknowledge button in sight.
	text := strings.Repeat("W", 4096)
	be.call(t, airgroup, "POST", "/v1/hotline/messages", map[string]any{"to": []string{coalition}, "kind": "notice", "thread": airgroup + "/long-1", "text": text}, nil)
	a.waitFor(t, "the thread", `document.querySelector('#threads button[data-thread="airgroup/long-1"]') !== null`, 15*time.Second)
	a.click(t, `#threads button[data-thread="airgroup/long-1"]`)
	a.waitFor(t, "the message", `[...document.querySelectorAll('#messages .message')].some(m => m.querySelector('button.ack'))`, 10*time.Second)
	type view struct{ Right, Scroll, Client, AckRight float64 }
	msg := eval[view](t, a, `(() => {
		const list = document.getElementById('messages');
		const m = [...list.querySelectorAll('.message')].find(m => m.querySelector('button.ack'));
		return {Right: list.getBoundingClientRect().right, Scroll: list.scrollWidth, Client: list.clientWidth,
			AckRight: m.querySelector('button.ack').getBoundingClientRect().right};
	})()`)
	if msg.Scroll > msg.Client+1 || msg.AckRight > msg.Right+1 {
		a.screenshot(t, "long-text.png")
		t.Errorf("a 4,096-character text without a space widens the thread's view: %+v", msg)
	}
}
