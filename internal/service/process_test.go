package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// processRowsLeft lists the meta keys of processes in st: registrations,
// write tokens and alert commit tokens.
func processRowsLeft(t *testing.T, st store.Store) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := st.View(context.Background(), func(tx store.Tx) error {
		for _, prefix := range []string{processMeta, writeMeta, alertCommitMeta} {
			rows, err := tx.MetaWithPrefix(prefix)
			if err != nil {
				return err
			}
			for k := range rows {
				out[k] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRowsOfEndedProcessesAreDeleted: the meta rows each process keeps
// (its registration, the tokens of its writes and of its alert commits)
// stay while it lives, even idle, are deleted by another process once it
// stopped beating (it crashed), and by itself at its clean shutdown: no
// row is left once both ended. A process whose rows were deleted while it
// was paused answers that a failed write's outcome is unknown, not that it
// did not commit, and registers again at its next beat.
func TestRowsOfEndedProcessesAreDeleted(t *testing.T) {
	for name, open := range map[string]func(*testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			st, err := sqlite.Open(context.Background(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"postgres": func(t *testing.T) store.Store {
			if testing.Short() {
				t.Skip("starts a PostgreSQL cluster")
			}
			st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			t.Cleanup(func() { st.Close() })
			testRowsOfEndedProcesses(t, st)
		})
	}
}

func testRowsOfEndedProcesses(t *testing.T, st store.Store) {
	ctx := context.Background()
	clock := &testClock{}
	// The rows of a process that ran before registrations existed.
	legacy := []string{writeMeta + "LEGACY", alertCommitMeta + "LEGACY"}
	err := st.Update(ctx, func(tx store.Tx) error {
		for _, k := range legacy {
			if err := tx.PutMeta(k, []byte("7")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, Config{Store: st, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{Store: st, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	// a writes, and commits an alert.
	if err := a.write(ctx, func(store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	c, r := headOnPair(clock.now())
	if _, _, err := a.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
		t.Fatal(err)
	}
	if got := alertEvents(t, st); len(got) != 1 {
		t.Fatalf("a committed %v, want one raise", got)
	}
	aRows := processRows(a.process.id)
	for _, k := range aRows {
		if !processRowsLeft(t, st)[k] {
			t.Fatalf("a's row %s is missing after its writes", k)
		}
	}
	minutes := func(n int, alive ...*Service) {
		t.Helper()
		for range n {
			clock.advance(time.Minute)
			for _, s := range alive {
				if err := s.beatProcess(ctx, clock.now()); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.sweepEndedProcesses(ctx, clock.now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Both alive for longer than processGoneAfter: nothing of theirs is
	// deleted; the rows without a registration are.
	minutes(int(2*processGoneAfter/time.Minute), a, b)
	left := processRowsLeft(t, st)
	for _, k := range aRows {
		if !left[k] {
			t.Fatalf("the row %s of a, alive, was deleted", k)
		}
	}
	for _, k := range legacy {
		if left[k] {
			t.Fatalf("the row %s without a registration, unchanged for %s, was not deleted", k, 2*processGoneAfter)
		}
	}
	lost := errors.New("the commit's acknowledgement was lost")
	if err := a.writes.settle(ctx, st, "not the last token", lost); err != lost {
		t.Fatalf("settling a write that did not commit: %v, want %v", err, lost)
	}

	// a crashes (paused, it will resume): b deletes its rows.
	minutes(int(processGoneAfter/time.Minute)+2, b)
	left = processRowsLeft(t, st)
	for _, k := range aRows {
		if left[k] {
			t.Fatalf("the row %s of a, ended, was not deleted", k)
		}
	}
	if !left[b.process.key()] {
		t.Fatal("b's registration was deleted")
	}
	err = a.writes.settle(ctx, st, "not the last token", lost)
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, errRowsSwept) {
		t.Fatalf("settling a write of a process whose rows were deleted: %v, want the outcome unknown", err)
	}
	// a resumes: with nothing of it in doubt, it registers again
	// (TestSweptProcessSettlesAgain), and ends cleanly.
	if err := a.beatProcess(ctx, clock.now().Add(processBeatEvery)); err != nil {
		t.Fatalf("a's beat after its rows were deleted: %v", err)
	}
	if !processRowsLeft(t, st)[a.process.key()] {
		t.Fatal("a did not register again after its rows were deleted")
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// b ends cleanly: it deletes its own rows.
	if err := b.write(ctx, func(store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := processRowsLeft(t, st); len(left) != 0 {
		t.Fatalf("rows left once every process ended: %v", left)
	}
}

// TestSweptProcessSettlesAgain: a process whose rows another deleted (it
// was paused, or cut off from the store, for longer than processGoneAfter)
// lives on, and may lead detection again. A failed commit of it that left
// another token in its row did not commit, whatever became of its
// registration; and once nothing of it is in doubt it registers again, so
// that its later failed writes and alert commits are settled as any
// process's rather than answered "unknown" for the rest of its life (an
// alert commit in doubt for good holds back every alert after it).
func TestSweptProcessSettlesAgain(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &testClock{}
	a, err := New(ctx, Config{Store: st, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{Store: st, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	// a stops beating for longer than processGoneAfter: b deletes its rows.
	for range int(processGoneAfter/time.Minute) + 2 {
		clock.advance(time.Minute)
		if err := b.beatProcess(ctx, clock.now()); err != nil {
			t.Fatal(err)
		}
		if err := b.sweepEndedProcesses(ctx, clock.now()); err != nil {
			t.Fatal(err)
		}
	}
	if processRowsLeft(t, st)[a.process.key()] {
		t.Fatal("a's registration was not deleted")
	}
	// a resumes, writes, and commits an alert: its rows are there again,
	// without a registration.
	if err := a.write(ctx, func(store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	c, r := headOnPair(clock.now())
	for _, rep := range []struct {
		p   string
		pos PositionReport
	}{{"coalition", c}, {"russia", r}} {
		if _, _, err := a.IngestPositions(ctx, party.Principal{Party: rep.p}, []PositionReport{rep.pos}); err != nil {
			t.Fatal(err)
		}
	}
	lost := errors.New("the commit's acknowledgement was lost")
	if err := a.writes.settle(ctx, st, "not the last token", lost); err != lost {
		t.Fatalf("settling a write that left another token: %v, want %v (not committed)", err, lost)
	}
	if committed, err := a.settle(ctx, &inDoubt{token: "not the last token"}); committed || err != nil {
		t.Fatalf("settling an alert commit that left another token: committed %v, %v; want not committed", committed, err)
	}
	// Its next beat registers it again.
	clock.advance(time.Minute)
	if err := a.beatProcess(ctx, clock.now()); err != nil {
		t.Logf("a's beat after its rows were deleted: %v", err)
	}
	if !processRowsLeft(t, st)[a.process.key()] {
		t.Fatal("a did not register again once nothing of it was in doubt")
	}
	// A failed write whose row is gone now did not commit, as for any
	// process.
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.DeleteMeta(a.writes.key) }); err != nil {
		t.Fatal(err)
	}
	if err := a.writes.settle(ctx, st, "a token never written", lost); err != lost {
		t.Fatalf("settling a failed write of a registered again: %v, want %v", err, lost)
	}
	// It beats on, and b leaves its rows alone.
	for range int(2 * processGoneAfter / time.Minute) {
		clock.advance(time.Minute)
		for _, s := range []*Service{a, b} {
			if err := s.beatProcess(ctx, clock.now()); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.sweepEndedProcesses(ctx, clock.now()); err != nil {
			t.Fatal(err)
		}
	}
	if !processRowsLeft(t, st)[a.process.key()] {
		t.Fatal("the registration of a, beating again, was deleted")
	}
}

// TestProcessBeatsOnItsOwnMonotonicClock: the beats and the sweeps go by
// the host's monotonic clock, not the service's, which on replicas moves
// with the measured offset from the database's clock (replica.Clock: a
// host clock stepped moves it by the step). A sweeper whose service clock
// jumped an hour ahead does not take a live process for ended, nor does a
// process whose service clock jumped an hour back stop beating.
func TestProcessBeatsOnItsOwnMonotonicClock(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mono, wallA, wallB := &testClock{}, &testClock{}, &testClock{}
	a, err := New(ctx, Config{Store: st, Now: wallA.now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{Store: st, Now: wallB.now})
	if err != nil {
		t.Fatal(err)
	}
	a.process.mono, b.process.mono = mono.now, mono.now
	a.process.lastBeat, b.process.lastBeat = mono.now(), mono.now()
	aLive := func(when string) {
		t.Helper()
		if !processRowsLeft(t, st)[a.process.key()] {
			t.Fatalf("%s: the registration of a, alive, was deleted", when)
		}
	}
	minute := func(tickA bool) {
		mono.advance(time.Minute)
		wallA.advance(time.Minute)
		wallB.advance(time.Minute)
		if tickA {
			a.Tick(ctx)
		}
		b.Tick(ctx)
	}
	minute(true)
	minute(true)
	// b's clock steps an hour ahead, a minute after b's last sweep, a
	// not having beaten since.
	wallB.advance(time.Hour)
	minute(false)
	aLive("after b's clock stepped ahead")
	// a's clock steps an hour back: it beats on.
	wallA.advance(-2 * time.Hour)
	for range int(processGoneAfter/time.Minute) + 2 {
		minute(true)
	}
	aLive("after a's clock stepped back")
}
