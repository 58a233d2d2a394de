package geo

import (
	"math"

	"github.com/golang/geo/s2"
)

// GreatCircleM is the great-circle distance in meters between a and b on a
// sphere of the mean earth radius, ignoring altitude. It is within about
// 0.5 % of the ellipsoidal distance and cheaper; use GeodesicM where that
// matters. The angle comes from the unit vectors (atan2 of cross and dot
// products), which unlike the haversine stays exact next to antipodes.
func GreatCircleM(a, b LLA) float64 {
	pa := s2.PointFromLatLng(s2.LatLngFromDegrees(a.LatDeg, a.LonDeg))
	pb := s2.PointFromLatLng(s2.LatLngFromDegrees(b.LatDeg, b.LonDeg))
	return pa.Distance(pb).Radians() * MeanRadiusM
}

// GeodesicM is the length in meters of the shortest path between a and b on
// the WGS84 ellipsoid (altitudes ignored). It uses Vincenty's inverse
// formula (accurate to about 0.5 mm); for the nearly antipodal pairs where
// Vincenty's iteration does not converge it minimises the sum of two
// shorter geodesics through a curve separating a from b, which is exact
// because the shortest path must cross that curve.
func GeodesicM(a, b LLA) float64 {
	if s, ok := vincentyInverse(a, b); ok {
		return s
	}
	return geodesicThroughSeparator(a, b)
}

// reduced returns the sine and cosine of the reduced (parametric) latitude.
func reduced(latDeg float64) (sinU, cosU float64) {
	sinLat, cosLat := math.Sincos(rad(latDeg))
	y, x := (1-Flattening)*sinLat, cosLat
	h := math.Hypot(x, y)
	return y / h, x / h
}

// vincentyCoefficients returns Vincenty's A and B for cos²α.
func vincentyCoefficients(cosSqAlpha float64) (bigA, bigB float64) {
	const ep2 = (SemiMajorM*SemiMajorM - SemiMinorM*SemiMinorM) / (SemiMinorM * SemiMinorM)
	uSq := cosSqAlpha * ep2
	bigA = 1 + uSq/16384*(4096+uSq*(-768+uSq*(320-175*uSq)))
	bigB = uSq / 1024 * (256 + uSq*(-128+uSq*(74-47*uSq)))
	return bigA, bigB
}

func deltaSigma(bigB, sinSigma, cosSigma, cos2SigmaM float64) float64 {
	c2 := cos2SigmaM * cos2SigmaM
	return bigB * sinSigma * (cos2SigmaM + bigB/4*(cosSigma*(-1+2*c2)-
		bigB/6*cos2SigmaM*(-3+4*sinSigma*sinSigma)*(-3+4*c2)))
}

func vincentyInverse(a, b LLA) (float64, bool) {
	const f = Flattening
	lonDiff := rad(NormalizeLonDeg(b.LonDeg - a.LonDeg))
	sinU1, cosU1 := reduced(a.LatDeg)
	sinU2, cosU2 := reduced(b.LatDeg)
	lambda := lonDiff
	for range 200 {
		sinLambda, cosLambda := math.Sincos(lambda)
		t1 := cosU2 * sinLambda
		t2 := cosU1*sinU2 - sinU1*cosU2*cosLambda
		sinSigma := math.Sqrt(t1*t1 + t2*t2)
		cosSigma := sinU1*sinU2 + cosU1*cosU2*cosLambda
		if sinSigma == 0 {
			// Coincident points, or antipodes through the poles (which
			// the fallback handles).
			return 0, cosSigma > 0
		}
		sigma := math.Atan2(sinSigma, cosSigma)
		sinAlpha := cosU1 * cosU2 * sinLambda / sinSigma
		cosSqAlpha := 1 - sinAlpha*sinAlpha
		cos2SigmaM := 0.0 // equatorial line
		if cosSqAlpha != 0 {
			cos2SigmaM = cosSigma - 2*sinU1*sinU2/cosSqAlpha
		}
		c := f / 16 * cosSqAlpha * (4 + f*(4-3*cosSqAlpha))
		prev := lambda
		lambda = lonDiff + (1-c)*f*sinAlpha*(sigma+c*sinSigma*(cos2SigmaM+c*cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)))
		if math.Abs(lambda) > math.Pi {
			return 0, false
		}
		if math.Abs(lambda-prev) < 1e-13 {
			bigA, bigB := vincentyCoefficients(cosSqAlpha)
			return SemiMinorM * bigA * (sigma - deltaSigma(bigB, sinSigma, cosSigma, cos2SigmaM)), true
		}
	}
	return 0, false
}

// geodesicThroughSeparator is the geodesic distance computed as the minimum,
// over points m of a closed curve separating a from b, of d(a,m) + d(m,b).
// The curve is the image of the great circle halfway between the two
// points' normals, so both legs are about a quarter of the earth long and
// Vincenty converges on them. The circle comes from the difference of the
// normals, well-conditioned for the far-apart points it serves (not for
// points a few centimeters apart).
func geodesicThroughSeparator(a, b LLA) float64 {
	na, nb := normal(a), normal(b)
	n := unit(sub(na, nb))
	// Any two unit vectors u, w orthogonal to n span the separating circle.
	u := unit(cross(n, pick(n)))
	w := cross(n, u)
	at := func(theta float64) LLA {
		s, c := math.Sincos(theta)
		d := [3]float64{c*u[0] + s*w[0], c*u[1] + s*w[1], c*u[2] + s*w[2]}
		return LLA{LatDeg: deg(math.Asin(math.Max(-1, math.Min(1, d[2])))), LonDeg: deg(math.Atan2(d[1], d[0]))}
	}
	sum := func(theta float64) float64 {
		m := at(theta)
		s1, ok1 := vincentyInverse(a, m)
		s2, ok2 := vincentyInverse(m, b)
		if !ok1 || !ok2 {
			return math.Inf(1)
		}
		return s1 + s2
	}
	// Coarse scan, then golden-section search around the best sample: the
	// sum is smooth and has at most a few minima on the circle.
	const samples = 72
	step := 2 * math.Pi / samples
	best, bestTheta := math.Inf(1), 0.0
	for i := range samples {
		th := float64(i) * step
		if s := sum(th); s < best {
			best, bestTheta = s, th
		}
	}
	lo, hi := bestTheta-step, bestTheta+step
	const g = 0.6180339887498949
	x1, x2 := hi-g*(hi-lo), lo+g*(hi-lo)
	f1, f2 := sum(x1), sum(x2)
	for hi-lo > 1e-11 {
		if f1 < f2 {
			hi, x2, f2 = x2, x1, f1
			x1 = hi - g*(hi-lo)
			f1 = sum(x1)
		} else {
			lo, x1, f1 = x1, x2, f2
			x2 = lo + g*(hi-lo)
			f2 = sum(x2)
		}
	}
	return math.Min(best, math.Min(f1, f2))
}

// normal is the unit vector with the geodetic latitude and longitude of p.
func normal(p LLA) [3]float64 {
	sinLat, cosLat := math.Sincos(rad(p.LatDeg))
	sinLon, cosLon := math.Sincos(rad(p.LonDeg))
	return [3]float64{cosLat * cosLon, cosLat * sinLon, sinLat}
}

func sub(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }

func cross(a, b [3]float64) [3]float64 {
	return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func unit(a [3]float64) [3]float64 {
	n := math.Sqrt(a[0]*a[0] + a[1]*a[1] + a[2]*a[2])
	return [3]float64{a[0] / n, a[1] / n, a[2] / n}
}

// pick returns an axis not parallel to n.
func pick(n [3]float64) [3]float64 {
	if math.Abs(n[0]) < 0.6 {
		return [3]float64{1, 0, 0}
	}
	return [3]float64{0, 1, 0}
}

// Destination is the point reached from start by following the geodesic
// with initial bearing bearingDeg (clockwise from true north) for
// distanceM meters on the WGS84 ellipsoid (Vincenty's direct formula,
// accurate to about 0.5 mm). The altitude of start is kept.
func Destination(start LLA, bearingDeg, distanceM float64) LLA {
	const f = Flattening
	sinAlpha1, cosAlpha1 := math.Sincos(rad(bearingDeg))
	sinU1, cosU1 := reduced(start.LatDeg)
	sigma1 := math.Atan2(sinU1, cosU1*cosAlpha1)
	sinAlpha := cosU1 * sinAlpha1
	cosSqAlpha := 1 - sinAlpha*sinAlpha
	bigA, bigB := vincentyCoefficients(cosSqAlpha)
	sigma0 := distanceM / (SemiMinorM * bigA)
	sigma := sigma0
	var sinSigma, cosSigma, cos2SigmaM float64
	for range 100 {
		cos2SigmaM = math.Cos(2*sigma1 + sigma)
		sinSigma, cosSigma = math.Sincos(sigma)
		prev := sigma
		sigma = sigma0 + deltaSigma(bigB, sinSigma, cosSigma, cos2SigmaM)
		if math.Abs(sigma-prev) < 1e-13 {
			break
		}
	}
	cos2SigmaM = math.Cos(2*sigma1 + sigma)
	sinSigma, cosSigma = math.Sincos(sigma)
	x := sinU1*sinSigma - cosU1*cosSigma*cosAlpha1
	lat := math.Atan2(sinU1*cosSigma+cosU1*sinSigma*cosAlpha1, (1-f)*math.Hypot(sinAlpha, x))
	lambda := math.Atan2(sinSigma*sinAlpha1, cosU1*cosSigma-sinU1*sinSigma*cosAlpha1)
	c := f / 16 * cosSqAlpha * (4 + f*(4-3*cosSqAlpha))
	l := lambda - (1-c)*f*sinAlpha*(sigma+c*sinSigma*(cos2SigmaM+c*cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)))
	return LLA{
		LatDeg: deg(lat),
		LonDeg: NormalizeLonDeg(start.LonDeg + deg(l)),
		AltM:   start.AltM,
	}
}
