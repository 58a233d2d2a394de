package api

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/airspace"
	"github.com/deconflict/deconflict/internal/testutil/nodejs"
)

// independentGeoJSONCheck fails the test when @placemarkio/check-geojson
// (an independent RFC 7946 validator: types, positions, closed rings of
// four positions or more, members where the RFC puts them) finds issues
// in data.
func independentGeoJSONCheck(t *testing.T, data []byte) {
	t.Helper()
	out := nodejs.Run(t, `
const { getIssues } = require('@placemarkio/check-geojson');
let s = ''; process.stdin.on('data', (d) => s += d).on('end', () => {
  process.stdout.write(JSON.stringify(getIssues(s)));
});`, data)
	var issues []map[string]any
	if err := json.Unmarshal(out, &issues); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(issues) > 0 {
		t.Fatalf("check-geojson finds issues: %v\n%s", issues, data)
	}
}

// GET /v1/volumes?format=geojson|kml|openair renders what the caller may
// see: others' volumes without details, every shape, and it reads back.
func TestVolumesAsGeoJSONKMLOpenAir(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC().Truncate(time.Second)
	orbit := map[string]any{
		"footprint":   map[string]any{"type": "Orbit", "points": [][]float64{{36.0, 35.0}, {36.4, 35.1}}, "width_m": 9000},
		"alt_lower_m": 3000, "alt_upper_m": 4000, "start": now, "end": now.Add(time.Hour),
		"details": map[string]string{"mission": "secret-orbit"},
	}
	var a wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], orbit, 201, &a)
	var b wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(40, 30, "own-circle", nil), 201, &b)

	gj := e.mustDo("GET", "/v1/volumes?format=geojson", e.tokens["russia"], nil, 200, nil)
	if strings.Contains(string(gj), "secret-orbit") || !strings.Contains(string(gj), "own-circle") {
		t.Fatalf("geojson shows others' details or hides the caller's own: %s", gj)
	}
	as, err := airspace.ReadGeoJSON(gj)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 {
		t.Fatalf("%d features, want 2", len(as))
	}
	for _, x := range as {
		if x.Volume == nil || x.Volume.ID == "" || x.Volume.Party == "" || x.Volume.Version == "" || x.Volume.State == "" ||
			x.Volume.Start == nil || x.Volume.End == nil {
			t.Fatalf("feature without the volume's fields: %+v", x)
		}
		if x.Volume.ID == a.ID && (x.Shape.Type != airspace.OrbitShape || x.Shape.WidthM != 9000 || x.Lower.Value != 3000 || x.Upper.Value != 4000) {
			t.Fatalf("orbit read back as %+v", x)
		}
	}
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Geometry struct {
				Type string `json:"type"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(gj, &fc); err != nil || fc.Type != "FeatureCollection" || fc.Features[0].Geometry.Type != "Polygon" {
		t.Fatalf("not a FeatureCollection of polygons: %v %s", err, gj)
	}
	independentGeoJSONCheck(t, gj)

	kml := e.mustDo("GET", "/v1/volumes?format=kml", e.tokens["coalition"], nil, 200, nil)
	var doc struct {
		Placemarks []struct {
			Name string `xml:"name"`
		} `xml:"Document>Placemark"`
	}
	if err := xml.Unmarshal(kml, &doc); err != nil || len(doc.Placemarks) != 2 {
		t.Fatalf("kml: %v %d placemarks\n%s", err, len(doc.Placemarks), kml)
	}
	if !strings.Contains(string(kml), "<altitudeMode>absolute</altitudeMode>") || !strings.Contains(string(kml), "<TimeSpan>") {
		t.Fatalf("kml without absolute altitudes or time spans: %s", kml)
	}

	oa := e.mustDo("GET", "/v1/volumes?format=openair", e.tokens["coalition"], nil, 200, nil)
	back, err := airspace.ParseOpenAir(strings.NewReader(string(oa)))
	if err != nil || len(back) != 2 {
		t.Fatalf("openair: %v %d\n%s", err, len(back), oa)
	}
	code, body, _ := e.do("GET", "/v1/volumes?format=shp", e.tokens["coalition"], nil)
	if code != 400 || !strings.Contains(string(body), `"field":"format"`) {
		t.Fatalf("unknown format: %d %s", code, body)
	}
}

// GET /v1/tracks?format=geojson: an RFC 7946 FeatureCollection of the
// tracks the caller may see, one Point each with the track's fields.
func TestTracksAsGeoJSON(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC()
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []map[string]any{{
		"aircraft": "c1", "callsign": "VIPER1", "time": now, "lat": 35.5, "lon": 36.5, "alt_m": 6000,
		"vel_east_mps": 200, "vel_north_mps": 0, "vel_up_mps": 0,
	}}}, 202, nil)
	// The party's own aircraft (others' it sees only within the
	// disclosure rules, as in the JSON form).
	b := e.mustDo("GET", "/v1/tracks?format=geojson", e.tokens["coalition"], nil, 200, nil)
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Geometry struct {
				Type        string    `json:"type"`
				Coordinates []float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(b, &fc); err != nil || fc.Type != "FeatureCollection" || len(fc.Features) != 1 {
		t.Fatalf("%v %s", err, b)
	}
	independentGeoJSONCheck(t, b)
	f := fc.Features[0]
	if f.Geometry.Type != "Point" || f.Geometry.Coordinates[0] != 36.5 || f.Geometry.Coordinates[1] != 35.5 ||
		f.Properties["party"] != "coalition" || f.Properties["callsign"] != "VIPER1" || f.Properties["alt_m"] != 6000.0 {
		t.Fatalf("track feature %+v", f)
	}
	code, _, _ := e.do("GET", "/v1/tracks?format=kml", e.tokens["russia"], nil)
	if code != 400 {
		t.Fatalf("tracks as kml: %d", code)
	}
}

const previewOpenAir = `AC R
AN FREE
AL GND
AH FL100
DP 10:00:00 N 010:00:00 E
DP 10:00:00 N 010:10:00 E
DP 10:10:00 N 010:10:00 E
DP 10:00:00 N 010:00:00 E

AC R
AN NEAR-RUSSIA
AL 1000ft AMSL
AH FL200
V X=40:00:00 N 030:00:00 E
DC 2

AC R
AN TWISTED
AL GND
AH FL100
DP 20:00:00 N 020:00:00 E
DP 20:00:00 N 020:10:00 E
DP 20:10:00 N 020:00:00 E
DP 20:10:00 N 020:10:00 E
DP 20:00:00 N 020:00:00 E
`

// POST /v1/volumes/preview: each airspace's volume write, its conflicts,
// or its refusal with the line; nothing is written.
func TestPreviewOpenAir(t *testing.T) {
	e := newEnv(t, Options{})
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(40, 30, "theirs", nil), 201, nil)
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	var got struct {
		Items []struct {
			Line   int    `json:"line"`
			Name   string `json:"name"`
			Status string `json:"status"`
			Reason string `json:"reason"`
			Input  *struct {
				AltUpperM float64 `json:"alt_upper_m"`
			}
			Conflicts []wireVolume `json:"conflicts"`
		} `json:"items"`
	}
	e.mustDo("POST", path, e.tokens["coalition"], previewOpenAir, 200, &got)
	if len(got.Items) != 3 {
		t.Fatalf("%d items", len(got.Items))
	}
	if it := got.Items[0]; it.Status != "ok" || it.Input == nil || it.Input.AltUpperM < 3047 || it.Input.AltUpperM > 3049 {
		t.Fatalf("free item %+v", it)
	}
	if it := got.Items[1]; it.Status != "conflicting" || len(it.Conflicts) != 1 || it.Conflicts[0].Party != "russia" || len(it.Conflicts[0].Details) != 0 {
		t.Fatalf("conflicting item %+v", it)
	}
	if it := got.Items[2]; it.Status != "refused" || it.Line != 25 || !strings.Contains(it.Reason, "crosses") {
		t.Fatalf("refused item %+v", it)
	}
	b := e.mustDo("GET", "/v1/volumes", e.tokens["coalition"], nil, 200, nil)
	if strings.Contains(string(b), `"party":"coalition"`) {
		t.Fatalf("a preview wrote a volume: %s", b)
	}
	// An unknown record refuses its airspace, naming the line; before
	// any airspace, it refuses the file.
	e.mustDo("POST", path, e.tokens["coalition"], "AC R\nAN X\nAL GND\nAH FL10\nXX nonsense\n", 200, &got)
	if len(got.Items) != 1 || got.Items[0].Status != "refused" || got.Items[0].Line != 5 || !strings.Contains(got.Items[0].Reason, `unknown record "XX"`) {
		t.Fatalf("unknown record: %+v", got.Items)
	}
	code, body, _ := e.do("POST", path, e.tokens["coalition"], "* a comment\nXX nonsense\nAC R\n")
	if code != 400 || !strings.Contains(string(body), `"line":2`) || !strings.Contains(string(body), `"field":"file"`) {
		t.Fatalf("unknown record before any airspace: %d %s", code, body)
	}
	var gj struct {
		Items []struct {
			Feature *int   `json:"feature"`
			Status  string `json:"status"`
			Reason  string `json:"reason"`
		} `json:"items"`
	}
	e.mustDo("POST", "/v1/volumes/preview?format=geojson", e.tokens["coalition"],
		`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":10},"geometry":{"type":"Point","coordinates":[1,2]}}]}`, 200, &gj)
	if len(gj.Items) != 1 || gj.Items[0].Status != "refused" || gj.Items[0].Feature == nil || *gj.Items[0].Feature != 0 ||
		!strings.HasPrefix(gj.Items[0].Reason, "feature 0: ") {
		t.Fatalf("point feature: %+v", gj)
	}
	code, body, _ = e.do("POST", "/v1/volumes/preview?format=geojson", e.tokens["coalition"], `{"type":"Topology"}`)
	if code != 400 || !strings.Contains(string(body), `"field":"file"`) {
		t.Fatalf("not GeoJSON: %d %s", code, body)
	}
	code, _, _ = e.do("POST", "/v1/volumes/preview?format=shp", e.tokens["coalition"], "x")
	if code != 400 {
		t.Fatalf("unknown format: %d", code)
	}
	// Without a window, an airspace without activation times is refused.
	e.mustDo("POST", "/v1/volumes/preview?format=openair", e.tokens["coalition"], previewOpenAir, 200, &got)
	if got.Items[0].Status != "refused" || !strings.Contains(got.Items[0].Reason, "--start") {
		t.Fatalf("no window: %+v", got.Items[0])
	}
}

// POST /v1/volumes/preview of a GND-UNL airspace under the default rules
// (bands of 15,000 m at most, UNL taken as FL660): refused on its AH line,
// the reason saying what UNL was taken as, the rules' limit and how to
// import it; with unlimited_m=15000 it would be declared.
func TestPreviewUnlimitedAirspace(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	const src = "AC Q\nAN Lampedusa(LaserBeam)\nAL GND\nAH UNL\nV X=35:31:06 N 012:37:50 E\nDC 0.5\n"
	var got struct {
		Items []struct {
			Line   int    `json:"line"`
			Status string `json:"status"`
			Reason string `json:"reason"`
			Field  string `json:"field"`
			Input  *struct {
				AltUpperM float64 `json:"alt_upper_m"`
			} `json:"input"`
		} `json:"items"`
	}
	e.mustDo("POST", path, e.tokens["coalition"], src, 200, &got)
	it := got.Items[0]
	if it.Status != "refused" || it.Line != 4 || it.Field != "alt_upper_m" {
		t.Fatalf("GND-UNL: %+v", it)
	}
	for _, want := range []string{"UNL (line 4)", "FL660", "max_alt_range_m is 15000 m", "--unlimited-m 15000 or lower", "unlimited_m"} {
		if !strings.Contains(it.Reason, want) {
			t.Errorf("reason %q lacks %q", it.Reason, want)
		}
	}
	e.mustDo("POST", path+"&unlimited_m=15000", e.tokens["coalition"], src, 200, &got)
	if it := got.Items[0]; it.Status != "ok" || it.Input == nil || it.Input.AltUpperM != 15000 {
		t.Fatalf("GND-UNL with unlimited_m=15000: %+v", it)
	}
}

// regularPolygon is a GeoJSON Polygon of n vertices on a circle of
// radiusDeg degrees around lat/lon.
func regularPolygon(lat, lon, radiusDeg float64, n int) map[string]any {
	ring := make([][]float64, 0, n+1)
	for i := range n {
		a := 2 * math.Pi * float64(i) / float64(n)
		ring = append(ring, []float64{lon + radiusDeg*math.Cos(a), lat + radiusDeg*math.Sin(a)})
	}
	ring = append(ring, ring[0])
	return map[string]any{"type": "Polygon", "coordinates": [][][]float64{ring}}
}

// circlesOpenAir is an OpenAir file of n circles of 1 NM at lat/lon.
func circlesOpenAir(n int, lat, lon int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "AC R\nAN C%d\nAL GND\nAH FL100\nV X=%02d:00:00 N %03d:00:00 E\nDC 1\n", i, lat, lon)
	}
	return b.String()
}

// A preview's cost and answer are bounded, whatever the file: more items
// than MaxPreviewItems, or an answer beyond MaxPreviewAnswerBytes, is
// refused with 413 naming the file. A small file of circles over another
// party's 1,000-vertex polygon used to answer 40 KB per circle: 80 KB of
// file, 40 MB of answer, and 8 MB of file (the body's limit) gigabytes.
func TestPreviewLimits(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	refused := func(src, want string) {
		t.Helper()
		var p struct{ Type, Field, Detail string }
		e.mustDo("POST", path, e.tokens["russia"], src, http.StatusRequestEntityTooLarge, &p)
		if p.Type != ProblemBase+"preview-too-large" || p.Field != "file" || !strings.Contains(p.Detail, want) {
			t.Fatalf("refusal %+v, want preview-too-large naming the file and %q", p, want)
		}
	}
	refused(circlesOpenAir(MaxPreviewItems+1, 10, 10), fmt.Sprint(MaxPreviewItems))
	// One airspace is an item per activation interval.
	var windows strings.Builder
	windows.WriteString("AC R\nAN OFTEN\nAL GND\nAH FL100\n")
	first := now.Truncate(time.Minute).Add(time.Minute)
	for i := range MaxPreviewItems + 1 {
		from := first.Add(time.Duration(2*i) * time.Minute)
		fmt.Fprintf(&windows, "AA %s/%s\n", from.Format("2006-01-02T15:04Z"), from.Add(time.Minute).Format("2006-01-02T15:04Z"))
	}
	windows.WriteString("V X=10:00:00 N 010:00:00 E\nDC 1\n")
	var p struct{ Type, Detail string }
	e.mustDo("POST", fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(15*24*time.Hour).Format(time.RFC3339)),
		e.tokens["russia"], windows.String(), http.StatusRequestEntityTooLarge, &p)
	if p.Type != ProblemBase+"preview-too-large" || !strings.Contains(p.Detail, "activation interval") {
		t.Fatalf("refusal %+v, want preview-too-large for the items of one airspace's intervals", p)
	}

	detailed := map[string]any{
		"footprint":   regularPolygon(35, 36, 0.05, 1000),
		"alt_lower_m": 0, "alt_upper_m": 15000, "start": now, "end": now.Add(2 * time.Hour),
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], detailed, 201, nil)
	// Each circle over it answers the polygon again (about 40 KB).
	circles := MaxPreviewAnswerBytes/30_000 + 1
	if circles > MaxPreviewItems {
		t.Fatalf("%d circles are beyond the item limit: the test no longer tests the answer's", circles)
	}
	refused(circlesOpenAir(circles, 35, 36), fmt.Sprint(MaxPreviewAnswerBytes))
	// A file of a few gets its answer.
	var got struct{ Items []struct{ Status string } }
	e.mustDo("POST", path, e.tokens["russia"], circlesOpenAir(3, 35, 36), 200, &got)
	if len(got.Items) != 3 || got.Items[2].Status != "conflicting" {
		t.Fatalf("items %+v", got.Items)
	}
}

// A band without height (lower == upper) is refused like an inverted one:
// 400 naming alt_upper_m on the write and on the search of alternatives,
// nothing written; the preview of an airspace refuses its item, naming its
// AH line.
func TestBandWithoutHeightIsRefused(t *testing.T) {
	e := newEnv(t, Options{})
	flat := circleVolume(35, 36, "flat", nil)
	flat["alt_lower_m"], flat["alt_upper_m"] = 5000, 5000
	for _, path := range []string{"/v1/volumes", "/v1/volumes/alternatives"} {
		code, b, h := e.do("POST", path, e.tokens["coalition"], flat)
		var p Problem
		_ = json.Unmarshal(b, &p)
		if code != 400 || p.Field != "alt_upper_m" || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
			t.Errorf("POST %s of a band without height: %d %s", path, code, b)
		}
	}
	b := e.mustDo("GET", "/v1/volumes", e.tokens["coalition"], nil, 200, nil)
	if strings.Contains(string(b), `"party":"coalition"`) {
		t.Fatalf("a refused write stored a volume: %s", b)
	}
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	var got struct {
		Items []struct {
			Line   int    `json:"line"`
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"items"`
	}
	e.mustDo("POST", path, e.tokens["coalition"], "AC R\nAN FLAT\nAL FL100\nAH FL100\nV X=35:00:00 N 036:00:00 E\nDC 2\n", 200, &got)
	if len(got.Items) != 1 || got.Items[0].Status != "refused" || got.Items[0].Line != 4 {
		t.Fatalf("preview of an OpenAir airspace without height: %+v", got.Items)
	}
	e.mustDo("POST", "/v1/volumes/preview?format=geojson&"+strings.SplitN(path, "&", 2)[1], e.tokens["coalition"],
		`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"alt_lower_m":5000,"alt_upper_m":5000},"geometry":{"type":"Polygon","coordinates":[[[36,35],[36.1,35],[36.1,35.1],[36,35]]]}}]}`, 200, &got)
	if len(got.Items) != 1 || got.Items[0].Status != "refused" || !strings.Contains(got.Items[0].Reason, "no height") {
		t.Fatalf("preview of a GeoJSON feature without height: %+v", got.Items)
	}
}

// A party's previews are counted against its budget by item, not by
// request: a preview is served while the budget holds a whole one
// (MaxPreviewItems) and costs its items; beyond, it is refused, unread,
// with 429 too-many-preview-items and Retry-After, while the other
// parties preview on. Counted by request, four previews of 3,000 polygons
// at once took another party's report latency from 0.5 ms to 89 ms.
func TestPreviewBudgetCountsItems(t *testing.T) {
	e := newEnv(t, Options{PreviewItemsPerSecond: 0.001, PreviewItemsBurst: MaxPreviewItems + 9})
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	var got struct{ Items []json.RawMessage }
	for range 2 {
		e.mustDo("POST", path, e.tokens["coalition"], circlesOpenAir(5, 10, 10), 200, &got)
		if len(got.Items) != 5 {
			t.Fatalf("%d items, want 5", len(got.Items))
		}
	}
	code, body, hdr := e.do("POST", path, e.tokens["coalition"], circlesOpenAir(1, 10, 10))
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-preview-items" || !strings.Contains(p.Detail, "0.001 preview items a second") {
		t.Fatalf("third preview: %d %s, want 429 too-many-preview-items naming the budget", code, body)
	}
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	e.mustDo("POST", path, e.tokens["russia"], circlesOpenAir(5, 10, 10), 200, &got)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("A", 35, 36, 6000, 100, time.Now())}}, 202, nil)
	e.wantRefusals(budgetPreviews, "coalition", 1)
	e.wantRefusals(budgetPreviews, "russia", 0)
}
