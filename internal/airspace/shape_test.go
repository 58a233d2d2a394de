package airspace

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/golang/geo/s2"
	"github.com/paulmach/orb"
	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/geo"
)

func s2Loop(r orb.Ring) *s2.Loop {
	pts := make([]s2.Point, 0, len(r))
	for _, p := range r[:len(r)-1] {
		pts = append(pts, s2.PointFromLatLng(s2.LatLngFromDegrees(p[1], p[0])))
	}
	l := s2.LoopFromPoints(pts)
	if l.Area() > 2*math.Pi {
		l.Invert()
	}
	return l
}

// distanceToRingM is the distance from p to the ring's boundary.
func distanceToRingM(p orb.Point, r orb.Ring) float64 {
	x := s2.PointFromLatLng(s2.LatLngFromDegrees(p[1], p[0]))
	best := math.Inf(1)
	for i := 0; i+1 < len(r); i++ {
		a := s2.PointFromLatLng(s2.LatLngFromDegrees(r[i][1], r[i][0]))
		b := s2.PointFromLatLng(s2.LatLngFromDegrees(r[i+1][1], r[i+1][0]))
		best = min(best, s2.DistanceFromSegment(x, a, b).Radians()*geo.MeanRadiusM)
	}
	return best
}

// TestCircleOutlineContainsCircle: the polygon of a circle contains every
// point of the true (geodesic) circle, sampled densely with Vincenty's
// direct formula, and no vertex lies further out than ArcToleranceM.
func TestCircleOutlineContainsCircle(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := orb.Point{rapid.Float64Range(-179, 179).Draw(t, "lon"), rapid.Float64Range(-80, 80).Draw(t, "lat")}
		r := rapid.Float64Range(5, 200_000).Draw(t, "radius_m")
		s := Shape{Type: CircleShape, Center: c, RadiusM: r}
		out := s.Outline()
		loop := s2Loop(out)
		for k := 0; k < 720; k++ {
			p := ellipsoidDestination(c, float64(k)/2, r)
			x := s2.PointFromLatLng(s2.LatLngFromDegrees(p[1], p[0]))
			// The loop's edges are great-circle arcs; allow for their
			// difference from the ellipsoid's geodesics at the vertices.
			if !loop.ContainsPoint(x) && distanceToRingM(p, out) > 0.01 {
				t.Fatalf("circle point at bearing %v outside the outline by %.3f m", float64(k)/2, distanceToRingM(p, out))
			}
		}
		for _, v := range out {
			_, d := ellipsoidBearingDistance(c, v)
			if d > r+ArcToleranceM+1e-6*r || d < r-1e-6*r-1e-3 {
				t.Fatalf("vertex %.3f m from the centre, radius %v", d, r)
			}
		}
	})
}

// TestArcPolygonContainsArc: a pie slice read from OpenAir (centre, DA arc
// clockwise or not, centre) contains the true arc and lies within
// ArcToleranceM of it; and an arc that bends into the airspace (a notch)
// leaves the polygon holding every point of the true shape too.
func TestArcPolygonContainsArc(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := orb.Point{rapid.Float64Range(-170, 170).Draw(t, "lon"), rapid.Float64Range(-75, 75).Draw(t, "lat")}
		rNM := rapid.Float64Range(0.1, 50).Draw(t, "radius_nm")
		b1 := float64(rapid.IntRange(0, 359).Draw(t, "b1"))
		sweep := float64(rapid.IntRange(10, 300).Draw(t, "sweep"))
		cw := rapid.Bool().Draw(t, "cw")
		b2 := math.Mod(b1+sweep, 360)
		if !cw {
			b2 = math.Mod(b1-sweep+360, 360)
		}
		dir := "+"
		if !cw {
			dir = "-"
		}
		src := fmt.Sprintf("AC R\nAN slice\nAL GND\nAH FL100\nDP %s\nV D=%s\nV X=%s\nDA %v,%v,%v\nDP %s\n",
			formatPoint(c), dir, formatPoint(c), rNM, b1, b2, formatPoint(c))
		as, err := ParseOpenAir(strings.NewReader(src))
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		ring := as[0].Shape.Ring
		loop := s2Loop(ring)
		center, _ := parsePoint(formatPoint(c)) // as written, to the hundredth of a second
		r := geo.NMToM(rNM)
		sign := 1.0
		if !cw {
			sign = -1
		}
		for k := 1; k < 100; k++ {
			p := ellipsoidDestination(center, b1+sign*sweep*float64(k)/100, r)
			x := s2.PointFromLatLng(s2.LatLngFromDegrees(p[1], p[0]))
			if !loop.ContainsPoint(x) && distanceToRingM(p, ring) > 0.01 {
				t.Fatalf("arc point %d outside the polygon by %.3f m", k, distanceToRingM(p, ring))
			}
		}
		for _, v := range ring[1 : len(ring)-1] {
			_, d := ellipsoidBearingDistance(center, v)
			if d > r+ArcToleranceM+1e-6*r || d < r-1e-6*r-1e-3 {
				t.Fatalf("vertex %.3f m from the centre, radius %v", d, r)
			}
		}
	})
}

// TestNotchArcStaysOnCircle: a square with a concave arc cut into one side
// (the arc turning against the ring) keeps its arc vertices on the circle,
// so the polygon still covers the whole airspace outside the notch.
func TestNotchArcStaysOnCircle(t *testing.T) {
	// A 20 km square around (10E, 50N), clockwise; its east side replaced
	// by an arc around a centre east of it, bulging west into the square.
	c := orb.Point{10, 50}
	corner := func(b float64) orb.Point { return ellipsoidDestination(c, b, 14142) }
	ne, se, sw, nw := corner(45), corner(135), corner(225), corner(315)
	center := ellipsoidDestination(c, 90, 15000)
	src := "AC R\nAN notch\nAL GND\nAH FL100\n" +
		"DP " + formatPoint(nw) + "\nDP " + formatPoint(ne) + "\n" +
		"V D=-\nV X=" + formatPoint(center) + "\nDB " + formatPoint(ne) + ", " + formatPoint(se) + "\n" +
		"DP " + formatPoint(sw) + "\nDP " + formatPoint(nw) + "\n"
	as, err := ParseOpenAir(strings.NewReader(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	ring := as[0].Shape.Ring
	cen, _ := parsePoint(formatPoint(center))
	_, r1 := ellipsoidBearingDistance(cen, ring[1])
	arcVertices := 0
	for i := 2; i < len(ring)-3; i++ {
		_, d := ellipsoidBearingDistance(cen, ring[i])
		if math.Abs(d-r1) > 1 {
			t.Fatalf("notch vertex %d at %.3f m from the centre, the arc's radius is %.3f m", i, d, r1)
		}
		arcVertices++
	}
	if arcVertices < 3 {
		t.Fatalf("only %d arc vertices: %v", arcVertices, ring)
	}
}

// TestCorridorOutline: every vertex of a corridor's outline lies half the
// width (or, at an inner bend, the mitre distance) from the line, and
// points half the width from every segment's middle lie inside it.
func TestCorridorOutline(t *testing.T) {
	line := orb.LineString{{5, 44}, {5.3, 44.1}, {5.2, 44.4}, {5.6, 44.5}}
	half := 2000.0
	s := Shape{Type: CorridorShape, Line: line, WidthM: 2 * half}
	out := s.Outline()
	if signedAreaM2(out) <= 0 {
		t.Fatal("outline not counterclockwise")
	}
	if _, _, ok := crossing(out); ok {
		t.Fatal("outline crosses itself")
	}
	for _, v := range out {
		// Distances on the sphere of the mean radius differ from the
		// ellipsoid's by up to 0.6%.
		d := distanceToLineM(v, line)
		if d < half*0.994 || d > (half/math.Cos(80*math.Pi/180)+ArcToleranceM)*1.006 {
			t.Fatalf("outline vertex %v at %.1f m from the line", v, d)
		}
	}
	loop := s2Loop(out)
	for i := 0; i+1 < len(line); i++ {
		b, l := ellipsoidBearingDistance(line[i], line[i+1])
		mid := ellipsoidDestination(line[i], b, l/2)
		for _, side := range []float64{90, -90} {
			p := ellipsoidDestination(mid, b+side, half*0.99)
			if !loop.ContainsPoint(s2.PointFromLatLng(s2.LatLngFromDegrees(p[1], p[0]))) {
				t.Fatalf("point beside segment %d (side %v) outside the outline", i, side)
			}
		}
	}
}

func distanceToLineM(p orb.Point, line orb.LineString) float64 {
	x := s2.PointFromLatLng(s2.LatLngFromDegrees(p[1], p[0]))
	best := math.Inf(1)
	for i := 0; i+1 < len(line); i++ {
		a := s2.PointFromLatLng(s2.LatLngFromDegrees(line[i][1], line[i][0]))
		b := s2.PointFromLatLng(s2.LatLngFromDegrees(line[i+1][1], line[i+1][0]))
		best = min(best, s2.DistanceFromSegment(x, a, b).Radians()*geo.MeanRadiusM)
	}
	return best
}
