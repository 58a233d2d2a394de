package airspace

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/geo"
)

// Airspace is one airspace of a file.
type Airspace struct {
	Name  string
	Class string // OpenAir AC (e.g. "R", "D", "CTR"); free text from GeoJSON
	Type  string // OpenAir AY of the extended format (e.g. "TMA"), if given
	Lower Limit
	Upper Limit
	Shape Shape
	// Activations are the extended format's AA intervals; ByNOTAM is its
	// "AA NONE" (active only when a NOTAM says so, no times in the file).
	Activations []Activation
	ByNOTAM     bool
	// Frequency, Station and Transponder are the extended format's AF, AG
	// and AX (kept for export; they play no part in deconfliction).
	Frequency   string
	Station     string
	Transponder string
	// Line is the OpenAir line of the AC record, or the GeoJSON feature
	// index, that the airspace starts at.
	Line int
	// LowerLine and UpperLine are the OpenAir lines of AL and AH (0 for
	// GeoJSON).
	LowerLine, UpperLine int
	// Volume holds the volume fields a GeoJSON feature carries in its
	// properties (see ReadGeoJSON); nil for OpenAir.
	Volume *VolumeFields
	// Err, when set, is why the file's airspace (or feature) cannot be
	// read; it names the line or the feature. Only Name, Class and Line
	// are then set.
	Err error
}

// Activation is one activation interval; a zero Start or End is open
// (OpenAir's NONE).
type Activation struct {
	Start, End time.Time
}

// Unit of an altitude limit.
type Unit string

// Units of a limit as a file writes them.
const (
	Feet        Unit = "FT"
	Meters      Unit = "M"
	FlightLevel Unit = "FL"
)

// Datum is what a limit is measured from.
type Datum string

// Reference datums of a limit.
const (
	MSL Datum = "MSL" // above mean sea level
	GND Datum = "GND" // above ground (AGL); GND/SFC itself is 0 ft GND
	STD Datum = "STD" // the standard atmosphere (flight levels)
)

// Limit is a lower or upper limit as the file gives it.
type Limit struct {
	Value     float64
	Unit      Unit
	Datum     Datum
	Unlimited bool // OpenAir UNL: no upper limit
}

// Surface is the limit GND/SFC.
var Surface = Limit{Value: 0, Unit: Feet, Datum: GND}

// Meters returns the limit in meters above mean sea level: flight levels at
// their nominal altitude on the standard atmosphere, heights above ground
// added to groundM (the ground elevation, which the file does not give),
// unlimited as unlimitedM.
func (l Limit) Meters(groundM, unlimitedM float64) float64 {
	if l.Unlimited {
		return unlimitedM
	}
	var m float64
	switch l.Unit {
	case FlightLevel:
		return geo.FlightLevelToM(l.Value)
	case Meters:
		m = l.Value
	default:
		m = geo.FeetToM(l.Value)
	}
	if l.Datum == GND {
		m += groundM
	}
	return m
}

// String writes the limit as OpenAir does ("GND", "FL95", "3500FT AMSL",
// "500FT AGL", "300M AMSL", "UNL").
func (l Limit) String() string {
	switch {
	case l.Unlimited:
		return "UNL"
	case l.Unit == FlightLevel:
		return "FL" + formatNumber(l.Value)
	case l.Datum == GND && l.Value == 0:
		return "GND"
	}
	unit := "FT"
	if l.Unit == Meters {
		unit = "M"
	}
	ref := "AMSL"
	if l.Datum == GND {
		ref = "AGL"
	}
	return formatNumber(l.Value) + unit + " " + ref
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// comparable reports whether two limits can be ordered without knowing the
// ground elevation, and their nominal heights in meters for the comparison.
func comparable(a, b Limit) (float64, float64, bool) {
	ground := func(l Limit) bool { return l.Datum == GND && !l.Unlimited && l.Value != 0 }
	if ground(a) != ground(b) {
		if a.Datum == GND && a.Value == 0 {
			// The surface is below any height above it and any altitude.
			return 0, 1, true
		}
		return 0, 0, false
	}
	return a.Meters(0, math.Inf(1)), b.Meters(0, math.Inf(1)), true
}

// VolumeFields are the fields of a volume, other than its footprint and
// limits, that a GeoJSON feature may carry as properties (the names of the
// volume API); a nil pointer or empty string is absent.
type VolumeFields struct {
	ID       string
	Party    string
	Version  string
	Start    *time.Time
	End      *time.Time
	Priority *int
	State    string
	Details  []byte // raw JSON
}

// ShapeType names the kind of a Shape.
type ShapeType string

// The kinds of shape.
const (
	PolygonShape  ShapeType = "Polygon"
	CircleShape   ShapeType = "Circle"
	CorridorShape ShapeType = "Corridor"
	OrbitShape    ShapeType = "Orbit"
)

// Shape is the horizontal extent of an airspace. Positions are [lon, lat]
// in degrees (orb.Point's X is the longitude).
type Shape struct {
	Type ShapeType
	// Ring is a Polygon's closed ring (first position repeated last); for
	// OpenAir, with its arcs as OpenAir readers draw them (see the package
	// doc).
	Ring orb.Ring
	// RingLines gives, for each position of Ring, the OpenAir line it comes
	// from (0 where unknown), so that a refused ring names its line.
	RingLines []int
	// Enclosure, for an OpenAir polygon with arcs, is a closed ring that
	// holds the airspace read on the WGS84 ellipsoid (see the package
	// doc): the ring declared as the volume's footprint. Nil otherwise,
	// the footprint being Ring. EnclosureLines are its OpenAir lines.
	Enclosure      orb.Ring
	EnclosureLines []int
	// Center and RadiusM describe a Circle.
	Center  orb.Point
	RadiusM float64
	// Line and WidthM describe a Corridor (any number of points) or an
	// Orbit (exactly two: the turn centres); WidthM is the full width.
	Line   orb.LineString
	WidthM float64
}

// FootprintRing is the ring declared as a Polygon's volume footprint:
// Enclosure when there is one, else Ring.
func (s Shape) FootprintRing() orb.Ring {
	if s.Enclosure != nil {
		return s.Enclosure
	}
	return s.Ring
}

// LineOf returns the OpenAir line of position i of FootprintRing, or 0.
func (s Shape) LineOf(i int) int {
	lines := s.RingLines
	if s.Enclosure != nil {
		lines = s.EnclosureLines
	}
	if i >= 0 && i < len(lines) {
		return lines[i]
	}
	return 0
}

// LineError is an error at one line of an OpenAir file, or at one feature
// of a GeoJSON file (Feature >= 0, Line 0).
type LineError struct {
	Line    int // 1-based; 0 when the error is about a GeoJSON feature
	Feature int // GeoJSON feature index, -1 for OpenAir
	Msg     string
}

func (e *LineError) Error() string {
	if e.Line == 0 && e.Feature >= 0 {
		return fmt.Sprintf("feature %d: %s", e.Feature, e.Msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

func lineErrorf(line int, format string, args ...any) *LineError {
	return &LineError{Line: line, Feature: -1, Msg: fmt.Sprintf(format, args...)}
}

func featureErrorf(i int, format string, args ...any) *LineError {
	return &LineError{Feature: i, Msg: fmt.Sprintf(format, args...)}
}
