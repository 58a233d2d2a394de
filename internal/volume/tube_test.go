package volume

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"
	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/rules"
)

func orbit(lat1, lon1, lat2, lon2, widthM float64) Footprint {
	return Footprint{Type: "Orbit", Points: [][]float64{{lon1, lat1}, {lon2, lat2}}, WidthM: widthM}
}

// genTube draws an orbit or a corridor of up to 6 legs from (lat, lon).
func genTube(t *rapid.T, id string, lat, lon, widthM float64) Footprint {
	n := 2
	typ := "Orbit"
	if rapid.Bool().Draw(t, id+"_corridor") {
		typ, n = "Corridor", rapid.IntRange(2, 7).Draw(t, id+"_legs")
	}
	pts := [][]float64{{lon, lat}}
	for i := 1; i < n; i++ {
		la, lo := destination(lat, lon, rapid.Float64Range(0, 360).Draw(t, fmt.Sprintf("%s_b%d", id, i)),
			rapid.Float64Range(500, 30_000).Draw(t, fmt.Sprintf("%s_d%d", id, i))/meanEarthRadiusM)
		pts = append(pts, []float64{lo, la})
		lat, lon = la, lo
	}
	if typ == "Orbit" {
		return Footprint{Type: typ, Points: pts, WidthM: widthM}
	}
	return Footprint{Type: typ, Line: pts, WidthM: widthM}
}

// spineOfFootprint returns a tube's positions and its half width.
func spineOfFootprint(fp Footprint) ([][]float64, float64) {
	switch fp.Type {
	case "Circle":
		return [][]float64{fp.Center}, fp.RadiusM
	case "Orbit":
		return fp.Points, fp.WidthM / 2
	default:
		return fp.Line, fp.WidthM / 2
	}
}

// sampleSpine returns points along a spine's great-circle legs no more than
// stepRad apart (an independent construction: spherical interpolation of
// unit vectors, not s2's edge code).
func sampleSpine(pos [][]float64, stepRad float64) [][3]float64 {
	vec := func(p []float64) [3]float64 {
		la, lo := rad(p[1]), rad(p[0])
		return [3]float64{math.Cos(la) * math.Cos(lo), math.Cos(la) * math.Sin(lo), math.Sin(la)}
	}
	if len(pos) == 1 {
		return [][3]float64{vec(pos[0])}
	}
	var out [][3]float64
	for i := 0; i+1 < len(pos); i++ {
		a, b := vec(pos[i]), vec(pos[i+1])
		ang := math.Acos(math.Max(-1, math.Min(1, a[0]*b[0]+a[1]*b[1]+a[2]*b[2])))
		n := max(1, int(math.Ceil(ang/stepRad)))
		for k := 0; k <= n; k++ {
			f := float64(k) / float64(n)
			wa, wb := math.Sin((1-f)*ang)/math.Sin(ang), math.Sin(f*ang)/math.Sin(ang)
			if ang == 0 {
				wa, wb = 1, 0
			}
			out = append(out, [3]float64{wa*a[0] + wb*b[0], wa*a[1] + wb*b[1], wa*a[2] + wb*b[2]})
		}
	}
	return out
}

// bruteSpineAngle is the least angle between a sampled spine and another
// spine's legs (each sample's exact distance to each leg): within the
// sampling step of the true least angle between the spines.
func bruteSpineAngle(a [][3]float64, b [][]float64) float64 {
	pts := make([]s2.Point, len(b))
	for i, p := range b {
		pts[i] = s2.PointFromLatLng(s2.LatLngFromDegrees(p[1], p[0]))
	}
	best := math.Inf(1)
	for _, v := range a {
		p := s2.PointFromCoords(v[0], v[1], v[2])
		if len(pts) == 1 {
			best = min(best, p.Distance(pts[0]).Radians())
		}
		for i := 0; i+1 < len(pts); i++ {
			best = min(best, s2.DistanceFromSegment(p, pts[i], pts[i+1]).Radians())
		}
	}
	return best
}

// Orbits, corridors and circles against each other: the test never misses
// a conflict that certainly exists on the ellipsoid and never reports one
// that certainly does not, against a brute-force oracle that samples the
// spines densely (its error, the sampling step, widens the band where
// either answer is right), anywhere including the antimeridian and poles.
func TestTubeConflictMatchesEllipsoidBounds(t *testing.T) {
	rl := rules.Default()
	mMin, nMax := curvatureBounds()
	const step = 20 / meanEarthRadiusM // 20 m between samples
	rapid.Check(t, func(t *rapid.T) {
		lat1, lon1 := genCenter(t, "a")
		lat1 = math.Max(-89.5, math.Min(89.5, lat1))
		lat2, lon2 := destination(lat1, lon1, rapid.Float64Range(0, 360).Draw(t, "bearing"),
			rapid.Float64Range(0, 60_000).Draw(t, "dist_m")/meanEarthRadiusM)
		gen := func(id string, lat, lon float64) Footprint {
			w := rapid.Float64Range(100, 20_000).Draw(t, id+"_w")
			if rapid.IntRange(0, 3).Draw(t, id+"_kind") == 0 {
				return circle(lat, lon, w/2)
			}
			return genTube(t, id, lat, lon, w)
		}
		fa, fb := gen("a", lat1, lon1), gen("b", lat2, lon2)
		a := mkVol(t, "a", "p1", input(fa, 0, 1000, t0, t0.Add(time.Hour)))
		b := mkVol(t, "b", "p2", input(fb, 0, 1000, t0, t0.Add(time.Hour)))
		pa, ra := spineOfFootprint(fa)
		pb, rb := spineOfFootprint(fb)
		theta := bruteSpineAngle(sampleSpine(pa, step), pb)
		got := Conflict(*a, *b, rl)
		// The sampled minimum is at most step/2 above the true one.
		if nMax*theta-ra-rb < rl.HorizontalSepM-0.01 && !got {
			t.Fatalf("missed: spines %.1f m apart at most, half widths %.0f+%.0f", nMax*theta, ra, rb)
		}
		if mMin*theta-ra-rb >= rl.HorizontalSepM+0.01+mMin*step && got {
			t.Fatalf("false conflict: spines at least %.1f m apart, half widths %.0f+%.0f", mMin*(theta-step), ra, rb)
		}
		if got != Conflict(*b, *a, rl) {
			t.Fatal("conflict is not symmetric")
		}
	})
}

// Tubes against polygons, checked against the plain oracle: the spine
// sampled densely, each sample's exact distance to every polygon edge, and
// a sample inside the polygon meaning distance zero.
func TestTubeAgainstPolygonMatchesOracle(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lat, lon := genCenter(t, "p")
		lat = math.Max(-89.5, math.Min(89.5, lat))
		lat2, lon2 := destination(lat, lon, rapid.Float64Range(0, 360).Draw(t, "bearing"),
			rapid.Float64Range(0, 60_000).Draw(t, "dist")/meanEarthRadiusM)
		poly := mkVol(t, "a", "p1", input(star(t, "a", lat, lon, rapid.IntRange(3, 30).Draw(t, "n")), 0, 1, t0, t0.Add(time.Hour)))
		fp := genTube(t, "b", lat2, lon2, rapid.Float64Range(100, 20_000).Draw(t, "w"))
		tube := mkVol(t, "b", "p2", input(fp, 0, 1, t0, t0.Add(time.Hour)))
		lim := s1.Angle(rapid.Float64Range(0, 20_000).Draw(t, "lim") / meanEarthRadiusM)
		const step = 5 / meanEarthRadiusM
		reach := (tube.shape.radius + lim).Radians()
		pos, _ := spineOfFootprint(fp)
		best := math.Inf(1)
		vs := poly.shape.loop.Vertices()
		for _, v := range sampleSpine(pos, step) {
			p := s2.Point{Vector: s2.PointFromCoords(v[0], v[1], v[2]).Vector}
			if poly.shape.loop.ContainsPoint(p) {
				best = 0
				break
			}
			for i := range vs {
				best = min(best, s2.DistanceFromSegment(p, vs[i], vs[(i+1)%len(vs)]).Radians())
			}
		}
		got := tube.shape.near(poly.shape, lim)
		if best < reach-step && !got {
			t.Fatalf("missed: spine %.2f m from the polygon, reach %.2f m", best*meanEarthRadiusM, reach*meanEarthRadiusM)
		}
		if best > reach+step && got {
			t.Fatalf("false conflict: spine %.2f m from the polygon, reach %.2f m", best*meanEarthRadiusM, reach*meanEarthRadiusM)
		}
		if got != poly.shape.near(tube.shape, lim) {
			t.Fatal("near is not symmetric")
		}
	})
}

// An orbit's conformance: a point within half the width of the segment
// between the turn centres is inside, a point beyond is not.
func TestOrbitContainsPoint(t *testing.T) {
	v := mkVol(t, "o", "p1", input(orbit(35, 36, 35, 36.5, 10_000), 0, 1000, t0, t0.Add(time.Hour)))
	pt := func(lat, lon float64) s2.Point { return s2.PointFromLatLng(s2.LatLngFromDegrees(lat, lon)) }
	mMin, nMax := curvatureBounds()
	for _, c := range []struct {
		name    string
		lat     float64
		lon     float64
		inside  bool
		uncerta bool
	}{
		{"between the turn centres", 35, 36.25, true, false},
		{"4.9 km north of the middle", 35 + deg(4900/nMax), 36.25, true, false},
		{"5.2 km north of the middle", 35 + deg(5200/mMin), 36.25, false, false},
		{"4.9 km beyond a turn centre", 35, 36.5 + deg(4900/nMax/math.Cos(rad(35))), true, false},
		{"6 km beyond a turn centre", 35, 36.5 + deg(6000/mMin/math.Cos(rad(35))), false, false},
	} {
		if got := v.shape.containsPoint(pt(c.lat, c.lon)); got != c.inside {
			t.Errorf("%s: inside %v, want %v", c.name, got, c.inside)
		}
	}
}

// Validation names the field at fault for every malformed orbit and
// corridor, and the fields of one type are refused in another.
func TestTubeValidation(t *testing.T) {
	rl := rules.Default()
	line := func(n int) [][]float64 {
		out := make([][]float64, n)
		for i := range out {
			out[i] = []float64{36 + 0.001*float64(i), 35}
		}
		return out
	}
	cases := []struct {
		name  string
		fp    Footprint
		field string
	}{
		{"orbit with one point", Footprint{Type: "Orbit", Points: [][]float64{{36, 35}}, WidthM: 1000}, "footprint.points"},
		{"orbit with three points", Footprint{Type: "Orbit", Points: line(3), WidthM: 1000}, "footprint.points"},
		{"orbit without width", Footprint{Type: "Orbit", Points: line(2)}, "footprint.width_m"},
		{"orbit with negative width", Footprint{Type: "Orbit", Points: line(2), WidthM: -5}, "footprint.width_m"},
		{"orbit with NaN width", Footprint{Type: "Orbit", Points: line(2), WidthM: math.NaN()}, "footprint.width_m"},
		{"orbit with equal points", Footprint{Type: "Orbit", Points: [][]float64{{36, 35}, {36, 35}}, WidthM: 1000}, "footprint.points[1]"},
		{"orbit with bad latitude", Footprint{Type: "Orbit", Points: [][]float64{{36, 35}, {36, 95}}, WidthM: 1000}, "footprint.points[1]"},
		{"orbit with a line", Footprint{Type: "Orbit", Points: line(2), Line: line(2), WidthM: 1000}, "footprint.line"},
		{"orbit with coordinates", Footprint{Type: "Orbit", Points: line(2), Coordinates: [][][]float64{line(4)}, WidthM: 1000}, "footprint.coordinates"},
		{"orbit with a centre", Footprint{Type: "Orbit", Points: line(2), Center: []float64{36, 35}, WidthM: 1000}, "footprint"},
		{"orbit too long", orbit(35, 36, 35, 42, 1000), "footprint.points"},
		{"orbit too wide", orbit(35, 36, 35, 36.1, 600_000), "footprint.width_m"},
		{"corridor with one point", Footprint{Type: "Corridor", Line: line(1), WidthM: 1000}, "footprint.line"},
		{"corridor with too many points", Footprint{Type: "Corridor", Line: line(rl.MaxVertices + 1), WidthM: 1000}, "footprint.line"},
		{"corridor repeating a point", Footprint{Type: "Corridor", Line: [][]float64{{36, 35}, {36.1, 35}, {36.1, 35}}, WidthM: 1000}, "footprint.line[2]"},
		{"corridor with points", Footprint{Type: "Corridor", Line: line(2), Points: line(2), WidthM: 1000}, "footprint.points"},
		{"corridor position of one number", Footprint{Type: "Corridor", Line: [][]float64{{36, 35}, {36}}, WidthM: 1000}, "footprint.line[1]"},
		{"corridor without width", Footprint{Type: "Corridor", Line: line(2)}, "footprint.width_m"},
		{"circle with a width", Footprint{Type: "Circle", Center: []float64{36, 35}, RadiusM: 10, WidthM: 5}, "footprint.width_m"},
		{"polygon with a line", Footprint{Type: "Polygon", Coordinates: [][][]float64{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}, Line: line(2)}, "footprint.line"},
		{"circle with points", Footprint{Type: "Circle", Center: []float64{36, 35}, RadiusM: 10, Points: line(2)}, "footprint.points"},
	}
	for _, c := range cases {
		err := input(c.fp, 0, 1000, t0, t0.Add(time.Hour)).Validate(rl)
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: error %v, want one naming %s", c.name, err, c.field)
		}
	}
	for _, fp := range []Footprint{orbit(35, 36, 35, 36.2, 9000), {Type: "Corridor", Line: line(5), WidthM: 2000}} {
		if err := input(fp, 0, 1000, t0, t0.Add(time.Hour)).Validate(rl); err != nil {
			t.Errorf("%s refused: %v", fp.Type, err)
		}
	}
}

// The wire form of orbits and corridors parses, and unknown fields in a
// footprint are still refused.
func TestTubeWire(t *testing.T) {
	body := `{"footprint":{"type":"Orbit","points":[[36,35],[36.5,35]],"width_m":9000},"alt_lower_fl":100,"alt_upper_fl":200,"start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:00:00Z"}`
	in, err := ParseInput([]byte(body))
	if err != nil || in.Footprint.Type != "Orbit" || len(in.Footprint.Points) != 2 || in.Footprint.WidthM != 9000 {
		t.Fatalf("%+v %v", in, err)
	}
	body = strings.Replace(body, `"width_m":9000`, `"width_m":9000,"radius":3`, 1)
	if _, err := ParseInput([]byte(body)); err == nil || !strings.Contains(err.Error(), "footprint.radius") {
		t.Fatalf("unknown footprint field: %v", err)
	}
}

// spinesNear against the sampled oracle with small limits, where crossing
// legs and the distances between legs' insides matter most.
func TestSpinesNearMatchesOracle(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lat, lon := genCenter(t, "a")
		lat = math.Max(-89.5, math.Min(89.5, lat))
		lat2, lon2 := destination(lat, lon, rapid.Float64Range(0, 360).Draw(t, "bearing"),
			rapid.Float64Range(0, 30_000).Draw(t, "dist")/meanEarthRadiusM)
		fa, fb := genTube(t, "a", lat, lon, 100), genTube(t, "b", lat2, lon2, 100)
		a := mkVol(t, "a", "p1", input(fa, 0, 1, t0, t0.Add(time.Hour)))
		b := mkVol(t, "b", "p2", input(fb, 0, 1, t0, t0.Add(time.Hour)))
		const step = 5 / meanEarthRadiusM
		lim := s1.Angle(rapid.Float64Range(0, 3_000).Draw(t, "lim") / meanEarthRadiusM)
		pa, _ := spineOfFootprint(fa)
		pb, _ := spineOfFootprint(fb)
		best := bruteSpineAngle(sampleSpine(pa, step), pb)
		got := spinesNear(a.shape.spine, b.shape.spine, lim)
		if best < lim.Radians()-step && !got {
			t.Fatalf("missed: spines %.2f m apart, limit %.2f m", best*meanEarthRadiusM, lim.Radians()*meanEarthRadiusM)
		}
		if best > lim.Radians()+step && got {
			t.Fatalf("false: spines %.2f m apart, limit %.2f m", best*meanEarthRadiusM, lim.Radians()*meanEarthRadiusM)
		}
	})
}
