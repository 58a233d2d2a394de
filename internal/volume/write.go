package volume

// This file is the write path: Create, Update, SetState and EndExpired, and
// the checks of a write, one named function per row of the rule table in the
// package doc.

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// Create checks a new volume of party, with its awareness key in.Key,
// against the other parties' volumes and stores it in tx. in.State ""
// means accepted; in.Version is ignored.
func (r *Registry) Create(tx store.Volumes, party string, in Input, rl rules.Rules, now time.Time) (Result, error) {
	if in.State == "" {
		in.State = Accepted
	}
	if err := checkRules(rl); err != nil {
		return Result{}, err
	}
	in.Version = ""
	return r.write(tx, party, "", in, rl, now)
}

// Update replaces volume id, whose stored version must be in.Version, with
// in (awareness key in.Key). in.State "" keeps the current state.
func (r *Registry) Update(tx store.Volumes, party, id string, in Input, rl rules.Rules, now time.Time) (Result, error) {
	if id == "" {
		return Result{}, fielderr.Errorf("id", "missing")
	}
	if in.Version == "" {
		return Result{}, fielderr.Errorf("version", "missing: an update names the version it replaces")
	}
	if err := checkRules(rl); err != nil {
		return Result{}, err
	}
	return r.write(tx, party, id, in, rl, now)
}

// SetState moves volume id, whose stored version must be prevVersion, to
// state to; a move to a live state runs the full check with key.
func (r *Registry) SetState(tx store.Volumes, party, id, prevVersion string, to State, key []KeyEntry, rl rules.Rules, now time.Time) (Result, error) {
	if !to.valid() {
		return Result{}, fielderr.Errorf("state", "%q is not one of proposed, accepted, activated, ended, cancelled", to)
	}
	if prevVersion == "" {
		return Result{}, fielderr.Errorf("version", "missing: a state change names the version it replaces")
	}
	if err := checkRules(rl); err != nil {
		return Result{}, err
	}
	rec, err := tx.GetVolume(id)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, ErrNotFound
	} else if err != nil {
		return Result{}, err
	}
	// Another party's volume is refused before it is decoded: decoding
	// compiles the footprint, 13 ms for a corridor of 1,000 positions,
	// which the party asking would not pay for (its budget of volume
	// writes counts its own volumes' positions).
	if rec.Party != party {
		return Result{}, ErrForbidden
	}
	cur, err := Decode(rec)
	if err != nil {
		return Result{}, err
	}
	// The owner first, as in write: the input below is the owner's, and
	// checking it for the caller (its priority against the caller's
	// grant) would tell another party what the volume holds.
	if err := checkOwner(cur, party); err != nil {
		return Result{}, err
	}
	in := Input{Footprint: cur.Footprint, AltLowerM: cur.AltLowerM, AltUpperM: cur.AltUpperM,
		Start: cur.Start, End: cur.End, Priority: cur.Priority, State: to, Details: cur.Details, Key: key, Version: prevVersion, storedBand: true}
	return r.write(tx, party, id, in, stored(rl), now)
}

// checkRules refuses to write under rules the process cannot run with
// (rules.InUse would clamp them: rules stored before their bounds
// existed): a time buffer of 1e15 s would end every volume, or fill the
// index with hour buckets. The service hands the registry the rules in
// use, clamped; rules that fail their validation only for a figure kept
// as agreed (a separation, a name) write as usual. The index clamps the
// buffer to its bound all the same, so that loading stays cheap.
func checkRules(rl rules.Rules) error {
	if err := rl.CheckOperable(); err != nil {
		return fmt.Errorf("volume: the rules handed to the registry are not the rules in use: %w", err)
	}
	return nil
}

// stored relaxes the declaration limits for a volume already stored: a
// state change must not fail because the limits were tightened since.
func stored(rl rules.Rules) rules.Rules {
	rl.MaxVertices = math.MaxInt
	rl.MaxFootprintM = math.Inf(1)
	rl.MaxWindowS = math.Inf(1)
	rl.MaxFootprintAreaM2 = math.Inf(1)
	rl.MaxAltRangeM = math.Inf(1)
	return rl
}

// write runs the rule table of the package doc, row by row, each row a
// named check, then stores the volume naming the version it replaces
// (in.Version, "" for a new one) with the awareness key in.Key.
func (r *Registry) write(tx store.Volumes, party, id string, in Input, rl rules.Rules, now time.Time) (Result, error) {
	prevVersion, key := in.Version, in.Key
	s, err := checkInput(party, in, key, rl)
	if err != nil {
		return Result{}, err
	}
	overlay, err := r.prepare(tx, rl)
	if err != nil {
		return Result{}, err
	}
	var prev *Volume
	from := State("")
	if id != "" {
		if prev, err = r.current(tx, id, overlay); err != nil {
			return Result{}, err
		}
		if err := checkOwner(prev, party); err != nil {
			return Result{}, err
		}
		if err := checkVersion(prev, prevVersion); err != nil {
			return Result{}, err
		}
		from = prev.State
		if in.State == "" {
			in.State = from
		}
	} else {
		id = newToken()
	}
	if err := checkWindow(in, rl, now); err != nil {
		return Result{}, err
	}
	if err := checkTransition(from, in.State); err != nil {
		return Result{}, err
	}
	v := &Volume{
		ID: id, Party: party, Version: newToken(), State: in.State, Priority: in.Priority,
		Footprint: in.Footprint, AltLowerM: in.AltLowerM, AltUpperM: in.AltUpperM,
		Start: in.Start.UTC(), End: in.End.UTC(), Details: in.Details, Conflicts: []Ref{}, shape: s,
	}
	if err := r.checkPartyLimits(v, prev, overlay); err != nil {
		return Result{}, err
	}
	var conflicts []Volume
	if v.State.Live() {
		found := r.conflicts(v, overlay)
		if err := judge(v, found, key, rl); err != nil {
			return Result{}, err
		}
		for _, c := range found {
			v.Conflicts = append(v.Conflicts, c.Ref())
			conflicts = append(conflicts, c.Reduced())
		}
	}
	rec, err := v.record()
	if err != nil {
		return Result{}, err
	}
	seq, err := tx.PutVolume(rec, prevVersion)
	if errors.Is(err, store.ErrConflict) {
		return Result{}, fmt.Errorf("%w: %s was changed concurrently", ErrStaleVersion, id)
	} else if err != nil {
		return Result{}, fmt.Errorf("volume: storing: %w", err)
	}
	v.ChangeSeq = seq
	if prev != nil {
		cp := *prev // the registry's copy may be shared: hand out a copy
		prev = &cp
	}
	return Result{Volume: *v, Previous: prev, Conflicts: conflicts}, nil
}

// current reads the stored state of volume id, as this transaction sees it.
func (r *Registry) current(tx store.Volumes, id string, overlay map[string]*Volume) (*Volume, error) {
	rec, err := tx.GetVolume(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	return r.decodeKnown(rec, overlay)
}

// checkInput is the first row of the rule table: bad input, or a priority
// above what the rules grant the party, is refused before anything is read.
// It returns the compiled footprint.
func checkInput(party string, in Input, key []KeyEntry, rl rules.Rules) (*shape, error) {
	if party == "" {
		return nil, fielderr.Errorf("party", "missing")
	}
	s, err := in.compile(rl)
	if err != nil {
		return nil, err
	}
	if err := checkPriority(in, party, rl); err != nil {
		return nil, err
	}
	for i, k := range key {
		if k.ID == "" || k.Version == "" {
			return nil, fielderr.Errorf(fmt.Sprintf("key[%d]", i), "needs both id and version")
		}
	}
	return s, nil
}

// checkOwner is the second row: a party writes only its own volumes.
func checkOwner(prev *Volume, party string) error {
	if prev.Party != party {
		return ErrForbidden
	}
	return nil
}

// checkVersion is the third row: a write names the version it replaces,
// and a stale one is refused, never merged.
func checkVersion(prev *Volume, prevVersion string) error {
	if prev.Version != prevVersion {
		return fmt.Errorf("%w: %s is at version %s, not %s", ErrStaleVersion, prev.ID, prev.Version, prevVersion)
	}
	return nil
}

// checkWindow belongs to the first row too, but needs the state the write
// ends in: a live volume whose window (plus the time buffer) is already
// over is bad input.
func checkWindow(in Input, rl rules.Rules, now time.Time) error {
	if in.State.Live() && !now.Before(in.End.Add(rl.TimeBuffer())) {
		return fielderr.Errorf("end", "the window is already over at %s", now.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkTransition is the fourth row: the state change must be in the
// transition table of the package doc.
func checkTransition(from, to State) error {
	if !CanTransition(from, to) {
		return fmt.Errorf("%w: %s -> %s", ErrIllegalTransition, displayState(from), to)
	}
	return nil
}

func displayState(s State) string {
	if s == "" {
		return "(new)"
	}
	return string(s)
}

// conflicts is the index's answer corrected by the overlay: the overlay's
// state of a volume replaces the index's.
func (r *Registry) conflicts(v *Volume, overlay map[string]*Volume) []*Volume {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*Volume
	for _, o := range r.idx.Conflicts(v) {
		if _, ok := overlay[o.ID]; !ok {
			out = append(out, o)
		}
	}
	for _, o := range overlay {
		if conflict(v, o, r.idx.p) {
			out = append(out, o)
		}
	}
	sortByID(out)
	return out
}

// checkPriority refuses a live volume whose priority the rules do not
// grant its party. An end or a cancellation is never refused for it.
func checkPriority(in Input, party string, rl rules.Rules) error {
	if in.State != "" && !in.State.Live() {
		return nil
	}
	switch maxP := rl.MaxPriorityFor(party); {
	case in.Priority < 0:
		return fielderr.Errorf("priority", "must be 0 or more, got %d", in.Priority)
	case in.Priority > maxP:
		return fielderr.Errorf("priority", "%d is above %d, the highest the rules grant %s", in.Priority, maxP, party)
	}
	return nil
}

// effectivePriority is v's priority as far as the rules in force still
// grant it to its party: a volume written under earlier rules keeps its
// stored priority, but does not outrank others beyond what is agreed now.
func effectivePriority(v *Volume, rl rules.Rules) int {
	return min(v.Priority, rl.MaxPriorityFor(v.Party))
}

// judge is the rest of the rule table (missing key, higher priority, an
// activated volume in conflict), applied to the conflicts found.
func judge(v *Volume, found []*Volume, key []KeyEntry, rl rules.Rules) error {
	known := make(map[string]string, len(key))
	for _, k := range key {
		known[k.ID] = k.Version
	}
	var missing, higher []Volume
	for _, c := range found {
		if known[c.ID] != c.Version {
			missing = append(missing, c.Reduced())
		}
		if effectivePriority(c, rl) > effectivePriority(v, rl) {
			higher = append(higher, c.Reduced())
		}
	}
	switch {
	case len(missing) > 0:
		return &MissingKeyError{Missing: missing}
	case len(higher) > 0:
		return &PriorityError{Higher: higher}
	case len(found) > 0 && v.State == Activated:
		return ErrActivatedConflict
	}
	return nil
}

// EndExpired ends, in tx, every live volume whose window plus the time
// buffer is over at now. The caller emits the results' events and, after
// the commit, hands them to Apply.
func (r *Registry) EndExpired(tx store.Volumes, rl rules.Rules, now time.Time) ([]Result, error) {
	if err := checkRules(rl); err != nil {
		return nil, err
	}
	overlay, err := r.prepare(tx, rl)
	if err != nil {
		return nil, err
	}
	buf := rl.TimeBuffer()
	expired := func(v *Volume) bool { return v.State.Live() && !now.Before(v.End.Add(buf)) }
	var due []*Volume
	r.mu.RLock()
	for _, byID := range r.live {
		for _, v := range byID {
			if _, ok := overlay[v.ID]; !ok && expired(v) {
				due = append(due, v)
			}
		}
	}
	r.mu.RUnlock()
	for _, v := range overlay {
		if expired(v) {
			due = append(due, v)
		}
	}
	sortByID(due)
	var out []Result
	for _, old := range due {
		v := *old
		v.Version = newToken()
		v.State = Ended
		rec, err := v.record()
		if err != nil {
			return nil, err
		}
		seq, err := tx.PutVolume(rec, old.Version)
		if err != nil {
			return nil, fmt.Errorf("volume: ending %s: %w", old.ID, err)
		}
		v.ChangeSeq = seq
		prev := *old
		out = append(out, Result{Volume: v, Previous: &prev})
	}
	return out, nil
}
