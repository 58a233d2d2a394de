package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is the life-cycle state of a volume.
type State string

// The states of a volume; see the transition table in the package doc.
const (
	Proposed  State = "proposed"
	Accepted  State = "accepted"
	Activated State = "activated"
	Ended     State = "ended"
	Cancelled State = "cancelled"
)

// States lists every state, in life-cycle order.
var States = []State{Proposed, Accepted, Activated, Ended, Cancelled}

// Live reports whether a volume in this state counts in conflict checks.
func (s State) Live() bool { return s == Proposed || s == Accepted || s == Activated }

func (s State) valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// transitions is the legal-transition table of the package doc. The empty
// state stands for "no volume yet" (creation).
var transitions = map[State][]State{
	"":        {Proposed, Accepted, Activated},
	Proposed:  {Accepted, Activated, Cancelled},
	Accepted:  {Activated, Ended, Cancelled},
	Activated: {Ended, Cancelled},
}

// CanTransition reports whether a volume may go from one state to another.
// from == "" means creation. Staying in the same live state is allowed (an
// update that changes only the geometry, window, priority or details).
func CanTransition(from, to State) bool {
	if from == to && from.Live() {
		return true
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Footprint is the horizontal extent of a volume on the wire: a GeoJSON
// Polygon (RFC 7946; positions are [lon, lat] or [lon, lat, alt], the
// altitude being ignored), a circle {"type":"Circle","center":[lon,lat],
// "radius_m":R}, or one of the shapes of an airspace control order: an
// orbit (a racetrack) {"type":"Orbit","points":[[lon,lat],[lon,lat]],
// "width_m":W} given by its two turn centres and its full width, or a
// corridor (a route with a width) {"type":"Corridor","line":[[lon,lat],…],
// "width_m":W}: every point within W/2 of the line, ends rounded.
type Footprint struct {
	Type        string        `json:"type"`
	Coordinates [][][]float64 `json:"coordinates,omitempty"`
	Center      []float64     `json:"center,omitempty"`
	RadiusM     float64       `json:"radius_m,omitempty"`
	Points      [][]float64   `json:"points,omitempty"`
	Line        [][]float64   `json:"line,omitempty"`
	WidthM      float64       `json:"width_m,omitempty"`
}

// KeyEntry names one volume, at one version, that the writer knows about.
type KeyEntry struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// Ref identifies another party's volume at one version.
type Ref struct {
	ID      string `json:"id"`
	Party   string `json:"party"`
	Version string `json:"version"`
}

// Volume is one 4D volume as stored and as shown to its owner. Others see
// Reduced().
type Volume struct {
	ID        string          `json:"id"`
	Party     string          `json:"party"`
	Version   string          `json:"version"`
	State     State           `json:"state"`
	Priority  int             `json:"priority"`
	Footprint Footprint       `json:"footprint"`
	AltLowerM float64         `json:"alt_lower_m"`
	AltUpperM float64         `json:"alt_upper_m"`
	Start     time.Time       `json:"start"`
	End       time.Time       `json:"end"`
	Details   json.RawMessage `json:"details,omitempty"`
	// Conflicts lists the other parties' volumes this one conflicted with
	// when it was last written (accepted with a complete key). The
	// owner's: another party sees only those of its own volumes
	// (ViewFor), never the others (Reduced).
	Conflicts []Ref `json:"conflicts"`
	// Clipped: this is another party's volume as a probe's answer shows
	// it to a party that may not see it (ClippedTo): its footprint is the
	// probe's, its band and window cut to where they meet the probe's.
	Clipped bool `json:"clipped,omitempty"`
	// ChangeSeq is the store's sequence number of the last write.
	ChangeSeq int64 `json:"-"`

	shape *shape
}

// Reduced returns the volume as other parties see it: without details,
// and without the conflicts its owner accepted, which name other parties'
// volumes (their ids, parties and versions) that a party shown this one
// (in a 409, a preview, an event) may not see under need to know.
func (v Volume) Reduced() Volume {
	v.Details = nil
	v.Conflicts = []Ref{}
	return v
}

// ViewFor returns the volume as party sees it: full for its owner;
// reduced for everyone else, keeping of its conflicts those with party's
// own volumes.
func (v Volume) ViewFor(party string) Volume {
	if v.Party == party {
		return v
	}
	r := v.Reduced()
	for _, c := range v.Conflicts {
		if c.Party == party {
			r.Conflicts = append(r.Conflicts, c)
		}
	}
	return r
}

// Ref returns the reference to this volume at its current version.
func (v Volume) Ref() Ref { return Ref{ID: v.ID, Party: v.Party, Version: v.Version} }

// Input is a write request as parsed from the wire: the fields a party sets.
// Lengths are meters; ParseInput converts feet and flight levels once.
type Input struct {
	Footprint Footprint       `json:"footprint"`
	AltLowerM float64         `json:"alt_lower_m"`
	AltUpperM float64         `json:"alt_upper_m"`
	Start     time.Time       `json:"start"`
	End       time.Time       `json:"end"`
	Priority  int             `json:"priority"`
	State     State           `json:"state,omitempty"`
	Details   json.RawMessage `json:"details,omitempty"`
	// Key and Version travel in the same body on the wire (POST and PUT).
	Key     []KeyEntry `json:"key,omitempty"`
	Version string     `json:"version,omitempty"`
	// storedBand says the band is a stored volume's (a state change, a
	// check against new rules): one without height, written before such
	// bands were refused, is not refused for it now, so that its owner
	// can still end or cancel it.
	storedBand bool
}

// Errors of the write path. Test them with errors.Is / errors.As.
var (
	ErrNotFound          = errors.New("volume: not found")
	ErrForbidden         = errors.New("volume: belongs to another party")
	ErrStaleVersion      = errors.New("volume: stale version")
	ErrIllegalTransition = errors.New("volume: illegal state transition")
	// ErrActivatedConflict: a volume that conflicts (even with a complete
	// key and lower priorities) may not be activated.
	ErrActivatedConflict = errors.New("volume: a conflicting volume may not be activated")
	// ErrMissingKey is matched by *MissingKeyError.
	ErrMissingKey = errors.New("volume: awareness key incomplete")
	// ErrHigherPriority is matched by *PriorityError.
	ErrHigherPriority = errors.New("volume: conflicts with a higher-priority volume")
)

// MissingKeyError lists exactly the conflicting volumes that were missing,
// or stale, in the key, reduced (no details).
type MissingKeyError struct {
	Missing []Volume
	// Alternatives are the nearest conflict-free variants of the write
	// (Registry.Alternatives), when the caller asked for them.
	Alternatives []Alternative
	// AlternativesOmitted, when not empty, says why the alternatives
	// were not searched ("budget": the party's budget of searches was
	// spent).
	AlternativesOmitted string
}

func (e *MissingKeyError) Error() string {
	ids := make([]string, len(e.Missing))
	for i, v := range e.Missing {
		ids[i] = v.ID + "@" + v.Version
	}
	return ErrMissingKey.Error() + ": missing " + strings.Join(ids, ", ")
}

// Is makes errors.Is(err, ErrMissingKey) true.
func (e *MissingKeyError) Is(target error) bool { return target == ErrMissingKey }

// PriorityError lists the higher-priority volumes the write conflicts with,
// reduced.
type PriorityError struct {
	Higher []Volume
	// Alternatives are the nearest conflict-free variants of the write
	// (Registry.Alternatives), when the caller asked for them.
	Alternatives []Alternative
	// AlternativesOmitted, when not empty, says why the alternatives
	// were not searched ("budget": the party's budget of searches was
	// spent).
	AlternativesOmitted string
}

func (e *PriorityError) Error() string {
	ids := make([]string, len(e.Higher))
	for i, v := range e.Higher {
		ids[i] = fmt.Sprintf("%s (priority %d)", v.ID, v.Priority)
	}
	return ErrHigherPriority.Error() + ": " + strings.Join(ids, ", ")
}

// Is makes errors.Is(err, ErrHigherPriority) true.
func (e *PriorityError) Is(target error) bool { return target == ErrHigherPriority }
