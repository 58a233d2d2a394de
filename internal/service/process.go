package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// Each process keeps two rows of its own in the meta space: the token of
// its last write (writeTokens, "write/<id>") and of its last commit of
// alert transitions (alertCommitMeta, "alert/commit/<id>"). Only the
// process itself reads them, right after one of its commits failed, to
// tell whether it committed all the same; once the process has ended they
// are spent. Left alone, every process start would add two rows for good.
//
// A process ending cleanly deletes its rows (Close). A process that
// crashed cannot, so each process also keeps a registration,
// "process/<id>", whose count it raises every processBeatEvery; every
// process watches the others' registrations and deletes the three rows of
// a process whose count has not changed for processGoneAfter on its own
// monotonic clock (no replica compares its wall clock with another's, as
// for the leases of package replica). The rows left without a registration
// (by the processes that ran before registrations existed) are deleted
// once unchanged for as long.
//
// A live process paused longer than that (SIGSTOP) loses its rows, which
// is safe: a settle reads its token and its registration in one
// transaction, and one that finds the token's row and the registration
// gone answers that the outcome is unknown rather than that the write did
// not commit (a row holding another token says it did not: only the
// process writes it, a sweep only deletes it); a commit of alert
// transitions, which would hold back every alert after it, is told by its
// first event instead (inDoubt.firstEventIn). Such a process registers
// again at its next beat once nothing of it is in doubt (registerAgain):
// a commit in doubt from before would find its lost row looking intact,
// those after it are settled as any process's.
const (
	processMeta      = "process/"
	writeMeta        = "write/"
	processBeatEvery = time.Minute
	processGoneAfter = 10 * time.Minute
)

// process is this process's registration and its watch of the others'.
type process struct {
	id string
	// mono is the clock of the beats and the sweeps: the host's
	// monotonic clock (time.Now), not the service's (Config.Now), which
	// on PostgreSQL replicas is the host's corrected by its offset from
	// the database's, moving by as much as the offset does when a host's
	// clock steps: moved back an hour, this process stopped beating for
	// the hour, and the others deleted its rows while it lived; moved
	// forward, it deleted the rows of every live process that had not
	// beaten since its last sweep a minute before.
	mono func() time.Time
	// swept is set once this process found its registration deleted.
	swept atomic.Bool

	// Touched by the periodic job only.
	beats     uint64
	lastBeat  time.Time
	lastSweep time.Time
	// others are the other processes' registrations, and their rows
	// without one, by meta key, as last seen and since when they were
	// seen so.
	others map[string]registrationSeen
}

type registrationSeen struct {
	value string
	since time.Time
}

func newProcess() *process {
	return &process{id: rand.Text(), mono: time.Now, others: map[string]registrationSeen{}}
}

func (p *process) key() string { return processMeta + p.id }

// processRows are the meta keys of process id.
func processRows(id string) []string {
	return []string{processMeta + id, writeMeta + id, alertCommitMeta + id}
}

// errRowsSwept is why a settle cannot tell: this process's rows were
// deleted as those of a process that ended.
var errRowsSwept = errors.New("service: this process was taken for ended (paused too long) and its rows were deleted: whether the commit happened cannot be told")

// checkRegistered is read in a settle's transaction, after the token was
// not found: it fails with errRowsSwept when the registration is gone.
func (p *process) checkRegistered(tx store.Meta) error {
	_, err := tx.GetMeta(p.key())
	if errors.Is(err, store.ErrNotFound) {
		return errRowsSwept
	}
	return err
}

// register puts this process's registration (New, before its first
// write).
func (s *Service) register(ctx context.Context) error {
	p := s.process
	p.lastBeat = p.mono()
	return s.st.Update(ctx, func(tx store.Tx) error {
		return tx.PutMeta(p.key(), []byte("0"))
	})
}

// beatProcess is the periodic job that raises this process's count, so
// that the others see it alive; now is on p.mono's clock.
func (s *Service) beatProcess(ctx context.Context, now time.Time) error {
	p := s.process
	if now.Sub(p.lastBeat) < processBeatEvery {
		return nil
	}
	p.lastBeat = now
	if p.swept.Load() {
		return s.registerAgain(ctx)
	}
	beats := p.beats + 1
	err := s.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.GetMeta(p.key()); err != nil {
			return err
		}
		return tx.PutMeta(p.key(), []byte(strconv.FormatUint(beats, 10)))
	})
	if errors.Is(err, store.ErrNotFound) {
		p.swept.Store(true)
		return s.registerAgain(ctx)
	}
	if err == nil {
		p.beats = beats
	}
	return err
}

// errInDoubtSinceSwept: an alert commit of this process is in doubt, and
// it cannot register again until it is settled.
var errInDoubtSinceSwept = errors.New("service: this process's rows were deleted (it was taken for ended) and a commit of alert transitions is in doubt: it registers again once that is settled")

// registerAgain registers a process whose rows were deleted, once nothing
// of it is in doubt: no write runs (s.wmu: a write settles its own failed
// commit before it lets go) and no commit of alert transitions runs or
// waits to be settled (commitMu, inDoubt). A failed commit made before
// could not be told from one whose row was deleted; those made after are
// settled as any process's: not for the rest of its life answered
// unknown, an alert commit left in doubt for good holding back every alert
// after it. The count goes on from the last one put, so that whoever
// watched it before the rows were deleted sees it change.
func (s *Service) registerAgain(ctx context.Context) error {
	p := s.process
	t := s.tac
	// commitMu before the writers' lock, as a commit takes them.
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	t.mu.Lock()
	doubt := t.inDoubt != nil
	t.mu.Unlock()
	if doubt {
		return errInDoubtSinceSwept
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	beats := p.beats + 1
	err := s.st.Update(ctx, func(tx store.Tx) error {
		return tx.PutMeta(p.key(), []byte(strconv.FormatUint(beats, 10)))
	})
	if err != nil {
		return fmt.Errorf("%w; registering it again: %w", errRowsSwept, err)
	}
	p.beats = beats
	p.swept.Store(false)
	s.log.Warn("this process was taken for ended (paused, or cut off from the store, too long) and its rows deleted: registered again")
	return nil
}

// sweepEndedProcesses is the periodic job that deletes the rows of the
// processes whose registration has not changed for processGoneAfter, and
// the rows without a registration (of processes that ran before
// registrations existed, or whose registration was deleted while they were
// paused) that have not changed for as long: each commit puts a new token,
// so a row unchanged that long is not one its process is about to read
// back. now is on p.mono's clock.
func (s *Service) sweepEndedProcesses(ctx context.Context, now time.Time) error {
	p := s.process
	if now.Sub(p.lastSweep) < processBeatEvery {
		return nil
	}
	p.lastSweep = now
	rows := map[string][]byte{}
	err := s.st.View(ctx, func(tx store.Tx) error {
		for _, prefix := range []string{processMeta, writeMeta, alertCommitMeta} {
			got, err := tx.MetaWithPrefix(prefix)
			if err != nil {
				return err
			}
			maps.Copy(rows, got)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for key := range p.others {
		if _, ok := rows[key]; !ok {
			delete(p.others, key)
		}
	}
	var errs []error
	for key, v := range rows {
		id, registration := strings.CutPrefix(key, processMeta)
		if !registration {
			id = strings.TrimPrefix(strings.TrimPrefix(key, writeMeta), alertCommitMeta)
			if _, registered := rows[processMeta+id]; registered {
				continue // swept with its registration
			}
		}
		if id == p.id {
			continue
		}
		seen, ok := p.others[key]
		if !ok || seen.value != string(v) {
			p.others[key] = registrationSeen{value: string(v), since: now}
			continue
		}
		if now.Sub(seen.since) < processGoneAfter {
			continue
		}
		err := s.st.Update(ctx, func(tx store.Tx) error {
			// It may have changed since the look above.
			cur, err := tx.GetMeta(key)
			if errors.Is(err, store.ErrNotFound) || err == nil && string(cur) != seen.value {
				return nil // another process deleted it, or it is alive
			}
			if err != nil {
				return err
			}
			if !registration {
				return tx.DeleteMeta(key)
			}
			return deleteRows(tx, id)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting the meta rows of ended process %s: %w", id, err))
			continue
		}
		delete(p.others, key)
		s.log.Info("deleted the meta rows of a process that ended", "process", id, "key", key)
	}
	return errors.Join(errs...)
}

func deleteRows(tx store.Meta, id string) error {
	for _, k := range processRows(id) {
		if err := tx.DeleteMeta(k); err != nil {
			return err
		}
	}
	return nil
}

// deregister deletes this process's rows at a clean shutdown, after its
// last write (s.wmu held meanwhile, so that none runs concurrently).
func (s *Service) deregister(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.st.Update(ctx, func(tx store.Tx) error { return deleteRows(tx, s.process.id) })
}
