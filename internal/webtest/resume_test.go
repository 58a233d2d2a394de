package webtest

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestConsoleStartsAfreshWhenItsLastEventIsUnknown: the page resumes its
// event stream with the id of the last event it saw; when the server has
// no such event (its store was restored from an older copy) it refuses the
// cursor (400), and the page starts afresh without it, loads the picture
// again and is live: what happens next reaches it. (It tried the same
// cursor again and again, "reconnecting" for ever.)
func TestConsoleStartsAfreshWhenItsLastEventIsUnknown(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	be := startBackend(t)
	proxy := newCutProxy(be.url)
	front := httptestServer(t, proxy)
	a := openTab(t, startBrowser(t), coalition, false)
	a.do(t, chromedp.Navigate(front.URL), chromedp.Focus(chromedp.ID("token")), chromedp.SendKeys(chromedp.ID("token"), be.tokens[coalition]+kb.Enter))
	a.waitFor(t, "live", `document.getElementById('conn').dataset.state === 'live'`, 15*time.Second)
	be.call(t, airgroup, "POST", "/v1/hotline/messages", map[string]any{"to": []string{coalition}, "kind": "notice", "text": "before the restore"}, nil)
	a.waitFor(t, "an event", `deconflict.snapshot().lastEventId !== ''`, 10*time.Second)

	proxy.restoreOlderCopy()
	proxy.cut()
	proxy.restore()
	be.call(t, airgroup, "POST", "/v1/hotline/messages", map[string]any{"to": []string{coalition}, "kind": "notice", "text": "after the restore"}, nil)
	a.waitFor(t, "the message sent after the restore", `deconflict.snapshot().messages.some(m => m.text === 'after the restore') && document.getElementById('conn').dataset.state === 'live'`, 20*time.Second)
}
