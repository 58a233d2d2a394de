package webtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/deconflict/deconflict/internal/timeline"
)

// aircraft is one simulated aircraft of the test feed, flying straight.
type aircraft struct {
	party, id, callsign string
	class               string // "" for manned
	lat, lon, altM      float64
	velEastMps          float64
	velNorthMps         float64
	since               time.Time
}

func (a aircraft) report(now time.Time) map[string]any {
	dt := now.Sub(a.since).Seconds()
	const mPerDeg = 111320.0
	lat := a.lat + a.velNorthMps*dt/mPerDeg
	lon := a.lon + a.velEastMps*dt/(mPerDeg*math.Cos(a.lat*math.Pi/180))
	r := map[string]any{
		"aircraft": a.id, "callsign": a.callsign, "time": now.UTC().Format(time.RFC3339Nano),
		"lat": lat, "lon": lon, "alt_m": a.altM, "vel_east_mps": a.velEastMps, "vel_north_mps": a.velNorthMps, "vel_up_mps": 0.0,
	}
	if a.class != "" {
		r["class"] = a.class
	}
	return r
}

// feeder reports every aircraft of the test every second, as a party's
// feed would, so that no track goes stale while the test runs.
type feeder struct {
	t    *testing.T
	be   *backend
	mu   sync.Mutex
	list []aircraft
	stop chan struct{}
	done chan struct{}
}

func startFeeder(t *testing.T, be *backend) *feeder {
	f := &feeder{t: t, be: be, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-tick.C:
				f.post()
			}
		}
	}()
	t.Cleanup(func() {
		close(f.stop)
		<-f.done
	})
	return f
}

func (f *feeder) add(list ...aircraft) {
	f.mu.Lock()
	now := time.Now()
	for _, a := range list {
		a.since = now
		f.list = append(f.list, a)
	}
	f.mu.Unlock()
	f.post()
}

func (f *feeder) post() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	by := map[string][]map[string]any{}
	for _, a := range f.list {
		by[a.party] = append(by[a.party], a.report(now))
	}
	for party, reports := range by {
		f.be.call(f.t, party, "POST", "/v1/positions", map[string]any{"reports": reports}, nil)
	}
}

const (
	coalition = "coalition"
	airgroup  = "airgroup"
	// Private details of each party's volume: the other party's page must
	// never receive them.
	secretCoalition = "SECRET-COALITION-7f3a"
	secretAirgroup  = "SECRET-AIRGROUP-19c2"
)

func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	be := startBackend(t)
	proxy := newCutProxy(be.url)
	front := httptestServer(t, proxy)
	browser := startBrowser(t)

	now := time.Now().UTC()
	window := map[string]any{"start": now.Add(-time.Hour).Format(time.RFC3339), "end": now.Add(3 * time.Hour).Format(time.RFC3339)}
	be.call(t, coalition, "POST", "/v1/volumes", map[string]any{
		"footprint":   map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{36.0, 35.0}, {36.6, 35.0}, {36.6, 35.5}, {36.0, 35.5}, {36.0, 35.0}}}},
		"alt_lower_m": 3000, "alt_upper_m": 9000, "start": window["start"], "end": window["end"], "priority": 0, "state": "accepted",
		"details": map[string]any{"mission": secretCoalition}, "key": []any{},
	}, nil)
	be.call(t, airgroup, "POST", "/v1/volumes", map[string]any{
		"footprint":   map[string]any{"type": "Circle", "center": []float64{37.8, 34.0}, "radius_m": 30000},
		"alt_lower_m": 8000, "alt_upper_m": 12000, "start": window["start"], "end": window["end"], "priority": 0, "state": "accepted",
		"details": map[string]any{"mission": secretAirgroup}, "key": []any{},
	}, nil)

	feed := startFeeder(t, be)
	var traffic []aircraft
	for i := range 3 {
		traffic = append(traffic,
			aircraft{party: coalition, id: fmt.Sprintf("CO-%d", i+1), callsign: fmt.Sprintf("VIPER%d", i+1), lat: 35.0 + 0.2*float64(i), lon: 36.0, altM: 6000, velEastMps: 200},
			// Within 50 NM and 10,000 ft of the coalition's aircraft, so
			// that each party's page shows the other's (need to know).
			aircraft{party: airgroup, id: fmt.Sprintf("AG-%d", i+1), callsign: fmt.Sprintf("SU24-%d", i+1), lat: 34.6 + 0.2*float64(i), lon: 36.75, altM: 8500, velNorthMps: 150},
		)
	}
	feed.add(traffic...)

	a := openTab(t, browser, coalition, true)
	b := openTab(t, browser, airgroup, true)

	t.Run("login", func(t *testing.T) {
		var rules struct {
			Version int `json:"version"`
		}
		be.call(t, coalition, "GET", "/v1/rules", nil, &rules)
		a.do(t, chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(front.URL))
		a.screenshot(t, "login.png")
		checkAccessible(t, a, "login")
		// The one request of the page that is meant to fail: the refused
		// token below.
		if f := a.failedRequests(); len(f) > 0 {
			t.Errorf("the login page: failed requests %q", f)
		}
		a.do(t, chromedp.Evaluate[chromedp.Void](`document.getElementById('token').value = 'not-a-token'; document.getElementById('login-form').requestSubmit()`))
		a.waitFor(t, "the refusal", `document.getElementById('login-error').textContent.includes('not valid')`, 10*time.Second)
		if got := eval[string](t, a, `String(sessionStorage.getItem('deconflict.token'))`); got != "null" {
			t.Errorf("a refused token stays in session storage: %q", got)
		}
		a.do(t, chromedp.Evaluate[chromedp.Void](`document.getElementById('token').value = ''`))
		// By mouse for one party, by keyboard for the other.
		a.do(t, chromedp.SendKeys(chromedp.ID("token"), be.tokens[coalition]), chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
		b.do(t, chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(front.URL), chromedp.Focus(chromedp.ID("token")), chromedp.SendKeys(chromedp.ID("token"), be.tokens[airgroup]+kb.Enter))
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the party name", `document.getElementById('party-name').textContent === `+jsString(tb.party), 15*time.Second)
			tb.waitFor(t, "the rules version", fmt.Sprintf(`document.getElementById('rules-version').textContent === 'v%d'`, rules.Version), 10*time.Second)
			if loc := eval[string](t, tb, `location.href`); strings.Contains(loc, be.tokens[tb.party]) {
				t.Errorf("%s: the token is in the URL %s", tb.party, loc)
			}
			if got := eval[string](t, tb, `sessionStorage.getItem('deconflict.token')`); got != be.tokens[tb.party] {
				t.Errorf("%s: session storage has %q", tb.party, got)
			}
			// Outside session storage the page may keep only the log key it
			// pinned (record.js: public, and it must outlive the session to
			// notice a changed log key); never the token, never a cookie.
			kept := eval[[]string](t, tb, `Object.keys(localStorage).filter((k) => !k.startsWith('deconflict.log-vkey:'))`)
			if len(kept) > 0 || eval[string](t, tb, `document.cookie`) != "" {
				t.Errorf("%s: the page kept something outside session storage: %q, cookie %q", tb.party, kept, eval[string](t, tb, `document.cookie`))
			}
			if eval[bool](t, tb, `Object.values(localStorage).some((v) => v.includes(`+jsString(be.tokens[tb.party])+`))`) {
				t.Errorf("%s: the token is in local storage", tb.party)
			}
		}
	})

	t.Run("sees the other party's aircraft", func(t *testing.T) {
		a.waitFor(t, "airgroup aircraft drawn", `(deconflict.snapshot().drawn?.byParty.airgroup || 0) >= 3 && (deconflict.snapshot().drawn?.byParty.coalition || 0) >= 3`, 15*time.Second)
		b.waitFor(t, "coalition aircraft drawn", `(deconflict.snapshot().drawn?.byParty.coalition || 0) >= 3 && (deconflict.snapshot().drawn?.byParty.airgroup || 0) >= 3`, 15*time.Second)
		// Every aircraft of the test moves: each has its heading vector, and
		// after a few reports a trail.
		a.waitFor(t, "heading vectors and trails", `deconflict.snapshot().drawn.headings === deconflict.snapshot().drawn.tracks && deconflict.snapshot().drawn.trails >= 6`, 15*time.Second)
		a.waitFor(t, "the track summary", `document.getElementById('track-summary').textContent.includes('airgroup 3')`, 10*time.Second)
		a.waitFor(t, "both volumes drawn", `deconflict.snapshot().drawn?.volumes === 2`, 10*time.Second)
	})

	t.Run("shows only disclosed tracks", func(t *testing.T) {
		// An airgroup aircraft inside the coalition's view, in its own
		// volume (so no alert concerns everyone), more than 10,000 ft
		// above every coalition aircraft and volume: need to know hides
		// it from the coalition, its own page shows it.
		feed.add(aircraft{party: airgroup, id: "AG-HIDDEN", callsign: "HIDDEN1", lat: 34.0, lon: 37.8, altM: 11800})
		a.do(t, chromedp.Evaluate[chromedp.Void](`deconflict.centerOn(37.8, 34.0)`))
		b.do(t, chromedp.Evaluate[chromedp.Void](`deconflict.centerOn(37.8, 34.0)`))
		b.waitFor(t, "its own hidden aircraft drawn", `deconflict.snapshot().trackKeys.includes('airgroup/AG-HIDDEN')`, 15*time.Second)
		// A few more polls of the coalition's page, then look.
		time.Sleep(3 * time.Second)
		if eval[bool](t, a, `deconflict.snapshot().trackKeys.includes('airgroup/AG-HIDDEN')`) {
			t.Errorf("coalition's page draws AG-HIDDEN, which need to know hides from it")
		}
		if !eval[bool](t, a, `deconflict.snapshot().trackKeys.some(k => k.startsWith('airgroup/'))`) {
			t.Errorf("coalition's page draws no airgroup aircraft at all: the check proves nothing")
		}
		for _, secret := range []string{"AG-HIDDEN", "HIDDEN1"} {
			if got := a.received(secret); len(got) > 0 {
				t.Errorf("coalition's page received %q in %v", secret, got)
			}
		}
		if len(b.received("AG-HIDDEN")) == 0 {
			t.Errorf("airgroup's page never received its own AG-HIDDEN: the inspection saw nothing")
		}
	})

	t.Run("loads with no failed request and no script error", func(t *testing.T) {
		// Everything a page loads by now: the page, its script, style, icon
		// and atlas, the party, the rules, volumes, tracks and events.
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "live", `document.getElementById('conn').dataset.state === 'live'`, 10*time.Second)
			failed := tb.failedRequests()
			if tb == a {
				// The token refused on purpose at login.
				failed = slices.DeleteFunc(failed, func(f string) bool { return f == "401 "+front.URL+"/v1/me" })
			}
			if len(failed) > 0 {
				t.Errorf("%s: failed requests %q", tb.party, failed)
			}
			if errs := eval[[]string](t, tb, `deconflict.snapshot().errors`); len(errs) > 0 {
				t.Errorf("%s: script errors %q", tb.party, errs)
			}
			// Headless Chromium asks for no icon, but a browser does: the
			// page names its own (else /favicon.ico would answer 404), and
			// it is served. (Read from the text: the page's policy lets no
			// string be parsed as HTML, DOMParser's included.)
			icon := eval[string](t, tb, `fetch('/').then(r => r.text()).then(html => {
				const href = (/<link rel="icon"[^>]*\shref="([^"]+)"/.exec(html) || [])[1];
				return href ? fetch(href).then(r => r.status + ' ' + r.headers.get('content-type')) : 'no icon';
			})`)
			if icon != "200 image/svg+xml" {
				t.Errorf("%s: the page's icon: %s", tb.party, icon)
			}
			asked := strings.Join(tb.requested(), " ")
			for _, want := range []string{"/app-", "/style-", "/countries-50m-", "/v1/me", "/v1/rules", "/v1/volumes", "/v1/tracks", "/v1/events"} {
				if !strings.Contains(asked, want) {
					t.Errorf("%s: the page never asked for %s (it asked for %s): the check above saw nothing of it", tb.party, want, asked)
				}
			}
		}
	})

	t.Run("volume tooltip and time slider", func(t *testing.T) {
		pt := eval[map[string]float64](t, a, `deconflict.screenOf(37.8, 34.0)`)
		a.do(t, chromedp.MouseEvent(chromedp.MouseMoved, pt["x"], pt["y"]))
		a.waitFor(t, "the volume tooltip", `!document.getElementById('tooltip').hidden && document.getElementById('tooltip').textContent.includes('airgroup')`, 10*time.Second)
		tip := eval[string](t, a, `document.getElementById('tooltip').textContent`)
		if !strings.Contains(tip, "FL262") || !strings.Contains(tip, "FL394") || !strings.Contains(tip, now.Add(3*time.Hour).Format("15:04")) {
			t.Errorf("tooltip of the airgroup volume lacks its band or window: %q", tip)
		}
		a.do(t, chromedp.SetValue(chromedp.ID("time-slider"), "300"), chromedp.Evaluate[chromedp.Void](`document.getElementById('time-slider').dispatchEvent(new Event('input'))`))
		a.waitFor(t, "no volume active in 5 h", `deconflict.snapshot().drawn?.volumes === 0`, 10*time.Second)
		a.do(t, chromedp.Click(chromedp.ID("time-now")))
		a.waitFor(t, "volumes back at now", `deconflict.snapshot().drawn?.volumes === 2`, 10*time.Second)
	})

	var alertID, meetingVolume string
	t.Run("conflict appears from injected positions", func(t *testing.T) {
		// The coalition's operator turns the sound on (it is off by
		// default); the airgroup's leaves it off.
		for _, tb := range []*tab{a, b} {
			if eval[bool](t, tb, `document.getElementById('sound').checked`) {
				t.Errorf("%s: the sound is on by default", tb.party)
			}
		}
		a.do(t, chromedp.Click(chromedp.ID("sound")))
		// Head on, 32 km apart, closing at 440 m/s: loss of separation in
		// about 50 s, a warning from the start, so that its level (and with
		// it the hotline item to acknowledge) stays the same while the test
		// runs.
		// AG-9 flies in a volume of the airgroup's (5 NM clear of the
		// coalition's, so that they do not conflict), lit with the two
		// aircraft when the alert is selected.
		var meeting struct {
			ID string `json:"id"`
		}
		be.call(t, airgroup, "POST", "/v1/volumes", map[string]any{
			"footprint":   map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{36.75, 35.3}, {37.1, 35.3}, {37.1, 35.7}, {36.75, 35.7}, {36.75, 35.3}}}},
			"alt_lower_m": 7000, "alt_upper_m": 8000, "start": window["start"], "end": window["end"], "priority": 0, "state": "accepted",
			"details": map[string]any{"mission": secretAirgroup}, "key": []any{},
		}, &meeting)
		meetingVolume = meeting.ID
		feed.add(
			aircraft{party: coalition, id: "CO-9", callsign: "VIPER9", lat: 35.5, lon: 36.625, altM: 7500, velEastMps: 220},
			aircraft{party: airgroup, id: "AG-9", callsign: "SU24-9", lat: 35.5, lon: 36.975, altM: 7500, velEastMps: -220},
		)
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the conflict alert", `deconflict.snapshot().alerts.some(x => x.kind === 'conflict' && x.aircraft.includes('CO-9') && x.aircraft.includes('AG-9'))`, 20*time.Second)
			tb.waitFor(t, "the alert row", `[...document.querySelectorAll('#alerts li')].some(li => li.textContent.includes('VIPER9') && li.textContent.includes('SU24-9') && /LoS (in \d+:\d\d|now)/.test(li.textContent))`, 10*time.Second)
			tb.waitFor(t, "the predicted paths drawn", `deconflict.snapshot().drawn?.conflicts >= 1`, 10*time.Second)
		}
		alertID = eval[string](t, a, `String(deconflict.snapshot().alerts.find(x => x.aircraft.includes('CO-9')).id)`)
		// A new warning is announced in the live region, with a sound only
		// where it was turned on.
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the warning announced", `deconflict.snapshot().announced.some(s => s.startsWith('WARNING') && s.includes('VIPER9') && s.includes('SU24-9'))`, 10*time.Second)
			tb.waitFor(t, "the live region", `document.getElementById('announcer').textContent.includes('VIPER9')`, 10*time.Second)
		}
		if got := eval[int](t, a, `deconflict.snapshot().beeps`); got < 1 {
			t.Errorf("coalition turned the sound on and heard %d beeps for a new warning", got)
		}
		if got := eval[int](t, b, `deconflict.snapshot().beeps`); got != 0 {
			t.Errorf("airgroup left the sound off and heard %d beeps", got)
		}
		// Each row counts down to the deadline of its acknowledgment.
		a.waitFor(t, "the deadline on the row", `/deadline in \d+:\d\d/.test(document.querySelector('#alerts li[data-alert-id="`+alertID+`"] .deadline').textContent)`, 10*time.Second)
		// It turns red in the last third of its period, and says so in
		// words: the countdowns of the page drawn as at half, a quarter and
		// past the end of the period.
		type shown struct {
			Text   string `json:"text"`
			Urgent bool   `json:"urgent"`
			Colour string `json:"colour"`
		}
		at := func(leftOfPeriod float64) shown {
			return eval[shown](t, a, fmt.Sprintf(`(() => {
				const s = document.querySelector('#alerts li[data-alert-id="%s"] .deadline');
				deconflict.renderDeadlinesAt(Number(s.dataset.deadlineAt) - %g * Number(s.dataset.deadlinePeriod));
				return {text: s.textContent, urgent: s.classList.contains('urgent'), colour: getComputedStyle(s).color};
			})()`, alertID, leftOfPeriod))
		}
		red := func(colour string) bool {
			var r, g, b int
			_, err := fmt.Sscanf(colour, "rgb(%d, %d, %d)", &r, &g, &b)
			return err == nil && r > 200 && g < 140 && b < 140
		}
		calm, last, over := at(0.5), at(0.25), at(-0.1)
		if calm.Urgent || red(calm.Colour) || strings.Contains(calm.Text, "urgent") {
			t.Errorf("half the period left: %+v, want it calm", calm)
		}
		for _, s := range []shown{last, over} {
			if !s.Urgent || !red(s.Colour) || !strings.Contains(s.Text, "(urgent)") {
				t.Errorf("in the last third: %+v, want it red and marked urgent", s)
			}
		}
		if !strings.Contains(over.Text, "overdue") {
			t.Errorf("past the deadline: %q", over.Text)
		}
		a.waitFor(t, "the two aircraft on the map", `(deconflict.snapshot().drawn?.byParty.coalition || 0) >= 4 && (deconflict.snapshot().drawn?.byParty.airgroup || 0) >= 4`, 10*time.Second)
		// Clicking the alert centres the map between the two aircraft.
		a.do(t, chromedp.Evaluate[chromedp.Void](`deconflict.centerOn(30, 30, 0)`))
		a.click(t, `#alerts li[data-alert-id="`+alertID+`"] .alert-main`)
		view := eval[map[string]float64](t, a, `deconflict.snapshot().view`)
		if math.Abs(view["lat"]-35.5) > 0.3 || math.Abs(view["lon"]-36.8) > 0.5 {
			t.Errorf("after clicking the alert the map is centred on %v, want near 35.5N 36.8E", view)
		}
		a.screenshot(t, "console-conflict.png")
		checkAccessible(t, a, "map with alerts")
	})

	t.Run("the alert shows the resolution of the party's own aircraft", func(t *testing.T) {
		// Each party's row shows its own aircraft's suggestion and bands,
		// the other's aircraft only as the intruder; the suggestion is the
		// one the API gives that party.
		row := `#alerts li[data-alert-id="` + alertID + `"]`
		for tb, own := range map[*tab][2]string{a: {"CO-9", "AG-9"}, b: {"AG-9", "CO-9"}} {
			tb.waitFor(t, "the resolution under the alert", `document.querySelector('`+row+` .resolution-aircraft[data-aircraft="`+own[0]+`"] .suggestion') !== null`, 20*time.Second)
			if eval[bool](t, tb, `document.querySelector('`+row+` .resolution-aircraft[data-aircraft="`+own[1]+`"]') !== null`) {
				t.Errorf("%s's page shows the bands of the other party's %s", tb.party, own[1])
			}
			text := eval[string](t, tb, `document.querySelector('`+row+` .resolution').textContent`)
			if !regexp.MustCompile(`(Turn (right|left) \d+° to track \d{3}°|Climb [\d,]+ m to|Descend [\d,]+ m to|Maintain)`).MatchString(text) {
				t.Errorf("%s: the suggestion does not say what to do: %q", tb.party, text)
			}
			if !regexp.MustCompile(`Track.*free (\d{3}°–\d{3}°|none)`).MatchString(text) || !regexp.MustCompile(`Altitude.*free `).MatchString(text) {
				t.Errorf("%s: the bands do not name the free ranges: %q", tb.party, text)
			}
			// The current track (east for CO-9, west for AG-9) is in
			// conflict: a strip shows a conflicting segment.
			if !eval[bool](t, tb, `document.querySelector('`+row+` [data-band="Track"] .band-warning, `+row+` [data-band="Track"] .band-caution, `+row+` [data-band="Track"] .band-advisory') !== null`) {
				t.Errorf("%s: the track strip shows no conflicting range", tb.party)
			}
			var res struct {
				Aircraft []struct {
					Aircraft   string
					Suggestion *struct{ Kind string }
				}
			}
			be.call(t, tb.party, "GET", "/v1/alerts/"+alertID+"/resolution", nil, &res)
			if len(res.Aircraft) != 1 || res.Aircraft[0].Aircraft != own[0] || res.Aircraft[0].Suggestion == nil {
				t.Fatalf("%s: the API's resolution %+v", tb.party, res)
			}
			if got := eval[string](t, tb, `document.querySelector('`+row+` .suggestion').dataset.kind`); got != res.Aircraft[0].Suggestion.Kind {
				t.Errorf("%s: the page suggests %q, the API %q", tb.party, got, res.Aircraft[0].Suggestion.Kind)
			}
		}
		a.screenshot(t, "console-resolution.png")
	})

	t.Run("the title counts what waits for my acknowledgment", func(t *testing.T) {
		for _, tb := range []*tab{a, b} {
			titleCounts(t, tb, be)
		}
	})

	t.Run("acknowledgment by keyboard reaches the other party", func(t *testing.T) {
		row := `#alerts li[data-alert-id="` + alertID + `"]`
		a.waitFor(t, "an Acknowledge button", `document.querySelector('`+row+` button.ack') !== null`, 10*time.Second)
		before := eval[int](t, a, `deconflict.snapshot().waiting`)
		// Without the mouse: into the list, down to the alert with the
		// arrow keys (which highlights it on the map), A to acknowledge.
		a.do(t, chromedp.Focus(chromedp.CSS(`#alerts li:first-child .alert-main`)))
		for i := 0; i < 20 && eval[string](t, a, `String(document.activeElement.closest('li[data-alert-id]')?.dataset.alertId)`) != alertID; i++ {
			a.do(t, chromedp.KeyEvent(kb.ArrowDown))
		}
		if got := eval[string](t, a, `String(document.activeElement.closest('li[data-alert-id]')?.dataset.alertId)`); got != alertID {
			t.Fatalf("the arrow keys never reached alert %s (focus on %s)", alertID, got)
		}
		// Its two aircraft and the volume AG-9 flies in highlighted, every
		// other one dimmed.
		a.waitFor(t, "the focused alert highlighted on the map", `deconflict.snapshot().selectedAlert === `+jsString(alertID)+` && deconflict.snapshot().drawn.dimmed > 0 &&
			JSON.stringify(deconflict.snapshot().drawn.lit.slice().sort()) === '["airgroup/AG-9","coalition/CO-9"]' &&
			deconflict.snapshot().drawn.dimmed === deconflict.snapshot().drawn.tracks - 2 &&
			JSON.stringify(deconflict.snapshot().drawn.litVolumes) === `+jsString(`["`+meetingVolume+`"]`)+` && deconflict.snapshot().drawn.volumes > 1`, 10*time.Second)
		a.do(t, chromedp.KeyEvent("a"))
		a.waitFor(t, "the own acknowledgment", `document.querySelector('`+row+` .ack-state').textContent.includes('coalition: acknowledged')`, 10*time.Second)
		b.waitFor(t, "coalition's acknowledgment on airgroup's page", `document.querySelector('`+row+` .ack-state').textContent.includes('coalition: acknowledged')`, 10*time.Second)
		if eval[bool](t, a, `document.querySelector('`+row+` button.ack') !== null`) {
			t.Errorf("coalition can still acknowledge what it acknowledged")
		}
		if !eval[bool](t, b, `document.querySelector('`+row+` button.ack') !== null`) {
			t.Errorf("airgroup lost its own Acknowledge button when coalition acknowledged")
		}
		a.waitFor(t, "one item fewer in the title", fmt.Sprintf(`deconflict.snapshot().waiting < %d`, before), 10*time.Second)
		titleCounts(t, a, be)
		// The focus stays in the list, on the alert acknowledged.
		if got := eval[string](t, a, `String(document.activeElement.closest('li[data-alert-id]')?.dataset.alertId)`); got != alertID {
			t.Errorf("after acknowledging, the focus is on %q, not on the alert", got)
		}
		a.do(t, chromedp.KeyEvent(kb.Escape))
		a.waitFor(t, "nothing highlighted after Escape", `deconflict.snapshot().selectedAlert === '' && deconflict.snapshot().drawn.dimmed === 0 && deconflict.snapshot().drawn.lit.length === 0 && deconflict.snapshot().drawn.litVolumes.length === 0`, 10*time.Second)
	})

	t.Run("a drone: its class, its mark and its DO-365 alert", func(t *testing.T) {
		// An airgroup reconnaissance drone and a coalition jet head on at
		// the same height, 10 km apart closing at 230 m/s: their pair is
		// judged by DO-365 well clear (the manned-uas entry), whose
		// modified tau is within 35 s at once.
		feed.add(
			aircraft{party: coalition, id: "CO-7", callsign: "VIPER7", lat: 35.2, lon: 36.2, altM: 6000, velEastMps: 200},
			aircraft{party: airgroup, id: "AG-UAV", callsign: "FORPOST1", class: "uas", lat: 35.2, lon: 36.31, altM: 6000, velEastMps: -30},
		)
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the drone's alert with its separation", `[...document.querySelectorAll('#alerts li')].some(li => li.textContent.includes('FORPOST1 UAS') && li.querySelector('.alert-sep') && li.querySelector('.alert-sep').textContent.includes('manned–uas: DO-365 well clear, DTHR 1222.32 m, ZTHR'))`, 20*time.Second)
		}
		a.waitFor(t, "the drone drawn smaller", `deconflict.snapshot().drawn?.drones >= 1`, 10*time.Second)
		a.do(t, chromedp.Evaluate[chromedp.Void](`deconflict.centerOn(36.3, 35.2)`))
		a.waitFor(t, "the drone on screen", `deconflict.snapshot().trackKeys.includes('airgroup/AG-UAV')`, 10*time.Second)
		for attempt := 0; ; attempt++ {
			// The drone moves: aim at where it is now.
			tr := eval[map[string]float64](t, a, `deconflict.trackScreen('airgroup/AG-UAV')`)
			a.do(t, chromedp.MouseEvent(chromedp.MouseMoved, tr["x"], tr["y"]))
			tip := eval[string](t, a, `document.getElementById('tooltip').hidden ? '' : document.getElementById('tooltip').textContent`)
			if strings.Contains(tip, "FORPOST1 (AG-UAV) · airgroup · uas") {
				break
			}
			if attempt == 20 {
				t.Fatalf("the drone's tooltip does not name its class: %q", tip)
			}
			time.Sleep(200 * time.Millisecond)
		}
		a.screenshot(t, "console-drone.png")
	})

	t.Run("hotline compose and acknowledge", func(t *testing.T) {
		a.do(t,
			chromedp.SendKeys(chromedp.ID("compose-to"), airgroup),
			chromedp.SendKeys(chromedp.ID("compose-thread"), "ops-1"),
			chromedp.SendKeys(chromedp.ID("compose-text"), "Request: keep FL240 clear east of 37E"),
			chromedp.Click(chromedp.CSS(`#compose button[type=submit]`)),
		)
		b.waitFor(t, "the thread", `document.querySelector('#threads button[data-thread="coalition/ops-1"]') !== null`, 10*time.Second)
		b.click(t, `#threads button[data-thread="coalition/ops-1"]`)
		b.waitFor(t, "the message", `document.getElementById('messages').textContent.includes('keep FL240 clear')`, 10*time.Second)
		a.waitFor(t, "airgroup still to acknowledge", `document.getElementById('messages').textContent.includes('airgroup: waiting')`, 10*time.Second)
		b.click(t, `#messages button.ack`)
		a.waitFor(t, "airgroup's acknowledgment", `document.getElementById('messages').textContent.includes('airgroup: acknowledged')`, 10*time.Second)
		// A reply in the thread picked: the form names the thread and
		// fills in whom to, with the thread's key out of sight.
		b.waitFor(t, "the reply form", `document.getElementById('compose-thread-row').hidden && document.getElementById('compose-context').textContent === 'Replying in “coalition/ops-1”' && document.getElementById('compose-to').value === 'coalition'`, 10*time.Second)
		b.do(t, chromedp.SendKeys(chromedp.ID("compose-text"), "Wilco, FL240 clear east of 37E"), chromedp.Click(chromedp.CSS(`#compose button[type=submit]`)))
		a.waitFor(t, "the reply in the thread", `deconflict.snapshot().messages.some(m => m.thread === 'coalition/ops-1' && m.text === 'Wilco, FL240 clear east of 37E')`, 10*time.Second)
		b.screenshot(t, "console-hotline.png")
		checkAccessible(t, b, "hotline thread")
	})

	t.Run("resumes after a lost connection with nothing missing", func(t *testing.T) {
		proxy.cut()
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the lost connection shown", `document.getElementById('conn').dataset.state === 'reconnecting'`, 10*time.Second)
		}
		a.screenshot(t, "console-reconnecting.png")
		// While both pages are cut off: a message, a new conflict, and an
		// acknowledgment by the other party.
		be.call(t, airgroup, "POST", "/v1/hotline/messages", map[string]any{"to": []string{coalition}, "kind": "notice", "thread": airgroup + "/outage", "text": "sent while you were offline"}, nil)
		feed.add(
			aircraft{party: coalition, id: "CO-8", callsign: "VIPER8", lat: 34.6, lon: 36.3, altM: 5000, velEastMps: 200},
			aircraft{party: airgroup, id: "AG-8", callsign: "SU24-8", lat: 34.6, lon: 36.9, altM: 5000, velEastMps: -200},
		)
		var msgs struct {
			Messages []struct {
				ID  any            `json:"id"`
				Ref map[string]any `json:"ref"`
			} `json:"messages"`
		}
		be.call(t, airgroup, "GET", "/v1/hotline/messages", nil, &msgs)
		var acked []string
		for _, m := range msgs.Messages {
			if fmt.Sprint(m.Ref["alert_id"]) == alertID {
				be.call(t, airgroup, "POST", fmt.Sprintf("/v1/hotline/messages/%v/ack", m.ID), map[string]any{}, nil)
				acked = append(acked, fmt.Sprint(m.ID))
			}
		}
		if len(acked) == 0 {
			t.Fatalf("airgroup has no hotline item for alert %s", alertID)
		}
		ackedJS, _ := json.Marshal(acked)
		proxy.restore()
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "live again", `document.getElementById('conn').dataset.state === 'live'`, 15*time.Second)
		}
		a.waitFor(t, "the message sent during the outage", `deconflict.snapshot().messages.some(m => m.text === 'sent while you were offline')`, 10*time.Second)
		a.waitFor(t, "airgroup's acknowledgments made during the outage", `(() => { const acked = `+string(ackedJS)+`; return acked.every(id => deconflict.snapshot().messages.some(m => String(m.id) === id && m.acks.includes('airgroup'))); })()`, 10*time.Second)
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the conflict raised during the outage", `deconflict.snapshot().alerts.some(x => x.aircraft.includes('CO-8') && x.aircraft.includes('AG-8'))`, 15*time.Second)
			// The whole picture: the page's alerts and messages are the
			// service's.
			samePicture(t, tb, be)
		}
		resumed := false
		for _, id := range proxy.resumeIDs() {
			resumed = resumed || id != ""
		}
		if !resumed {
			t.Errorf("no event stream request resumed with a Last-Event-ID: %q", proxy.resumeIDs())
		}
	})

	t.Run("keyboard", func(t *testing.T) {
		unnamed := eval[[]string](t, a, `[...document.querySelectorAll('button, input, select, textarea, [tabindex]')]
			.filter(e => e.offsetParent !== null)
			.filter(e => !(e.getAttribute('aria-label') || e.textContent.trim() || (e.id && document.querySelector('label[for="' + e.id + '"]'))))
			.map(e => e.outerHTML.slice(0, 80))`)
		if len(unnamed) > 0 {
			t.Errorf("controls without an accessible name: %q", unnamed)
		}
		checkReachable(t, a)
		a.do(t, chromedp.Focus(chromedp.ID("zoom-fit")), chromedp.KeyEvent(kb.Tab))
		focus := eval[map[string]string](t, a, `({id: document.activeElement.id, outline: getComputedStyle(document.activeElement).outlineStyle})`)
		if focus["outline"] == "none" || focus["outline"] == "" {
			t.Errorf("focus on %q is not visible (outline %q)", focus["id"], focus["outline"])
		}
		before := eval[map[string]float64](t, a, `deconflict.snapshot().view`)
		a.do(t, chromedp.Focus(chromedp.ID("map")), chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent("+"))
		after := eval[map[string]float64](t, a, `deconflict.snapshot().view`)
		if after["lon"] <= before["lon"] || after["scale"] <= before["scale"] {
			t.Errorf("arrow right and + on the map: view %v -> %v, want further east and closer", before, after)
		}
	})

	t.Run("no private details of another party", func(t *testing.T) {
		if len(a.received(secretCoalition)) == 0 || len(b.received(secretAirgroup)) == 0 {
			t.Fatalf("the inspection saw no party's own volume details (coalition %v, airgroup %v): it inspects nothing",
				a.received(secretCoalition), b.received(secretAirgroup))
		}
		if got := a.received(secretAirgroup); len(got) > 0 {
			t.Errorf("coalition's page received airgroup's details in %v", got)
		}
		if got := b.received(secretCoalition); len(got) > 0 {
			t.Errorf("airgroup's page received coalition's details in %v", got)
		}
		streamed := false
		for _, u := range append(a.received(`"kind":"ack"`), b.received(`"kind":"ack"`)...) {
			streamed = streamed || strings.Contains(u, "/v1/events")
		}
		if !streamed {
			t.Errorf("the event streams were not inspected")
		}
	})

	t.Run("rules proposals answered in the console", func(t *testing.T) {
		var r map[string]any
		be.call(t, coalition, "GET", "/v1/rules", nil, &r)
		version := int(r["version"].(float64))
		var prop struct{ Version int }
		be.call(t, "operator", "PUT", "/v1/rules", map[string]any{"disclose_linger_s": 45}, &prop)
		row := fmt.Sprintf(`#proposals li[data-version="%d"]`, prop.Version)
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the proposal, field by field", `(() => { const r = document.querySelector('`+row+` tr[data-field="disclose_linger_s"]'); return !document.getElementById('rules-panel').hidden && r && r.querySelector('.old').textContent === '60' && r.querySelector('.new').textContent === '→ 45'; })()`, 15*time.Second)
		}
		a.click(t, fmt.Sprintf(`button[data-accept="%d"]`, prop.Version))
		b.waitFor(t, "the coalition's answer", `(() => { const li = document.querySelector('`+row+`'); return li && li.textContent.includes('coalition: accepted') && li.textContent.includes('airgroup: waiting'); })()`, 15*time.Second)
		a.waitFor(t, "no buttons once answered", `document.querySelector('button[data-accept="`+fmt.Sprint(prop.Version)+`"]') === null`, 10*time.Second)
		b.screenshot(t, "console-rules-proposal.png")
		checkAccessible(t, b, "rules proposal")
		// Its hotline item is acknowledged by the answer: the thread
		// offers no plain acknowledgment (the service refuses it), and
		// says where to answer.
		rulesThread := fmt.Sprintf(`#threads button[data-thread="rules:%d"]`, prop.Version)
		b.waitFor(t, "the proposal's thread", `document.querySelector('`+rulesThread+`') !== null`, 10*time.Second)
		b.click(t, rulesThread)
		b.waitFor(t, "the proposal's item answered, not acknowledged", `(() => { const li = [...document.querySelectorAll('#messages li.message')].find(li => li.textContent.includes('rules_proposal')); return li && li.querySelector('button.ack') === null && li.querySelector('.msg-answer') !== null; })()`, 10*time.Second)
		b.click(t, fmt.Sprintf(`button[data-accept="%d"]`, prop.Version))
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the new rules in force", fmt.Sprintf(`document.getElementById('rules-version').textContent === 'v%d' && document.getElementById('rules-panel').hidden`, prop.Version), 15*time.Second)
		}
		// A rejection closes a proposal: the rules stay as they are.
		be.call(t, "operator", "PUT", "/v1/rules", map[string]any{"disclose_linger_s": 10}, &prop)
		row = fmt.Sprintf(`#proposals li[data-version="%d"]`, prop.Version)
		b.waitFor(t, "the second proposal", `document.querySelector('`+row+`') !== null`, 15*time.Second)
		b.do(t, chromedp.SetValue(chromedp.ID(fmt.Sprintf("rules-reason-%d", prop.Version)), "not during the exercise"))
		b.click(t, fmt.Sprintf(`button[data-reject="%d"]`, prop.Version))
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the rejected proposal gone", `document.getElementById('rules-panel').hidden`, 15*time.Second)
		}
		if got := eval[string](t, a, `document.getElementById('rules-version').textContent`); got != fmt.Sprintf("v%d", version+1) {
			t.Errorf("rules version after the rejection: %s, want v%d", got, version+1)
		}
		// Coalition never answered it: its item was settled at the
		// rejection, says why, and asks nothing more of it (it offered
		// the answer of a proposal that no longer existed).
		settledThread := fmt.Sprintf(`#threads-done-list button[data-thread="rules:%d"]`, prop.Version)
		a.waitFor(t, "the rejected proposal's thread, done", `document.querySelector('`+settledThread+`') !== null`, 10*time.Second)
		eval[bool](t, a, `(() => { document.getElementById('threads-done').open = true; document.querySelector('`+settledThread+`').click(); return true; })()`)
		a.waitFor(t, "the settled item says why and asks nothing", `(() => { const li = [...document.querySelectorAll('#messages li.message')].find(li => li.textContent.includes('rules_proposal')); return li && li.querySelector('.msg-answer') === null && li.querySelector('button.ack') === null && li.querySelector('.acks .settled') !== null && (li.querySelector('.msg-settled') || {textContent: ''}).textContent.includes('rejected by `+airgroup+`'); })()`, 10*time.Second)
		eval[bool](t, a, `(() => { document.getElementById('threads-done').open = false; return true; })()`)
	})

	t.Run("escalated items stand out", func(t *testing.T) {
		// Deadlines of a second: the open items escalate at the next tick.
		var r map[string]any
		be.call(t, coalition, "GET", "/v1/rules", nil, &r)
		r["ack_deadline_s"], r["ack_deadline_highest_s"], r["escalation_deadline_s"] = 1, 1, 1
		// Proposed by the operator, accepted by both parties.
		var prop struct {
			Version     int64
			RulesSHA256 string `json:"rules_sha256"`
		}
		be.call(t, "operator", "PUT", "/v1/rules", r, &prop)
		for _, party := range []string{coalition, airgroup} {
			be.call(t, party, "POST", fmt.Sprintf("/v1/rules/%d/accept", prop.Version), map[string]string{"rules_sha256": prop.RulesSHA256}, nil)
		}
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the new rules version", fmt.Sprintf(`document.getElementById('rules-version').textContent === 'v%d'`, prop.Version), 10*time.Second)
		}
		be.call(t, coalition, "POST", "/v1/hotline/messages", map[string]any{"to": []string{airgroup}, "kind": "request", "thread": coalition + "/ops-2", "text": "Confirm SU24 flight levels"}, nil)
		for _, tb := range []*tab{a, b} {
			tb.waitFor(t, "the escalated message", `deconflict.snapshot().messages.some(m => m.text === 'Confirm SU24 flight levels' && m.state === 'escalated')`, 15*time.Second)
			tb.waitFor(t, "the escalated thread marked", `(document.querySelector('#threads button[data-thread="coalition/ops-2"]')?.classList.contains('escalated') ?? false) && document.querySelector('#threads button[data-thread="coalition/ops-2"]').textContent.includes('ESCALATED')`, 10*time.Second)
		}
		// The conflict raised during the outage was never acknowledged.
		a.waitFor(t, "an escalated alert row", `[...document.querySelectorAll('#alerts li.escalated')].some(li => li.textContent.includes('VIPER8') && li.textContent.includes('ESCALATED'))`, 15*time.Second)
		a.click(t, `#threads button[data-thread="coalition/ops-2"]`)
		a.waitFor(t, "the late recipient shown", `document.querySelector('#messages .acks .late') !== null`, 10*time.Second)
		a.screenshot(t, "console-escalated.png")
		checkAccessible(t, a, "escalated items")
		for _, tb := range []*tab{a, b} {
			checkThreadNames(t, tb)
		}
	})

	t.Run("the timeline of the record, in a browser", func(t *testing.T) {
		export := be.raw(t, "operator", "/v1/audit")
		exp, err := timeline.Read(bytes.NewReader(export))
		if err != nil {
			t.Fatal(err)
		}
		// The one an investigation starts from, and the alert
		// acknowledged by keyboard.
		worst, err := exp.Pick("", "")
		if err != nil || worst.Escalations == 0 {
			t.Fatalf("the default subject %+v (%v): it should be one that escalated", worst, err)
		}
		acked, err := exp.Pick(alertID, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []timeline.Subject{worst, acked} {
			tl := exp.Build(s)
			var page bytes.Buffer
			if err := tl.WriteHTML(&page, timeline.Verification{}, timeline.Source{File: "operator.jsonl", Generated: time.Now()}); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "timeline.html")
			if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			p := openTab(t, browser, "investigator", false)
			p.do(t, chromedp.EmulateViewport(1280, 900), chromedp.Navigate("file://"+file))
			if got := eval[int](t, p, `document.querySelectorAll('li.step').length`); got != len(tl.Steps) || got == 0 {
				t.Errorf("%s: %d steps shown, want %d", s.Name, got, len(tl.Steps))
			}
			// A map at each step, where there is something to draw: a
			// thread of messages alone (which may be the one that
			// escalated most) concerns no aircraft and no volume.
			maps := 0
			if slices.ContainsFunc(tl.Steps, func(st timeline.Step) bool { return len(st.Scene.Aircraft)+len(st.Scene.Volumes) > 0 }) {
				maps = len(tl.Steps)
			} else if s.ID == alertID {
				t.Errorf("the timeline of alert %s shows no aircraft", alertID)
			}
			if got := eval[int](t, p, `document.querySelectorAll('li.step svg').length`); got != maps {
				t.Errorf("%s: %d maps shown for %d steps, want %d", s.Name, got, len(tl.Steps), maps)
			}
			if s.ID == alertID && !eval[bool](t, p, `document.body.textContent.includes('coalition acknowledged the warning alert item')`) {
				t.Errorf("the timeline of the alert does not show coalition's acknowledgment: %s", eval[string](t, p, `document.body.innerText.slice(0, 2000)`))
			}
			if f := p.failedRequests(); len(f) > 0 {
				t.Errorf("%s: the page failed to load %q", s.Name, f)
			}
			// Only the page itself: it stands alone.
			for _, u := range p.requested() {
				if !strings.HasPrefix(u, "file://") {
					t.Errorf("%s: the page asked for %s", s.Name, u)
				}
			}
			checkAccessible(t, p, "audit timeline of "+s.Name)
			if s.ID == alertID {
				p.screenshot(t, "audit-timeline.png")
			}
		}
	})

	t.Run("no script errors and nothing blocked", func(t *testing.T) {
		for _, tb := range []*tab{a, b} {
			if errs := eval[[]string](t, tb, `deconflict.snapshot().errors`); len(errs) > 0 {
				t.Errorf("%s: %q", tb.party, errs)
			}
		}
	})

	t.Run("alerts sorted most severe, then newest, first", func(t *testing.T) {
		order := eval[[]string](t, a, `[...document.querySelectorAll('#alerts li')].map(li => li.className.match(/level-(\w+)/)[1])`)
		// DO-365's preventive and corrective rank with advisory and caution.
		rank := map[string]int{"advisory": 1, "preventive": 1, "caution": 2, "corrective": 2, "warning": 3}
		if len(order) < 2 {
			t.Fatalf("want several alerts to check their order, have %q", order)
		}
		for i := 1; i < len(order); i++ {
			if rank[order[i]] > rank[order[i-1]] {
				t.Errorf("alert %d (%s) is listed below a less severe one (%s): %q", i, order[i], order[i-1], order)
			}
		}
	})

	t.Run("laptop layout", func(t *testing.T) {
		b.do(t, chromedp.EmulateViewport(1366, 768))
		b.waitFor(t, "map and alerts side by side", `(() => { const m = document.getElementById('map').getBoundingClientRect(); const s = document.querySelector('.side').getBoundingClientRect(); return m.width > 600 && m.height > 400 && s.left >= m.right - 1 && s.right <= 1366; })()`, 10*time.Second)
		b.screenshot(t, "console-laptop.png")
		b.do(t, chromedp.EmulateViewport(1920, 1080))
	})

	t.Run("5,000 tracks drawn on canvases, and a flood of alerts", func(t *testing.T) {
		// What the page does with them; how long its frames take is
		// BenchmarkConsoleFrames' to measure (a loaded machine is slow, not
		// wrong). Only the page looked at draws from here on.
		chromedp.Cancel(a.ctx)
		chromedp.Cancel(b.ctx)
		// The airgroup's own page: every one of its aircraft is drawn,
		// whatever need to know shows the coalition.
		p := openTab(t, browser, airgroup, false)
		p.do(t, chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(front.URL), chromedp.SendKeys(chromedp.ID("token"), be.tokens[airgroup]+kb.Enter))
		p.waitFor(t, "the test traffic", `(deconflict.snapshot().drawn?.byParty.airgroup || 0) >= 3`, 15*time.Second)
		elements := `document.getElementsByTagName('*').length`
		before := eval[int](t, p, elements)

		startBulkTraffic(t, be, airgroup, bulkTrackCount)
		p.waitFor(t, "5,000 more tracks drawn", fmt.Sprintf(`deconflict.snapshot().drawn?.tracks >= %d`, bulkTrackCount), 60*time.Second)
		p.screenshot(t, "console-5000-tracks.png")
		// Every frame drawn while the map pans draws them all, on the
		// canvases: the page does not grow an element per aircraft.
		heavy := eval[frameStats](t, p, `deconflict.measureFrames(20, 40000)`)
		if heavy.FramesDrawn == 0 || heavy.MinTracksDrawn < bulkTrackCount {
			t.Errorf("while panning: %d frames drawn, the fewest tracks in one %d, want every frame with at least %d", heavy.FramesDrawn, heavy.MinTracksDrawn, bulkTrackCount)
		}
		if grown := eval[int](t, p, elements) - before; grown > 200 {
			t.Errorf("the page grew by %d elements for %d tracks: they should be drawn on the canvases", grown, bulkTrackCount)
		}
		// A figure for the log, not a verdict.
		t.Logf("%d frames of %d tracks: draw mean %.2f ms p95 %.2f ms, interval mean %.1f ms p95 %.1f ms (load average %s)",
			heavy.FramesDrawn, heavy.TracksDrawn, heavy.MeanCostMs, heavy.P95CostMs, heavy.MeanIntervalMs, heavy.P95IntervalMs, loadAverage())

		// Hundreds of undeclared aircraft: as many conformance alerts at
		// once. The page lists the most urgent and keeps drawing.
		rng := rand.New(rand.NewPCG(8, 300))
		var flood []map[string]any
		for i := range 300 {
			flood = append(flood, aircraft{
				party: airgroup, id: fmt.Sprintf("UNDECLARED-%04d", i), callsign: fmt.Sprintf("U%04d", i),
				lat: 34.0 + 2.4*rng.Float64(), lon: 35.6 + 3.4*rng.Float64(), altM: 1500, velNorthMps: 100, since: time.Now(),
			}.report(time.Now()))
		}
		be.call(t, airgroup, "POST", "/v1/positions", map[string]any{"reports": flood}, nil)
		p.waitFor(t, "the alerts of the flood", `deconflict.snapshot().alerts.length >= 300`, 60*time.Second)
		p.waitFor(t, "the list capped", `document.querySelectorAll('#alerts li').length === 100 && /\d+ less urgent alerts not listed/.test(document.getElementById('alerts-more').textContent)`, 30*time.Second)
		after := eval[frameStats](t, p, `deconflict.measureFrames(10, 40000)`)
		if after.FramesDrawn == 0 || after.MinTracksDrawn < bulkTrackCount {
			t.Errorf("with the flood: %d frames drawn, the fewest tracks in one %d", after.FramesDrawn, after.MinTracksDrawn)
		}
		t.Logf("%d tracks and %d alerts: draw mean %.2f ms, interval mean %.1f ms (load average %s)",
			after.TracksDrawn, eval[int](t, p, `deconflict.snapshot().alerts.length`), after.MeanCostMs, after.MeanIntervalMs, loadAverage())
	})
}

// samePicture waits until the page shows exactly the open alerts and the
// hotline messages that the service has for its party.
func samePicture(t *testing.T, tb *tab, be *backend) {
	t.Helper()
	var lastPage, lastAPI string
	// Generous: on a loaded machine the page may need a while to reconnect
	// and catch up; only a picture that never converges is a failure.
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		var alerts struct {
			Alerts []struct {
				ID    any    `json:"id"`
				State string `json:"state"`
			} `json:"alerts"`
		}
		var msgs struct {
			Messages []struct {
				ID   any   `json:"id"`
				Acks []any `json:"acks"`
			} `json:"messages"`
		}
		be.call(t, tb.party, "GET", "/v1/alerts", nil, &alerts)
		be.call(t, tb.party, "GET", "/v1/hotline/messages", nil, &msgs)
		var want []string
		for _, x := range alerts.Alerts {
			if x.State != "cleared" {
				want = append(want, fmt.Sprintf("alert %v", x.ID))
			}
		}
		for _, m := range msgs.Messages {
			want = append(want, fmt.Sprintf("message %v acks %d", m.ID, len(m.Acks)))
		}
		got := eval[[]string](t, tb, `[...deconflict.snapshot().alerts.map(a => 'alert ' + a.id), ...deconflict.snapshot().messages.map(m => 'message ' + m.id + ' acks ' + m.acks.length)]`)
		sort.Strings(want)
		sort.Strings(got)
		if slices.Equal(want, got) {
			return
		}
		lastPage, lastAPI = strings.Join(got, ", "), strings.Join(want, ", ")
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("%s: the page's picture differs from the service's\npage:    %s\nservice: %s", tb.party, lastPage, lastAPI)
}

// titleCounts waits until the page's title counts exactly the items the
// service says wait for the party's acknowledgment, and its tab icon
// carries the count when there are any.
func titleCounts(t *testing.T, tb *tab, be *backend) {
	t.Helper()
	var want, got, icon string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var msgs struct {
			Messages []struct {
				To    []string `json:"to"`
				State string   `json:"state"`
				Acks  []struct {
					Party string `json:"party"`
				} `json:"acks"`
			} `json:"messages"`
		}
		be.call(t, tb.party, "GET", "/v1/hotline/messages", nil, &msgs)
		n := 0
		for _, m := range msgs.Messages {
			acked := slices.ContainsFunc(m.Acks, func(k struct {
				Party string `json:"party"`
			}) bool {
				return k.Party == tb.party
			})
			if m.State != "acknowledged" && slices.Contains(m.To, tb.party) && !acked {
				n++
			}
		}
		want = "deconflict · " + tb.party
		if n > 0 {
			want = fmt.Sprintf("(%d) %s", n, want)
		}
		got = eval[string](t, tb, `document.title`)
		icon = eval[string](t, tb, `document.querySelector('link[rel="icon"]').href`)
		if got == want && (n == 0) == !strings.HasPrefix(icon, "data:image/png") {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("%s: title %q, want %q (icon %.40s)", tb.party, got, want, icon)
}

// checkThreadNames checks what the hotline's thread list says: every
// thread named for people, never by an alert's or a volume's id, with its
// state, what needs action first, and the done threads folded apart.
func checkThreadNames(t *testing.T, tb *tab) {
	t.Helper()
	type row struct {
		Name, State, Class string
		Done               bool
	}
	rows := eval[[]row](t, tb, `[...document.querySelectorAll('#threads button.thread, #threads-done-list button.thread')].map(b => ({
		name: b.querySelector('.thread-name').textContent, state: b.querySelector('.thread-state').textContent,
		class: b.className, done: b.closest('#threads-done') !== null }))`)
	if len(rows) == 0 {
		t.Fatalf("%s: no thread listed", tb.party)
	}
	rank := map[string]int{"action": 0, "escalated": 1, "waiting": 2, "done": 3}
	last := 0
	for i, r := range rows {
		if idLike.MatchString(r.Name) || r.Name == "" {
			t.Errorf("%s: thread %d is named %q", tb.party, i, r.Name)
		}
		if r.State == "" {
			t.Errorf("%s: thread %q says nothing of its state", tb.party, r.Name)
		}
		st := ""
		for k := range rank {
			if strings.Contains(" "+r.Class+" ", " state-"+k+" ") {
				st = k
			}
		}
		if st == "" {
			t.Errorf("%s: thread %q has no state class: %q", tb.party, r.Name, r.Class)
			continue
		}
		if (st == "done") != r.Done {
			t.Errorf("%s: thread %q (%s) is %s the folded done list", tb.party, r.Name, st, map[bool]string{true: "in", false: "outside"}[r.Done])
		}
		if rank[st] < last {
			t.Errorf("%s: thread %q (%s) is listed below a thread that needs less action", tb.party, r.Name, st)
		}
		last = rank[st]
	}
	// The done threads folded away until asked for.
	if slices.ContainsFunc(rows, func(r row) bool { return r.Done }) &&
		!eval[bool](t, tb, `!document.getElementById('threads-done').hidden && !document.getElementById('threads-done').open && /^Done \(\d+\)$/.test(document.getElementById('threads-done-summary').textContent)`) {
		t.Errorf("%s: the done threads are not folded under Done (n): %q", tb.party, eval[string](t, tb, `document.getElementById('threads-done').outerHTML.slice(0, 200)`))
	}
	if title := strings.TrimPrefix(eval[string](t, tb, `document.getElementById('thread-title').textContent`), "Thread: "); idLike.MatchString(title) {
		t.Errorf("%s: the open thread is titled %q", tb.party, title)
	}
	if v := eval[string](t, tb, `document.getElementById('compose-thread-row').hidden ? '' : document.getElementById('compose-thread').value`); idLike.MatchString(v) {
		t.Errorf("%s: the message form shows the thread %q", tb.party, v)
	}
}

// checkReachable presses Tab through the whole page and checks that every
// visible control gets the focus on the way.
func checkReachable(t *testing.T, tb *tab) {
	t.Helper()
	n := eval[int](t, tb, `(() => {
		const all = [...document.querySelectorAll('button, input, select, textarea, summary, a[href], [tabindex]:not([tabindex="-1"])')]
			.filter(e => !e.disabled && e.checkVisibility({visibilityProperty: true, contentVisibilityAuto: true}));
		all.forEach((e, i) => { e.dataset.reach = String(i); });
		document.activeElement?.blur();
		return all.length;
	})()`)
	if n == 0 {
		t.Fatalf("%s: no control on the page", tb.party)
	}
	seen := map[string]bool{}
	for range 2*n + 20 {
		tb.do(t, chromedp.KeyEvent(kb.Tab))
		seen[eval[string](t, tb, `String(document.activeElement?.dataset.reach)`)] = true
	}
	missed := eval[[]string](t, tb, `[...document.querySelectorAll('[data-reach]')].filter(e => !`+jsString(joinKeys(seen))+`.split(' ').includes(e.dataset.reach) && e.checkVisibility({visibilityProperty: true})).map(e => e.outerHTML.slice(0, 100))`)
	if len(missed) > 0 {
		t.Errorf("%s: Tab never reaches %q", tb.party, missed)
	}
}

func joinKeys(m map[string]bool) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return strings.Join(ks, " ")
}
