package geo

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

func ecefDist(a, b ECEF) float64 {
	return math.Sqrt((a.XM-b.XM)*(a.XM-b.XM) + (a.YM-b.YM)*(a.YM-b.YM) + (a.ZM-b.ZM)*(a.ZM-b.ZM))
}

func enuDist(a, b ENU) float64 {
	return math.Sqrt((a.EastM-b.EastM)*(a.EastM-b.EastM) + (a.NorthM-b.NorthM)*(a.NorthM-b.NorthM) + (a.UpM-b.UpM)*(a.UpM-b.UpM))
}

// drawLLA draws anywhere on earth, with extra weight on the poles and the
// antimeridian where coordinate handling usually breaks.
func drawLLA(t *rapid.T, name string) LLA {
	lat := rapid.OneOf(
		rapid.Float64Range(-90, 90),
		rapid.Float64Range(89.9, 90),
		rapid.Float64Range(-90, -89.9),
	).Draw(t, name+"lat")
	lon := rapid.OneOf(
		rapid.Float64Range(-180, 180),
		rapid.Float64Range(179.8, 180),
		rapid.Float64Range(-180, -179.8),
	).Draw(t, name+"lon")
	return LLA{LatDeg: lat, LonDeg: lon, AltM: rapid.Float64Range(-500, 30_000).Draw(t, name+"alt")}
}

// samePlace compares positions in meters, not degrees: at a pole every
// longitude is the same place.
func samePlace(a, b LLA, tolM float64) bool { return ecefDist(ToECEF(a), ToECEF(b)) < tolM }

func TestECEFRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawLLA(t, "p")
		back := FromECEF(ToECEF(p))
		if !samePlace(p, back, 1e-3) || math.Abs(back.AltM-p.AltM) > 1e-3 {
			t.Fatalf("%+v came back as %+v", p, back)
		}
		if back.LonDeg < -180 || back.LonDeg >= 180 {
			t.Fatalf("longitude %v outside [-180, 180)", back.LonDeg)
		}
		if math.Abs(p.LatDeg) < 89.99 && math.Abs(back.LatDeg-p.LatDeg) > 1e-9 {
			t.Fatalf("latitude %v came back as %v", p.LatDeg, back.LatDeg)
		}
	})
}

func TestENURoundTripAndDistances(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		origin := drawLLA(t, "origin")
		p := Destination(origin, rapid.Float64Range(0, 360).Draw(t, "bearing"), rapid.Float64Range(0, 500_000).Draw(t, "dist"))
		p.AltM = rapid.Float64Range(-500, 30_000).Draw(t, "alt")
		q := drawLLA(t, "q")
		f := NewFrame(origin)
		if back := f.FromENU(f.ToENU(p)); !samePlace(p, back, 1e-3) {
			t.Fatalf("frame at %+v: %+v came back as %+v", origin, p, back)
		}
		// A rotation and a translation: straight-line distances are kept
		// exactly, however far apart the points are.
		want := ecefDist(ToECEF(p), ToECEF(q))
		if got := enuDist(f.ToENU(p), f.ToENU(q)); math.Abs(got-want) > 1e-6 {
			t.Fatalf("ENU distance %v, ECEF distance %v", got, want)
		}
		if o := f.ToENU(origin); enuDist(o, ENU{}) > 1e-6 {
			t.Fatalf("origin at %+v in its own frame", o)
		}
	})
}

// TestHundredKilometerPair: the projection itself loses nothing (the ENU
// distance is the ECEF chord to the micrometer). What separates the chord
// from the geodesic is the earth's curvature, s³/(24ρ²) for a normal
// section of radius ρ: at most 1.04 m at 100 km with the smallest WGS84
// radius of curvature b²/a, and below 1 m up to 98 km.
func TestHundredKilometerPair(t *testing.T) {
	const rhoMin = SemiMinorM * SemiMinorM / SemiMajorM
	rapid.Check(t, func(t *rapid.T) {
		a := drawLLA(t, "a")
		a.AltM = 0
		s := rapid.Float64Range(1, 100_000).Draw(t, "s")
		b := Destination(a, rapid.Float64Range(0, 360).Draw(t, "bearing"), s)
		mid := FromECEF(ECEF{(ToECEF(a).XM + ToECEF(b).XM) / 2, (ToECEF(a).YM + ToECEF(b).YM) / 2, (ToECEF(a).ZM + ToECEF(b).ZM) / 2})
		f := NewFrame(mid)
		chord := enuDist(f.ToENU(a), f.ToENU(b))
		geodesic := GeodesicM(a, b)
		if math.Abs(geodesic-s) > 1e-3 {
			t.Fatalf("destination at %v m measures %v m", s, geodesic)
		}
		loss := geodesic - chord
		if bound := s * s * s / (24 * rhoMin * rhoMin); loss < -1e-6 || loss > bound+1e-3 {
			t.Fatalf("%v m pair: chord %v, loss %v m, curvature bound %v m", s, chord, loss, bound)
		}
		if s <= 98_000 && loss >= 1 {
			t.Fatalf("%v m pair loses %v m", s, loss)
		}
	})
}

func TestVelocityFrom(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		at := drawLLA(t, "at")
		origin := Destination(at, rapid.Float64Range(0, 360).Draw(t, "bearing"), rapid.Float64Range(0, 300_000).Draw(t, "dist"))
		v := ENU{rapid.Float64Range(-600, 600).Draw(t, "ve"), rapid.Float64Range(-600, 600).Draw(t, "vn"), rapid.Float64Range(-100, 100).Draw(t, "vu")}
		f := NewFrame(origin)
		got := f.VelocityFrom(at, v)
		// The velocity is where the aircraft is one second later, seen
		// from the other frame: a displacement of one second's flight.
		local := NewFrame(at)
		const dtS = 1.0
		moved := local.FromENU(ENU{v.EastM * dtS, v.NorthM * dtS, v.UpM * dtS})
		d0, d1 := f.ToENU(at), f.ToENU(moved)
		want := ENU{(d1.EastM - d0.EastM) / dtS, (d1.NorthM - d0.NorthM) / dtS, (d1.UpM - d0.UpM) / dtS}
		if enuDist(got, want) > 1e-5 {
			t.Fatalf("rotated %+v, displacement gives %+v", got, want)
		}
		if math.Abs(enuDist(got, ENU{})-enuDist(v, ENU{})) > 1e-9 {
			t.Fatalf("rotation changed the speed: %+v -> %+v", v, got)
		}
	})
}

func TestDistancesSymmetricAndTriangle(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawLLA(t, "a"), drawLLA(t, "b"), drawLLA(t, "c")
		for _, d := range []struct {
			name string
			f    func(a, b LLA) float64
			tolM float64
		}{
			{"great circle", GreatCircleM, 1e-6},
			{"geodesic", GeodesicM, 1e-5},
		} {
			ab, ba := d.f(a, b), d.f(b, a)
			if math.Abs(ab-ba) > d.tolM {
				t.Fatalf("%s: d(a,b)=%v d(b,a)=%v", d.name, ab, ba)
			}
			if ac, bc := d.f(a, c), d.f(b, c); ac > ab+bc+d.tolM {
				t.Fatalf("%s: d(a,c)=%v > d(a,b)+d(b,c)=%v", d.name, ac, ab+bc)
			}
			if aa := d.f(a, a); aa != 0 {
				t.Fatalf("%s: d(a,a)=%v", d.name, aa)
			}
		}
		// The sphere and the ellipsoid differ by the flattening, ~0.34 %
		// at most, plus the mean radius' own offset: 0.6 % bounds both.
		if g, s := GeodesicM(a, b), GreatCircleM(a, b); g > 1000 && math.Abs(g-s) > 0.006*g {
			t.Fatalf("geodesic %v and great circle %v differ by more than 0.6%%", g, s)
		}
	})
}

func TestDestinationInvertsGeodesic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := drawLLA(t, "a")
		s := rapid.Float64Range(0, 19_000_000).Draw(t, "s")
		b := Destination(a, rapid.Float64Range(-360, 360).Draw(t, "bearing"), s)
		if b.LonDeg < -180 || b.LonDeg >= 180 || b.AltM != a.AltM {
			t.Fatalf("destination %+v", b)
		}
		// Beyond half the earth the geodesic may not be the shortest
		// path, so only require that it is never longer.
		if got := GeodesicM(a, b); math.Abs(got-s) > 1e-3 && !(s > 19_000_000*0.5 && got < s) {
			t.Fatalf("destination at %v m measures %v m", s, got)
		}
	})
}

// TestSeparatorAgreesWithVincenty checks the fallback used for nearly
// antipodal points against Vincenty wherever Vincenty converges.
func TestSeparatorAgreesWithVincenty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := drawLLA(t, "a"), drawLLA(t, "b")
		// The separating circle is built from the difference of the two
		// normals, which is well-conditioned for far points (the fallback
		// only serves near antipodes) and not for points centimeters
		// apart: compare from 1 km up.
		v, ok := vincentyInverse(a, b)
		if !ok || v < 1000 {
			return
		}
		if s := geodesicThroughSeparator(a, b); math.Abs(s-v) > 1e-5 {
			t.Fatalf("separator %v, Vincenty %v", s, v)
		}
	})
}

func TestAntipodes(t *testing.T) {
	// Along a meridian through both poles the geodesic is half the
	// meridian ellipse, whatever the starting longitude: the same value as
	// pole to pole.
	half := GeodesicM(LLA{LatDeg: 90}, LLA{LatDeg: -90})
	for _, lon := range []float64{0, 37, -120, 179.9} {
		if got := GeodesicM(LLA{LonDeg: lon}, LLA{LonDeg: NormalizeLonDeg(lon + 180)}); math.Abs(got-half) > 1e-3 {
			t.Fatalf("equatorial antipodes at %v: %v, pole to pole %v", lon, got, half)
		}
	}
	// Nearly antipodal pairs where Vincenty fails: shorter than the half
	// meridian, and continuous with the converging neighbourhood.
	for _, lat := range []float64{0.1, 0.5, -0.3} {
		got := GeodesicM(LLA{}, LLA{LatDeg: lat, LonDeg: 179.7})
		if !(got < half) {
			t.Fatalf("near antipode lat %v: %v not below %v", lat, got, half)
		}
		near := GeodesicM(LLA{}, LLA{LatDeg: lat, LonDeg: 179.7 - 1e-6})
		if math.Abs(near-got) > 0.2 {
			t.Fatalf("near antipode lat %v: %v vs %v one micro-degree away", lat, got, near)
		}
	}
}

func TestAntimeridian(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lat := rapid.Float64Range(-89, 89).Draw(t, "lat")
		// Up to lon 179.9 against -179.9: at most 22 km apart.
		dLon := rapid.Float64Range(0.001, 0.1).Draw(t, "dlon")
		west, east := LLA{LatDeg: lat, LonDeg: 180 - dLon}, LLA{LatDeg: lat, LonDeg: -180 + dLon}
		// Rotating the earth about its axis changes nothing: the pair
		// straddling the antimeridian measures as the same pair straddling
		// Greenwich.
		across := GeodesicM(west, east)
		greenwich := GeodesicM(LLA{LatDeg: lat, LonDeg: -dLon}, LLA{LatDeg: lat, LonDeg: dLon})
		if math.Abs(across-greenwich) > 1e-4 {
			t.Fatalf("across the antimeridian %v, across Greenwich %v", across, greenwich)
		}
		// From the western point, the eastern one lies east, at the
		// geodesic distance less the curvature of the tangent plane,
		// s³/(6ρ²) < 5 cm at 22 km.
		e := NewFrame(west).ToENU(east)
		if e.EastM <= 0 || math.Abs(math.Hypot(e.EastM, e.NorthM)-across) > 0.05 {
			t.Fatalf("east point at %+v, geodesic %v", e, across)
		}
		// Flying east across it lands at a normalized longitude.
		d := Destination(west, 90, across/2)
		if d.LonDeg < -180 || d.LonDeg >= 180 || math.Abs(GeodesicM(d, east)-across/2) > 1 {
			t.Fatalf("midpoint %+v", d)
		}
	})
}

func TestNearPole(t *testing.T) {
	// 89.99° on opposite meridians: the shortest path crosses the pole, so
	// it is twice the distance to the pole.
	a, b := LLA{LatDeg: 89.99, LonDeg: 10}, LLA{LatDeg: 89.99, LonDeg: -170}
	toPole := GeodesicM(a, LLA{LatDeg: 90, LonDeg: 10})
	if got := GeodesicM(a, b); math.Abs(got-2*toPole) > 1e-3 {
		t.Fatalf("across the pole %v, twice to the pole %v", got, 2*toPole)
	}
	// In the frame at the pole both lie about toPole away, on opposite sides.
	f := NewFrame(LLA{LatDeg: 90})
	ea, eb := f.ToENU(a), f.ToENU(b)
	if math.Abs(math.Hypot(ea.EastM, ea.NorthM)-toPole) > 1e-3 || math.Abs(ea.EastM+eb.EastM) > 1e-6 || math.Abs(ea.NorthM+eb.NorthM) > 1e-6 {
		t.Fatalf("at the pole: %+v and %+v, %v to the pole", ea, eb, toPole)
	}
	// Heading north from 89.99° for twice the distance to the pole lands on
	// the opposite meridian.
	if d := Destination(a, 0, 2*toPole); !samePlace(d, b, 1e-3) {
		t.Fatalf("north across the pole: %+v, want %+v", d, b)
	}
}

func TestNormalizeLonDeg(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lon := rapid.Float64Range(-1e4, 1e4).Draw(t, "lon")
		n := NormalizeLonDeg(lon)
		if n < -180 || n >= 180 {
			t.Fatalf("%v -> %v", lon, n)
		}
		turns := (lon - n) / 360
		if math.Abs(turns-math.Round(turns)) > 1e-9 {
			t.Fatalf("%v -> %v is not a whole number of turns", lon, n)
		}
	})
	if n := NormalizeLonDeg(180); n != -180 {
		t.Fatalf("180 -> %v", n)
	}
}

func TestUnitRoundTrips(t *testing.T) {
	pairs := []struct {
		name     string
		to, back func(float64) float64
	}{
		{"feet", FeetToM, MToFeet},
		{"nautical miles", NMToM, MToNM},
		{"knots", KnotsToMps, MpsToKnots},
		{"feet per minute", FeetPerMinToMps, MpsToFeetPerMin},
		{"flight level", FlightLevelToM, MToFlightLevel},
	}
	rapid.Check(t, func(t *rapid.T) {
		x := rapid.Float64Range(-1e6, 1e6).Draw(t, "x")
		for _, p := range pairs {
			if got := p.back(p.to(x)); math.Abs(got-x) > 1e-9*math.Max(1, math.Abs(x)) {
				t.Fatalf("%s: %v -> %v", p.name, x, got)
			}
		}
		// A flight level is hundreds of feet; a knot a nautical mile per
		// hour; feet per minute are feet over sixty seconds.
		if math.Abs(FlightLevelToM(x)-FeetToM(100*x)) > 1e-9*math.Max(1, math.Abs(x)) ||
			math.Abs(KnotsToMps(x)*3600-NMToM(x)) > 1e-6*math.Max(1, math.Abs(x)) ||
			math.Abs(FeetPerMinToMps(x)*60-FeetToM(x)) > 1e-9*math.Max(1, math.Abs(x)) {
			t.Fatalf("unit relations broken at %v", x)
		}
	})
}

// TestFromECEFDeepInside covers the branches of the closed form that no
// aircraft reaches (within the evolute, tens of km from the centre): the
// conversion stays total and exact to the millimeter.
func TestFromECEFDeepInside(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := ECEF{rapid.Float64Range(-60_000, 60_000).Draw(t, "x"), rapid.Float64Range(-60_000, 60_000).Draw(t, "y"), rapid.Float64Range(-300_000, 300_000).Draw(t, "z")}
		switch rapid.IntRange(0, 2).Draw(t, "plane") {
		case 0:
			e.ZM = 0
		case 1:
			// Just off the equatorial plane, down to underflow.
			e.ZM = math.Copysign(math.Pow(10, rapid.Float64Range(-300, 0).Draw(t, "exp")), e.ZM)
		}
		p := FromECEF(e)
		if p.LatDeg < -90 || p.LatDeg > 90 {
			t.Fatalf("%+v -> latitude %v", e, p.LatDeg)
		}
		if d := ecefDist(ToECEF(p), e); d > 1e-3 {
			t.Fatalf("%+v -> %+v -> %v m off", e, p, d)
		}
	})
	if d := ecefDist(ToECEF(FromECEF(ECEF{})), ECEF{}); d > 1e-3 {
		t.Fatalf("centre comes back %v m off", d)
	}
}

// FromECEF and VelocityFromECEF are ToENU and VelocityFrom for what is
// already in earth-centred coordinates.
func TestFrameFromECEF(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := NewFrame(drawLLA(t, "origin"))
		at := drawLLA(t, "at")
		v := ENU{
			EastM:  rapid.Float64Range(-400, 400).Draw(t, "east"),
			NorthM: rapid.Float64Range(-400, 400).Draw(t, "north"),
			UpM:    rapid.Float64Range(-50, 50).Draw(t, "up"),
		}
		if got, want := f.FromECEF(ToECEF(at)), f.ToENU(at); enuDist(got, want) > 1e-6 {
			t.Fatalf("FromECEF = %+v, ToENU = %+v", got, want)
		}
		x, y, z := NewFrame(at).unrotate(v)
		if got, want := f.VelocityFromECEF(ECEF{XM: x, YM: y, ZM: z}), f.VelocityFrom(at, v); enuDist(got, want) > 1e-9 {
			t.Fatalf("VelocityFromECEF = %+v, VelocityFrom = %+v", got, want)
		}
	})
}
