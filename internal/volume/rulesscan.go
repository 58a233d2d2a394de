package volume

// This file scans the live volumes for rules about to come into force
// ahead of the write that brings them in. Checking every pair of live
// volumes under a raised separation takes seconds with 100,000 volumes
// (19 s measured with dense ones); inside the write it would hold the
// writers' lock all along, and no alert could commit meanwhile. So the
// scan runs first, outside any transaction, over the registry's committed
// volumes; the write then takes its findings and checks again only the
// volumes whose state in the write's transaction differs from the one
// scanned (written meanwhile, by this process or another replica): usually
// none. What the write finds is exactly what checking every volume inside
// it would find.

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// RulesScan is what the live volumes scanned hold for new rules: the
// volumes that break them and the pairs that conflict only under them. It
// is read-only once made, and used by one write at a time.
type RulesScan struct {
	old, rl rules.Rules
	live    []*Volume          // the live volumes scanned, sorted by id
	byID    map[string]*Volume // the same, by id
	flags   []Flag
	idx     *Index // live under rl; nil when rl raises nothing over old
	pairs   []Pair
}

// For reports whether s was scanned for the change from old to rl.
func (s *RulesScan) For(old, rl rules.Rules) bool {
	return s != nil && reflect.DeepEqual(s.old, old) && reflect.DeepEqual(s.rl, rl)
}

// ScanRules scans the registry's committed live volumes for the change
// from the rules old to rl, without a transaction; the registry's lock is
// held only while the live volumes are listed. Sync the registry first to
// take in other replicas' writes: what the scan misses, the write checks
// again (AfterScan).
func (r *Registry) ScanRules(old, rl rules.Rules) (*RulesScan, error) {
	if err := checkRules(rl); err != nil {
		return nil, err
	}
	r.mu.RLock()
	var live []*Volume
	for _, byID := range r.live {
		for _, v := range byID {
			live = append(live, v)
		}
	}
	r.mu.RUnlock()
	sortByID(live)
	s := &RulesScan{old: old, rl: rl, live: live, byID: make(map[string]*Volume, len(live))}
	for _, v := range live {
		s.byID[v.ID] = v
	}
	s.flags = r.breaking(live, rl)
	if raises(old, rl) {
		s.idx, s.pairs = r.newPairs(live, old, rl)
	}
	return s, nil
}

// ObserveScans makes the registry call fn as each check of every live
// volume for new rules begins (ScanRules, and Breaking, NewConflicts or
// AfterScan without a scan ahead), so that tests can see which locks are held then.
func (r *Registry) ObserveScans(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onScan = fn
}

func (r *Registry) scanning() {
	r.mu.RLock()
	fn := r.onScan
	r.mu.RUnlock()
	if fn != nil {
		fn()
	}
}

// breaking checks every volume of live (sorted by id) against rl.
func (r *Registry) breaking(live []*Volume, rl rules.Rules) []Flag {
	r.scanning()
	var out []Flag
	for _, v := range live {
		if fe := v.Breaks(rl); fe != nil {
			out = append(out, Flag{Volume: *v, Reason: fe})
		}
	}
	return out
}

// newPairs checks every pair of live (sorted by id) under old and rl, and
// returns the index of live under rl it used.
func (r *Registry) newPairs(live []*Volume, old, rl rules.Rules) (*Index, []Pair) {
	r.scanning()
	idx := NewIndex(rl)
	for _, v := range live {
		idx.Put(v)
	}
	was := paramsOf(old)
	var out []Pair
	for _, a := range live {
		for _, b := range idx.Conflicts(a) {
			if a.ID < b.ID && !conflict(a, b, was) {
				out = append(out, Pair{A: a, B: b})
			}
		}
	}
	return idx, out
}

// scanDiff is how the live volumes a transaction sees differ from those
// scanned.
type scanDiff struct {
	// changed are the live volumes whose state the scan did not see (new,
	// or written since).
	changed []*Volume
	// dirty are the ids of changed and of the scanned volumes no longer
	// as scanned: the scan's findings about them no longer hold.
	dirty map[string]bool
}

// sameState reports whether a and b are the same state of a volume: a
// committed change has its own sequence.
func sameState(a, b *Volume) bool {
	return a == b || (a != nil && b != nil && a.ChangeSeq == b.ChangeSeq && a.Version == b.Version)
}

// diff locks the volumes of tx and compares those it sees live with the
// volumes scanned. It looks every volume up, scanned or live, once, and
// sorts only what changed: the whole of it inside the writers' lock.
func (r *Registry) diff(tx store.Volumes, s *RulesScan) (scanDiff, error) {
	if err := tx.LockVolumes(); err != nil {
		return scanDiff{}, fmt.Errorf("volume: locking: %w", err)
	}
	overlay, err := r.catchUp(tx, false)
	if err != nil {
		return scanDiff{}, err
	}
	d := scanDiff{dirty: map[string]bool{}}
	r.mu.RLock()
	defer r.mu.RUnlock()
	// What tx sees of a volume: the overlay's state, else the registry's.
	current := func(id string) *Volume {
		if v, ok := overlay[id]; ok {
			return v
		}
		return r.all[id]
	}
	for _, was := range s.live {
		if now := current(was.ID); !sameState(was, now) {
			d.dirty[was.ID] = true
			if now != nil && now.State.Live() {
				d.changed = append(d.changed, now)
			}
		}
	}
	unscanned := func(v *Volume) {
		if _, ok := s.byID[v.ID]; !ok {
			d.changed = append(d.changed, v)
			d.dirty[v.ID] = true
		}
	}
	for _, byID := range r.live {
		for id, v := range byID {
			if _, ok := overlay[id]; !ok {
				unscanned(v)
			}
		}
	}
	for _, v := range overlay {
		if v.State.Live() {
			unscanned(v)
		}
	}
	sortByID(d.changed)
	return d, nil
}

// tooMany reports whether so many volumes changed since the scan that
// checking everything again costs about as much as the patch.
func (d scanDiff) tooMany(scanned int) bool {
	return len(d.changed) > 64 && 4*len(d.changed) > scanned
}

// AfterScan lists, in tx, what Breaking and NewConflicts list, taking the
// findings of scan (nil: none), made ahead for old and rl: only the
// volumes whose state in tx differs from the one scanned (written since)
// are checked, and checking every volume in tx would find exactly the
// same. A scan made for other rules is not used. The flags and pairs may
// be the scan's own: do not change them.
func (r *Registry) AfterScan(tx store.Volumes, scan *RulesScan, old, rl rules.Rules) ([]Flag, []Pair, error) {
	if err := checkRules(rl); err != nil {
		return nil, nil, err
	}
	var d scanDiff
	if scan.For(old, rl) {
		var err error
		if d, err = r.diff(tx, scan); err != nil {
			return nil, nil, err
		}
	}
	if !scan.For(old, rl) || d.tooMany(len(scan.live)) {
		live, err := r.liveIn(tx)
		if err != nil {
			return nil, nil, err
		}
		flags := r.breaking(live, rl)
		if !raises(old, rl) {
			return flags, nil, nil
		}
		_, pairs := r.newPairs(live, old, rl)
		return flags, pairs, nil
	}
	if len(d.dirty) == 0 {
		return scan.flags, scan.pairs, nil
	}
	var flags []Flag
	for _, v := range d.changed {
		if fe := v.Breaks(rl); fe != nil {
			flags = append(flags, Flag{Volume: *v, Reason: fe})
		}
	}
	flags = mergeSorted(scan.flags, flags, d.dirty, func(f Flag) string { return f.Volume.ID },
		func(a, b Flag) int { return cmp.Compare(a.Volume.ID, b.Volume.ID) })
	if !raises(old, rl) {
		return flags, nil, nil
	}
	was, now := paramsOf(old), paramsOf(rl)
	var added []Pair
	pair := func(a, b *Volume) Pair {
		if b.ID < a.ID {
			a, b = b, a
		}
		return Pair{A: a, B: b}
	}
	for i, c := range d.changed {
		// Against the volumes scanned that are still as they were...
		for _, o := range scan.idx.Conflicts(c) {
			if !d.dirty[o.ID] && !conflict(c, o, was) {
				added = append(added, pair(c, o))
			}
		}
		// ...and against the other changed ones, each pair once.
		for _, o := range d.changed[i+1:] {
			if conflict(c, o, now) && !conflict(c, o, was) {
				added = append(added, pair(c, o))
			}
		}
	}
	// A pair no longer holds when either of its volumes is dirty.
	dirtyOf := func(p Pair) string {
		if d.dirty[p.A.ID] {
			return p.A.ID
		}
		return p.B.ID
	}
	pairs := mergeSorted(scan.pairs, added, d.dirty, dirtyOf, func(a, b Pair) int {
		return cmp.Or(cmp.Compare(a.A.ID, b.A.ID), cmp.Compare(a.B.ID, b.B.ID))
	})
	return flags, pairs, nil
}

// mergeSorted is scanned (sorted by cmp) without the findings whose idOf
// is dirty, merged with added (in any order): sorted by cmp.
func mergeSorted[T any](scanned, added []T, dirty map[string]bool, idOf func(T) string, cmp func(a, b T) int) []T {
	slices.SortFunc(added, cmp)
	out := make([]T, 0, len(scanned)+len(added))
	for _, x := range scanned {
		if dirty[idOf(x)] {
			continue
		}
		for len(added) > 0 && cmp(added[0], x) < 0 {
			out = append(out, added[0])
			added = added[1:]
		}
		out = append(out, x)
	}
	return append(out, added...)
}
