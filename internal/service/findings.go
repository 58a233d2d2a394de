package service

// This file announces what an activation finds (the live volumes that
// break the new rules, the pairs that conflict only under them) after the
// activation commits, in short transactions of their own.
//
// Each finding is an event and an audit record, and each pair is named in
// a hotline item to both owners (one per volume and other party,
// conflictItems). When each pair was an item of its own, a pair took
// about 0.4-0.65 ms on SQLite and 1.6 ms on PostgreSQL (measured on 2
// loaded cores). Written inside the activation's
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
//
// The batches are announced in order, so one that fails holds every later
// one back: each failure is counted (metrics), and from a few in a row
// logged as an ERROR naming the batch. A batch whose own stored content
// cannot be read (unreadableBatchError) would hold them back for ever: it
// is set aside (kept in the store, audited to everyone, an ERROR, a
// metric), never silently; so is the queue's own row when it cannot be
// read (unreadableQueueError), the queue rebuilt from the batches' rows
// (setAsideQueue). A batch that fails otherwise is retried until it is
// announced.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
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
	// ByParty counts, for each party, the findings of the queued batches
	// that concern it (a volume of its that breaks the rules, a pair with
	// a volume of its): what FindingsPendingFor tells it. A party hears
	// of a finding only when it concerns it (the owners' events and audit
	// records), so it is told of none of the others', not even their
	// number. Nil in a queue stored before it was kept.
	ByParty map[string]int64 `json:"by_party,omitempty"`
}

// countFor adds n to the count of each party of parties (each finding
// once for a party, however many of its volumes it holds).
func (q *findingsQueue) countFor(n int64, parties ...string) {
	for i, p := range parties {
		if slices.Contains(parties[:i], p) {
			continue
		}
		if q.ByParty == nil {
			q.ByParty = map[string]int64{}
		}
		if q.ByParty[p] += n; q.ByParty[p] <= 0 {
			delete(q.ByParty, p)
		}
	}
}

// findingsBatch is one batch of an activation's findings, as found: the
// volumes as they stood when the rules came into force.
type findingsBatch struct {
	RulesVersion int64         `json:"rules_version"`
	Flags        []pendingFlag `json:"flags,omitempty"`
	Pairs        []pendingPair `json:"pairs,omitempty"`
	// Grouped says that the hotline items of the pairs are Items, of
	// this batch or a later one (conflictItems). A batch stored before
	// it was kept has no items: its pairs are grouped into items when it
	// is announced, within the batch.
	Grouped bool          `json:"grouped,omitempty"`
	Items   []pendingItem `json:"items,omitempty"`
}

// pendingItem is a hotline item telling of pairs that conflict only
// under the rules: the conflicts of Volume with Conflicts (one party's
// volumes), posted with the batch of the last of these pairs, so after
// the events of all of them.
type pendingItem struct {
	Volume    hotline.SubjectVolume   `json:"volume"`
	Conflicts []hotline.SubjectVolume `json:"conflicts"`
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
		return findingsQueue{}, &unreadableQueueError{"not JSON of a queue", err}
	}
	if q.Head < 0 || q.Tail < q.Head {
		return findingsQueue{}, &unreadableQueueError{"its head and tail out of order", fmt.Errorf("head %d, tail %d", q.Head, q.Tail)}
	}
	return q, nil
}

// unreadableQueueError is the failure of every reader of the queue whose
// own row is not a queue (corrupt, or its head and tail out of order): it
// would fail every tick for ever, every batch queued behind it, and each
// activation with findings. Only the periodic job sets it aside
// (setAsideQueue), which rebuilds the queue from the batches' rows.
// what says how it is unreadable without its content (the audit record
// to everyone: the row counts every party's findings), err with it (the
// operator's log).
type unreadableQueueError struct {
	what string
	err  error
}

func (e *unreadableQueueError) Error() string {
	return fmt.Sprintf("service: the queue of findings cannot be read: %v", e.err)
}

func (e *unreadableQueueError) Unwrap() error { return e.err }

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
		q.countFor(1, f.Volume.Party)
		if len(b.Flags) == size {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	// The items are carried by the batch of their last pair: a batch
	// whose items name maxItemVolumesPerBatch volumes is closed early, so
	// that a batch's items are bounded as its pairs are.
	ends := conflictItems(pairs)
	itemVolumes := 0
	for i, p := range pairs {
		b.Pairs = append(b.Pairs, pendingPair{A: p.A.Reduced(), B: p.B.Reduced()})
		b.Grouped = true
		b.Items = append(b.Items, ends[i]...)
		for _, it := range ends[i] {
			itemVolumes += 1 + len(it.Conflicts)
		}
		q.countFor(1, p.A.Party, p.B.Party)
		if len(b.Flags)+len(b.Pairs) == size || itemVolumes >= maxItemVolumesPerBatch {
			if err := flush(); err != nil {
				return err
			}
			itemVolumes = 0
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

// FindingsPendingFor is FindingsPending as p may be told it: for the
// operator, every finding; for a party, those that concern it, never the
// others' (0 when the queue was stored before they were counted by
// party, and for the findings of a batch set aside).
func (s *Service) FindingsPendingFor(ctx context.Context, p party.Principal) (int64, error) {
	if p.Operator {
		return s.FindingsPending(ctx)
	}
	var n int64
	err := s.st.View(ctx, func(tx store.Tx) error {
		q, err := readFindingsQueue(tx)
		if err != nil || q.Head >= q.Tail {
			return err
		}
		n = q.ByParty[p.Party]
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
		pending, err := s.findingsPending(ctx)
		var unreadable *unreadableQueueError
		if errors.As(err, &unreadable) && ctx.Err() == nil {
			if setAside, err := s.batchFailed(ctx, findingsQueueRow, err); err != nil || !setAside {
				return err
			}
			continue
		}
		if err != nil || !pending {
			return err
		}
		announced := false
		head := int64(-1)
		err = s.write(ctx, func(tx store.Tx) error {
			var err error
			announced, err = s.announceBatch(tx, &head)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				// The caller is gone (an activating request whose
				// client hung up): no failure of the batch, which the
				// periodic job announces.
				return fmt.Errorf("service: announcing the findings of new rules: %w", err)
			}
			if setAside, err := s.batchFailed(ctx, head, err); err != nil || !setAside {
				return err
			}
			continue
		}
		s.findingsFailures.reset()
		if !announced {
			return nil
		}
	}
	return nil
}

// findingsSetAsideAfter is how many failures in a row of a batch whose
// content cannot be read (unreadableBatchError) set it aside: a few
// ticks, so that a write to the store in the middle of it is not taken
// for its content.
const findingsSetAsideAfter = 3

// findingsStuckAfter is how many failures in a row of a batch turn the
// warning into an error naming it.
const findingsStuckAfter = 3

// findingsFailures counts the failures in a row of the batch at the head
// of the queue, in this process.
type findingsFailures struct {
	mu     sync.Mutex
	batch  int64
	inRow  int
	failed bool
}

// note counts a failure of batch i and returns the failures in a row.
func (f *findingsFailures) note(i int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failed || f.batch != i {
		f.batch, f.inRow, f.failed = i, 0, true
	}
	f.inRow++
	return f.inRow
}

func (f *findingsFailures) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batch, f.inRow, f.failed = 0, 0, false
}

func (f *findingsFailures) inARow() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inRow
}

// findingsQueueRow stands for the queue's own row where batchFailed and
// findingsFailures take a batch.
const findingsQueueRow = -2

// batchFailed handles the failure err of announcing batch head (-1 when
// the queue could not be read for a reason of the store's,
// findingsQueueRow when the queue's own row cannot be read): counted
// (metrics), logged, and, when it is the batch's (or the queue's) own
// unreadable content, findingsSetAsideAfter times in a row, the batch set
// aside (setAsideBatch; the queue: setAsideQueue), so that the later ones
// are announced. It returns whether it was set aside, and the error to
// return otherwise.
func (s *Service) batchFailed(ctx context.Context, head int64, err error) (bool, error) {
	err = fmt.Errorf("service: announcing the findings of new rules: %w", err)
	s.m.FindingsBatchFailures.Inc()
	if head == findingsQueueRow {
		return s.queueFailed(ctx, err)
	}
	if head < 0 {
		return false, err
	}
	n := s.findingsFailures.note(head)
	var unreadable *unreadableBatchError
	if errors.As(err, &unreadable) && n >= findingsSetAsideAfter {
		var setAside *setAsideBatch
		werr := s.write(ctx, func(tx store.Tx) error {
			var err error
			setAside, err = s.setAsideBatch(tx, head)
			return err
		})
		if werr != nil {
			s.log.Error("a batch of findings of new rules that cannot be read could not be set aside: every later batch waits behind it", "batch", head, "failures", n, "err", err, "set_aside_err", werr)
			return false, err
		}
		if setAside != nil {
			s.m.FindingsBatchesSetAside.Inc()
			s.findingsFailures.reset()
			s.log.Error("a batch of findings of new rules that cannot be read was set aside unannounced, audited (rules_findings_set_aside) and kept in the store: the parties were not told of its findings; the later batches are announced",
				"batch", head, "rules_version", setAside.RulesVersion, "findings", setAside.Findings, "kept_as", setAside.KeptAs, "sha256", setAside.SHA256, "err", err)
			return true, nil
		}
		// Readable after all (written again meanwhile): tried again.
		return true, nil
	}
	if n >= findingsStuckAfter {
		s.log.Error("a batch of findings of new rules cannot be announced: every later batch waits behind it", "batch", head, "failures", n, "err", err)
	}
	return false, err
}

// queueFailed handles err, the queue's own row unreadable
// (unreadableQueueError): from findingsSetAsideAfter failures in a row,
// the queue is set aside and rebuilt from the batches' rows
// (setAsideQueue), logged as an ERROR once and counted. It returns
// whether it was, and the error to return otherwise.
func (s *Service) queueFailed(ctx context.Context, err error) (bool, error) {
	n := s.findingsFailures.note(findingsQueueRow)
	if n < findingsSetAsideAfter {
		return false, err
	}
	var rebuilt *setAsideQueue
	werr := s.write(ctx, func(tx store.Tx) error {
		var err error
		rebuilt, err = s.setAsideQueue(tx)
		return err
	})
	if werr != nil {
		s.log.Error("the queue of findings of new rules cannot be read and could not be set aside: no batch is announced", "failures", n, "err", err, "set_aside_err", werr)
		return false, err
	}
	s.findingsFailures.reset()
	if rebuilt != nil {
		s.m.FindingsQueuesSetAside.Inc()
		s.log.Error("the queue of findings of new rules could not be read: set aside, audited (rules_findings_queue_set_aside) and kept in the store, and rebuilt from the batches queued; the batches are announced",
			"kept_as", rebuilt.KeptAs, "sha256", rebuilt.SHA256, "head", rebuilt.Head, "tail", rebuilt.Tail, "batches", rebuilt.Batches, "findings", rebuilt.Findings, "err", err)
	}
	// Set aside, or readable after all (written again meanwhile): tried
	// again.
	return true, nil
}

// setAsideQueue is the audit record of a queue set aside and rebuilt.
type setAsideQueue struct {
	Error string `json:"error"`
	// KeptAs is the meta key its row is kept under, SHA256 the row's
	// hash.
	KeptAs string `json:"kept_as"`
	SHA256 string `json:"sha256"`
	// Head and Tail are those of the queue rebuilt, Batches the batch
	// rows found between them, Findings those their content tells of:
	// the operator's (the ERROR log), not in the record to everyone,
	// since they count the findings of every party's volumes, which a
	// party is told of its own only (FindingsPendingFor).
	Head     int64 `json:"-"`
	Tail     int64 `json:"-"`
	Batches  int   `json:"-"`
	Findings int64 `json:"-"`
}

// findingsBatchPrefix begins the meta key of every queued batch
// (findingsBatchKey).
const findingsBatchPrefix = findingsQueueKey + "/"

// setAsideQueue replaces, in tx, the queue's row when it still cannot be
// read (unreadableQueueError): the row kept under findingsSetAsidePrefix,
// the queue rebuilt from the batch rows in the store (from the first to
// the last; one missing between them fails as a batch whose row is
// missing, and is set aside in its turn), its counts from their content
// as far as it can be read, an audit record to everyone. nil when there
// was nothing to set aside.
func (s *Service) setAsideQueue(tx store.Tx) (*setAsideQueue, error) {
	_, rerr := readFindingsQueue(tx)
	var unreadable *unreadableQueueError
	if !errors.As(rerr, &unreadable) {
		return nil, rerr
	}
	raw, err := tx.GetMeta(findingsQueueKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	rec := &setAsideQueue{Error: "the queue's row is " + unreadable.what, SHA256: hex.EncodeToString(sum[:])}
	rec.KeptAs = findingsSetAsidePrefix + "queue-" + rec.SHA256
	rows, err := tx.MetaWithPrefix(findingsBatchPrefix)
	if err != nil {
		return nil, err
	}
	var q findingsQueue
	var batches []int64
	for key := range rows {
		i, err := strconv.ParseInt(key[len(findingsBatchPrefix):], 10, 64)
		if err != nil || i < 0 || findingsBatchKey(i) != key {
			continue // not a batch's row
		}
		batches = append(batches, i)
	}
	slices.Sort(batches)
	if len(batches) > 0 {
		q.Head, q.Tail = batches[0], batches[len(batches)-1]+1
	}
	for _, i := range batches {
		c := readBatchCounts(rows[findingsBatchKey(i)])
		q.Findings += int64(c.findings)
		for _, owners := range c.owners {
			q.countFor(1, owners...)
		}
	}
	rec.Head, rec.Tail, rec.Batches, rec.Findings = q.Head, q.Tail, len(batches), q.Findings
	if err := tx.PutMeta(rec.KeptAs, raw); err != nil {
		return nil, err
	}
	if err := s.audit(tx, "deconflict", "rules_findings_queue_set_aside", audit.Everyone, rec); err != nil {
		return nil, err
	}
	return rec, putJSONMeta(tx, findingsQueueKey, q)
}

// batchCounts is what a batch's row tells of its findings as far as it
// can be read: its rules version, how many findings it holds, and the
// owners of each finding whose owners it names (a flag's one, a pair's
// two).
type batchCounts struct {
	rulesVersion int64
	findings     int
	owners       [][]string
}

// readBatchCounts reads raw, a batch's row, for its counts (zero when it
// is not even a JSON object of a batch's fields).
func readBatchCounts(raw []byte) batchCounts {
	var c batchCounts
	var partial struct {
		RulesVersion int64             `json:"rules_version"`
		Flags        []json.RawMessage `json:"flags"`
		Pairs        []json.RawMessage `json:"pairs"`
	}
	if json.Unmarshal(raw, &partial) != nil {
		return c
	}
	c.rulesVersion, c.findings = partial.RulesVersion, len(partial.Flags)+len(partial.Pairs)
	for _, f := range partial.Flags {
		var owner struct{ Volume struct{ Party string } }
		if json.Unmarshal(f, &owner) == nil && owner.Volume.Party != "" {
			c.owners = append(c.owners, []string{owner.Volume.Party})
		}
	}
	for _, pr := range partial.Pairs {
		var owners struct{ A, B struct{ Party string } }
		if json.Unmarshal(pr, &owners) == nil && owners.A.Party != "" && owners.B.Party != "" {
			c.owners = append(c.owners, []string{owners.A.Party, owners.B.Party})
		}
	}
	return c
}

// setAsideBatch is the audit record of a batch set aside.
type setAsideBatch struct {
	Batch int64 `json:"batch"`
	// RulesVersion and Findings, when its content says (0 otherwise).
	// Findings is not in the record, which is to everyone: it counts the
	// findings of every party's volumes in the batch, a number a party is
	// told of its own only (FindingsPendingFor); the operator has it in
	// the ERROR log.
	RulesVersion int64  `json:"rules_version,omitempty"`
	Findings     int    `json:"-"`
	Error        string `json:"error"`
	// KeptAs is the meta key its content is kept under, SHA256 the
	// content's hash.
	KeptAs string `json:"kept_as"`
	SHA256 string `json:"sha256"`
}

// findingsSetAsidePrefix keys the batches set aside, by their content's
// hash.
const findingsSetAsidePrefix = "rules/findings-set-aside/"

// setAsideBatch takes batch head off the queue, in tx, when it is still
// the head and still cannot be read (unreadableBatchError): its content
// kept under findingsSetAsidePrefix, an audit record to everyone (the
// parties may miss notices of their volumes), the queue's count lowered
// by its findings when it says how many. nil when there was nothing to
// set aside.
func (s *Service) setAsideBatch(tx store.Tx, head int64) (*setAsideBatch, error) {
	q, err := readFindingsQueue(tx)
	if err != nil || q.Head != head || q.Head >= q.Tail {
		return nil, err
	}
	_, _, rerr := readBatch(tx, head)
	var unreadable *unreadableBatchError
	if !errors.As(rerr, &unreadable) {
		return nil, rerr
	}
	raw, err := tx.GetMeta(findingsBatchKey(head))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	rec := &setAsideBatch{Batch: head, Error: unreadable.err.Error(), SHA256: hex.EncodeToString(sum[:])}
	rec.KeptAs = findingsSetAsidePrefix + rec.SHA256
	c := readBatchCounts(raw)
	rec.RulesVersion, rec.Findings = c.rulesVersion, c.findings
	// Off the parties' counts, those whose owners it still tells.
	for _, owners := range c.owners {
		q.countFor(-1, owners...)
	}
	if err := tx.PutMeta(rec.KeptAs, raw); err != nil {
		return nil, err
	}
	if err := tx.DeleteMeta(findingsBatchKey(head)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err := s.audit(tx, "deconflict", "rules_findings_set_aside", audit.Everyone, rec); err != nil {
		return nil, err
	}
	q.Findings = max(q.Findings-int64(rec.Findings), 0)
	if q.Head++; q.Head == q.Tail {
		q = findingsQueue{}
	}
	return rec, putJSONMeta(tx, findingsQueueKey, q)
}

// announceBatch announces, in tx, the batch at the head of the queue and
// takes it off; false when the queue is empty (another process took the
// last one). head is the batch it tried.
func (s *Service) announceBatch(tx store.Tx, head *int64) (bool, error) {
	q, err := readFindingsQueue(tx)
	if err != nil || q.Head >= q.Tail {
		return false, err
	}
	*head = q.Head
	b, rl, err := readBatch(tx, q.Head)
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
	items := b.Items
	if !b.Grouped {
		// Stored before the items were: its pairs' items, grouped
		// within the batch.
		for _, ends := range conflictItems(pairs) {
			items = append(items, ends...)
		}
	}
	if err := s.reportNewConflicts(tx, pairs, items, rl, now); err != nil {
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
	q.Findings = max(q.Findings-int64(b.count()), 0)
	b.uncount(&q)
	if q.Head++; q.Head == q.Tail {
		q = findingsQueue{}
	}
	return true, putJSONMeta(tx, findingsQueueKey, q)
}

// maxItemVolumesPerBatch bounds the volumes the hotline items of one
// batch name (their subjects), as hotline.MaxVolumeConflictsPerWrite
// bounds a write's: a batch is closed once its items name that many.
const maxItemVolumesPerBatch = hotline.MaxVolumeConflictsPerWrite

// conflictItems groups the pairs of an activation into the hotline items
// that tell them, as a write's conflicts are told (one item per other
// party, hotline.GroupVolumeConflicts), rather than one item per pair: a
// rules change over a crowded airspace posted thousands, each for both
// parties' staff to acknowledge. Each pair is told on the thread of the
// one of its volumes that conflicts with more volumes of the other's
// party (A's when as many), so that a volume newly in conflict with many
// is one item naming them all, not many each naming it; in a stack where
// each of one party's volumes conflicts with each of another's, there
// are as many items as the smaller party has volumes there. ends[i] lists
// the items whose last pair is pairs[i]; every pair is in exactly one.
func conflictItems(pairs []volume.Pair) [][]pendingItem {
	type side struct{ party, id, otherParty string }
	type volumeKey struct{ party, id string }
	type pairKey struct{ head, other volumeKey }
	degree := map[side]int{}
	for _, p := range pairs {
		degree[side{p.A.Party, p.A.ID, p.B.Party}]++
		degree[side{p.B.Party, p.B.ID, p.A.Party}]++
	}
	var heads []volumeKey
	headOf := map[volumeKey]hotline.SubjectVolume{}
	conflicts := map[volumeKey][]hotline.SubjectVolume{}
	index := make(map[pairKey]int, len(pairs))
	for i, p := range pairs {
		head, other := p.A, p.B
		if degree[side{other.Party, other.ID, head.Party}] > degree[side{head.Party, head.ID, other.Party}] {
			head, other = other, head
		}
		hk, ok := volumeKey{head.Party, head.ID}, volumeKey{other.Party, other.ID}
		if _, seen := headOf[hk]; !seen {
			heads = append(heads, hk)
			headOf[hk] = subjectVolume(head)
		}
		conflicts[hk] = append(conflicts[hk], subjectVolume(other))
		index[pairKey{hk, ok}] = i
	}
	ends := make([][]pendingItem, len(pairs))
	for _, hk := range heads {
		for _, group := range hotline.GroupVolumeConflicts(conflicts[hk]) {
			last := group[len(group)-1]
			i := index[pairKey{hk, volumeKey{last.Party, last.ID}}]
			ends[i] = append(ends[i], pendingItem{Volume: headOf[hk], Conflicts: group})
		}
	}
	return ends
}

func (b *findingsBatch) count() int { return len(b.Flags) + len(b.Pairs) }

// uncount takes the batch's findings off q's counts by party.
func (b *findingsBatch) uncount(q *findingsQueue) {
	for _, f := range b.Flags {
		q.countFor(-1, f.Volume.Party)
	}
	for _, p := range b.Pairs {
		q.countFor(-1, p.A.Party, p.B.Party)
	}
}

// unreadableBatchError is the failure of a batch whose own stored
// content keeps it from ever being announced: its row missing or not a
// batch, or naming rules whose proposal the store does not hold. Only
// such a batch is ever set aside (setAsideBatch); a batch whose
// announcement fails otherwise (the store, a write refused) is tried
// again, every later one waiting behind it.
type unreadableBatchError struct {
	batch int64
	err   error
}

func (e *unreadableBatchError) Error() string {
	return fmt.Sprintf("service: batch %d of the findings cannot be read: %v", e.batch, e.err)
}

func (e *unreadableBatchError) Unwrap() error { return e.err }

// readBatch reads batch i of the queue and the rules it was found under,
// as the process runs with them (those of its proposal, by which every
// activation comes into force); an *unreadableBatchError when its content
// is at fault.
func readBatch(tx store.Tx, i int64) (findingsBatch, rules.Rules, error) {
	var b findingsBatch
	raw, err := tx.GetMeta(findingsBatchKey(i))
	if errors.Is(err, store.ErrNotFound) {
		return b, rules.Rules{}, &unreadableBatchError{i, errors.New("its row is missing")}
	}
	if err != nil {
		return b, rules.Rules{}, fmt.Errorf("service: batch %d of the findings: %w", i, err)
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return b, rules.Rules{}, &unreadableBatchError{i, err}
	}
	rec, err := tx.GetRulesProposal(b.RulesVersion)
	if errors.Is(err, store.ErrNotFound) {
		return b, rules.Rules{}, &unreadableBatchError{i, fmt.Errorf("no proposal of its rules version %d", b.RulesVersion)}
	}
	if err != nil {
		return b, rules.Rules{}, fmt.Errorf("service: the proposal of rules version %d: %w", b.RulesVersion, err)
	}
	p, err := decodeProposal(rec)
	if ne := (*NewerRulesError)(nil); errors.As(err, &ne) {
		// Not the batch's fault: a newer version of the program reads
		// it, and announces it. Set aside here, its findings would
		// never be told.
		return b, rules.Rules{}, fmt.Errorf("service: batch %d of the findings: %w", i, err)
	}
	if err != nil {
		return b, rules.Rules{}, &unreadableBatchError{i, err}
	}
	r := p.Rules
	r.Version = p.Version
	return b, inUse(r), nil
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
