package asterix

import "strings"

// Categories this package decodes record by record; blocks of any other
// category are skipped whole.
const (
	Cat021 = 21
	Cat034 = 34
	Cat048 = 48
	Cat062 = 62
	Cat065 = 65
)

// Decoded reports whether records of category cat are decoded (the others
// are skipped by block length).
func Decoded(cat int) bool {
	switch cat {
	case Cat021, Cat034, Cat048, Cat062, Cat065:
		return true
	}
	return false
}

// Has flags which optional values of a Record are present.
type Has uint32

const (
	HasSource Has = 1 << iota
	HasMessageType
	HasTrackNumber
	HasAddress
	HasMode3A
	HasPolar
	HasBaroAlt
	HasCartesianVelocity
	HasPolarVelocity
	// HasOnGround: the record says whether the target is on the ground
	// (I021/040 GBS, I062/080 SFC, I048/230 STAT).
	HasOnGround
)

// Record is one decoded data record: the raw integers of the items this
// package reads, each in the unit of its item's least significant bit.
// Items that select among alternatives (time, position, altitude, velocity,
// vertical rate) record which item gave the value; the zero Item means
// absent. A Record holds no pointers, so decoding allocates nothing.
type Record struct {
	Cat int
	Has Has

	SAC, SIC    uint8
	MessageType uint8 // I034/000, I065/000

	// TimeOfDay in 1/128 s since midnight UTC.
	TimeOfDay     uint32
	TimeOfDayItem Item

	TrackNumber uint16 // I048/161 and I021/161 (12 bits), I062/040 (16 bits)
	Address     uint32 // 24-bit ICAO address: I048/220, I062/380 ADR, I021/080

	// Callsign is the target identification of I048/240, I062/245 or
	// I021/170 in ASCII (8 characters, blank-padded); CallsignADD that of
	// I062/380 subfield ID; CallsignFPL the flight plan callsign of
	// I062/390 subfield CSN (7 ASCII characters).
	Callsign    [8]byte
	CallsignADD [8]byte
	CallsignFPL [7]byte

	Mode3A uint16 // 12 bits, four octal digits

	// PositionTime is I021/071, the time of applicability of the position
	// (1/128 s), when PositionTimeItem is set.
	PositionTime     uint32
	PositionTimeItem Item

	// Lat and Lon: I062/105 (LSB 180/2^25 deg), I021/131 (180/2^30) or
	// I021/130 (180/2^23).
	Lat, Lon     int32
	PositionItem Item

	// Rho (1/256 NM) and Theta (360/2^16 deg): I048/040.
	Rho, Theta uint16

	// FlightLevel in 1/4 FL: I048/090, I062/136, I021/145.
	FlightLevel     int16
	FlightLevelItem Item
	// FlightLevelValid is false when I048/090 says the code is not
	// validated or garbled.
	FlightLevelValid bool

	// GeometricAlt in 6.25 ft: I062/130, I021/140.
	GeometricAlt     int16
	GeometricAltItem Item

	// BaroAlt in 1/4 FL: I062/135 (without its QNH bit), with BaroAltQNH
	// that bit.
	BaroAlt    int16
	BaroAltQNH bool

	// VX, VY in 1/4 m/s: I062/185.
	VX, VY int16
	// GroundSpeed in 2^-14 NM/s and Heading in 360/2^16 deg: I048/200
	// (heading) or I021/160 (track angle; ground speed without its RE bit).
	GroundSpeed, Heading uint16
	VelocityItem         Item

	// VerticalRate in 6.25 ft/min: I062/220, I021/155 or I021/157.
	VerticalRate     int16
	VerticalRateItem Item

	OnGround bool
}

// LSBs of the items, exact binary fractions.
const (
	TimeOfDayLSB     = 1.0 / 128          // s
	LatLon062LSB     = 180.0 / (1 << 25)  // deg, I062/105
	LatLon021LSB     = 180.0 / (1 << 23)  // deg, I021/130
	LatLon021HighLSB = 180.0 / (1 << 30)  // deg, I021/131
	RhoLSB           = 1.0 / 256          // NM, I048/040
	AngleLSB         = 360.0 / (1 << 16)  // deg, I048/040, I048/200, I021/160
	FlightLevelLSB   = 1.0 / 4            // FL
	GeometricAltLSB  = 6.25               // ft
	VelocityLSB      = 1.0 / 4            // m/s, I062/185
	GroundSpeedLSB   = 3600.0 / (1 << 14) // kt (2^-14 NM/s), I048/200, I021/160
	VerticalRateLSB  = 6.25               // ft/min
)

// TimeOfDaySeconds is the record's time of day in seconds since midnight
// UTC (valid when TimeOfDayItem is set).
func (r *Record) TimeOfDaySeconds() float64 { return float64(r.TimeOfDay) * TimeOfDayLSB }

// LatLonDeg is the record's WGS-84 position in degrees (valid when
// PositionItem is set).
func (r *Record) LatLonDeg() (lat, lon float64) {
	lsb := LatLon062LSB
	switch r.PositionItem {
	case i021Position:
		lsb = LatLon021LSB
	case i021PositionHighRes:
		lsb = LatLon021HighLSB
	}
	return float64(r.Lat) * lsb, float64(r.Lon) * lsb
}

// RhoNM and ThetaDeg are the measured slant range and azimuth (HasPolar).
func (r *Record) RhoNM() float64    { return float64(r.Rho) * RhoLSB }
func (r *Record) ThetaDeg() float64 { return float64(r.Theta) * AngleLSB }

// FlightLevelFL is the flight level (FlightLevelItem set).
func (r *Record) FlightLevelFL() float64 { return float64(r.FlightLevel) * FlightLevelLSB }

// GeometricAltFt is the geometric altitude or height (GeometricAltItem set).
func (r *Record) GeometricAltFt() float64 { return float64(r.GeometricAlt) * GeometricAltLSB }

// BaroAltFL is I062/135 in flight levels (HasBaroAlt).
func (r *Record) BaroAltFL() float64 { return float64(r.BaroAlt) * FlightLevelLSB }

// VelocityMps is I062/185 east and north in m/s (HasCartesianVelocity).
func (r *Record) VelocityMps() (east, north float64) {
	return float64(r.VX) * VelocityLSB, float64(r.VY) * VelocityLSB
}

// GroundSpeedKt and HeadingDeg are the polar velocity (HasPolarVelocity).
func (r *Record) GroundSpeedKt() float64 { return float64(r.GroundSpeed) * GroundSpeedLSB }
func (r *Record) HeadingDeg() float64    { return float64(r.Heading) * AngleLSB }

// VerticalRateFpm is the vertical rate in ft/min (VerticalRateItem set).
func (r *Record) VerticalRateFpm() float64 { return float64(r.VerticalRate) * VerticalRateLSB }

// Mode3AOctal is the Mode 3/A code as four octal digits.
func (r *Record) Mode3AOctal() string {
	c := r.Mode3A
	return string([]byte{'0' + byte(c>>9&7), '0' + byte(c>>6&7), '0' + byte(c>>3&7), '0' + byte(c&7)})
}

// AddressHex is the ICAO address as six lower-case hex digits.
func (r *Record) AddressHex() string {
	const digits = "0123456789abcdef"
	var b [6]byte
	for i := range b {
		b[i] = digits[r.Address>>(20-4*i)&0xf]
	}
	return string(b[:])
}

// trimmed is an identification without its trailing blanks (and NULs).
func trimmed(b []byte) string { return strings.TrimRight(string(b), " \x00") }

// CallsignText, CallsignADDText and CallsignFPLText are the identifications
// without trailing blanks ("" when absent).
func (r *Record) CallsignText() string    { return trimmed(r.Callsign[:]) }
func (r *Record) CallsignADDText() string { return trimmed(r.CallsignADD[:]) }
func (r *Record) CallsignFPLText() string { return trimmed(r.CallsignFPL[:]) }
