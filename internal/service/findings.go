package service

// This file announces what an activation finds (the live volumes that
// break the new rules, the pairs that conflict only under them) after the
// activation commits, in short transactions of their own.
//
// Each finding is an event, an audit record and, for a pair, a hotline
// item to each owner: about 0.4-0.65 ms a pair on SQLite and 1.6 ms on
// PostgreSQL (measured on 2 loaded cores). Written inside the activation's
// transaction, 10,000 new pairs held the writers' lock for 4-6 s on SQLite
// and 16 s on PostgreSQL, past the 10 s other replicas' writers wait for
// it (lock_timeout: their alert commits fail and are retried) and past
// the detection lease, which is renewed under the same lock; 50,000 held
// it 35 s on SQLite, every alert commit of the process waiting meanwhile.
// So the activation's transaction only queues its findings, in the store
// (the meta space: a queue of batches of findingsBatchSize each, their
// content as found), atomically with the rules it brings into force; each
// batch is then announced in a transaction of its own, which also takes
// it off the queue: a batch is announced whole or not at all, once, and
// what a crash leaves queued is announced when the service runs again
// (the periodic job, on any replica). Alert commits take the writers'
// lock between two batches.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
)

// findingsBatchSize is how many findings one transaction announces: about
// 0.1-0.2 s of the writers' lock on SQLite, 0.4 s on PostgreSQL.
const findingsBatchSize = 256

// findingsQueueKey is the meta key of the queue of batches to announce;
// findingsBatchKey(i) holds batch i, for Head <= i < Tail.
const findingsQueueKey = "rules/findings"

func findingsBatchKey(i int64) string { return "rules/findings/" + strconv.FormatInt(i, 10) }

// findingsQueue is the queue of batches to announce. It starts again at 0
// once empty; each batch's row is deleted as it is announced.
type findingsQueue struct {
	Head int64 `json:"head"`
	Tail int64 `json:"tail"`
	// Findings counts the findings of the queued batches (0 in a queue
	// stored before it was counted: FindingsPending then counts each
	// batch whole).
	Findings int64 `json:"findings,omitempty"`
}

// findingsBatch is one batch of an activation's findings, as found: the
// volumes as they stood when the rules came into force.
type findingsBatch struct {
	RulesVersion int64         `json:"rules_version"`
	Flags        []pendingFlag `json:"flags,omitempty"`
	Pairs        []pendingPair `json:"pairs,omitempty"`
}

// pendingFlag is a volume that breaks the rules (volume.Flag).
type pendingFlag struct {
	Volume volume.Ref `json:"volume"`
	Field  string     `json:"field"`
	Reason string     `json:"reason"`
}

// pendingPair is a pair that conflicts only under the rules, both volumes
// reduced (what the event and the audit record show).
type pendingPair struct {
	A volume.Volume `json:"a"`
	B volume.Volume `json:"b"`
}

func readFindingsQueue(tx store.Meta) (findingsQueue, error) {
	var q findingsQueue
	b, err := tx.GetMeta(findingsQueueKey)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) == 0) {
		return q, nil
	}
	if err != nil {
		return q, err
	}
	if err := json.Unmarshal(b, &q); err != nil {
		return q, fmt.Errorf("service: the queue of findings: %w", err)
	}
	return q, nil
}

func putJSONMeta(tx store.Meta, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.PutMeta(key, b)
}

// queueFindings queues, in the transaction that brings rules version into
// force, the volumes that break them and the pairs that conflict only under
// them, in batches, the flags first.
func (s *Service) queueFindings(tx store.Tx, version int64, flags []volume.Flag, pairs []volume.Pair) error {
	if len(flags) == 0 && len(pairs) == 0 {
		return nil
	}
	q, err := readFindingsQueue(tx)
	if err != nil {
		return err
	}
	size := s.findingsBatchSize
	if size <= 0 {
		size = findingsBatchSize
	}
	b := findingsBatch{RulesVersion: version}
	flush := func() error {
		if len(b.Flags)+len(b.Pairs) == 0 {
			return nil
		}
		if err := putJSONMeta(tx, findingsBatchKey(q.Tail), b); err != nil {
			return err
		}
		q.Tail++
		b = findingsBatch{RulesVersion: version}
		return nil
	}
	for _, f := range flags {
		b.Flags = append(b.Flags, pendingFlag{Volume: f.Volume.Ref(), Field: f.Reason.Field, Reason: f.Reason.Msg})
		if len(b.Flags) == size {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	for _, p := range pairs {
		b.Pairs = append(b.Pairs, pendingPair{A: p.A.Reduced(), B: p.B.Reduced()})
		if len(b.Flags)+len(b.Pairs) == size {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	q.Findings += int64(len(flags) + len(pairs))
	return putJSONMeta(tx, findingsQueueKey, q)
}

// findingsPending reports whether findings wait to be announced, without
// the writers' lock.
func (s *Service) findingsPending(ctx context.Context) (bool, error) {
	var q findingsQueue
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		q, err = readFindingsQueue(tx)
		return err
	})
	return q.Head < q.Tail, err
}

// FindingsPending is how many findings of activations (volumes that break
// the rules, pairs that conflict only under them) wait to be announced:
// those an activating request left to the periodic job.
func (s *Service) FindingsPending(ctx context.Context) (int64, error) {
	var n int64
	err := s.st.View(ctx, func(tx store.Tx) error {
		q, err := readFindingsQueue(tx)
		if err != nil || q.Head >= q.Tail {
			return err
		}
		if n = q.Findings; n == 0 {
			// Queued before the count was kept.
			n = (q.Tail - q.Head) * int64(findingsBatchSize)
		}
		return nil
	})
	return n, err
}

// findingsInRequestFor bounds what an activating request announces before it
// answers: findingsBatchesPerTick batches (about half a second on
// SQLite, 1.6 s on PostgreSQL), and no batch begun after
// findingsInRequestFor. 50,000 findings are about 200 batches, 40 s to
// 80 s: announced whole in the request, the answer came after the
// client's timeout, and the client took the activation it had brought
// about for lost. The periodic job announces the rest, a few batches a
// tick, and the answer says how many wait (FindingsPending).
const findingsInRequestFor = time.Second

// announceFindings announces the queued findings, one batch a
// transaction, until none is left (or after maxBatches, when above 0, or
// when the time since start is past within, when above 0; at least one
// batch all the same). It runs after an activation, in its request
// (findingsInRequestFor), and as a periodic job for what a crash, a
// failure, a request's bound or another replica left.
func (s *Service) announceFindings(ctx context.Context, maxBatches int) error {
	return s.announceFindingsWithin(ctx, maxBatches, 0)
}

func (s *Service) announceFindingsWithin(ctx context.Context, maxBatches int, within time.Duration) error {
	// The batches are the service's transactions, not the request's: a
	// signed one's nonce, used by the activation, would be refused as a
	// replay, and its statement does not cover them.
	ctx = withoutStatement(ctx)
	start := time.Now() // the host's monotonic clock: a bound of the request's time
	for n := 0; maxBatches <= 0 || n < maxBatches; n++ {
		if n > 0 && within > 0 && time.Since(start) >= within {
			return nil
		}
		if pending, err := s.findingsPending(ctx); err != nil || !pending {
			return err
		}
		announced := false
		err := s.write(ctx, func(tx store.Tx) error {
			var err error
			announced, err = s.announceBatch(tx)
			return err
		})
		if err != nil {
			return fmt.Errorf("service: announcing the findings of new rules: %w", err)
		}
		if !announced {
			return nil
		}
	}
	return nil
}

// announceBatch announces, in tx, the batch at the head of the queue and
// takes it off; false when the queue is empty (another process took the
// last one).
func (s *Service) announceBatch(tx store.Tx) (bool, error) {
	q, err := readFindingsQueue(tx)
	if err != nil || q.Head >= q.Tail {
		return false, err
	}
	raw, err := tx.GetMeta(findingsBatchKey(q.Head))
	if err != nil {
		return false, fmt.Errorf("service: batch %d of the findings: %w", q.Head, err)
	}
	var b findingsBatch
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, fmt.Errorf("service: batch %d of the findings: %w", q.Head, err)
	}
	rl, err := rulesOfVersion(tx, b.RulesVersion)
	if err != nil {
		return false, err
	}
	now := s.now()
	flags := make([]volume.Flag, len(b.Flags))
	for i, f := range b.Flags {
		flags[i] = volume.Flag{Volume: volume.Volume{ID: f.Volume.ID, Party: f.Volume.Party, Version: f.Volume.Version},
			Reason: &fielderr.Error{Field: f.Field, Msg: f.Reason}}
	}
	if err := s.flagVolumes(tx, flags, rl, now); err != nil {
		return false, err
	}
	pairs := make([]volume.Pair, len(b.Pairs))
	for i := range b.Pairs {
		pairs[i] = volume.Pair{A: &b.Pairs[i].A, B: &b.Pairs[i].B}
	}
	if err := s.reportNewConflicts(tx, pairs, rl, now); err != nil {
		return false, err
	}
	if s.onFindingsBatch != nil {
		if err := s.onFindingsBatch(q.Head); err != nil {
			return false, err
		}
	}
	if err := tx.DeleteMeta(findingsBatchKey(q.Head)); err != nil {
		return false, err
	}
	q.Findings = max(q.Findings-int64(len(b.Flags)+len(b.Pairs)), 0)
	if q.Head++; q.Head == q.Tail {
		q = findingsQueue{}
	}
	return true, putJSONMeta(tx, findingsQueueKey, q)
}

// rulesOfVersion is the rules of version as the process runs with them:
// those of its proposal, by which every activation comes into force.
func rulesOfVersion(tx store.Tx, version int64) (rules.Rules, error) {
	rec, err := tx.GetRulesProposal(version)
	if err != nil {
		return rules.Rules{}, fmt.Errorf("service: the proposal of rules version %d: %w", version, err)
	}
	p, err := decodeProposal(rec)
	if err != nil {
		return rules.Rules{}, err
	}
	r := p.Rules
	r.Version = p.Version
	return inUse(r), nil
}

// findingsBatchesPerTick bounds what the periodic job announces at one
// tick (about half a second on SQLite, 1.6 s on PostgreSQL): the jobs
// after it (escalations among them) run at every tick all the same.
const findingsBatchesPerTick = 4

// announceFindingsJob is the periodic job that announces what an
// activation left queued (a crash, a failure, a request out of time,
// another replica's).
func (s *Service) announceFindingsJob(ctx context.Context, _ time.Time) error {
	return s.announceFindings(ctx, findingsBatchesPerTick)
}
