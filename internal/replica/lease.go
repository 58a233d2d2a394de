package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// Lease is a named lease held by at most one replica at a time, kept in the
// store's meta space so that it works on any backend and changes hands
// inside serializable transactions.
//
// No replica compares its wall clock with another's or with the
// database's: the holder renews the record (a new term each time) every
// TTL/5; another replica takes the lease over only when the record it sees
// has not changed for TTL on its own monotonic clock, counted from the end
// of the read that first showed it. The holder counts itself the holder for
// only 4/5 of TTL from the start of its last successful renewal, which
// begins before the others can have seen it, so the two periods never
// overlap as long as the clocks run at the same rate. Release hands the
// lease over at once on a clean shutdown.
//
// That alone does not stop a holder that decided to write while it held
// the lease and was then paused (SIGSTOP, a long GC or a stalled
// connection) past its period from writing once it resumes, after another
// replica took over: Fence returns the check such a write makes inside its
// own transaction. A tenure is one unbroken period of holding: it ends when
// the holder's period runs out before a renewal (even one that then
// succeeds), so that what was dropped meanwhile is reconciled as after a
// takeover.
//
// A replica also keeps what its reads show of the others' holding:
// OthersRenewedWithin says how recently another replica, by renewing or
// releasing the lease, was seen alive as its holder.
type Lease struct {
	st     store.Store
	key    string
	holder string
	ttl    time.Duration
	now    func() time.Time

	mu        sync.Mutex
	seen      leaseRecord
	seenAt    time.Time
	heldUntil time.Time
	// tenure counts this replica's tenures; the current one while held.
	tenure int64
	// read is the record as the last successful try read it, before any
	// write of its own, and readStart when that try began (hasRead: there
	// was one).
	read      leaseRecord
	readStart time.Time
	hasRead   bool
	// othersRenewedAfter is the earliest time at which another replica's
	// last renewal (or release) that this one saw can have been written
	// (othersRenewed: it saw one; OthersRenewedWithin).
	othersRenewedAfter time.Time
	othersRenewed      bool
	// standDown, when set, says why this replica must not hold the
	// lease now (StandDown); stoodDown is its last answer.
	standDown func() error
	stoodDown error
}

// StandDown sets check, asked at each Try: while it returns an error
// (such as rules in force written by a newer version of the program,
// which this replica cannot read), the lease is given up at once, freed
// for another replica to take at its next try, and not taken again; Try
// then reports false and no error (the caller tells why, once). Call it
// before Run.
func (l *Lease) StandDown(check func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.standDown = check
}

// StoodDown is why the last Try stood down (StandDown), nil when it did
// not.
func (l *Lease) StoodDown() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stoodDown
}

// ErrLost is what a Fence check returns once the tenure it was taken in has
// ended.
var ErrLost = errors.New("replica: the lease changed hands")

// leaseRecord is the stored state of a lease; an empty Holder is free.
type leaseRecord struct {
	Holder string `json:"holder"`
	Term   int64  `json:"term"`
}

// NewLease returns the lease name for the replica holder (a name unique
// among the replicas). now is the monotonic clock (time.Now when nil).
func NewLease(st store.Store, name, holder string, ttl time.Duration, now func() time.Time) *Lease {
	if now == nil {
		now = time.Now
	}
	return &Lease{st: st, key: "lease/" + name, holder: holder, ttl: ttl, now: now}
}

// Held reports whether this replica holds the lease now.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now().Before(l.heldUntil)
}

// Holder is the replica named in the record at the last Try.
func (l *Lease) Holder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen.Holder
}

// Try renews the lease when this replica holds it, takes it when it is free
// or has lapsed, and otherwise notes what the record says. It reports
// whether this replica holds the lease afterwards.
//
// A store that a newer version of the program has migrated beyond this
// one's (store.SchemaFence) ends the lease here at once, before its
// period: this replica stops leading, and the store refuses its writes.
// A read of the version that fails says nothing of an upgrade: the lease
// is tried all the same (the store fences its own writes), and the
// failure is returned with its outcome.
func (l *Lease) Try(ctx context.Context) (bool, error) {
	l.mu.Lock()
	check := l.standDown
	l.mu.Unlock()
	if check != nil {
		why := check()
		l.mu.Lock()
		l.stoodDown = why
		l.mu.Unlock()
		if why != nil {
			// Freed, not left to lapse: a replica that may hold it takes
			// it at its next try rather than after the TTL.
			if err := l.Release(ctx); err != nil {
				return false, fmt.Errorf("replica: lease %s given up (%v), and freeing it failed: %w", l.key, why, err)
			}
			return false, nil
		}
	}
	var schemaErr error
	if fence, ok := l.st.(store.SchemaFence); ok {
		if err := fence.CheckSchema(ctx); err != nil {
			if up := (*store.UpgradedError)(nil); errors.As(err, &up) {
				return l.giveUp(err)
			}
			schemaErr = fmt.Errorf("replica: lease %s: tried without the store's schema version: %w", l.key, err)
		}
	}
	held, err := l.try(ctx)
	if up := (*store.UpgradedError)(nil); errors.As(err, &up) {
		// The store found the upgrade as the renewal wrote (a
		// migration after the check above).
		return l.giveUp(err)
	}
	return held, errors.Join(err, schemaErr)
}

// giveUp ends the lease here for the store's upgrade, err.
func (l *Lease) giveUp(err error) (bool, error) {
	l.mu.Lock()
	l.heldUntil = time.Time{}
	l.mu.Unlock()
	return false, fmt.Errorf("replica: lease %s given up: %w", l.key, err)
}

// try renews or takes the lease, or notes what its record says (Try).
func (l *Lease) try(ctx context.Context) (bool, error) {
	start := l.now()
	l.mu.Lock()
	seen, seenAt := l.seen, l.seenAt
	l.mu.Unlock()
	var rec, read leaseRecord
	var took bool
	err := l.st.Update(ctx, func(tx store.Tx) error {
		took = false
		var err error
		rec, err = readLease(tx, l.key)
		if err != nil {
			return err
		}
		read = rec
		lapsed := rec == seen && !seenAt.IsZero() && start.Sub(seenAt) >= l.ttl
		if rec.Holder != l.holder && rec.Holder != "" && !lapsed {
			return nil
		}
		rec.Holder = l.holder
		rec.Term++
		took = true
		return writeLease(tx, l.key, rec)
	})
	if err != nil {
		return l.Held(), fmt.Errorf("replica: lease %s: %w", l.key, err)
	}
	end := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hasRead && renewedByAnother(l.read, read, l.holder) {
		// Written after the last try's read of the record before it,
		// which began at readStart.
		l.othersRenewedAfter, l.othersRenewed = l.readStart, true
	}
	l.read, l.readStart, l.hasRead = read, start, true
	if rec != l.seen {
		l.seen, l.seenAt = rec, end
	}
	if !took {
		l.heldUntil = time.Time{}
		return false, nil
	}
	if !end.Before(l.heldUntil) {
		// Not held until now (never, or the period ran out before this
		// renewal came back): a new tenure.
		l.tenure++
	}
	l.heldUntil = start.Add(l.ttl * 4 / 5)
	return end.Before(l.heldUntil), nil
}

// renewedByAnother reports whether the record cur, read after prev with
// no read in between, was written by prev's holder, another replica than
// self, which held the lease then: a renewal (its holder again, a later
// term), or its release (free at the next term; only the holder frees the
// record). A take by a third replica is not one: it says nothing of
// whether the one that took it lived to lead.
func renewedByAnother(prev, cur leaseRecord, self string) bool {
	if prev.Holder == "" || prev.Holder == self || cur.Term <= prev.Term {
		return false
	}
	return cur.Holder == prev.Holder || cur.Holder == "" && cur.Term == prev.Term+1
}

// OthersRenewedWithin returns how long ago, at the most, another replica
// last renewed (or released) the lease as its holder, as this replica's
// tries saw it: the record changed, by that holder's hand, after the start
// of the try before the one that showed it. That replica was alive and
// held the lease then; it may have died at once after. ok is false when
// this replica saw no such renewal (it had not read the record before the
// one it sees, or the lease was only ever its own, or taken by a third
// replica it never saw renew).
func (l *Lease) OthersRenewedWithin() (within time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.othersRenewed {
		return 0, false
	}
	return l.now().Sub(l.othersRenewedAfter), true
}

// Tenure returns the current tenure and whether this replica holds the
// lease now.
func (l *Lease) Tenure() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tenure, l.now().Before(l.heldUntil)
}

// Fence returns, while this replica holds the lease, the check that a
// write made on the strength of holding it runs inside its own transaction
// (on a store whose writers take turns, as the PostgreSQL store's do): it
// fails with ErrLost when the record names another holder, or when this
// tenure has ended meanwhile. A replica takes the lease over in a
// transaction of its own, so a write that passed the check committed
// before the takeover, and the new holder reads it. Fence returns nil when
// this replica does not hold the lease.
func (l *Lease) Fence() func(store.Meta) error {
	tenure, held := l.Tenure()
	if !held {
		return nil
	}
	return func(tx store.Meta) error {
		rec, err := readLease(tx, l.key)
		if err != nil {
			return err
		}
		l.mu.Lock()
		current := l.tenure
		l.mu.Unlock()
		if rec.Holder != l.holder || current != tenure {
			return fmt.Errorf("%w: %s is held by %q (this replica is %q, tenure %d, now %d)", ErrLost, l.key, rec.Holder, l.holder, tenure, current)
		}
		return nil
	}
}

// Run tries the lease every TTL/5 until ctx is cancelled, and calls
// changed (when not nil) each time this replica gains or loses it, and
// with true again at the start of each new tenure (after a lapse that the
// tries did not see, such as a renewal that came back too late).
func (l *Lease) Run(ctx context.Context, onErr func(error), changed func(held bool)) {
	t := time.NewTicker(l.ttl / 5)
	defer t.Stop()
	var w tenureWatch
	for {
		_, err := l.Try(ctx)
		if err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		for _, held := range w.next(l.Tenure()) {
			if changed != nil {
				changed(held)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tenureWatch turns the tenure seen after each try into the calls of Run's
// changed.
type tenureWatch struct {
	held   bool
	tenure int64
}

// next returns the changes since the last look: a lost lease (false), a
// gained one (true), or a new tenure while it seemed held throughout
// (false, true: what was dropped in between must be reconciled).
func (w *tenureWatch) next(tenure int64, held bool) []bool {
	var out []bool
	switch {
	case held != w.held:
		out = []bool{held}
	case held && tenure != w.tenure:
		out = []bool{false, true}
	}
	w.held, w.tenure = held, tenure
	return out
}

// Release frees the lease when this replica holds it, so that another
// replica takes it at its next try instead of after TTL.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	l.heldUntil = time.Time{}
	l.mu.Unlock()
	return l.st.Update(ctx, func(tx store.Tx) error {
		rec, err := readLease(tx, l.key)
		if err != nil || rec.Holder != l.holder {
			return err
		}
		rec.Holder = ""
		rec.Term++
		return writeLease(tx, l.key, rec)
	})
}

func readLease(tx store.Meta, key string) (leaseRecord, error) {
	var rec leaseRecord
	b, err := tx.GetMeta(key)
	if errors.Is(err, store.ErrNotFound) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("meta %s: %w", key, err)
	}
	return rec, nil
}

func writeLease(tx store.Meta, key string, rec leaseRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.PutMeta(key, b)
}
