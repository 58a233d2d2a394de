package volume

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/deconflict/deconflict/internal/store"
)

// volumeTx is what the registry's writes need of a transaction: the volumes
// role, and the events role for Result.AppendEvents.
type volumeTx interface {
	store.Volumes
	store.Events
}

// txStore runs transactions offering volumeTx: the tests run on the fake
// below and on the real stores through realStore.
type txStore interface {
	Update(ctx context.Context, fn func(volumeTx) error) error
	View(ctx context.Context, fn func(volumeTx) error) error
}

// realStore runs the tests on a real store.
type realStore struct{ st store.Store }

func (s realStore) Update(ctx context.Context, fn func(volumeTx) error) error {
	return s.st.Update(ctx, func(tx store.Tx) error { return fn(tx) })
}

func (s realStore) View(ctx context.Context, fn func(volumeTx) error) error {
	return s.st.View(ctx, func(tx store.Tx) error { return fn(tx) })
}

// fakeStore is a small in-memory txStore for the tests of this package:
// one writer at a time, and a transaction works on a copy that replaces the
// state only when fn returns nil, so rollbacks really roll back.
type fakeStore struct {
	mu    sync.Mutex
	state fakeState
}

type fakeState struct {
	volumes map[string]store.Volume
	seq     int64
	events  []store.Event
}

func newFakeStore() *fakeStore {
	return &fakeStore{state: fakeState{volumes: map[string]store.Volume{}}}
}

func (s fakeState) clone() fakeState {
	return fakeState{volumes: maps.Clone(s.volumes), seq: s.seq, events: slices.Clone(s.events)}
}

func (f *fakeStore) Update(ctx context.Context, fn func(volumeTx) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tx := &fakeTx{st: f.state.clone(), write: true}
	if err := fn(tx); err != nil {
		return err
	}
	f.state = tx.st
	return nil
}

func (f *fakeStore) View(ctx context.Context, fn func(volumeTx) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fn(&fakeTx{st: f.state.clone()})
}

var errReadOnly = errors.New("fake store: write in a read-only transaction")

type fakeTx struct {
	st    fakeState
	write bool
}

func (t *fakeTx) LockVolumes() error {
	if !t.write {
		return errReadOnly
	}
	return nil // Update already runs one transaction at a time.
}

func (t *fakeTx) PutVolume(v store.Volume, prevVersion string) (int64, error) {
	if !t.write {
		return 0, errReadOnly
	}
	cur, ok := t.st.volumes[v.ID]
	if (prevVersion == "" && ok) || (prevVersion != "" && (!ok || cur.Version != prevVersion)) {
		return 0, store.ErrConflict
	}
	t.st.seq++
	v.ChangeSeq = t.st.seq
	v.Body = slices.Clone(v.Body)
	t.st.volumes[v.ID] = v
	return v.ChangeSeq, nil
}

func (t *fakeTx) GetVolume(id string) (store.Volume, error) {
	v, ok := t.st.volumes[id]
	if !ok {
		return store.Volume{}, store.ErrNotFound
	}
	return v, nil
}

func (t *fakeTx) VolumesChangedSince(seq int64, limit int) ([]store.Volume, error) {
	var out []store.Volume
	for _, v := range t.st.volumes {
		if v.ChangeSeq > seq {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ChangeSeq < out[j].ChangeSeq })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (t *fakeTx) AppendEvent(e store.Event) (int64, error) {
	if !t.write {
		return 0, errReadOnly
	}
	e.ID = int64(len(t.st.events)) + 1
	t.st.events = append(t.st.events, e)
	return e.ID, nil
}

func (t *fakeTx) EventsAfter(afterID int64, limit int) ([]store.Event, error) {
	var out []store.Event
	for _, e := range t.st.events {
		if e.ID > afterID && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (t *fakeTx) LastEventID() (int64, error) { return int64(len(t.st.events)), nil }

var _ txStore = (*fakeStore)(nil)
