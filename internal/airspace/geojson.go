package airspace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"

	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/wiretime"
)

// MaxGeoJSONFeatures bounds the features of one file.
const MaxGeoJSONFeatures = 10000

// featureProps are the properties ReadGeoJSON understands: the volume API's
// fields, and openAIP's airspace properties (name, class, type,
// lowerCeiling, upperCeiling, activationTimes, byNotam). Others are
// ignored, as GeoJSON allows.
type featureProps struct {
	Name  string `json:"name"`
	Class string `json:"class"`
	Type  string `json:"type"`

	volume.WriteFields
	ID      string `json:"id"`
	Party   string `json:"party"`
	Version string `json:"version"`

	LowerCeiling *ceiling `json:"lowerCeiling"`
	UpperCeiling *ceiling `json:"upperCeiling"`

	ActivationTimes []struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"activationTimes"`
	ByNotam bool `json:"byNotam"`

	// Footprint is the exact shape (the geometry being its outline), as
	// WriteGeoJSON writes circles, orbits and corridors.
	Footprint *volume.Footprint `json:"footprint"`
	RadiusM   *float64          `json:"radius_m"`
	WidthM    *float64          `json:"width_m"`
}

// ceiling is openAIP's limit: {"value": 40000, "unit": "FT", "referenceDatum": "MSL"}.
type ceiling struct {
	Unlimited      bool     `json:"unlimited"` // WriteGeoJSON's UNL
	Value          *float64 `json:"value"`
	Unit           string   `json:"unit"`
	ReferenceDatum string   `json:"referenceDatum"`
}

// ReadGeoJSON reads an RFC 7946 FeatureCollection (or one Feature) into
// airspaces, one per feature, in order; Airspace.Line is the feature's
// index. A feature is polygon-like: a Polygon without holes; a Point with a
// radius_m property (a circle); a LineString with a width_m property (a
// corridor); or any geometry with the exact shape in a footprint property
// (as WriteGeoJSON writes circles, orbits and corridors). Its limits are
// alt_lower_m|_ft|_fl and alt_upper_m|_ft|_fl (above mean sea level; flight
// levels) or openAIP's lowerCeiling and upperCeiling; the volume fields
// (start, end, priority, state, details, id) are kept in Airspace.Volume.
// Anything else refuses the feature: its Err names its index (the other
// features are read on); a document that is not GeoJSON is refused whole.
func ReadGeoJSON(data []byte) ([]Airspace, error) { return readGeoJSON(data, true) }

// readGeoJSON is ReadGeoJSON; without requireShape, a feature without a
// geometry is read with an empty shape (openAIP's outputs that keep only
// the properties, which the tests compare).
func readGeoJSON(data []byte, requireShape bool) ([]Airspace, error) {
	var top struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not GeoJSON: %v", err)
	}
	var raw []json.RawMessage
	switch top.Type {
	case "FeatureCollection":
		raw = top.Features
	case "Feature":
		raw = []json.RawMessage{data}
	default:
		return nil, fmt.Errorf("GeoJSON of type %q: want a FeatureCollection or a Feature", top.Type)
	}
	if len(raw) > MaxGeoJSONFeatures {
		return nil, fmt.Errorf("%d features, more than %d", len(raw), MaxGeoJSONFeatures)
	}
	out := make([]Airspace, 0, len(raw))
	for i, r := range raw {
		a, err := readFeature(i, r, requireShape)
		if err != nil {
			// A refused feature keeps its name, so that a report of it
			// says which one it is.
			a = Airspace{Name: a.Name, Line: i, Err: err}
		}
		out = append(out, a)
	}
	return out, nil
}

func readFeature(i int, data []byte, requireShape bool) (Airspace, error) {
	var f geojson.FeatureOf[featureProps]
	if err := json.Unmarshal(data, &f); err != nil {
		return Airspace{}, featureErrorf(i, "not a GeoJSON Feature: %v", err)
	}
	p := f.Properties
	a := Airspace{Name: p.Name, Class: p.Class, Type: p.Type, Line: i, ByNOTAM: p.ByNotam}
	if p.Name == "" {
		if s, ok := f.ID.(string); ok {
			a.Name = s
		}
	}
	var err error
	if f.Geometry != nil || requireShape {
		if a.Shape, err = featureShape(i, f.Geometry, p); err != nil {
			return a, err
		}
	}
	if a.Lower, err = featureLimit(i, "lower", p.Lower, p.LowerCeiling); err != nil {
		return a, err
	}
	if a.Upper, err = featureLimit(i, "upper", p.Upper, p.UpperCeiling); err != nil {
		return a, err
	}
	if lo, hi, ok := comparable(a.Lower, a.Upper); ok && lo > hi {
		return a, featureErrorf(i, "the lower limit %s is above the upper limit %s", a.Lower, a.Upper)
	}
	// Times are read as the volume API reads them (wiretime), naming the
	// property at fault.
	propertyTime := func(field, s string) (time.Time, error) {
		tm, err := wiretime.Parse(field, s)
		if err != nil {
			return time.Time{}, featureErrorf(i, "properties.%v", err)
		}
		return tm.UTC(), nil
	}
	for k, t := range p.ActivationTimes {
		var act Activation
		if t.Start != "" {
			if act.Start, err = propertyTime(fmt.Sprintf("activationTimes[%d].start", k), t.Start); err != nil {
				return a, err
			}
		}
		if t.End != "" {
			if act.End, err = propertyTime(fmt.Sprintf("activationTimes[%d].end", k), t.End); err != nil {
				return a, err
			}
		}
		a.Activations = append(a.Activations, act)
	}
	v := VolumeFields{ID: p.ID, Party: p.Party, Version: p.Version, Priority: p.Priority, State: p.State}
	if s, ok := f.ID.(string); ok && v.ID == "" && p.Party != "" {
		v.ID = s
	}
	for _, t := range []struct {
		name string
		in   *string
		out  **time.Time
	}{{"start", p.Start, &v.Start}, {"end", p.End, &v.End}} {
		if t.in == nil {
			continue
		}
		tm, err := propertyTime(t.name, *t.in)
		if err != nil {
			return a, err
		}
		*t.out = &tm
	}
	if len(p.Details) > 0 && !bytes.Equal(bytes.TrimSpace(p.Details), []byte("null")) {
		v.Details = p.Details
	}
	if v.ID != "" || v.Party != "" || v.Version != "" || v.Priority != nil || v.State != "" ||
		v.Start != nil || v.End != nil || v.Details != nil {
		a.Volume = &v
	}
	return a, nil
}

func featureShape(i int, g orb.Geometry, p featureProps) (Shape, error) {
	if p.Footprint != nil {
		s, err := ShapeFromFootprint(*p.Footprint)
		if err != nil {
			return Shape{}, featureErrorf(i, "properties.footprint: %v", err)
		}
		return s, nil
	}
	switch g := g.(type) {
	case orb.Polygon:
		if len(g) != 1 {
			return Shape{}, featureErrorf(i, "a Polygon with %d rings: holes are not supported, declare several volumes instead", len(g))
		}
		return Shape{Type: PolygonShape, Ring: g[0]}, nil
	case orb.MultiPolygon:
		if len(g) == 1 && len(g[0]) == 1 {
			return Shape{Type: PolygonShape, Ring: g[0][0]}, nil
		}
		return Shape{}, featureErrorf(i, "a MultiPolygon of %d polygons: split it into one feature per polygon", len(g))
	case orb.Point:
		if p.RadiusM == nil {
			return Shape{}, featureErrorf(i, "a Point is not polygon-like: give it a radius_m property to make it a circle")
		}
		return Shape{Type: CircleShape, Center: g, RadiusM: *p.RadiusM}, nil
	case orb.LineString:
		if p.WidthM == nil {
			return Shape{}, featureErrorf(i, "a LineString is not polygon-like: give it a width_m property (full width) to make it a corridor")
		}
		return Shape{Type: CorridorShape, Line: g, WidthM: *p.WidthM}, nil
	case nil:
		return Shape{}, featureErrorf(i, "no geometry")
	default:
		return Shape{}, featureErrorf(i, "a %s is not polygon-like: want a Polygon, a Point with radius_m or a LineString with width_m", g.GeoJSONType())
	}
}

// ShapeFromFootprint makes a Shape from a volume footprint: Polygon
// coordinates, Circle center and radius_m, Orbit points and width_m,
// Corridor line and width_m. It checks only the form; the values are the
// volume's to validate.
func ShapeFromFootprint(fp volume.Footprint) (Shape, error) {
	pt := func(p []float64) (orb.Point, error) {
		if len(p) < 2 {
			return orb.Point{}, fmt.Errorf("a position is [lon, lat], got %v", p)
		}
		return orb.Point{p[0], p[1]}, nil
	}
	pts := func(ps [][]float64) ([]orb.Point, error) {
		out := make([]orb.Point, len(ps))
		for i, p := range ps {
			var err error
			if out[i], err = pt(p); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	switch fp.Type {
	case "Polygon":
		if len(fp.Coordinates) != 1 {
			return Shape{}, fmt.Errorf("a Polygon needs exactly one ring, got %d", len(fp.Coordinates))
		}
		r, err := pts(fp.Coordinates[0])
		return Shape{Type: PolygonShape, Ring: r}, err
	case "Circle":
		c, err := pt(fp.Center)
		return Shape{Type: CircleShape, Center: c, RadiusM: fp.RadiusM}, err
	case "Orbit":
		l, err := pts(fp.Points)
		return Shape{Type: OrbitShape, Line: l, WidthM: fp.WidthM}, err
	case "Corridor":
		l, err := pts(fp.Line)
		return Shape{Type: CorridorShape, Line: l, WidthM: fp.WidthM}, err
	default:
		return Shape{}, fmt.Errorf("type %q: want Polygon, Circle, Orbit or Corridor", fp.Type)
	}
}

func featureLimit(i int, which string, get func() (volume.Limit, bool, error), c *ceiling) (Limit, error) {
	vl, given, err := get()
	if err != nil {
		return Limit{}, featureErrorf(i, "properties.%v", err)
	}
	var l Limit
	switch vl.Unit() {
	case "m":
		l = Limit{Value: vl.Value, Unit: Meters, Datum: MSL}
	case "ft":
		l = Limit{Value: vl.Value, Unit: Feet, Datum: MSL}
	case "fl":
		l = Limit{Value: vl.Value, Unit: FlightLevel, Datum: STD}
	}
	switch {
	case c == nil && !given:
		return Limit{}, featureErrorf(i, "properties: no %[1]s limit (alt_%[1]s_m, alt_%[1]s_ft, alt_%[1]s_fl or %[1]sCeiling)", which)
	case c == nil:
		return l, nil
	}
	// openAIP's form, which keeps the reference datum; WriteGeoJSON writes
	// both, which must then agree.
	if c.Value == nil || !finite(*c.Value) {
		return Limit{}, featureErrorf(i, "properties.%sCeiling: no finite value", which)
	}
	// openAIP's unit and datum names are those of Unit and Datum.
	cl := Limit{Value: *c.Value, Unit: Unit(c.Unit), Datum: Datum(c.ReferenceDatum), Unlimited: c.Unlimited}
	if cl.Unit != Feet && cl.Unit != Meters && cl.Unit != FlightLevel {
		return Limit{}, featureErrorf(i, "properties.%sCeiling.unit: %q is not FT, M or FL", which, c.Unit)
	}
	if cl.Datum != MSL && cl.Datum != GND && cl.Datum != STD {
		return Limit{}, featureErrorf(i, "properties.%sCeiling.referenceDatum: %q is not MSL, GND or STD", which, c.ReferenceDatum)
	}
	if cl.Unlimited {
		cl = Limit{Unlimited: true}
	}
	if given && !cl.Unlimited && cl.Datum != GND && math.Abs(cl.Meters(0, 0)-l.Meters(0, 0)) > 0.5 {
		return Limit{}, featureErrorf(i, "properties: %sCeiling (%s) and alt_%s (%s) disagree", which, cl, which, l)
	}
	return cl, nil
}

// WriteGeoJSON returns an RFC 7946 FeatureCollection of the airspaces: each
// shape as its polygon outline (Outline), with properties name, class,
// type, the limits as written (lowerCeiling and upperCeiling, as openAIP
// writes them) and in meters above mean sea level (alt_lower_m and
// alt_upper_m, ground taken at groundM and unlimited as unlimitedM),
// activation times, and for circles, orbits and corridors the exact shape
// in footprint. The volume fields, when set, are properties too (id,
// party, version, state, priority, start, end, details).
func WriteGeoJSON(items []Airspace, groundM, unlimitedM float64) ([]byte, error) {
	fc := geojson.NewFeatureCollection()
	for _, a := range items {
		f := geojson.NewFeature(orb.Polygon{a.Shape.Outline()})
		p := f.Properties
		a.label(p)
		p["lowerCeiling"] = ceilingOf(a.Lower, unlimitedM)
		p["upperCeiling"] = ceilingOf(a.Upper, unlimitedM)
		p["alt_lower_m"] = a.Lower.Meters(groundM, unlimitedM)
		p["alt_upper_m"] = a.Upper.Meters(groundM, unlimitedM)
		if a.Shape.Type != PolygonShape {
			p["footprint"] = Footprint(a.Shape)
		}
		if len(a.Activations) > 0 {
			acts := make([]map[string]string, len(a.Activations))
			for i, t := range a.Activations {
				acts[i] = map[string]string{}
				if !t.Start.IsZero() {
					acts[i]["start"] = t.Start.UTC().Format(time.RFC3339)
				}
				if !t.End.IsZero() {
					acts[i]["end"] = t.End.UTC().Format(time.RFC3339)
				}
			}
			p["activationTimes"] = acts
		}
		if a.ByNOTAM {
			p["byNotam"] = true
		}
		if v := a.Volume; v != nil {
			if v.ID != "" {
				f.ID = v.ID
				p["id"] = v.ID
			}
			for k, s := range map[string]string{"party": v.Party, "version": v.Version, "state": v.State} {
				if s != "" {
					p[k] = s
				}
			}
			if v.Priority != nil {
				p["priority"] = *v.Priority
			}
			if v.Start != nil {
				p["start"] = v.Start.UTC().Format(time.RFC3339)
			}
			if v.End != nil {
				p["end"] = v.End.UTC().Format(time.RFC3339)
			}
			if len(v.Details) > 0 {
				p["details"] = json.RawMessage(v.Details)
			}
		}
		fc.Append(f)
	}
	return json.Marshal(fc)
}

func ceilingOf(l Limit, unlimitedM float64) map[string]any {
	if l.Unlimited {
		return map[string]any{"value": math.Round(unlimitedM / 0.3048), "unit": "FT", "referenceDatum": "MSL", "unlimited": true}
	}
	return map[string]any{"value": l.Value, "unit": string(l.Unit), "referenceDatum": string(l.Datum)}
}
