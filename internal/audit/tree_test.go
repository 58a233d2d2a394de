package audit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/translog"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"pgregory.net/rapid"
)

// memAudit is the audit role of a store in memory, with transactions that
// commit or roll back, and restores of an older copy.
type memAudit struct {
	committed []store.AuditRecord
}

// memTx is one transaction: its records are the store's once committed.
type memTx struct {
	m       *memAudit
	pending []store.AuditRecord
}

func (t *memTx) AppendAudit(r store.AuditRecord) error {
	t.pending = append(t.pending, r)
	return nil
}

func (t *memTx) LastAudit() (store.AuditRecord, error) {
	switch {
	case len(t.pending) > 0:
		return t.pending[len(t.pending)-1], nil
	case len(t.m.committed) > 0:
		return t.m.committed[len(t.m.committed)-1], nil
	}
	return store.AuditRecord{}, store.ErrNotFound
}

func (t *memTx) AuditFrom(seq int64, limit int) ([]store.AuditRecord, error) {
	var out []store.AuditRecord
	for _, r := range append(t.m.committed[:len(t.m.committed):len(t.m.committed)], t.pending...) {
		if r.Seq >= seq && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (t *memTx) PutCheckpoint(store.Checkpoint) error              { return nil }
func (t *memTx) CheckpointsFrom(int64) ([]store.Checkpoint, error) { return nil, nil }

func (m *memAudit) read(seq int64, limit int) ([]store.AuditRecord, error) {
	return (&memTx{m: m}).AuditFrom(seq, limit)
}

// fataler is what the oracles need of a *testing.T or *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// oracleLeaves are the RFC 6962 leaf hashes of the records, by the
// hasher of github.com/transparency-dev/merkle (independent of the
// x/mod/sumdb/tlog the tree uses), from the records as decoded.
func oracleLeaves(t fataler, recs []store.AuditRecord) [][]byte {
	t.Helper()
	out := make([][]byte, len(recs))
	for i, r := range recs {
		rec, err := Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = rfc6962.DefaultHasher.HashLeaf(rec.Leaf())
	}
	return out
}

// oracleRoot is the root of the tree of leaves by transparency-dev/merkle's
// compact ranges.
func oracleRoot(t fataler, leaves [][]byte) []byte {
	t.Helper()
	if len(leaves) == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(l, nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestSyncTreeFollowsTheRecords: whatever happens between the records and
// the tree (records appended by this Log, whose leaf hashes it remembers,
// and by others it did not see, transactions rolled back after the Log
// remembered their records, crashes that lose the tree's file's tail, cut
// it in the middle of a leaf or leave zeros where it was not synced, and
// with it the Log's memory, a store
// restored from an older copy and continued differently), after SyncTree
// the tree holds exactly the stored records: its root is the one
// transparency-dev/merkle computes from the records decoded, and an
// inclusion proof of any record verifies with its verifier.
func TestSyncTreeFollowsTheRecords(t *testing.T) {
	key := testKey(t, 1)
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "audit-tree-")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "tree")
		fh, err := translog.OpenFileHashes(path)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { fh.Close() }()
		tree, err := translog.NewTree(fh)
		if err != nil {
			rt.Fatal(err)
		}
		m := &memAudit{}
		var backup []store.AuditRecord
		lg := NewLog(key, DefaultEvery)
		other := NewLog(key, DefaultEvery) // another replica
		now := t0
		appendRecords := func(l *Log, n int, commit bool) {
			tx := &memTx{m: m}
			for range n {
				now = now.Add(time.Second)
				var err error
				if l == nil {
					_, err = Append(tx, "cli", "party_added", Everyone, map[string]any{"n": len(m.committed)}, now)
				} else {
					_, err = l.Append(tx, "alpha", "message_posted", Readers{"alpha"}, map[string]any{"text": Seal("secret", "alpha"), "n": len(m.committed)}, now)
				}
				if err != nil {
					rt.Fatal(err)
				}
			}
			if commit {
				m.committed = append(m.committed, tx.pending...)
			}
		}
		sync := func() {
			if _, err := lg.SyncTree(tree, m.read); err != nil {
				rt.Fatal(err)
			}
		}
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 7).Draw(rt, "action") {
			case 0, 1:
				appendRecords(lg, rapid.IntRange(1, 12).Draw(rt, "records"), true)
			case 2:
				appendRecords(lg, rapid.IntRange(1, 5).Draw(rt, "rolled back"), false)
			case 3:
				if rapid.Bool().Draw(rt, "by the CLI") {
					appendRecords(nil, rapid.IntRange(1, 5).Draw(rt, "records"), true)
				} else {
					appendRecords(other, rapid.IntRange(1, 5).Draw(rt, "records"), true)
				}
			case 4:
				sync()
			case 5:
				// A crash: the tree's file keeps some prefix of what was
				// written (it is not synced), possibly cut in the middle of
				// a leaf's hashes or of a hash; the Log's memory is gone.
				fh.Close()
				fi, err := os.Stat(path)
				if err != nil {
					rt.Fatal(err)
				}
				keep := rapid.Int64Range(0, fi.Size()).Draw(rt, "tree bytes kept")
				if keep < fi.Size() {
					if err := os.Truncate(path, keep); err != nil {
						rt.Fatal(err)
					}
				}
				// And what was not synced may hold zeros, anywhere.
				if b, err := os.ReadFile(path + translog.SyncedSuffix); err == nil && len(b) == 8 {
					if synced := int64(binary.BigEndian.Uint64(b)) * int64(len(translog.Hash{})); synced < keep {
						from := rapid.Int64Range(synced, keep).Draw(rt, "zeros from")
						to := rapid.Int64Range(from, keep).Draw(rt, "zeros to")
						f, err := os.OpenFile(path, os.O_WRONLY, 0)
						if err != nil {
							rt.Fatal(err)
						}
						_, err = f.WriteAt(make([]byte, to-from), from)
						f.Close()
						if err != nil {
							rt.Fatal(err)
						}
					}
				}
				if fh, err = translog.OpenFileHashes(path); err != nil {
					rt.Fatal(err)
				}
				if tree, err = translog.NewTree(fh); err != nil {
					rt.Fatal(err)
				}
				lg = NewLog(key, DefaultEvery)
				sync() // at startup
			case 7:
				if err := fh.Sync(); err != nil {
					rt.Fatal(err)
				}
			case 6:
				if backup == nil || rapid.Bool().Draw(rt, "take a copy") {
					backup = append([]store.AuditRecord(nil), m.committed...)
				} else {
					m.committed = append([]store.AuditRecord(nil), backup...)
				}
			}
		}
		sync()
		if tree.Size() != int64(len(m.committed)) {
			rt.Fatalf("tree of %d leaves, %d records", tree.Size(), len(m.committed))
		}
		leaves := oracleLeaves(rt, m.committed)
		want := oracleRoot(rt, leaves)
		root, err := tree.Root(tree.Size())
		if err != nil {
			rt.Fatal(err)
		}
		if !bytes.Equal(root[:], want) {
			rt.Fatalf("root %x, the records give %x", root[:], want)
		}
		if len(leaves) == 0 {
			return
		}
		i := rapid.IntRange(0, len(leaves)-1).Draw(rt, "leaf")
		p, err := tree.InclusionProof(int64(i), tree.Size())
		if err != nil {
			rt.Fatal(err)
		}
		hs := make([][]byte, len(p))
		for j := range p {
			hs[j] = p[j][:]
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(len(leaves)), leaves[i], hs, want); err != nil {
			rt.Fatalf("inclusion of record %d: %v", i+1, err)
		}
	})
}

// TestRememberedLeafIsTheDecodedOne: the leaf hash a Log remembers of a
// record it appended is the one decoding the stored record gives, and a
// stored record that is not the one remembered (another salt, so another
// hash, at the same seq: a rolled-back transaction's seq taken by another
// writer) is decoded instead.
func TestRememberedLeafIsTheDecodedOne(t *testing.T) {
	m := &memAudit{}
	lg := NewLog(testKey(t, 1), DefaultEvery)
	tx := &memTx{m: m}
	if _, err := lg.Append(tx, "alpha", "message_posted", Everyone, "before a tree follows", t0); err != nil {
		t.Fatal(err)
	}
	if _, ok := lg.leaves.take(tx.pending[0]); ok {
		t.Fatal("a Log no tree follows remembers leaves")
	}
	tree, err := translog.NewTree(&translog.MemHashes{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lg.SyncTree(tree, m.read); err != nil {
		t.Fatal(err)
	}
	tx = &memTx{m: m}
	rolledBack, err := lg.Append(tx, "alpha", "message_posted", Everyone, map[string]any{"text": Seal("x", "alpha")}, t0)
	if err != nil {
		t.Fatal(err)
	}
	tx = &memTx{m: m}
	stored, err := Append(tx, "bravo", "message_posted", Everyone, map[string]any{"text": "y"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if rolledBack.Seq != stored.Seq || bytes.Equal(rolledBack.Hash, stored.Hash) {
		t.Fatalf("seqs %d and %d, hashes %x and %x", rolledBack.Seq, stored.Seq, rolledBack.Hash, stored.Hash)
	}
	got, err := lg.leafHash(stored)
	if err != nil {
		t.Fatal(err)
	}
	if want := oracleLeaves(t, []store.AuditRecord{stored})[0]; !bytes.Equal(got[:], want) {
		t.Fatalf("leaf hash of another writer's record at the remembered seq: %x, want %x", got[:], want)
	}
	for i := range 3 {
		tx := &memTx{m: m}
		rec, err := lg.Append(tx, "alpha", "message_posted", Everyone, map[string]any{"i": i, "text": Seal(fmt.Sprint(i), "alpha")}, t0)
		if err != nil {
			t.Fatal(err)
		}
		m.committed = append(m.committed, tx.pending...)
		h, ok := lg.leaves.take(rec)
		if !ok {
			t.Fatalf("record %d is not remembered", rec.Seq)
		}
		if want := oracleLeaves(t, []store.AuditRecord{rec})[0]; !bytes.Equal(h[:], want) {
			t.Fatalf("remembered leaf hash of %d: %x, decoded %x", rec.Seq, h[:], want)
		}
		if _, ok := lg.leaves.take(rec); ok {
			t.Fatalf("record %d was remembered after it was taken", rec.Seq)
		}
	}
}
