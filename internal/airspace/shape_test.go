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

func s2Point(p orb.Point) s2.Point { return s2.PointFromLatLng(s2.LatLngFromDegrees(p[1], p[0])) }

func s2Loop(r orb.Ring) *s2.Loop {
	pts := make([]s2.Point, 0, len(r))
	for _, p := range r[:len(r)-1] {
		pts = append(pts, s2Point(p))
	}
	l := s2.LoopFromPoints(pts)
	if l.Area() > 2*math.Pi {
		l.Invert()
	}
	return l
}

// distanceToLineM is the distance from p to a polyline (a ring's boundary
// when the line is a closed ring), on the sphere of the mean radius.
func distanceToLineM(p orb.Point, line []orb.Point) float64 {
	x := s2Point(p)
	best := math.Inf(1)
	for i := 0; i+1 < len(line); i++ {
		best = min(best, s2.DistanceFromSegment(x, s2Point(line[i]), s2Point(line[i+1])).Radians()*geo.MeanRadiusM)
	}
	return best
}

// holds reports whether p lies in the ring's loop, or on its boundary
// (within 1 cm: a vertex, or a point of an edge).
func holds(loop *s2.Loop, ring orb.Ring, p orb.Point) bool {
	return loop.ContainsPoint(s2Point(p)) || distanceToLineM(p, ring) < 0.01
}

// wgs84Bearing is the direction of b seen from a, in a's tangent plane:
// for the distances of airspace arcs it differs from the geodesic azimuth
// by far less than the samples below are apart.
func wgs84Bearing(a, b orb.Point) float64 {
	v := geo.NewFrame(lla(a)).ToENU(lla(b))
	return math.Mod(math.Atan2(v.EastM, v.NorthM)*180/math.Pi+360, 360)
}

// wgs84Point is the point distM from c on the geodesic of azimuth brg.
func wgs84Point(c orb.Point, brg, distM float64) orb.Point {
	return point(geo.Destination(lla(c), brg, distM))
}

// TestCircleOutlineContainsCircle: the outline of a circle contains every
// point of the circle drawn on the mean sphere, and no vertex lies further
// out than ArcToleranceM.
func TestCircleOutlineContainsCircle(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := orb.Point{rapid.Float64Range(-179, 179).Draw(t, "lon"), rapid.Float64Range(-80, 80).Draw(t, "lat")}
		r := rapid.Float64Range(5, 200_000).Draw(t, "radius_m")
		s := Shape{Type: CircleShape, Center: c, RadiusM: r}
		out := s.Outline()
		loop := s2Loop(out)
		for k := 0; k < 720; k++ {
			if p := drawing.destination(c, float64(k)/2, r); !holds(loop, out, p) {
				t.Fatalf("circle point at bearing %v outside the outline by %.3f m", float64(k)/2, distanceToLineM(p, out))
			}
		}
		for _, v := range out {
			_, d := drawing.bearingDistance(c, v)
			if d > r+ArcToleranceM+1e-6*r || d < r-1e-6*r-1e-3 {
				t.Fatalf("vertex %.3f m from the centre, radius %v", d, r)
			}
		}
	})
}

// parseSource reads an OpenAir text whole.
func parseSource(t interface {
	Helper()
	Fatalf(string, ...any)
}, src string) []Airspace {
	t.Helper()
	as, err := whole(ParseOpenAir(strings.NewReader(src)))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return as
}

// arcCase is a pie slice read from OpenAir: the centre, an arc, the centre.
type arcCase struct {
	center orb.Point
	// The arc's ends as written (DB), or a DA's computed on the mean
	// sphere (drawn) and on WGS84 (true).
	drawnFrom, drawnTo, trueFrom, trueTo orb.Point
	cw                                   bool
	ring                                 Shape
}

func drawArcCase(t *rapid.T, db bool) arcCase {
	c := orb.Point{rapid.Float64Range(-170, 170).Draw(t, "lon"), rapid.Float64Range(-75, 75).Draw(t, "lat")}
	c, _ = parsePoint(formatPoint(c)) // as written, to the hundredth of a second
	rNM := rapid.Float64Range(0.1, 60).Draw(t, "radius_nm")
	b1 := float64(rapid.IntRange(0, 359).Draw(t, "b1"))
	sweep := float64(rapid.IntRange(10, 300).Draw(t, "sweep"))
	cw := rapid.Bool().Draw(t, "cw")
	sign, dir := 1.0, "+"
	if !cw {
		sign, dir = -1, "-"
	}
	b2 := math.Mod(b1+sign*sweep+360, 360)
	arc := fmt.Sprintf("DA %v,%v,%v", rNM, b1, b2)
	ac := arcCase{center: c, cw: cw}
	r := geo.NMToM(rNM)
	ac.drawnFrom, ac.drawnTo = drawing.destination(c, b1, r), drawing.destination(c, b2, r)
	ac.trueFrom, ac.trueTo = wgs84Point(c, b1, r), wgs84Point(c, b2, r)
	if db {
		// The ends as an authority publishes them: rounded, and up to 1%
		// apart in distance from the centre.
		r2 := r * (1 + rapid.Float64Range(-0.01, 0.01).Draw(t, "mismatch"))
		from, _ := parsePoint(formatPoint(wgs84Point(c, b1, r)))
		to, _ := parsePoint(formatPoint(wgs84Point(c, b2, r2)))
		ac.drawnFrom, ac.drawnTo, ac.trueFrom, ac.trueTo = from, to, from, to
		arc = "DB " + formatPoint(from) + ", " + formatPoint(to)
	}
	src := fmt.Sprintf("AC R\nAN slice\nAL GND\nAH FL100\nDP %s\nV D=%s\nV X=%s\n%s\nDP %s\n",
		formatPoint(c), dir, formatPoint(c), arc, formatPoint(c))
	as := parseSource(t, src)
	ac.ring = as[0].Shape
	return ac
}

// TestDrawnArcFollowsTheCurve: the ring of a pie slice, DA or DB, has its
// arc vertices on the curve that OpenAir readers draw on the mean sphere
// (a DB's at its first end's distance, then moving to its last end's over
// the last quarter), and the curve lies within ArcToleranceM of the ring.
func TestDrawnArcFollowsTheCurve(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ac := drawArcCase(t, rapid.Bool().Draw(t, "db"))
		b1, r1 := drawing.bearingDistance(ac.center, ac.drawnFrom)
		b2, r2 := drawing.bearingDistance(ac.center, ac.drawnTo)
		curve := firstRadius(r1, r2)
		ring := ac.ring.Ring
		sweep := arcSpec{b1: b1, b2: b2, cw: ac.cw}.sweepDeg()
		turned := func(brg float64) float64 { // fraction of the sweep at brg
			if ac.cw {
				return math.Mod(brg-b1+720, 360) / sweep
			}
			return math.Mod(b1-brg+720, 360) / sweep
		}
		for _, v := range ring[2 : len(ring)-2] {
			brg, d := drawing.bearingDistance(ac.center, v)
			if want := curve(turned(brg)); math.Abs(d-want) > 1e-6*want+1e-3 {
				t.Fatalf("arc vertex %.3f m from the centre, the curve %.3f m there", d, want)
			}
		}
		sign := 1.0
		if !ac.cw {
			sign = -1
		}
		for k := 0; k <= 100; k++ {
			frac := float64(k) / 100
			p := drawing.destination(ac.center, b1+sign*frac*sweep, curve(frac))
			if d := distanceToLineM(p, ring); d > ArcToleranceM {
				t.Fatalf("curve point %d %.1f m from the ring", k, d)
			}
		}
	})
}

// TestEnclosureHoldsEveryReading: the footprint ring of a pie slice holds
// the arc read on WGS84 (geodesic distances from the centre), a DB's at
// any distance between those of its ends (so in each of the readings of
// OpenAir software: the first end's distance to the end, as XCSoar;
// changing to the last end's over the last quarter, as openAIP; changing
// evenly, as GDAL), and a DB's arc as drawn; and it reaches at most 1.013%
// (the ratio of WGS84's largest and smallest radii of curvature) plus
// ArcToleranceM beyond the farther end.
func TestEnclosureHoldsEveryReading(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		db := rapid.Bool().Draw(t, "db")
		ac := drawArcCase(t, db)
		enc := ac.ring.FootprintRing()
		if ac.ring.Enclosure == nil {
			t.Fatal("no enclosure for a ring with an arc")
		}
		loop := s2Loop(enc)
		r1 := geo.GeodesicM(lla(ac.center), lla(ac.trueFrom))
		r2 := geo.GeodesicM(lla(ac.center), lla(ac.trueTo))
		a1, a2 := wgs84Bearing(ac.center, ac.trueFrom), wgs84Bearing(ac.center, ac.trueTo)
		sweep := arcSpec{b1: a1, b2: a2, cw: ac.cw}.sweepDeg()
		sign := 1.0
		if !ac.cw {
			sign = -1
		}
		for k := 1; k < 100; k++ {
			frac := float64(k) / 100
			for _, r := range []float64{r1, r2, firstRadius(r1, r2)(frac), r1 + (r2-r1)*frac} {
				if p := wgs84Point(ac.center, a1+sign*frac*sweep, r); !holds(loop, enc, p) {
					t.Fatalf("WGS84 arc point %d at %.1f m outside the footprint by %.3f m", k, r, distanceToLineM(p, enc))
				}
			}
		}
		for _, p := range ac.ring.Ring {
			if !db {
				break // a DA's ends are drawn on the sphere, not where WGS84 puts them
			}
			if !holds(loop, enc, p) {
				t.Fatalf("drawn vertex %v outside the footprint by %.3f m", p, distanceToLineM(p, enc))
			}
		}
		reach := max(r1, r2)*geo.MaxCurvatureRadiusM/geo.MinCurvatureRadiusM + ArcToleranceM*1.02
		for _, v := range enc {
			if d := geo.GeodesicM(lla(ac.center), lla(v)); d > reach {
				t.Fatalf("footprint vertex %.1f m from the centre, more than %.1f m", d, reach)
			}
		}
	})
}

// TestNotchArc: a square with an arc cut into one side (the arc turning
// against the ring): the drawn ring keeps its arc vertices on the circle;
// the footprint holds every point of the square outside the disc read on
// WGS84, at either end's distance.
func TestNotchArc(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// A 20 km square around c, clockwise; its east side replaced by
		// an arc around a centre east of it, bulging west into the square.
		c := orb.Point{rapid.Float64Range(-170, 170).Draw(t, "lon"), rapid.Float64Range(-70, 70).Draw(t, "lat")}
		corner := func(b float64) orb.Point { p, _ := parsePoint(formatPoint(wgs84Point(c, b, 14142))); return p }
		ne, se, sw, nw := corner(45), corner(135), corner(225), corner(315)
		center, _ := parsePoint(formatPoint(wgs84Point(c, 90, rapid.Float64Range(12000, 16000).Draw(t, "offset_m"))))
		src := "AC R\nAN notch\nAL GND\nAH FL100\n" +
			"DP " + formatPoint(nw) + "\nDP " + formatPoint(ne) + "\n" +
			"V D=-\nV X=" + formatPoint(center) + "\nDB " + formatPoint(ne) + ", " + formatPoint(se) + "\n" +
			"DP " + formatPoint(sw) + "\nDP " + formatPoint(nw) + "\n"
		as := parseSource(t, src)
		ring := as[0].Shape.Ring
		_, r1 := drawing.bearingDistance(center, ne)
		_, r2 := drawing.bearingDistance(center, se)
		for i := 2; i < len(ring)-3; i++ {
			_, d := drawing.bearingDistance(center, ring[i])
			if d < min(r1, r2)-1e-3 || d > max(r1, r2)+1e-3 {
				t.Fatalf("notch vertex %d at %.3f m from the centre, the ends at %.3f and %.3f m", i, d, r1, r2)
			}
		}
		enc := as[0].Shape.FootprintRing()
		loop := s2Loop(enc)
		g1 := geo.GeodesicM(lla(center), lla(ne))
		g2 := geo.GeodesicM(lla(center), lla(se))
		a1, a2 := wgs84Bearing(center, ne), wgs84Bearing(center, se)
		sweep := arcSpec{b1: a1, b2: a2}.sweepDeg()
		for k := 1; k < 100; k++ {
			// Just outside the disc: in the airspace whichever the radius.
			p := wgs84Point(center, a1-sweep*float64(k)/100, max(g1, g2)+0.5)
			if !holds(loop, enc, p) {
				t.Fatalf("a point of the airspace beside the notch lies outside the footprint by %.3f m", distanceToLineM(p, enc))
			}
		}
	})
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
		d := distanceToLineM(v, line)
		if d < half-1e-3 || d > half/math.Cos(80*math.Pi/180)+ArcToleranceM {
			t.Fatalf("outline vertex %v at %.1f m from the line", v, d)
		}
	}
	loop := s2Loop(out)
	for i := 0; i+1 < len(line); i++ {
		b, l := drawing.bearingDistance(line[i], line[i+1])
		mid := drawing.destination(line[i], b, l/2)
		for _, side := range []float64{90, -90} {
			p := drawing.destination(mid, b+side, half*0.99)
			if !loop.ContainsPoint(s2Point(p)) {
				t.Fatalf("point beside segment %d (side %v) outside the outline", i, side)
			}
		}
	}
}
