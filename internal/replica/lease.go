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
}

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
func (l *Lease) Try(ctx context.Context) (bool, error) {
	start := l.now()
	l.mu.Lock()
	seen, seenAt := l.seen, l.seenAt
	l.mu.Unlock()
	var rec leaseRecord
	var took bool
	err := l.st.Update(ctx, func(tx store.Tx) error {
		took = false
		var err error
		rec, err = readLease(tx, l.key)
		if err != nil {
			return err
		}
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
	if rec != l.seen {
		l.seen, l.seenAt = rec, end
	}
	if took {
		l.heldUntil = start.Add(l.ttl * 4 / 5)
	} else {
		l.heldUntil = time.Time{}
	}
	return took, nil
}

// Run tries the lease every TTL/5 until ctx is cancelled, and calls
// changed (when not nil) each time this replica gains or loses it.
func (l *Lease) Run(ctx context.Context, onErr func(error), changed func(held bool)) {
	t := time.NewTicker(l.ttl / 5)
	defer t.Stop()
	was := false
	for {
		held, err := l.Try(ctx)
		if err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		if held != was && changed != nil {
			changed(held)
		}
		was = held
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
