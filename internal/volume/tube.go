package volume

import (
	"fmt"
	"math"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/fielderr"
)

// Orbits and corridors are tubes: every point within a radius (half the
// declared width) of a spine, the two turn centres of an orbit or the line
// of a corridor, whose edges are great-circle arcs like a polygon's. The
// distance from a tube to anything is the distance from its spine less the
// radius, so the conflict test is exact on the sphere and made
// conservative against the ellipsoid as circles are (see the package doc).

func compileOrbit(fp Footprint, maxWidthM float64) (*shape, error) {
	if err := onlyTubeFields(fp, "Orbit", "points"); err != nil {
		return nil, err
	}
	if len(fp.Points) != 2 {
		return nil, fielderr.Errorf("footprint.points", "an Orbit has exactly two turn centres, got %d", len(fp.Points))
	}
	return compileTube(fp.Points, fp.WidthM, "footprint.points", 2, maxWidthM)
}

func compileCorridor(fp Footprint, maxVertices int, maxWidthM float64) (*shape, error) {
	if err := onlyTubeFields(fp, "Corridor", "line"); err != nil {
		return nil, err
	}
	switch {
	case len(fp.Line) < 2:
		return nil, fielderr.Errorf("footprint.line", "a Corridor's line needs at least 2 positions, got %d", len(fp.Line))
	case len(fp.Line) > maxVertices:
		return nil, fielderr.Errorf("footprint.line", "%d positions, more than the %d the rules allow", len(fp.Line), maxVertices)
	}
	return compileTube(fp.Line, fp.WidthM, "footprint.line", maxVertices, maxWidthM)
}

// onlyTubeFields refuses the fields of the other footprint types.
func onlyTubeFields(fp Footprint, typ, spineField string) error {
	switch {
	case fp.Coordinates != nil:
		return fielderr.Errorf("footprint.coordinates", "not allowed in a %s (use %s and width_m)", typ, spineField)
	case fp.Center != nil || fp.RadiusM != 0:
		return fielderr.Errorf("footprint", "center and radius_m belong to a Circle, not a %s", typ)
	case typ == "Orbit" && fp.Line != nil:
		return fielderr.Errorf("footprint.line", "not allowed in an Orbit (use points: the two turn centres)")
	case typ == "Corridor" && fp.Points != nil:
		return fielderr.Errorf("footprint.points", "not allowed in a Corridor (use line)")
	}
	return nil
}

func compileTube(positions [][]float64, widthM float64, field string, maxVertices int, maxWidthM float64) (*shape, error) {
	if !finite(widthM) || widthM <= 0 {
		return nil, fielderr.Errorf("footprint.width_m", "must be a finite number of meters above zero, got %v", widthM)
	}
	if widthM > maxWidthM {
		return nil, fielderr.Errorf("footprint.width_m", "%.0f m wide, more than the %.0f m across the rules allow", widthM, maxWidthM)
	}
	spine := make([]s2.Point, len(positions))
	for i, pos := range positions {
		p, err := position(pos, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		if i > 0 && p == spine[i-1] {
			return nil, fielderr.Errorf(fmt.Sprintf("%s[%d]", field, i), "repeats the previous position (the same point on the sphere)")
		}
		spine[i] = p
	}
	// The footprint's width: the spine's (its vertices' largest distance;
	// great-circle edges between them bulge no further apart) plus the
	// width. Checked before the bound, whose size depends on it.
	if w := diameter(spine)*meanEarthRadiusM + widthM; w > maxWidthM {
		return nil, fielderr.Errorf(field, "footprint is %.0f m across with its width, more than the %.0f m the rules allow", w, maxWidthM)
	}
	r := conservativeAngle(widthM / 2)
	bound := s2.CapFromPoint(spine[0])
	for i := 1; i < len(spine); i++ {
		bound = bound.AddCap(edgeCap(spine[i-1], spine[i]))
	}
	return &shape{spine: spine, radius: r, bound: bound.Expanded(r)}, nil
}

// edgeCap is a cap holding the great-circle edge from a to b (shorter than
// a half turn): centred on its midpoint, reaching its ends.
func edgeCap(a, b s2.Point) s2.Cap {
	c := s2.Point{Vector: a.Add(b.Vector).Normalize()}
	return s2.CapFromCenterAngle(c, max(c.Distance(a), c.Distance(b))+1e-12)
}

// segments calls f with each edge of a spine (a single point as an edge of
// length zero) until f returns true.
func segments(spine []s2.Point, f func(a, b s2.Point) bool) bool {
	if len(spine) == 1 {
		return f(spine[0], spine[0])
	}
	for i := 0; i+1 < len(spine); i++ {
		if f(spine[i], spine[i+1]) {
			return true
		}
	}
	return false
}

// edgesWithin reports whether the great-circle edges a0a1 and b0b1 (either
// may be a point) come closer than limit: they cross, or an end of one is
// within the limit of the other (the least distance between two edges that
// do not cross is at an end of one of them).
func edgesWithin(a0, a1, b0, b1 s2.Point, limit s1.ChordAngle) bool {
	if a0 != a1 && b0 != b1 && s2.CrossingSign(a0, a1, b0, b1) != s2.DoNotCross {
		return true
	}
	return s2.IsDistanceLess(a0, b0, b1, limit) || s2.IsDistanceLess(a1, b0, b1, limit) ||
		s2.IsDistanceLess(b0, a0, a1, limit) || s2.IsDistanceLess(b1, a0, a1, limit)
}

// spinesNear reports whether two spines come closer than lim.
func spinesNear(a, b []s2.Point, lim s1.Angle) bool {
	limit := s1.ChordAngleFromAngle(lim)
	return segments(a, func(a0, a1 s2.Point) bool {
		return segments(b, func(b0, b1 s2.Point) bool { return edgesWithin(a0, a1, b0, b1, limit) })
	})
}

// loopNearSpine reports whether a spine comes closer than lim to a loop
// (or lies inside it); bound is a cap containing the loop.
func loopNearSpine(l *s2.Loop, bound s2.Cap, spine []s2.Point, lim s1.Angle) bool {
	if len(spine) == 1 {
		return loopNearPoint(l, bound, spine[0], lim)
	}
	limit := s1.ChordAngleFromAngle(lim)
	vs := l.Vertices()
	for i := range vs {
		v0, v1 := vs[i], vs[(i+1)%len(vs)]
		if segments(spine, func(a, b s2.Point) bool { return edgesWithin(a, b, v0, v1, limit) }) {
			return true
		}
	}
	// No edge of the spine crosses or comes near the loop's boundary: the
	// spine lies wholly inside or wholly outside.
	return bound.ContainsPoint(spine[0]) && l.ContainsPoint(spine[0])
}

// spineOf returns the spine of a circle (its centre) or a tube.
func (a *shape) spineOf() []s2.Point {
	if a.circle {
		return []s2.Point{a.center}
	}
	return a.spine
}

// tubeContains reports whether p lies within the radius of the spine.
func tubeContains(spine []s2.Point, r s1.Angle, p s2.Point) bool {
	limit := s1.ChordAngleFromAngle(r).Successor() // within: at most r
	return segments(spine, func(a, b s2.Point) bool { return s2.IsDistanceLess(p, a, b, limit) })
}

// tubeRings is the number of rings of neighbour cells at the index level
// that reach past an angle.
func tubeRings(level int, ang s1.Angle) int {
	return max(1, int(math.Ceil(ang.Radians()/s2.MinWidthMetric.Value(level))))
}
