package volume

import (
	"math"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
)

// Independent spherical formulas (not s2) that the tests check against.
const (
	wgs84A = 6378137.0
	wgs84F = 1 / 298.257223563
)

// curvatureBounds recomputes the radii of curvature bounds from WGS84.
func curvatureBounds() (mMin, nMax float64) {
	b := wgs84A * (1 - wgs84F)
	return b * b / wgs84A, wgs84A * wgs84A / b
}

func rad(d float64) float64 { return d * math.Pi / 180 }
func deg(r float64) float64 { return r * 180 / math.Pi }

// havAngle is the great-circle angle (radians) between two points.
func havAngle(lat1, lon1, lat2, lon2 float64) float64 {
	p1, p2 := rad(lat1), rad(lat2)
	dp, dl := p2-p1, rad(lon2-lon1)
	h := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * math.Asin(math.Min(1, math.Sqrt(h)))
}

// destination moves from (lat, lon) along bearing (degrees) by an angle
// (radians) on the sphere; longitude normalised to [-180, 180].
func destination(lat, lon, bearing, ang float64) (float64, float64) {
	p1, l1, b := rad(lat), rad(lon), rad(bearing)
	p2 := math.Asin(math.Sin(p1)*math.Cos(ang) + math.Cos(p1)*math.Sin(ang)*math.Cos(b))
	l2 := l1 + math.Atan2(math.Sin(b)*math.Sin(ang)*math.Cos(p1), math.Cos(ang)-math.Sin(p1)*math.Sin(p2))
	lonDeg := math.Mod(deg(l2)+540, 360) - 180
	return deg(p2), lonDeg
}

func circle(lat, lon, radiusM float64) Footprint {
	return Footprint{Type: "Circle", Center: []float64{lon, lat}, RadiusM: radiusM}
}

// polygon builds a closed GeoJSON ring from [lon, lat] pairs.
func polygon(pts ...[2]float64) Footprint {
	ring := make([][]float64, 0, len(pts)+1)
	for _, p := range pts {
		ring = append(ring, []float64{p[0], p[1]})
	}
	ring = append(ring, []float64{pts[0][0], pts[0][1]})
	return Footprint{Type: "Polygon", Coordinates: [][][]float64{ring}}
}

// regular is an n-gon around (lat, lon) with vertices radiusM away
// (counter-clockwise seen from above).
func regular(lat, lon, radiusM float64, n int, rot float64) Footprint {
	pts := make([][2]float64, n)
	for i := range pts {
		// Bearings decrease to go counter-clockwise.
		la, lo := destination(lat, lon, rot-360*float64(i)/float64(n), radiusM/meanEarthRadiusM)
		pts[i] = [2]float64{lo, la}
	}
	return polygon(pts...)
}

var t0 = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

func input(fp Footprint, lo, hi float64, start, end time.Time) Input {
	return Input{Footprint: fp, AltLowerM: lo, AltUpperM: hi, Start: start, End: end, State: Accepted}
}

// mkVol compiles a volume outside any registry, for geometry and index tests.
func mkVol(t interface{ Fatalf(string, ...any) }, id, party string, in Input) *Volume {
	s, err := in.compile(rules.Default())
	if err != nil {
		t.Fatalf("mkVol %s: %v", id, err)
	}
	st := in.State
	if st == "" {
		st = Accepted
	}
	return &Volume{ID: id, Party: party, Version: "v1", State: st, Priority: in.Priority, Footprint: in.Footprint,
		AltLowerM: in.AltLowerM, AltUpperM: in.AltUpperM, Start: in.Start, End: in.End, shape: s}
}
