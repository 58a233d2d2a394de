package volume

// This file flags the stored volumes that break rules adopted after they
// were written, and finds the pairs that conflict only under the new rules:
// a change of the rules never ends, shrinks or deletes a volume.

import (
	"errors"
	"fmt"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// Flag is a live volume that breaks rules it was not written under.
type Flag struct {
	// Volume is the volume as stored (full: for its owner).
	Volume Volume
	// Reason names the field of the volume at fault and why.
	Reason *fielderr.Error
}

// Breaks reports how v breaks rl (the first field at fault), or nil. A
// volume is checked against the rules when it is written; Breaks tells
// which of those already stored break rules adopted since.
func (v *Volume) Breaks(rl rules.Rules) *fielderr.Error {
	in := Input{Footprint: v.Footprint, AltLowerM: v.AltLowerM, AltUpperM: v.AltUpperM,
		Start: v.Start, End: v.End, Priority: v.Priority, State: v.State, Details: v.Details, storedBand: true}
	_, err := in.compile(rl)
	if err == nil {
		err = checkPriority(in, v.Party, rl)
	}
	var fe *fielderr.Error
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}

// Breaking lists, in tx and sorted by id, the live volumes that break rl:
// the volumes to flag to their owners when rl is adopted. A change of the
// rules never ends, shrinks or deletes a volume; it applies to new writes,
// and the owners of the volumes that break it are told. Every live volume
// is checked inside tx; see ScanRules and AfterScan for checking them
// ahead.
func (r *Registry) Breaking(tx store.Volumes, rl rules.Rules) ([]Flag, error) {
	if err := checkRules(rl); err != nil {
		return nil, err
	}
	live, err := r.liveIn(tx)
	if err != nil {
		return nil, err
	}
	return r.breaking(live, rl), nil
}

// Pair is two live volumes of different parties that conflict, A's id
// before B's. They are the registry's own (an activation lists hundreds of
// thousands of pairs over 100,000 dense volumes, not copied): read only.
type Pair struct {
	A, B *Volume
}

// NewConflicts lists, in tx, the pairs of live volumes that conflict under
// rl but did not under old (a separation or time buffer raised), sorted by
// A's then B's id: each is a new conflict for both owners to hear of, as
// if one of them had just been written. The volumes themselves stay as
// they are. Every pair is checked inside tx; see ScanRules and AfterScan
// for checking them ahead.
func (r *Registry) NewConflicts(tx store.Volumes, old, rl rules.Rules) ([]Pair, error) {
	if err := checkRules(rl); err != nil {
		return nil, err
	}
	if !raises(old, rl) {
		return nil, nil
	}
	live, err := r.liveIn(tx)
	if err != nil {
		return nil, err
	}
	_, pairs := r.newPairs(live, old, rl)
	return pairs, nil
}

// raises reports whether conflicts can appear going from old to rl:
// conflict only grows with the separation, the vertical separation and the
// time buffer.
func raises(old, rl rules.Rules) bool {
	was, now := paramsOf(old), paramsOf(rl)
	return now.lim > was.lim || now.vsepM > was.vsepM || now.bufNs > was.bufNs
}

// liveIn locks the volumes of tx and returns every live volume, the
// index's corrected by what tx sees (the catch-up's overlay), sorted by id.
func (r *Registry) liveIn(tx store.Volumes) ([]*Volume, error) {
	if err := tx.LockVolumes(); err != nil {
		return nil, fmt.Errorf("volume: locking: %w", err)
	}
	overlay, err := r.catchUp(tx, false)
	if err != nil {
		return nil, err
	}
	var live []*Volume
	r.mu.RLock()
	for _, byID := range r.live {
		for _, v := range byID {
			if _, ok := overlay[v.ID]; !ok {
				live = append(live, v)
			}
		}
	}
	r.mu.RUnlock()
	for _, v := range overlay {
		if v.State.Live() {
			live = append(live, v)
		}
	}
	sortByID(live)
	return live, nil
}
