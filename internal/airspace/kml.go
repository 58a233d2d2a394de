package airspace

import (
	"fmt"
	"image/color"
	"io"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/twpayne/go-kml/v3"
)

// KML colours are written alpha, blue, green, red (OGC 07-147r2, 16.9) and
// not premultiplied; go-kml writes the RGBA() of a colour in that order, so
// the values are given as they are to appear.
var (
	kmlLineColor = color.RGBA{R: 0xd0, G: 0x50, B: 0x20, A: 0xff}
	kmlPolyColor = color.RGBA{R: 0xd0, G: 0x50, B: 0x20, A: 0x55}
)

// WriteKML writes the airspaces as a KML 2.2 document that Google Earth
// opens (with github.com/twpayne/go-kml, whose elements follow the OGC
// schema): one Placemark per airspace (per activation interval when it has
// several), its altitude block drawn in 3D with altitudeMode absolute
// (meters above mean sea level, ground taken at groundM and unlimited as
// unlimitedM): a block from the surface is its top extruded to the ground,
// any other block its top, bottom and one wall per edge. The time window
// (a volume's start and end, or an activation interval) is a TimeSpan.
func WriteKML(w io.Writer, title string, items []Airspace, groundM, unlimitedM float64) error {
	doc := kml.Document(
		kml.Name(title),
		kml.SharedStyle("airspace", kml.LineStyle(kml.Color(kmlLineColor)), kml.PolyStyle(kml.Color(kmlPolyColor))),
	)
	for _, a := range items {
		lo, hi := a.Lower.Meters(groundM, unlimitedM), a.Upper.Meters(groundM, unlimitedM)
		outline := a.Shape.Outline()
		name := a.Name
		if name == "" && a.Volume != nil {
			name = a.Volume.ID
		}
		var geometry kml.Element
		if a.Lower == Surface || lo <= 0 {
			geometry = kmlPolygon(true, kmlCoordinates(outline, hi))
		} else {
			polygons := []kml.Element{kmlPolygon(false, kmlCoordinates(outline, hi)), kmlPolygon(false, kmlCoordinates(outline, lo))}
			for i := 0; i+1 < len(outline); i++ {
				wall := orb.Ring{outline[i], outline[i+1], outline[i+1], outline[i], outline[i]}
				polygons = append(polygons, kmlPolygon(false, kmlCoordinatesAt(wall, []float64{lo, lo, hi, hi, lo})))
			}
			geometry = kml.MultiGeometry(polygons...)
		}
		placemark := func(span kml.Element) kml.Element {
			children := []kml.Element{kml.Name(name), kml.Description(describe(a))}
			if span != nil {
				children = append(children, span)
			}
			return kml.Placemark(append(children, kml.StyleURL("#airspace"), geometry)...)
		}
		spans := timeSpans(a)
		if len(spans) == 0 {
			doc.Add(placemark(nil))
		}
		for _, s := range spans {
			doc.Add(placemark(s))
		}
	}
	if err := kml.KML(doc).WriteIndent(w, "", " "); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// kmlPolygon is a Polygon at absolute altitudes, extruded to the ground
// when extrude is set.
func kmlPolygon(extrude bool, coords kml.Element) kml.Element {
	return kml.Polygon(kml.Extrude(extrude), kml.AltitudeMode(kml.AltitudeModeAbsolute),
		kml.OuterBoundaryIs(kml.LinearRing(coords)))
}

// timeSpans are the TimeSpans of an airspace: a volume's window, or one
// per activation interval (an open end left out).
func timeSpans(a Airspace) []kml.Element {
	span := func(start, end time.Time) kml.Element {
		var children []kml.Element
		if !start.IsZero() {
			children = append(children, kml.Begin(start.UTC()))
		}
		if !end.IsZero() {
			children = append(children, kml.End(end.UTC()))
		}
		return kml.TimeSpan(children...)
	}
	if v := a.Volume; v != nil && (v.Start != nil || v.End != nil) {
		var start, end time.Time
		if v.Start != nil {
			start = *v.Start
		}
		if v.End != nil {
			end = *v.End
		}
		return []kml.Element{span(start, end)}
	}
	var out []kml.Element
	for _, t := range a.Activations {
		out = append(out, span(t.Start, t.End))
	}
	return out
}

func describe(a Airspace) string {
	var b strings.Builder
	if a.Class != "" {
		fmt.Fprintf(&b, "class %s", a.Class)
		if a.Type != "" {
			fmt.Fprintf(&b, " (%s)", a.Type)
		}
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "%s to %s", a.Lower, a.Upper)
	if v := a.Volume; v != nil {
		for _, kv := range [][2]string{{"party", v.Party}, {"version", v.Version}, {"state", v.State}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, ", %s %s", kv[0], kv[1])
			}
		}
	}
	if a.ByNOTAM {
		b.WriteString(", active by NOTAM")
	}
	return b.String()
}

func kmlCoordinates(r orb.Ring, altM float64) kml.Element {
	alts := make([]float64, len(r))
	for i := range alts {
		alts[i] = altM
	}
	return kmlCoordinatesAt(r, alts)
}

func kmlCoordinatesAt(r orb.Ring, alts []float64) kml.Element {
	coords := make([]kml.Coordinate, len(r))
	for i, p := range r {
		coords[i] = kml.Coordinate{Lon: p[0], Lat: p[1], Alt: alts[i]}
	}
	return kml.Coordinates(coords...)
}
