package geo_test

import (
	"fmt"
	"math"

	"github.com/deconflict/deconflict/internal/geo"
)

// The distance from Damascus to Beirut along the ellipsoid (GeographicLib
// gives 83272.1 m), and on the sphere for comparison; the edge converts it
// to nautical miles.
func ExampleGeodesicM() {
	damascus := geo.LLA{LatDeg: 33.5138, LonDeg: 36.2765}
	beirut := geo.LLA{LatDeg: 33.8938, LonDeg: 35.5018}
	fmt.Printf("ellipsoid %.0f m (%.1f NM)\n", geo.GeodesicM(damascus, beirut), geo.MToNM(geo.GeodesicM(damascus, beirut)))
	fmt.Printf("sphere    %.0f m\n", geo.GreatCircleM(damascus, beirut))
	// Output:
	// ellipsoid 83272 m (45.0 NM)
	// sphere    83193 m
}

// A local east-north-up frame at an aircraft: another aircraft 10 km to
// the east and 1,000 ft higher, seen from it, and back again. The frame is
// an exact rotation of earth-centred coordinates, so the round trip loses
// nothing; the other aircraft's 8 m above 6,305 m is the earth curving
// away under the tangent plane over 10 km (d²/2R).
func ExampleFrame() {
	own := geo.LLA{LatDeg: 35, LonDeg: 36, AltM: 6000}
	f := geo.NewFrame(own)
	other := f.FromENU(geo.ENU{EastM: 10_000, UpM: geo.FeetToM(1000)})
	fmt.Printf("other at %.4f°N %.4f°E, %.0f m\n", other.LatDeg, other.LonDeg, other.AltM)
	v := f.ToENU(other)
	fmt.Printf("seen from own: east %.1f m, up %.1f m, north within a micrometre: %v\n", v.EastM, v.UpM, math.Abs(v.NorthM) < 1e-6)
	// Output:
	// other at 35.0000°N 36.1094°E, 6313 m
	// seen from own: east 10000.0 m, up 304.8 m, north within a micrometre: true
}
