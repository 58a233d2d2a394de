package service

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/translog"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// TestTreeRepairedAtStartupAfterACrash: the server crashed after records
// were committed and before the tree held them (the tree catches up at the
// next tick, which never came), with the tree's file cut in the middle of a
// hash (it is not synced). At startup the tree holds every record again:
// the published checkpoint covers them all, and the inclusion proof of
// each, against it, verifies with transparency-dev/merkle's verifier and
// the leaf hash computed from the stored record.
func TestTreeRepairedAtStartupAfterACrash(t *testing.T) {
	ctx := context.Background()
	dir, st := storeInDir(t)
	s, err := New(ctx, Config{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	held := logSize(t, s)
	// Records committed that the tree never saw.
	appendBehindTheService(t, dir, st, 7, 0)
	path := filepath.Join(dir, TreeFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-3*32-7); err != nil {
		t.Fatal(err)
	}

	s, err = New(ctx, Config{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	var recs []store.AuditRecord
	err = st.View(ctx, func(tx store.Tx) error {
		recs, err = tx.AuditFrom(1, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	size := logSize(t, s)
	if size != int64(len(recs)) || size < held+7 {
		t.Fatalf("the checkpoint at startup covers %d records; the store holds %d (%d before the crash)", size, len(recs), held)
	}
	cp := logCheckpoint(t, s)
	for i, r := range recs {
		rec, err := audit.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(rec.Leaf())
		served, p, err := s.InclusionProof(ctx, int64(i), size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(served[:], leaf) {
			t.Fatalf("leaf %d: the tree holds %x, the record gives %x", i, served[:], leaf)
		}
		hs := make([][]byte, len(p))
		for j := range p {
			hs[j] = p[j][:]
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(size), leaf, hs, cp.Root[:]); err != nil {
			t.Fatalf("inclusion of record %d: %v", r.Seq, err)
		}
	}
}

func logCheckpoint(t *testing.T, s *Service) translog.Checkpoint {
	t.Helper()
	origin, vkey := s.LogKey()
	v, err := translog.LogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := translog.Open(s.LogCheckpoint(context.Background()), origin, v)
	if err != nil {
		t.Fatal(fmt.Errorf("%w\n%s", err, s.LogCheckpoint(context.Background())))
	}
	return cp
}

func logSize(t *testing.T, s *Service) int64 { return logCheckpoint(t, s).Size }

// TestReplicasSharingADataDirectoryKeepTreesApart: replicas may share the
// data directory (README). Each keeps a tree file of its own, because one
// rebuilding its tree truncates the file under the other's mapping; both
// trees follow the same records and sign the same root, and a replica
// started once the first closed takes the first file again.
func TestReplicasSharingADataDirectoryKeepTreesApart(t *testing.T) {
	ctx := context.Background()
	dir, st := storeInDir(t)
	first, err := New(ctx, Config{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	second, err := New(ctx, Config{Store: st, DataDir: dir})
	if err != nil {
		t.Fatalf("a second replica on the same data directory: %v", err)
	}
	for _, name := range []string{TreeFile, "log-tree.2.hashes"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("tree file %s: %v", name, err)
		}
	}
	if _, err := first.CreateParty(ctx, "coalition"); err != nil {
		t.Fatal(err)
	}
	if _, err := second.CreateParty(ctx, "russia"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, s := range []*Service{first, second} {
		if err := s.publishLog(ctx, now); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a, b := logCheckpoint(t, first), logCheckpoint(t, second)
	if a.Size != b.Size || a.Root != b.Root || a.Size == 0 {
		t.Fatalf("the replicas' checkpoints differ: %d %x and %d %x", a.Size, a.Root, b.Size, b.Root)
	}
	third, err := New(ctx, Config{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close(ctx)
	if _, err := os.Stat(filepath.Join(dir, "log-tree.3.hashes")); !os.IsNotExist(err) {
		t.Fatalf("a replica started alone did not take the first free tree file: %v", err)
	}
	if got := logSize(t, third); got != a.Size {
		t.Fatalf("the restarted replica's checkpoint covers %d records, want %d", got, a.Size)
	}
}

// TestConcurrentTreeCatchUpsAppendEachRecordOnce: the tick's catch-up and a
// request's (an export's checkpoint) may run at once; each record must
// enter the tree once, not once per catch-up that read the same size.
func TestConcurrentTreeCatchUpsAppendEachRecordOnce(t *testing.T) {
	ctx := context.Background()
	dir, st := storeInDir(t)
	s, err := New(ctx, Config{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for round := range 20 {
		appendBehindTheService(t, dir, st, 50, round)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := s.syncTree(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		var last store.AuditRecord
		err = st.View(ctx, func(tx store.Tx) error {
			last, err = tx.LastAudit()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.tlog.tree.Size(); got != last.Seq {
			t.Fatalf("round %d: the tree holds %d leaves for %d records", round, got, last.Seq)
		}
	}
}

// storeInDir opens an embedded store in a fresh data directory, closed
// when the test ends.
func storeInDir(t *testing.T) (string, *sqlite.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return dir, st
}

// appendBehindTheService commits n audit records in one transaction with
// the data directory's key, as a server that crashed before its tree saw
// them or another replica would: the service's tree does not know them.
func appendBehindTheService(t *testing.T, dir string, st store.Store, n, round int) {
	t.Helper()
	key, err := audit.LoadKey(filepath.Join(dir, audit.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	lg := audit.NewLog(key, audit.DefaultEvery)
	err = st.Update(context.Background(), func(tx store.Tx) error {
		for i := range n {
			if _, err := lg.Append(tx, "coalition", "message_posted", audit.Everyone, map[string]any{"round": round, "i": i}, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// recordsRoot is the root of the tree the store's first size records make,
// built apart from the service's tree and its file.
func recordsRoot(t *testing.T, st store.Store, size int64) translog.Hash {
	t.Helper()
	var recs []store.AuditRecord
	err := st.View(context.Background(), func(tx store.Tx) (err error) {
		recs, err = tx.AuditFrom(1, int(size))
		return err
	})
	if err != nil || int64(len(recs)) != size {
		t.Fatalf("%d records of %d: %v", len(recs), size, err)
	}
	tree, _ := translog.NewTree(&translog.MemHashes{})
	for _, r := range recs {
		leaf, err := audit.LeafHash(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tree.AppendLeafHashes([]translog.Hash{leaf}); err != nil {
			t.Fatal(err)
		}
	}
	root, err := tree.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// damageTreeFile flips a byte of the stored hash of the largest complete
// subtree at the left of the tree of size leaves: the hash every later
// root is made from, which the check of the last leaf never reads.
func damageTreeFile(t *testing.T, dir string, size int64) {
	t.Helper()
	level := 0
	for int64(1)<<(level+1) <= size {
		level++
	}
	f, err := os.OpenFile(filepath.Join(dir, TreeFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := tlog.StoredHashIndex(level, 0) * 32
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedTreeFileIsNotSigned: a byte of the tree's file flips (a bad
// disk, a stray write) while the server is stopped, or while it runs. The
// log must not sign the root the damaged hashes give: that is a checkpoint
// of a tree the records never made, a fork signed by the log's own key,
// which every witness refuses and every party's check reports, for ever
// (only the last leaf was checked against its record). The tree is rebuilt
// from the records, and the log signs their root.
func TestDamagedTreeFileIsNotSigned(t *testing.T) {
	ctx := context.Background()
	dir, st := storeInDir(t)
	s, err := New(ctx, Config{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"coalition", "russia", "delta", "echo"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	before := logCheckpoint(t, s)
	if before.Size < 4 {
		t.Fatalf("size %d", before.Size)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Stopped.
	damageTreeFile(t, dir, before.Size)
	s, err = New(ctx, Config{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	cp := logCheckpoint(t, s)
	if want := recordsRoot(t, st, cp.Size); cp.Root != want {
		t.Fatalf("after the file was damaged while stopped, the log signed root %x for size %d; the records make %x", cp.Root[:8], cp.Size, want[:8])
	}

	// Running: the next checkpoint.
	damageTreeFile(t, dir, cp.Size)
	if _, err := s.CreateParty(ctx, "foxtrot"); err != nil {
		t.Fatal(err)
	}
	if err := s.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	next := logCheckpoint(t, s)
	if next.Size <= cp.Size {
		t.Fatalf("no new checkpoint: size %d", next.Size)
	}
	if want := recordsRoot(t, st, next.Size); next.Root != want {
		t.Fatalf("after the file was damaged while running, the log signed root %x for size %d; the records make %x", next.Root[:8], next.Size, want[:8])
	}
}
