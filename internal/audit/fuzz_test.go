package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

// exportSeeds builds the same export in every process of a fuzzing run
// (the salts come from a fixed stream), so that "only this export
// verifies" holds in the workers too.
func exportSeeds(f *testing.F) ([]byte, *Log) {
	saved := randRead
	f.Cleanup(func() { randRead = saved })
	stream := sha256.Sum256([]byte("fuzz salts"))
	randRead = func(b []byte) (int, error) {
		for i := range b {
			b[i] = stream[i%len(stream)]
			stream = sha256.Sum256(stream[:])
		}
		return len(b), nil
	}
	// An in-memory log rather than SQLite: the fuzzing workers instrument
	// every package for coverage, which makes the SQLite engine crawl.
	st := &memStore{}
	l := NewLog(testKey(f, 9), 2)
	fill(f, st, l, 5)
	return export(f, st, l, "alpha", 1), l
}

// memStore keeps just the audit tables, in memory, for the fuzz targets.
type memStore struct {
	store.Tx // nil: only the audit methods below are used
	recs     []store.AuditRecord
	cps      []store.Checkpoint
}

func (m *memStore) Update(_ context.Context, fn func(store.Tx) error) error { return fn(m) }
func (m *memStore) View(_ context.Context, fn func(store.Tx) error) error   { return fn(m) }
func (m *memStore) Close() error                                            { return nil }

func (m *memStore) AppendAudit(r store.AuditRecord) error {
	if r.Seq != int64(len(m.recs))+1 {
		return store.ErrConflict
	}
	m.recs = append(m.recs, r)
	return nil
}

func (m *memStore) LastAudit() (store.AuditRecord, error) {
	if len(m.recs) == 0 {
		return store.AuditRecord{}, store.ErrNotFound
	}
	return m.recs[len(m.recs)-1], nil
}

func (m *memStore) AuditFrom(seq int64, limit int) ([]store.AuditRecord, error) {
	i := min(max(seq-1, 0), int64(len(m.recs)))
	return m.recs[i:min(i+int64(limit), int64(len(m.recs)))], nil
}

func (m *memStore) PutCheckpoint(c store.Checkpoint) error {
	m.cps = append(m.cps, c)
	return nil
}

func (m *memStore) CheckpointsFrom(seq int64) ([]store.Checkpoint, error) {
	var out []store.Checkpoint
	for _, c := range m.cps {
		if c.Seq >= seq {
			out = append(out, c)
		}
	}
	return out, nil
}

// FuzzParseLine: a line that parses re-encodes to exactly itself (the
// canonical form is the only accepted spelling), and nothing panics.
func FuzzParseLine(f *testing.F) {
	good, _ := exportSeeds(f)
	for _, l := range lines(good) {
		f.Add(bytes.TrimSuffix(l, []byte("\n")))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"checkpoint":{}}`))
	f.Add([]byte(`{"head":null}`))
	f.Add([]byte(`{"log_checkpoint":"deconflict.example/log\n1\nAAAA\n"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ln, err := ParseLine(b)
		if err != nil {
			return
		}
		// Every kind of line, written back as Export writes it.
		var again []byte
		switch {
		case ln.Record != nil:
			again, err = marshal(exportLine(*ln.Record, ""))
		case ln.Checkpoint != nil:
			c := ln.Checkpoint
			again, err = marshal(checkpointLine{checkpointBody{Seq: c.Seq, Hash: hex.EncodeToString(c.Hash), Signature: base64.StdEncoding.EncodeToString(c.Signature)}})
		case ln.Head != nil:
			h := ln.Head
			again, err = marshal(headLine{headBody{From: h.From, Seq: h.Seq, Hash: hex.EncodeToString(h.Hash), Checkpoints: h.Checkpoints,
				Time: h.Time.Format(timeLayout), Viewer: h.Viewer, Signature: base64.StdEncoding.EncodeToString(h.Signature)}})
		case ln.LogCheckpoint != nil:
			again, err = marshal(logCheckpointLine{LogCheckpoint: string(*ln.LogCheckpoint)})
		default:
			t.Fatalf("%q parsed into no line", b)
		}
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted a non-canonical line:\n%s\n%s", b, again)
		}
	})
}

// FuzzVerify: arbitrary input never panics, and only the untouched export
// verifies under its key.
func FuzzVerify(f *testing.F) {
	good, l := exportSeeds(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("\n"))
	f.Add([]byte{})
	pub := l.PublicKey()
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Verify(bytes.NewReader(b), pub)
		if err == nil && !bytes.Equal(b, good) {
			t.Fatalf("an export the key never signed verified:\n%s", b)
		}
	})
}
