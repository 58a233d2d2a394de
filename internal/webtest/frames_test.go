package webtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// frameStats is what deconflict.measureFrames saw: the frames, the tracks
// they drew, the JavaScript time of each (cost) and the time between
// animation frames (interval).
type frameStats struct {
	Frames         int     `json:"frames"`
	FramesDrawn    int     `json:"framesDrawn"`
	TracksDrawn    int     `json:"tracksDrawn"`
	MinTracksDrawn int     `json:"minTracksDrawn"`
	MeanCostMs     float64 `json:"meanCostMs"`
	P50CostMs      float64 `json:"p50CostMs"`
	P50LabelMs     float64 `json:"p50LabelMs"`
	P95LabelMs     float64 `json:"p95LabelMs"`
	P95CostMs      float64 `json:"p95CostMs"`
	MeanIntervalMs float64 `json:"meanIntervalMs"`
	P95IntervalMs  float64 `json:"p95IntervalMs"`
}

// bulkTrackCount is the console's bar: smooth with 5,000 tracks on screen.
const bulkTrackCount = 5000

// startBulkTraffic reports n aircraft of party flying straight in random
// (seeded) directions over the test's area, above the test's own traffic,
// inside a volume of their own, so that what the page does is draw them,
// not list thousands of conformance alerts. They are reported again every
// 10 s, well within the 30 s after which a track goes stale, until the
// test ends: on a loaded machine, waiting for the page and measuring can
// take longer than that.
func startBulkTraffic(t testing.TB, be *backend, party string, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(8, uint64(n)))
	since := time.Now().UTC()
	bulk := make([]aircraft, n)
	for i := range bulk {
		heading := rng.Float64() * 2 * math.Pi
		bulk[i] = aircraft{
			party: party, id: fmt.Sprintf("BULK-%04d", i), callsign: fmt.Sprintf("B%04d", i),
			lat: 34.0 + 2.4*rng.Float64(), lon: 35.6 + 3.4*rng.Float64(), altM: 12000 + 2000*rng.Float64(),
			velEastMps: 200 * math.Sin(heading), velNorthMps: 200 * math.Cos(heading), since: since,
		}
	}
	reports := func() map[string]any {
		now := time.Now()
		out := make([]map[string]any, len(bulk))
		for i, a := range bulk {
			out[i] = a.report(now)
		}
		return map[string]any{"reports": out}
	}
	be.call(t, party, "POST", "/v1/volumes", map[string]any{
		"footprint":   map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{35.5, 33.9}, {39.1, 33.9}, {39.1, 36.5}, {35.5, 36.5}, {35.5, 33.9}}}},
		"alt_lower_m": 11500, "alt_upper_m": 14500,
		"start": since.Add(-time.Hour).Format(time.RFC3339), "end": since.Add(3 * time.Hour).Format(time.RFC3339),
		"priority": 0, "state": "activated", "details": map[string]any{"mission": "bulk traffic"}, "key": []any{},
	}, nil)
	be.call(t, party, "POST", "/v1/positions", reports(), nil)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if err := be.post(party, "/v1/positions", reports()); err != nil {
					t.Errorf("reporting the %d bulk tracks again: %v", n, err)
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}

// BenchmarkConsoleFrames measures the console with 5,000 tracks on screen
// against the same page with them hidden (the Own filter off: the tracks
// are the page's own), by turns in one run. Each round (one iteration)
// draws 60 frames of each while the map pans a pixel every frame, so that
// both canvases are redrawn every time: the worst case. It reports the
// medians over the rounds of the JavaScript time of a frame with and
// without the tracks and their ratio, and of the interval between frames
// with them; the load average is logged with the figures, since on a
// shared machine the intervals mostly measure waiting for a core:
//
//	go test ./internal/webtest -run '^$' -bench ConsoleFrames -benchtime 3x -v
//
// Timing does not belong in the tests: TestConsoleInBrowser checks what
// the page does with 5,000 tracks, this benchmark how long it takes.
func BenchmarkConsoleFrames(b *testing.B) {
	if testing.Short() {
		b.Skip("browser benchmark")
	}
	be := startBackend(b)
	startBulkTraffic(b, be, airgroup, bulkTrackCount)
	browser := startBrowser(b)
	p := openTab(b, browser, airgroup, false)
	p.do(b, chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(be.url), chromedp.SendKeys(chromedp.ID("token"), be.tokens[airgroup]+kb.Enter))
	p.waitFor(b, "the 5,000 tracks drawn", fmt.Sprintf(`deconflict.snapshot().drawn?.tracks >= %d`, bulkTrackCount), 60*time.Second)
	showOwn := func(on bool) {
		p.do(b, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const c = document.getElementById('show-own'); c.checked = %t; c.dispatchEvent(new Event('change')); })()`, on)))
	}
	loadBefore := loadAverage()
	var with, without, ratios, intervals []float64
	for b.Loop() {
		showOwn(false)
		off := eval[frameStats](b, p, `deconflict.measureFrames(60)`)
		showOwn(true)
		on := eval[frameStats](b, p, `deconflict.measureFrames(60)`)
		if on.MinTracksDrawn < bulkTrackCount || off.TracksDrawn != 0 || on.FramesDrawn == 0 || off.FramesDrawn == 0 {
			b.Fatalf("the turns drew %d frames of at least %d tracks, and %d frames of %d tracks with Own off", on.FramesDrawn, on.MinTracksDrawn, off.FramesDrawn, off.TracksDrawn)
		}
		with, without = append(with, on.P50CostMs), append(without, off.P50CostMs)
		ratios = append(ratios, on.P50CostMs/math.Max(off.P50CostMs, 0.01))
		intervals = append(intervals, on.MeanIntervalMs)
		b.Logf("round %d: %d frames of %d tracks: frame median %.2f ms (p95 %.2f), interval mean %.1f ms (p95 %.1f); %d frames hidden: frame median %.2f ms, interval mean %.1f ms",
			len(with), on.FramesDrawn, on.TracksDrawn, on.P50CostMs, on.P95CostMs, on.MeanIntervalMs, on.P95IntervalMs, off.FramesDrawn, off.P50CostMs, off.MeanIntervalMs)
	}
	b.ReportMetric(medianOf(with), "ms/frame-5000-tracks")
	b.ReportMetric(medianOf(without), "ms/frame-hidden")
	b.ReportMetric(medianOf(ratios), "x-hidden")
	b.ReportMetric(medianOf(intervals), "ms-interval-5000-tracks")
	b.Logf("load average before: %s, after: %s", loadBefore, loadAverage())
}

// medianOf is the median of xs (0 for none).
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadAverage is the first three fields of /proc/loadavg, or why not.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err.Error()
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
