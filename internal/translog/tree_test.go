package translog

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
	"pgregory.net/rapid"
)

// mth is RFC 6962 section 2.1's definition of the Merkle tree hash, written
// out as the oracle: MTH({}) = SHA-256(), MTH({d0}) = SHA-256(0x00 d0),
// MTH(D[n]) = SHA-256(0x01 MTH(D[0:k]) MTH(D[k:n])) with k the largest
// power of two below n.
func mth(leaves [][]byte) Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := mth(leaves[:k]), mth(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func leafData(i int) []byte { return []byte(fmt.Sprintf("record %d", i)) }

func bs(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// TestTreeAgainstOracleAndIndependentVerifier builds trees of every size
// up to 70 in batches of random sizes and checks each root against the
// RFC's definition, and every inclusion and consistency proof with the
// verifier of github.com/transparency-dev/merkle, an implementation
// independent of the x/mod/sumdb/tlog the tree uses.
func TestTreeAgainstOracleAndIndependentVerifier(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 70).Draw(rt, "leaves")
		tree, err := NewTree(&MemHashes{})
		if err != nil {
			rt.Fatal(err)
		}
		var leaves [][]byte
		for len(leaves) < n {
			batch := rapid.IntRange(1, n-len(leaves)).Draw(rt, "batch")
			var add [][]byte
			for range batch {
				add = append(add, leafData(len(leaves)+len(add)))
			}
			if _, err := tree.Append(add...); err != nil {
				rt.Fatal(err)
			}
			leaves = append(leaves, add...)
		}
		h := rfc6962.DefaultHasher
		roots := make([]Hash, n+1)
		for size := 0; size <= n; size++ {
			root, err := tree.Root(int64(size))
			if err != nil {
				rt.Fatal(err)
			}
			if want := mth(leaves[:size]); root != want {
				rt.Fatalf("root of size %d: %x, RFC 6962 says %x", size, root, want)
			}
			roots[size] = root
		}
		size := rapid.IntRange(1, n).Draw(rt, "size")
		index := rapid.IntRange(0, size-1).Draw(rt, "index")
		p, err := tree.InclusionProof(int64(index), int64(size))
		if err != nil {
			rt.Fatal(err)
		}
		leaf := h.HashLeaf(leaves[index])
		if err := proof.VerifyInclusion(h, uint64(index), uint64(size), leaf, bs(p), roots[size][:]); err != nil {
			rt.Fatalf("inclusion of %d in %d: independent verifier: %v", index, size, err)
		}
		if err := VerifyInclusion(LeafHash(leaves[index]), int64(index), int64(size), roots[size], p); err != nil {
			rt.Fatalf("inclusion: %v", err)
		}
		if got, _ := tree.LeafHashAt(int64(index)); !bytes.Equal(got[:], leaf) {
			rt.Fatalf("leaf hash %d", index)
		}
		from := rapid.IntRange(0, size).Draw(rt, "from")
		c, err := tree.ConsistencyProof(int64(from), int64(size))
		if err != nil {
			rt.Fatal(err)
		}
		if err := proof.VerifyConsistency(h, uint64(from), uint64(size), bs(c), roots[from][:], roots[size][:]); err != nil {
			rt.Fatalf("consistency %d to %d: independent verifier: %v", from, size, err)
		}
		if err := VerifyConsistency(int64(from), roots[from], int64(size), roots[size], c); err != nil {
			rt.Fatalf("consistency: %v", err)
		}
		// A proof against a forked history fails.
		if from > 0 && from < size {
			forked := append([][]byte{}, leaves[:size]...)
			forked[from-1] = []byte("rewritten")
			if err := VerifyConsistency(int64(from), roots[from], int64(size), mth(forked), c); err == nil {
				rt.Fatalf("consistency %d to %d verifies against a forked root", from, size)
			}
		}
	})
}

func TestFileHashesReopenAndTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tree")
	fh, tree := openFileTree(t, path)
	leaves := leavesData(37)
	if _, err := tree.Append(leaves...); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a leaf's hashes: one hash of the next leaf
	// too many, synced, and a partial hash.
	if err := fh.Append([]Hash{{1}}); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{1, 2, 3})
	f.Close()
	fh, err := OpenFileHashes(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	tree, err = NewTree(fh)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Size() != 37 {
		t.Fatalf("reopened size %d, want 37", tree.Size())
	}
	root, _ := tree.Root(37)
	if root != mth(leaves) {
		t.Fatal("reopened root differs")
	}
	if _, err := tree.Append(leafData(37)); err != nil {
		t.Fatal(err)
	}
	if root, _ := tree.Root(38); root != mth(append(leaves, leafData(37))) {
		t.Fatal("root after appending to the reopened tree differs")
	}
	if err := tree.Truncate(10); err != nil {
		t.Fatal(err)
	}
	if root, _ := tree.Root(10); root != mth(leaves[:10]) || tree.Size() != 10 {
		t.Fatal("truncate")
	}
	if _, err := tree.InclusionProof(10, 11); err == nil {
		t.Fatal("a proof beyond the tree was made")
	}
}

// TestFileHashesKeepOnlyWhatWasSynced: after a power loss the hashes
// appended since the last Sync may be garbage (zeros, stale blocks) even
// where the file's length says they are there; reopened, the file keeps
// only the synced ones, also after a truncation below them, and the tree
// grows again from there to the right roots. A file from before the synced
// count was kept is kept whole; one whose count is cut short, not at all.
func TestFileHashesKeepOnlyWhatWasSynced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tree")
	var leaves [][]byte
	for i := range 60 {
		leaves = append(leaves, leafData(i))
	}
	open := func() (*FileHashes, *Tree) {
		t.Helper()
		fh, err := OpenFileHashes(path)
		if err != nil {
			t.Fatal(err)
		}
		tree, err := NewTree(fh)
		if err != nil {
			t.Fatal(err)
		}
		return fh, tree
	}
	// garble overwrites the hashes past the first keep with zeros, as a
	// power loss may leave them.
	garble := func(keep int64) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(make([]byte, fi.Size()-keep*tlog.HashSize), keep*tlog.HashSize); err != nil {
			t.Fatal(err)
		}
	}
	wantSize := func(tree *Tree, size int) {
		t.Helper()
		root, err := tree.Root(tree.Size())
		if err != nil {
			t.Fatal(err)
		}
		if tree.Size() != int64(size) || root != mth(leaves[:size]) {
			t.Fatalf("reopened: %d leaves, root %v; want %d leaves, root %v", tree.Size(), root, size, mth(leaves[:size]))
		}
	}

	fh, tree := open()
	if _, err := tree.Append(leaves[:20]...); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := fh.Count()
	if _, err := tree.Append(leaves[20:30]...); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	garble(synced)
	fh, tree = open()
	wantSize(tree, 20)
	if _, err := tree.Append(leaves[20:40]...); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	// Cut back below what was synced, grown again, not synced: a crash
	// keeps only the part below the cut.
	if err := tree.Truncate(15); err != nil {
		t.Fatal(err)
	}
	cut := fh.Count()
	if _, err := tree.Append(leaves[15:40]...); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	garble(cut)
	fh, tree = open()
	wantSize(tree, 15)
	if _, err := tree.Append(leaves[15:60]...); err != nil {
		t.Fatal(err)
	}
	wantSize(tree, 60)
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	// A file without its synced count (written before it was kept).
	if err := os.Remove(path + SyncedSuffix); err != nil {
		t.Fatal(err)
	}
	fh, tree = open()
	wantSize(tree, 60)
	if b, err := os.ReadFile(path + SyncedSuffix); err != nil || len(b) != 8 {
		t.Fatalf("the synced count was not written again: %x %v", b, err)
	}
	fh.Close()
	// A synced count cut short: nothing is known durable.
	if err := os.WriteFile(path+SyncedSuffix, []byte{0, 0, 1}, 0o600); err != nil {
		t.Fatal(err)
	}
	fh, tree = open()
	defer fh.Close()
	wantSize(tree, 0)
}

// TestFileHashesSyncWhileGrowing: Syncs run while the tree grows and
// proofs are read (run under -race by make test); reopened, the tree keeps
// at least what the last Sync covered, with the right root.
func TestFileHashesSyncWhileGrowing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tree")
	fh, tree := openFileTree(t, path)
	leaves := leavesData(400)
	done := make(chan error, 2)
	go func() {
		for i := 0; i < len(leaves); i += 10 {
			if _, err := tree.Append(leaves[i : i+10]...); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		for range 200 {
			if size := tree.Size(); size > 1 {
				if _, err := tree.InclusionProof(size/2, size); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	var synced int64
	for range 20 {
		before := tree.Size() // the Sync covers at least these
		if err := fh.Sync(); err != nil {
			t.Fatal(err)
		}
		synced = before
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	fh.Close()
	fh, tree = openFileTree(t, path)
	defer fh.Close()
	root, err := tree.Root(tree.Size())
	if err != nil {
		t.Fatal(err)
	}
	if tree.Size() < synced || root != mth(leaves[:tree.Size()]) {
		t.Fatalf("reopened with %d leaves (%d were synced), root %v", tree.Size(), synced, root)
	}
}

// TestFileHashesMatchMemoryAcrossRemaps grows a file-backed tree in
// batches of random sizes well past several remappings of its file, cuts
// it back and grows it again, and checks after each step that every stored
// hash, root and inclusion proof is what the same tree in memory gives.
func TestFileHashesMatchMemoryAcrossRemaps(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("tree-%d", rapid.Int().Draw(rt, "file")))
		fh, err := OpenFileHashes(path)
		if err != nil {
			rt.Fatal(err)
		}
		defer fh.Close()
		mem := &MemHashes{}
		onFile, err := NewTree(fh)
		if err != nil {
			rt.Fatal(err)
		}
		inMem, _ := NewTree(mem)
		same := func(step string) {
			if fh.Count() != mem.Count() {
				rt.Fatalf("%s: %d hashes on file, %d in memory", step, fh.Count(), mem.Count())
			}
			idx := make([]int64, mem.Count())
			for i := range idx {
				idx[i] = int64(i)
			}
			a, err := fh.ReadHashes(idx)
			if err != nil {
				rt.Fatalf("%s: %v", step, err)
			}
			b, _ := mem.ReadHashes(idx)
			for i := range a {
				if a[i] != b[i] {
					rt.Fatalf("%s: hash %d differs (mapped %d bytes)", step, i, len(fh.mapped))
				}
			}
			size := inMem.Size()
			if size == 0 {
				return
			}
			leaf := rapid.Int64Range(0, size-1).Draw(rt, "leaf")
			p1, err1 := onFile.InclusionProof(leaf, size)
			p2, err2 := inMem.InclusionProof(leaf, size)
			if err1 != nil || err2 != nil || fmt.Sprint(p1) != fmt.Sprint(p2) {
				rt.Fatalf("%s: proofs of leaf %d differ (%v, %v)", step, leaf, err1, err2)
			}
		}
		n := 0
		for range rapid.IntRange(1, 6).Draw(rt, "steps") {
			if rapid.Bool().Draw(rt, "truncate") && n > 0 {
				to := rapid.IntRange(0, n-1).Draw(rt, "to")
				if err := onFile.Truncate(int64(to)); err != nil {
					rt.Fatal(err)
				}
				_ = inMem.Truncate(int64(to))
				n = to
				same("truncate")
				continue
			}
			batch := rapid.IntRange(1, 3000).Draw(rt, "batch")
			var add [][]byte
			for i := range batch {
				add = append(add, leafData(n+i))
			}
			if _, err := onFile.Append(add...); err != nil {
				rt.Fatal(err)
			}
			_, _ = inMem.Append(add...)
			n += batch
			same("append")
		}
	})
}

// openFileTree opens a tree over the hash file at path.
func openFileTree(t *testing.T, path string) (*FileHashes, *Tree) {
	t.Helper()
	fh, err := OpenFileHashes(path)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := NewTree(fh)
	if err != nil {
		t.Fatal(err)
	}
	return fh, tree
}

// leavesData is the leaf data of leaves 0 to n-1 (leafData).
func leavesData(n int) [][]byte {
	leaves := make([][]byte, n)
	for i := range leaves {
		leaves[i] = leafData(i)
	}
	return leaves
}
