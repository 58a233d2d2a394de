package airspace

import (
	"math"

	"github.com/golang/geo/s2"
	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/geo"
)

// closeToleranceM is how near the last point of an outline must come to the
// first for the ring to count as closed when an arc computes one of them.
const closeToleranceM = 1.0

// polygon builds the ring of an airspace from its DP points and DA/DB arcs
// as OpenAir readers draw it, and the enclosing ring that is declared as
// its volume footprint (see the package doc), and checks them: closed,
// three distinct points at least, not crossing itself. acLine is the line
// of the airspace's AC, named by errors about the whole outline.
func polygon(elems []element, acLine int) (Shape, error) {
	drawn := layout(elems, element.drawn)
	if len(drawn) == 0 {
		return Shape{}, lineErrorf(acLine, "the airspace that begins here has no points")
	}
	first, last := drawn[0], drawn[len(drawn)-1]
	closed := first.p == last.p
	if !closed && (!first.written || !last.written) {
		closed = geo.GeodesicM(lla(first.p), lla(last.p)) < closeToleranceM
	}
	if !closed {
		return Shape{}, lineErrorf(acLine, "the outline is not closed: its last point (line %d) does not repeat its first (line %d)",
			last.line, first.line)
	}
	drawn[len(drawn)-1].p = first.p
	ring, lines, err := checkRing(drawn, acLine, "outline")
	if err != nil {
		return Shape{}, err
	}
	s := Shape{Type: PolygonShape, Ring: ring, RingLines: lines}
	clockwise := signedAreaM2(ring) < 0
	hasArc := false
	for _, e := range elems {
		hasArc = hasArc || e.isArc
	}
	if !hasArc {
		return s, nil
	}
	enclosing := layout(elems, func(e element) []vertex { return e.enclosing(e.ccw != clockwise) })
	enclosing[len(enclosing)-1].p = enclosing[0].p
	if s.Enclosure, s.EnclosureLines, err = checkRing(enclosing, acLine, "outline read on WGS84"); err != nil {
		return Shape{}, err
	}
	return s, nil
}

// vertex is one position of a ring: the line of the file it comes from,
// and whether the file wrote it (rather than an arc computing it).
type vertex struct {
	p       orb.Point
	line    int
	written bool
}

// layout lays out the vertices of the elements in order.
func layout(elems []element, of func(element) []vertex) []vertex {
	var out []vertex
	for _, e := range elems {
		out = append(out, of(e)...)
	}
	return out
}

// drawn lays an element out as OpenAir readers do: on the sphere of the
// mean radius, arc vertices on the curve; a DB arc at the distance of its
// first point from the centre, moving to that of its last point over the
// last quarter of the sweep (see the package doc).
func (e element) drawn() []vertex {
	if !e.isArc {
		return []vertex{{e.pt, e.line, true}}
	}
	if e.fromPt == nil {
		a := arcSpec{center: e.center, b1: e.b1, b2: e.b2, cw: !e.ccw, full: true}
		return computed(drawing.arc(a, arcSteps(a.sweepDeg(), e.radius), false, constant(e.radius)), e.line)
	}
	b1, r1 := drawing.bearingDistance(e.center, *e.fromPt)
	b2, r2 := drawing.bearingDistance(e.center, *e.toPt)
	a := arcSpec{center: e.center, b1: b1, b2: b2, cw: !e.ccw, full: *e.fromPt == *e.toPt}
	n := arcSteps(a.sweepDeg(), max(r1, r2))
	if r1 != r2 {
		// Chords within a quarter of the tolerance of the circle, and half
		// of it of the change of radius.
		n = max(2*n, transitionSteps(math.Abs(r2-r1)))
	}
	out := computed(drawing.arc(a, n, false, firstRadius(r1, r2)), e.line)
	out[0] = vertex{*e.fromPt, e.line, true}
	out[len(out)-1] = vertex{*e.toPt, e.line, true}
	return out
}

// firstRadius is the radius along a DB arc whose ends lie r1 and r2 from
// its centre, as openAIP draws it: r1 for the first three quarters of the
// sweep, then a smooth step (3x²-2x³) to r2.
func firstRadius(r1, r2 float64) func(float64) float64 {
	return func(frac float64) float64 {
		if frac <= 0.75 {
			return r1
		}
		x := (frac - 0.75) * 4
		return r1 + (r2-r1)*x*x*(3-2*x)
	}
}

// transitionSteps is how many steps a DB arc needs for its chords to
// follow, within half of ArcToleranceM, a change of radius of changeM made
// by firstRadius: a chord over a fraction h of the sweep strays from the
// curve by at most an eighth of h² times the curve's largest second
// derivative, 96·changeM.
func transitionSteps(changeM float64) int {
	return int(math.Ceil(math.Sqrt(12 * 2 * changeM / ArcToleranceM)))
}

// enclosing lays an element out so that the ring holds the airspace read
// on WGS84 (see the package doc): a DB's ends as written, a DA's at their
// geodesic bearings and distance, and between them, for an arc that bulges
// away from the airspace (outward), the tangent polygon of the farther
// end's distance taken as far as WGS84 allows, and for one that bends into
// it the nearer end's distance taken as near as WGS84 allows; the end
// whose distance is not that one is joined to that circle along its
// radial.
func (e element) enclosing(outward bool) []vertex {
	if !e.isArc {
		return []vertex{{e.pt, e.line, true}}
	}
	from, to := vertex{line: e.line}, vertex{line: e.line}
	full := true
	if e.fromPt == nil {
		from.p = point(geo.Destination(lla(e.center), e.b1, e.radius))
		to.p = point(geo.Destination(lla(e.center), e.b2, e.radius))
	} else {
		from.p, to.p, full = *e.fromPt, *e.toPt, *e.fromPt == *e.toPt
		from.written, to.written = true, true
	}
	b1, _ := drawing.bearingDistance(e.center, from.p)
	b2, _ := drawing.bearingDistance(e.center, to.p)
	a := arcSpec{center: e.center, b1: b1, b2: b2, cw: !e.ccw, full: full}
	r1, r2 := e.radius, e.radius
	if e.fromPt != nil {
		r1 = geo.GeodesicM(lla(e.center), lla(from.p))
		r2 = geo.GeodesicM(lla(e.center), lla(to.p))
	}
	var pts []orb.Point
	if outward {
		r := max(r1, r2)
		pts = outside.arc(a, arcSteps(a.sweepDeg(), r), true, constant(r))
	} else {
		r := min(r1, r2)
		pts = inside.arc(a, arcSteps(a.sweepDeg(), r), false, constant(r))
	}
	// The readings that keep the other end's distance until the last
	// moment need the radial.
	first, last := 1, len(pts)-1
	if r1 != r2 && (r1 < r2) == outward {
		first = 0
	}
	if r1 != r2 && (r2 < r1) == outward {
		last = len(pts)
	}
	out := []vertex{from}
	out = append(out, computed(pts[first:last], e.line)...)
	return append(out, to)
}

func computed(pts []orb.Point, line int) []vertex {
	out := make([]vertex, len(pts))
	for i, p := range pts {
		out[i] = vertex{p, line, false}
	}
	return out
}

// checkRing turns closed vertices into a ring and the line of each
// position, without repeated positions, and checks that it has three
// distinct points and does not cross itself; what names the ring in
// errors.
func checkRing(vs []vertex, acLine int, what string) (orb.Ring, []int, error) {
	ring := make(orb.Ring, len(vs))
	lines := make([]int, len(vs))
	for i, v := range vs {
		ring[i], lines[i] = v.p, v.line
	}
	ring, lines = dedupeLines(ring, lines)
	if len(ring) < 4 {
		return nil, nil, lineErrorf(acLine, "the %s has %d distinct points: a polygon needs 3 at least", what, max(0, len(ring)-1))
	}
	if i, j, ok := crossing(ring); ok {
		return nil, nil, lineErrorf(lines[j+1], "the %s crosses or touches itself: the edge from line %d to line %d meets the edge from line %d to line %d",
			what, lines[i], lines[i+1], lines[j], lines[j+1])
	}
	return ring, lines, nil
}

func dedupeLines(r orb.Ring, lines []int) (orb.Ring, []int) {
	outR, outL := r[:0:0], lines[:0:0]
	for i, p := range r {
		if i > 0 && p == outR[len(outR)-1] {
			continue
		}
		outR, outL = append(outR, p), append(outL, lines[i])
	}
	return outR, outL
}

// crossing finds two edges of a closed ring (edge i runs from ring[i] to
// ring[i+1]) that cross or touch, other than neighbours meeting at their
// shared vertex, or neighbours that fold back onto each other. Edges are
// great-circle arcs, as volume footprints read them.
func crossing(ring orb.Ring) (int, int, bool) {
	n := len(ring) - 1
	pts := make([]s2.Point, n)
	for i := range pts {
		pts[i] = s2.PointFromLatLng(s2.LatLngFromDegrees(ring[i][1], ring[i][0]))
	}
	for i := 0; i < n; i++ {
		prev, cur, next := pts[(i+n-1)%n], pts[i], pts[(i+1)%n]
		if prev == next || s2.RobustSign(prev, cur, next) == s2.Indeterminate && prev.Sub(cur.Vector).Dot(next.Sub(cur.Vector)) > 0 {
			return (i + n - 1) % n, i, true
		}
	}
	for i := 0; i < n; i++ {
		for j := i + 2; j < n; j++ {
			if i == 0 && j == n-1 {
				continue
			}
			if s2.CrossingSign(pts[i], pts[(i+1)%n], pts[j], pts[(j+1)%n]) != s2.DoNotCross {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}
