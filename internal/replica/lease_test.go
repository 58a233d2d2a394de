package replica

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"pgregory.net/rapid"
)

// metaStore is a store with only the meta space, which is all a Lease
// touches; Update applies fn's writes only when fn succeeds.
type metaStore struct {
	mu   sync.Mutex
	meta map[string][]byte
}

type metaTx struct {
	store.Tx // every other method: not used by Lease
	meta     map[string][]byte
}

func (t *metaTx) GetMeta(k string) ([]byte, error) {
	v, ok := t.meta[k]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (t *metaTx) PutMeta(k string, v []byte) error {
	t.meta[k] = append([]byte(nil), v...)
	return nil
}

func (s *metaStore) Update(_ context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &metaTx{meta: maps.Clone(s.meta)}
	if err := fn(tx); err != nil {
		return err
	}
	s.meta = tx.meta
	return nil
}

func (s *metaStore) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.Update(ctx, fn)
}

func (s *metaStore) Close() error { return nil }

// clock is a manual monotonic clock shared by the replicas of a test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestLeaseNeverHeldByTwo drives two replicas' leases through random
// schedules of tries, pauses (a replica that stops trying has stalled or
// died) and releases: at no instant do both count themselves the holder,
// and a replica that keeps trying after the other has gone quiet for a TTL
// gets the lease.
func TestLeaseNeverHeldByTwo(t *testing.T) {
	const ttl = 10 * time.Second
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		st := &metaStore{meta: map[string][]byte{}}
		c := &clock{t: time.Unix(1e9, 0)}
		ls := []*Lease{
			NewLease(st, "detect", "a", ttl, c.now),
			NewLease(st, "detect", "b", ttl, c.now),
		}
		check := func(when string) {
			if ls[0].Held() && ls[1].Held() {
				rt.Fatalf("both replicas hold the lease %s at %v", when, c.t)
			}
		}
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			i := rapid.IntRange(0, 1).Draw(rt, "replica")
			switch rapid.IntRange(0, 3).Draw(rt, "action") {
			case 0, 1:
				if _, err := ls[i].Try(ctx); err != nil {
					rt.Fatal(err)
				}
				check("after a try")
			case 2:
				c.t = c.t.Add(time.Duration(rapid.Int64Range(0, int64(ttl)).Draw(rt, "advance")))
				check("after time passed")
			case 3:
				if err := ls[i].Release(ctx); err != nil {
					rt.Fatal(err)
				}
				check("after a release")
			}
		}
		// Replica a goes quiet; b keeps trying and takes over within a TTL
		// and one period.
		for k := 0; k <= 6 && !ls[1].Held(); k++ {
			if _, err := ls[1].Try(ctx); err != nil {
				rt.Fatal(err)
			}
			check("during the takeover")
			if !ls[1].Held() {
				c.t = c.t.Add(ttl / 5)
			}
		}
		if !ls[1].Held() {
			rt.Fatalf("b does not hold the lease %v after a went quiet (record holder %q)", 6*ttl/5, ls[1].Holder())
		}
	})
}

// TestLeaseOnTheStore checks the lease against the real shared store: the
// first replica takes it, the second waits, and takes it after the first
// releases it or stops renewing.
func TestLeaseOnTheStore(t *testing.T) {
	st := openPG(t)
	ctx := context.Background()
	c := &clock{t: time.Unix(1e9, 0)}
	a := NewLease(st, "detect", "a", time.Second, c.now)
	b := NewLease(st, "detect", "b", time.Second, c.now)
	mustTry := func(l *Lease, want bool) {
		t.Helper()
		got, err := l.Try(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != want || l.Held() != want {
			t.Fatalf("%s: Try = %v, Held = %v, want %v (holder %q)", l.holder, got, l.Held(), want, l.Holder())
		}
	}
	mustTry(a, true)
	mustTry(b, false)
	if b.Holder() != "a" {
		t.Fatalf("b sees holder %q, want a", b.Holder())
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	mustTry(b, true)
	mustTry(a, false)
	c.t = c.t.Add(2 * time.Second) // b stalls for longer than the TTL
	if b.Held() {
		t.Fatal("b still counts itself the holder after its TTL")
	}
	mustTry(a, true)
	mustTry(b, false)
}

// TestLeaseFenceStopsAZombie: a holder paused past its lease (SIGSTOP)
// while another replica took it over, that resumes with a write it decided
// on before the pause, is refused by the fence inside the write's
// transaction; so is one whose tenure ended although it holds the lease
// again, while the fence of its new tenure passes.
func TestLeaseFenceStopsAZombie(t *testing.T) {
	const ttl = 10 * time.Second
	ctx := context.Background()
	st := &metaStore{meta: map[string][]byte{}}
	c := &clock{t: time.Unix(1e9, 0)}
	a := NewLease(st, "detect", "a", ttl, c.now)
	b := NewLease(st, "detect", "b", ttl, c.now)
	try := func(l *Lease, want bool) {
		t.Helper()
		got, err := l.Try(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s: Try = %v, want %v (holder %q)", l.holder, got, want, l.Holder())
		}
	}
	fenced := func(fence func(store.Meta) error) error {
		return st.Update(ctx, func(tx store.Tx) error { return fence(tx) })
	}
	try(a, true)
	try(b, false)
	zombie := a.Fence()
	if zombie == nil {
		t.Fatal("a holds the lease and has no fence")
	}
	if err := fenced(zombie); err != nil {
		t.Fatalf("the holder's fence: %v", err)
	}
	c.t = c.t.Add(ttl) // a is stopped; b sees the record unchanged for a TTL
	try(b, true)
	if err := fenced(zombie); !errors.Is(err, ErrLost) {
		t.Fatalf("the fence of a after b took over: %v, want ErrLost", err)
	}
	if a.Fence() != nil {
		t.Fatal("a has a fence after its period ran out")
	}
	try(a, false)

	// b leaves; a takes the lease again: the fence of its first tenure
	// still fails, that of the new one passes.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	try(a, true)
	if err := fenced(zombie); !errors.Is(err, ErrLost) {
		t.Fatalf("the fence of a's first tenure in its second: %v, want ErrLost", err)
	}
	if err := fenced(a.Fence()); err != nil {
		t.Fatalf("the fence of a's second tenure: %v", err)
	}
}

// TestLeaseLateRenewalStartsATenure: a holder whose renewal comes after its
// period ran out (it was paused for most of a TTL, and nobody took over)
// holds the lease again in a new tenure, which Run reports as a loss and a
// gain, so that the transitions dropped in between are reconciled.
func TestLeaseLateRenewalStartsATenure(t *testing.T) {
	const ttl = 10 * time.Second
	ctx := context.Background()
	st := &metaStore{meta: map[string][]byte{}}
	c := &clock{t: time.Unix(1e9, 0)}
	a := NewLease(st, "detect", "a", ttl, c.now)
	var w tenureWatch
	if _, err := a.Try(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.next(a.Tenure()); !slices.Equal(got, []bool{true}) {
		t.Fatalf("first take: changes %v, want [true]", got)
	}
	first := a.Fence()
	c.t = c.t.Add(ttl / 5)
	if _, err := a.Try(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.next(a.Tenure()); len(got) != 0 {
		t.Fatalf("renewal in time: changes %v, want none", got)
	}
	c.t = c.t.Add(ttl * 9 / 10) // paused past its period, not past the TTL
	if a.Held() {
		t.Fatal("a counts itself the holder past its period")
	}
	if _, err := a.Try(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.next(a.Tenure()); !slices.Equal(got, []bool{false, true}) {
		t.Fatalf("late renewal: changes %v, want [false true]", got)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return first(tx) }); !errors.Is(err, ErrLost) {
		t.Fatalf("the fence of the tenure before the lapse: %v, want ErrLost", err)
	}
}

// TestLeaseOthersRenewedWithin: a replica dates another's holding by the
// renewals and the release its own tries see, from the start of the try
// before the one that showed each; not by a record it has read only once,
// nor by a take, nor by its own renewals.
func TestLeaseOthersRenewedWithin(t *testing.T) {
	ctx := context.Background()
	st := &metaStore{meta: map[string][]byte{}}
	c := &clock{t: time.Unix(1e9, 0)}
	const ttl = 10 * time.Second
	a := NewLease(st, "detect", "a", ttl, c.now)
	b := NewLease(st, "detect", "b", ttl, c.now)
	x := NewLease(st, "detect", "x", ttl, c.now)
	try := func(l *Lease, want bool) {
		t.Helper()
		if held, err := l.Try(ctx); err != nil || held != want {
			t.Fatalf("%s's try: held %v (%v), want %v", l.holder, held, err, want)
		}
	}
	within := func(l *Lease, want time.Duration, wantOK bool) {
		t.Helper()
		if got, ok := l.OthersRenewedWithin(); ok != wantOK || ok && got != want {
			t.Fatalf("%s: others renewed within %v (%v), want %v (%v)", l.holder, got, ok, want, wantOK)
		}
	}
	try(a, true)
	try(b, false)
	within(b, 0, false) // one read: the record may be old
	c.t = c.t.Add(time.Second)
	try(b, false)
	within(b, 0, false) // unchanged
	c.t = c.t.Add(time.Second)
	try(a, true) // renews
	c.t = c.t.Add(time.Second)
	try(b, false)
	// Written after b's try before, a second after the first.
	within(b, 2*time.Second, true)
	c.t = c.t.Add(5 * time.Second)
	within(b, 7*time.Second, true)
	try(b, false)
	within(b, 7*time.Second, true) // unchanged since
	// a releases: the last sign of it.
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Second)
	try(b, true) // takes the free lease
	within(b, time.Second, true)
	c.t = c.t.Add(time.Second)
	try(b, true) // its own renewal is no sign of another
	within(b, 2*time.Second, true)
	// b stops; x, which read b's record once, then again unchanged,
	// takes it when it has lapsed: it saw no renewal.
	try(x, false)
	c.t = c.t.Add(ttl)
	try(x, true)
	within(x, 0, false)
	// a, whose last read was of its own record, now reads x's: neither
	// is a renewal by another.
	c.t = c.t.Add(time.Second)
	try(a, false)
	within(a, 0, false)
}
