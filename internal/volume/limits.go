package volume

import "fmt"

// PartyLimits bound what one party holds live at once. Every live volume
// costs memory in the index, a place in every other party's listing
// (which a console reads every few seconds) and in the answer to every
// write that meets it, so that without a bound one party could fill the
// memory and slow every party down by declaring volumes. A zero field
// bounds nothing.
type PartyLimits struct {
	// Volumes is the number of live volumes of a party.
	Volumes int
	// Positions is the number of positions in the footprints of a
	// party's live volumes (Footprint.Positions).
	Positions int
}

// SetPartyLimits bounds the live volumes of every party from the next
// write on. A write that would take its party beyond a limit is refused
// with a *PartyLimitError; one that does not add to what its party holds
// (an update of the same size, an end, a cancellation) never is.
func (r *Registry) SetPartyLimits(l PartyLimits) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limits = l
}

// What a *PartyLimitError says is beyond its limit.
const (
	LimitVolumes   = "live volumes"
	LimitPositions = "positions in the footprints of its live volumes"
)

// PartyLimitError refuses a write that would take its party beyond its
// PartyLimits.
type PartyLimitError struct {
	Party string
	// What is beyond the limit: LimitVolumes or LimitPositions.
	What  string
	Limit int
}

func (e *PartyLimitError) Error() string {
	return fmt.Sprintf("volume: %s would hold more than %d %s, the limit of a party; end or cancel some of its volumes first", e.Party, e.Limit, e.What)
}

// Positions counts the positions of the footprint: those of a polygon's
// ring (the closing one included), of a corridor's line, an orbit's two
// turn centres, a circle's centre.
func (f Footprint) Positions() int {
	n := len(f.Points) + len(f.Line)
	for _, ring := range f.Coordinates {
		n += len(ring)
	}
	if f.Center != nil {
		n++
	}
	return n
}

// checkPartyLimits runs after the transition check: v, replacing prev
// (nil for a new volume), must keep its party within the limits, counting
// the party's live volumes as this transaction sees them (the registry's,
// corrected by the overlay). A write that does not add to what its party
// holds passes.
func (r *Registry) checkPartyLimits(v, prev *Volume, overlay map[string]*Volume) error {
	r.mu.RLock()
	l := r.limits
	if (l.Volumes <= 0 && l.Positions <= 0) || !v.State.Live() {
		r.mu.RUnlock()
		return nil
	}
	volumes, positions := len(r.live[v.Party]), r.livePositions[v.Party]
	for id, o := range overlay {
		if o.Party != v.Party {
			continue
		}
		if held, ok := r.live[v.Party][id]; ok {
			volumes--
			positions -= held.Footprint.Positions()
		}
		if o.State.Live() {
			volumes++
			positions += o.Footprint.Positions()
		}
	}
	r.mu.RUnlock()
	addVolumes, addPositions := 1, v.Footprint.Positions()
	if prev != nil && prev.State.Live() {
		addVolumes--
		addPositions -= prev.Footprint.Positions()
	}
	switch {
	case l.Volumes > 0 && addVolumes > 0 && volumes+addVolumes > l.Volumes:
		return &PartyLimitError{Party: v.Party, What: LimitVolumes, Limit: l.Volumes}
	case l.Positions > 0 && addPositions > 0 && positions+addPositions > l.Positions:
		return &PartyLimitError{Party: v.Party, What: LimitPositions, Limit: l.Positions}
	}
	return nil
}
