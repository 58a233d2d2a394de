// Package track owns the live state of every aircraft: position reports,
// the per-aircraft track they update, dead-reckoning extrapolation and
// staleness. A report that is older than (out of order) or as old as
// (duplicate) the track's last applied report is ignored and counted, never
// applied. A track with no report for the stale time is dropped.
//
// Nothing here reads the wall clock: every call takes the current time, so
// that replays and tests are deterministic.
package track

import (
	"math"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/printable"
)

// Key identifies an aircraft: its id is unique within its party.
type Key struct {
	Party    string
	Aircraft string
}

// Compare orders keys by party then aircraft id; pair results are always
// computed with the smaller key first so that they do not depend on which
// aircraft reported last.
func (k Key) Compare(o Key) int {
	if c := strings.Compare(k.Party, o.Party); c != 0 {
		return c
	}
	return strings.Compare(k.Aircraft, o.Aircraft)
}

func (k Key) String() string { return k.Party + "/" + k.Aircraft }

// Report is one position report of one aircraft.
type Report struct {
	Party string
	// Aircraft is unique within the party; the ICAO 24-bit address in hex
	// where known.
	Aircraft string
	Callsign string
	// Class is the aircraft's class as the rules name it ("manned",
	// "uas", ...); whether the rules know it is the detection engine's
	// check. Empty means "manned".
	Class string
	Pos   geo.LLA
	// AltSource says what Pos.AltM is: AltGeometric, AltBarometric, or ""
	// when the source did not say.
	AltSource string
	// Velocity over the ground in the local east-north-up frame at Pos.
	VelEastMps  float64
	VelNorthMps float64
	VelUpMps    float64
	Time        time.Time
}

// Key returns the aircraft the report is about.
func (r Report) Key() Key { return Key{Party: r.Party, Aircraft: r.Aircraft} }

// FromGroundTrack builds a report from the figures surveillance sources give:
// ground speed in knots, true track in degrees clockwise from north and
// vertical rate in feet per minute.
func FromGroundTrack(party, aircraft, callsign string, pos geo.LLA, groundSpeedKt, trackDeg, verticalRateFtPerMin float64, at time.Time) Report {
	speedMps := geo.KnotsToMps(groundSpeedKt)
	rad := trackDeg * math.Pi / 180
	return Report{
		Party:       party,
		Aircraft:    aircraft,
		Callsign:    callsign,
		Pos:         pos,
		VelEastMps:  speedMps * math.Sin(rad),
		VelNorthMps: speedMps * math.Cos(rad),
		VelUpMps:    geo.FeetPerMinToMps(verticalRateFtPerMin),
		Time:        at,
	}
}

// Altitude sources a report may name.
const (
	AltGeometric  = "geometric"  // height above the WGS-84 ellipsoid
	AltBarometric = "barometric" // a pressure altitude or flight level converted
)

// Limits of a plausible report, the one rule that the API applies at the
// edge and the engine again. Speeds well above anything that flies are
// refused because they make the swept boxes of the spatial index useless
// and are certainly a unit error.
const (
	MinAltM        = -1000
	MaxAltM        = 40_000
	MaxSpeedMps    = 3000
	MaxIDBytes     = 64
	MaxCallsignLen = 16
	MaxClassBytes  = 32
)

// Validate returns a *fielderr.Error naming the first unusable field. Ids
// and callsigns must pass printable.Check: they end up in texts the
// service writes to other parties.
func (r Report) Validate() error {
	switch {
	case r.Party == "":
		return fielderr.New("party", "must not be empty")
	case len(r.Party) > MaxIDBytes:
		return fielderr.Errorf("party", "longer than %d bytes", MaxIDBytes)
	case r.Aircraft == "":
		return fielderr.New("aircraft", "must not be empty")
	case len(r.Aircraft) > MaxIDBytes:
		return fielderr.Errorf("aircraft", "longer than %d bytes", MaxIDBytes)
	case len(r.Callsign) > MaxCallsignLen:
		return fielderr.Errorf("callsign", "longer than %d bytes", MaxCallsignLen)
	case r.AltSource != "" && r.AltSource != AltGeometric && r.AltSource != AltBarometric:
		return fielderr.Errorf("alt_source", "must be %q or %q (or absent)", AltGeometric, AltBarometric)
	case !classSyntax(r.Class):
		return fielderr.Errorf("class", "at most %d bytes of a-z, 0-9, '-' and '_'", MaxClassBytes)
	case !(r.Pos.LatDeg >= -90 && r.Pos.LatDeg <= 90):
		return fielderr.New("lat", "must be within [-90, 90] degrees")
	case !(r.Pos.LonDeg >= -180 && r.Pos.LonDeg <= 180):
		return fielderr.New("lon", "must be within [-180, 180] degrees")
	case !(r.Pos.AltM >= MinAltM && r.Pos.AltM <= MaxAltM):
		return fielderr.Errorf("alt_m", "must be within [%d, %d] m", MinAltM, MaxAltM)
	case !finite(r.VelEastMps):
		return fielderr.New("vel_east_mps", "must be a finite number")
	case !finite(r.VelNorthMps):
		return fielderr.New("vel_north_mps", "must be a finite number")
	case !finite(r.VelUpMps):
		return fielderr.New("vel_up_mps", "must be a finite number")
	case r.Time.IsZero():
		return fielderr.New("time", "must be set")
	}
	if speed := math.Sqrt(r.VelEastMps*r.VelEastMps + r.VelNorthMps*r.VelNorthMps + r.VelUpMps*r.VelUpMps); speed > MaxSpeedMps {
		return fielderr.Errorf(r.fastestComponent(), "the speed over all three components is %.0f m/s, above %d m/s", speed, MaxSpeedMps)
	}
	if err := printable.Check(r.Party); err != nil {
		return fielderr.New("party", err.Error())
	}
	if err := printable.Check(r.Aircraft); err != nil {
		return fielderr.New("aircraft", err.Error())
	}
	if err := printable.Check(r.Callsign); err != nil {
		return fielderr.New("callsign", err.Error())
	}
	return nil
}

// fastestComponent names the velocity field of the largest magnitude: the
// one to blame when the speed is too high.
func (r Report) fastestComponent() string {
	name, largest := "vel_east_mps", math.Abs(r.VelEastMps)
	if v := math.Abs(r.VelNorthMps); v > largest {
		name, largest = "vel_north_mps", v
	}
	if math.Abs(r.VelUpMps) > largest {
		name = "vel_up_mps"
	}
	return name
}

// classSyntax is the shape of a class name (empty for the default); the
// rules' classes have the same shape.
func classSyntax(c string) bool {
	if len(c) > MaxClassBytes {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// State is the track of one aircraft: its last applied report plus the same
// position and velocity in Earth-centred, Earth-fixed coordinates, which is
// what detection works in (no poles, no antimeridian).
type State struct {
	Report
	ECEF    [3]float64 // meters, at Report.Time
	VelECEF [3]float64 // m/s
}

// NewState derives the ECEF position and velocity of a report.
func NewState(r Report) State {
	r.Time = r.Time.Round(0) // drop the monotonic reading: times must compare the same after a round trip
	s := State{Report: r}
	s.ECEF, s.VelECEF = toECEF(r)
	return s
}

// ECEFAt extrapolates the position linearly in ECEF to dtS seconds after
// the report: over the half minute a track lives between reports, the
// difference from flying a great circle is centimeters.
func (s *State) ECEFAt(dtS float64) [3]float64 {
	return [3]float64{
		s.ECEF[0] + s.VelECEF[0]*dtS,
		s.ECEF[1] + s.VelECEF[1]*dtS,
		s.ECEF[2] + s.VelECEF[2]*dtS,
	}
}
