package client

import (
	"encoding/json"
	"time"
)

// Report is one position report, as an item of POST /v1/positions. Angles
// in degrees, lengths in meters, speeds in m/s (east, north, up).
type Report struct {
	Aircraft string `json:"aircraft"`
	Callsign string `json:"callsign,omitempty"`
	// Class is the aircraft's class in the rules ("manned", "uas", ...);
	// empty means manned.
	Class  string    `json:"class,omitempty"`
	Time   time.Time `json:"time"`
	LatDeg float64   `json:"lat"`
	LonDeg float64   `json:"lon"`
	AltM   float64   `json:"alt_m"`
	// AltSource says what AltM is: "geometric" (height above the WGS-84
	// ellipsoid) or "barometric" (a pressure altitude or flight level
	// converted); empty when the source does not tell.
	AltSource   string  `json:"alt_source,omitempty"`
	VelEastMps  float64 `json:"vel_east_mps"`
	VelNorthMps float64 `json:"vel_north_mps"`
	VelUpMps    float64 `json:"vel_up_mps"`
}

// PositionsResult is the answer to POST /v1/positions.
type PositionsResult struct {
	Accepted int         `json:"accepted"`
	Rejected []Rejection `json:"rejected"`
}

// Rejection names one report the server refused and why.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// Footprint is a volume's horizontal extent: a GeoJSON Polygon
// (Coordinates, rings of [lon, lat]) or a circle (Center [lon, lat] and
// RadiusM).
type Footprint struct {
	Type        string         `json:"type"`
	Coordinates [][][2]float64 `json:"coordinates,omitempty"`
	Center      *[2]float64    `json:"center,omitempty"`
	RadiusM     float64        `json:"radius_m,omitempty"`
	Points      [][2]float64   `json:"points,omitempty"`  // Orbit: the two turn centres
	Line        [][2]float64   `json:"line,omitempty"`    // Corridor
	WidthM      float64        `json:"width_m,omitempty"` // Orbit, Corridor: the full width
}

// Circle returns a circular footprint.
func Circle(latDeg, lonDeg, radiusM float64) Footprint {
	return Footprint{Type: "Circle", Center: &[2]float64{lonDeg, latDeg}, RadiusM: radiusM}
}

// KeyEntry is one entry of the awareness key: another party's volume the
// writer has seen, at the version it saw.
type KeyEntry struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// VolumeRef names a volume at one version, as in a volume's conflicts or an
// alert's volumes.
type VolumeRef struct {
	ID      string `json:"id"`
	Party   string `json:"party"`
	Version string `json:"version"`
}

// VolumeInput is the body of POST /v1/volumes and PUT /v1/volumes/{id}.
// Version is the version being replaced (PUT only).
type VolumeInput struct {
	Footprint Footprint       `json:"footprint"`
	AltLowerM float64         `json:"alt_lower_m"`
	AltUpperM float64         `json:"alt_upper_m"`
	Start     time.Time       `json:"start"`
	End       time.Time       `json:"end"`
	Priority  int             `json:"priority"`
	State     string          `json:"state,omitempty"`
	Details   json.RawMessage `json:"details,omitempty"`
	Key       []KeyEntry      `json:"key"`
	Version   string          `json:"version,omitempty"`
}

// Alternative is a conflict-free variant of a volume write, ready to send
// (see POST /v1/volumes/alternatives): the band moved (Change "altitude",
// by ClimbM), the window moved ("time", by ShiftS) or both
// ("altitude_time").
type Alternative struct {
	Change string  `json:"change"`
	ClimbM float64 `json:"climb_m"`
	ShiftS float64 `json:"shift_s"`
	VolumeInput
}

// Volume is a volume as the server returns it: in full to its owner, reduced
// (no Details) to the other parties.
type Volume struct {
	ID        string          `json:"id"`
	Party     string          `json:"party"`
	Version   string          `json:"version"`
	State     string          `json:"state"`
	Priority  int             `json:"priority"`
	Footprint Footprint       `json:"footprint"`
	AltLowerM float64         `json:"alt_lower_m"`
	AltUpperM float64         `json:"alt_upper_m"`
	Start     time.Time       `json:"start"`
	End       time.Time       `json:"end"`
	Details   json.RawMessage `json:"details,omitempty"`
	Conflicts []VolumeRef     `json:"conflicts,omitempty"`
	// Clipped: another party's volume the caller may not see (under
	// need to know), as the answer to a probe of it (a preview, a
	// request for alternatives, a write refused for a conflict) shows
	// it: its footprint is the probe's, its band and window cut to
	// where they meet the probe's (docs/WIRE.md, Need to know).
	Clipped bool `json:"clipped,omitempty"`
}

// AlertAircraft is one aircraft of an alert with its state at the alert.
type AlertAircraft struct {
	Party       string  `json:"party"`
	Aircraft    string  `json:"aircraft"`
	Callsign    string  `json:"callsign"`
	Class       string  `json:"class,omitempty"`
	LatDeg      float64 `json:"lat"`
	LonDeg      float64 `json:"lon"`
	AltM        float64 `json:"alt_m"`
	VelEastMps  float64 `json:"vel_east_mps"`
	VelNorthMps float64 `json:"vel_north_mps"`
	VelUpMps    float64 `json:"vel_up_mps"`
	// Stale, in a clear with reason stale, marks the aircraft the server
	// no longer tracks.
	Stale bool `json:"stale,omitempty"`
}

// Alert is a tactical or strategic alert.
type Alert struct {
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`
	Level    string          `json:"level"`
	State    string          `json:"state"`
	Reason   string          `json:"reason,omitempty"`
	Time     time.Time       `json:"time"`
	TInS     float64         `json:"t_in_s"`
	TOutS    float64         `json:"t_out_s"`
	TCPAS    float64         `json:"t_cpa_s"`
	DHCPAM   float64         `json:"d_h_cpa_m"`
	DVCPAM   float64         `json:"d_v_cpa_m"`
	Aircraft []AlertAircraft `json:"aircraft"`
	Volumes  []VolumeRef     `json:"volumes,omitempty"`
	// Resolution is, in the events of a raised or updated conflict, the
	// recipient's part of the alert's resolution.
	Resolution *Resolution `json:"resolution,omitempty"`
	// Separation is the entry of the rules the pair of a conflict is
	// judged by, as the server shows it (classes, detector with its
	// thresholds, lookahead_s).
	Separation json.RawMessage `json:"separation,omitempty"`
	// RecordedLate marks an alert raised and cleared while no replica
	// led detection, committed afterwards with its original times.
	RecordedLate bool `json:"recorded_late,omitempty"`
	// RulesVersion is the version of the rules the alert was judged
	// under as of this transition (0 from a server before it).
	RulesVersion int64 `json:"rules_version,omitempty"`
}

// Resolution is the resolution of an alert for the caller's own aircraft
// (GET /v1/alerts/{id}/resolution).
type Resolution struct {
	AlertID  string               `json:"alert_id"`
	Time     time.Time            `json:"time"`
	Aircraft []AircraftResolution `json:"aircraft"`
}

// AircraftResolution is one aircraft's bands and suggestion.
type AircraftResolution struct {
	Party      string     `json:"party"`
	Aircraft   string     `json:"aircraft"`
	Callsign   string     `json:"callsign"`
	Bands      Bands      `json:"bands"`
	Suggestion *Manoeuvre `json:"suggestion,omitempty"`
}

// Bands are an aircraft's conflict-free ranges in each dimension.
type Bands struct {
	TrackDeg      []BandRange `json:"track_deg"`
	GsMps         []BandRange `json:"gs_mps"`
	VsMps         []BandRange `json:"vs_mps"`
	AltM          []BandRange `json:"alt_m"`
	RecoveryTimeS float64     `json:"recovery_time_s,omitempty"`
}

// BandRange is one band: Low to High in Region (NONE is free).
type BandRange struct {
	Low    float64 `json:"low"`
	High   float64 `json:"high"`
	Region string  `json:"region"`
}

// Kinds of Manoeuvre.
const (
	ManoeuvreMaintain = "maintain"
	ManoeuvreTurn     = "turn"
	ManoeuvreClimb    = "climb"
	ManoeuvreDescend  = "descend"
)

// Manoeuvre is an aircraft's part of a coordinated suggestion: Kind
// maintain, turn (TurnDeg to the right, to TrackDeg), climb or descend
// (by ClimbM, to AltM).
type Manoeuvre struct {
	Kind     string  `json:"kind"`
	TurnDeg  float64 `json:"turn_deg"`
	TrackDeg float64 `json:"track_deg"`
	ClimbM   float64 `json:"climb_m"`
	AltM     float64 `json:"alt_m"`
}

// MessageRef ties a hotline message to a volume or an alert.
type MessageRef struct {
	VolumeID      string `json:"volume_id,omitempty"`
	VolumeVersion string `json:"volume_version,omitempty"`
	AlertID       string `json:"alert_id,omitempty"`
	RulesVersion  int64  `json:"rules_version,omitempty"`
}

// NewMessage is the body of POST /v1/hotline/messages.
type NewMessage struct {
	To     []string    `json:"to"`
	Kind   string      `json:"kind"`
	Thread string      `json:"thread,omitempty"`
	Text   string      `json:"text"`
	Ref    *MessageRef `json:"ref,omitempty"`
}

// Ack is one party's acknowledgment of a message.
type Ack struct {
	Party string    `json:"party"`
	Time  time.Time `json:"time"`
	Reply string    `json:"reply,omitempty"`
}

// Message is a hotline item: a message between parties, or an alert or
// volume conflict posted by the service itself (From "deconflict").
type Message struct {
	ID     string      `json:"id"`
	From   string      `json:"from"`
	To     []string    `json:"to"`
	Thread string      `json:"thread"`
	Kind   string      `json:"kind"`
	Text   string      `json:"text"`
	Ref    *MessageRef `json:"ref,omitempty"`
	// Subject names what a system item is about for people (nil for a
	// party's message); Level is the alert level of an alert's item.
	Subject            *MessageSubject `json:"subject,omitempty"`
	Level              string          `json:"level,omitempty"`
	Created            time.Time       `json:"created"`
	Deadline           time.Time       `json:"deadline"`
	EscalationDeadline time.Time       `json:"escalation_deadline"`
	State              string          `json:"state"`
	// Escalations counts how many times the item escalated.
	Escalations int   `json:"escalations"`
	Acks        []Ack `json:"acks"`
	// Settled says why the item is acknowledged without the
	// acknowledgments of some recipients (nil for any other item).
	Settled *Settlement `json:"settled,omitempty"`
}

// MessageSubject names what a system item is about in the words of the
// people who read it: the callsigns of an alert's aircraft, or the
// volumes of a strategic conflict (the one its thread is about first),
// so that a thread can be named after the alert or the volume is gone.
type MessageSubject struct {
	Aircraft []SubjectAircraft `json:"aircraft,omitempty"`
	Volumes  []SubjectVolume   `json:"volumes,omitempty"`
}

// SubjectAircraft is one aircraft of an alert, as its party reports it.
type SubjectAircraft struct {
	Party    string `json:"party"`
	Aircraft string `json:"aircraft"`
	Callsign string `json:"callsign,omitempty"`
}

// SubjectVolume is one volume of a strategic conflict: whose, at which
// version, its altitude band and its window.
type SubjectVolume struct {
	ID        string    `json:"id"`
	Party     string    `json:"party"`
	Version   string    `json:"version"`
	AltLowerM float64   `json:"alt_lower_m"`
	AltUpperM float64   `json:"alt_upper_m"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// Settlement is why a hotline item became acknowledged without the
// acknowledgments of some recipients: the proposal of the rules it asked
// them to answer closed (rejected, superseded, in force), and nothing is
// left to answer. Unanswered are the recipients that had not
// acknowledged it, Revoked those of them revoked by then.
type Settlement struct {
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason"`
	Unanswered []string  `json:"unanswered"`
	Revoked    []string  `json:"revoked,omitempty"`
}

// AckedBy reports whether party has acknowledged the message.
func (m Message) AckedBy(party string) bool {
	for _, a := range m.Acks {
		if a.Party == party {
			return true
		}
	}
	return false
}

// Me is the answer to GET /v1/me.
type Me struct {
	Party    string `json:"party"`
	Operator bool   `json:"operator"`
}

// Event is one server-sent event of /v1/events. Data is the payload whose
// shape depends on Kind (an alert, a message, a volume, ...).
type Event struct {
	// ID is the event's id as the caller is shown it: a party's own
	// number of its event (its events numbered without gaps, whatever the
	// other parties get), the operator's the store's global id. It orders
	// the caller's events and resumes its stream; it says nothing of
	// another caller's ids for the same event.
	ID   int64           `json:"id"`
	Kind string          `json:"kind"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// PreviewItem is what one airspace of a file would become (see
// POST /v1/volumes/preview): Status "ok", "conflicting" or "refused".
type PreviewItem struct {
	Index   int    `json:"index"`
	Line    int    `json:"line"`
	Feature *int   `json:"feature"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Field   string `json:"field"`
	// Input is the volume write to send (ok and conflicting items).
	Input     *VolumeInput `json:"input"`
	Conflicts []Volume     `json:"conflicts"`
	// Alternatives are the nearest conflict-free variants of a
	// conflicting item.
	Alternatives []Alternative `json:"alternatives"`
	// AlternativesOmitted says why a conflicting item has none: "budget",
	// the party's budget of searches was spent.
	AlternativesOmitted string `json:"alternatives_omitted"`
}
