package volume

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// fakeStore is a small in-memory store.Store for the tests of this package:
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
	meta    map[string][]byte
}

func newFakeStore() *fakeStore {
	return &fakeStore{state: fakeState{volumes: map[string]store.Volume{}, meta: map[string][]byte{}}}
}

func (s fakeState) clone() fakeState {
	c := fakeState{volumes: make(map[string]store.Volume, len(s.volumes)), seq: s.seq,
		events: slices.Clone(s.events), meta: map[string][]byte{}}
	for k, v := range s.volumes {
		c.volumes[k] = v
	}
	for k, v := range s.meta {
		c.meta[k] = v
	}
	return c
}

func (f *fakeStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tx := &fakeTx{st: f.state.clone(), write: true}
	if err := fn(tx); err != nil {
		return err
	}
	f.state = tx.st
	return nil
}

func (f *fakeStore) View(ctx context.Context, fn func(store.Tx) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fn(&fakeTx{st: f.state.clone()})
}

func (f *fakeStore) Close() error { return nil }

var errFakeUnsupported = errors.New("fake store: not used by package volume")
var errReadOnly = errors.New("fake store: write in a read-only transaction")

type fakeTx struct {
	st    fakeState
	write bool
}

func (t *fakeTx) CreateParty(store.Party) error           { return errFakeUnsupported }
func (t *fakeTx) UpdateParty(store.Party) error           { return errFakeUnsupported }
func (t *fakeTx) PartyByName(string) (store.Party, error) { return store.Party{}, errFakeUnsupported }
func (t *fakeTx) ListParties() ([]store.Party, error)     { return nil, errFakeUnsupported }
func (t *fakeTx) PutCredential(store.Credential) error    { return errFakeUnsupported }
func (t *fakeTx) CredentialByHash([]byte) (store.Credential, error) {
	return store.Credential{}, errFakeUnsupported
}
func (t *fakeTx) ListCredentials(string) ([]store.Credential, error) { return nil, errFakeUnsupported }
func (t *fakeTx) PutRules(store.RulesRecord) error                   { return errFakeUnsupported }
func (t *fakeTx) LatestRules() (store.RulesRecord, error) {
	return store.RulesRecord{}, errFakeUnsupported
}
func (t *fakeTx) AppendAudit(store.AuditRecord) error { return errFakeUnsupported }
func (t *fakeTx) LastAudit() (store.AuditRecord, error) {
	return store.AuditRecord{}, errFakeUnsupported
}
func (t *fakeTx) AuditFrom(int64, int) ([]store.AuditRecord, error) { return nil, errFakeUnsupported }
func (t *fakeTx) PutCheckpoint(store.Checkpoint) error              { return errFakeUnsupported }
func (t *fakeTx) CheckpointsFrom(int64) ([]store.Checkpoint, error) { return nil, errFakeUnsupported }
func (t *fakeTx) PutMessage(store.Message) error                    { return errFakeUnsupported }
func (t *fakeTx) GetMessage(string) (store.Message, error) {
	return store.Message{}, errFakeUnsupported
}
func (t *fakeTx) OpenMessagesDue(time.Time, int) ([]store.Message, error) {
	return nil, errFakeUnsupported
}
func (t *fakeTx) MessagesFor(string, string, time.Time, int) ([]store.Message, error) {
	return nil, errFakeUnsupported
}
func (t *fakeTx) PutAck(store.Ack) (bool, error)      { return false, errFakeUnsupported }
func (t *fakeTx) AcksFor(string) ([]store.Ack, error) { return nil, errFakeUnsupported }

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

func (t *fakeTx) GetMeta(key string) ([]byte, error) {
	v, ok := t.st.meta[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (t *fakeTx) PutMeta(key string, value []byte) error {
	if !t.write {
		return errReadOnly
	}
	t.st.meta[key] = slices.Clone(value)
	return nil
}

var _ store.Store = (*fakeStore)(nil)
