package sqlcore

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

// serialRun answers each request of a batch in order, recording batch
// sizes.
type serialRun struct {
	mu      sync.Mutex
	batches []int
}

func (s *serialRun) run(batch []*Request) {
	s.mu.Lock()
	s.batches = append(s.batches, len(batch))
	s.mu.Unlock()
	for _, r := range batch {
		r.Answer(r.Call(nil))
	}
}

func TestGroupBatchesWaitingUpdates(t *testing.T) {
	sr := &serialRun{}
	g := NewGroup(8, sr.run)
	defer g.Close()
	ctx := context.Background()

	// Hold the writer inside a first Update while 20 more queue up.
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- g.Update(ctx, func(store.Tx) error { close(started); <-release; return nil })
	}()
	<-started
	var wg sync.WaitGroup
	var mu sync.Mutex
	order := []int{}
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := g.Update(ctx, func(store.Tx) error {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Errorf("Update %d: %v", i, err)
			}
		}()
	}
	// Let the queue fill: the channel holds 8, the rest wait to send.
	for len(g.reqs) < cap(g.reqs) {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if len(order) != 20 {
		t.Fatalf("%d fns ran, want 20", len(order))
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.batches[0] != 1 {
		t.Errorf("first batch has %d requests, want the lone first Update", sr.batches[0])
	}
	maxSeen := 0
	for _, n := range sr.batches {
		maxSeen = max(maxSeen, n)
		if n > 8 {
			t.Errorf("batch of %d exceeds maxBatch 8", n)
		}
	}
	if maxSeen < 2 {
		t.Errorf("batches %v: queued Updates were never batched", sr.batches)
	}
}

func TestGroupCancelWhileQueuedNeverRuns(t *testing.T) {
	sr := &serialRun{}
	g := NewGroup(8, sr.run)
	defer g.Close()
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = g.Update(context.Background(), func(store.Tx) error { close(started); <-release; return nil })
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- g.Update(ctx, func(store.Tx) error { ran <- struct{}{}; return nil })
	}()
	for len(g.reqs) == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled queued Update returned %v", err)
	}
	close(release)
	// A later Update runs after the abandoned one would have.
	if err := g.Update(context.Background(), func(store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
		t.Fatal("the fn of a canceled queued Update ran")
	default:
	}
}

func TestGroupPanicReachesCaller(t *testing.T) {
	g := NewGroup(8, (&serialRun{}).run)
	defer g.Close()
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want boom", p)
		}
	}()
	_ = g.Update(context.Background(), func(store.Tx) error { panic("boom") })
	t.Fatal("Update returned after fn panicked")
}

func TestGroupClose(t *testing.T) {
	sr := &serialRun{}
	g := NewGroup(8, sr.run)
	started, release := make(chan struct{}), make(chan struct{})
	inFlight := make(chan error, 1)
	go func() {
		inFlight <- g.Update(context.Background(), func(store.Tx) error { close(started); <-release; return nil })
	}()
	<-started
	queued := make(chan error, 1)
	go func() { queued <- g.Update(context.Background(), func(store.Tx) error { return nil }) }()
	for len(g.reqs) == 0 {
		runtime.Gosched()
	}
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	// Release the Update in flight only once Close has begun.
	for !isClosed(g.quit) {
		runtime.Gosched()
	}
	close(release)
	<-closed
	if err := <-inFlight; err != nil {
		t.Errorf("Update in flight at Close: %v, want its own outcome", err)
	}
	if err := <-queued; !errors.Is(err, ErrClosed) {
		t.Errorf("Update queued at Close: %v, want ErrClosed", err)
	}
	if err := g.Update(context.Background(), func(store.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Update after Close: %v, want ErrClosed", err)
	}
	g.Close() // a second Close returns
}

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                        "SELECT 1",
		"a = ? AND b IN (?, '*') LIMIT ?": "a = $1 AND b IN ($2, '*') LIMIT $3",
		"?":                               "$1",
	} {
		if got := Rebind(in); got != want {
			t.Errorf("Rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
