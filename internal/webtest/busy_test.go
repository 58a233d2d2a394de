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

// busyAPI stands in for the service in front of the console: a party with
// two conflict alerts of its own aircraft in the stream's snapshot; the
// resolution of "busy" is refused once with 429 too-many-resolutions and
// Retry-After: 2, then answered; that of "broken" always fails with 500.
// It counts the requests for each resolution. With rateLimitTracks, the
// first request for the tracks is refused with 429 rate-limited (the
// party's request rate) and Retry-After: 3.
type busyAPI struct {
	rateLimitTracks bool

	mu     sync.Mutex
	asked  map[string]int // alert id -> resolution requests
	tracks int            // requests for the tracks
}

func (b *busyAPI) resolutions(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.asked[id]
}

// trackRequest counts a request for the tracks and returns how many
// there were.
func (b *busyAPI) trackRequest() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tracks++
	return b.tracks
}

func (b *busyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	ac := func(party, id string, lon float64) map[string]any {
		return map[string]any{"party": party, "aircraft": id, "callsign": strings.ToUpper(id), "lat": 34.0, "lon": lon, "alt_m": 9000.0}
	}
	alert := func(id string, lon float64) map[string]any {
		return map[string]any{
			"id": id, "kind": "conflict", "level": "warning", "time": now, "t_in_s": 90.0, "d_h_cpa_m": 200.0, "d_v_cpa_m": 0.0,
			"aircraft": []any{ac(coalition, "own-"+id, lon), ac(airgroup, "their-"+id, lon+0.02)},
		}
	}
	answer := func(code int, v any) { answerJSON(w, code, v) }
	switch p := r.URL.Path; {
	case p == "/v1/tracks" && b.trackRequest() == 1 && b.rateLimitTracks:
		w.Header().Set("Retry-After", "3")
		answer(http.StatusTooManyRequests, map[string]any{"type": "https://deconflict.dev/problems/rate-limited", "title": "Too many requests", "status": 429})
	case p == "/v1/events":
		snap, _ := json.Marshal(map[string]any{"id": 0, "time": now, "data": map[string]any{
			"alerts": []any{alert("busy", 37.0), alert("broken", 38.0)}, "messages": []any{}, "alerts_after": 0, "messages_after": 0,
		}})
		serveEvents(w, r, snap, nil)
	case strings.HasPrefix(p, "/v1/alerts/") && strings.HasSuffix(p, "/resolution"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/v1/alerts/"), "/resolution")
		b.mu.Lock()
		b.asked[id]++
		n := b.asked[id]
		b.mu.Unlock()
		switch {
		case id == "broken":
			answer(500, map[string]any{"type": "https://deconflict.dev/problems/internal", "title": "Internal error", "status": 500, "detail": "the resolver failed"})
		case n == 1:
			w.Header().Set("Retry-After", "2")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"type":"https://deconflict.dev/problems/too-many-resolutions","title":"Resolution budget spent","status":429}`))
		default:
			answer(200, map[string]any{"alert_id": id, "time": now, "aircraft": []any{map[string]any{
				"party": coalition, "aircraft": "own-" + id, "callsign": "OWN-" + strings.ToUpper(id),
				"intruder":   map[string]any{"party": airgroup, "aircraft": "their-" + id},
				"suggestion": map[string]any{"kind": "climb", "climb_m": 300.0, "alt_m": 9300.0},
				"bands": map[string]any{
					"track_deg": []any{map[string]any{"low": 0.0, "high": 360.0, "region": "NONE"}},
					"alt_m":     []any{map[string]any{"low": 8000.0, "high": 9200.0, "region": "NEAR"}, map[string]any{"low": 9200.0, "high": 12000.0, "region": "NONE"}},
				},
			}}})
		}
	default:
		if !answerQuiet(w, r) {
			http.NotFound(w, r)
		}
	}
}

// A resolution refused with 429 and Retry-After: 2 is not asked for again
// before the 2 s have passed (on the page's clock, which the test moves:
// no timing), the alert's row says meanwhile that it is busy and when it
// is asked again, and then shows the resolution. A resolution that cannot
// be had (500) is said so, not left blank. The console used to ask again at
// once, at every redraw, and to show nothing.
func TestConsoleWaitsOutARefusedResolution(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	fake := &busyAPI{asked: map[string]int{}}
	page := openBusyConsole(t, fake)

	busy := `li[data-alert-id="busy"]`
	broken := `li[data-alert-id="broken"]`
	page.waitFor(t, "the busy resolution said", `document.querySelector('`+busy+` .resolution-note[data-resolution="busy"]')?.textContent === 'Resolution busy, retrying in 2 s'`, 15*time.Second)
	page.waitFor(t, "the failed resolution said", `/^Resolution not available: the resolver failed/.test(document.querySelector('`+broken+` .resolution-note[data-resolution="failed"]')?.textContent || '')`, 15*time.Second)

	// Redraws (as events make them) and the clock up to just before the
	// Retry-After: nothing is asked again. Each step lets the page run
	// what it queued before looking.
	settle := `new Promise((resolve) => setTimeout(resolve, 0))`
	for _, step := range []string{`deconflict.refresh()`, `deconflict.advanceClock(1000)`, `deconflict.refresh()`, `deconflict.advanceClock(999)`, `deconflict.refresh()`} {
		if n := eval[int](t, page, `(async () => { `+step+`; await `+settle+`; await `+settle+`; return askedResolutions('busy'); })()`); n != 1 {
			t.Fatalf("after %s (within 2 s of the 429 on the page's clock): the resolution was asked for %d times, want once", step, n)
		}
	}
	if got := eval[string](t, page, `document.querySelector('`+busy+` .resolution-note').textContent`); got != "Resolution busy, retrying in 1 s" {
		t.Errorf("1.999 s after the refusal the row says %q", got)
	}
	if n := eval[int](t, page, `askedResolutions('broken')`); n != 1 {
		t.Errorf("the failed resolution was asked for %d times within 2 s, want once", n)
	}

	// The Retry-After has passed: asked again, once, and shown.
	page.do(t, chromedp.Evaluate[chromedp.Void](`deconflict.advanceClock(1)`))
	page.waitFor(t, "the resolution after the wait", `!!document.querySelector('`+busy+` .resolution-aircraft[data-aircraft="own-busy"] .suggestion')`, 15*time.Second)
	if got := eval[string](t, page, `document.querySelector('`+busy+` .suggestion').textContent`); !strings.Contains(got, "Climb 300 m to 9,300 m") {
		t.Errorf("the resolution shown: %q", got)
	}
	if eval[bool](t, page, `!!document.querySelector('`+busy+` .resolution-note')`) {
		t.Errorf("the row still says %q with the resolution shown", eval[string](t, page, `document.querySelector('`+busy+` .resolution-note').textContent`))
	}
	if n := fake.resolutions("busy"); n != 2 {
		t.Errorf("the service was asked for the resolution %d times, want 2 (refused, then answered)", n)
	}
	if errs := eval[[]string](t, page, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}

// openBusyConsole logs a page in to the console in front of fake, the
// page recording what it asks (window.asked, the URLs given to fetch, which
// is called as a request is made) and its waits of refusals on a clock
// that moves only when the test says (deconflict.advanceClock).
func openBusyConsole(t *testing.T, fake *busyAPI) *tab {
	page := openConsoleOn(t, fake)
	page.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		deconflict.useManualClock();
		window.askedResolutions = (id) => window.asked.filter((u) => u.endsWith('/v1/alerts/' + id + '/resolution')).length;
		window.askedTracks = () => window.asked.filter((u) => u.startsWith('/v1/tracks?')).length;
		window.asked = [];
		const f = window.fetch.bind(window);
		window.fetch = (u, o) => { window.asked.push(String(u)); return f(u, o); };
	})()`))
	page.logInAnyToken(t)
	return page
}

// The tracks, polled every second, refused with 429 rate-limited and
// Retry-After: 3: not polled again before the 3 s have passed (on the
// page's clock), the connection's line saying meanwhile that the tracks
// are busy and when they are asked again, then live again. The console
// used to poll on every second and say only "tracks delayed".
func TestConsoleWaitsOutARefusedTrackPoll(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	fake := &busyAPI{asked: map[string]int{}, rateLimitTracks: true}
	page := openBusyConsole(t, fake)
	page.waitFor(t, "the busy tracks said", `document.getElementById('conn-text').textContent === 'Live events, tracks busy, retrying in 3 s'`, 15*time.Second)
	// A refusal of the party's request rate holds every request: the
	// resolutions of the alerts (some may have been asked before the
	// refusal came) are not asked meanwhile either.
	resolutions := `askedResolutions('busy') + askedResolutions('broken')`
	before := eval[int](t, page, resolutions)
	settle := `new Promise((resolve) => setTimeout(resolve, 0))`
	for _, step := range []string{`deconflict.advanceClock(1000)`, `deconflict.advanceClock(1000)`, `deconflict.advanceClock(999)`} {
		if n := eval[int](t, page, `(async () => { `+step+`; await `+settle+`; await `+settle+`; return askedTracks(); })()`); n != 1 {
			t.Fatalf("after %s (within 3 s of the 429 on the page's clock): the tracks were asked for %d times, want once", step, n)
		}
	}
	if got := eval[string](t, page, `document.getElementById('conn-text').textContent`); got != "Live events, tracks busy, retrying in 1 s" {
		t.Errorf("2.999 s after the refusal the connection's line says %q", got)
	}
	if n := eval[int](t, page, resolutions); n != before {
		t.Errorf("%d resolutions asked for while the request rate refused", n-before)
	}
	page.do(t, chromedp.Evaluate[chromedp.Void](`deconflict.advanceClock(1)`))
	page.waitFor(t, "the tracks live again", `document.getElementById('conn-text').textContent === 'Live'`, 15*time.Second)
	if errs := eval[[]string](t, page, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}

// The wait after a refusal: Retry-After in seconds or as an HTTP date,
// capped at a minute, at least a second, 5 s when missing or unreadable.
func TestConsoleRetryAfterWaits(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	page := openConsoleAlone(t)
	// An HTTP date is made in the page, from its clock, in the same
	// script that reads it: to the whole second below, so that it reads
	// as up to a second less.
	in := func(d time.Duration) string {
		return fmt.Sprintf("new Date(Date.now() + %d).toUTCString()", d.Milliseconds())
	}
	for _, c := range []struct {
		header  string // a JavaScript expression
		wantMs  int
		dateish bool
	}{
		{jsString("2"), 2000, false},
		{jsString(" 7 "), 7000, false},
		{jsString("0"), 1000, false},
		{jsString("86400"), 60000, false},
		{jsString("99999999999999999999"), 60000, false},
		{in(30 * time.Second), 30000, true},
		{in(-time.Hour), 1000, false},
		{in(48 * time.Hour), 60000, false},
		{"null", 5000, false},
		{jsString(""), 5000, false},
		{jsString("soon"), 5000, false},
		{jsString("-3"), 5000, false},
	} {
		got := eval[int](t, page, `deconflict.retryWaitMs(`+c.header+`)`)
		if got != c.wantMs && !(c.dateish && got == c.wantMs-1000) {
			t.Errorf("Retry-After %s: waits %d ms, want %d", c.header, got, c.wantMs)
		}
	}
}
