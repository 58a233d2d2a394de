package airspace

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/testutil/nodejs"
)

// independentItems are airspaces of every shape, limit form and window.
func independentItems(t *testing.T) []Airspace {
	start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	end := start.Add(2 * time.Hour)
	as := []Airspace{
		{Name: "block", Class: "R", Lower: Limit{Value: 3000, Unit: Feet, Datum: MSL}, Upper: Limit{Value: 95, Unit: FlightLevel, Datum: STD},
			Shape:  Shape{Type: PolygonShape, Ring: orb.Ring{{10, 50}, {10.2, 50}, {10.2, 50.1}, {10, 50}}},
			Volume: &VolumeFields{ID: "v1", Start: &start, End: &end}},
		{Name: "circle", Lower: Surface, Upper: Limit{Unlimited: true},
			Shape: Shape{Type: CircleShape, Center: orb.Point{11, 50}, RadiusM: 2000}, Activations: []Activation{{Start: start, End: end}}},
		{Name: "orbit", Lower: Limit{Value: 1000, Unit: Meters, Datum: MSL}, Upper: Limit{Value: 2000, Unit: Meters, Datum: MSL},
			Shape: Shape{Type: OrbitShape, Line: orb.LineString{{12, 50}, {12.3, 50.1}}, WidthM: 8000}, Activations: []Activation{{Start: start, End: end}}},
		{Name: "corridor", Lower: Limit{Value: 500, Unit: Feet, Datum: GND}, Upper: Limit{Value: 120, Unit: FlightLevel, Datum: STD},
			Shape: Shape{Type: CorridorShape, Line: orb.LineString{{13, 50}, {13.2, 50.2}, {13.5, 50.1}}, WidthM: 4000}, Activations: []Activation{{Start: start, End: end}}},
	}
	return as
}

// TestGeoJSONPassesIndependentCheck: what WriteGeoJSON writes passes
// @placemarkio/check-geojson (an independent RFC 7946 validator: types,
// positions, closed rings of four positions or more).
func TestGeoJSONPassesIndependentCheck(t *testing.T) {
	data, err := WriteGeoJSON(independentItems(t), 100, DefaultUnlimitedM)
	if err != nil {
		t.Fatal(err)
	}
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
		t.Fatalf("check-geojson finds issues: %v", issues)
	}
}

// TestKMLReadByIndependentParser: @tmcw/togeojson (the KML reader of
// Mapbox and Placemark) reads what WriteKML writes back to one feature per
// airspace with its name, its time span, and its block between the limits
// in meters (absolute altitudes as the third coordinate).
func TestKMLReadByIndependentParser(t *testing.T) {
	items := independentItems(t)
	var buf bytes.Buffer
	if err := WriteKML(&buf, "independent", items, 100, DefaultUnlimitedM); err != nil {
		t.Fatal(err)
	}
	out := nodejs.Run(t, `
const { kml } = require('@tmcw/togeojson');
const { DOMParser } = require('@xmldom/xmldom');
let s = ''; process.stdin.on('data', (d) => s += d).on('end', () => {
  const doc = new DOMParser().parseFromString(s, 'text/xml');
  const fc = kml(doc);
  const alts = (g) => g.type === 'GeometryCollection' ? g.geometries.flatMap(alts) : g.coordinates.flat().map((p) => p[2]);
  process.stdout.write(JSON.stringify(fc.features.map((f) => ({
    name: f.properties.name, timespan: f.properties.timespan || null, type: f.geometry.type,
    minAlt: Math.min(...alts(f.geometry)), maxAlt: Math.max(...alts(f.geometry)),
  }))));
});`, buf.Bytes())
	var got []struct {
		Name     string
		Timespan *struct{ Begin, End string }
		Type     string
		MinAlt   float64
		MaxAlt   float64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != len(items) {
		t.Fatalf("%d features, want %d: %s", len(got), len(items), out)
	}
	for i, a := range items {
		g := got[i]
		lo, hi := a.Lower.Meters(100, DefaultUnlimitedM), a.Upper.Meters(100, DefaultUnlimitedM)
		if g.Name != a.Name || g.Timespan == nil || g.Timespan.Begin != "2026-05-01T08:00:00Z" || g.Timespan.End != "2026-05-01T10:00:00Z" {
			t.Errorf("%s: read as %+v", a.Name, g)
		}
		if d := g.MaxAlt - hi; d < -0.1 || d > 0.1 {
			t.Errorf("%s: top at %v m, want %v m", a.Name, g.MaxAlt, hi)
		}
		// A block from the surface is its top extruded to the ground;
		// any other block has its bottom at the lower limit.
		if a.Lower != Surface && (g.MinAlt < lo-0.1 || g.MinAlt > lo+0.1 || g.Type != "GeometryCollection") {
			t.Errorf("%s: bottom at %v m (%s), want %v m", a.Name, g.MinAlt, g.Type, lo)
		}
	}
}
