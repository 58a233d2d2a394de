package webtest

import (
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/sim"
)

var demoFor = flag.Duration("demo-for", time.Minute, "how long the demo scenario runs before the console is checked and photographed (the screenshots in docs/ use 2m)")

// demoRun is the built-in scenario running against a backend as `deconflict
// demo` runs it: deadlines scaled to the speed, the parties' operations
// cells acknowledging after a delay.
type demoRun struct {
	be     *backend
	runner *sim.Runner
	done   chan error
}

func startDemo(t *testing.T, speed float64) *demoRun {
	t.Helper()
	sc, err := sim.Builtin("syria-2015")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := sc.Plan(1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range sc.Parties {
		names = append(names, p.Name)
	}
	be := startBackend(t, names...)
	ctx, cancel := context.WithCancel(context.Background())
	clients := map[string]*client.Client{}
	for _, n := range names {
		clients[n] = client.New(be.url, be.tokens[n])
	}
	// The scenario's rules with the deadlines scaled, proposed by the
	// operator and accepted by every party, as the demo does.
	r, err := rules.Amend(be.svc.Rules(), sc.Rules)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	scale := func(s float64) float64 { return max(1, s/speed) }
	r.AckDeadlineS, r.AckDeadlineHighestS, r.EscalationDeadlineS = scale(r.AckDeadlineS), scale(r.AckDeadlineHighestS), scale(r.EscalationDeadlineS)
	prop, err := be.svc.ProposeRules(ctx, party.Principal{Party: party.OperatorName, Operator: true}, r)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := clients[n].AcceptRules(ctx, prop.Version); err != nil {
			cancel()
			t.Fatalf("%s accepting the demo's rules: %v", n, err)
		}
	}
	runner, err := sim.NewRunner(plan, clients, sim.Options{
		Speed: speed, FromS: sc.DemoStartS, AckDelay: min(time.Second, time.Duration(10/speed*float64(time.Second))),
		Logf: func(format string, args ...any) { t.Logf("demo: "+format, args...) },
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	d := &demoRun{be: be, runner: runner, done: make(chan error, 1)}
	go func() { d.done <- runner.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-d.done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("demo scenario: %v", err)
		}
	})
	return d
}

// TestConsoleDuringDemo looks at the console as a new operator of russia
// would during `deconflict demo`, after the scenario has run a while
// (-demo-for; with -screenshots it photographs the demo for the README):
// the threads are named for people and ordered, the map's labels do not
// overlap, the title counts what waits, nothing failed to load, and
// axe-core finds no serious violation.
func TestConsoleDuringDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	d := startDemo(t, 10)
	browser := startBrowser(t)
	r := openTab(t, browser, "russia", false)
	r.do(t, chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(d.be.url), chromedp.SendKeys(chromedp.ID("token"), d.be.tokens["russia"]+kb.Enter))
	r.waitFor(t, "the party name", `document.getElementById('party-name').textContent === 'russia'`, 15*time.Second)
	time.Sleep(*demoFor)
	r.waitFor(t, "threads and volumes", `document.querySelectorAll('#threads button.thread, #threads-done-list button.thread').length >= 5 && deconflict.snapshot().drawn.volumes >= 5`, 30*time.Second)
	r.screenshot(t, "console-demo.png")

	t.Run("threads named for people, what needs action first", func(t *testing.T) {
		checkThreadNames(t, r)
	})

	t.Run("labels do not overlap", func(t *testing.T) {
		type box struct {
			X0, Y0, X1, Y1 float64
			Text           string
		}
		for _, view := range []string{"as it opens", "zoomed out"} {
			if view == "zoomed out" {
				r.do(t, chromedp.Click(chromedp.ID("zoom-out")))
				r.waitFor(t, "a frame at the new scale", `deconflict.snapshot().view.scale < 256 * 2 ** 7.5`, 10*time.Second)
			}
			// A frame drawn after the view settled.
			eval[frameStats](t, r, `deconflict.measureFrames(2)`)
			// The labels and the aircraft marks of one frame.
			type mark struct {
				X, Y     float64
				Callsign string
			}
			frame := eval[struct {
				Labels []box
				Marks  []mark
			}](t, r, `(() => {
				const m = document.getElementById('map').getBoundingClientRect();
				const marks = [];
				for (let i = 0, a; (a = deconflict.drawnAircraft(i)); i++) marks.push({x: a.x - m.left, y: a.y - m.top, callsign: a.callsign});
				return {labels: deconflict.snapshot().drawn.labels, marks};
			})()`)
			boxes := frame.Labels
			// No label over an aircraft: its mark (12 px across) stays clear.
			for _, a := range boxes {
				for _, mk := range frame.Marks {
					if a.X0 < mk.X+5 && mk.X-5 < a.X1 && a.Y0 < mk.Y+5 && mk.Y-5 < a.Y1 {
						t.Errorf("%s: label %q %+v covers the mark of %s at (%.0f, %.0f)", view, a.Text, a, mk.Callsign, mk.X, mk.Y)
					}
				}
			}
			if len(frame.Marks) == 0 {
				t.Errorf("%s: no aircraft drawn: the labels were checked against no mark", view)
			}
			size := eval[map[string]float64](t, r, `({w: document.getElementById('map').clientWidth, h: document.getElementById('map').clientHeight})`)
			volumes := 0
			for i, a := range boxes {
				if strings.Contains(a.Text, "FL") {
					volumes++
				}
				if a.X0 < 0 || a.Y0 < 0 || a.X1 > size["w"] || a.Y1 > size["h"] {
					t.Errorf("%s: label %q at %+v leaves the map (%v)", view, a.Text, a, size)
				}
				for _, b := range boxes[i+1:] {
					if a.X0 < b.X1 && b.X0 < a.X1 && a.Y0 < b.Y1 && b.Y0 < a.Y1 {
						t.Errorf("%s: labels %q %+v and %q %+v overlap", view, a.Text, a, b.Text, b)
					}
				}
			}
			t.Logf("%s: %d labels, %d of volumes, %d volumes drawn", view, len(boxes), volumes, eval[int](t, r, `deconflict.snapshot().drawn.volumes`))
			if len(boxes) < 5 || volumes == 0 {
				t.Errorf("%s: only %d labels (%d of volumes): the check saw next to nothing", view, len(boxes), volumes)
			}
		}
		r.do(t, chromedp.Click(chromedp.ID("zoom-in")))
	})

	t.Run("what placing the labels costs", func(t *testing.T) {
		// The demo's view with and without labels, by turns in one run:
		// the median drawing time of a frame (the map pans every frame, so
		// both layers are drawn each time), and of the labels alone.
		load, _ := os.ReadFile("/proc/loadavg")
		for range 3 {
			eval[bool](t, r, `(deconflict.labels(false), true)`)
			off := eval[frameStats](t, r, `deconflict.measureFrames(60)`)
			eval[bool](t, r, `(deconflict.labels(true), true)`)
			on := eval[frameStats](t, r, `deconflict.measureFrames(60)`)
			t.Logf("demo view, %d tracks, %d volumes, %d labels: frame median %.2f ms with labels, %.2f ms without (%.2fx); labels median %.2f ms, p95 %.2f ms",
				on.TracksDrawn, eval[int](t, r, `deconflict.snapshot().drawn.volumes`), eval[int](t, r, `deconflict.snapshot().drawn.labels.length`),
				on.P50CostMs, off.P50CostMs, on.P50CostMs/math.Max(off.P50CostMs, 0.01), on.P50LabelMs, on.P95LabelMs)
		}
		t.Logf("load average before: %s", strings.TrimSpace(string(load)))
	})

	t.Run("a click shows the details", func(t *testing.T) {
		// The map keeps moving: find an aircraft and click it in one go.
		var at struct {
			X, Y     float64
			Callsign string
		}
		ok := false
		for i := 0; i < 10 && !ok; i++ {
			at = eval[struct {
				X, Y     float64
				Callsign string
			}](t, r, `deconflict.drawnAircraft(`+jsonNumber(int64(i))+`) || {x: -1, y: -1, callsign: ''}`)
			if at.X < 0 {
				break
			}
			r.do(t, chromedp.MouseClickXY(at.X, at.Y))
			ok = eval[bool](t, r, `!document.getElementById('map-details').hidden && document.getElementById('map-details').textContent.includes(`+jsString(at.Callsign)+`)`)
		}
		if !ok {
			t.Fatalf("clicking aircraft shows no details (last tried %+v): %q", at, eval[string](t, r, `document.getElementById('map-details').textContent`))
		}
		r.do(t, chromedp.Click(chromedp.ID("map-details-close")))
		r.waitFor(t, "the details closed", `document.getElementById('map-details').hidden`, 10*time.Second)
	})

	t.Run("filters", func(t *testing.T) {
		// What the last frame drew, by party, against what the service
		// says: each volume's party, and the aircraft of the open alerts.
		type picture struct {
			tracks, volumes map[string]int // party -> drawn
			unalerted       []string       // tracks drawn in no open alert
			volumeCount     int
		}
		look := func() picture {
			var vols struct {
				Volumes []struct{ ID, Party string } `json:"volumes"`
			}
			var alerts struct {
				Alerts []struct {
					State    string `json:"state"`
					Aircraft []struct{ Party, Aircraft string }
				} `json:"alerts"`
			}
			d.be.call(t, "russia", "GET", "/v1/volumes", nil, &vols)
			d.be.call(t, "russia", "GET", "/v1/alerts", nil, &alerts)
			partyOf := map[string]string{}
			for _, v := range vols.Volumes {
				partyOf[v.ID] = v.Party
			}
			alerted := map[string]bool{}
			for _, a := range alerts.Alerts {
				for _, ac := range a.Aircraft {
					if a.State != "cleared" {
						alerted[ac.Party+"/"+ac.Aircraft] = true
					}
				}
			}
			// A frame drawn after the service answered.
			eval[frameStats](t, r, `deconflict.measureFrames(2)`)
			pic := picture{tracks: map[string]int{}, volumes: map[string]int{}}
			for _, k := range eval[[]string](t, r, `deconflict.drawnTrackKeys()`) {
				pic.tracks[strings.Split(k, "/")[0]]++
				if !alerted[k] {
					pic.unalerted = append(pic.unalerted, k)
				}
			}
			ids := eval[[]string](t, r, `deconflict.snapshot().drawn.volumeIds`)
			for _, id := range ids {
				pic.volumes[partyOf[id]]++
			}
			pic.volumeCount = len(ids)
			return pic
		}
		others := func(m map[string]int) int { return len(m) - min(1, m["russia"]) }
		// The demo moves on while it is looked at: each picture is looked
		// at again until it holds.
		until := func(what string, ok func(picture) bool) picture {
			t.Helper()
			var p picture
			for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
				if p = look(); ok(p) {
					return p
				}
			}
			t.Fatalf("never %s: tracks drawn %v, volumes drawn %v, outside every alert %q", what, p.tracks, p.volumes, p.unalerted)
			return p
		}
		all := until("russia's and the others' tracks and volumes drawn", func(p picture) bool {
			return p.tracks["russia"] > 0 && others(p.tracks) > 0 && p.volumes["russia"] > 0 && others(p.volumes) > 0
		})
		r.do(t, chromedp.Click(chromedp.ID("show-own")))
		until("only the others' tracks and volumes", func(p picture) bool {
			return p.tracks["russia"] == 0 && p.volumes["russia"] == 0 && others(p.tracks) > 0 && others(p.volumes) > 0
		})
		r.do(t, chromedp.Click(chromedp.ID("show-own")), chromedp.Click(chromedp.ID("show-others")))
		until("only russia's own tracks and volumes", func(p picture) bool {
			return others(p.tracks) == 0 && others(p.volumes) == 0 && p.tracks["russia"] > 0 && p.volumes["russia"] > 0
		})
		r.do(t, chromedp.Click(chromedp.ID("show-others")), chromedp.Click(chromedp.ID("show-conflicting")))
		conflicting := until("only what conflicts", func(p picture) bool {
			return len(p.unalerted) == 0 && p.volumeCount < all.volumeCount
		})
		t.Logf("conflicting only: tracks %v, volumes %v (of %d)", conflicting.tracks, conflicting.volumes, all.volumeCount)
		r.do(t, chromedp.Click(chromedp.ID("show-conflicting")))
		until("everything again", func(p picture) bool {
			return p.volumeCount > conflicting.volumeCount && p.tracks["russia"] > 0 && others(p.tracks) > 0 && p.volumes["russia"] > 0 && others(p.volumes) > 0
		})
	})

	t.Run("title counts what waits", func(t *testing.T) {
		titleCounts(t, r, d.be)
	})

	t.Run("no failed request, no script error, no serious accessibility violation", func(t *testing.T) {
		// A resolution asked for an alert that clears before the answer is
		// a 410 the console expects (alerts.js: the row stops asking), if
		// the service says that alert is no longer open; any other failed
		// request is a defect.
		if f := failedBesidesGone(t, r, d.be); len(f) > 0 {
			t.Errorf("failed requests: %q", f)
		}
		if errs := eval[[]string](t, r, `deconflict.snapshot().errors`); len(errs) > 0 {
			t.Errorf("script errors: %q", errs)
		}
		checkAccessible(t, r, "demo")
	})
}

// resolutionGone is the answer to a page asking for the resolution of an
// alert that cleared on the service before the page heard of it.
var resolutionGone = regexp.MustCompile(`^410 .*/v1/alerts/([^/]+)/resolution$`)

// failedBesidesGone returns the page's failed requests, leaving out the
// 410s for the resolution of an alert the service no longer has open: the
// page asks for the resolutions of the alerts it lists every few seconds,
// and in a moving scenario one clears in between now and then (the page
// takes the 410 as the end of that alert's resolution).
func failedBesidesGone(t *testing.T, tb *tab, be *backend) []string {
	t.Helper()
	var alerts struct {
		Alerts []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"alerts"`
	}
	be.call(t, tb.party, "GET", "/v1/alerts", nil, &alerts)
	open := map[string]bool{}
	for _, a := range alerts.Alerts {
		open[a.ID] = a.State != "cleared"
	}
	var out []string
	for _, f := range tb.failedRequests() {
		if m := resolutionGone.FindStringSubmatch(f); m != nil && !open[m[1]] {
			t.Logf("the resolution of alert %s, cleared since: %s", m[1], f)
			continue
		}
		out = append(out, f)
	}
	return out
}
