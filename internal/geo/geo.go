// Package geo owns WGS84 geodesy: geodetic and earth-centred coordinates,
// local east-north-up tangent frames, great-circle and ellipsoidal
// distances, and the conversions of aviation units (feet, nautical miles,
// knots, feet per minute, flight levels) that are done only at the edges of
// the system.
//
// The geodesy is checked against implementations independent of this
// package (reference_test.go): GeographicLib's own JavaScript port for the
// geodesics on the ellipsoid and on the sphere, proj4js for the
// earth-centred coordinates; their values, and the script and pinned
// versions that computed them, are in testdata/reference.
package geo

import "math"

// WGS84 ellipsoid.
const (
	// SemiMajorM is the equatorial radius a.
	SemiMajorM = 6378137.0
	// Flattening is f = (a-b)/a.
	Flattening = 1 / 298.257223563
	// SemiMinorM is the polar radius b = a(1-f).
	SemiMinorM = SemiMajorM * (1 - Flattening)
	// MeanRadiusM is the IUGG mean radius (2a+b)/3, used for great circles.
	MeanRadiusM = 6371008.8
	// MinCurvatureRadiusM (b²/a, the meridional radius of curvature at the
	// equator) and MaxCurvatureRadiusM (a²/b, at the poles) bound the
	// ellipsoid's metric against a sphere's in geodetic coordinates: two
	// points a spherical angle θ apart are between MinCurvatureRadiusM·θ and
	// MaxCurvatureRadiusM·θ apart on the ellipsoid. Conservative geometry
	// on the sphere divides lengths by one or the other.
	MinCurvatureRadiusM = SemiMinorM * SemiMinorM / SemiMajorM
	MaxCurvatureRadiusM = SemiMajorM * SemiMajorM / SemiMinorM

	e2 = Flattening * (2 - Flattening) // first eccentricity squared
)

// LLA is a WGS84 geodetic position: latitude and longitude in degrees and
// altitude in meters. The altitude is reported above mean sea level and is
// treated as height above the ellipsoid: the geoid separation (tens of
// meters) is the same for two nearby aircraft and cancels in their
// separation.
type LLA struct{ LatDeg, LonDeg, AltM float64 }

// ENU is a vector in a local east-north-up tangent frame. It holds
// positions in meters or, where a name says velocity (VelEast...), m/s.
type ENU struct{ EastM, NorthM, UpM float64 }

// ECEF is an earth-centred, earth-fixed position in meters: X towards
// (0°, 0°), Z towards the north pole.
type ECEF struct{ XM, YM, ZM float64 }

func rad(deg float64) float64 { return deg * math.Pi / 180 }
func deg(rad float64) float64 { return rad * 180 / math.Pi }

// NormalizeLonDeg maps a longitude in degrees to [-180, 180).
func NormalizeLonDeg(lon float64) float64 {
	l := math.Mod(lon+180, 360)
	if l < 0 {
		l += 360
	}
	// math.Mod can round a value just below 360 up to 360.
	if l >= 360 {
		l = 0
	}
	return l - 180
}

// ToECEF converts a geodetic position to earth-centred coordinates.
func ToECEF(p LLA) ECEF {
	sinLat, cosLat := math.Sincos(rad(p.LatDeg))
	sinLon, cosLon := math.Sincos(rad(p.LonDeg))
	n := SemiMajorM / math.Sqrt(1-e2*sinLat*sinLat) // prime vertical radius
	return ECEF{
		XM: (n + p.AltM) * cosLat * cosLon,
		YM: (n + p.AltM) * cosLat * sinLon,
		ZM: (n*(1-e2) + p.AltM) * sinLat,
	}
}

// FromECEF converts earth-centred coordinates to a geodetic position with
// the exact closed form of Vermeille (J. Geodesy 85, 2011), which holds at
// every latitude including the poles; the longitude is in [-180, 180).
func FromECEF(e ECEF) LLA {
	const a2 = SemiMajorM * SemiMajorM
	const e4 = e2 * e2
	w2 := e.XM*e.XM + e.YM*e.YM
	w := math.Sqrt(w2)
	p := w2 / a2
	q := (1 - e2) / a2 * e.ZM * e.ZM
	r := (p + q - e4) / 6
	evolute := 8*r*r*r + e4*p*q
	var latRad, altM float64
	// Inside the evolute, a point within nanometers of the equatorial
	// plane takes the equatorial solution: the general one would divide
	// quantities that underflow.
	if evolute > 0 || q > 1e-30 {
		var u float64
		if evolute > 0 {
			// Outside the evolute of the meridian ellipse, which lies
			// within about 43 km of the centre: every real position.
			rad1 := math.Sqrt(evolute)
			rad2 := math.Sqrt(e4 * p * q)
			if evolute > 10*e2 {
				rad3 := math.Cbrt((rad1 + rad2) * (rad1 + rad2))
				u = r + 0.5*rad3 + 2*r*r/rad3
			} else {
				u = r + 0.5*math.Cbrt((rad1+rad2)*(rad1+rad2)) + 0.5*math.Cbrt((rad1-rad2)*(rad1-rad2))
			}
		} else {
			rad1 := math.Sqrt(-evolute)
			rad2 := math.Sqrt(-8 * r * r * r)
			rad3 := math.Sqrt(e4 * p * q)
			at := 2 * math.Atan2(rad3, rad1+rad2) / 3
			u = -4 * r * math.Sin(at) * math.Cos(math.Pi/6+at)
		}
		v := math.Sqrt(u*u + e4*q)
		ww := e2 * (u + v - q) / (2 * v)
		k := (u + v) / (math.Sqrt(ww*ww+u+v) + ww)
		d := k * w / (k + e2)
		hyp := math.Hypot(d, e.ZM)
		altM = (k + e2 - 1) / k * hyp
		latRad = 2 * math.Atan2(e.ZM, hyp+d)
	} else {
		// In the equatorial plane within a·e² (43 km) of the centre: the
		// nearest surface points are off the equator, at the latitudes
		// whose normals cross the axis plane at distance w, that is
		// w = N·e²·cos(lat), and the height is -N(1-e²). Of the two
		// mirror solutions, the northern one.
		// sin² and cos² of that latitude share the denominator e²(e²-p).
		latRad = math.Atan2(math.Sqrt(e4-p), math.Sqrt(p*(1-e2)))
		sinLat := math.Sin(latRad)
		altM = -SemiMajorM / math.Sqrt(1-e2*sinLat*sinLat) * (1 - e2)
	}
	return LLA{
		LatDeg: deg(latRad),
		LonDeg: NormalizeLonDeg(deg(math.Atan2(e.YM, e.XM))),
		AltM:   altM,
	}
}
