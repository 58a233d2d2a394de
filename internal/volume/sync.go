package volume

// This file keeps the registry's cache in step with the store: Load, Sync,
// the catch-up inside a write, and the decoding of what it reads.

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// catchUpBatch is how many changed volumes one store read returns.
const catchUpBatch = 1000

// Load rebuilds the index from the store (at start, or to resynchronise).
// Call it in a read-only transaction (View): it takes everything it reads
// as committed.
func (r *Registry) Load(tx store.Volumes) error {
	r.mu.Lock()
	r.idx = NewIndex(rulesOf(r.idx.p))
	r.all = map[string]*Volume{}
	r.live = map[string]map[string]*Volume{}
	r.livePositions = map[string]int{}
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
	if held, ok := r.live[v.Party][v.ID]; ok {
		r.livePositions[v.Party] -= held.Footprint.Positions()
	}
	if v.State.Live() {
		if r.live[v.Party] == nil {
			r.live[v.Party] = map[string]*Volume{}
		}
		r.live[v.Party][v.ID] = v
		r.livePositions[v.Party] += v.Footprint.Positions()
	} else {
		delete(r.live[v.Party], v.ID)
	}
	if r.observe != nil {
		r.observe(v)
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
