package audit

import (
	"fmt"
	"sync"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/translog"
)

// treePage is how many records Log.SyncTree reads at a time.
const treePage = 4096

// ReadRecords reads at most limit audit records from seq on, in order (a
// read transaction's AuditFrom).
type ReadRecords func(seq int64, limit int) ([]store.AuditRecord, error)

// TreeSync is what Log.SyncTree did.
type TreeSync struct {
	// Appended is how many leaves were appended.
	Appended int64
	// Rebuilt says why the tree was cut back and rebuilt from the first
	// record ("" when it was not).
	Rebuilt string
}

// SyncTree makes tree follow the records: record seq is leaf seq-1, its
// leaf data Record.Leaf. It appends the records the tree does not hold
// yet, read a page at a time, one append to the tree per page. The leaf
// hash of a record this Log appended is taken from its memory (see
// recentLeaves); others' (another replica's, or from before a restart) are
// decoded from the store, which costs about as much again as reading them.
// The last leaf the tree holds is checked against its record first, decoded:
// a tree built from records that are no longer in the store (a store
// restored from an older copy) is cut back and rebuilt, as the records are
// the truth; the witnesses judge whether the result is consistent with what
// they cosigned.
//
// The tree may lag the records (the server runs this at every tick, and at
// startup, which repairs a crash between a record's commit and its leaf's
// write): checkpoints and proofs cover only what the tree holds.
func (l *Log) SyncTree(tree *translog.Tree, read ReadRecords) (TreeSync, error) {
	if l != nil {
		l.leaves.follow()
	}
	var did TreeSync
	for {
		size := tree.Size()
		from := size + 1
		if size > 0 {
			from = size // re-read the last leaf held, to check it
		}
		page, err := read(from, treePage)
		if err != nil {
			return did, err
		}
		if size > 0 {
			why := ""
			if len(page) == 0 || page[0].Seq != size {
				why = fmt.Sprintf("the store holds fewer records than the tree (%d)", size)
			} else {
				held, err := tree.LeafHashAt(size - 1)
				if err != nil {
					return did, err
				}
				leaf, err := LeafHash(page[0])
				if err != nil {
					return did, err
				}
				if leaf != held {
					why = fmt.Sprintf("record %d differs from the tree's leaf", size)
				}
			}
			if why != "" {
				if did.Rebuilt != "" {
					return did, fmt.Errorf("audit: the tree rebuilt from the first record disagrees with the store again: %s", why)
				}
				if err := tree.Truncate(0); err != nil {
					return did, err
				}
				did.Rebuilt, did.Appended = why, 0
				continue
			}
			page = page[1:]
		}
		if len(page) == 0 {
			return did, nil
		}
		leaves := make([]translog.Hash, len(page))
		for i, r := range page {
			if r.Seq != size+int64(i)+1 {
				return did, fmt.Errorf("audit: record %d follows %d", r.Seq, size+int64(i))
			}
			if leaves[i], err = l.leafHash(r); err != nil {
				return did, err
			}
		}
		if _, err := tree.AppendLeafHashes(leaves); err != nil {
			return did, err
		}
		did.Appended += int64(len(leaves))
	}
}

// LeafHash is the RFC 6962 leaf hash of a stored record in the log's
// Merkle tree: translog.LeafHash of its Record.Leaf.
func LeafHash(r store.AuditRecord) (translog.Hash, error) {
	rec, err := Decode(r)
	if err != nil {
		return translog.Hash{}, err
	}
	return translog.LeafHash(rec.Leaf()), nil
}

// maxRecentLeaves bounds the leaf hashes a Log remembers for the tree
// (some 6 MB): past it, when the tree's catch-up is failing or far behind,
// they are dropped and the catch-up decodes those records instead.
const maxRecentLeaves = 1 << 16

// recentLeaves remembers, by seq, the leaf hash of each record a Log
// appended, with the record's hash, until the tree's catch-up takes it. An
// entry is only used for a stored record of the same seq and hash: the
// hash is the SHA-256 of the very leaf data the leaf hash was made from, so
// the leaf is the one the chain commits to (a record whose content was
// edited in the store beneath its hash gets the leaf it was written with,
// and its edit is caught as any other: its content no longer gives its
// hash, nor its leaf hash the tree's). The entry of a transaction that rolled
// back is never used (its seq holds another record, with another salt and
// hash, or none yet) and goes when the catch-up reaches its seq.
type recentLeaves struct {
	mu     sync.Mutex
	leaves map[int64]recentLeaf
}

type recentLeaf struct {
	hash [HashSize]byte
	leaf translog.Hash
}

// follow starts remembering: a Log remembers leaves only once a tree
// follows it (SyncTree ran), so that one without a tree pays nothing.
func (c *recentLeaves) follow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaves == nil {
		c.leaves = make(map[int64]recentLeaf)
	}
}

func (c *recentLeaves) remember(rec store.AuditRecord, leaf []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaves == nil {
		return
	}
	if len(c.leaves) >= maxRecentLeaves {
		clear(c.leaves)
	}
	e := recentLeaf{leaf: translog.LeafHash(leaf)}
	copy(e.hash[:], rec.Hash)
	c.leaves[rec.Seq] = e
}

// take returns and forgets the leaf hash remembered for r, if r is the
// record it was made for.
func (c *recentLeaves) take(r store.AuditRecord) (translog.Hash, bool) {
	c.mu.Lock()
	e, ok := c.leaves[r.Seq]
	if ok {
		delete(c.leaves, r.Seq)
	}
	c.mu.Unlock()
	if !ok || len(r.Hash) != HashSize || [HashSize]byte(r.Hash) != e.hash {
		return translog.Hash{}, false
	}
	return e.leaf, true
}

// leafHash is LeafHash, taken from what the Log remembers when it can.
func (l *Log) leafHash(r store.AuditRecord) (translog.Hash, error) {
	if l != nil {
		if h, ok := l.leaves.take(r); ok {
			return h, nil
		}
	}
	return LeafHash(r)
}
