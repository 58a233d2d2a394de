package volume

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"
	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/rules"
)

// genCenter draws a point anywhere, near the antimeridian, or near a pole.
func genCenter(t *rapid.T, label string) (lat, lon float64) {
	switch rapid.IntRange(0, 3).Draw(t, label+"_region") {
	case 0:
		return rapid.Float64Range(-80, 80).Draw(t, label+"_lat"), rapid.Float64Range(-180, 180).Draw(t, label+"_lon")
	case 1:
		lon := rapid.Float64Range(179.5, 180).Draw(t, label+"_lon")
		if rapid.Bool().Draw(t, label+"_west") {
			lon = -lon
		}
		return rapid.Float64Range(-60, 60).Draw(t, label+"_lat"), lon
	case 2:
		return rapid.Float64Range(89, 90).Draw(t, label+"_lat"), rapid.Float64Range(-180, 180).Draw(t, label+"_lon")
	default:
		return rapid.Float64Range(-90, -89).Draw(t, label+"_lat"), rapid.Float64Range(-180, 180).Draw(t, label+"_lon")
	}
}

// The circle test never misses a conflict that certainly exists on the
// ellipsoid and never reports one that certainly does not, anywhere on the
// globe including across the antimeridian and the poles.
func TestCircleConflictMatchesEllipsoidBounds(t *testing.T) {
	rl := rules.Default()
	mMin, nMax := curvatureBounds()
	rapid.Check(t, func(t *rapid.T) {
		lat1, lon1 := genCenter(t, "a")
		ang := rapid.Float64Range(0, 60_000).Draw(t, "dist_m") / meanEarthRadiusM
		lat2, lon2 := destination(lat1, lon1, rapid.Float64Range(0, 360).Draw(t, "bearing"), ang)
		ra := rapid.Float64Range(50, 20_000).Draw(t, "ra")
		rb := rapid.Float64Range(50, 20_000).Draw(t, "rb")
		a := mkVol(t, "a", "p1", input(circle(lat1, lon1, ra), 0, 1000, t0, t0.Add(time.Hour)))
		b := mkVol(t, "b", "p2", input(circle(lat2, lon2, rb), 0, 1000, t0, t0.Add(time.Hour)))
		theta := havAngle(lat1, lon1, lat2, lon2)
		got := Conflict(*a, *b, rl)
		if nMax*theta-ra-rb < rl.HorizontalSepM-0.01 && !got {
			t.Fatalf("missed: centers %.1f m (sphere angle %g), radii %.0f+%.0f", nMax*theta, theta, ra, rb)
		}
		if mMin*theta-ra-rb >= rl.HorizontalSepM+0.01 && got {
			t.Fatalf("false conflict: centers at least %.1f m apart, radii %.0f+%.0f", mMin*theta, ra, rb)
		}
		if got != Conflict(*b, *a, rl) {
			t.Fatal("conflict is not symmetric")
		}
	})
}

// Two rectangles whose facing edges are meridian arcs symmetric about the
// equator are exactly their longitude difference apart: check both sides
// of the separation, straddling the antimeridian.
func TestPolygonGapAcrossAntimeridian(t *testing.T) {
	rl := rules.Default()
	mMin, _ := curvatureBounds()
	limDeg := deg(rl.HorizontalSepM / mMin)
	for _, f := range []float64{0.95, 1.05} {
		gap := f * limDeg
		east := 179.99           // east edge of A
		west := east + gap - 360 // west edge of B, beyond the antimeridian
		a := polygon([2]float64{east - 0.5, -0.05}, [2]float64{east, -0.05}, [2]float64{east, 0.05}, [2]float64{east - 0.5, 0.05})
		b := polygon([2]float64{west, -0.05}, [2]float64{west + 0.5, -0.05}, [2]float64{west + 0.5, 0.05}, [2]float64{west, 0.05})
		va := mkVol(t, "a", "p1", input(a, 0, 1000, t0, t0.Add(time.Hour)))
		vb := mkVol(t, "b", "p2", input(b, 0, 1000, t0, t0.Add(time.Hour)))
		if got, want := Conflict(*va, *vb, rl), f < 1; got != want {
			t.Errorf("gap %.3f of the separation: conflict %v, want %v", f, got, want)
		}
	}
}

// A triangle around the north pole and a circle on the far side of one of
// its edges: the distance is the independent cross-track distance to that
// edge's great circle.
func TestPolygonAroundPoleAgainstCircle(t *testing.T) {
	rl := rules.Default()
	mMin, _ := curvatureBounds()
	tri := polygon([2]float64{0, 89}, [2]float64{120, 89}, [2]float64{-120, 89})
	// Unit vectors of the edge from lon 0 to lon 120 and its pole.
	vec := func(lat, lon float64) [3]float64 {
		return [3]float64{math.Cos(rad(lat)) * math.Cos(rad(lon)), math.Cos(rad(lat)) * math.Sin(rad(lon)), math.Sin(rad(lat))}
	}
	a, b := vec(89, 0), vec(89, 120)
	n := [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
	nl := math.Sqrt(n[0]*n[0] + n[1]*n[1] + n[2]*n[2])
	centerLat := 88.0
	c := vec(centerLat, 60) // on the bisector of the edge, outside the triangle
	crossTrack := math.Asin(math.Abs(c[0]*n[0]+c[1]*n[1]+c[2]*n[2]) / nl)
	for _, f := range []float64{0.95, 1.05} {
		// radius such that the gap to the edge is f times the separation
		r := mMin * (crossTrack - f*rl.HorizontalSepM/mMin)
		va := mkVol(t, "a", "p1", input(tri, 0, 1000, t0, t0.Add(time.Hour)))
		vb := mkVol(t, "b", "p2", input(circle(centerLat, 60, r), 0, 1000, t0, t0.Add(time.Hour)))
		if got, want := Conflict(*va, *vb, rl), f < 1; got != want {
			t.Errorf("gap %.2f of the separation: conflict %v, want %v", f, got, want)
		}
	}
	// A small circle at the pole itself is inside the triangle.
	pole := mkVol(t, "c", "p2", input(circle(90, 0, 100), 0, 1000, t0, t0.Add(time.Hour)))
	va := mkVol(t, "a", "p1", input(tri, 0, 1000, t0, t0.Add(time.Hour)))
	if !Conflict(*va, *pole, rl) {
		t.Error("a circle at the pole inside a triangle around the pole does not conflict")
	}
}

// Nesting without any boundary close by is still a conflict, and a
// clockwise ring means the same footprint as a counter-clockwise one.
func TestPolygonContainmentAndWinding(t *testing.T) {
	rl := rules.Default()
	big := regular(35, 36, 100_000, 12, 0)
	small := regular(35, 36, 1_000, 6, 0)
	cw := big
	ring := cw.Coordinates[0]
	rev := make([][]float64, len(ring))
	for i := range ring {
		rev[i] = ring[len(ring)-1-i]
	}
	cw = Footprint{Type: "Polygon", Coordinates: [][][]float64{rev}}
	in := mkVol(t, "s", "p2", input(small, 0, 1000, t0, t0.Add(time.Hour)))
	for name, fp := range map[string]Footprint{"ccw": big, "cw": cw} {
		out := mkVol(t, "b", "p1", input(fp, 0, 1000, t0, t0.Add(time.Hour)))
		if !Conflict(*out, *in, rl) || !Conflict(*in, *out, rl) {
			t.Errorf("%s: nested polygons do not conflict", name)
		}
		if a := out.shape.loop.Area(); a > 2*math.Pi {
			t.Errorf("%s: footprint read as the large side (area %g sr)", name, a)
		}
	}
}

// Altitude bands and time windows: exactly the separation (or twice the
// buffer, one on each window) apart is separated; a metre or a second less
// is a conflict.
func TestAltitudeAndTimeSeparation(t *testing.T) {
	rl := rules.Default()
	fp := circle(35, 36, 1000)
	buf := time.Duration(rl.TimeBufferS * float64(time.Second))
	base := mkVol(t, "a", "p1", input(fp, 1000, 2000, t0, t0.Add(time.Hour)))
	cases := []struct {
		name string
		in   Input
		want bool
	}{
		{"band exactly vsep above", input(fp, 2000+rl.VerticalSepM, 3000, t0, t0.Add(time.Hour)), false},
		{"band just within vsep above", input(fp, 2000+rl.VerticalSepM-1, 3000, t0, t0.Add(time.Hour)), true},
		{"band exactly vsep below", input(fp, 0, 1000-rl.VerticalSepM, t0, t0.Add(time.Hour)), false},
		{"window exactly two buffers later", input(fp, 1000, 2000, t0.Add(time.Hour+2*buf), t0.Add(3*time.Hour)), false},
		{"window just within two buffers later", input(fp, 1000, 2000, t0.Add(time.Hour+2*buf-time.Second), t0.Add(3*time.Hour)), true},
		{"window exactly two buffers earlier", input(fp, 1000, 2000, t0.Add(-time.Hour), t0.Add(-2*buf)), false},
	}
	for _, c := range cases {
		other := mkVol(t, "b", "p2", c.in)
		if got := Conflict(*base, *other, rl); got != c.want {
			t.Errorf("%s: conflict %v, want %v", c.name, got, c.want)
		}
	}
	same := mkVol(t, "c", "p1", input(fp, 1000, 2000, t0, t0.Add(time.Hour)))
	if Conflict(*base, *same, rl) {
		t.Error("volumes of the same party conflict")
	}
	ended := mkVol(t, "d", "p2", input(fp, 1000, 2000, t0, t0.Add(time.Hour)))
	ended.State = Cancelled
	if Conflict(*base, *ended, rl) {
		t.Error("a cancelled volume still counts")
	}
}

// star is a simple, generally non-convex ring: n vertices at increasing
// bearings, each at its own distance from the centre.
func star(t *rapid.T, label string, lat, lon float64, n int) Footprint {
	pts := make([][2]float64, n)
	for i := range pts {
		r := rapid.Float64Range(2_000, 30_000).Draw(t, fmt.Sprintf("%s_r%d", label, i))
		la, lo := destination(lat, lon, -360*float64(i)/float64(n), r/meanEarthRadiusM)
		pts[i] = [2]float64{lo, la}
	}
	return polygon(pts...)
}

// allPairsNear is the plain oracle: every pair of edges, then nesting.
func allPairsNear(as, bs *shape, lim s1.Angle) bool {
	limit := s1.ChordAngleFromAngle(lim)
	av, bv := as.loop.Vertices(), bs.loop.Vertices()
	for i := range av {
		for j := range bv {
			a0, a1, b0, b1 := av[i], av[(i+1)%len(av)], bv[j], bv[(j+1)%len(bv)]
			if s2.CrossingSign(a0, a1, b0, b1) != s2.DoNotCross ||
				s2.IsDistanceLess(a0, b0, b1, limit) || s2.IsDistanceLess(b0, a0, a1, limit) {
				return true
			}
		}
	}
	return bs.loop.ContainsPoint(av[0]) || as.loop.ContainsPoint(bv[0])
}

// The pruning of edge pairs by their bounding caps changes no answer, also
// at the antimeridian and the poles.
func TestPolygonPruningMatchesAllPairs(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lat, lon := genCenter(t, "a")
		// A star centred exactly on a pole would have all its bearings
		// meet; near it, stars still surround the pole.
		lat = math.Max(-89.9, math.Min(89.9, lat))
		lat2, lon2 := destination(lat, lon, rapid.Float64Range(0, 360).Draw(t, "bearing"),
			rapid.Float64Range(0, 80_000).Draw(t, "dist")/meanEarthRadiusM)
		a := mkVol(t, "a", "p1", input(star(t, "a", lat, lon, rapid.IntRange(3, 90).Draw(t, "na")), 0, 1, t0, t0.Add(time.Hour)))
		b := mkVol(t, "b", "p2", input(star(t, "b", lat2, lon2, rapid.IntRange(3, 90).Draw(t, "nb")), 0, 1, t0, t0.Add(time.Hour)))
		lim := s1.Angle(rapid.Float64Range(0, 20_000).Draw(t, "lim") / meanEarthRadiusM)
		if all, pruned := allPairsNear(a.shape, b.shape, lim), loopsNear(a.shape, b.shape, lim); all != pruned {
			t.Fatalf("every pair: %v, pruned: %v", all, pruned)
		}
	})
}

// The pruned self-intersection test finds a crossing exactly when testing
// every pair of edges does, on random rings (most of them tangled).
func TestSelfIntersectionPruning(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lat, lon := genCenter(t, "c")
		lat = math.Max(-89.9, math.Min(89.9, lat))
		n := rapid.IntRange(3, 40).Draw(t, "n")
		pts := make([]s2.Point, n)
		for i := range pts {
			la, lo := destination(lat, lon, rapid.Float64Range(0, 360).Draw(t, "b"), rapid.Float64Range(0, 50_000).Draw(t, "d")/meanEarthRadiusM)
			pts[i] = s2.PointFromLatLng(s2.LatLngFromDegrees(la, lo))
		}
		_, _, got := selfIntersection(pts)
		want := false
		for i := 0; i < n && !want; i++ {
			prev, cur, next := pts[(i+n-1)%n], pts[i], pts[(i+1)%n]
			if prev == next || s2.Angle(prev, cur, next) < spikeAngle {
				want = true
			}
			for j := i + 2; j < n && !want; j++ {
				if !(i == 0 && j == n-1) && s2.CrossingSign(pts[i], pts[(i+1)%n], pts[j], pts[(j+1)%n]) != s2.DoNotCross {
					want = true
				}
			}
		}
		if got != want {
			t.Fatalf("pruned %v, every pair %v", got, want)
		}
	})
}
