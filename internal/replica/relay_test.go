package replica

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/track"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(frozenLeaderEnv); url != "" {
		os.Exit(frozenLeader(url))
	}
	os.Exit(pgtest.Main(m))
}

func openPG(t *testing.T) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// sink collects what one replica's relay delivers.
type sink struct {
	mu      sync.Mutex
	reports []track.Report
	wakes   int
	changed chan struct{}
}

func newSink() *sink { return &sink{changed: make(chan struct{}, 1)} }

func (s *sink) handlers() Handlers {
	note := func() {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
	return Handlers{
		Positions: func(_ context.Context, r []track.Report) {
			s.mu.Lock()
			s.reports = append(s.reports, r...)
			s.mu.Unlock()
			note()
		},
		Events: func(context.Context) {
			s.mu.Lock()
			s.wakes++
			s.mu.Unlock()
			note()
		},
	}
}

// waitFor waits (generously: the machine may be loaded) until cond holds.
func (s *sink) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("after 60 s still waiting for %s", what)
		}
	}
}

// TestRelayBetweenTwoReplicas: reports published by one replica reach the
// other complete and in order (in several notifications, as a batch of
// 1,000 does not fit in one), never come back to their origin, and a
// transaction that appends events wakes every replica.
func TestRelayBetweenTwoReplicas(t *testing.T) {
	st := openPG(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 2 { // idempotent
		if err := Install(ctx, st.Pool()); err != nil {
			t.Fatal(err)
		}
	}
	a, b := NewRelay(st.Pool(), "a", nil), NewRelay(st.Pool(), "b", nil)
	sa, sb := newSink(), newSink()
	var wg sync.WaitGroup
	for _, r := range []struct {
		relay *Relay
		sink  *sink
	}{{a, sa}, {b, sb}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.relay.Run(ctx, r.sink.handlers()); err != nil {
				t.Errorf("relay %s: %v", r.relay.Origin(), err)
			}
		}()
	}
	defer wg.Wait()
	defer cancel()
	// The first wake-up comes once the listener listens.
	sa.waitFor(t, "a to listen", func() bool { return sa.wakes > 0 })
	sb.waitFor(t, "b to listen", func() bool { return sb.wakes > 0 })

	t0 := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	var sent []track.Report
	for batch := range 3 {
		reports := make([]track.Report, 1000)
		for i := range reports {
			n := batch*1000 + i
			reports[i] = track.Report{Party: "coalition", Aircraft: fmt.Sprintf("AC%04d", n), Callsign: "C",
				Pos:        geo.LLA{LatDeg: 35 + float64(n)*1e-4, LonDeg: 36, AltM: 6000},
				VelEastMps: 200, Time: t0.Add(time.Duration(n) * time.Millisecond)}
		}
		sent = append(sent, reports...)
		a.Publish(reports)
	}
	sb.waitFor(t, "b to receive 3,000 reports", func() bool { return len(sb.reports) >= len(sent) })
	sb.mu.Lock()
	got := append([]track.Report(nil), sb.reports...)
	sb.mu.Unlock()
	if len(got) != len(sent) {
		t.Fatalf("b received %d reports, a sent %d", len(got), len(sent))
	}
	for i := range sent {
		if got[i] != sent[i] {
			t.Fatalf("report %d: b received %+v, a sent %+v", i, got[i], sent[i])
		}
	}

	// b sends one: a receives it, and a's own 3,000 never came back to it.
	b.Publish(sent[:1])
	sa.waitFor(t, "a to receive b's report", func() bool { return len(sa.reports) > 0 })
	sa.mu.Lock()
	n := len(sa.reports)
	sa.mu.Unlock()
	if n != 1 {
		t.Fatalf("a received %d reports, want only b's 1", n)
	}

	sa.mu.Lock()
	wa := sa.wakes
	sa.mu.Unlock()
	sb.mu.Lock()
	wb := sb.wakes
	sb.mu.Unlock()
	err := st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AppendEvent(store.Event{Time: t0, Kind: "message", Audience: []string{"*"}, Body: []byte(`{}`)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sa.waitFor(t, "a to be woken by the event", func() bool { return sa.wakes > wa })
	sb.waitFor(t, "b to be woken by the event", func() bool { return sb.wakes > wb })
}
