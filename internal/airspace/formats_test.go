package airspace

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// readAll reads every OpenAir test file that is valid.
func readAll(t *testing.T) []Airspace {
	t.Helper()
	var all []Airspace
	files, _ := filepath.Glob(filepath.Join(reference.OpenAir(t), "*.txt"))
	for _, f := range files {
		if w, ok := openAIPOutcome[filepath.Base(f)]; !ok || w.errLine != 0 {
			continue
		}
		as, err := parseFile(t, f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, as...)
	}
	if len(all) < 20 {
		t.Fatalf("only %d airspaces read", len(all))
	}
	return all
}

func samePoint(a, b orb.Point, tolDeg float64) bool {
	return math.Abs(a[0]-b[0]) <= tolDeg && math.Abs(a[1]-b[1]) <= tolDeg
}

func sameShape(t *testing.T, got, want Shape, tolDeg float64) {
	t.Helper()
	if got.Type != want.Type {
		t.Fatalf("shape %s, want %s", got.Type, want.Type)
	}
	switch got.Type {
	case CircleShape:
		if !samePoint(got.Center, want.Center, tolDeg) || math.Abs(got.RadiusM-want.RadiusM) > 1e-6 {
			t.Fatalf("circle %v %v, want %v %v", got.Center, got.RadiusM, want.Center, want.RadiusM)
		}
	case CorridorShape, OrbitShape:
		if len(got.Line) != len(want.Line) || math.Abs(got.WidthM-want.WidthM) > 1e-6 {
			t.Fatalf("line %v width %v, want %v %v", got.Line, got.WidthM, want.Line, want.WidthM)
		}
		for i := range got.Line {
			if !samePoint(got.Line[i], want.Line[i], tolDeg) {
				t.Fatalf("line point %d %v, want %v", i, got.Line[i], want.Line[i])
			}
		}
	default:
		if len(got.Ring) != len(want.Ring) {
			t.Fatalf("%d ring positions, want %d", len(got.Ring), len(want.Ring))
		}
		for i := range got.Ring {
			if !samePoint(got.Ring[i], want.Ring[i], tolDeg) {
				t.Fatalf("ring position %d %v, want %v", i, got.Ring[i], want.Ring[i])
			}
		}
	}
}

func sameLimits(t *testing.T, got, want Airspace) {
	t.Helper()
	if got.Lower != want.Lower || got.Upper != want.Upper {
		t.Fatalf("%s: limits %v..%v, want %v..%v", want.Name, got.Lower, got.Upper, want.Lower, want.Upper)
	}
}

// TestOpenAirRoundTrip: what WriteOpenAir writes, ParseOpenAir reads back
// to the same airspaces (positions to the hundredth of a second).
func TestOpenAirRoundTrip(t *testing.T) {
	all := readAll(t)
	back := writeReadOpenAir(t, all)
	for i := range all {
		if back[i].Name != all[i].Name || back[i].Class != all[i].Class || back[i].Type != all[i].Type ||
			back[i].ByNOTAM != all[i].ByNOTAM || len(back[i].Activations) != len(all[i].Activations) ||
			back[i].Frequency != all[i].Frequency || back[i].Station != all[i].Station || back[i].Transponder != all[i].Transponder {
			t.Fatalf("airspace %d: %+v, wrote %+v", i, back[i], all[i])
		}
		sameLimits(t, back[i], all[i])
		sameShape(t, back[i].Shape, all[i].Shape, 0.01/3600)
	}
}

// TestOpenAirOutputMatchesOpenAIP: openAIP's test of its OpenAir writer
// (in-output-openair.txt written out as expected-output-openair.txt), the
// comment lines aside.
func TestOpenAirOutputMatchesOpenAIP(t *testing.T) {
	dir := reference.OpenAir(t)
	in, err := parseFile(t, filepath.Join(dir, "in-output-openair.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteOpenAir(&buf, in); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "expected-output-openair.txt"))
	if err != nil {
		t.Fatal(err)
	}
	strip := func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "*") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	if g, w := strip(buf.String()), strip(string(want)); g != w {
		t.Fatalf("wrote\n%s\nopenAIP writes\n%s", g, w)
	}
}

// TestGeoJSONRoundTrip: WriteGeoJSON's FeatureCollection reads back to the
// same airspaces; circles, orbits and corridors exactly (from their
// footprint property), polygons as their rings (wound counterclockwise).
func TestGeoJSONRoundTrip(t *testing.T) {
	all := readAll(t)
	start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	end := start.Add(2 * time.Hour)
	prio := 3
	all = append(all, Airspace{
		Name: "orbit", Lower: Limit{Value: 3000, Unit: Meters, Datum: MSL}, Upper: Limit{Value: 120, Unit: FlightLevel, Datum: STD},
		Shape:  Shape{Type: OrbitShape, Line: orb.LineString{{36.1, 35.2}, {36.4, 35.3}}, WidthM: 9000},
		Volume: &VolumeFields{ID: "v1", Party: "coalition", Version: "3", State: "accepted", Start: &start, End: &end, Priority: &prio, Details: []byte(`{"callsign":"ALPHA"}`)},
	})
	data, err := WriteGeoJSON(all, 0, 20000)
	if err != nil {
		t.Fatal(err)
	}
	back, err := whole(ReadGeoJSON(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(all) {
		t.Fatalf("%d features back, wrote %d", len(back), len(all))
	}
	for i := range all {
		if back[i].Name != all[i].Name || back[i].Class != all[i].Class || back[i].ByNOTAM != all[i].ByNOTAM {
			t.Fatalf("feature %d: %+v, wrote %+v", i, back[i], all[i])
		}
		sameLimits(t, back[i], all[i])
		want := all[i].Shape
		if want.Type == PolygonShape {
			want = Shape{Type: PolygonShape, Ring: want.Outline()}
		}
		sameShape(t, back[i].Shape, want, 0)
	}
	v := back[len(back)-1].Volume
	if v == nil || v.ID != "v1" || v.Party != "coalition" || v.State != "accepted" || !v.Start.Equal(start) || !v.End.Equal(end) ||
		*v.Priority != 3 || string(v.Details) != `{"callsign":"ALPHA"}` {
		t.Fatalf("volume fields %+v", v)
	}
}

// TestGeoJSONRefusals: each refused feature is named by its index.
func TestGeoJSONRefusals(t *testing.T) {
	good := `{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":100},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}`
	for name, bad := range map[string]string{
		"point":       `{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":100},"geometry":{"type":"Point","coordinates":[1,2]}}`,
		"linestring":  `{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":100},"geometry":{"type":"LineString","coordinates":[[1,2],[3,4]]}}`,
		"multipoint":  `{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":100},"geometry":{"type":"MultiPoint","coordinates":[[1,2]]}}`,
		"hole":        `{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":100},"geometry":{"type":"Polygon","coordinates":[[[0,0],[3,0],[3,3],[0,0]],[[1,1],[2,1],[2,2],[1,1]]]}}`,
		"no geometry": `{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":100},"geometry":null}`,
		"no limit":    `{"type":"Feature","properties":{"alt_upper_m":100},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}`,
		"two limits":  `{"type":"Feature","properties":{"alt_lower_m":0,"alt_lower_ft":0,"alt_upper_m":100},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}`,
		"bad start":   `{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":100,"start":"noon"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}`,
		"inverted":    `{"type":"Feature","properties":{"alt_lower_m":200,"alt_upper_m":100},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}`,
		"bad shape":   `{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":100,"footprint":{"type":"Blob"}},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}`,
		"not feature": `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}`,
	} {
		t.Run(name, func(t *testing.T) {
			data := `{"type":"FeatureCollection","features":[` + good + "," + good + "," + bad + "," + good + "]}"
			as, err := ReadGeoJSON([]byte(data))
			if err != nil || len(as) != 4 || as[0].Err != nil || as[3].Err != nil {
				t.Fatalf("%v %+v", err, as)
			}
			err = as[2].Err
			var le *LineError
			if !errors.As(err, &le) || le.Feature != 2 {
				t.Fatalf("error %v, want one naming feature 2", err)
			}
			if !strings.HasPrefix(err.Error(), "feature 2: ") {
				t.Fatalf("error %q does not start with the feature", err)
			}
		})
	}
	if _, err := ReadGeoJSON([]byte(`{"type":"Topology"}`)); err == nil {
		t.Fatal("a TopoJSON document was accepted")
	}
	as, err := ReadGeoJSON([]byte(good))
	if err != nil || len(as) != 1 {
		t.Fatalf("a single Feature: %v %v", as, err)
	}
	// A refused feature keeps its name for the report.
	as, err = ReadGeoJSON([]byte(`{"type":"Feature","properties":{"name":"A POINT","alt_lower_m":0,"alt_upper_m":100},"geometry":{"type":"Point","coordinates":[1,2]}}`))
	if err != nil || len(as) != 1 || as[0].Err == nil || as[0].Name != "A POINT" {
		t.Fatalf("a refused feature: %+v %v", as, err)
	}
}

// TestKML: the document is well-formed KML 2.2 with one Placemark per
// airspace (per activation interval), blocks with altitudeMode absolute at
// their limits in meters, and a TimeSpan for the window.
func TestKML(t *testing.T) {
	start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	end := start.Add(2 * time.Hour)
	items := []Airspace{
		{Name: "block", Lower: Limit{Value: 1000, Unit: Meters, Datum: MSL}, Upper: Limit{Value: 2000, Unit: Meters, Datum: MSL},
			Shape:  Shape{Type: PolygonShape, Ring: orb.Ring{{0, 0}, {0.1, 0}, {0.1, 0.1}, {0, 0}}},
			Volume: &VolumeFields{ID: "v1", Start: &start, End: &end}},
		{Name: "from the ground", Lower: Surface, Upper: Limit{Value: 95, Unit: FlightLevel, Datum: STD},
			Shape:       Shape{Type: CircleShape, Center: orb.Point{1, 1}, RadiusM: 1000},
			Activations: []Activation{{Start: start, End: end}, {Start: end.Add(time.Hour)}}},
	}
	var buf bytes.Buffer
	if err := WriteKML(&buf, "test", items, 0, 20000); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName    xml.Name `xml:"http://www.opengis.net/kml/2.2 kml"`
		Placemarks []struct {
			Name     string `xml:"name"`
			TimeSpan *struct {
				Begin string `xml:"begin"`
				End   string `xml:"end"`
			} `xml:"TimeSpan"`
			Polygons []struct {
				Extrude      int    `xml:"extrude"`
				AltitudeMode string `xml:"altitudeMode"`
				Coordinates  string `xml:"outerBoundaryIs>LinearRing>coordinates"`
			} `xml:"Polygon"`
			Multi []struct {
				AltitudeMode string `xml:"altitudeMode"`
				Coordinates  string `xml:"outerBoundaryIs>LinearRing>coordinates"`
			} `xml:"MultiGeometry>Polygon"`
		} `xml:"Document>Placemark"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(doc.Placemarks) != 3 {
		t.Fatalf("%d placemarks, want 3 (one block, two activations)", len(doc.Placemarks))
	}
	b := doc.Placemarks[0]
	if b.TimeSpan == nil || b.TimeSpan.Begin != "2026-05-01T08:00:00Z" || b.TimeSpan.End != "2026-05-01T10:00:00Z" {
		t.Fatalf("time span %+v", b.TimeSpan)
	}
	if len(b.Multi) != 2+3 {
		t.Fatalf("%d polygons for a triangle block, want top, bottom and 3 walls", len(b.Multi))
	}
	for _, p := range b.Multi {
		if p.AltitudeMode != "absolute" {
			t.Fatalf("altitude mode %q", p.AltitudeMode)
		}
	}
	if !allAt(t, b.Multi[0].Coordinates, 2000) || !allAt(t, b.Multi[1].Coordinates, 1000) {
		t.Fatalf("top %q bottom %q", b.Multi[0].Coordinates, b.Multi[1].Coordinates)
	}
	g := doc.Placemarks[1]
	if len(g.Polygons) != 1 || g.Polygons[0].Extrude != 1 || g.Polygons[0].AltitudeMode != "absolute" ||
		!allAt(t, g.Polygons[0].Coordinates, 95*100*0.3048) {
		t.Fatalf("surface block %+v", g.Polygons)
	}
	if doc.Placemarks[2].TimeSpan == nil || doc.Placemarks[2].TimeSpan.End != "" {
		t.Fatalf("open activation %+v", doc.Placemarks[2].TimeSpan)
	}
}

// allAt reports whether every lon,lat[,alt] tuple of a KML coordinates
// element is at altM (an absent altitude is 0).
func allAt(t *testing.T, coords string, altM float64) bool {
	t.Helper()
	tuples := strings.Fields(coords)
	for _, tuple := range tuples {
		v := strings.Split(tuple, ",")
		alt := 0.0
		if len(v) == 3 {
			var err error
			if alt, err = strconv.ParseFloat(v[2], 64); err != nil {
				t.Fatalf("coordinates %q: %v", coords, err)
			}
		}
		if len(v) < 2 || len(v) > 3 || math.Abs(alt-altM) > 1e-6 {
			return false
		}
	}
	return len(tuples) >= 4
}

func FuzzParseOpenAir(f *testing.F) {
	for _, name := range []string{"arc-cw-ccw.txt", "airway.txt", "circular.txt", "activation-times.txt", "skipped-tokens.txt", "arc-angle-single-vx.txt"} {
		f.Add(reference.ReadFile(f, filepath.Join(reference.OpenAir(f), name)))
	}
	f.Add([]byte("AC R\nAN x\nAL GND\nAH UNL\nV X=52:00:00 N 013:00:00 E\nDC 0.5\n"))
	f.Add([]byte("AC R\nAN x\nAL FL 95\nAH 1000M AGL\nV D=-\nV X=52:00:00N 013:00:00E\nDA 2,0,90\nDP 52:00:00N 013:00:00E\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		as, err := ParseOpenAir(bytes.NewReader(data))
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		valid := as[:0:0]
		for _, a := range as {
			if a.Err != nil {
				var le *LineError
				if !errors.As(a.Err, &le) || le.Line < a.Line {
					t.Fatalf("airspace error without a line in the airspace: %v (airspace at %d)", a.Err, a.Line)
				}
				continue
			}
			if a.Name == "" || a.Line < 1 {
				t.Fatalf("airspace without a name or line: %+v", a)
			}
			_ = a.Shape.Outline()
			valid = append(valid, a)
		}
		as = valid
		// Written out, each reads back as it was: names, limits,
		// activations (the writer's promise).
		for i, b := range writeReadOpenAir(t, as) {
			a := as[i]
			if b.Name != a.Name || b.Class != a.Class || b.Type != a.Type || b.Lower != a.Lower || b.Upper != a.Upper ||
				b.ByNOTAM != a.ByNOTAM || len(b.Activations) != len(a.Activations) {
				t.Fatalf("airspace %d read back as %q %q %q %+v %+v %v %d, was %q %q %q %+v %+v %v %d", i,
					b.Name, b.Class, b.Type, b.Lower, b.Upper, b.ByNOTAM, len(b.Activations), a.Name, a.Class, a.Type, a.Lower, a.Upper, a.ByNOTAM, len(a.Activations))
			}
		}
	})
}

func FuzzReadGeoJSON(f *testing.F) {
	for _, name := range []string{"arc-cw-result.json", "activation-times-result.json", "awy-result.json"} {
		f.Add(reference.ReadFile(f, filepath.Join(reference.OpenAir(f), name)))
	}
	f.Add([]byte(`{"type":"Feature","properties":{"alt_lower_fl":10,"alt_upper_ft":9000,"radius_m":500},"geometry":{"type":"Point","coordinates":[1,2]}}`))
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"alt_lower_m":0,"alt_upper_m":1,"footprint":{"type":"Corridor","line":[[0,0],[1,1]],"width_m":100}},"geometry":null}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		as, err := ReadGeoJSON(data)
		if err != nil {
			return
		}
		valid := as[:0:0]
		for i, a := range as {
			var le *LineError
			if a.Err != nil && (!errors.As(a.Err, &le) || le.Feature != i) {
				t.Fatalf("feature %d refused without its index: %v", i, a.Err)
			}
			if a.Err == nil {
				valid = append(valid, a)
			}
		}
		out, err := WriteGeoJSON(valid, 0, 20000)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatal("invalid JSON written")
		}
		// What was read is written in a form read back to the same
		// airspaces: each one, named and limited as it was.
		back, err := ReadGeoJSON(out)
		if err != nil {
			t.Fatalf("reading back what was written: %v\n%s", err, out)
		}
		if len(back) != len(valid) {
			t.Fatalf("%d airspaces back, wrote %d", len(back), len(valid))
		}
		for i, b := range back {
			a := valid[i]
			if b.Err != nil {
				t.Fatalf("airspace %d written as a feature refused: %v\n%s", i, b.Err, out)
			}
			if b.Name != a.Name || b.Class != a.Class || b.Lower != a.Lower || b.Upper != a.Upper {
				t.Fatalf("airspace %d read back as %q %q %+v %+v, was %q %q %+v %+v", i, b.Name, b.Class, b.Lower, b.Upper, a.Name, a.Class, a.Lower, a.Upper)
			}
		}
	})
}

// writeReadOpenAir writes airspaces as OpenAir and reads them back, whole.
func writeReadOpenAir(t testing.TB, as []Airspace) []Airspace {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteOpenAir(&buf, as); err != nil {
		t.Fatal(err)
	}
	back, err := whole(ParseOpenAir(bytes.NewReader(buf.Bytes())))
	if err != nil {
		t.Fatalf("reading back what was written: %v\n%s", err, buf.String())
	}
	if len(back) != len(as) {
		t.Fatalf("%d airspaces back, wrote %d", len(back), len(as))
	}
	return back
}

// whole passes on what a reader read, with the first refused airspace's
// error as its error: for tests that take a file whole.
func whole(as []Airspace, err error) ([]Airspace, error) {
	if err == nil {
		err = FirstError(as)
	}
	return as, err
}
