package replica

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// A replica whose stand-down check fails (the rules in force are of a
// newer version, which it cannot read) gives up the lease it holds at its
// next try, freeing it: another replica takes it at once, not after the
// TTL; it does not take the lease again, even free, while the check
// fails, and may once it passes. The fence of the tenure it gave up
// refuses its writes.
func TestLeaseStandsDownWhileTheCheckFails(t *testing.T) {
	const ttl = 10 * time.Second
	ctx := context.Background()
	st := &metaStore{meta: map[string][]byte{}}
	c := &clock{t: time.Unix(1e9, 0)}
	old := NewLease(st, "detect", "old", ttl, c.now)
	newer := NewLease(st, "detect", "newer", ttl, c.now)
	var why error
	old.StandDown(func() error { return why })
	try := func(l *Lease, want bool) {
		t.Helper()
		got, err := l.Try(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != want || l.Held() != want {
			t.Fatalf("%s: Try = %v, Held = %v, want %v (record holder %q)", l.holder, got, l.Held(), want, l.Holder())
		}
	}
	try(old, true)
	try(newer, false)
	fence := old.Fence()

	why = errors.New("rules version 7 hold a field this version does not know")
	try(old, false)
	if err := old.StoodDown(); err != why {
		t.Errorf("StoodDown = %v, want %v", err, why)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return fence(tx) }); !errors.Is(err, ErrLost) {
		t.Errorf("the fence of the tenure given up: %v, want ErrLost", err)
	}
	try(newer, true) // at once: no TTL waited
	if err := newer.Release(ctx); err != nil {
		t.Fatal(err)
	}
	try(old, false) // free, and still not taken
	c.t = c.t.Add(2 * ttl)
	try(old, false)

	why = nil
	try(old, true)
	if err := old.StoodDown(); err != nil {
		t.Errorf("StoodDown = %v once the check passes, want nil", err)
	}
}
