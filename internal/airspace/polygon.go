package airspace

import (
	"github.com/golang/geo/s2"
	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/geo"
)

// closeToleranceM is how near the last point of an outline must come to the
// first for the ring to count as closed when an arc computes one of them.
const closeToleranceM = 1.0

// polygon builds the ring of an airspace from its DP points and DA/DB arcs
// (see the package doc for how arcs become vertices) and checks it: closed,
// three distinct points at least, not crossing itself. acLine is the line
// of the airspace's AC, named by errors about the whole outline.
func polygon(elems []element, acLine int) (Shape, error) {
	// First with every arc on its circle, to learn the ring's winding;
	// then again with the arcs that bulge away from the airspace pushed
	// out onto their tangent polygons.
	ring, lines, written := buildRing(elems, func(element) bool { return false })
	if len(ring) == 0 {
		return Shape{}, lineErrorf(acLine, "the airspace that begins here has no points")
	}
	first, last := ring[0], ring[len(ring)-1]
	closed := first == last
	if !closed && (!written[0] || !written[len(ring)-1]) {
		closed = geo.GeodesicM(lla(first), lla(last)) < closeToleranceM
	}
	if !closed {
		return Shape{}, lineErrorf(acLine, "the outline is not closed: its last point (line %d) does not repeat its first (line %d)",
			lines[len(lines)-1], lines[0])
	}
	clockwise := signedAreaM2(ring) < 0
	ring, lines, _ = buildRing(elems, func(e element) bool { return e.ccw != clockwise })
	ring[len(ring)-1] = ring[0]
	ring, lines = dedupeLines(ring, lines)
	if len(ring) < 4 {
		return Shape{}, lineErrorf(acLine, "the outline has %d distinct points: a polygon needs 3 at least", max(0, len(ring)-1))
	}
	if i, j, ok := crossing(ring); ok {
		return Shape{}, lineErrorf(lines[j+1], "the outline crosses or touches itself: the edge from line %d to line %d meets the edge from line %d to line %d",
			lines[i], lines[i+1], lines[j], lines[j+1])
	}
	return Shape{Type: PolygonShape, Ring: ring, RingLines: lines}, nil
}

// buildRing lays out the vertices of the elements in order, with the line
// of each and whether it was written in the file (rather than computed on
// an arc). outward tells which arcs to push out.
func buildRing(elems []element, outward func(element) bool) (orb.Ring, []int, []bool) {
	var ring orb.Ring
	var lines []int
	var written []bool
	add := func(p orb.Point, line int, w bool) {
		ring = append(ring, p)
		lines = append(lines, line)
		written = append(written, w)
	}
	for _, e := range elems {
		if !e.isArc {
			add(e.pt, e.line, true)
			continue
		}
		cw := !e.ccw
		if e.fromPt != nil {
			b1, r1 := bearingDistance(e.center, *e.fromPt)
			b2, r2 := bearingDistance(e.center, *e.toPt)
			pts := arc(e.center, b1, r1, b2, r2, cw, outward(e), *e.fromPt == *e.toPt)
			add(*e.fromPt, e.line, true)
			for _, p := range pts[1 : len(pts)-1] {
				add(p, e.line, false)
			}
			add(*e.toPt, e.line, true)
			continue
		}
		for _, p := range arc(e.center, e.b1, e.radius, e.b2, e.radius, cw, outward(e), true) {
			add(p, e.line, false)
		}
	}
	return ring, lines, written
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
