package airspace

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"
)

// KML 2.2 (OGC 07-147r2) elements that WriteKML uses.
type (
	kmlRoot struct {
		XMLName  xml.Name    `xml:"http://www.opengis.net/kml/2.2 kml"`
		Document kmlDocument `xml:"Document"`
	}
	kmlDocument struct {
		Name       string         `xml:"name"`
		Styles     []kmlStyle     `xml:"Style"`
		Placemarks []kmlPlacemark `xml:"Placemark"`
	}
	kmlStyle struct {
		ID        string `xml:"id,attr"`
		LineColor string `xml:"LineStyle>color"`
		PolyColor string `xml:"PolyStyle>color"`
	}
	kmlPlacemark struct {
		Name        string            `xml:"name"`
		Description string            `xml:"description,omitempty"`
		TimeSpan    *kmlTimeSpan      `xml:"TimeSpan,omitempty"`
		StyleURL    string            `xml:"styleUrl"`
		Polygon     *kmlPolygon       `xml:"Polygon,omitempty"`
		Multi       *kmlMultiGeometry `xml:"MultiGeometry,omitempty"`
	}
	kmlTimeSpan struct {
		Begin string `xml:"begin,omitempty"`
		End   string `xml:"end,omitempty"`
	}
	kmlMultiGeometry struct {
		Polygons []kmlPolygon `xml:"Polygon"`
	}
	kmlPolygon struct {
		Extrude      int    `xml:"extrude"`
		AltitudeMode string `xml:"altitudeMode"`
		Coordinates  string `xml:"outerBoundaryIs>LinearRing>coordinates"`
	}
)

// WriteKML writes the airspaces as a KML 2.2 document that Google Earth
// opens: one Placemark per airspace (per activation interval when it has
// several), its altitude block drawn in 3D with altitudeMode absolute
// (meters above mean sea level, ground taken at groundM and unlimited as
// unlimitedM): a block from the surface is its top extruded to the ground,
// any other block its top, bottom and one wall per edge. The time window
// (a volume's start and end, or an activation interval) is a TimeSpan.
func WriteKML(w io.Writer, title string, items []Airspace, groundM, unlimitedM float64) error {
	doc := kmlRoot{Document: kmlDocument{
		Name:   title,
		Styles: []kmlStyle{{ID: "airspace", LineColor: "ff2050d0", PolyColor: "552050d0"}},
	}}
	for _, a := range items {
		lo, hi := a.Lower.Meters(groundM, unlimitedM), a.Upper.Meters(groundM, unlimitedM)
		outline := a.Shape.Outline()
		pm := kmlPlacemark{Name: a.Name, Description: describe(a), StyleURL: "#airspace"}
		if pm.Name == "" && a.Volume != nil {
			pm.Name = a.Volume.ID
		}
		if a.Lower == Surface || lo <= 0 {
			pm.Polygon = &kmlPolygon{Extrude: 1, AltitudeMode: "absolute", Coordinates: kmlCoordinates(outline, hi)}
		} else {
			m := &kmlMultiGeometry{}
			m.Polygons = append(m.Polygons,
				kmlPolygon{AltitudeMode: "absolute", Coordinates: kmlCoordinates(outline, hi)},
				kmlPolygon{AltitudeMode: "absolute", Coordinates: kmlCoordinates(outline, lo)})
			for i := 0; i+1 < len(outline); i++ {
				wall := orb.Ring{outline[i], outline[i+1], outline[i+1], outline[i], outline[i]}
				alts := []float64{lo, lo, hi, hi, lo}
				m.Polygons = append(m.Polygons, kmlPolygon{AltitudeMode: "absolute", Coordinates: kmlCoordinatesAt(wall, alts)})
			}
			pm.Multi = m
		}
		spans := timeSpans(a)
		if len(spans) == 0 {
			doc.Document.Placemarks = append(doc.Document.Placemarks, pm)
		}
		for _, s := range spans {
			p := pm
			p.TimeSpan = s
			doc.Document.Placemarks = append(doc.Document.Placemarks, p)
		}
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", " ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func timeSpans(a Airspace) []*kmlTimeSpan {
	f := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	if v := a.Volume; v != nil && (v.Start != nil || v.End != nil) {
		s := &kmlTimeSpan{}
		if v.Start != nil {
			s.Begin = f(*v.Start)
		}
		if v.End != nil {
			s.End = f(*v.End)
		}
		return []*kmlTimeSpan{s}
	}
	var out []*kmlTimeSpan
	for _, t := range a.Activations {
		out = append(out, &kmlTimeSpan{Begin: f(t.Start), End: f(t.End)})
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

func kmlCoordinates(r orb.Ring, altM float64) string {
	alts := make([]float64, len(r))
	for i := range alts {
		alts[i] = altM
	}
	return kmlCoordinatesAt(r, alts)
}

func kmlCoordinatesAt(r orb.Ring, alts []float64) string {
	var b strings.Builder
	for i, p := range r {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(p[0], 'f', 7, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(p[1], 'f', 7, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(alts[i], 'f', 1, 64))
	}
	return b.String()
}
