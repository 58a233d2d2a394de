// Package translog owns the record as a transparency log: the audit
// records are the leaves of an RFC 6962/9162 Merkle tree (leaf i is the
// record with seq i+1, its leaf data the record's own hashed encoding, see
// audit.Record.Leaf), the log's checkpoints are C2SP tlog-checkpoint notes
// signed as C2SP signed-notes with the log's Ed25519 key, witnesses add
// C2SP tlog-cosignature lines, and inclusion and consistency proofs let a
// party check what it holds against a checkpoint.
//
// The tree hashing, proofs and notes are those of golang.org/x/mod/sumdb
// (tlog, note) and github.com/transparency-dev/formats (checkpoint text,
// cosignature/v1); this package only stores the tree and puts them
// together.
//
// The tree is derived data: every hash follows from the records, so the
// stored hashes (a HashStore, in a file beside the database by default) are
// an index that is rebuilt from the records when it is missing or behind.
package translog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Hash is a node of the tree (SHA-256).
type Hash = tlog.Hash

// LeafHash is the RFC 6962 hash of a leaf: SHA-256(0x00 || data).
func LeafHash(data []byte) Hash { return tlog.RecordHash(data) }

// HashStore keeps the tree's stored hashes in tlog's storage order (see
// tlog.StoredHashIndex): hash i of the store is storage index i.
type HashStore interface {
	tlog.HashReader
	// Count is how many hashes are stored.
	Count() int64
	// Append stores hashes at storage indexes Count() on.
	Append(hashes []Hash) error
	// Truncate keeps the first count hashes.
	Truncate(count int64) error
}

// Tree is a Merkle tree over a HashStore. It is safe for concurrent use:
// appends are serialized, readers see a consistent size.
type Tree struct {
	mu    sync.RWMutex
	store HashStore
	size  int64
}

// NewTree opens the tree held by store; a store ending in the middle of a
// leaf's hashes (a crash while appending) is cut back to the last whole
// leaf.
func NewTree(store HashStore) (*Tree, error) {
	count := store.Count()
	// The largest size whose stored hashes all fit.
	lo, hi := int64(0), count
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if tlog.StoredHashCount(mid) <= count {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if want := tlog.StoredHashCount(lo); want != count {
		if err := store.Truncate(want); err != nil {
			return nil, err
		}
	}
	return &Tree{store: store, size: lo}, nil
}

// Size is the number of leaves.
func (t *Tree) Size() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.size
}

// overlay reads hashes appended in this batch before they are stored.
type overlay struct {
	store   HashStore
	base    int64
	pending []Hash
}

func (o *overlay) ReadHashes(indexes []int64) ([]Hash, error) {
	out := make([]Hash, len(indexes))
	var missing []int64
	for i, x := range indexes {
		if x >= o.base {
			if x-o.base >= int64(len(o.pending)) {
				return nil, fmt.Errorf("translog: hash %d is not stored yet", x)
			}
			out[i] = o.pending[x-o.base]
		} else {
			missing = append(missing, x)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	got, err := o.store.ReadHashes(missing)
	if err != nil {
		return nil, err
	}
	j := 0
	for i, x := range indexes {
		if x < o.base {
			out[i] = got[j]
			j++
		}
	}
	return out, nil
}

// AppendLeafHashes appends leaves given by their leaf hashes, in order,
// and returns the new size.
func (t *Tree) AppendLeafHashes(leaves []Hash) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := &overlay{store: t.store, base: t.store.Count()}
	n := t.size
	for _, h := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(n, h, o)
		if err != nil {
			return t.size, err
		}
		o.pending = append(o.pending, hs...)
		n++
	}
	if err := t.store.Append(o.pending); err != nil {
		// Whatever part was written is cut back when the tree reopens;
		// here, cut it now so the store matches the size.
		_ = t.store.Truncate(o.base)
		return t.size, err
	}
	t.size = n
	return n, nil
}

// Append appends leaves given by their data (see LeafHash).
func (t *Tree) Append(leaves ...[]byte) (int64, error) {
	hs := make([]Hash, len(leaves))
	for i, l := range leaves {
		hs[i] = LeafHash(l)
	}
	return t.AppendLeafHashes(hs)
}

// Truncate cuts the tree back to size leaves (used when the records it was
// built from turn out to differ from those in the store: it is rebuilt
// from there).
func (t *Tree) Truncate(size int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if size >= t.size {
		return nil
	}
	if err := t.store.Truncate(tlog.StoredHashCount(size)); err != nil {
		return err
	}
	t.size = size
	return nil
}

// ErrSize reports a size or index beyond the tree.
var ErrSize = errors.New("translog: beyond the tree's size")

// LeafHashAt is the leaf hash of leaf index.
func (t *Tree) LeafHashAt(index int64) (Hash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if index < 0 || index >= t.size {
		return Hash{}, fmt.Errorf("%w: leaf %d, size %d", ErrSize, index, t.size)
	}
	hs, err := t.store.ReadHashes([]int64{tlog.StoredHashIndex(0, index)})
	if err != nil {
		return Hash{}, err
	}
	return hs[0], nil
}

// Root is the root hash of the tree of the first size leaves.
func (t *Tree) Root(size int64) (Hash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size < 0 || size > t.size {
		return Hash{}, fmt.Errorf("%w: size %d, tree %d", ErrSize, size, t.size)
	}
	return tlog.TreeHash(size, t.store)
}

// InclusionProof proves that leaf index is in the tree of size leaves
// (RFC 9162 section 2.1.3).
func (t *Tree) InclusionProof(index, size int64) ([]Hash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size < 1 || size > t.size || index < 0 || index >= size {
		return nil, fmt.Errorf("%w: leaf %d of size %d, tree %d", ErrSize, index, size, t.size)
	}
	return tlog.ProveRecord(size, index, t.store)
}

// ConsistencyProof proves that the tree of from leaves is a prefix of the
// tree of size leaves (RFC 9162 section 2.1.4).
func (t *Tree) ConsistencyProof(from, size int64) ([]Hash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if from < 0 || from > size || size > t.size {
		return nil, fmt.Errorf("%w: from %d to %d, tree %d", ErrSize, from, size, t.size)
	}
	if from == 0 || from == size {
		return []Hash{}, nil
	}
	return tlog.ProveTree(size, from, t.store)
}

// VerifyInclusion checks proof that the leaf with hash leaf is leaf index
// of the tree of size leaves whose root is root.
func VerifyInclusion(leaf Hash, index, size int64, root Hash, proof []Hash) error {
	return tlog.CheckRecord(proof, size, root, index, leaf)
}

// VerifyConsistency checks proof that the tree of from leaves with root
// fromRoot is a prefix of the tree of size leaves with root root.
func VerifyConsistency(from int64, fromRoot Hash, size int64, root Hash, proof []Hash) error {
	if from == 0 {
		if len(proof) != 0 {
			return errors.New("translog: a consistency proof from size 0 is empty")
		}
		return nil
	}
	if from == size {
		if len(proof) != 0 || fromRoot != root {
			return errors.New("translog: two trees of the same size have different roots")
		}
		return nil
	}
	return tlog.CheckTree(proof, size, root, from, fromRoot)
}

// MemHashes is a HashStore in memory (tests, tools).
type MemHashes struct {
	mu     sync.RWMutex
	hashes []Hash
}

func (m *MemHashes) ReadHashes(indexes []int64) ([]Hash, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("translog: hash %d not stored (%d are)", x, len(m.hashes))
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *MemHashes) Count() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.hashes))
}

func (m *MemHashes) Append(hs []Hash) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hashes = append(m.hashes, hs...)
	return nil
}

func (m *MemHashes) Truncate(count int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if count < int64(len(m.hashes)) {
		m.hashes = m.hashes[:count]
	}
	return nil
}

// FileHashes is a HashStore in one file: hash i at byte offset 32*i. It is
// an index rebuilt from the records, so it is not synced on every append:
// Sync makes the hashes stored so far durable and records how many are in
// a second file (path + SyncedSuffix). Opening keeps only those: past them,
// after a power loss, a file system may keep a tail of zeros or stale
// blocks that no check of the last leaf would notice, and the tree's owner
// appends those leaves again from the records.
//
// Where the system can (unix), the file is also mapped into memory,
// read-only: a proof reads some 50 hashes scattered over the file, and
// reading them from the mapping instead of with one system call each makes
// an inclusion proof at 10 million records some ten times cheaper. Hashes
// appended since the last mapping are read from the file until the
// unmapped tail is worth mapping again (remapEvery).
type FileHashes struct {
	mu     sync.RWMutex
	f      *os.File
	count  int64
	mapped []byte // the file's first len(mapped) bytes, or nil
	// syncMu serializes Sync and Truncate, and guards synced, the count
	// of hashes known durable, and syncedFile, which holds it (8 bytes big
	// endian). It is taken before mu, and a Sync's fsync holds mu not at
	// all: proofs and appends go on meanwhile.
	syncMu     sync.Mutex
	syncedFile *os.File
	synced     int64
}

// SyncedSuffix names the file beside a FileHashes' file that holds how
// many of its hashes were synced.
const SyncedSuffix = ".synced"

// remapEvery is how many bytes of hashes may be appended past the mapping
// before the file is mapped again (64 KiB: some 1,000 leaves).
const remapEvery = 64 << 10

// ErrInUse is returned by OpenFileHashes for a hash file another process
// has open: two processes appending to one file, or one truncating what
// the other has mapped, would corrupt it or crash the other.
var ErrInUse = errors.New("translog: the hash file is in use by another process")

// OpenFileHashes opens (creating, mode 0600) the hash file at path and
// keeps the hashes its last Sync made durable (a file from before the
// synced count was kept is synced and kept whole). The file stays locked
// to this process until Close; if another process holds it, the error is
// ErrInUse.
func OpenFileHashes(path string) (h *FileHashes, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	sf, err := os.OpenFile(path+SyncedSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			sf.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	count := fi.Size() / tlog.HashSize
	h = &FileHashes{f: f, count: count, syncedFile: sf}
	var b [8]byte
	switch n, err := sf.ReadAt(b[:], 0); {
	case n == len(b):
		h.synced = int64(binary.BigEndian.Uint64(b[:]))
	case err != nil && !errors.Is(err, io.EOF):
		return nil, err
	case n > 0:
		// A count cut short: nothing is known durable.
		h.synced = 0
	default:
		// No count yet: a new file, or one from before counts were kept
		// (kept whole, as it was before).
		if err := f.Sync(); err != nil {
			return nil, err
		}
		h.synced = count
		if err := h.writeSynced(); err != nil {
			return nil, err
		}
		// The new count's name must outlive a power loss too: without
		// it the next open would take the file for an old one.
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	if keep := min(count, h.synced); keep*tlog.HashSize != fi.Size() {
		if err := f.Truncate(keep * tlog.HashSize); err != nil {
			return nil, err
		}
		h.count = keep
	}
	if h.synced > h.count {
		// Fewer hashes than were synced: the file was cut by hand, or
		// replaced. Only what is there is durable.
		h.synced = h.count
		if err := h.writeSynced(); err != nil {
			return nil, err
		}
	}
	h.remap()
	return h, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeSynced stores h.synced durably (h.syncMu held, or h not yet
// shared).
func (h *FileHashes) writeSynced() error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(h.synced))
	if _, err := h.syncedFile.WriteAt(b[:], 0); err != nil {
		return err
	}
	return h.syncedFile.Sync()
}

// remap maps the file's hashes anew (h.mu held for writing, or not yet
// shared). A mapping that fails is no error: reads go to the file.
func (h *FileHashes) remap() {
	if h.mapped != nil {
		_ = unmapFile(h.mapped)
		h.mapped = nil
	}
	if h.count == 0 {
		return
	}
	if m, err := mapFile(h.f, int(h.count*tlog.HashSize)); err == nil {
		h.mapped = m
	}
}

func (h *FileHashes) ReadHashes(indexes []int64) ([]Hash, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= h.count {
			return nil, fmt.Errorf("translog: hash %d not stored (%d are)", x, h.count)
		}
		if end := (x + 1) * tlog.HashSize; end <= int64(len(h.mapped)) {
			copy(out[i][:], h.mapped[end-tlog.HashSize:end])
			continue
		}
		if _, err := h.f.ReadAt(out[i][:], x*tlog.HashSize); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("translog: reading hash %d: %w", x, err)
		}
	}
	return out, nil
}

func (h *FileHashes) Count() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.count
}

func (h *FileHashes) Append(hs []Hash) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, x := range hs {
		b = append(b, x[:]...)
	}
	if _, err := h.f.WriteAt(b, h.count*tlog.HashSize); err != nil {
		return err
	}
	h.count += int64(len(hs))
	if h.count*tlog.HashSize-int64(len(h.mapped)) >= remapEvery {
		h.remap()
	}
	return nil
}

func (h *FileHashes) Truncate(count int64) error {
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	// The synced count first: the hashes appended again past count are
	// not durable until the next Sync.
	if count < h.synced {
		h.synced = count
		if err := h.writeSynced(); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if count >= h.count {
		return nil
	}
	// Never keep a mapping past the end of the file: reading there faults.
	if h.mapped != nil {
		_ = unmapFile(h.mapped)
		h.mapped = nil
	}
	if err := h.f.Truncate(count * tlog.HashSize); err != nil {
		return err
	}
	h.count = count
	h.remap()
	return nil
}

// Sync makes the hashes stored so far durable, and records how many they
// are. Reads and appends go on while it waits for the disk.
func (h *FileHashes) Sync() error {
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	count := h.Count()
	if count <= h.synced {
		return nil
	}
	// Every hash below count was written before count was (Append), and
	// no Truncate runs until this returns.
	if err := h.f.Sync(); err != nil {
		return err
	}
	h.synced = count
	return h.writeSynced()
}

// Close closes the file.
func (h *FileHashes) Close() error {
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mapped != nil {
		_ = unmapFile(h.mapped)
		h.mapped = nil
	}
	return errors.Join(h.f.Close(), h.syncedFile.Close())
}
