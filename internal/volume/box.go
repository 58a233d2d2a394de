package volume

import (
	"math"

	"github.com/golang/geo/r1"
	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/fielderr"
)

// parallelStepDeg is the longest chord standing in for a stretch of a
// parallel when a box's side is tested against polygon edges: the chord
// strays from the parallel by at most about 8 m.
const parallelStepDeg = 0.25

// Box is a latitude/longitude box in degrees, the bbox of the API:
// MinLonDeg > MaxLonDeg crosses the antimeridian, and a box spanning every
// longitude (-180 to 180) is a band of latitudes. Unlike a polygon, its
// north and south sides follow the parallels.
type Box struct {
	MinLonDeg, MinLatDeg, MaxLonDeg, MaxLatDeg float64
}

// boxShape is a Box made ready to meet footprints.
type boxShape struct {
	rect s2.Rect
	// boundary is the box's outline as great-circle segments: the two
	// meridian sides exactly, the parallels as short chords.
	boundary [][2]s2.Point
}

func newBox(in Box) (*boxShape, error) {
	minLon, minLat, maxLon, maxLat := in.MinLonDeg, in.MinLatDeg, in.MaxLonDeg, in.MaxLatDeg
	for _, c := range []struct {
		name string
		v    float64
		lim  float64
	}{{"bbox.min_lon", minLon, 180}, {"bbox.max_lon", maxLon, 180}, {"bbox.min_lat", minLat, 90}, {"bbox.max_lat", maxLat, 90}} {
		if !finite(c.v) || math.Abs(c.v) > c.lim {
			return nil, fielderr.Errorf(c.name, "%v is outside [-%v, %v]", c.v, c.lim, c.lim)
		}
	}
	if minLat > maxLat {
		return nil, fielderr.Errorf("bbox.min_lat", "above max_lat")
	}
	lng := s1.IntervalFromEndpoints(minLon*math.Pi/180, maxLon*math.Pi/180)
	if minLon == -180 && maxLon == 180 {
		lng = s1.FullInterval()
	}
	b := &boxShape{rect: s2.Rect{Lat: r1.Interval{Lo: minLat * math.Pi / 180, Hi: maxLat * math.Pi / 180}, Lng: lng}}
	span := maxLon - minLon
	if span < 0 {
		span += 360
	}
	if lng.IsFull() {
		span = 360
	}
	pt := func(lat, lon float64) s2.Point { return s2.PointFromLatLng(s2.LatLngFromDegrees(lat, lon)) }
	for _, lat := range []float64{minLat, maxLat} {
		if math.Abs(lat) == 90 {
			continue // a parallel at a pole is a point
		}
		n := int(math.Ceil(span / parallelStepDeg))
		for i := 0; i < n; i++ {
			b.boundary = append(b.boundary, [2]s2.Point{
				pt(lat, minLon+span*float64(i)/float64(n)), pt(lat, minLon+span*float64(i+1)/float64(n))})
		}
	}
	if !lng.IsFull() && minLat < maxLat {
		for _, lon := range []float64{minLon, maxLon} {
			b.boundary = append(b.boundary, [2]s2.Point{pt(minLat, lon), pt(maxLat, lon)})
		}
	}
	return b, nil
}

func (b *boxShape) region() *region {
	return &region{
		cover: func(x *Index) []s2.CellID {
			cu := x.coverer.Covering(b.rect)
			cu.Denormalize(x.level, 1)
			return cu
		},
		sizeSr: b.rect.Area(),
		meets:  b.meets,
	}
}

// meets reports whether a footprint and the box share a point.
func (b *boxShape) meets(s *shape) bool {
	if s.circle {
		return b.rect.DistanceToLatLng(s2.LatLngFromPoint(s.center)) <= s.radius
	}
	if s.spine != nil {
		return b.meetsTube(s)
	}
	if !b.rect.Intersects(s.loop.RectBound()) {
		return false
	}
	vs := s.loop.Vertices()
	for _, v := range vs {
		if b.rect.ContainsPoint(v) {
			return true
		}
	}
	// The box inside the polygon: a corner (or a pole the box reaches).
	for k := 0; k < 4; k++ {
		if s.loop.ContainsPoint(s2.PointFromLatLng(b.rect.Vertex(k))) {
			return true
		}
	}
	for i := range vs {
		a0, a1 := vs[i], vs[(i+1)%len(vs)]
		for _, e := range b.boundary {
			if s2.CrossingSign(a0, a1, e[0], e[1]) != s2.DoNotCross {
				return true
			}
		}
	}
	return false
}

// meetsTube reports whether an orbit or a corridor and the box share a
// point: a spine vertex within the radius of the box, or a spine edge
// within the radius of the box's boundary (which also catches a box lying
// wholly inside the tube).
func (b *boxShape) meetsTube(s *shape) bool {
	if !b.rect.Intersects(s.bound.RectBound()) {
		return false
	}
	for _, v := range s.spine {
		if b.rect.DistanceToLatLng(s2.LatLngFromPoint(v)) <= s.radius {
			return true
		}
	}
	limit := s1.ChordAngleFromAngle(s.radius).Successor()
	for i := 0; i+1 < len(s.spine); i++ {
		for _, e := range b.boundary {
			if edgesWithin(s.spine[i], s.spine[i+1], e[0], e[1], limit) {
				return true
			}
		}
	}
	return false
}
