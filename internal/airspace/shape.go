package airspace

import (
	"math"

	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/geo"
)

// ArcToleranceM is how far at most the polygon that stands for an arc or a
// circle lies outside the true curve (it never lies inside where the
// airspace is: see the package doc).
const ArcToleranceM = 20.0

// maxArcStepDeg keeps small circles round: at least 36 vertices a turn.
const maxArcStepDeg = 10.0

func lla(p orb.Point) geo.LLA { return geo.LLA{LatDeg: p[1], LonDeg: p[0]} }

func point(p geo.LLA) orb.Point { return orb.Point{p.LonDeg, p.LatDeg} }

// earth is the model on which arcs and offsets are laid out: WGS84. Tests
// swap in a sphere to compare with software that uses one.
var earth = struct {
	bearingDistance func(a, b orb.Point) (bearingDeg, distM float64)
	destination     func(from orb.Point, bearingDeg, distM float64) orb.Point
}{ellipsoidBearingDistance, ellipsoidDestination}

func bearingDistance(a, b orb.Point) (float64, float64) { return earth.bearingDistance(a, b) }

func destination(from orb.Point, bearingDeg, distM float64) orb.Point {
	return earth.destination(from, bearingDeg, distM)
}

// ellipsoidBearingDistance returns the initial bearing (degrees clockwise
// from true north) and the geodesic distance from a to b. The bearing is
// the direction of b in a's tangent plane, which for the distances of
// airspace arcs (below a few hundred kilometers) differs from the geodesic
// azimuth by far less than a vertex step.
func ellipsoidBearingDistance(a, b orb.Point) (bearingDeg, distM float64) {
	v := geo.NewFrame(lla(a)).ToENU(lla(b))
	bearingDeg = math.Mod(math.Atan2(v.EastM, v.NorthM)*180/math.Pi+360, 360)
	return bearingDeg, geo.GeodesicM(lla(a), lla(b))
}

func ellipsoidDestination(from orb.Point, bearingDeg, distM float64) orb.Point {
	return point(geo.Destination(lla(from), bearingDeg, distM))
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

// arc returns the vertices of an arc around center from bearing b1 at
// radius r1 to bearing b2 at radius r2 (the radius varies linearly with the
// angle when the two differ, as DB's overdefined end points may), clockwise
// when cw. The first and last vertices are the arc's ends. When outward,
// the vertices between are those of the tangent polygon (see the package
// doc), so the polygon contains the disc side of the arc; otherwise they lie
// on the arc. A sweep of zero is a full turn when full is set.
func arc(center orb.Point, b1, r1, b2, r2 float64, cw, outward, full bool) []orb.Point {
	sweep := math.Mod(b2-b1+720, 360)
	if !cw {
		sweep = math.Mod(b1-b2+720, 360)
	}
	if sweep < 1e-9 && full {
		sweep = 360
	}
	sign := 1.0
	if !cw {
		sign = -1
	}
	n := arcSteps(sweep, max(r1, r2))
	step := sweep / float64(n)
	radius := func(frac float64) float64 { return r1 + (r2-r1)*frac }
	pts := []orb.Point{destination(center, b1, r1)}
	if outward {
		grow := 1 / math.Cos(step/2*math.Pi/180)
		for k := 0; k < n; k++ {
			frac := (float64(k) + 0.5) / float64(n)
			pts = append(pts, destination(center, b1+sign*(float64(k)+0.5)*step, radius(frac)*grow))
		}
	} else {
		for k := 1; k < n; k++ {
			frac := float64(k) / float64(n)
			pts = append(pts, destination(center, b1+sign*float64(k)*step, radius(frac)))
		}
	}
	return append(pts, destination(center, b2, r2))
}

// Outline returns a closed ring that contains the shape and lies within
// ArcToleranceM of it (for a Polygon, its own ring), wound counterclockwise
// as RFC 7946 recommends.
func (s Shape) Outline() orb.Ring {
	switch s.Type {
	case CircleShape:
		pts := arc(s.Center, 0, s.RadiusM, 0, s.RadiusM, true, true, true)
		return counterclockwise(orb.Ring(pts[1:len(pts)-1]).Clone(), true)
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
// line, walked counterclockwise: the right-hand side forwards, a round cap,
// the left-hand side backwards, a round cap. Outer sides of bends follow an
// arc around the vertex, inner sides meet at the mitre point (exact while
// the segments are longer than the bend takes back; the outline is for
// maps, the conflict geometry of a corridor being exact).
func corridorOutline(line orb.LineString, half float64) orb.Ring {
	n := len(line)
	if n == 0 {
		return nil
	}
	if n == 1 {
		pts := arc(line[0], 0, half, 0, half, true, true, true)
		return orb.Ring(pts[1 : len(pts)-1])
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
	for i := 0; i < n-1; i++ {
		out, _ := bearingDistance(line[i], line[i+1])
		switch turn := math.Mod(out-arrive+540, 360) - 180; {
		case i == 0 || turn == 0:
			pts = append(pts, destination(line[i], out+90, half))
		case turn > 0:
			// A right turn: the right side is inside the bend, where the
			// two offset lines meet at the mitre point.
			turn = min(turn, 170)
			pts = append(pts, destination(line[i], arrive+90+turn/2, half/math.Cos(turn/2*math.Pi/180)))
		default:
			// A left turn: the right side rounds the outside of the bend.
			pts = append(pts, arc(line[i], arrive+90, half, out+90, half, false, true, false)...)
		}
		back, _ := bearingDistance(line[i+1], line[i])
		arrive = math.Mod(back+180, 360)
	}
	return append(pts, arc(line[n-1], arrive+90, half, arrive-90, half, false, true, false)...)
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
