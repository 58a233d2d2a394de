package webtest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deconflict/deconflict/internal/api"
)

// importFile has one airspace free of conflicts, one over the airgroup's
// volume (a conflict) and one with an unknown record (refused, line 21).
const importFile = `AC R
AN FREE AREA
AL FL100
AH FL150
DP 35:00:00 N 040:00:00 E
DP 35:00:00 N 040:20:00 E
DP 35:20:00 N 040:20:00 E
DP 35:00:00 N 040:00:00 E

AC R
AN OVER AIRGROUP
AL FL270
AH FL350
V X=34:00:00 N 037:48:00 E
DC 5

AC R
AN BROKEN
AL GND
AH FL50
XX what is this
DP 30:00:00 N 030:00:00 E
`

// importGeoJSON has a polygon free of conflicts, a Point without a radius
// (not polygon-like: refused, feature 1) and a route with a width (a
// corridor) across the airgroup's volume.
const importGeoJSON = `{"type":"FeatureCollection","features":[
{"type":"Feature","properties":{"name":"GEOJSON AREA","alt_lower_m":1000,"alt_upper_m":2000},
 "geometry":{"type":"Polygon","coordinates":[[[41,36],[41.2,36],[41.2,36.2],[41,36]]]}},
{"type":"Feature","properties":{"name":"A POINT","alt_lower_m":0,"alt_upper_m":100},
 "geometry":{"type":"Point","coordinates":[39,33]}},
{"type":"Feature","properties":{"name":"ROUTE OVER AIRGROUP","alt_lower_m":9000,"alt_upper_m":10000,"width_m":2000},
 "geometry":{"type":"LineString","coordinates":[[37.4,34],[38.2,34]]}}
]}`

// TestConsoleImportsDroppedFile drops an OpenAir file onto the map: the
// console previews its volumes (drawn on the map, listed with the conflict
// and the refusal and its line), declares on confirm only the one that
// conflicts with nothing, and draws it as a volume. The conflicting one
// lists its alternatives: pointing at one draws it on the map and moves the
// time slider into its window, and a click declares it without conflict.
// A GeoJSON file dropped next is previewed and declared the same way, its
// refusal naming the feature's index.
func TestConsoleImportsDroppedFile(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	be := startBackend(t)
	front := httptestServer(t, newCutProxy(be.url))
	browser := startBrowser(t)
	now := time.Now().UTC()
	be.call(t, airgroup, "POST", "/v1/volumes", map[string]any{
		"footprint":   map[string]any{"type": "Circle", "center": []float64{37.8, 34.0}, "radius_m": 30000},
		"alt_lower_m": 8000, "alt_upper_m": 12000, "start": now.Add(-time.Hour).Format(time.RFC3339), "end": now.Add(3 * time.Hour).Format(time.RFC3339),
		"priority": 0, "state": "accepted", "key": []any{},
	}, nil)

	a := openTab(t, browser, coalition, false)
	a.do(t, chromedp.EmulateViewport(1600, 1000), chromedp.Navigate(front.URL))
	a.do(t, chromedp.SendKeys(chromedp.ID("token"), be.tokens[coalition]), chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	a.waitFor(t, "the party name", `document.getElementById('party-name').textContent === `+jsString(coalition), 15*time.Second)
	a.waitFor(t, "the airgroup volume", `deconflict.snapshot().drawn?.volumes === 1`, 15*time.Second)
	if !eval[bool](t, a, `document.getElementById('import-panel').hidden && getComputedStyle(document.getElementById('import-panel')).display === 'none'`) {
		t.Error("the import panel shows before any file")
	}

	a.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([`+jsString(importFile)+`], 'airspace.txt', { type: 'text/plain' }));
		document.getElementById('map').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
	})()`))
	a.waitFor(t, "the preview of three airspaces", `deconflict.snapshot().importItems.length === 3`, 15*time.Second)
	got := eval[[]map[string]any](t, a, `deconflict.snapshot().importItems`)
	want := []struct {
		name, status string
		line         float64
	}{{"FREE AREA", "ok", 1}, {"OVER AIRGROUP", "conflicting", 10}, {"BROKEN", "refused", 21}}
	for i, w := range want {
		if got[i]["name"] != w.name || got[i]["status"] != w.status || got[i]["line"] != w.line {
			t.Errorf("item %d: %v, want %+v", i, got[i], w)
		}
	}
	a.waitFor(t, "both previewable volumes drawn", `deconflict.snapshot().drawn?.preview === 2`, 10*time.Second)
	list := eval[string](t, a, `document.getElementById('import-items').textContent`)
	if !strings.Contains(list, "with airgroup") || !strings.Contains(list, `unknown record "XX"`) || !strings.Contains(list, "line 21") {
		t.Errorf("the list does not show the conflict and the refusal with its line: %q", list)
	}
	if b := eval[string](t, a, `document.getElementById('import-declare').textContent`); b != "Declare 1 volume" {
		t.Errorf("declare button %q", b)
	}
	a.screenshot(t, "import-preview.png")
	checkAccessible(t, a, "import preview")

	a.click(t, "#import-declare")
	a.waitFor(t, "the free airspace declared", `deconflict.snapshot().importItems[0].status === 'declared'`, 15*time.Second)
	a.waitFor(t, "the new volume drawn, the preview gone", `deconflict.snapshot().drawn?.volumes === 2 && deconflict.snapshot().drawn?.preview === 0`, 20*time.Second)
	var vs struct {
		Volumes []struct {
			Party     string `json:"party"`
			AltLowerM float64
		} `json:"volumes"`
	}
	be.call(t, coalition, "GET", "/v1/volumes", nil, &vs)
	n := 0
	for _, v := range vs.Volumes {
		if v.Party == coalition {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d coalition volumes declared, want 1 (the conflicting and refused ones stay out)", n)
	}

	// The conflicting airspace's alternatives, as the service offers them.
	alts := `#import-items li[data-item="1"] button.alternative`
	a.waitFor(t, "the alternatives of the conflicting airspace", `document.querySelectorAll('`+alts+`').length >= 2`, 10*time.Second)
	offered := eval[[]string](t, a, `[...document.querySelectorAll('`+alts+`')].map(b => b.dataset.change + ' ' + b.textContent)`)
	var later, up string
	for _, o := range offered {
		switch {
		case strings.HasPrefix(o, "time ") && strings.Contains(o, "later"):
			later = o
		case strings.HasPrefix(o, "altitude ") && strings.Contains(o, "(up "):
			up = o
		}
	}
	// Over airgroup's 8,000-12,000 m until 3 h from now: up means a lower
	// limit 1,000 ft above 12,000 m, later means after its window.
	if later == "" || !strings.Contains(up, "12,305 m–") {
		t.Fatalf("alternatives offered %q: want one later and one up to 12,305 m", offered)
	}
	// Pointing at the later one draws it and moves the slider past
	// airgroup's window (and the two hours of the one just declared): no
	// volume is drawn there but the alternative.
	laterSel := alts + `[data-change="time"]`
	a.do(t, chromedp.Focus(chromedp.CSS(laterSel)))
	a.waitFor(t, "the alternative drawn", `deconflict.snapshot().drawn?.alternative.startsWith('alternative ')`, 10*time.Second)
	a.waitFor(t, "the slider in the alternative's window", `deconflict.snapshot().sliderMin > 175 && document.getElementById('time-slider').value > 175 && deconflict.snapshot().drawn?.volumes === 0`, 10*time.Second)
	a.screenshot(t, "import-alternative.png")
	a.click(t, laterSel)
	a.waitFor(t, "the alternative declared", `deconflict.snapshot().importItems[1].status === 'declared'`, 15*time.Second)
	var after struct {
		Volumes []struct {
			Party     string `json:"party"`
			Start     time.Time
			Conflicts []any
		} `json:"volumes"`
	}
	be.call(t, coalition, "GET", "/v1/volumes", nil, &after)
	n = 0
	for _, v := range after.Volumes {
		if v.Party != coalition {
			continue
		}
		n++
		if len(v.Conflicts) > 0 {
			t.Errorf("a declared volume conflicts: %+v", v)
		}
		if v.Start.After(now.Add(3 * time.Hour)) {
			later = ""
		}
	}
	if n != 2 || later != "" {
		t.Fatalf("%d coalition volumes, the later alternative among them: %v (%+v)", n, later == "", after.Volumes)
	}
	a.click(t, "#time-now")

	// A GeoJSON file dropped next: its features are previewed the same
	// way, a refusal naming the feature's index.
	a.click(t, "#import-cancel")
	a.waitFor(t, "the import panel closed", `document.getElementById('import-panel').hidden`, 10*time.Second)
	a.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([`+jsString(importGeoJSON)+`], 'areas.geojson', { type: 'application/geo+json' }));
		document.getElementById('map').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
	})()`))
	a.waitFor(t, "the preview of three features", `deconflict.snapshot().importItems.length === 3 && deconflict.snapshot().importItems[0].name === 'GEOJSON AREA'`, 15*time.Second)
	got = eval[[]map[string]any](t, a, `deconflict.snapshot().importItems`)
	for i, w := range []struct{ name, status string }{{"GEOJSON AREA", "ok"}, {"A POINT", "refused"}, {"ROUTE OVER AIRGROUP", "conflicting"}} {
		if got[i]["name"] != w.name || got[i]["status"] != w.status {
			t.Errorf("feature %d: %v, want %+v", i, got[i], w)
		}
	}
	a.waitFor(t, "the area and the route drawn", `deconflict.snapshot().drawn?.preview === 2`, 10*time.Second)
	list = eval[string](t, a, `document.getElementById('import-items').textContent`)
	if !strings.Contains(list, "feature 1A POINTrefusedfeature 1: ") || !strings.Contains(list, "ROUTE OVER AIRGROUPconflictingwith airgroup") {
		t.Errorf("the list does not show the refused feature's index and the conflict: %q", list)
	}
	a.click(t, "#import-declare")
	a.waitFor(t, "the GeoJSON area declared", `deconflict.snapshot().importItems[0].status === 'declared'`, 15*time.Second)
	a.waitFor(t, "the new volume drawn", `deconflict.snapshot().drawn?.volumes === 3 && deconflict.snapshot().drawn?.preview === 0`, 20*time.Second)
	be.call(t, coalition, "GET", "/v1/volumes", nil, &vs)
	n = 0
	for _, v := range vs.Volumes {
		if v.Party == coalition {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d coalition volumes, want 3 (one from each file and the alternative)", n)
	}
	if errs := eval[[]string](t, a, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
	if f := a.failedRequests(); len(f) > 0 {
		t.Errorf("failed requests: %q", f)
	}
}

// TestConsoleImportSaysAlternativesOmitted runs the service with a budget of
// alternatives searches that does not hold a search among 41 volumes (a
// search reserves what it may cost among the volumes near it, 1,140,288
// checks among 41, and the budget holds 1 MiB, refilled at a check a
// second): the conflicting airspace of a preview, and one refused with a
// 409 when declared, each over 41 volumes of airgroup, come without
// alternatives ("alternatives_omitted":"budget"). The list says
// plainly that they were not searched (not that none is free of conflict),
// and its button asks again: the search costs more than the budget ever
// holds, and the list says so (422 beyond-budget) and that asking again
// will not help, the button disabled.
func TestConsoleImportSaysAlternativesOmitted(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	// The least burst, the reading of a 1 MiB body, refilled at one check
	// a second: a search among 41 volumes waits for more than a day.
	be := startBackendWith(t, api.Options{AlternativesChecksPerSecond: 1, AlternativesChecksBurst: 1})
	front := httptestServer(t, newCutProxy(be.url))
	browser := startBrowser(t)
	now := time.Now().UTC()
	window := func(v map[string]any) map[string]any {
		v["start"], v["end"] = now.Add(-time.Hour).Format(time.RFC3339), now.Add(3*time.Hour).Format(time.RFC3339)
		v["priority"], v["state"], v["key"] = 0, "accepted", []any{}
		return v
	}
	// 41 volumes of airgroup over a place, each conflicting with a write
	// there: a search of its alternatives reserves more than the budget
	// holds.
	stack := func(lon, lat, lowerM, upperM float64) {
		for range 41 {
			be.call(t, airgroup, "POST", "/v1/volumes", window(map[string]any{
				"footprint":   map[string]any{"type": "Circle", "center": []float64{lon, lat}, "radius_m": 30000},
				"alt_lower_m": lowerM, "alt_upper_m": upperM,
			}), nil)
		}
	}
	stack(37.8, 34.0, 8000, 12000)
	// A search near one volume of airgroup's is within the budget.
	var searched struct {
		Alternatives []any `json:"alternatives"`
	}
	be.call(t, airgroup, "POST", "/v1/volumes", window(map[string]any{
		"footprint":   map[string]any{"type": "Circle", "center": []float64{30.0, 30.0}, "radius_m": 9000},
		"alt_lower_m": 9000, "alt_upper_m": 10000,
	}), nil)
	be.call(t, coalition, "POST", "/v1/volumes/alternatives", window(map[string]any{
		"footprint":   map[string]any{"type": "Circle", "center": []float64{30.0, 30.0}, "radius_m": 9000},
		"alt_lower_m": 9000, "alt_upper_m": 10000,
	}), &searched)
	if len(searched.Alternatives) == 0 {
		t.Fatal("the search near one volume, which the budget holds, found no alternatives")
	}

	a := openTab(t, browser, coalition, false)
	a.do(t, chromedp.EmulateViewport(1600, 1000), chromedp.Navigate(front.URL))
	a.do(t, chromedp.SendKeys(chromedp.ID("token"), be.tokens[coalition]), chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	a.waitFor(t, "the party name", `document.getElementById('party-name').textContent === `+jsString(coalition), 15*time.Second)
	a.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([`+jsString(importFile)+`], 'airspace.txt', { type: 'text/plain' }));
		document.getElementById('map').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
	})()`))
	a.waitFor(t, "the preview of three airspaces", `deconflict.snapshot().importItems.length === 3`, 15*time.Second)

	// The conflicting airspace: no alternatives, and the list says why.
	conflicting := `#import-items li[data-item="1"]`
	a.waitFor(t, "the omitted alternatives said", `!!document.querySelector('`+conflicting+` .alternatives-omitted[data-omitted="budget"]')`, 10*time.Second)
	if n := eval[int](t, a, `document.querySelectorAll('`+conflicting+` button.alternative').length`); n != 0 {
		t.Errorf("%d alternatives offered though none were searched", n)
	}
	said := eval[string](t, a, `document.querySelector('`+conflicting+`').textContent`)
	if !strings.Contains(said, "Alternatives not searched: this party's budget of alternatives searches was spent") {
		t.Errorf("the conflicting airspace does not say its alternatives were not searched: %q", said)
	}
	checkAccessible(t, a, "import preview, alternatives omitted")

	// Asking again: the search among 41 volumes costs more than the
	// budget ever holds (its burst), and the list says that asking again
	// will not help, the button disabled.
	a.click(t, conflicting+` button.search-again`)
	a.waitFor(t, "the refusal of the search asked again", `!!document.querySelector('`+conflicting+` .search-refused')`, 10*time.Second)
	refused := eval[string](t, a, `document.querySelector('`+conflicting+` .search-refused').textContent`)
	if !strings.Contains(refused, "ever holds (HTTP 422") || !strings.Contains(refused, "asking again will not help") || strings.Contains(refused, "Ask again in ") {
		t.Errorf("the search asked again does not say it can never be done: %q", refused)
	}
	if !eval[bool](t, a, `document.querySelector('`+conflicting+` button.search-again').disabled`) {
		t.Error("the button still offers a search that can never be done")
	}
	a.screenshot(t, "import-alternatives-omitted.png")

	// 41 volumes of airgroup's over the free airspace since the preview:
	// declaring it is refused with a 409, its alternatives omitted too.
	stack(40.1, 35.1, 2000, 6000)
	a.click(t, "#import-declare")
	a.waitFor(t, "the free airspace refused", `deconflict.snapshot().importItems[0].status === 'conflicting'`, 15*time.Second)
	first := `#import-items li[data-item="0"]`
	a.waitFor(t, "the omitted alternatives of the refused write said", `!!document.querySelector('`+first+` .alternatives-omitted[data-omitted="budget"] button.search-again')`, 10*time.Second)
	a.click(t, first+` button.search-again`)
	a.waitFor(t, "the refusal of its search asked again", `/ever holds \(HTTP 422/.test(document.querySelector('`+first+` .search-refused')?.textContent || '')`, 10*time.Second)

	if errs := eval[[]string](t, a, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
	for _, f := range a.failedRequests() {
		if !strings.HasPrefix(f, "422 ") && !strings.HasPrefix(f, "429 ") && !strings.HasPrefix(f, "409 ") {
			t.Errorf("failed request: %q", f)
		}
	}
}

// TestConsoleImportWaitsForTheVolumeBudget declares a file of 14
// airspaces of 200 vertices (241 positions a write, with the base) with a
// budget of volume writes that holds 8 of them at once and refills at 200
// positions a second, under one write a second: the writes refused with
// 429 (nothing written) are sent again after their Retry-After, and every
// airspace is declared. The console used to list the refused ones as
// refused: a file of large footprints lost its last items.
func TestConsoleImportWaitsForTheVolumeBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	be := startBackendWith(t, api.Options{VolumePositionsPerSecond: 200, VolumePositionsBurst: 1})
	front := httptestServer(t, newCutProxy(be.url))
	browser := startBrowser(t)
	const airspaces, vertices = 14, 200
	dms := func(deg float64) string {
		s := int(math.Round(deg * 3600))
		return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	var file strings.Builder
	for i := range airspaces {
		lat, lon := 20+float64(i/7), 10+float64(i%7)
		fmt.Fprintf(&file, "AC R\nAN AREA %d\nAL FL100\nAH FL150\n", i)
		for k := range vertices + 1 {
			a := 2 * math.Pi * float64(k%vertices) / vertices
			fmt.Fprintf(&file, "DP %s N %s E\n", dms(lat+0.2*math.Sin(a)), "0"+dms(lon+0.2*math.Cos(a)))
		}
		file.WriteString("\n")
	}
	a := openTab(t, browser, coalition, false)
	a.do(t, chromedp.EmulateViewport(1600, 1000), chromedp.Navigate(front.URL))
	a.do(t, chromedp.SendKeys(chromedp.ID("token"), be.tokens[coalition]), chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	a.waitFor(t, "the party name", `document.getElementById('party-name').textContent === `+jsString(coalition), 15*time.Second)
	a.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([`+jsString(file.String())+`], 'areas.txt', { type: 'text/plain' }));
		document.getElementById('map').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
	})()`))
	a.waitFor(t, "the preview", `deconflict.snapshot().importItems.length === `+strconv.Itoa(airspaces)+` && deconflict.snapshot().importItems.every(it => it.status === 'ok')`, 15*time.Second)
	a.click(t, "#import-declare")
	a.waitFor(t, "every airspace declared", `deconflict.snapshot().importItems.every(it => it.status === 'declared')`, 60*time.Second)

	refused := 0
	for _, f := range a.failedRequests() {
		if strings.HasPrefix(f, "429 ") {
			refused++
		} else {
			t.Errorf("failed request: %q", f)
		}
	}
	if refused == 0 {
		t.Fatal("no write was refused for the budget: the test does not reach it")
	}
	var vs struct {
		Volumes []struct{ Party string } `json:"volumes"`
	}
	be.call(t, coalition, "GET", "/v1/volumes", nil, &vs)
	if len(vs.Volumes) != airspaces {
		t.Fatalf("%d volumes declared, want %d", len(vs.Volumes), airspaces)
	}
	if errs := eval[[]string](t, a, `deconflict.snapshot().errors`); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}
