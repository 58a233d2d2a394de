package airspace

import (
	"math"

	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/geo"
)

// ArcToleranceM is how far at most the polygon that stands for an arc or a
// circle lies from the curve it follows (see the package doc).
const ArcToleranceM = 20.0

// maxArcStepDeg keeps small circles round: at least 36 vertices a turn.
const maxArcStepDeg = 10.0

func lla(p orb.Point) geo.LLA { return geo.LLA{LatDeg: p[1], LonDeg: p[0]} }

func point(p geo.LLA) orb.Point { return orb.Point{p.LonDeg, p.LatDeg} }

// sphere is a spherical earth of the given radius, on which shapes are laid
// out with great-circle bearings and distances.
type sphere struct{ radiusM float64 }

// Spheres that shapes are laid out on (see the package doc): drawing is the
// OpenAir readers' sphere of the mean radius (turf's, openAIP's); outside
// and inside put a length as far from, or as near to, its origin as the
// WGS84 ellipsoid can (the smallest and largest radius of curvature).
var (
	drawing = sphere{geo.MeanRadiusM}
	outside = sphere{geo.MinCurvatureRadiusM}
	inside  = sphere{geo.MaxCurvatureRadiusM}
)

// bearingDistance returns the initial great-circle bearing (degrees
// clockwise from true north) and the great-circle distance from a to b.
func (s sphere) bearingDistance(a, b orb.Point) (bearingDeg, distM float64) {
	lat1, lat2 := a[1]*math.Pi/180, b[1]*math.Pi/180
	dLon := (b[0] - a[0]) * math.Pi / 180
	y := math.Sin(dLon) * math.Cos(lat2)
	x := math.Cos(lat1)*math.Sin(lat2) - math.Sin(lat1)*math.Cos(lat2)*math.Cos(dLon)
	bearingDeg = math.Mod(math.Atan2(y, x)*180/math.Pi+360, 360)
	return bearingDeg, geo.GreatCircleM(lla(a), lla(b)) / geo.MeanRadiusM * s.radiusM
}

// destination returns the point reached from from along the great circle
// of initial bearing bearingDeg after distM meters.
func (s sphere) destination(from orb.Point, bearingDeg, distM float64) orb.Point {
	lat1, lon1 := from[1]*math.Pi/180, from[0]*math.Pi/180
	brg, ang := bearingDeg*math.Pi/180, distM/s.radiusM
	lat2 := math.Asin(math.Sin(lat1)*math.Cos(ang) + math.Cos(lat1)*math.Sin(ang)*math.Cos(brg))
	lon2 := lon1 + math.Atan2(math.Sin(brg)*math.Sin(ang)*math.Cos(lat1), math.Cos(ang)-math.Sin(lat1)*math.Sin(lat2))
	return orb.Point{geo.NormalizeLonDeg(lon2 * 180 / math.Pi), lat2 * 180 / math.Pi}
}

// arcSteps returns the number of steps for a sweep (degrees) of a curve of
// the given radius so that each chord is within ArcToleranceM of the curve.
func arcSteps(sweepDeg, radiusM float64) int {
	stepDeg := maxArcStepDeg
	if radiusM > ArcToleranceM {
		// A chord's sagitta is r(1-cos(step/2)); a tangent polygon's vertex
		// lies r(1/cos(step/2)-1) out, slightly more: bound that one.
		stepDeg = min(stepDeg, 2*math.Acos(radiusM/(radiusM+ArcToleranceM))*180/math.Pi)
	}
	return max(1, int(math.Ceil(math.Abs(sweepDeg)/stepDeg-1e-9)))
}

// arcSpec is an arc of a circle: its centre, the bearings of its ends
// (degrees clockwise from true north) and its direction; a zero sweep is a
// full turn when full is set.
type arcSpec struct {
	center   orb.Point
	b1, b2   float64
	cw, full bool
}

// sweepDeg is the angle the arc turns through, in (0, 360] (0 for a zero
// sweep that is not full).
func (a arcSpec) sweepDeg() float64 {
	sweep := math.Mod(a.b2-a.b1+720, 360)
	if !a.cw {
		sweep = math.Mod(a.b1-a.b2+720, 360)
	}
	if sweep < 1e-9 && a.full {
		sweep = 360
	}
	return sweep
}

// arc returns n+1 vertices of an arc on sphere s, at the radius that
// radiusAt gives for each fraction of the sweep (0 at b1, 1 at b2). The
// first and last vertices are the arc's ends. When tangent is set, the n
// vertices between are those of the tangent polygon, each on a radius
// grown by 1/cos(step/2) so that every chord touches the curve from
// outside (the polygon holds the disc); otherwise the n-1 vertices between
// lie on the curve.
func (s sphere) arc(a arcSpec, n int, tangent bool, radiusAt func(frac float64) float64) []orb.Point {
	sweep := a.sweepDeg()
	if !a.cw {
		sweep = -sweep
	}
	at := func(frac, grow float64) orb.Point {
		return s.destination(a.center, a.b1+frac*sweep, radiusAt(frac)*grow)
	}
	pts := []orb.Point{at(0, 1)}
	if tangent {
		grow := 1 / math.Cos(sweep/float64(n)/2*math.Pi/180)
		for k := 0; k < n; k++ {
			pts = append(pts, at((float64(k)+0.5)/float64(n), grow))
		}
	} else {
		for k := 1; k < n; k++ {
			pts = append(pts, at(float64(k)/float64(n), 1))
		}
	}
	return append(pts, s.destination(a.center, a.b2, radiusAt(1)))
}

// circle returns the tangent polygon around a circle on sphere s, closed.
func (s sphere) circle(center orb.Point, radiusM float64) orb.Ring {
	a := arcSpec{center: center, cw: true, full: true}
	pts := s.arc(a, arcSteps(360, radiusM), true, constant(radiusM))
	pts[len(pts)-1] = pts[1]
	return orb.Ring(pts[1:])
}

// constant is a radius that does not change along an arc.
func constant(r float64) func(float64) float64 { return func(float64) float64 { return r } }

// Outline returns a closed ring for maps, wound counterclockwise as RFC
// 7946 recommends: a Polygon's own ring (as OpenAir readers draw it), and
// around a circle, orbit or corridor, drawn on the mean sphere, a polygon
// that contains it and lies within ArcToleranceM of it.
func (s Shape) Outline() orb.Ring {
	switch s.Type {
	case CircleShape:
		return counterclockwise(drawing.circle(s.Center, s.RadiusM), false)
	case CorridorShape, OrbitShape:
		return counterclockwise(corridorOutline(s.Line, s.WidthM/2), true)
	default:
		return counterclockwise(s.Ring.Clone(), false)
	}
}

// counterclockwise winds a ring counterclockwise (seen from above), closing
// it first when close is set.
func counterclockwise(r orb.Ring, close bool) orb.Ring {
	if close && len(r) > 0 {
		r = append(r, r[0])
	}
	if signedAreaM2(r) < 0 {
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
	}
	return r
}

// signedAreaM2 is the shoelace area of a ring in the tangent plane at its
// first vertex: positive when counterclockwise seen from above. Airspace
// rings are small enough for the plane to give the right sign.
func signedAreaM2(r orb.Ring) float64 {
	if len(r) < 3 {
		return 0
	}
	f := geo.NewFrame(lla(r[0]))
	var area float64
	prev := f.ToENU(lla(r[len(r)-1]))
	for _, p := range r {
		cur := f.ToENU(lla(p))
		area += prev.EastM*cur.NorthM - cur.EastM*prev.NorthM
		prev = cur
	}
	return area / 2
}

// corridorOutline is the boundary of the points within half meters of a
// line, walked counterclockwise on the mean sphere: the right-hand side
// forwards, a round cap, the left-hand side backwards, a round cap. Outer
// sides of bends follow an arc around the vertex, inner sides meet at the
// mitre point (exact while the segments are longer than the bend takes
// back; the outline is for maps, the conflict geometry of a corridor being
// exact).
func corridorOutline(line orb.LineString, half float64) orb.Ring {
	n := len(line)
	if n == 0 {
		return nil
	}
	if n == 1 {
		c := drawing.circle(line[0], half)
		return c[:len(c)-1]
	}
	rev := make(orb.LineString, n)
	for i := range line {
		rev[i] = line[n-1-i]
	}
	ring := dedupe(append(rightSide(line, half), rightSide(rev, half)...))
	if len(ring) > 1 && ring[0] == ring[len(ring)-1] {
		ring = ring[:len(ring)-1] // the last cap ends where the walk began
	}
	return ring
}

// rightSide returns the offset of a line half meters to its right, walked
// forwards, followed by the round cap at its end (from the right side to
// the left side, counterclockwise).
func rightSide(line orb.LineString, half float64) orb.Ring {
	n := len(line)
	var pts orb.Ring
	var arrive float64 // heading on arrival at line[i]
	roundAt := func(p orb.Point, from, to float64) []orb.Point {
		a := arcSpec{center: p, b1: from, b2: to}
		return drawing.arc(a, arcSteps(a.sweepDeg(), half), true, constant(half))
	}
	for i := 0; i < n-1; i++ {
		out, _ := drawing.bearingDistance(line[i], line[i+1])
		switch turn := math.Mod(out-arrive+540, 360) - 180; {
		case i == 0 || turn == 0:
			pts = append(pts, drawing.destination(line[i], out+90, half))
		case turn > 0:
			// A right turn: the right side is inside the bend, where the
			// two offset lines meet at the mitre point.
			turn = min(turn, 170)
			pts = append(pts, drawing.destination(line[i], arrive+90+turn/2, half/math.Cos(turn/2*math.Pi/180)))
		default:
			// A left turn: the right side rounds the outside of the bend.
			pts = append(pts, roundAt(line[i], arrive+90, out+90)...)
		}
		back, _ := drawing.bearingDistance(line[i+1], line[i])
		arrive = math.Mod(back+180, 360)
	}
	return append(pts, roundAt(line[n-1], arrive+90, arrive-90)...)
}

// dedupe drops consecutive equal positions.
func dedupe(r orb.Ring) orb.Ring {
	out := r[:0:0]
	for i, p := range r {
		if i > 0 && p == out[len(out)-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}
