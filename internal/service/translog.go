package service

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/translog"
	"github.com/deconflict/deconflict/internal/witness"
	"golang.org/x/mod/sumdb/note"
)

// TreeFile is the name of the transparency log's stored hashes in the
// data directory: an index of the audit records, rebuilt from them.
const TreeFile = "log-tree.hashes"

// maxTreeFiles bounds how many replicas sharing one data directory each
// keep a tree file of their own.
const maxTreeFiles = 16

// openTreeFile opens the first tree file of the data directory no other
// process holds: TreeFile, then log-tree.2.hashes and so on. Replicas may
// share a data directory; each must keep its own file, because one
// rebuilding the tree truncates it under the other's mapping. Any file
// will do: the tree is an index of the records, checked against them and
// rebuilt when it does not match (SyncTree).
func openTreeFile(dir string) (*translog.FileHashes, error) {
	for i := 1; i <= maxTreeFiles; i++ {
		name := TreeFile
		if i > 1 {
			name = fmt.Sprintf("log-tree.%d.hashes", i)
		}
		fh, err := translog.OpenFileHashes(filepath.Join(dir, name))
		if !errors.Is(err, translog.ErrInUse) {
			return fh, err
		}
	}
	return nil, fmt.Errorf("%d processes already keep a tree in %s: %w", maxTreeFiles, dir, translog.ErrInUse)
}

// LogCheckpointMeta is the store's meta key of the latest published
// checkpoint with its cosignatures, kept so that an export cut from the
// store without the server (deconflict audit export) ends with it too.
const LogCheckpointMeta = "log/checkpoint"

// witnessTimeout bounds one push to one witness: a witness that hangs
// delays nothing but its own cosignature.
const witnessTimeout = 5 * time.Second

// transLog is the record as a transparency log (internal/translog): the
// tree follows the audit records, a checkpoint is signed when it grew, and
// pushed to the witnesses the rules name, in the background; the latest
// checkpoint with the cosignatures collected is what is published.
type transLog struct {
	key    *translog.LogKey
	tree   *translog.Tree
	pusher *witness.Pusher
	file   *translog.FileHashes // the tree's file, when it has one

	// syncMu makes catch-ups of the tree take turns: the tick's and a
	// request's (logCheckpointAt) would otherwise read the same size and
	// append the same leaves twice.
	syncMu sync.Mutex

	mu        sync.Mutex
	published []byte // the latest checkpoint with its cosignatures
	cp        translog.Checkpoint
	pushing   bool
	pushDone  chan struct{} // closed when the push in flight ends
	lastTry   time.Time
}

// LogStatus is what GET /v1/log/witnesses reports and the console shows.
type LogStatus struct {
	Origin     string           `json:"origin"`
	Size       int64            `json:"size"`
	Cosigned   []string         `json:"cosigned_by"`
	Time       time.Time        `json:"time"`
	Witnesses  []witness.Status `json:"witnesses"`
	Checkpoint string           `json:"checkpoint"`
}

// openTransLog opens (or builds) the tree beside the store and catches it
// up with the audit records.
func (s *Service) openTransLog(ctx context.Context, key ed25519.PrivateKey, origin string) error {
	if origin == "" {
		origin = translog.DefaultOrigin(key.Public().(ed25519.PublicKey))
	}
	lk, err := translog.NewLogKey(origin, key)
	if err != nil {
		return fmt.Errorf("service: --log-origin: %w", err)
	}
	var (
		hs   translog.HashStore = &translog.MemHashes{}
		file *translog.FileHashes
	)
	if s.cfg.DataDir != "" {
		fh, err := openTreeFile(s.cfg.DataDir)
		if err != nil {
			return fmt.Errorf("service: the transparency log's tree: %w", err)
		}
		hs = fh
		file = fh
	}
	tree, err := translog.NewTree(hs)
	if err != nil {
		return err
	}
	tl := &transLog{key: lk, tree: tree, file: file}
	tl.pusher, err = witness.NewPusher(lk.Verifier(), tree.ConsistencyProof, endpoints(s.Rules()), witnessTimeout)
	if err != nil {
		return err
	}
	s.tlog = tl
	if err := s.syncTree(ctx); err != nil {
		return err
	}
	// A checkpoint from the start, so one is always published; the first
	// tick pushes it to the witnesses.
	size := tree.Size()
	root, err := tree.Root(size)
	if err != nil {
		return err
	}
	if tl.published, err = lk.Sign(size, root); err != nil {
		return err
	}
	tl.cp = translog.Checkpoint{Origin: origin, Size: size, Root: root}
	s.keepCheckpoint(ctx, tl.published)
	return nil
}

// keepCheckpoint stores the latest published checkpoint (best effort: the
// server publishes it anyway; a store without it only makes the CLI's
// export end without one).
func (s *Service) keepCheckpoint(ctx context.Context, published []byte) {
	err := s.st.Update(ctx, func(tx store.Tx) error { return tx.PutMeta(LogCheckpointMeta, published) })
	if err != nil {
		s.log.Warn("storing the published log checkpoint", "err", err)
	}
}

func endpoints(r rules.Rules) []witness.Endpoint {
	out := make([]witness.Endpoint, len(r.Witnesses))
	for i, w := range r.Witnesses {
		out[i] = witness.Endpoint{Party: w.Party, URL: w.URL, VKey: w.VKey}
	}
	return out
}

// syncTree appends to the tree the audit records it does not hold yet
// (audit.Log.SyncTree: a tree that no longer matches the records, after a
// store was restored from an older copy, is rebuilt from them).
func (s *Service) syncTree(ctx context.Context) error {
	s.tlog.syncMu.Lock()
	defer s.tlog.syncMu.Unlock()
	did, err := s.alog.SyncTree(s.tlog.tree, func(seq int64, limit int) (page []store.AuditRecord, err error) {
		err = s.st.View(ctx, func(tx store.Tx) error {
			page, err = tx.AuditFrom(seq, limit)
			return err
		})
		return page, err
	})
	if did.Rebuilt != "" {
		s.log.Error("transparency log: the tree no longer matches the audit records; rebuilt from them", "why", did.Rebuilt, "size", s.tlog.tree.Size())
	}
	return err
}

// publishLog is the periodic job: catch the tree up, sign a checkpoint
// when it grew, and push it to the witnesses in the background. The
// checkpoint is published once the witnesses answered (or failed), so what
// is published carries the cosignatures that could be had. The latest
// checkpoint is pushed again every repushEvery even when the tree did not
// grow, so the witnesses' cosignatures stay fresher than the rules'
// witness_max_age_s.
func (s *Service) publishLog(ctx context.Context, now time.Time) error {
	if err := s.syncTree(ctx); err != nil {
		return err
	}
	tl := s.tlog
	size := tl.tree.Size()
	tl.mu.Lock()
	grew := size > tl.cp.Size
	repush := len(tl.pusher.Status()) > 0 && (tl.lastTry.IsZero() || now.Sub(tl.lastTry) >= repushEvery(s.Rules()))
	if tl.pushing || (!grew && !repush) {
		tl.mu.Unlock()
		return nil
	}
	tl.pushing, tl.lastTry = true, now
	done := make(chan struct{})
	tl.pushDone = done
	signed, cp := bytes.Clone(tl.published), tl.cp
	tl.mu.Unlock()
	if grew {
		root, err := tl.tree.Root(size)
		if err != nil {
			tl.endPush(done)
			return err
		}
		if signed, err = tl.key.Sign(size, root); err != nil {
			tl.endPush(done)
			return err
		}
		cp = translog.Checkpoint{Origin: tl.key.Origin(), Size: size, Root: root}
	} else {
		// Re-pushed: the witnesses' fresh cosignatures replace the old.
		signed = tl.logSigned(signed)
	}
	go func() {
		defer tl.endPush(done)
		if grew {
			// Synced at each new checkpoint, beside the tick: across a
			// power loss the tree's file keeps only what was synced, and
			// the rest is appended again from the records at startup.
			if err := tl.sync(); err != nil {
				s.log.Warn("syncing the transparency log's tree", "err", err)
			}
		}
		lines := tl.pusher.Push(context.WithoutCancel(ctx), signed, cp.Size)
		tl.mu.Lock()
		var published []byte
		if cp.Size >= tl.cp.Size {
			tl.published, tl.cp = translog.AddSignatures(signed, lines...), cp
			published = bytes.Clone(tl.published)
		}
		tl.mu.Unlock()
		for _, st := range tl.pusher.Status() {
			if st.Failing != "" {
				s.log.Warn("witness failing", "party", st.Party, "witness", st.Name, "err", st.Failing)
			}
		}
		if published != nil {
			s.keepCheckpoint(context.WithoutCancel(ctx), published)
		}
	}()
	return nil
}

// repushEvery is how often an unchanged checkpoint is pushed again: a
// third of the cosignatures' allowed age, at most checkpointEvery.
func repushEvery(r rules.Rules) time.Duration {
	return min(checkpointEvery, time.Duration(r.WitnessMaxAgeS*float64(time.Second)/3))
}

// logSigned keeps only the log's own signature of a published checkpoint.
func (tl *transLog) logSigned(published []byte) []byte {
	n, err := note.Open(published, note.VerifierList(tl.key.Verifier()))
	if err != nil {
		return published
	}
	out := []byte(n.Text + "\n")
	for _, sig := range n.Sigs {
		out = append(out, "— "+sig.Name+" "+sig.Base64+"\n"...)
	}
	return out
}

func (tl *transLog) latestSigned() []byte {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return bytes.Clone(tl.published)
}

func (tl *transLog) endPush(done chan struct{}) {
	tl.mu.Lock()
	tl.pushing = false
	tl.mu.Unlock()
	close(done)
}

// waitPush waits for the push in flight, if any (tests, shutdown).
func (tl *transLog) waitPush(ctx context.Context) {
	tl.mu.Lock()
	done, pushing := tl.pushDone, tl.pushing
	tl.mu.Unlock()
	if !pushing || done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// PublishLog signs and pushes a checkpoint of the log now, and waits for
// the witnesses' answers (tests and the demo; the periodic job does not
// wait).
func (s *Service) PublishLog(ctx context.Context) error {
	s.tlog.waitPush(ctx)
	if err := s.publishLog(ctx, s.now()); err != nil {
		return err
	}
	s.tlog.waitPush(ctx)
	return nil
}

// LogKey is the log's origin and signed-note verifier key.
func (s *Service) LogKey() (origin, vkey string) {
	return s.tlog.key.Origin(), s.tlog.key.VerifierKey()
}

// LogCheckpoint is the latest checkpoint with every cosignature collected.
func (s *Service) LogCheckpoint() []byte { return s.tlog.latestSigned() }

// LogStatus reports the latest checkpoint and the witnesses.
func (s *Service) LogStatus() LogStatus {
	tl := s.tlog
	tl.mu.Lock()
	published, cp := bytes.Clone(tl.published), tl.cp
	tl.mu.Unlock()
	st := LogStatus{Origin: tl.key.Origin(), Size: cp.Size, Witnesses: tl.pusher.Status(), Checkpoint: string(published), Cosigned: []string{}}
	if published != nil {
		_, cosigs, err := translog.Open(published, tl.key.Origin(), tl.key.Verifier(), tl.pusher.Verifiers()...)
		if err == nil {
			for _, w := range st.Witnesses {
				if c, ok := cosigs[w.Name]; ok {
					st.Cosigned = append(st.Cosigned, w.Party)
					if c.Time.After(st.Time) {
						st.Time = c.Time
					}
				}
			}
		}
	}
	return st
}

// InclusionProof proves leaf index in the tree of size leaves.
func (s *Service) InclusionProof(index, size int64) (leaf translog.Hash, proof []translog.Hash, err error) {
	if leaf, err = s.tlog.tree.LeafHashAt(index); err != nil {
		return leaf, nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	proof, err = s.tlog.tree.InclusionProof(index, size)
	if errors.Is(err, translog.ErrSize) {
		err = fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return leaf, proof, err
}

// ConsistencyProof proves the tree of from leaves a prefix of the tree of
// size leaves.
func (s *Service) ConsistencyProof(from, size int64) ([]translog.Hash, error) {
	proof, err := s.tlog.tree.ConsistencyProof(from, size)
	if errors.Is(err, translog.ErrSize) {
		err = fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return proof, err
}

// setWitnesses follows a change of the rules' witnesses.
func (s *Service) setWitnesses(r rules.Rules) error {
	return s.tlog.pusher.SetWitnesses(endpoints(r))
}

// sync makes the tree's file durable so far (one fsync per new
// checkpoint, in the background: no write, proof or tick waits for it).
func (tl *transLog) sync() error {
	if tl.file == nil {
		return nil
	}
	return tl.file.Sync()
}

// close waits for the push in flight, syncs and closes the tree's file.
func (tl *transLog) close(ctx context.Context) error {
	tl.waitPush(ctx)
	if tl.file != nil {
		return errors.Join(tl.file.Sync(), tl.file.Close())
	}
	return nil
}

// logCheckpointAt returns the published checkpoint, with its
// cosignatures, when it covers no more than size records; otherwise (the
// export was cut before it) a checkpoint of exactly size records, signed
// now.
func (s *Service) logCheckpointAt(ctx context.Context, size int64) ([]byte, error) {
	tl := s.tlog
	tl.mu.Lock()
	published, cp := bytes.Clone(tl.published), tl.cp
	tl.mu.Unlock()
	if cp.Size <= size {
		return published, nil
	}
	if tl.tree.Size() < size {
		if err := s.syncTree(ctx); err != nil {
			return nil, err
		}
	}
	root, err := tl.tree.Root(size)
	if err != nil {
		return nil, err
	}
	return tl.key.Sign(size, root)
}
