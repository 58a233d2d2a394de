package feed

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// SBS-1 / BaseStation field positions (0-based) of the 22 comma-separated
// fields of a MSG line.
const (
	sbsKind = iota
	sbsType
	sbsSession
	sbsAircraftID
	sbsHexIdent
	sbsFlightID
	sbsDateGen
	sbsTimeGen
	sbsDateLog
	sbsTimeLog
	sbsCallsign
	sbsAltitude
	sbsGroundSpeed
	sbsTrack
	sbsLat
	sbsLon
	sbsVerticalRate
	sbsSquawk
	sbsAlert
	sbsEmergency
	sbsSPI
	sbsOnGround
	sbsFields
)

var sbsFieldNames = [sbsFields]string{
	"message kind", "transmission type", "session id", "aircraft id", "hex ident", "flight id",
	"date generated", "time generated", "date logged", "time logged", "callsign", "altitude",
	"ground speed", "track", "lat", "lon", "vertical rate", "squawk", "alert", "emergency",
	"spi", "is on ground",
}

// ErrNotMSG is returned for well-formed BaseStation lines that carry no
// aircraft data (SEL, ID, AIR, STA, CLK): they are skipped like malformed
// lines but are not a sign of a broken source.
var ErrNotMSG = errors.New("feed: not a MSG line")

// SBSError names the field of a BaseStation line at fault.
type SBSError struct {
	Field int // 1-based field number, as the format is usually documented
	Name  string
	Msg   string
}

func (e *SBSError) Error() string {
	return fmt.Sprintf("sbs field %d (%s): %s", e.Field, e.Name, e.Msg)
}

func sbsErr(field int, format string, args ...any) error {
	return &SBSError{Field: field + 1, Name: sbsFieldNames[field], Msg: fmt.Sprintf(format, args...)}
}

// SBSMessage is one parsed MSG line, in the units of the format (feet,
// knots, feet per minute): conversion happens once, in the Assembler. The
// Has* flags say which optional fields were present.
type SBSMessage struct {
	Type int    // transmission type 1..8
	ICAO string // 24-bit address, 6 upper-case hex digits
	// Generated is the time the receiver stamped the message (the "date/time
	// generated" fields, read as UTC); zero when absent.
	Generated time.Time
	Callsign  string

	HasAlt bool
	AltFt  float64

	HasVelocity      bool
	GroundSpeedKt    float64
	TrackDeg         float64
	HasVerticalRate  bool
	VerticalRateFpm  float64
	HasPosition      bool
	LatDeg, LonDeg   float64
	Squawk           string
	OnGround         bool
	HasOnGroundField bool
}

// ParseSBS parses one BaseStation line (without or with its line ending).
// It returns ErrNotMSG for non-MSG records and an *SBSError naming the field
// for anything malformed.
func ParseSBS(line string) (SBSMessage, error) {
	line = strings.TrimRight(line, "\r\n")
	f := strings.Split(line, ",")
	if len(f) == 0 || f[0] == "" {
		return SBSMessage{}, sbsErr(sbsKind, "empty line")
	}
	switch f[0] {
	case "MSG":
	case "SEL", "ID", "AIR", "STA", "CLK":
		return SBSMessage{}, ErrNotMSG
	default:
		return SBSMessage{}, sbsErr(sbsKind, "unknown record %.10q", f[0])
	}
	if len(f) != sbsFields {
		return SBSMessage{}, &SBSError{Field: len(f), Name: "field count", Msg: fmt.Sprintf("%d fields, want %d", len(f), sbsFields)}
	}
	var m SBSMessage
	t, err := strconv.Atoi(f[sbsType])
	if err != nil || t < 1 || t > 8 {
		return SBSMessage{}, sbsErr(sbsType, "%.10q is not a type 1..8", f[sbsType])
	}
	m.Type = t
	m.ICAO, err = parseICAO(f[sbsHexIdent])
	if err != nil {
		return SBSMessage{}, sbsErr(sbsHexIdent, "%v", err)
	}
	if m.Generated, err = parseSBSTime(f[sbsDateGen], f[sbsTimeGen]); err != nil {
		return SBSMessage{}, sbsErr(sbsDateGen, "%v", err)
	}
	m.Callsign = strings.TrimSpace(f[sbsCallsign])
	if len(m.Callsign) > 8 || strings.ContainsFunc(m.Callsign, func(r rune) bool { return r < ' ' || r > '~' }) {
		return SBSMessage{}, sbsErr(sbsCallsign, "%.12q is not a callsign", m.Callsign)
	}
	if m.HasAlt, m.AltFt, err = optFloat(f, sbsAltitude, -2000, 100_000); err != nil {
		return SBSMessage{}, err
	}
	var hasGS, hasTrack bool
	if hasGS, m.GroundSpeedKt, err = optFloat(f, sbsGroundSpeed, 0, 5000); err != nil {
		return SBSMessage{}, err
	}
	if hasTrack, m.TrackDeg, err = optFloat(f, sbsTrack, 0, 360); err != nil {
		return SBSMessage{}, err
	}
	if hasGS != hasTrack {
		return SBSMessage{}, sbsErr(sbsTrack, "ground speed and track must come together")
	}
	m.HasVelocity = hasGS
	var hasLat, hasLon bool
	if hasLat, m.LatDeg, err = optFloat(f, sbsLat, -90, 90); err != nil {
		return SBSMessage{}, err
	}
	if hasLon, m.LonDeg, err = optFloat(f, sbsLon, -180, 180); err != nil {
		return SBSMessage{}, err
	}
	if hasLat != hasLon {
		return SBSMessage{}, sbsErr(sbsLon, "lat and lon must come together")
	}
	m.HasPosition = hasLat
	if m.HasVerticalRate, m.VerticalRateFpm, err = optFloat(f, sbsVerticalRate, -100_000, 100_000); err != nil {
		return SBSMessage{}, err
	}
	m.Squawk = strings.TrimSpace(f[sbsSquawk])
	if m.HasOnGroundField, m.OnGround, err = optFlag(f, sbsOnGround); err != nil {
		return SBSMessage{}, err
	}
	for _, i := range []int{sbsAlert, sbsEmergency, sbsSPI} {
		if _, _, err := optFlag(f, i); err != nil {
			return SBSMessage{}, err
		}
	}
	// The type says what the message is about; a type 3 without a position
	// or a type 4 without a velocity is a broken line, not an empty update.
	switch {
	case m.Type == 3 && !m.HasPosition:
		return SBSMessage{}, sbsErr(sbsLat, "type 3 without a position")
	case m.Type == 4 && !m.HasVelocity:
		return SBSMessage{}, sbsErr(sbsGroundSpeed, "type 4 without a velocity")
	}
	return m, nil
}

func parseICAO(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) != 6 {
		return "", fmt.Errorf("%.10q is not 6 hex digits", s)
	}
	if _, err := strconv.ParseUint(s, 16, 32); err != nil {
		return "", fmt.Errorf("%q is not 6 hex digits", s)
	}
	return strings.ToUpper(s), nil
}

// parseSBSTime reads "2015/10/07" and "10:15:32.123". Receivers write their
// local time without a zone; the feed reads it as UTC and only ever uses
// differences between such times (pacing a replay, freshness), never the
// absolute value, so the zone does not matter.
func parseSBSTime(date, clock string) (time.Time, error) {
	if date == "" && clock == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse("2006/01/02 15:04:05.999999999", date+" "+clock)
	if err != nil {
		return time.Time{}, fmt.Errorf("%.12q %.16q is not yyyy/mm/dd hh:mm:ss.sss", date, clock)
	}
	return t, nil
}

func optFloat(f []string, i int, lo, hi float64) (bool, float64, error) {
	s := strings.TrimSpace(f[i])
	if s == "" {
		return false, 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return false, 0, sbsErr(i, "%.16q is not a number", s)
	}
	if v < lo || v > hi {
		return false, 0, sbsErr(i, "%g outside [%g, %g]", v, lo, hi)
	}
	return true, v, nil
}

// optFlag reads a BaseStation boolean: dump1090 writes -1 for true, others
// write 1; 0 is false.
func optFlag(f []string, i int) (present, value bool, err error) {
	switch strings.TrimSpace(f[i]) {
	case "":
		return false, false, nil
	case "0":
		return true, false, nil
	case "1", "-1":
		return true, true, nil
	}
	return false, false, sbsErr(i, "%.8q is not a flag (0, 1 or -1)", f[i])
}
