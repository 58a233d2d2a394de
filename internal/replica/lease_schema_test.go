package replica

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// schemaStore is a metaStore shared by replicas (store.SchemaFence) whose
// read of the schema version fails with err when it is set.
type schemaStore struct {
	*metaStore
	err error
	// writeErr, when set, fails every Update, as a store that finds
	// the upgrade in its write transaction does.
	writeErr error
}

func (s *schemaStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if s.writeErr != nil {
		return s.writeErr
	}
	return s.metaStore.Update(ctx, fn)
}

func (s *schemaStore) CheckSchema(context.Context) error { return s.err }

// TestLeaseRenewedWhenTheSchemaReadFails: a read of the store's schema
// version that fails (a connection reset, a timeout) says nothing of an
// upgrade: the lease is renewed all the same (the store's own writes are
// what it fences), and the failure is reported. Before, the renewal was
// skipped, and a few such reads in a row lost a healthy leader its lease,
// a new tenure and a reconciliation for nothing; an upgrade still ends
// the lease at once.
func TestLeaseRenewedWhenTheSchemaReadFails(t *testing.T) {
	const ttl = 10 * time.Second
	ctx := context.Background()
	st := &schemaStore{metaStore: &metaStore{meta: map[string][]byte{}}}
	c := &clock{t: time.Unix(1e9, 0)}
	l := NewLease(st, "detect", "a", ttl, c.now)
	if held, err := l.Try(ctx); !held || err != nil {
		t.Fatalf("the lease was not taken: %v %v", held, err)
	}
	tenure, _ := l.Tenure()

	st.err = errors.New("read the schema version: connection reset by peer")
	c.t = c.t.Add(ttl / 2)
	held, err := l.Try(ctx)
	if !held {
		t.Fatal("the lease is not held after a try whose schema read failed")
	}
	if err == nil || !errors.Is(err, st.err) {
		t.Errorf("the failed schema read is not reported: %v", err)
	}
	// Past the period of the first renewal: held still, in the same
	// tenure, only if the try above renewed it.
	st.err = nil
	c.t = c.t.Add(ttl/2 - time.Second)
	if !l.Held() {
		t.Fatal("the lease lapsed: the try whose schema read failed did not renew it")
	}
	if held, err := l.Try(ctx); !held || err != nil {
		t.Fatalf("renewal: %v %v", held, err)
	}
	if now, _ := l.Tenure(); now != tenure {
		t.Errorf("tenure %d after the renewals, want %d: the lease lapsed in between", now, tenure)
	}

	// An upgrade still ends it at once.
	st.err = &store.UpgradedError{Stored: 12, Known: 11}
	held, err = l.Try(ctx)
	var up *store.UpgradedError
	if held || l.Held() || !errors.As(err, &up) {
		t.Errorf("after the store's upgrade: held %v (%v), err %v", held, l.Held(), err)
	}
}

// TestLeaseGivenUpWhenTheRenewalFindsTheUpgrade: a newer version migrates
// the store between the read of its schema version and the renewal, whose
// write transaction finds it and is refused: the lease ends there, as it
// does when the read finds it, not at the end of its period.
func TestLeaseGivenUpWhenTheRenewalFindsTheUpgrade(t *testing.T) {
	const ttl = 10 * time.Second
	ctx := context.Background()
	st := &schemaStore{metaStore: &metaStore{meta: map[string][]byte{}}}
	c := &clock{t: time.Unix(1e9, 0)}
	l := NewLease(st, "detect", "a", ttl, c.now)
	if held, err := l.Try(ctx); !held || err != nil {
		t.Fatalf("the lease was not taken: %v %v", held, err)
	}
	st.writeErr = fmt.Errorf("postgres: %w", &store.UpgradedError{Stored: 12, Known: 11})
	c.t = c.t.Add(ttl / 5)
	held, err := l.Try(ctx)
	var up *store.UpgradedError
	if held || l.Held() || !errors.As(err, &up) {
		t.Errorf("after a renewal refused for the store's upgrade: held %v (%v), err %v", held, l.Held(), err)
	}
}
