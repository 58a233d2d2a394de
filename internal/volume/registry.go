package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// catchUpBatch is how many changed volumes one store read returns.
const catchUpBatch = 1000

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
}

// NewRegistry returns an empty registry; call Load to fill it from the store.
func NewRegistry(rl rules.Rules) *Registry {
	return &Registry{idx: NewIndex(rl), all: map[string]*Volume{}, live: map[string]map[string]*Volume{}, decoded: map[string]*Volume{}}
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

// Load rebuilds the index from the store (at start, or to resynchronise).
// Call it in a read-only transaction (View): it takes everything it reads
// as committed.
func (r *Registry) Load(tx store.Volumes) error {
	r.mu.Lock()
	r.idx = NewIndex(rulesOf(r.idx.p))
	r.all = map[string]*Volume{}
	r.live = map[string]map[string]*Volume{}
	r.lastSeq = 0
	clear(r.decoded)
	r.mu.Unlock()
	_, err := r.catchUp(tx, true)
	return err
}

// Sync brings the index up to date with what the store has committed; call
// it in a read-only transaction (View). A replica's reads (Get, Query,
// Conforms) see other replicas' writes only after a Sync or its own next
// write, and a periodic Sync also keeps the catch-up of writes short when
// group commit keeps some of them uncertain; call it every few seconds.
func (r *Registry) Sync(tx store.Volumes) error {
	_, err := r.catchUp(tx, true)
	return err
}

// rulesOf rebuilds the rule fields the index depends on.
func rulesOf(p params) rules.Rules {
	rl := rules.Default()
	rl.HorizontalSepM = p.sepM
	rl.VerticalSepM = p.vsepM
	rl.TimeBufferS = float64(p.bufNs) / 1e9
	rl.MaxVertices = p.maxVert
	rl.MaxFootprintM = p.maxWM
	return rl
}

// catchUp reads every volume the store changed since the index's last
// change. In a read-only transaction (committed is true) everything it reads
// is committed and goes into the index. Inside a write, the store may be
// running several Updates in one transaction (group commit), so what it reads
// can include writes that will still roll back: only changes at or below the
// highest sequence known to be committed (from Apply) go into the index;
// the others are returned as the overlay, by id, for this transaction's
// check alone, and the index's position only advances when nothing is
// uncertain.
func (r *Registry) catchUp(tx store.Volumes, committed bool) (map[string]*Volume, error) {
	r.mu.RLock()
	since, known, idx := r.lastSeq, r.committedSeq, r.idx
	r.mu.RUnlock()
	var unsure []*Volume
	var lastSure int64 // 0: nothing applied
	err := r.readChanges(tx, since, committed, idx, func(b *changeBatch) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, v := range b.vols {
			if !committed && v.ChangeSeq > known {
				unsure = append(unsure, v)
				continue
			}
			cells := b.cells[i]
			if r.idx != idx {
				// The rules changed meanwhile: the cells were
				// computed for the old index.
				cells = nil
			}
			r.apply(v, cells)
			lastSure = v.ChangeSeq
		}
	})
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(unsure) == 0 && lastSure > 0 {
		r.lastSeq = max(r.lastSeq, lastSure)
		clear(r.decoded)
	}
	overlay := make(map[string]*Volume, len(unsure))
	for _, v := range unsure {
		overlay[v.ID] = v
	}
	return overlay, nil
}

// changeBatch is one read of changed volumes, decoded, with the index cells
// of each live one (nil for the others).
type changeBatch struct {
	recs  []store.Volume
	vols  []*Volume
	cells [][]s2.CellID
	err   error
	done  chan struct{} // closed once decoded
}

// readChanges reads the changes after since in batches, decodes them and
// hands each batch to use, in the store's order. Decoding and covering are
// most of the cost of a Load (100,000 volumes at start), so once a read
// comes back full, one goroutine reads the store, one worker per CPU
// decodes, and use (the index insert, which is serial) runs here on the
// batches as they are ready. A batch that fails to decode stops the reading
// and is returned; the batches before it have been used.
func (r *Registry) readChanges(tx store.Volumes, since int64, committed bool, idx *Index, use func(*changeBatch)) error {
	first, err := tx.VolumesChangedSince(since, catchUpBatch)
	if err != nil {
		return fmt.Errorf("volume: reading changes: %w", err)
	}
	if len(first) < catchUpBatch {
		// The usual catch-up of a write: a few changes, no workers.
		b := &changeBatch{recs: first}
		r.decodeBatch(b, committed, idx)
		if b.err != nil {
			return b.err
		}
		use(b)
		return nil
	}
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *changeBatch)
	// The bound on batches in flight keeps the memory of a Load to a few
	// batches beyond the index itself.
	ordered := make(chan *changeBatch, 2*workers)
	var failed atomic.Bool
	var readErr error
	go func() {
		defer close(ordered)
		defer close(work)
		recs := first
		for !failed.Load() {
			b := &changeBatch{recs: recs, done: make(chan struct{})}
			ordered <- b
			work <- b
			if len(recs) < catchUpBatch {
				return
			}
			if recs, readErr = tx.VolumesChangedSince(recs[len(recs)-1].ChangeSeq, catchUpBatch); readErr != nil {
				readErr = fmt.Errorf("volume: reading changes: %w", readErr)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				r.decodeBatch(b, committed, idx)
				close(b.done)
			}
		}()
	}
	for b := range ordered {
		<-b.done
		if err == nil && b.err != nil {
			err = b.err
			failed.Store(true)
		}
		if err == nil {
			use(b)
		}
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return readErr
}

// decodeBatch decodes b.recs and covers each live volume for idx. Stored
// volumes were validated when written, so Decode does not check the limits
// again.
func (r *Registry) decodeBatch(b *changeBatch, committed bool, idx *Index) {
	b.vols = make([]*Volume, len(b.recs))
	b.cells = make([][]s2.CellID, len(b.recs))
	for i, rec := range b.recs {
		var v *Volume
		var err error
		if committed {
			// Everything read is final and applied at once: the cache
			// of uncertain decodings has nothing to gain.
			v, err = Decode(rec)
		} else {
			v, err = r.decodeCached(rec)
		}
		if err != nil {
			b.err = err
			return
		}
		b.vols[i] = v
		if v.State.Live() {
			b.cells[i] = idx.grownCovering(v.shape)
		}
	}
	b.recs = nil
}

// decodeKnown decodes a stored volume, or takes the registry's copy of the
// same change when it has one.
func (r *Registry) decodeKnown(rec store.Volume, overlay map[string]*Volume) (*Volume, error) {
	if v, ok := overlay[rec.ID]; ok && v.ChangeSeq == rec.ChangeSeq && v.Version == rec.Version {
		return v, nil
	}
	r.mu.RLock()
	v, ok := r.all[rec.ID]
	r.mu.RUnlock()
	if ok && v.ChangeSeq == rec.ChangeSeq && v.Version == rec.Version {
		return v, nil
	}
	return Decode(rec)
}

// decodeCached decodes a stored volume, reusing the decoding of the same
// version: inside a group commit the same uncommitted changes are read by
// every write of the batch.
func (r *Registry) decodeCached(rec store.Volume) (*Volume, error) {
	k := rec.ID + "@" + rec.Version
	r.mu.RLock()
	v, ok := r.decoded[k]
	r.mu.RUnlock()
	if ok && v.ChangeSeq == rec.ChangeSeq {
		return v, nil
	}
	v, err := Decode(rec)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.decoded[k] = v
	r.mu.Unlock()
	return v, nil
}

// apply records one committed state of a volume; older states than the one
// held are ignored, so applying twice or out of order is harmless.
// cells are v's grown covering for r.idx, or nil to compute them.
func (r *Registry) apply(v *Volume, cells []s2.CellID) {
	if old, ok := r.all[v.ID]; ok && old.ChangeSeq >= v.ChangeSeq {
		return
	}
	r.all[v.ID] = v
	r.idx.put(v, cells)
	if v.State.Live() {
		if r.live[v.Party] == nil {
			r.live[v.Party] = map[string]*Volume{}
		}
		r.live[v.Party][v.ID] = v
	} else {
		delete(r.live[v.Party], v.ID)
	}
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

// prepare locks the volumes of the store, adopts the rules and catches up;
// it returns the overlay of possibly uncommitted changes (see catchUp).
func (r *Registry) prepare(tx store.Volumes, rl rules.Rules) (map[string]*Volume, error) {
	if err := tx.LockVolumes(); err != nil {
		return nil, fmt.Errorf("volume: locking: %w", err)
	}
	r.mu.Lock()
	if !r.idx.sameRules(rl) {
		idx := NewIndex(rl)
		for _, v := range r.all {
			idx.Put(v)
		}
		r.idx = idx
	}
	r.mu.Unlock()
	return r.catchUp(tx, false)
}

// Create checks a new volume of party against the other parties' volumes
// and stores it in tx. in.State "" means accepted.
func (r *Registry) Create(tx store.Volumes, party string, in Input, key []KeyEntry, rl rules.Rules, now time.Time) (Result, error) {
	if in.State == "" {
		in.State = Accepted
	}
	return r.write(tx, party, "", "", in, key, rl, now)
}

// Update replaces volume id, whose stored version must be prevVersion, with
// in. in.State "" keeps the current state.
func (r *Registry) Update(tx store.Volumes, party, id, prevVersion string, in Input, key []KeyEntry, rl rules.Rules, now time.Time) (Result, error) {
	if id == "" {
		return Result{}, fielderr.Errorf("id", "missing")
	}
	if prevVersion == "" {
		return Result{}, fielderr.Errorf("version", "missing: an update names the version it replaces")
	}
	return r.write(tx, party, id, prevVersion, in, key, rl, now)
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
	rec, err := tx.GetVolume(id)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, ErrNotFound
	} else if err != nil {
		return Result{}, err
	}
	cur, err := Decode(rec)
	if err != nil {
		return Result{}, err
	}
	in := Input{Footprint: cur.Footprint, AltLowerM: cur.AltLowerM, AltUpperM: cur.AltUpperM,
		Start: cur.Start, End: cur.End, Priority: cur.Priority, State: to, Details: cur.Details}
	return r.write(tx, party, id, prevVersion, in, key, stored(rl), now)
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

func (r *Registry) write(tx store.Volumes, party, id, prevVersion string, in Input, key []KeyEntry, rl rules.Rules, now time.Time) (Result, error) {
	if party == "" {
		return Result{}, fielderr.Errorf("party", "missing")
	}
	s, err := in.compile(rl)
	if err != nil {
		return Result{}, err
	}
	if err := checkPriority(in, party, rl); err != nil {
		return Result{}, err
	}
	for i, k := range key {
		if k.ID == "" || k.Version == "" {
			return Result{}, fielderr.Errorf(fmt.Sprintf("key[%d]", i), "needs both id and version")
		}
	}
	overlay, err := r.prepare(tx, rl)
	if err != nil {
		return Result{}, err
	}
	var prev *Volume
	from := State("")
	if id != "" {
		rec, err := tx.GetVolume(id)
		if errors.Is(err, store.ErrNotFound) {
			return Result{}, ErrNotFound
		} else if err != nil {
			return Result{}, err
		}
		if prev, err = r.decodeKnown(rec, overlay); err != nil {
			return Result{}, err
		}
		if prev.Party != party {
			return Result{}, ErrForbidden
		}
		if prev.Version != prevVersion {
			return Result{}, fmt.Errorf("%w: %s is at version %s, not %s", ErrStaleVersion, id, prev.Version, prevVersion)
		}
		from = prev.State
		if in.State == "" {
			in.State = from
		}
	} else {
		id = newToken()
	}
	if in.State.Live() && !now.Before(in.End.Add(rl.TimeBuffer())) {
		return Result{}, fielderr.Errorf("end", "the window is already over at %s", now.UTC().Format(time.RFC3339))
	}
	if !CanTransition(from, in.State) {
		return Result{}, fmt.Errorf("%w: %s -> %s", ErrIllegalTransition, displayState(from), in.State)
	}
	v := &Volume{
		ID: id, Party: party, Version: newToken(), State: in.State, Priority: in.Priority,
		Footprint: in.Footprint, AltLowerM: in.AltLowerM, AltUpperM: in.AltUpperM,
		Start: in.Start.UTC(), End: in.End.UTC(), Details: in.Details, Conflicts: []Ref{}, shape: s,
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

// judge applies the rule table of the package doc to the conflicts found.
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

// Get returns volume id as viewer sees it (reduced unless viewer owns it).
func (r *Registry) Get(viewer, id string) (Volume, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.all[id]
	if !ok {
		return Volume{}, ErrNotFound
	}
	return v.ViewFor(viewer), nil
}

// Query returns the live volumes of all parties whose footprint meets area
// (nil: anywhere), whose band meets [lowerM, upperM] and whose window meets
// [from, to], each as viewer sees it, sorted by id.
func (r *Registry) Query(viewer string, area *Footprint, lowerM, upperM float64, from, to time.Time) ([]Volume, error) {
	var a *region
	if area != nil {
		s, err := compile(*area, math.MaxInt, math.Inf(1))
		if err != nil {
			return nil, err
		}
		a = shapeArea(s)
	}
	return r.query(viewer, a, lowerM, upperM, from, to), nil
}

// QueryBox is Query over a latitude/longitude box, the bbox of the API:
// minLonDeg > maxLonDeg crosses the antimeridian, and a box spanning every
// longitude is a band of latitudes. Unlike a polygon, the box's north and
// south sides follow the parallels.
func (r *Registry) QueryBox(viewer string, minLonDeg, minLatDeg, maxLonDeg, maxLatDeg, lowerM, upperM float64, from, to time.Time) ([]Volume, error) {
	b, err := newBox(minLonDeg, minLatDeg, maxLonDeg, maxLatDeg)
	if err != nil {
		return nil, err
	}
	return r.query(viewer, b.region(), lowerM, upperM, from, to), nil
}

func (r *Registry) query(viewer string, a *region, lowerM, upperM float64, from, to time.Time) []Volume {
	r.mu.RLock()
	defer r.mu.RUnlock()
	found := r.idx.query(a, lowerM, upperM, from.UnixNano(), to.UnixNano())
	out := make([]Volume, len(found))
	for i, v := range found {
		out[i] = v.ViewFor(viewer)
	}
	return out
}

// Conforms is the conformance check of the tactical side: whether a
// position of party at t lies inside one of the party's active volumes
// (footprint and altitude band). applies is false when the party has no
// active volume at t, in which case conforming is meaningless (false).
// Active means activated, or accepted, with t inside the window: a party
// that flies what it declared and agreed is conforming even if it did not
// activate, since activation is a formality the parties may skip.
func (r *Registry) Conforms(party string, pos geo.LLA, t time.Time) (conforming, applies bool) {
	tNs := t.UnixNano()
	p := s2.PointFromLatLng(s2.LatLngFromDegrees(pos.LatDeg, pos.LonDeg))
	altM := pos.AltM
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.idx.conformsAt(party, p, altM, tNs) {
		return true, true
	}
	for _, v := range r.live[party] {
		if active(v, tNs) {
			return false, true
		}
	}
	return false, false
}

// AppendEvents appends the events of the write to the store's event stream
// in the write's own transaction: volume_changed to the owner (data: the
// full volume) and one volume_conflict per conflicting volume to both
// parties (data: {"volumes":[this, other]}, both reduced).
func (res Result) AppendEvents(tx store.Events, now time.Time) error {
	evs, err := res.events(now)
	if err != nil {
		return err
	}
	for _, e := range evs {
		if _, err := tx.AppendEvent(e); err != nil {
			return err
		}
	}
	return nil
}

func (res Result) events(now time.Time) ([]store.Event, error) {
	body, err := json.Marshal(res.Volume)
	if err != nil {
		return nil, err
	}
	out := []store.Event{{Time: now, Kind: "volume_changed", Audience: []string{res.Volume.Party}, Body: body}}
	if len(res.Conflicts) == 0 {
		return out, nil
	}
	// The same reduced volume opens every volume_conflict body: encode it
	// once (a write in a busy area may conflict with hundreds).
	self, err := json.Marshal(res.Volume.Reduced())
	if err != nil {
		return nil, err
	}
	for _, c := range res.Conflicts {
		other, err := json.Marshal(c.Reduced())
		if err != nil {
			return nil, err
		}
		body := make([]byte, 0, len(self)+len(other)+16)
		body = append(body, `{"volumes":[`...)
		body = append(body, self...)
		body = append(body, ',')
		body = append(body, other...)
		body = append(body, "]}"...)
		out = append(out, store.Event{Time: now, Kind: "volume_conflict", Audience: []string{res.Volume.Party, c.Party}, Body: body})
	}
	return out, nil
}

// ConflictData is the data of a volume_conflict event.
type ConflictData struct {
	Volumes []Volume `json:"volumes"`
}

// record is the stored form of v. The bounding box is that of the
// footprint; it crosses the antimeridian when MinLonDeg > MaxLonDeg.
func (v *Volume) record() (store.Volume, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return store.Volume{}, fmt.Errorf("volume: encoding %s: %w", v.ID, err)
	}
	var rect s2.Rect
	if v.shape.loop == nil {
		rect = v.shape.bound.RectBound()
	} else {
		rect = v.shape.loop.RectBound()
	}
	return store.Volume{
		ID: v.ID, Party: v.Party, Version: v.Version, State: string(v.State), Priority: v.Priority,
		MinLatDeg: rect.Lo().Lat.Degrees(), MinLonDeg: rect.Lo().Lng.Degrees(),
		MaxLatDeg: rect.Hi().Lat.Degrees(), MaxLonDeg: rect.Hi().Lng.Degrees(),
		AltLowerM: v.AltLowerM, AltUpperM: v.AltUpperM, Start: v.Start, End: v.End,
		Body: body,
	}, nil
}

// Decode reads a stored volume back. The declaration limits are not
// checked again: the volume was valid under the rules of its time.
func Decode(rec store.Volume) (*Volume, error) {
	var v Volume
	if err := json.Unmarshal(rec.Body, &v); err != nil {
		return nil, fmt.Errorf("volume: decoding %s: %w", rec.ID, err)
	}
	s, err := compile(v.Footprint, math.MaxInt, math.Inf(1))
	if err != nil {
		return nil, fmt.Errorf("volume: decoding %s: %w", rec.ID, err)
	}
	v.shape = s
	v.ChangeSeq = rec.ChangeSeq
	if v.Conflicts == nil {
		v.Conflicts = []Ref{}
	}
	return &v, nil
}

// newToken returns a random identifier, used for ids and versions: random
// rather than a counter so that replicas never hand out the same one.
func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewVolume compiles an input into a volume outside any store, for
// benchmarks, generators and the tests of other packages. in.State ""
// means accepted.
func NewVolume(id, party string, in Input, rl rules.Rules) (*Volume, error) {
	s, err := in.compile(rl)
	if err != nil {
		return nil, err
	}
	if in.State == "" {
		in.State = Accepted
	}
	return &Volume{
		ID: id, Party: party, Version: newToken(), State: in.State, Priority: in.Priority,
		Footprint: in.Footprint, AltLowerM: in.AltLowerM, AltUpperM: in.AltUpperM,
		Start: in.Start.UTC(), End: in.End.UTC(), Details: in.Details, Conflicts: []Ref{}, shape: s,
	}, nil
}
