package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/store"
)

// The commit of alert transitions. A safety system must not lose an alert,
// so the transitions the engine produces wait in a queue (tactical.pending)
// until a store transaction that carries their events, audit records and
// hotline items has committed:
//
//   - The first try commits everything queued in one transaction (group
//     commit: the batches that arrived meanwhile share it).
//   - When that fails, the queue is tried again alert by alert, each in its
//     own transaction, so that an alert that cannot be written holds back
//     no other alert (of another party, say): what committed is released,
//     what failed goes back to the front of the queue, ahead of anything
//     newer of the same alert.
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
}

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
	if len(trs) == 0 || !s.leadsDetection() {
		return nil
	}
	t := s.tac
	var w *commitWaiter
	if wait {
		w = &commitWaiter{left: len(trs), done: make(chan struct{})}
	}
	ps := s.startResolutions(trs)
	for i, tr := range trs {
		t.supersede(tr.ID, ps[i])
		t.pending = append(t.pending, queued{tr: tr, w: w, res: ps[i]})
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

// commitTransitions returns once the transitions behind w are committed,
// trying the commit itself (it serves everything queued) and again after
// each backoff. When ctx ends first it returns an error, and the
// transitions stay queued: the next caller or the periodic job commits
// them.
func (s *Service) commitTransitions(ctx context.Context, w *commitWaiter) error {
	if w == nil {
		return nil
	}
	for {
		select {
		case <-w.done:
			return nil
		default:
		}
		wait, err := s.commitQueued(ctx)
		if err == nil {
			continue
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

// commitQueued makes one attempt at committing every queued transition,
// unless the backoff of a previous failure still runs. On failure it
// returns how long to wait before the next attempt.
func (s *Service) commitQueued(ctx context.Context) (time.Duration, error) {
	t := s.tac
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	if wait := time.Until(t.retryAt); t.failures > 0 && wait > 0 {
		return wait, errBackingOff
	}
	return s.commitQueuedLocked(ctx)
}

// commitQueuedLocked is commitQueued with t.commitMu held and no backoff.
func (s *Service) commitQueuedLocked(ctx context.Context) (time.Duration, error) {
	t := s.tac
	t.mu.Lock()
	batch := t.pending
	t.pending = nil
	t.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	if !s.leadsDetection() {
		s.log.Warn("no longer leading detection: queued alert transitions are left to the new leader", "count", len(batch))
		t.mu.Lock()
		release(batch)
		t.mu.Unlock()
		return 0, nil
	}
	// The commit serves other callers too: it must not die with this
	// caller's context.
	ctx = context.WithoutCancel(ctx)
	err := s.commitGroup(ctx, batch)
	if err == nil {
		t.failures = 0
		return 0, nil
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
		if gerr := s.commitGroup(ctx, g); gerr != nil {
			err = gerr
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
	t.failures++
	wait := commitBackoff(t.failures)
	t.retryAt = time.Now().Add(wait)
	s.log.Error("alert transitions not committed; retrying", "transitions", len(failed)+len(untried),
		"attempt", t.failures, "retry_in", wait, "err", err)
	return wait, err
}

// commitGroup commits transitions in one store transaction and releases
// them (t.commitMu held).
func (s *Service) commitGroup(ctx context.Context, qs []queued) error {
	t := s.tac
	trs := make([]alert.Transition, len(qs))
	for i, q := range qs {
		trs[i] = q.tr
	}
	// Resolutions were started when the transitions were queued and are
	// computed meanwhile from the live picture; the commit takes those
	// ready in time (a transaction waits for nothing but the store).
	resolutions := s.resolutions(qs)
	var posted map[string]int
	// The transitions are the service's, whichever signed batch caused
	// them: its statement is recorded with the batch (recordBatchStatement).
	err := s.write(withoutStatement(ctx), func(tx store.Tx) error {
		posted = map[string]int{}
		return s.persistTransitions(tx, trs, resolutions, posted)
	})
	if err != nil {
		return err
	}
	t.applyPosted(posted)
	t.mu.Lock()
	release(qs)
	t.mu.Unlock()
	return nil
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

// queuedTransitions is how many transitions wait for their commit.
func (t *tactical) queuedTransitions() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// commitQueuedJob is the periodic retry of a failed commit whose callers
// stopped waiting (their requests ended).
func (s *Service) commitQueuedJob(ctx context.Context, _ time.Time) error {
	if s.tac.queuedTransitions() == 0 {
		return nil
	}
	_, err := s.commitQueued(ctx)
	if errors.Is(err, errBackingOff) {
		return nil
	}
	return err
}
