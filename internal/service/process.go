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
// transaction, and one that finds the registration gone answers that the
// outcome is unknown rather than that the write did not commit. Such a
// process does not register again (it would make its lost rows look
// intact); it deletes what it writes at its clean shutdown as before.
const (
	processMeta      = "process/"
	writeMeta        = "write/"
	processBeatEvery = time.Minute
	processGoneAfter = 10 * time.Minute
)

// process is this process's registration and its watch of the others'.
type process struct {
	id string
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
	return &process{id: rand.Text(), others: map[string]registrationSeen{}}
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
	p.lastBeat = s.now()
	return s.st.Update(ctx, func(tx store.Tx) error {
		return tx.PutMeta(p.key(), []byte("0"))
	})
}

// beatProcess is the periodic job that raises this process's count, so
// that the others see it alive.
func (s *Service) beatProcess(ctx context.Context, now time.Time) error {
	p := s.process
	if p.swept.Load() || now.Sub(p.lastBeat) < processBeatEvery {
		return nil
	}
	p.lastBeat = now
	beats := p.beats + 1
	err := s.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.GetMeta(p.key()); err != nil {
			return err
		}
		return tx.PutMeta(p.key(), []byte(strconv.FormatUint(beats, 10)))
	})
	if errors.Is(err, store.ErrNotFound) {
		p.swept.Store(true)
		return fmt.Errorf("%w; it does not register again", errRowsSwept)
	}
	if err == nil {
		p.beats = beats
	}
	return err
}

// sweepEndedProcesses is the periodic job that deletes the rows of the
// processes whose registration has not changed for processGoneAfter, and
// the rows without a registration (of processes that ran before
// registrations existed, or whose registration was deleted while they were
// paused) that have not changed for as long: each commit puts a new token,
// so a row unchanged that long is not one its process is about to read
// back.
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
