// Package resolve owns tactical resolution: how an aircraft gets out of a
// predicted loss of separation. Bands (Compute) are, for one aircraft, the
// ranges of track, ground speed, vertical speed and altitude that are
// conflict-free against the traffic around it, each range with the region
// its conflicts would have, as NASA DAIDALUS reports instantaneous bands;
// a suggestion (Suggest) is one coordinated manoeuvre per aircraft of a
// conflicting pair.
//
// # Bands
//
// Each candidate is an instantaneous change of one dimension of the
// ownship's state (its track at its ground speed, its ground speed along
// its track, its vertical speed, or its altitude flown level), flown
// straight over the lookahead against every intruder given, each with the
// alerter of its pair (package detect: its levels' detectors, alerting
// times and lookahead) and the region each level paints. The semantics are
// DAIDALUS's (DaidalusRealBands, DaidalusIntegerBands; the reference
// ../shared/reference/daidalus_do365/README.md, sections 6.1 to 6.5):
//   - for each region from the most severe, an intruder contributes with
//     the level of its alerter that paints that region: over the whole
//     lookahead when its current state holds that level (a conflict
//     aircraft), over the level's alerting time when some candidate of the
//     dimension conflicts within it (a peripheral aircraft), not at all
//     otherwise;
//   - a candidate is in the region when it conflicts with a contributing
//     intruder; the region's green set is the rest of the range;
//   - when every candidate is in a region at least as severe as the
//     corrective region (Config.CorrectiveRegion), or the ownship is
//     already inside the corrective volume of a conflict aircraft, the
//     bands enter recovery: the recovery set is the set of candidates that
//     regain separation soonest (recovery below), painted RECOVERY, and
//     what would have been free is RECOVERY too.
//
// Unlike DAIDALUS, which tests candidates one step apart (1°, 5 kt,
// 100 fpm, 100 ft), the bands here are exact: a Bounded detector names the
// boundaries of its conflicts in each dimension (detect.Bounded), and one
// test per piece between boundaries decides the whole piece. So a range
// called free is free at every value in it, however thin the conflicts
// around it, and a band edge is where the conflict really starts, within
// one step of DAIDALUS's (whose edges are the last free candidate). A
// detector that is not Bounded is tested on a grid of Config.Samples
// values per dimension instead, DAIDALUS's way.
//
// # Recovery
//
// DAIDALUS's compute_recovery_bands over the intruders of the corrective
// region, each with its horizon: none when no candidate avoids the
// intruders' near-mid-air-collision cylinders (Separation.NMAC); otherwise,
// starting from the recovery cylinders (Separation.Recovery) and shrinking
// them by the collision-avoidance factor down to NMAC, the first cylinder
// some candidate avoids gives a binary search for the earliest time B from
// which some candidate has no corrective conflict after B and no cylinder
// conflict before it; the recovery set is the candidates that do so from
// B plus the recovery stability time.
package resolve

import (
	"strconv"
)

// Region is the severity of a band, DAIDALUS's BandsRegion in its order:
// a region overwrites a less severe one when bands are painted.
type Region uint8

// Regions, from the least severe.
const (
	RegionNone Region = iota
	RegionFar
	RegionMid
	RegionNear
	RegionRecovery
)

var regionNames = [...]string{"NONE", "FAR", "MID", "NEAR", "RECOVERY"}

func (r Region) String() string {
	if int(r) < len(regionNames) {
		return regionNames[r]
	}
	return "UNKNOWN"
}

// MarshalText writes the region's name, as DAIDALUS prints it.
func (r Region) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a region's name.
func (r *Region) UnmarshalText(b []byte) error {
	for i, n := range regionNames {
		if n == string(b) {
			*r = Region(i)
			return nil
		}
	}
	return &regionError{string(b)}
}

type regionError struct{ name string }

func (e *regionError) Error() string {
	return "resolve: unknown region " + strconv.Quote(e.name)
}

// Range is one band: the values from Low to High (ends included), all in
// Region. Bands of one dimension cover its whole span without gaps, in
// increasing order.
type Range struct {
	Low    float64 `json:"low"`
	High   float64 `json:"high"`
	Region Region  `json:"region"`
}

// Bands are the bands of one aircraft in each dimension: track in degrees
// clockwise from true north over [0, 360], ground speed in m/s, vertical
// speed in m/s (up positive) and altitude in meters, each over the span
// of Config.
type Bands struct {
	TrackDeg []Range `json:"track_deg"`
	GsMps    []Range `json:"gs_mps"`
	VsMps    []Range `json:"vs_mps"`
	AltM     []Range `json:"alt_m"`
	// RecoveryTimeS is, when some dimension is in recovery, the time from
	// which its recovery set regains separation (the latest over the
	// dimensions); 0 otherwise.
	RecoveryTimeS float64 `json:"recovery_time_s,omitempty"`
}

// AppendDAIDALUS appends the ranges in the band string format of the
// DAIDALUS reference (README section 2): low:high:REGION items joined by
// ';', six decimals, -0 printed as 0.
func AppendDAIDALUS(dst []byte, rs []Range) []byte {
	for i, r := range rs {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = appendSixDecimals(dst, r.Low)
		dst = append(dst, ':')
		dst = appendSixDecimals(dst, r.High)
		dst = append(dst, ':')
		dst = append(dst, r.Region.String()...)
	}
	return dst
}

// appendSixDecimals prints %.6f without the sign of a value that rounds
// to zero.
func appendSixDecimals(dst []byte, v float64) []byte {
	n := len(dst)
	dst = strconv.AppendFloat(dst, v, 'f', 6, 64)
	if string(dst[n:]) == "-0.000000" {
		dst = append(dst[:n], "0.000000"...)
	}
	return dst
}
