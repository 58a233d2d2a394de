package volume

import (
	"sync"

	"github.com/deconflict/deconflict/internal/rules"
)

// Registry is the strategic check of one service process: the write path
// that runs inside the caller's store transaction, and the in-memory index
// (a cache of the store) that makes checks and queries fast. It is safe for
// concurrent use.
type Registry struct {
	mu      sync.RWMutex
	idx     *Index
	all     map[string]*Volume            // every volume seen, terminal ones too
	live    map[string]map[string]*Volume // party -> id -> live volume
	lastSeq int64                         // the store's changes up to here are applied
	// committedSeq is the highest change sequence known to be committed
	// (handed to Apply); every change at or below it is final.
	committedSeq int64
	decoded      map[string]*Volume // id@version -> decoded, since lastSeq
	// observe, when set (Observe), is told every state apply takes in.
	observe func(*Volume)
	// onScan, when set (ObserveScans), is called as each check of every
	// live volume for new rules begins.
	onScan func()
	// limits bound each party's live volumes (SetPartyLimits), and
	// livePositions counts the positions of their footprints by party.
	limits        PartyLimits
	livePositions map[string]int
	// onGeometryTest, when set (tests), is told each volume whose
	// footprint a search of alternatives tests against the write's.
	onGeometryTest func(*Volume)
}

// NewRegistry returns an empty registry; call Load to fill it from the store.
func NewRegistry(rl rules.Rules) *Registry {
	return &Registry{idx: NewIndex(rl), all: map[string]*Volume{}, live: map[string]map[string]*Volume{}, livePositions: map[string]int{}, decoded: map[string]*Volume{}}
}

// Result is the outcome of one committed write, for the caller's audit and
// events (see AppendEvents) and for Apply once the transaction has committed.
type Result struct {
	// Volume is the volume as stored (full, with details).
	Volume Volume
	// Previous is the version replaced; nil on creation.
	Previous *Volume
	// Conflicts are the other parties' volumes the write conflicts with,
	// reduced. Each pair gets a volume_conflict event.
	Conflicts []Volume
}

// Apply hands the registry the results of a transaction that has committed,
// so that reads see them at once. Never call it for a transaction that did
// not commit; skipping it is safe (the next write reads them back).
func (r *Registry) Apply(results ...Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range results {
		v := res.Volume
		r.apply(&v, nil)
		r.committedSeq = max(r.committedSeq, v.ChangeSeq)
	}
}
