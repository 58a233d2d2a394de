package geo

// Exact definitions of the aviation units (international foot and
// nautical mile).
const (
	MetersPerFoot         = 0.3048
	MetersPerNauticalMile = 1852.0
	// feetPerFlightLevel: FL350 is 35,000 ft on the standard atmosphere.
	feetPerFlightLevel = 100.0
)

// FeetToM converts feet to meters.
func FeetToM(ft float64) float64 { return ft * MetersPerFoot }

// MToFeet converts meters to feet.
func MToFeet(m float64) float64 { return m / MetersPerFoot }

// NMToM converts nautical miles to meters.
func NMToM(nm float64) float64 { return nm * MetersPerNauticalMile }

// MToNM converts meters to nautical miles.
func MToNM(m float64) float64 { return m / MetersPerNauticalMile }

// KnotsToMps converts knots (nautical miles per hour) to m/s.
func KnotsToMps(kt float64) float64 { return kt * MetersPerNauticalMile / 3600 }

// MpsToKnots converts m/s to knots.
func MpsToKnots(mps float64) float64 { return mps * 3600 / MetersPerNauticalMile }

// FeetPerMinToMps converts a vertical rate in feet per minute to m/s.
func FeetPerMinToMps(fpm float64) float64 { return fpm * MetersPerFoot / 60 }

// MpsToFeetPerMin converts a vertical rate in m/s to feet per minute.
func MpsToFeetPerMin(mps float64) float64 { return mps * 60 / MetersPerFoot }

// FlightLevelToM converts a flight level (hundreds of feet of pressure
// altitude on the standard atmosphere) to meters. The pressure reference is
// the caller's concern: this is the nominal altitude of the level.
func FlightLevelToM(fl float64) float64 { return fl * feetPerFlightLevel * MetersPerFoot }

// MToFlightLevel converts meters to a (fractional) flight level.
func MToFlightLevel(m float64) float64 { return m / MetersPerFoot / feetPerFlightLevel }
