package webtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// writeProxy stands between the browser and the backend, recording the
// Idempotency-Key of every write to the paths watched and whether its
// answer was replayed, and losing the answer of the first write to a path
// in drop: the write reaches the backend, which does it, and the browser
// gets the status line and half of the body, then the connection closes
// (as when a link or a proxy dies mid-answer). The browser cannot tell
// whether it was done.
type writeProxy struct {
	target *url.URL
	rp     *httputil.ReverseProxy

	mu     sync.Mutex
	drop   map[string]bool // path -> the answer of its next write is lost
	writes []proxiedWrite
}

type proxiedWrite struct {
	path, key string
	status    int
	replayed  bool
	dropped   bool
}

func newWriteProxy(t *testing.T, target string, drop ...string) *writeProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &writeProxy{target: u, rp: httputil.NewSingleHostReverseProxy(u), drop: map[string]bool{}}
	p.rp.ErrorLog = log.New(io.Discard, "", 0)
	for _, d := range drop {
		p.drop[d] = true
	}
	return p
}

func (p *writeProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	watched := r.Method != "GET" && (r.URL.Path == "/v1/hotline/messages" || r.URL.Path == "/v1/volumes" || strings.HasPrefix(r.URL.Path, "/v1/rules/"))
	if !watched {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	drop := p.drop[r.URL.Path]
	delete(p.drop, r.URL.Path)
	p.mu.Unlock()
	rec := proxiedWrite{path: r.URL.Path, key: r.Header.Get("Idempotency-Key"), dropped: drop}
	if !drop {
		rw := &recordingWriter{ResponseWriter: w}
		p.rp.ServeHTTP(rw, r)
		rec.status = rw.status
		rec.replayed = rw.Header().Get("Idempotent-Replayed") == "true"
		p.add(rec)
		return
	}
	// The write goes through; its answer does not.
	body, _ := io.ReadAll(r.Body)
	out, _ := http.NewRequest(r.Method, p.target.String()+r.URL.RequestURI(), bytes.NewReader(body))
	out.Header = r.Header.Clone()
	res, err := http.DefaultTransport.RoundTrip(out)
	if err == nil {
		answer, _ := io.ReadAll(res.Body)
		res.Body.Close()
		rec.status = res.StatusCode
		conn, buf, herr := http.NewResponseController(w).Hijack()
		if herr == nil {
			_, _ = buf.WriteString("HTTP/1.1 " + res.Status + "\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(answer)) + "\r\n\r\n")
			_, _ = buf.Write(answer[:len(answer)/2])
			_ = buf.Flush()
			conn.Close()
		}
	}
	p.add(rec)
}

// dropNext loses the answer of the next write to path.
func (p *writeProxy) dropNext(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop[path] = true
}

func (p *writeProxy) add(w proxiedWrite) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = append(p.writes, w)
}

func (p *writeProxy) writesTo(path string) []proxiedWrite {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []proxiedWrite
	for _, w := range p.writes {
		if w.path == path {
			out = append(out, w)
		}
	}
	return out
}

// recordingWriter keeps the status a handler answered.
type recordingWriter struct {
	http.ResponseWriter
	status int
}

func (r *recordingWriter) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recordingWriter) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recordingWriter) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// messagesIn counts the hotline items of thread as party sees them.
func messagesIn(t *testing.T, be *backend, party, thread string) int {
	t.Helper()
	var res struct {
		Messages []struct {
			Thread string `json:"thread"`
		} `json:"messages"`
	}
	be.call(t, party, "GET", "/v1/hotline/messages?thread="+url.QueryEscape(thread), nil, &res)
	n := 0
	for _, m := range res.Messages {
		if m.Thread == thread {
			n++
		}
	}
	return n
}

// loginAt opens a page of party at front and logs in.
func loginAt(t *testing.T, tb *tab, be *backend, front string) {
	t.Helper()
	tb.do(t, chromedp.EmulateViewport(1600, 1000), chromedp.Navigate(front))
	tb.do(t, chromedp.SendKeys(chromedp.ID("token"), be.tokens[tb.party]), chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	tb.waitFor(t, "the party name", `document.getElementById('party-name').textContent === `+jsString(tb.party), 15*time.Second)
}

// fillCompose writes a message to airgroup in a new thread.
func fillCompose(t *testing.T, tb *tab, thread, text string) {
	t.Helper()
	tb.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		// Not a reply in the thread open: a new thread.
		if (!document.getElementById('compose-new-thread').hidden) document.getElementById('compose-new-thread').click();
		document.getElementById('compose-to').value = 'airgroup';
		document.getElementById('compose-thread').value = `+jsString(thread)+`;
		document.getElementById('compose-text').value = `+jsString(text)+`;
	})()`))
}

// doubleClick double-clicks the element at selector as a person does: two
// presses and releases of the left button (the second with click count
// 2), each a click of its own, sent as input events.
func doubleClick(t *testing.T, tb *tab, selector string) {
	t.Helper()
	type point struct{ X, Y float64 }
	at := eval[point](t, tb, `(() => { const r = document.querySelector(`+jsString(selector)+`).getBoundingClientRect(); return {X: r.left + r.width / 2, Y: r.top + r.height / 2}; })()`)
	var steps []chromedp.Action[chromedp.Void]
	for n := 1; n <= 2; n++ {
		steps = append(steps,
			chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, at.X, at.Y, chromedp.ButtonType(input.MouseButtonLeft), chromedp.ClickCount(n)),
			chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, at.X, at.Y, chromedp.ButtonType(input.MouseButtonLeft), chromedp.ClickCount(n)))
	}
	tb.do(t, steps...)
}

// A double click on Send sends one message: the button is disabled while
// the message is in flight, and a second submission of the form meanwhile
// (Enter in a field) sends nothing either. The console used to send one
// message per click.
func TestConsoleSendsAMessageOnceOnADoubleClick(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	be := startBackend(t)
	proxy := newWriteProxy(t, be.url)
	front := httptestServer(t, proxy)
	a := openTab(t, startBrowser(t), coalition, false)
	loginAt(t, a, be, front.URL)

	fillCompose(t, a, "double", "one message, clicked twice")
	doubleClick(t, a, `#compose button[type=submit]`)
	a.waitFor(t, "the message sent", `document.getElementById('compose-text').value === '' && !document.querySelector('#compose button[type=submit]').disabled`, 15*time.Second)
	if note := eval[string](t, a, `String(document.getElementById('compose-note')?.textContent)`); note != "Sent." {
		t.Errorf("the page says %q of the message sent", note)
	}
	if n := messagesIn(t, be, coalition, "coalition/double"); n != 1 {
		t.Errorf("a double click on Send wrote %d messages, want 1", n)
	}

	// Clicked twice and submitted once more in the same turn of the page.
	fillCompose(t, a, "twice", "one message, sent three ways")
	a.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		const send = document.querySelector('#compose button[type=submit]');
		send.click();
		send.click();
		document.getElementById('compose').requestSubmit();
	})()`))
	a.waitFor(t, "the second message sent", `document.getElementById('compose-text').value === '' && !document.querySelector('#compose button[type=submit]').disabled`, 15*time.Second)
	if n := messagesIn(t, be, coalition, "coalition/twice"); n != 1 {
		t.Errorf("two clicks and a submission wrote %d messages, want 1", n)
	}
	writes := proxy.writesTo("/v1/hotline/messages")
	if len(writes) != 2 {
		t.Fatalf("the page sent %d messages, want 2: %+v", len(writes), writes)
	}
	if writes[0].key == "" || writes[0].key == writes[1].key {
		t.Errorf("two actions' Idempotency-Keys: %q and %q, want two fresh keys", writes[0].key, writes[1].key)
	}
	if errs := eval[[]string](t, a, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}

// A message whose answer is lost (the server wrote it; the connection
// dropped mid-answer) is sent again with the same Idempotency-Key: the
// service answers with the message it kept (Idempotent-Replayed: true),
// the page says it was sent (once), and there is one message. So is a
// volume declared from an imported file. The console used to say "Not
// sent" for a message that was sent, and sending it again wrote it twice.
func TestConsoleSendsAgainWithTheSameKeyAfterALostAnswer(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	be := startBackend(t)
	proxy := newWriteProxy(t, be.url, "/v1/hotline/messages", "/v1/volumes")
	front := httptestServer(t, proxy)
	a := openTab(t, startBrowser(t), coalition, false)
	loginAt(t, a, be, front.URL)

	fillCompose(t, a, "lost", "sent once though its answer was lost")
	a.click(t, `#compose button[type=submit]`)
	a.waitFor(t, "the message answered", `document.getElementById('compose-text').value === '' || document.getElementById('compose-error').textContent !== ''`, 20*time.Second)
	if note := eval[string](t, a, `String(document.getElementById('compose-note')?.textContent)`); note != "Sent: the first send had arrived; it was not sent twice." {
		t.Errorf("the page says %q of the message whose first answer was lost", note)
	}
	if e := eval[string](t, a, `document.getElementById('compose-error').textContent`); e != "" {
		t.Errorf("the page says %q of a message that was sent", e)
	}
	a.waitFor(t, "the message in its thread", `[...document.querySelectorAll('#messages .msg-text')].some((p) => p.textContent === 'sent once though its answer was lost')`, 10*time.Second)
	if n := messagesIn(t, be, coalition, "coalition/lost"); n != 1 {
		t.Errorf("%d messages written, want 1", n)
	}
	writes := proxy.writesTo("/v1/hotline/messages")
	if len(writes) != 2 || !writes[0].dropped || writes[0].status != http.StatusCreated || writes[0].key == "" || writes[1].key != writes[0].key || !writes[1].replayed {
		t.Errorf("the sends of the message: %+v; want the first (answer lost) and one again with its key, answered replayed", writes)
	}

	// A volume from an imported file, the answer of its write lost.
	now := time.Now().UTC()
	file := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"LOST ANSWER AREA","alt_lower_m":1000,"alt_upper_m":2000},
 "geometry":{"type":"Polygon","coordinates":[[[41,36],[41.2,36],[41.2,36.2],[41,36]]]}}]}`
	a.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([`+jsString(file)+`], 'lost.geojson', { type: 'application/geo+json' }));
		document.getElementById('map').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
	})()`))
	a.waitFor(t, "the preview", `deconflict.snapshot().importItems.length === 1 && deconflict.snapshot().importItems[0].status === 'ok'`, 15*time.Second)
	a.click(t, "#import-declare")
	a.waitFor(t, "the airspace declared", `deconflict.snapshot().importItems[0].status === 'declared'`, 20*time.Second)
	if d := eval[string](t, a, `document.querySelector('#import-items li[data-item="0"] .detail').textContent`); !strings.Contains(d, "declared once: the first send had arrived") {
		t.Errorf("the declared airspace says %q", d)
	}
	var vs struct {
		Volumes []struct {
			Party string `json:"party"`
		} `json:"volumes"`
	}
	be.call(t, coalition, "GET", "/v1/volumes?bbox=-180,-85,180,85&from="+url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339))+"&to="+url.QueryEscape(now.Add(6*time.Hour).Format(time.RFC3339)), nil, &vs)
	if len(vs.Volumes) != 1 {
		t.Errorf("%d volumes declared, want 1", len(vs.Volumes))
	}
	vw := proxy.writesTo("/v1/volumes")
	if len(vw) != 2 || !vw[0].dropped || vw[0].key == "" || vw[1].key != vw[0].key || !vw[1].replayed {
		t.Errorf("the sends of the volume: %+v", vw)
	}

	// An answer to a proposal of the rules, its answer lost: accepted
	// once, and said so. Sent again without its key, the answer would be
	// refused as given already.
	var r map[string]any
	be.call(t, "operator", "GET", "/v1/rules", nil, &r)
	r["lookahead_s"] = r["lookahead_s"].(float64) + 60
	var proposal struct {
		Version int64 `json:"version"`
	}
	be.call(t, "operator", "PUT", "/v1/rules", r, &proposal)
	accept := fmt.Sprintf("/v1/rules/%d/accept", proposal.Version)
	proxy.dropNext(accept)
	button := fmt.Sprintf(`#proposals button[data-accept="%d"]`, proposal.Version)
	a.waitFor(t, "the proposal", `!!document.querySelector(`+jsString(button)+`)`, 15*time.Second)
	a.click(t, button)
	a.waitFor(t, "the answer said", `deconflict.snapshot().said.some((s) => s.startsWith('Accepted version `+strconv.FormatInt(proposal.Version, 10)+` (the first send had arrived'))`, 20*time.Second)
	if e := eval[string](t, a, `[...document.querySelectorAll('#proposals .error')].map((e) => e.textContent).join(' ')`); e != "" {
		t.Errorf("the proposal says %q of an answer given", e)
	}
	aw := proxy.writesTo(accept)
	if len(aw) != 2 || !aw[0].dropped || aw[0].status != http.StatusOK || aw[0].key == "" || aw[1].key != aw[0].key || !aw[1].replayed {
		t.Errorf("the sends of the answer: %+v", aw)
	}
	if errs := eval[[]string](t, a, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}

// writesAPI answers coalition's page as a service would in trouble: the
// first message is answered 503 outcome-unknown (done or not, the service
// cannot tell), the next send 409 idempotency-in-progress (the first is
// still being served), the next with the message it kept, replayed. A
// message of the thread "exhausted" is refused 429
// idempotency-keys-exhausted while it carries a key. It records the
// Idempotency-Key of every send.
type writesAPI struct {
	mu   sync.Mutex
	keys []string
}

func (f *writesAPI) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

func (f *writesAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	answer := func(code int, v any) { answerJSON(w, code, v) }
	problem := func(code int, slug string) {
		answer(code, map[string]any{"type": "https://deconflict.dev/problems/" + slug, "title": slug, "status": code, "detail": slug})
	}
	switch p := r.URL.Path; {
	case p == "/v1/events":
		serveEvents(w, r, []byte(`{"id":0,"data":{"alerts":[],"messages":[]}}`), nil)
	case p == "/v1/hotline/messages" && r.Method == "POST":
		body, _ := io.ReadAll(r.Body)
		var msg map[string]any
		_ = json.Unmarshal(body, &msg)
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		f.keys = append(f.keys, key)
		n := len(f.keys)
		f.mu.Unlock()
		now := time.Now().UTC().Format(time.RFC3339Nano)
		kept := map[string]any{"id": fmt.Sprintf("m-%d", n), "from": coalition, "to": msg["to"], "thread": msg["thread"], "kind": msg["kind"], "text": msg["text"],
			"created": now, "deadline": now, "state": "open", "acks": []any{}}
		if msg["thread"] == coalition+"/exhausted" {
			if key != "" {
				problem(http.StatusTooManyRequests, "idempotency-keys-exhausted")
				return
			}
			answer(201, kept)
			return
		}
		switch n {
		case 1:
			problem(http.StatusServiceUnavailable, "outcome-unknown")
		case 2:
			problem(http.StatusConflict, "idempotency-in-progress")
		default:
			w.Header().Set("Idempotent-Replayed", "true")
			answer(201, kept)
		}
	default:
		if !answerQuiet(w, r) {
			problem(http.StatusNotFound, "not-found")
		}
	}
}

// A message answered 503 outcome-unknown is sent again with its key, and
// again, a second later, while the first is still served (409
// idempotency-in-progress); the kept answer, replayed, is its success.
// When the party's kept keys are exhausted, the message is sent without
// one, as the Go client does.
func TestConsoleSendsAgainWhileTheOutcomeIsUnknown(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	fake := &writesAPI{}
	a := openConsoleOn(t, fake)
	a.logInAnyToken(t)
	a.waitFor(t, "the party name", `document.getElementById('party-name').textContent === `+jsString(coalition), 15*time.Second)

	fillCompose(t, a, "unknown", "sent while the service could not tell")
	a.click(t, `#compose button[type=submit]`)
	a.waitFor(t, "the message said sent", `document.getElementById('compose-note').textContent === 'Sent: the first send had arrived; it was not sent twice.'`, 20*time.Second)
	keys := fake.sent()
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("the sends' Idempotency-Keys: %q, want three sends with one key", keys)
	}

	fillCompose(t, a, "exhausted", "sent without a key")
	a.click(t, `#compose button[type=submit]`)
	a.waitFor(t, "the message sent", `document.getElementById('compose-note').textContent === 'Sent.'`, 20*time.Second)
	if keys := fake.sent()[3:]; len(keys) != 2 || keys[0] == "" || keys[1] != "" {
		t.Errorf("the sends' Idempotency-Keys once the keys are exhausted: %q, want one with a key, then one without", keys)
	}
	if errs := eval[[]string](t, a, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}
