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
	live    []*Volume // the live volumes scanned, sorted by id
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
// again (BreakingAfter, NewConflictsAfter).
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
	s := &RulesScan{old: old, rl: rl, live: live}
	s.flags = r.breaking(live, rl)
	if raises(old, rl) {
		s.idx, s.pairs = r.newPairs(live, old, rl)
	}
	return s, nil
}

// ObserveScans makes the registry call fn as each check of every live
// volume for new rules begins (ScanRules, and Breaking or NewConflicts
// without a scan ahead), so that tests can see which locks are held then.
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
				out = append(out, Pair{A: *a, B: *b})
			}
		}
	}
	return idx, out
}

// scanDiff is how the live volumes a transaction sees differ from those
// scanned.
type scanDiff struct {
	// changed are the live volumes whose state the scan did not see (new,
	// or written since), sorted by id.
	changed []*Volume
	// dirty are the ids of changed and of the scanned volumes no longer
	// live: the scan's findings about them no longer hold.
	dirty map[string]bool
}

// diff compares live (sorted by id) with the volumes scanned.
func (s *RulesScan) diff(live []*Volume) scanDiff {
	d := scanDiff{dirty: map[string]bool{}}
	i, j := 0, 0
	for i < len(s.live) || j < len(live) {
		switch {
		case j == len(live) || (i < len(s.live) && s.live[i].ID < live[j].ID):
			d.dirty[s.live[i].ID] = true
			i++
		case i == len(s.live) || live[j].ID < s.live[i].ID:
			d.changed = append(d.changed, live[j])
			d.dirty[live[j].ID] = true
			j++
		default:
			// A committed change has its own sequence: the same sequence
			// and version is the same state.
			if was, now := s.live[i], live[j]; was != now && (was.ChangeSeq != now.ChangeSeq || was.Version != now.Version) {
				d.changed = append(d.changed, now)
				d.dirty[now.ID] = true
			}
			i++
			j++
		}
	}
	return d
}

// tooMany reports whether so many volumes changed since the scan that
// checking everything again costs about as much as the patch.
func (d scanDiff) tooMany(live []*Volume) bool {
	return len(d.changed) > 64 && 4*len(d.changed) > len(live)
}

// BreakingAfter is Breaking taking the findings of scan (nil: none), made
// ahead for rl: only the volumes changed since are checked in tx. A scan
// made for other rules is not used.
func (r *Registry) BreakingAfter(tx store.Volumes, scan *RulesScan, rl rules.Rules) ([]Flag, error) {
	if err := checkRules(rl); err != nil {
		return nil, err
	}
	live, err := r.liveIn(tx)
	if err != nil {
		return nil, err
	}
	if scan == nil || !reflect.DeepEqual(scan.rl, rl) {
		return r.breaking(live, rl), nil
	}
	d := scan.diff(live)
	if d.tooMany(live) {
		return r.breaking(live, rl), nil
	}
	var out []Flag
	for _, f := range scan.flags {
		if !d.dirty[f.Volume.ID] {
			out = append(out, f)
		}
	}
	for _, v := range d.changed {
		if fe := v.Breaks(rl); fe != nil {
			out = append(out, Flag{Volume: *v, Reason: fe})
		}
	}
	slices.SortFunc(out, func(a, b Flag) int { return cmp.Compare(a.Volume.ID, b.Volume.ID) })
	return out, nil
}

// NewConflictsAfter is NewConflicts taking the findings of scan (nil:
// none), made ahead for old and rl: in tx, only the pairs with a volume
// changed since are checked. A scan made for other rules is not used.
func (r *Registry) NewConflictsAfter(tx store.Volumes, scan *RulesScan, old, rl rules.Rules) ([]Pair, error) {
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
	if !scan.For(old, rl) {
		_, pairs := r.newPairs(live, old, rl)
		return pairs, nil
	}
	d := scan.diff(live)
	if d.tooMany(live) {
		_, pairs := r.newPairs(live, old, rl)
		return pairs, nil
	}
	was, now := paramsOf(old), paramsOf(rl)
	var out []Pair
	for _, p := range scan.pairs {
		if !d.dirty[p.A.ID] && !d.dirty[p.B.ID] {
			out = append(out, p)
		}
	}
	pair := func(a, b *Volume) Pair {
		if b.ID < a.ID {
			a, b = b, a
		}
		return Pair{A: *a, B: *b}
	}
	for i, c := range d.changed {
		// Against the volumes scanned that are still as they were...
		for _, o := range scan.idx.Conflicts(c) {
			if !d.dirty[o.ID] && !conflict(c, o, was) {
				out = append(out, pair(c, o))
			}
		}
		// ...and against the other changed ones, each pair once.
		for _, o := range d.changed[i+1:] {
			if conflict(c, o, now) && !conflict(c, o, was) {
				out = append(out, pair(c, o))
			}
		}
	}
	slices.SortFunc(out, func(a, b Pair) int {
		return cmp.Or(cmp.Compare(a.A.ID, b.A.ID), cmp.Compare(a.B.ID, b.B.ID))
	})
	return out, nil
}
