// Package alert owns the alert lifecycle: it turns what detection finds
// (conflicts between pairs, nonconforming aircraft) into alerts with a stable
// id and a level, and into transitions raised -> updated -> cleared.
//
// Hysteresis, so that noisy data does not make an alert flap:
//   - Raise at once: a predicted loss of separation is never held back.
//   - Clear (reason resolved) only once the conflict has been absent for
//     ClearAfterS seconds (default 5 s, a handful of 1 Hz reports); if it
//     comes back before that, the same alert continues with the same id.
//     A stale track clears its alerts at once (reason stale), marking its
//     aircraft Stale: there is no data left to wait for, and what ended is
//     the tracking, not the conflict. A pair whose newer report is more
//     than the stale time after the older one is such a clear too (the
//     older track is stale relative to the newer), before the periodic
//     expiry drops the track.
//   - Level: go up at once; go down only when the time to loss of
//     separation is beyond the lower level's threshold by LevelMarginS
//     (default 10 s).
//   - Updated is emitted when the level changes, or when the predicted
//     moment of loss or regain of separation (alert time + t_in or t_out)
//     moves by more than TimingS (default 5 s) or TimingShare (default
//     5 %) of how far ahead it is, whichever is more (a loss predicted
//     sooner by more than TimingS is always news), or the horizontal
//     miss distance at closest approach moves by more than
//     MissDistanceShare (default 10 %) of the horizontal threshold of the
//     pair's separation entry (5 NM between manned aircraft: 926 m); a
//     closest approach already past or beyond the lookahead, then or
//     now, is the distance at that end of it, which moves on with time:
//     it is news only when the pair's relative path over the lookahead
//     has also moved that far from the published one (a pair drawing
//     apart as predicted is no news; a follower closing on the aircraft
//     ahead, or a step aside, is).
//     Smaller changes are absorbed: the published alert keeps its
//     figures. The share: a moment minutes ahead is predicted from
//     velocities whose small errors grow with the time ahead, and two
//     reports of a steady pair, one a second older than the other, place
//     it seconds apart; a fixed 5 s published that noise as updates (a
//     sixth of the updates of the metro benchmark's traffic, more than a
//     quarter of global's) while the same
//     seconds a minute ahead are news. A regain of separation beyond the
//     lookahead (t_out at the horizon) is the horizon moving on, not a
//     prediction: it is never an update; nor is a loss already going on
//     then and now (t_in 0 both times), whose start does not move later
//     as the time of the prediction moves on (most of the metro
//     benchmark's updates were such: arrivals in trail within 5 NM of
//     each other, each published again every 5 s with nothing new).
//
// The level of a conflict is the most severe level of the pair's entry in
// the separation table that its detectors find (detect.Conflict.Level):
// each pair of classes has its own levels (advisory, caution, warning
// between manned aircraft; DO-365's preventive, corrective, warning
// between a manned aircraft and a drone).
//
// The same pair keeps its alert id for as long as the alert stays open; a
// new alert for the pair after a clear gets a new id. Ids are derived from
// the kind, the aircraft and the time of raising, so they are unique across
// restarts without shared state. An id once cleared is never raised again
// by the same lifecycle: a raise that derives one (an alert renamed to the
// id another replica's engine derived from a report this one had not had
// yet, cleared here before that report came) gets a fresh id.
package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// Kinds of tactical alerts (docs/WIRE.md "Alerts").
const (
	KindConflict      = "conflict"
	KindNonconforming = "nonconforming"
)

// States of an alert transition.
const (
	StateRaised  = "raised"
	StateUpdated = "updated"
	StateCleared = "cleared"
)

// Reasons of a clear.
const (
	ReasonResolved = detect.ReasonResolved
	ReasonStale    = detect.ReasonStale
)

// Aircraft is one aircraft of an alert as last reported.
type Aircraft struct {
	Party       string  `json:"party"`
	Aircraft    string  `json:"aircraft"`
	Callsign    string  `json:"callsign"`
	Class       string  `json:"class"`
	LatDeg      float64 `json:"lat"`
	LonDeg      float64 `json:"lon"`
	AltM        float64 `json:"alt_m"`
	VelEastMps  float64 `json:"vel_east_mps"`
	VelNorthMps float64 `json:"vel_north_mps"`
	VelUpMps    float64 `json:"vel_up_mps"`
	// Stale is set, on a clear with reason stale, on the aircraft whose
	// track went stale (no report within the rules' stale time): it is no
	// longer tracked, which does not mean that it is no longer there.
	Stale bool `json:"stale,omitempty"`
}

// Key is the aircraft's track key.
func (ac *Aircraft) Key() track.Key { return track.Key{Party: ac.Party, Aircraft: ac.Aircraft} }

// AircraftOf converts a track to its alert form.
func AircraftOf(s *track.State) Aircraft {
	return Aircraft{
		Party:       s.Party,
		Aircraft:    s.Aircraft,
		Callsign:    s.Callsign,
		Class:       s.Class,
		LatDeg:      s.Pos.LatDeg,
		LonDeg:      s.Pos.LonDeg,
		AltM:        s.Pos.AltM,
		VelEastMps:  s.VelEastMps,
		VelNorthMps: s.VelNorthMps,
		VelUpMps:    s.VelUpMps,
	}
}

// Alert is an alert as of one transition: State says which. Times in
// seconds are counted from Time, the moment the prediction refers to (the
// later report of the pair). A nonconforming alert has one aircraft, no
// timing figures, the least severe level (being outside one's volumes is
// not by itself a predicted loss of separation), and concerns every party.
type Alert struct {
	ID       string     `json:"id"`
	Kind     string     `json:"kind"`
	Level    string     `json:"level"`
	State    string     `json:"state"`
	Reason   string     `json:"reason,omitempty"`
	Time     time.Time  `json:"time"`
	TInS     float64    `json:"t_in_s"`
	TOutS    float64    `json:"t_out_s"`
	TCPAS    float64    `json:"t_cpa_s"`
	DHCPAM   float64    `json:"d_h_cpa_m"`
	DVCPAM   float64    `json:"d_v_cpa_m"`
	Aircraft []Aircraft `json:"aircraft"`
	// Separation is, for a conflict, the separation the pair is judged
	// by: the entry of the rules for the two classes, with the detector of
	// the alert's level.
	Separation *Separation `json:"separation,omitempty"`
	// RecordedLate marks the transitions of an alert raised and cleared
	// while no replica led detection (a leader dead, its lease not yet
	// lapsed; the store down), which the replica that took over found in
	// what its engine did meanwhile and the store had no trace of: they
	// are committed at the takeover, their content (times included) as
	// it was when they happened.
	RecordedLate bool `json:"recorded_late,omitempty"`
	// RulesVersion is the version of the rules the alert was judged
	// under as of this transition: that of the engine that raised or
	// updated it (a clear keeps the one it was open under). A start or
	// a takeover ends, with reason rules_changed, an alert the store has
	// open under rules whose detection is not the engine's (new rules
	// came into force, and the process died before it ended the alerts
	// of the old ones). Zero in the events of a program before it.
	RulesVersion int64 `json:"rules_version,omitempty"`
}

// Separation is what an alert shows of the pair's entry in the rules'
// separation table: the classes, the detector of the alert's level with
// its thresholds, and the lookahead.
type Separation struct {
	Classes    []string       `json:"classes"`
	Detector   rules.Detector `json:"detector"`
	LookaheadS float64        `json:"lookahead_s"`
}

// Transition is one change of an alert, as published.
type Transition = Alert

// Parties returns the parties of the alert's aircraft, without repeats.
func (a *Alert) Parties() []string {
	var out []string
	for _, ac := range a.Aircraft {
		dup := false
		for _, p := range out {
			dup = dup || p == ac.Party
		}
		if !dup {
			out = append(out, ac.Party)
		}
	}
	return out
}

// ForEveryone reports whether every party must see the alert (a
// nonconforming aircraft concerns all parties), not only those of its
// aircraft.
func (a *Alert) ForEveryone() bool { return a.Kind == KindNonconforming }

// newID derives an alert id from what identifies it and when it was raised.
func newID(kind string, keys []track.Key, raised time.Time) string {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, k := range keys {
		h.Write([]byte{0})
		h.Write([]byte(k.Party))
		h.Write([]byte{0})
		h.Write([]byte(k.Aircraft))
	}
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(raised.UnixNano(), 10)))
	return hex.EncodeToString(h.Sum(nil)[:12])
}
