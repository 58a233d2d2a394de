package service

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
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
//
// Replicas on a shared store are one log to the witnesses and to the
// parties: only the replica that leads detection signs and pushes
// checkpoints (leadsLog), and it stores each one (LogCheckpointMeta)
// before it publishes it; every replica publishes the store's latest, and
// the store's only ever grows (keepCheckpoint). Two replicas pushing would
// each tell a witness holding the other's later checkpoint that the log
// lost records or forked; a replica publishing its own older checkpoint
// would show a party's check a log smaller than its witness cosigned, and
// a client the log going back.
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

// LogWitnessesMeta is the store's meta key of the witnesses' state as the
// replica that pushes to them last saw it (storedWitnesses), stored with
// each checkpoint it keeps, so that the replicas that do not push report
// it too instead of a state of their own that never changes.
const LogWitnessesMeta = "log/witnesses"

// storedWitnesses is the value under LogWitnessesMeta.
type storedWitnesses struct {
	Replica   string           `json:"replica"`
	At        time.Time        `json:"at"`
	Witnesses []witness.Status `json:"witnesses"`
}

// LogStatus is what GET /v1/log/witnesses reports and the console shows.
type LogStatus struct {
	Origin     string           `json:"origin"`
	Size       int64            `json:"size"`
	Cosigned   []string         `json:"cosigned_by"`
	Time       time.Time        `json:"time"`
	Witnesses  []witness.Status `json:"witnesses"`
	Checkpoint string           `json:"checkpoint"`
	// Replica is the replica answering, and Pushes whether it is the one
	// that pushes the checkpoints to the witnesses (only the replica that
	// leads detection does).
	Replica string `json:"replica"`
	Pushes  bool   `json:"pushes"`
	// WitnessesFrom is the replica whose view of the witnesses Witnesses
	// is: this one when it pushes; otherwise the pusher whose last report
	// the store holds, stored at WitnessesAsOf; "" when none is known yet
	// (Witnesses then knows nothing of them but their names).
	WitnessesFrom string     `json:"witnesses_from"`
	WitnessesAsOf *time.Time `json:"witnesses_as_of,omitempty"`
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
	// The tree's file against the checkpoint the store keeps: a file
	// whose stored hashes were damaged (a bit flipped on the disk, a
	// stray write) gives roots the records never had, and the log signed
	// them, a fork signed by its own key that the witnesses refuse and
	// the parties' checks report, for ever, as SyncTree checks only the
	// last leaf.
	var stored translog.Checkpoint
	err = s.st.View(ctx, func(tx store.Tx) error {
		var err error
		_, stored, err = s.storedCheckpoint(tx)
		return err
	})
	if err != nil {
		s.log.Warn("reading the stored log checkpoint", "err", err)
	} else if stored.Size > 0 {
		if err := s.treeExtends(ctx, stored, "the stored checkpoint"); err != nil {
			return err
		}
	}
	// A checkpoint from the start, so one is always published; the first
	// tick pushes it to the witnesses. A replica that does not lead
	// publishes the store's latest, when there is one, and signs one of
	// its own only to have one (it stores and pushes nothing).
	if s.cfg.Peers != nil {
		if err := s.adoptStoredCheckpoint(ctx); err != nil {
			s.log.Warn("reading the stored log checkpoint", "err", err)
		}
		if tl.published != nil {
			return nil
		}
	}
	size := tree.Size()
	root, err := tree.Root(size)
	if err != nil {
		return err
	}
	signed, err := lk.Sign(size, root)
	if err != nil {
		return err
	}
	tl.published, tl.cp = signed, translog.Checkpoint{Origin: origin, Size: size, Root: root}
	if s.leadsLog() {
		s.keepCheckpoint(ctx, signed)
	}
	return nil
}

// leadsLog reports whether this replica signs the log's checkpoints and
// pushes them to the witnesses: the one that leads detection (on the
// embedded store, the only one). One lease decides both, so that a replica
// that took over detection also continues the log.
func (s *Service) leadsLog() bool { return s.leadsDetection() }

// storedCheckpoint reads the checkpoint kept in the store (nil: none) and
// verifies the log's signature on it.
func (s *Service) storedCheckpoint(tx store.Meta) ([]byte, translog.Checkpoint, error) {
	signed, err := tx.GetMeta(LogCheckpointMeta)
	if errors.Is(err, store.ErrNotFound) {
		return nil, translog.Checkpoint{}, nil
	}
	if err != nil {
		return nil, translog.Checkpoint{}, err
	}
	cp, _, err := translog.Open(signed, s.tlog.key.Origin(), s.tlog.key.Verifier())
	if err != nil {
		return nil, translog.Checkpoint{}, fmt.Errorf("service: the stored log checkpoint: %w", err)
	}
	return signed, cp, nil
}

// adoptStoredCheckpoint publishes the store's checkpoint (signed and
// pushed by the replica that leads, with the cosignatures it collected)
// when it is later than this replica's, or of the same size with other
// cosignatures: never an older one. The tree is caught up first when the
// checkpoint covers records it does not hold yet, so that this replica
// proves what it publishes, and the checkpoint must commit to the tree
// the records make.
func (s *Service) adoptStoredCheckpoint(ctx context.Context) error {
	var (
		signed []byte
		cp     translog.Checkpoint
	)
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		signed, cp, err = s.storedCheckpoint(tx)
		return err
	})
	if err != nil || signed == nil {
		return err
	}
	tl := s.tlog
	tl.mu.Lock()
	stale := cp.Size < tl.cp.Size || (cp.Size == tl.cp.Size && bytes.Equal(signed, tl.published))
	tl.mu.Unlock()
	if stale {
		return nil
	}
	if cp.Size > tl.tree.Size() {
		if err := s.syncTree(ctx); err != nil {
			return err
		}
	}
	root, err := tl.tree.Root(cp.Size)
	if err != nil {
		return fmt.Errorf("service: the stored log checkpoint of size %d: %w", cp.Size, err)
	}
	if root != cp.Root {
		return fmt.Errorf("service: the stored log checkpoint of size %d commits to root %x, the records to %x", cp.Size, cp.Root[:8], root[:8])
	}
	tl.mu.Lock()
	if cp.Size >= tl.cp.Size {
		tl.published, tl.cp = signed, cp
	}
	tl.mu.Unlock()
	return nil
}

// keepCheckpoint stores the latest published checkpoint, unless the store
// holds a later one (a replica that led before this one, paused, ending its
// push after the takeover): the stored checkpoint never goes back. It
// reports whether the store holds published now. On the embedded store
// this is best effort (the server publishes it anyway; a store without it
// only makes the CLI's export end without one); replicas publish only what
// was stored, since the others publish the store's.
func (s *Service) keepCheckpoint(ctx context.Context, published []byte) bool {
	cp, _, err := translog.Open(published, s.tlog.key.Origin(), s.tlog.key.Verifier())
	if err != nil {
		s.log.Error("storing the published log checkpoint", "err", err)
		return false
	}
	var kept bool
	err = s.st.Update(ctx, func(tx store.Tx) error {
		kept = false
		old, err := tx.GetMeta(LogCheckpointMeta)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			// One that does not verify (another key's) is replaced.
			held, _, err := translog.Open(old, s.tlog.key.Origin(), s.tlog.key.Verifier())
			if err == nil && held.Size > cp.Size {
				return nil
			}
		}
		kept = true
		if err := tx.PutMeta(LogCheckpointMeta, published); err != nil {
			return err
		}
		// What the push saw of the witnesses, for the replicas that do
		// not push.
		ws, err := json.Marshal(storedWitnesses{Replica: s.cfg.ReplicaName, At: s.now().UTC(), Witnesses: s.tlog.pusher.Status()})
		if err != nil {
			return err
		}
		return tx.PutMeta(LogWitnessesMeta, ws)
	})
	if err != nil {
		s.log.Warn("storing the published log checkpoint", "err", err)
		return false
	}
	return kept
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

// treeExtends checks that the tree, as its stored hashes give it, extends
// cp (a checkpoint of this log the records made), by the consistency proof
// the tree itself gives (a proof read from damaged hashes does not prove
// the root cp has). When it does not, the tree is rebuilt from the records.
// If the rebuilt tree does not extend cp either, the records are no longer
// those cp commits to (a store restored from an older copy, or edited):
// that is said, and the tree is kept as the records make it, which is
// what the log signs and the witnesses judge.
func (s *Service) treeExtends(ctx context.Context, cp translog.Checkpoint, what string) error {
	tree := s.tlog.tree
	extends := func() error {
		size := tree.Size()
		if size < cp.Size {
			return nil // the records are fewer: SyncTree's to judge
		}
		root, err := tree.Root(size)
		if err != nil {
			return err
		}
		proof, err := tree.ConsistencyProof(cp.Size, size)
		if err != nil {
			return err
		}
		return translog.VerifyConsistency(cp.Size, cp.Root, size, root, proof)
	}
	err := extends()
	if err == nil {
		return nil
	}
	s.log.Error("transparency log: the tree's stored hashes do not extend "+what+"; rebuilding the tree from the records", "size", cp.Size, "err", err)
	s.tlog.syncMu.Lock()
	err = tree.Truncate(0)
	s.tlog.syncMu.Unlock()
	if err != nil {
		return err
	}
	if err := s.syncTree(ctx); err != nil {
		return err
	}
	if err := extends(); err != nil {
		s.log.Error("transparency log: the records do not make "+what+": they changed since it was signed", "size", cp.Size, "err", err)
	}
	return nil
}

// publishLog is the periodic job: catch the tree up, sign a checkpoint
// when it grew, and push it to the witnesses in the background. The
// checkpoint is published once the witnesses answered (or failed), so what
// is published carries the cosignatures that could be had. The latest
// checkpoint is pushed again every repushEvery even when the tree did not
// grow, so the witnesses' cosignatures stay fresher than the rules'
// witness_max_age_s.
//
// On a shared store, a replica that does not lead only catches its tree up
// and publishes the store's latest checkpoint; the one that leads starts
// from it too, so that after a takeover it continues the log where the
// last leader left it.
func (s *Service) publishLog(ctx context.Context, now time.Time) error {
	if err := s.syncTree(ctx); err != nil {
		return err
	}
	if s.cfg.Peers != nil {
		// One that does not match the records does not stop the log:
		// the leader signs the records as they are, and the witnesses
		// judge.
		if err := s.adoptStoredCheckpoint(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("transparency log: the stored checkpoint is not published", "err", err)
		}
	}
	if !s.leadsLog() {
		return nil
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
		// The last checkpoint signed must be a prefix of the tree about
		// to be signed: a tree whose file was damaged since is rebuilt
		// from the records first, rather than signed.
		if cp.Size > 0 {
			if err := s.treeExtends(ctx, cp, "the last checkpoint signed"); err != nil {
				tl.endPush(done)
				return err
			}
			size = tl.tree.Size()
		}
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
		for _, st := range tl.pusher.Status() {
			if st.Failing != "" {
				s.log.Warn("witness failing", "party", st.Party, "witness", st.Name, "err", st.Failing)
			}
		}
		published := translog.AddSignatures(signed, lines...)
		tl.mu.Lock()
		later := cp.Size >= tl.cp.Size
		tl.mu.Unlock()
		if !later {
			return
		}
		// Stored before it is published: whatever a replica published,
		// the others publish too (or a later one).
		if !s.keepCheckpoint(context.WithoutCancel(ctx), published) && s.cfg.Peers != nil {
			return
		}
		tl.mu.Lock()
		if cp.Size >= tl.cp.Size {
			tl.published, tl.cp = published, cp
		}
		tl.mu.Unlock()
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
// On a shared store it is the store's latest, read now: the leader may
// have published one since this replica's tick, and a client going from
// one replica to another must not see the log go back.
func (s *Service) LogCheckpoint(ctx context.Context) []byte {
	s.refreshCheckpoint(ctx)
	return s.tlog.latestSigned()
}

// refreshCheckpoint publishes the store's latest checkpoint on a shared
// store. When the store does not answer, the last one this replica
// published is published again (never an older one).
func (s *Service) refreshCheckpoint(ctx context.Context) {
	if s.cfg.Peers == nil {
		return
	}
	if err := s.adoptStoredCheckpoint(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("reading the stored log checkpoint", "err", err)
	}
}

// LogStatus reports the latest checkpoint and the witnesses.
func (s *Service) LogStatus(ctx context.Context) LogStatus {
	s.refreshCheckpoint(ctx)
	tl := s.tlog
	tl.mu.Lock()
	published, cp := bytes.Clone(tl.published), tl.cp
	tl.mu.Unlock()
	st := LogStatus{Origin: tl.key.Origin(), Size: cp.Size, Witnesses: tl.pusher.Status(), Checkpoint: string(published), Cosigned: []string{},
		Replica: s.cfg.ReplicaName, Pushes: s.leadsLog()}
	if st.Pushes {
		st.WitnessesFrom = st.Replica
	} else {
		s.witnessesFromStore(ctx, &st)
	}
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

// witnessesFromStore fills st.Witnesses of a replica that does not push
// with the pusher's last report in the store: its own pusher never pushes,
// so its state would say every witness was never reached. A witness the
// report does not name (the rules changed since) stays as this replica
// knows it, with nothing known.
func (s *Service) witnessesFromStore(ctx context.Context, st *LogStatus) {
	var b []byte
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		b, err = tx.GetMeta(LogWitnessesMeta)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	var stored storedWitnesses
	if err == nil {
		err = json.Unmarshal(b, &stored)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("reading the witnesses' state the pushing replica stored", "err", err)
		}
		return
	}
	byName := map[string]witness.Status{}
	for _, w := range stored.Witnesses {
		byName[w.Name] = w
	}
	for i, w := range st.Witnesses {
		if got, ok := byName[w.Name]; ok {
			st.Witnesses[i] = got
		}
	}
	at := stored.At
	st.WitnessesFrom, st.WitnessesAsOf = stored.Replica, &at
}

// catchUpTo catches the tree up with the records when a proof asks for a
// tree larger than it holds: on a shared store, another replica published
// a checkpoint of records this one's tick did not add yet.
func (s *Service) catchUpTo(ctx context.Context, size int64) error {
	if s.cfg.Peers == nil || size <= s.tlog.tree.Size() {
		return nil
	}
	return s.syncTree(ctx)
}

// InclusionProof proves leaf index in the tree of size leaves.
func (s *Service) InclusionProof(ctx context.Context, index, size int64) (leaf translog.Hash, proof []translog.Hash, err error) {
	if err := s.catchUpTo(ctx, size); err != nil {
		return leaf, nil, err
	}
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
func (s *Service) ConsistencyProof(ctx context.Context, from, size int64) ([]translog.Hash, error) {
	if err := s.catchUpTo(ctx, size); err != nil {
		return nil, err
	}
	proof, err := s.tlog.tree.ConsistencyProof(from, size)
	if errors.Is(err, translog.ErrSize) {
		err = fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return proof, err
}

// setWitnesses follows a change of the rules' witnesses. When they
// changed, the next tick pushes the latest checkpoint even if the tree did
// not grow: on a shared store the leader may learn the rules after the
// records of their activation were signed, and a new witness would wait
// for its first checkpoint until the next re-push.
func (s *Service) setWitnesses(r rules.Rules) error {
	tl := s.tlog
	if !slices.Equal(endpoints(r), tl.pusher.Endpoints()) {
		tl.mu.Lock()
		tl.lastTry = time.Time{}
		tl.mu.Unlock()
	}
	return tl.pusher.SetWitnesses(endpoints(r))
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
	s.refreshCheckpoint(ctx)
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
