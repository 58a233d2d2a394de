package volume

import (
	"fmt"
	"math"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
)

// Radii of curvature of WGS84 that bound the ellipsoid's metric against the
// unit sphere's in geodetic coordinates (see the package doc).
const (
	minCurvatureRadiusM = geo.MinCurvatureRadiusM // b²/a ≈ 6,335,439 m: meridional, at the equator
	maxCurvatureRadiusM = geo.MaxCurvatureRadiusM // a²/b ≈ 6,399,594 m: at the poles
	// meanEarthRadiusM is used only for the footprint width limit, where a
	// 0.5% error is of no consequence.
	meanEarthRadiusM = geo.MeanRadiusM
)

// conservativeAngle turns a length into the largest spherical angle two
// points can be apart while their ellipsoidal distance is still within it.
func conservativeAngle(m float64) s1.Angle { return s1.Angle(m / minCurvatureRadiusM) }

// shape is a compiled footprint on the unit sphere.
type shape struct {
	circle bool
	center s2.Point // circles only
	// spine is an orbit's or a corridor's line (see tube.go); nil otherwise.
	spine  []s2.Point
	radius s1.Angle // circles, orbits and corridors, conservative
	loop   *s2.Loop // polygons only
	bound  s2.Cap   // contains the whole footprint
	// edge i's centre and the largest edge half-length (see edgeCaps),
	// kept to rule out far pairs of edges quickly; polygons only.
	edgeCentres []s2.Point
	edgeReach   s1.Angle
	// areaM2 is the area on the sphere of the earth's mean radius
	// (within 0.5% of the ellipsoid's), for the rules' area limit.
	areaM2 float64
}

// compile validates a footprint and turns it into a shape. Field names in
// errors start with "footprint".
func compile(fp Footprint, maxVertices int, maxWidthM float64) (*shape, error) {
	const types = `"Polygon", "Circle", "Orbit" or "Corridor"`
	if fp.Type != "Orbit" && fp.Type != "Corridor" {
		switch {
		case fp.Points != nil:
			return nil, fielderr.Errorf("footprint.points", "belongs to an Orbit, not a %s", fp.Type)
		case fp.Line != nil:
			return nil, fielderr.Errorf("footprint.line", "belongs to a Corridor, not a %s", fp.Type)
		case fp.WidthM != 0:
			return nil, fielderr.Errorf("footprint.width_m", "belongs to an Orbit or a Corridor, not a %s", fp.Type)
		}
	}
	switch fp.Type {
	case "Circle":
		return compileCircle(fp, maxWidthM)
	case "Polygon":
		return compilePolygon(fp, maxVertices, maxWidthM)
	case "Orbit":
		return compileOrbit(fp, maxWidthM)
	case "Corridor":
		return compileCorridor(fp, maxVertices, maxWidthM)
	case "":
		return nil, fielderr.Errorf("footprint.type", "missing: must be %s", types)
	default:
		return nil, fielderr.Errorf("footprint.type", "%q is not supported: must be %s", fp.Type, types)
	}
}

func compileCircle(fp Footprint, maxWidthM float64) (*shape, error) {
	if fp.Coordinates != nil {
		return nil, fielderr.Errorf("footprint.coordinates", "not allowed in a Circle (use center and radius_m)")
	}
	c, err := position(fp.Center, "footprint.center")
	if err != nil {
		return nil, err
	}
	r := fp.RadiusM
	if !finite(r) || r <= 0 {
		return nil, fielderr.Errorf("footprint.radius_m", "must be a finite number of meters above zero, got %v", r)
	}
	if 2*r > maxWidthM {
		return nil, fielderr.Errorf("footprint.radius_m", "footprint is %.0f m across, more than the %.0f m the rules allow", 2*r, maxWidthM)
	}
	ang := conservativeAngle(r)
	areaM2 := s2.CapFromCenterAngle(c, s1.Angle(r/meanEarthRadiusM)).Area() * meanEarthRadiusM * meanEarthRadiusM
	return &shape{circle: true, center: c, radius: ang, bound: s2.CapFromCenterAngle(c, ang), areaM2: areaM2}, nil
}

func compilePolygon(fp Footprint, maxVertices int, maxWidthM float64) (*shape, error) {
	if fp.Center != nil || fp.RadiusM != 0 {
		return nil, fielderr.Errorf("footprint", "center and radius_m belong to a Circle, not a Polygon")
	}
	switch {
	case len(fp.Coordinates) == 0:
		return nil, fielderr.Errorf("footprint.coordinates", "a Polygon needs one exterior ring")
	case len(fp.Coordinates) > 1:
		return nil, fielderr.Errorf("footprint.coordinates[1]", "holes are not supported: declare the footprint without them, or as several volumes")
	}
	const f = "footprint.coordinates[0]"
	ring := fp.Coordinates[0]
	if len(ring) < 4 {
		return nil, fielderr.Errorf(f, "a ring needs at least 4 positions (3 distinct and the first repeated), got %d", len(ring))
	}
	if len(ring)-1 > maxVertices {
		return nil, fielderr.Errorf(f, "%d vertices, more than the %d the rules allow", len(ring)-1, maxVertices)
	}
	pts := make([]s2.Point, len(ring))
	for i, pos := range ring {
		p, err := position(pos, fmt.Sprintf("%s[%d]", f, i))
		if err != nil {
			return nil, err
		}
		pts[i] = p
	}
	last := ring[len(ring)-1]
	if ring[0][0] != last[0] || ring[0][1] != last[1] {
		return nil, fielderr.Errorf(fmt.Sprintf("%s[%d]", f, len(ring)-1), "ring is not closed: the last position must equal the first")
	}
	pts = pts[:len(pts)-1]
	n := len(pts)
	for i := range pts {
		if pts[i] == pts[(i+1)%n] {
			return nil, fielderr.Errorf(fmt.Sprintf("%s[%d]", f, i+1), "repeats the previous position (the same point on the sphere)")
		}
	}
	if i, j, ok := selfIntersection(pts); ok {
		return nil, fielderr.Errorf(f, "ring intersects itself: edge %d (positions %d-%d) meets edge %d (positions %d-%d)", i, i, i+1, j, j, j+1)
	}
	loop := s2.LoopFromPoints(pts)
	if loop.Area() > 2*math.Pi {
		// Wound clockwise: the footprint is the smaller side.
		loop.Invert()
	}
	areaM2 := loop.Area() * meanEarthRadiusM * meanEarthRadiusM
	if areaM2 < minFootprintAreaM2 {
		return nil, fielderr.Errorf(f, "the ring encloses %.3g m², less than %d m²: its positions are (nearly) on one line", areaM2, minFootprintAreaM2)
	}
	bound := loop.CapBound()
	if widthM := 2 * bound.Radius().Radians() * meanEarthRadiusM; widthM > maxWidthM {
		// The cap bound may be up to twice too wide: measure exactly.
		if w := diameter(pts) * meanEarthRadiusM; w > maxWidthM {
			return nil, fielderr.Errorf(f, "footprint is %.0f m across, more than the %.0f m the rules allow", w, maxWidthM)
		}
	}
	cs, r := edgeCaps(loop.Vertices())
	return &shape{loop: loop, bound: bound, edgeCentres: cs, edgeReach: r, areaM2: areaM2}, nil
}

// position checks one GeoJSON position [lon, lat] (or [lon, lat, alt]).
func position(pos []float64, field string) (s2.Point, error) {
	if len(pos) != 2 && len(pos) != 3 {
		return s2.Point{}, fielderr.Errorf(field, "a position is [lon, lat] or [lon, lat, alt], got %d numbers", len(pos))
	}
	for _, x := range pos {
		if !finite(x) {
			return s2.Point{}, fielderr.Errorf(field, "NaN or infinite number")
		}
	}
	lon, lat := pos[0], pos[1]
	if lon < -180 || lon > 180 {
		return s2.Point{}, fielderr.Errorf(field, "longitude %v outside [-180, 180]", lon)
	}
	if lat < -90 || lat > 90 {
		return s2.Point{}, fielderr.Errorf(field, "latitude %v outside [-90, 90]", lat)
	}
	return s2.PointFromLatLng(s2.LatLngFromDegrees(lat, lon)), nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// spikeAngle is the smallest angle between the two edges at a vertex: a
// smaller one is a ring folding back onto itself (1e-9 rad is 0.1 mm of
// width 100 km from the vertex).
const spikeAngle = 1e-9

// minFootprintAreaM2 is the least area of a footprint: a polygon whose
// vertices all lie on one line, or nearly, encloses nothing and is refused.
const minFootprintAreaM2 = 1

// selfIntersection finds two non-adjacent edges that touch or cross, or two
// adjacent edges that fold back onto each other. Edge i runs from pts[i] to
// pts[i+1].
func selfIntersection(pts []s2.Point) (int, int, bool) {
	n := len(pts)
	for i := 0; i < n; i++ {
		prev, cur, next := pts[(i+n-1)%n], pts[i], pts[(i+1)%n]
		if prev == next {
			return (i + n - 1) % n, i, true
		}
		if s2.Angle(prev, cur, next) < spikeAngle {
			// Both neighbours in the same direction: the ring folds
			// back onto itself (a spike). RobustSign cannot tell:
			// it breaks exact collinearity by symbolic perturbation.
			return (i + n - 1) % n, i, true
		}
	}
	// Edges that touch are within the sum of their caps' radii: one chord
	// length rules most pairs of a large ring out.
	cs, r := edgeCaps(pts)
	reach := s1.ChordAngleFromAngle(2 * r)
	for i := 0; i < n; i++ {
		a, b := pts[i], pts[(i+1)%n]
		for j := i + 2; j < n; j++ {
			if i == 0 && j == n-1 {
				continue // adjacent through the closing vertex
			}
			if s2.ChordAngleBetweenPoints(cs[i], cs[j]) > reach {
				continue
			}
			if s2.CrossingSign(a, b, pts[j], pts[(j+1)%n]) != s2.DoNotCross {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// diameter is the largest angle (radians) between two vertices, which for a
// ring of great-circle edges smaller than a hemisphere is its width.
func diameter(pts []s2.Point) float64 {
	var d s1.Angle
	for i := range pts {
		for j := i + 1; j < len(pts); j++ {
			d = max(d, pts[i].Distance(pts[j]))
		}
	}
	return d.Radians()
}

// near reports whether the spherical distance between the two footprints is
// below lim (overlap and containment count as distance zero).
func (a *shape) near(b *shape, lim s1.Angle) bool {
	if a.bound.Center().Distance(b.bound.Center()) >= a.bound.Radius()+b.bound.Radius()+lim {
		return false
	}
	switch {
	case a.circle && b.circle:
		return a.center.Distance(b.center) < a.radius+b.radius+lim
	case a.loop == nil && b.loop == nil:
		return spinesNear(a.spineOf(), b.spineOf(), a.radius+b.radius+lim)
	case a.loop == nil:
		return loopNearSpine(b.loop, b.bound, a.spineOf(), a.radius+lim)
	case b.loop == nil:
		return loopNearSpine(a.loop, a.bound, b.spineOf(), b.radius+lim)
	default:
		return loopsNear(a, b, lim)
	}
}

// containsPoint reports whether p lies in the footprint. A circle's or a
// tube's radius is the conservative angle, so conformance may accept a
// point up to about 1% of the radius beyond it: it errs towards no alert.
func (a *shape) containsPoint(p s2.Point) bool {
	switch {
	case a.circle:
		return a.center.Distance(p) <= a.radius
	case a.spine != nil:
		return tubeContains(a.spine, a.radius, p)
	}
	return a.loop.ContainsPoint(p)
}

// loopNearPoint: the edges first, as the containment test costs more and
// only matters when no edge is near; bound is a cap containing l.
func loopNearPoint(l *s2.Loop, bound s2.Cap, p s2.Point, lim s1.Angle) bool {
	limit := s1.ChordAngleFromAngle(lim)
	vs := l.Vertices()
	for i := range vs {
		if s2.IsDistanceLess(p, vs[i], vs[(i+1)%len(vs)], limit) {
			return true
		}
	}
	return bound.ContainsPoint(p) && l.ContainsPoint(p)
}

func loopsNear(as, bs *shape, lim s1.Angle) bool {
	a, b := as.loop, bs.loop
	limit := s1.ChordAngleFromAngle(lim)
	av, bv := a.Vertices(), b.Vertices()
	ac, ar := as.edgeCentres, as.edgeReach
	bc, br := bs.edgeCentres, bs.edgeReach
	// Two edges whose bounding caps are further apart than the largest
	// radii plus the limit can neither cross nor come within the limit:
	// one chord length rules most pairs of large polygons out. (Chords,
	// not the cosines of angles: for edges of a few centimetres the cosine
	// of their reach is 1 within rounding, and a dot product a rounding
	// below it would rule out edges that touch.)
	reach := s1.ChordAngleFromAngle(ar + br + lim)
	for i := range av {
		a0, a1 := av[i], av[(i+1)%len(av)]
		for j := range bv {
			if s2.ChordAngleBetweenPoints(ac[i], bc[j]) > reach {
				continue
			}
			b0, b1 := bv[j], bv[(j+1)%len(bv)]
			if s2.CrossingSign(a0, a1, b0, b1) != s2.DoNotCross ||
				s2.IsDistanceLess(a0, b0, b1, limit) || s2.IsDistanceLess(b0, a0, a1, limit) {
				return true
			}
		}
	}
	// Every vertex was tested against every edge of the other loop that
	// could be near (a0 over all i, b0 over all j), so the boundaries do
	// not cross and stay at least lim apart: the loops are disjoint or
	// nested, and a vertex of one inside the other tells.
	return (bs.bound.ContainsPoint(av[0]) && b.ContainsPoint(av[0])) ||
		(as.bound.ContainsPoint(bv[0]) && a.ContainsPoint(bv[0]))
}

// edgeCaps returns the centre of each edge (edge i runs from vs[i] to
// vs[i+1]) and the largest angle from a centre to its edge's ends, which
// bounds the distance to every point of the edge.
func edgeCaps(vs []s2.Point) ([]s2.Point, s1.Angle) {
	cs := make([]s2.Point, len(vs))
	var r s1.Angle
	for i := range vs {
		a, b := vs[i], vs[(i+1)%len(vs)]
		cs[i] = s2.Point{Vector: a.Add(b.Vector).Normalize()}
		r = max(r, cs[i].Distance(a), cs[i].Distance(b))
	}
	// Rounding in the centres must not rule out a pair at the limit.
	return cs, r + 1e-12
}
