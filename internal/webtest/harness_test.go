package webtest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/web"
)

const chromiumPath = "/usr/bin/chromium"

var screenshotDir = flag.String("screenshots", "", "save the screenshots of the main views in this directory (e.g. ../../docs/screenshots)")

// backend is a running API with the console, and a token per party.
type backend struct {
	url      string
	tokens   map[string]string // party -> token
	operator string            // the operator's token
	svc      *service.Service
	st       store.Store // the service's store, for a test to write a history into
}

// call makes one API request as a party, straight to the backend (not
// through the proxy that the browser uses, so it works during an outage).
func (b *backend) call(t testing.TB, party, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	tok := b.tokens[party]
	if party == "operator" {
		tok = b.operator
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s as %s: %d %s", method, path, party, res.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}

// raw GETs path as a party (or the operator) and returns the body as it is.
func (b *backend) raw(t testing.TB, party, path string) []byte {
	t.Helper()
	req, err := http.NewRequest("GET", b.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := b.tokens[party]
	if party == "operator" {
		tok = b.operator
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s as %s: %d %v %.200s", path, party, res.StatusCode, err, data)
	}
	return data
}

// post sends body as a party to the backend and returns what went wrong,
// for goroutines other than the test's, which must not stop the test.
func (b *backend) post(party, path string, body any) error {
	buf, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", b.url+path, bytes.NewReader(buf))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.tokens[party])
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("POST %s as %s: %d %s", path, party, res.StatusCode, data)
	}
	return nil
}

// cutProxy stands between the browser and the backend so that a test can
// lose the connection (every request in flight aborted, new ones refused)
// and regain it.
type cutProxy struct {
	rp *httputil.ReverseProxy

	mu      sync.Mutex
	down    bool
	next    int
	cancels map[int]context.CancelFunc
	resumes []string // the Last-Event-ID of every /v1/events request
	// shiftResume is added to every Last-Event-ID passed on: the page
	// then resumes from an event the server does not have yet, as after
	// the server's store was restored from an older copy.
	shiftResume int64
}

func newCutProxy(target string) *cutProxy {
	u, err := url.Parse(target)
	if err != nil {
		panic(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return &cutProxy{rp: rp, cancels: map[int]context.CancelFunc{}}
}

func (p *cutProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		http.Error(w, "connection lost (test)", http.StatusBadGateway)
		return
	}
	if r.URL.Path == "/v1/events" {
		id := r.Header.Get("Last-Event-ID")
		p.resumes = append(p.resumes, id)
		if n, err := strconv.ParseInt(id, 10, 64); err == nil && p.shiftResume != 0 {
			r.Header.Set("Last-Event-ID", strconv.FormatInt(n+p.shiftResume, 10))
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	id := p.next
	p.next++
	p.cancels[id] = cancel
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.cancels, id)
		p.mu.Unlock()
		cancel()
	}()
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, cancel := range p.cancels {
		cancel()
	}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// restoreOlderCopy makes the server look as if its store had been
// restored from an older copy: every event id the page knows is beyond
// its last (see shiftResume).
func (p *cutProxy) restoreOlderCopy() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shiftResume = 1 << 40
}

func (p *cutProxy) resumeIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.resumes...)
}

// startBrowser starts headless Chromium as DESIGN.md says, with a fresh
// profile, and returns a context that owns it.
func startBrowser(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is not installed at %s (%v): run scripts/install-test-deps.sh", chromiumPath, err)
	}
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Both parties' pages must keep running while the other is in front.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1920, 1080),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// tab is one party's page with a record of every request that failed and,
// when inspected, of every response body it received.
type tab struct {
	ctx   context.Context
	party string

	mu       sync.Mutex
	bodies   map[network.RequestID]*bytes.Buffer
	urls     map[network.RequestID]string
	failures []string // "STATUS URL" or "ERROR URL", in order
}

// openTab opens a page for a party, recording every request that fails
// (an answer of 400 or more, or no answer) ; with inspect, it also records
// the body of every response the page receives.
func openTab(t testing.TB, browser context.Context, party string, inspect bool) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tb := &tab{ctx: ctx, party: party, bodies: map[network.RequestID]*bytes.Buffer{}, urls: map[network.RequestID]string{}}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	var params network.EnableParams
	if inspect {
		total, per := int64(200<<20), int64(50<<20)
		params = network.EnableParams{MaxTotalBufferSize: &total, MaxResourceBufferSize: &per}
	}
	if _, err := chromedp.Call(ctx, network.Enable, params); err != nil {
		t.Fatal(err)
	}
	// Subscribe before anything loads, then read in the background.
	responses := chromedp.Events(ctx, network.ResponseReceived)
	failed := chromedp.Events(ctx, network.LoadingFailed)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.urls[ev.RequestID] = ev.Request.URL
			tb.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range failed {
			if err != nil {
				return
			}
			// A request the page itself cancelled (an event stream it
			// reconnects, a poll it replaced) is not a failure.
			if ev.Canceled {
				continue
			}
			tb.mu.Lock()
			tb.failures = append(tb.failures, ev.ErrorText+" "+tb.urls[ev.RequestID])
			tb.mu.Unlock()
		}
	}()
	if !inspect {
		go func() {
			for ev, err := range responses {
				if err != nil {
					return
				}
				if ev.Response.Status >= 400 {
					tb.mu.Lock()
					tb.failures = append(tb.failures, fmt.Sprintf("%d %s", ev.Response.Status, ev.Response.URL))
					tb.mu.Unlock()
				}
			}
		}()
		return tb
	}
	chunks := chromedp.Events(ctx, network.DataReceived)
	finished := chromedp.Events(ctx, network.LoadingFinished)
	go func() {
		for ev, err := range responses {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.urls[ev.RequestID] = ev.Response.URL
			if ev.Response.Status >= 400 {
				tb.failures = append(tb.failures, fmt.Sprintf("%d %s", ev.Response.Status, ev.Response.URL))
			}
			tb.mu.Unlock()
			if ev.Response.MimeType != "text/event-stream" {
				continue
			}
			// A stream never finishes while the page is open: ask for its
			// bytes as they come.
			res, err := chromedp.Call(ctx, network.StreamResourceContent, network.StreamResourceContentParams{RequestID: ev.RequestID})
			if err != nil {
				continue
			}
			tb.add(ev.RequestID, res.BufferedData)
		}
	}()
	go func() {
		for ev, err := range chunks {
			if err != nil {
				return
			}
			if len(ev.Data) > 0 {
				tb.add(ev.RequestID, ev.Data)
			}
		}
	}()
	go func() {
		for ev, err := range finished {
			if err != nil {
				return
			}
			tb.mu.Lock()
			_, streamed := tb.bodies[ev.RequestID]
			tb.mu.Unlock()
			if streamed {
				continue
			}
			res, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: ev.RequestID})
			if err != nil {
				continue
			}
			tb.add(ev.RequestID, res.Body)
		}
	}()
	return tb
}

// failedRequests returns the requests that failed so far.
func (tb *tab) failedRequests() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.failures...)
}

// requested returns the URLs the page asked for so far.
func (tb *tab) requested() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, u := range tb.urls {
		out = append(out, u)
	}
	return out
}

func (tb *tab) add(id network.RequestID, data []byte) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	b := tb.bodies[id]
	if b == nil {
		b = &bytes.Buffer{}
		tb.bodies[id] = b
	}
	b.Write(data)
}

// received returns the URLs of the responses whose bodies contain s.
func (tb *tab) received(s string) []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var urls []string
	for id, b := range tb.bodies {
		if bytes.Contains(b.Bytes(), []byte(s)) {
			urls = append(urls, tb.urls[id])
		}
	}
	return urls
}

func (tb *tab) do(t testing.TB, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		page, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`location.href + ' ' + document.body.innerText.slice(0, 300)`))
		t.Fatalf("%s: %v\npage: %s", tb.party, err, page)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t testing.TB, tb *tab, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %s: %v", tb.party, expr, err)
	}
	return v
}

// click clicks an element in the page's own event loop: rows of the live
// lists can be replaced between a DevTools query and a DevTools click.
func (tb *tab) click(t testing.TB, selector string) {
	t.Helper()
	if !eval[bool](t, tb, `(() => { const e = document.querySelector(`+jsString(selector)+`); if (!e) return false; e.click(); return true; })()`) {
		t.Fatalf("%s: nothing to click at %s", tb.party, selector)
	}
}

// waitFor polls a JavaScript predicate until it is truthy.
func (tb *tab) waitFor(t testing.TB, what, predicate string, timeout time.Duration) {
	t.Helper()
	// The waits are limits for a page that never gets there, not
	// performance figures: double them so that a loaded CI machine does not
	// turn a slow page into a failure.
	timeout *= 2
	// The page enforces the timeout; the context is for a page that hangs.
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+15*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		sctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
		defer cancel()
		snap, _ := chromedp.Run(sctx, chromedp.Evaluate[string](`JSON.stringify(window.deconflict && window.deconflict.snapshot())`))
		t.Fatalf("%s: waiting for %s: %v\npage state: %s", tb.party, what, err, snap)
	}
}

func (tb *tab) screenshot(t testing.TB, name string) {
	t.Helper()
	if *screenshotDir == "" {
		return
	}
	buf, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(*screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*screenshotDir, name), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// openConsoleAlone opens the console's page in a fresh browser, served
// without an API: for tests that give its functions data themselves.
func openConsoleAlone(t testing.TB) *tab {
	srv := httptestServer(t, web.Handler())
	page := openTab(t, startBrowser(t), "nobody", false)
	page.do(t, chromedp.Navigate(srv.URL))
	return page
}

// openConsoleOn opens coalition's console in a fresh browser, its API
// answered by fake (a test's stand-in for the service), at the login form.
func openConsoleOn(t testing.TB, fake http.Handler) *tab {
	mux := http.NewServeMux()
	mux.Handle("/v1/", fake)
	mux.Handle("/", web.Handler())
	srv := httptestServer(t, mux)
	page := openTab(t, startBrowser(t), coalition, false)
	page.do(t, chromedp.EmulateViewport(1600, 1000), chromedp.Navigate(srv.URL))
	return page
}

// logInAnyToken logs the page in with a token that a fake API does not
// check.
func (tb *tab) logInAnyToken(t testing.TB) {
	tb.do(t, chromedp.SendKeys(chromedp.ID("token"), "any-token"), chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
}

// answerJSON answers v as JSON, with status code.
func answerJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// answerQuiet answers the reads the console makes on logging in as a
// quiet service would, for a fake API: coalition's party, the rules'
// version 1, and no proposal, volume or track. It is false, answering
// nothing, for any other request.
func answerQuiet(w http.ResponseWriter, r *http.Request) bool {
	var v any
	switch r.URL.Path {
	case "/v1/me":
		v = map[string]any{"party": coalition}
	case "/v1/rules":
		v = map[string]any{"version": 1}
	case "/v1/rules/proposals":
		v = map[string]any{"proposals": []any{}}
	case "/v1/volumes":
		v = map[string]any{"volumes": []any{}}
	case "/v1/tracks":
		v = map[string]any{"tracks": []any{}}
	default:
		return false
	}
	answerJSON(w, http.StatusOK, v)
	return true
}

// serveEvents answers a request for the event stream as a fake API: the
// snapshot, then each event sent on events (none when it is nil) until
// the page goes.
func serveEvents(w http.ResponseWriter, r *http.Request, snapshot []byte, events <-chan string) {
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", snapshot)
	w.(http.Flusher).Flush()
	for {
		select {
		case ev := <-events:
			fmt.Fprint(w, ev)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}
