// Package disclose owns need to know: which aircraft (and, under
// need_to_know, which volumes) of the other parties each party may see.
// Detection runs on the whole picture; this package decides what of it
// leaves the service toward each party.
//
// # The rule
//
// An aircraft X of party B is disclosed to party A (A ≠ B, not the
// operator, who sees everything) when one of these holds:
//
//   - proximity: at a position report of X, at most rules.DiscloseLingerS
//     seconds ago, X was within both rules.DiscloseWithinM horizontally
//     (great circle on the mean earth radius, geo.GreatCircleM) and
//     rules.DiscloseWithinAltM vertically of the last reported position of
//     a live aircraft of A;
//   - volumes: at a position report of X, X was near a volume of A that was
//     accepted or activated and whose window, grown by the time buffer,
//     meets [now, now + lookahead] (near: within DiscloseWithinM of the
//     footprint, inside counting as zero, and within DiscloseWithinAltM of
//     the band; volume.Volume.NearPoint), at most DiscloseLingerS ago;
//   - alerts: X is in an open alert that concerns A (a conflict with one of
//     A's aircraft; a nonconforming alert concerns every party), or was
//     until at most DiscloseLingerS ago.
//
// Every qualification is evaluated at X's own position reports (or, for
// alerts, at the alert's transition) and lasts DiscloseLingerS after the
// last one that found it, so that a track does not flicker at the boundary
// and the cost is paid at ingest, not per request: between two reports of
// X, its disclosure is what its last report found (an aircraft reports
// every few seconds; a track without a report for the stale time is gone
// anyway). A report needs one aircraft of each other party near it, so its
// query of the index stops once every party with tracks was found. Own
// aircraft are always visible to their owner. A volume V of A is near a
// party B's aircraft under the same test and linger, at B's aircraft's
// reports: the basis of need_to_know volume visibility.
//
// A rules change rebuilds the picture for the new figures (Rebuild): every
// live track is assessed once all are in place, as if each had just
// reported, and what the old picture still disclosed lasts until its time,
// so that a change of the rules makes no track flicker.
//
// # The index
//
// The proximity test runs only on the pairs that the engine's space-time
// grid (detect.Nearby, the grid of the whole-airspace detection) returns:
// each aircraft is listed as a cube around its earth-centred position; a
// second grid lists each volume as a cube around a ball that contains it,
// and, while there are volumes, the aircraft again. In geodetic coordinates
// the ellipsoid's metric at height h is at most (a²/b + h) times the unit
// sphere's, so two positions whose great-circle angle is θ and whose
// heights differ by Δh are at most (a²/b + h_max)·θ + Δh apart in
// earth-centred space; the cubes are grown so that any two entries that can
// pass the exact test overlap, and the property test checks the result
// against a brute-force evaluation of the rule over every pair.
package disclose

import (
	"math"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/volume"
)

// Rule is the disclosure rule as the rules set it, with what the index
// derives from it.
type Rule struct {
	WithinM    float64
	WithinAltM float64
	Linger     time.Duration
	// Lookahead and TimeBuffer decide which volumes count: those active
	// now or starting within the lookahead, windows grown by the buffer.
	Lookahead  time.Duration
	TimeBuffer time.Duration
	// StaleAfter is the tracks' life without a report (the engine's).
	StaleAfter time.Duration

	maxChord2 float64 // squared chord of the unit sphere at WithinM
	halfM     float64 // half edge of an aircraft's cube in the index
	volReachM float64 // earth-centred reach of the volume test
}

// maxCurvatureRadiusM is a²/b, the largest radius of curvature of WGS84.
const maxCurvatureRadiusM = geo.MaxCurvatureRadiusM

// RuleFrom takes the disclosure rule from the rules.
func RuleFrom(r rules.Rules) Rule {
	return NewRule(r.DiscloseWithinM, r.DiscloseWithinAltM, secs(r.DiscloseLingerS), r.Lookahead(), secs(r.TimeBufferS), r.StaleAfter())
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// NewRule derives a Rule from its figures.
func NewRule(withinM, withinAltM float64, linger, lookahead, timeBuffer, staleAfter time.Duration) Rule {
	r := Rule{WithinM: withinM, WithinAltM: withinAltM, Linger: linger, Lookahead: lookahead, TimeBuffer: timeBuffer, StaleAfter: staleAfter}
	angle := withinM / geo.MeanRadiusM
	if angle >= math.Pi {
		r.maxChord2 = 4
	} else {
		c := 2 * math.Sin(angle/2)
		r.maxChord2 = c * c
	}
	// Two aircraft the test finds near are at most this far apart in
	// earth-centred space (package doc); a meter covers rounding.
	reach := min(angle, math.Pi)*(maxCurvatureRadiusM+track.MaxAltM) + withinAltM + 1
	r.halfM = reach/2 + 1
	r.volReachM = volume.HorizontalReachM(withinM, track.MaxAltM) + withinAltM + 1
	return r
}

// Point is an aircraft position as the proximity test reads it: the unit
// vector of its latitude and longitude, and its altitude.
type Point struct {
	N    [3]float64
	AltM float64
}

// PointOf converts a position.
func PointOf(p geo.LLA) Point {
	sinLat, cosLat := math.Sincos(p.LatDeg * math.Pi / 180)
	sinLon, cosLon := math.Sincos(p.LonDeg * math.Pi / 180)
	return Point{N: [3]float64{cosLat * cosLon, cosLat * sinLon, sinLat}, AltM: p.AltM}
}

// Near is the one proximity test of two aircraft, used by the index path
// and by the brute-force oracle alike: within WithinAltM vertically and
// WithinM horizontally (the chord of the two unit vectors against the
// chord of WithinM's angle, the same order as the great-circle distance).
func (r *Rule) Near(a, b Point) bool {
	if math.Abs(a.AltM-b.AltM) > r.WithinAltM {
		return false
	}
	d0, d1, d2 := a.N[0]-b.N[0], a.N[1]-b.N[1], a.N[2]-b.N[2]
	return d0*d0+d1*d1+d2*d2 <= r.maxChord2
}

// VolumeCounts reports whether v counts for the volume part of the rule at
// now: accepted or activated, with its window, grown by the time buffer,
// meeting [now, now + lookahead].
func (r *Rule) VolumeCounts(v *volume.Volume, now time.Time) bool {
	if v.State != volume.Accepted && v.State != volume.Activated {
		return false
	}
	return !v.Start.Add(-r.TimeBuffer).After(now.Add(r.Lookahead)) && !v.End.Add(r.TimeBuffer).Before(now)
}

// NearVolume is the one test of an aircraft against a volume: the volume
// counts at now and the position is near it.
func (r *Rule) NearVolume(v *volume.Volume, pos geo.LLA, now time.Time) bool {
	return r.VolumeCounts(v, now) && v.NearPoint(pos, r.WithinM, r.WithinAltM)
}
