package detect

import (
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/track"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// ConflictPredicted: a pair was evaluated and is in conflict, whether
	// newly or still (with the new figures).
	ConflictPredicted EventKind = iota
	// ConflictEnded: a pair in conflict no longer is (Reason resolved) or
	// one of its tracks went stale (Reason stale). Conflict holds the last
	// prediction.
	ConflictEnded
	// Nonconforming: a report placed its aircraft outside every active
	// volume of its party.
	Nonconforming
	// Conforming: a nonconforming aircraft is back inside a volume, its
	// party has no volumes any more (Reason resolved), or its track went
	// stale (Reason stale).
	Conforming
)

func (k EventKind) String() string {
	switch k {
	case ConflictPredicted:
		return "conflict_predicted"
	case ConflictEnded:
		return "conflict_ended"
	case Nonconforming:
		return "nonconforming"
	case Conforming:
		return "conforming"
	}
	return "unknown"
}

// Reasons an end carries.
const (
	ReasonResolved = "resolved"
	ReasonStale    = "stale"
)

// Event is one change found by the engine.
type Event struct {
	Kind   EventKind
	Reason string
	// Conflict is set for the conflict kinds.
	Conflict Conflict
	// Track is set for the conformance kinds.
	Track track.State
	// Stale names, for an end with reason stale, the aircraft whose
	// tracks went stale: one of a pair, or both.
	Stale []track.Key
}

// Conformance tells whether an aircraft is where its party declared it
// would be. The strategic volume registry implements it; applies is false
// when the party has no active volumes, in which case nothing is checked.
type Conformance interface {
	Conforms(party string, p geo.LLA, t time.Time) (conforming, applies bool)
}

// ReportError names the report of a batch that was refused.
type ReportError struct {
	Index int
	Err   error
}

func (e *ReportError) Error() string { return fmt.Sprintf("reports[%d].%v", e.Index, e.Err) }

func (e *ReportError) Unwrap() error { return e.Err }

// BBox is a latitude/longitude box. MinLonDeg > MaxLonDeg means the box
// crosses the antimeridian.
type BBox struct {
	MinLatDeg, MinLonDeg, MaxLatDeg, MaxLonDeg float64
}

// World is the box that holds everything.
var World = BBox{MinLatDeg: -90, MinLonDeg: -180, MaxLatDeg: 90, MaxLonDeg: 180}

// Contains reports whether the point is inside the box (edges included).
func (b BBox) Contains(p geo.LLA) bool {
	if p.LatDeg < b.MinLatDeg || p.LatDeg > b.MaxLatDeg {
		return false
	}
	if b.MinLonDeg <= b.MaxLonDeg {
		return p.LonDeg >= b.MinLonDeg && p.LonDeg <= b.MaxLonDeg
	}
	return p.LonDeg >= b.MinLonDeg || p.LonDeg <= b.MaxLonDeg
}
