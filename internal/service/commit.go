package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/store"
)

// The commit of alert transitions. A safety system must not lose an alert,
// so the transitions the engine produces wait in a queue (tactical.pending)
// until a store transaction that carries their events, audit records and
// hotline items has committed:
//
//   - A batch's caller first waits for the resolutions of its own
//     transitions (resolution.go), holding no lock, so that the commits
//     of the others go on meanwhile; then it commits, in one transaction,
//     the queue up to its own transitions and, after them, those whose
//     resolutions are ready (group commit: the batches that arrived
//     meanwhile share it). A commit without a caller (the periodic job,
//     shutdown, a take-over) commits everything queued.
//   - When that fails, the queue is tried again alert by alert, each in its
//     own transaction, so that an alert that cannot be written holds back
//     no other alert (of another party, say): what committed is released,
//     what failed goes back to the front of the queue, ahead of anything
//     newer of the same alert.
//   - A failed commit may have committed all the same: the acknowledgement
//     of its COMMIT was lost (the connection dropped, the database server
//     restarted just after committing). Written again, the alerts would be
//     there twice (two alert_raised events, audit records and hotline
//     items, each with its own deadline and escalation), and nobody could
//     tell afterwards whether the alert was raised twice. Every write
//     reads its token back at once when its commit fails (writeTokens):
//     one that committed succeeds. When the store cannot be asked then
//     (it is down), the commit stays in doubt (tactical.inDoubt) and is
//     settled before anything else of the queue is committed: each commit
//     of alert transitions also writes its own token under this process's
//     key (alertCommitKey), which nothing else writes, and one transaction
//     reads it back, under the writers' lock, so that a COMMIT still
//     running on the server finishes first. Its token there: the commit
//     happened, and its transitions are released as committed; another
//     token: it did not and never will, and they are tried again. The key
//     is the process's own, not the leader's: the lease may go to another
//     replica, which commits alerts of its own, and come back before this
//     one settles (a take-over reconciles, but commits go on from the
//     moment the lease is taken), so a key shared by the leaders could
//     hold another's token over one that committed. When the rows of
//     this process were deleted meanwhile (another took it for ended:
//     paused, or cut off from the store, for ten minutes; process.go),
//     the token went with them: the commit's first event, whose id and
//     content it kept, tells instead (firstEventIn), so that a commit in
//     doubt does not hold back every alert after it for good.
//   - Failed attempts are spaced by an exponential backoff (commitBackoff)
//     and logged; the waiting callers and the periodic job retry until the
//     commit succeeds or the service closes. Nothing is ever dropped,
//     except by a replica that no longer leads detection: the new leader
//     reconciles the store with its own engine (ReconcileDetection).
//
// What a transition writes never fails for what a party sent: ids and
// callsigns are checked at the edge and escaped in the texts built from
// them (alertText).

// queued is one transition waiting for its commit, and the batch (if any)
// waiting for it.
type queued struct {
	tr alert.Transition
	w  *commitWaiter
	// res is the transition's resolution being computed (resolution.go),
	// nil when it gets none.
	res *pendingResolution
}

// commitWaiter is released when every transition of one batch has
// committed (or been handed to another leader).
type commitWaiter struct {
	left int           // transitions not yet committed; tactical.mu held
	done chan struct{} // closed when left reaches 0
	// res are the resolutions being computed for the batch's transitions.
	res []*pendingResolution
}

// alertCommitMeta prefixes the meta key holding the token of the last
// commit of alert transitions of a process, by which a commit whose
// acknowledgement was lost is recognised as committed (settleInDoubt).
const alertCommitMeta = "alert/commit/"

// alertCommitKey is this process's key of the tokens of its commits of
// alert transitions (t.commitMu held). Each process start leaves one small
// row, deleted once it ends (process.go).
func (t *tactical) alertCommitKey() string {
	t.ensureInstance()
	return alertCommitMeta + t.instance
}

// inDoubt is a commit of alert transitions that failed and may have
// committed nevertheless.
type inDoubt struct {
	token string
	qs    []queued
	// posted is what its transaction posted to the hotline, applied when
	// it proves committed.
	posted map[string]int
	// first is the first event its transaction appended, id included:
	// when the token's row was deleted with this process's other rows
	// (settle), that event at that id says that it committed.
	first store.Event
}

// errInDoubt wraps the failure of a commit whose outcome is not known:
// its transitions are held in tactical.inDoubt until it is settled.
var errInDoubt = errors.New("service: the outcome of a commit of alert transitions is not known yet")

// ready reports whether a commit would not wait for q's resolution.
func (q *queued) ready() bool { return q.res == nil || q.res.ready() }

// Backoff between failed attempts: commitBackoffMin doubling up to
// commitBackoffMax.
const (
	commitBackoffMin = 50 * time.Millisecond
	commitBackoffMax = 5 * time.Second
	// splitGiveUp is how many alerts in a row may fail in one alert-by-alert
	// attempt before the store is taken to be down and the attempt ends.
	splitGiveUp = 3
)

func commitBackoff(failures int) time.Duration {
	d := commitBackoffMin
	for i := 1; i < failures && d < commitBackoffMax; i++ {
		d *= 2
	}
	return min(d, commitBackoffMax)
}

// enqueueLocked queues transitions (t.mu held). With wait, it returns the
// waiter released once they are committed (nil when there is nothing to
// commit).
func (s *Service) enqueueLocked(trs []alert.Transition, wait bool) *commitWaiter {
	t := s.tac
	toCommit := trs
	if (len(t.held) > 0 || len(t.behind) > 0 || len(t.spent) > 0) && s.leadsDetection() {
		trs, toCommit = t.takeHeld(trs, s.Rules().LevelRank, s.now())
	}
	// The disclosure picture takes them first, on every replica, leading
	// or not.
	if pic := s.picture(); pic != nil && len(trs) > 0 {
		pic.Alerts(trs, s.now())
	}
	for i := range trs {
		if trs[i].State == alert.StateCleared {
			s.cleared.add(&trs[i])
		}
	}
	if !s.leadsDetection() {
		// Nobody may commit them: kept for a takeover, which records
		// late those open while nobody led (late.go).
		s.logUnled(trs)
		return nil
	}
	if len(toCommit) == 0 {
		return nil
	}
	trs = toCommit
	var w *commitWaiter
	if wait {
		w = &commitWaiter{left: len(trs), done: make(chan struct{})}
	}
	ps := s.startResolutions(trs)
	for i, tr := range trs {
		t.supersede(tr.ID, ps[i])
		t.pending = append(t.pending, queued{tr: tr, w: w, res: ps[i]})
		if w != nil && ps[i] != nil {
			w.res = append(w.res, ps[i])
		}
	}
	return w
}

// supersede records p as the resolution of alert id's latest transition
// (nil: it gets none) and marks the one before it, if any, superseded: it
// is computed only if it started already (t.mu held).
func (t *tactical) supersede(id string, p *pendingResolution) {
	if old := t.latest[id]; old != nil {
		old.superseded.Store(true)
	}
	if p == nil {
		delete(t.latest, id)
		return
	}
	if t.latest == nil {
		t.latest = map[string]*pendingResolution{}
	}
	t.latest[id] = p
}

// release marks the transitions as committed (t.mu held).
func release(qs []queued) {
	for _, q := range qs {
		if q.w == nil {
			continue
		}
		q.w.left--
		if q.w.left == 0 {
			close(q.w.done)
		}
	}
}

// commitTransitions returns once the transitions behind w are committed:
// it waits for their resolutions (each at most until its deadline), then
// tries the commit itself (it serves the queue up to w's transitions and
// what is ready after them) and again after each backoff. When ctx ends
// first it returns an error, and the transitions stay queued: the next
// caller or the periodic job commits them.
func (s *Service) commitTransitions(ctx context.Context, w *commitWaiter) error {
	if w == nil {
		return nil
	}
	// Waited for here, not under the commit's lock: the commits of the
	// batches before this one, whose resolutions are ready, are not held
	// up by these (BENCHMARKS.md).
	for _, p := range w.res {
		p.await()
	}
	for {
		select {
		case <-w.done:
			return nil
		default:
		}
		wait, err := s.commitQueued(ctx, w)
		if err == nil {
			continue
		}
		if up := (*store.UpgradedError)(nil); errors.As(err, &up) {
			// No retry can succeed: this process writes nothing more
			// (fence.go). The transitions stay queued.
			return fmt.Errorf("service: alert transitions not committed: %w", err)
		}
		select {
		case <-w.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("service: alert transitions are queued and their commit is being retried: %w (last failure: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// errBackingOff is what commitQueued returns while the backoff of the last
// failure runs.
var errBackingOff = errors.New("service: waiting before the next commit of alert transitions")

// commitQueued makes one attempt at committing the queued transitions
// for w (takeQueued; nil: all of them), unless the backoff of a previous
// failure still runs. On failure it returns how long to wait before the
// next attempt.
func (s *Service) commitQueued(ctx context.Context, w *commitWaiter) (time.Duration, error) {
	t := s.tac
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	if wait := time.Until(t.retryAt); t.failures > 0 && wait > 0 {
		return wait, errBackingOff
	}
	return s.commitQueuedLocked(ctx, w)
}

// takeQueued removes from the queue and returns what a commit for w
// takes (t.mu held): with w nil, everything; otherwise the queue up to
// w's last transition (none when they are all committed already) and,
// after it, each transition up to the first whose resolution is not
// ready, so that a commit waits only for resolutions queued before its
// caller's, which were started before them.
func (t *tactical) takeQueued(w *commitWaiter) []queued {
	n := len(t.pending)
	if w != nil {
		n = 0
		for i := range t.pending {
			if t.pending[i].w == w {
				n = i + 1
			}
		}
		for n < len(t.pending) && t.pending[n].ready() {
			n++
		}
	}
	batch := t.pending[:n:n]
	if n == len(t.pending) {
		t.pending = nil
	} else {
		t.pending = t.pending[n:]
	}
	return batch
}

// commitQueuedLocked is commitQueued with t.commitMu held and no backoff.
func (s *Service) commitQueuedLocked(ctx context.Context, w *commitWaiter) (time.Duration, error) {
	t := s.tac
	// The commit also serves other callers, and a commit in doubt holds
	// everyone's: neither may end with this caller's context.
	ctx = context.WithoutCancel(ctx)
	if err := s.settleInDoubt(ctx); err != nil {
		return t.retryLater(s, t.queuedTransitions(), err)
	}
	t.mu.Lock()
	batch := t.takeQueued(w)
	t.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	fence, leads := s.detectionFence()
	if !leads {
		s.leftToLeader(batch)
		return 0, nil
	}
	err := s.commitGroup(ctx, batch, fence)
	if err == nil {
		t.failures = 0
		return 0, nil
	}
	if errors.Is(err, ErrNotLeading) {
		s.leftToLeader(batch)
		return 0, nil
	}
	if errors.Is(err, errInDoubt) {
		return t.retryLater(s, len(batch), err)
	}
	s.log.Warn("committing alert transitions failed; trying alert by alert", "count", len(batch), "err", err)
	var untried, failed []queued
	groups := byAlert(batch)
	inARow := 0
	for i, g := range groups {
		if inARow == splitGiveUp {
			for _, g := range groups[i:] {
				untried = append(untried, g...)
			}
			break
		}
		if gerr := s.commitGroup(ctx, g, fence); gerr != nil {
			if errors.Is(gerr, ErrNotLeading) {
				// The lease changed hands during this attempt: what is
				// left is the new leader's.
				s.leftToLeader(append(append(untried, failed...), slices.Concat(groups[i:]...)...))
				t.failures = 0
				return 0, nil
			}
			err = gerr
			if errors.Is(gerr, errInDoubt) {
				// g is held until its commit is settled, and nothing
				// else is committed before.
				for _, g := range groups[i+1:] {
					untried = append(untried, g...)
				}
				break
			}
			failed = append(failed, g...)
			inARow++
			continue
		}
		inARow = 0
	}
	if len(failed) == 0 && len(untried) == 0 {
		t.failures = 0
		return 0, nil
	}
	// The alerts not tried go first next time, then those that failed, so
	// that a few alerts that cannot be written never starve the others.
	t.mu.Lock()
	t.pending = append(append(untried, failed...), t.pending...)
	t.mu.Unlock()
	return t.retryLater(s, len(failed)+len(untried), err)
}

// retryLater counts a failed attempt that left n transitions uncommitted
// and starts the backoff before the next (t.commitMu held).
func (t *tactical) retryLater(s *Service, n int, err error) (time.Duration, error) {
	t.failures++
	wait := commitBackoff(t.failures)
	t.retryAt = time.Now().Add(wait)
	s.log.Error("alert transitions not committed; retrying", "transitions", n,
		"attempt", t.failures, "retry_in", wait, "err", err)
	return wait, err
}

// settleInDoubt settles the commit in doubt, if any (t.commitMu held):
// committed, its transitions are released; not, they go back to the front
// of the queue. It returns an error, and the commit stays in doubt, when
// the store cannot tell yet.
func (s *Service) settleInDoubt(ctx context.Context) error {
	t := s.tac
	d := t.inDoubt
	if d == nil {
		return nil
	}
	committed, err := s.settle(ctx, d)
	switch {
	case errors.Is(err, ErrNotLeading):
		t.setInDoubt(nil)
		s.leftToLeader(d.qs)
	case err != nil:
		return err
	case committed:
		t.setInDoubt(nil)
		s.committedUnacknowledged(ctx, d)
	default:
		t.mu.Lock()
		t.inDoubt = nil
		t.pending = append(slices.Clone(d.qs), t.pending...)
		t.mu.Unlock()
	}
	return nil
}

// settle tells whether the failed commit d committed all the same: its
// token is the last in the store (t.commitMu held). It reads it in a write
// transaction, which on PostgreSQL first takes the writers' lock, so that
// a COMMIT of d still running on the server ends before. The error wraps
// ErrNotLeading when this replica no longer leads detection (d is then the
// new leader's to reconcile), and errInDoubt when the store cannot tell.
func (s *Service) settle(ctx context.Context, d *inDoubt) (committed bool, err error) {
	fence, leads := s.detectionFence()
	if !leads {
		return false, ErrNotLeading
	}
	var swept bool
	err = s.write(withoutStatement(ctx), func(tx store.Tx) error {
		if fence != nil {
			if err := fence(tx); err != nil {
				return err
			}
		}
		token, err := tx.GetMeta(s.tac.alertCommitKey())
		if errors.Is(err, store.ErrNotFound) {
			// Not there because it was deleted (process.go), or
			// because it did not commit.
			err := s.process.checkRegistered(tx)
			if errors.Is(err, errRowsSwept) {
				// Deleted, perhaps with d's token in it: d's own
				// first event tells.
				swept = true
				committed, err = d.firstEventIn(tx)
			}
			return err
		}
		// Another token: it did not commit (only this process writes
		// the row, and a sweep only deletes it).
		committed = err == nil && string(token) == d.token
		return err
	})
	if err != nil && !errors.Is(err, ErrNotLeading) {
		err = fmt.Errorf("%w: reading it back: %w", errInDoubt, err)
	}
	if err == nil && swept {
		s.log.Warn("this process's rows were deleted (it was taken for ended): a commit of alert transitions in doubt was settled by its first event",
			"committed", committed, "transitions", len(d.qs))
	}
	return committed, err
}

// firstEventIn tells whether d committed when its token cannot (its row
// was deleted with this process's other rows): its transaction appended
// d.first at d.first.ID, and the event ids are given in the order of the
// commits, without gaps, under the writers' lock. Had d not committed, the
// id would have gone to the next commit to append an event, which is never
// d's first event: only a commit of d's transitions writes it, and none is
// tried before d is settled. It fails with errRowsSwept when d appended
// nothing it can tell by (no commit of transitions does).
func (d *inDoubt) firstEventIn(tx store.Events) (bool, error) {
	if d.first.ID == 0 {
		return false, errRowsSwept
	}
	evs, err := tx.EventsAfter(d.first.ID-1, 1)
	if err != nil {
		return false, err
	}
	return len(evs) == 1 && evs[0].ID == d.first.ID && evs[0].Kind == d.first.Kind && bytes.Equal(evs[0].Body, d.first.Body), nil
}

// committedUnacknowledged releases the transitions of d, a commit that
// failed but had committed (t.commitMu held).
func (s *Service) committedUnacknowledged(ctx context.Context, d *inDoubt) {
	s.log.Warn("a commit of alert transitions reported as failed had committed: its acknowledgement was lost", "transitions", len(d.qs))
	s.committed(d.qs, d.posted)
	// Its events were never handed to the live streams.
	if err := s.CatchUpEvents(ctx); err != nil {
		s.log.Warn("publishing the events of a commit whose acknowledgement was lost", "err", err)
	}
}

// setInDoubt records the commit in doubt (nil: none) (t.commitMu held).
func (t *tactical) setInDoubt(d *inDoubt) {
	t.mu.Lock()
	t.inDoubt = d
	t.mu.Unlock()
}

// committed releases transitions whose commit posted what posted to the
// hotline (t.commitMu held).
func (s *Service) committed(qs []queued, posted map[string]int) {
	t := s.tac
	t.applyPosted(posted)
	t.mu.Lock()
	release(qs)
	t.mu.Unlock()
}

// leftToLeader releases transitions taken from the queue that this replica
// no longer leads detection to commit (t.commitMu held): the new leader
// reconciles the store with its own engine (ReconcileDetection).
func (s *Service) leftToLeader(qs []queued) {
	s.log.Warn("no longer leading detection: queued alert transitions are left to the new leader", "count", len(qs))
	t := s.tac
	t.mu.Lock()
	release(qs)
	// The new leader's engine may not have them all (late.go).
	s.logUnledQueued(qs)
	t.mu.Unlock()
}

// commitGroup commits transitions in one store transaction and releases
// them (t.commitMu held). fence (when not nil) runs first in the
// transaction (see Peers.FenceDetection). A commit whose acknowledgement
// was lost succeeds (write settles it); when the store could not tell
// whether it committed, it returns an error wrapping errInDoubt and holds
// qs in t.inDoubt (settleInDoubt); otherwise its error means that nothing
// was written.
func (s *Service) commitGroup(ctx context.Context, qs []queued, fence func(store.Meta) error) error {
	t := s.tac
	token := t.nextToken()
	trs := make([]alert.Transition, len(qs))
	for i, q := range qs {
		trs[i] = q.tr
	}
	// Resolutions were started when the transitions were queued and are
	// computed meanwhile from the live picture; the commit takes those
	// ready in time (a transaction waits for nothing but the store).
	resolutions := s.resolutions(qs)
	var posted map[string]int
	var first store.Event
	// The transitions are the service's, whichever signed batch caused
	// them: its statement is recorded with the batch (recordBatchStatement).
	err := s.write(withoutStatement(ctx), func(tx store.Tx) error {
		posted, first = map[string]int{}, store.Event{}
		if fence != nil {
			if err := fence(tx); err != nil {
				return err
			}
		}
		var err error
		if first, err = s.persistTransitions(tx, trs, resolutions, posted); err != nil {
			return err
		}
		return tx.PutMeta(t.alertCommitKey(), []byte(token))
	})
	if err == nil {
		s.committed(qs, posted)
		return nil
	}
	if errors.Is(err, ErrNotLeading) {
		return err
	}
	if !errors.Is(err, ErrOutcomeUnknown) {
		return err // nothing was written
	}
	t.setInDoubt(&inDoubt{token: token, qs: qs, posted: posted, first: first})
	return fmt.Errorf("%w: %w", errInDoubt, err)
}

// nextToken returns the token of a new commit attempt: unique across
// attempts, processes and replicas (t.commitMu held).
func (t *tactical) nextToken() string {
	t.ensureInstance()
	t.attempts++
	return t.instance + "/" + strconv.FormatUint(t.attempts, 10)
}

func (t *tactical) ensureInstance() {
	if t.instance == "" {
		t.instance = rand.Text()
	}
}

// byAlert splits transitions by alert, in the order of each alert's first
// transition, keeping the order within an alert.
func byAlert(qs []queued) [][]queued {
	at := map[string]int{}
	var out [][]queued
	for _, q := range qs {
		i, ok := at[q.tr.ID]
		if !ok {
			i = len(out)
			at[q.tr.ID] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], q)
	}
	return out
}

// queuedTransitions is how many transitions wait for their commit, those
// of a commit in doubt included.
func (t *tactical) queuedTransitions() int {
	n, _ := t.uncommitted()
	return n
}

// uncommitted is queuedTransitions, and whether a commit is in doubt (the
// metrics).
func (t *tactical) uncommitted() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.pending)
	if t.inDoubt != nil {
		n += len(t.inDoubt.qs)
	}
	return n, t.inDoubt != nil
}

// commitQueuedJob is the periodic retry of a failed commit whose callers
// stopped waiting (their requests ended).
func (s *Service) commitQueuedJob(ctx context.Context, _ time.Time) error {
	if s.tac.queuedTransitions() == 0 {
		return nil
	}
	_, err := s.commitQueued(ctx, nil)
	if errors.Is(err, errBackingOff) {
		return nil
	}
	return err
}
