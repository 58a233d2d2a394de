package api

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// memStore is a small in-memory store.Store for the tests of this package:
// one big lock, and a copy of the state to roll back to on error.
type memStore struct {
	mu sync.Mutex
	s  memState
}

type memState struct {
	parties  map[string]store.Party
	creds    map[string]store.Credential
	rules    []store.RulesRecord
	volumes  map[string]store.Volume
	volSeq   int64
	events   []store.Event
	audit    []store.AuditRecord
	checks   []store.Checkpoint
	messages map[string]store.Message
	msgOrder []string
	acks     map[string][]store.Ack
	meta     map[string][]byte
}

func newMemStore() *memStore {
	return &memStore{s: memState{
		parties: map[string]store.Party{}, creds: map[string]store.Credential{},
		volumes: map[string]store.Volume{}, messages: map[string]store.Message{},
		acks: map[string][]store.Ack{}, meta: map[string][]byte{},
	}}
}

func (s memState) clone() memState {
	c := s
	c.parties = maps.Clone(s.parties)
	c.creds = maps.Clone(s.creds)
	c.rules = slices.Clone(s.rules)
	c.volumes = maps.Clone(s.volumes)
	c.events = slices.Clone(s.events)
	c.audit = slices.Clone(s.audit)
	c.checks = slices.Clone(s.checks)
	c.messages = maps.Clone(s.messages)
	c.msgOrder = slices.Clone(s.msgOrder)
	c.acks = maps.Clone(s.acks)
	for k, v := range c.acks {
		c.acks[k] = slices.Clone(v)
	}
	c.meta = maps.Clone(s.meta)
	return c
}

func (m *memStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	saved := m.s.clone()
	if err := fn(&memTx{s: &m.s, write: true}); err != nil {
		m.s = saved
		return err
	}
	return nil
}

func (m *memStore) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(&memTx{s: &m.s})
}

func (m *memStore) Close() error { return nil }

type memTx struct {
	s     *memState
	write bool
}

var errReadOnly = errors.New("memstore: write in View")

func (t *memTx) w() error {
	if !t.write {
		return errReadOnly
	}
	return nil
}

func (t *memTx) CreateParty(p store.Party) error {
	if err := t.w(); err != nil {
		return err
	}
	if _, ok := t.s.parties[p.Name]; ok {
		return store.ErrConflict
	}
	t.s.parties[p.Name] = p
	return nil
}

func (t *memTx) UpdateParty(p store.Party) error {
	if err := t.w(); err != nil {
		return err
	}
	if _, ok := t.s.parties[p.Name]; !ok {
		return store.ErrNotFound
	}
	t.s.parties[p.Name] = p
	return nil
}

func (t *memTx) PartyByName(name string) (store.Party, error) {
	p, ok := t.s.parties[name]
	if !ok {
		return p, store.ErrNotFound
	}
	return p, nil
}

func (t *memTx) ListParties() ([]store.Party, error) {
	out := slices.Collect(maps.Values(t.s.parties))
	slices.SortFunc(out, func(a, b store.Party) int { return bytes.Compare([]byte(a.Name), []byte(b.Name)) })
	return out, nil
}

func (t *memTx) PutCredential(c store.Credential) error {
	if err := t.w(); err != nil {
		return err
	}
	t.s.creds[string(c.TokenHash)] = c
	return nil
}

func (t *memTx) CredentialByHash(h []byte) (store.Credential, error) {
	c, ok := t.s.creds[string(h)]
	if !ok {
		return c, store.ErrNotFound
	}
	return c, nil
}

func (t *memTx) ListCredentials(party string) ([]store.Credential, error) {
	var out []store.Credential
	for _, c := range t.s.creds {
		if c.Party == party {
			out = append(out, c)
		}
	}
	return out, nil
}

func (t *memTx) PutRules(r store.RulesRecord) error {
	if err := t.w(); err != nil {
		return err
	}
	if r.Version != int64(len(t.s.rules))+1 {
		return store.ErrConflict
	}
	t.s.rules = append(t.s.rules, r)
	return nil
}

func (t *memTx) LatestRules() (store.RulesRecord, error) {
	if len(t.s.rules) == 0 {
		return store.RulesRecord{}, store.ErrNotFound
	}
	return t.s.rules[len(t.s.rules)-1], nil
}

func (t *memTx) LockVolumes() error { return t.w() }

func (t *memTx) PutVolume(v store.Volume, prev string) (int64, error) {
	if err := t.w(); err != nil {
		return 0, err
	}
	old, ok := t.s.volumes[v.ID]
	if (prev == "" && ok) || (prev != "" && (!ok || old.Version != prev)) {
		return 0, store.ErrConflict
	}
	t.s.volSeq++
	v.ChangeSeq = t.s.volSeq
	t.s.volumes[v.ID] = v
	return v.ChangeSeq, nil
}

func (t *memTx) GetVolume(id string) (store.Volume, error) {
	v, ok := t.s.volumes[id]
	if !ok {
		return v, store.ErrNotFound
	}
	return v, nil
}

func (t *memTx) VolumesChangedSince(seq int64, limit int) ([]store.Volume, error) {
	var out []store.Volume
	for _, v := range t.s.volumes {
		if v.ChangeSeq > seq {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b store.Volume) int { return int(a.ChangeSeq - b.ChangeSeq) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (t *memTx) AppendEvent(e store.Event) (int64, error) {
	if err := t.w(); err != nil {
		return 0, err
	}
	e.ID = int64(len(t.s.events)) + 1
	t.s.events = append(t.s.events, e)
	return e.ID, nil
}

func (t *memTx) EventsAfter(after int64, limit int) ([]store.Event, error) {
	if after < 0 {
		after = 0
	}
	if after >= int64(len(t.s.events)) {
		return nil, nil
	}
	out := t.s.events[after:]
	if len(out) > limit {
		out = out[:limit]
	}
	return slices.Clone(out), nil
}

func (t *memTx) LastEventID() (int64, error) { return int64(len(t.s.events)), nil }

func (t *memTx) AppendAudit(r store.AuditRecord) error {
	if err := t.w(); err != nil {
		return err
	}
	if r.Seq != int64(len(t.s.audit))+1 {
		return store.ErrConflict
	}
	t.s.audit = append(t.s.audit, r)
	return nil
}

func (t *memTx) LastAudit() (store.AuditRecord, error) {
	if len(t.s.audit) == 0 {
		return store.AuditRecord{}, store.ErrNotFound
	}
	return t.s.audit[len(t.s.audit)-1], nil
}

func (t *memTx) AuditFrom(seq int64, limit int) ([]store.AuditRecord, error) {
	var out []store.AuditRecord
	for _, r := range t.s.audit {
		if r.Seq >= seq && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (t *memTx) PutCheckpoint(c store.Checkpoint) error {
	if err := t.w(); err != nil {
		return err
	}
	t.s.checks = append(t.s.checks, c)
	return nil
}

func (t *memTx) CheckpointsFrom(seq int64) ([]store.Checkpoint, error) {
	var out []store.Checkpoint
	for _, c := range t.s.checks {
		if c.Seq >= seq {
			out = append(out, c)
		}
	}
	return out, nil
}

func (t *memTx) PutMessage(m store.Message) error {
	if err := t.w(); err != nil {
		return err
	}
	if _, ok := t.s.messages[m.ID]; !ok {
		t.s.msgOrder = append(t.s.msgOrder, m.ID)
	}
	t.s.messages[m.ID] = m
	return nil
}

func (t *memTx) GetMessage(id string) (store.Message, error) {
	m, ok := t.s.messages[id]
	if !ok {
		return m, store.ErrNotFound
	}
	return m, nil
}

func (t *memTx) MessagesFor(party, thread string, since time.Time, limit int) ([]store.Message, error) {
	var out []store.Message
	for _, id := range t.s.msgOrder {
		m := t.s.messages[id]
		if (m.From == party || slices.Contains(m.To, party)) && (thread == "" || m.Thread == thread) && !m.Created.Before(since) && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

func (t *memTx) OpenMessagesDue(at time.Time, limit int) ([]store.Message, error) {
	var out []store.Message
	for _, id := range t.s.msgOrder {
		m := t.s.messages[id]
		if (m.State == "open" || m.State == "escalated") && !m.Deadline.After(at) && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

func (t *memTx) PutAck(a store.Ack) (bool, error) {
	if err := t.w(); err != nil {
		return false, err
	}
	for _, x := range t.s.acks[a.MessageID] {
		if x.Party == a.Party {
			return false, nil
		}
	}
	t.s.acks[a.MessageID] = append(t.s.acks[a.MessageID], a)
	return true, nil
}

func (t *memTx) AcksFor(id string) ([]store.Ack, error) { return slices.Clone(t.s.acks[id]), nil }

func (t *memTx) GetMeta(key string) ([]byte, error) {
	v, ok := t.s.meta[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (t *memTx) PutMeta(key string, v []byte) error {
	if err := t.w(); err != nil {
		return err
	}
	t.s.meta[key] = v
	return nil
}
