package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestTakeOverRetriesWhileLeading: a reconcile that fails is tried again
// while the lease is held, and no more once it is lost or succeeded.
func TestTakeOverRetriesWhileLeading(t *testing.T) {
	for _, c := range []struct {
		name      string
		failures  int // attempts that fail before one succeeds
		heldAfter int // the lease is held for this many checks (-1: always)
		want      int // attempts made
		wantLogs  int // failures told
	}{
		{"succeeds at once", 0, -1, 1, 0},
		{"fails twice, then succeeds", 2, -1, 3, 2},
		{"fails, and the lease is lost", 5, 0, 1, 1},
		{"fails, held for one more try", 5, 1, 2, 2},
	} {
		attempts, logs, checks := 0, 0, 0
		held := func() bool {
			checks++
			return c.heldAfter < 0 || checks <= c.heldAfter
		}
		reconcile := func(context.Context) error {
			attempts++
			if attempts <= c.failures {
				return errors.New("reading the open alerts: connection refused")
			}
			return nil
		}
		takeOver(context.Background(), held, reconcile, time.Millisecond, func(error) { logs++ })
		if attempts != c.want || logs != c.wantLogs {
			t.Errorf("%s: %d attempts, %d failures told; want %d, %d", c.name, attempts, logs, c.want, c.wantLogs)
		}
	}
}

// TestTakeOverEndsWithItsContext: a server shutting down stops retrying.
func TestTakeOverEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		takeOver(ctx, func() bool { return true }, func(context.Context) error {
			attempts++
			if attempts == 3 {
				cancel()
			}
			return errors.New("down")
		}, time.Millisecond, func(error) {})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("takeOver went on after its context ended")
	}
	if attempts != 3 {
		t.Fatalf("%d attempts, want 3", attempts)
	}
}
