package service

import (
	"context"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// TestAlertCommitInDoubtAfterRowsSwept: a commit of alert transitions is
// in doubt (the store went down as it committed, or just after), and the
// store stays out of this process's reach for longer than
// processGoneAfter while another process reaches it: that one deletes
// this process's rows, its registration and the token of the commit
// among them. Once the store is back, the commit in doubt is settled all
// the same, by what the store holds of it: its alert is there once
// whether or not the commit had happened, a later alert is not held back
// for good behind it, and the process registers again.
func TestAlertCommitInDoubtAfterRowsSwept(t *testing.T) {
	for name, open := range map[string]func(*testing.T) (store.Store, Peers){
		"sqlite": func(t *testing.T) (store.Store, Peers) {
			st, err := sqlite.Open(context.Background(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st, nil
		},
		// The leader's tick loop stalled for ten minutes while its lease
		// was renewed: it still leads when it settles.
		"postgres": func(t *testing.T) (store.Store, Peers) {
			if testing.Short() {
				t.Skip("starts a PostgreSQL cluster")
			}
			st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			peers := &testPeers{}
			peers.leads.Store(true)
			return st, peers
		},
	} {
		for _, committed := range []bool{false, true} {
			variant := "NotCommitted"
			if committed {
				variant = "Committed"
			}
			t.Run(name+"/"+variant, func(t *testing.T) {
				st, peers := open(t)
				t.Cleanup(func() { st.Close() })
				alertCommitInDoubtAfterRowsSwept(t, st, peers, committed)
			})
		}
	}
}

func alertCommitInDoubtAfterRowsSwept(t *testing.T, st store.Store, peers Peers, committed bool) {
	ctx := context.Background()
	f := &failingCommit{faultyStore: &faultyStore{Store: st}}
	a, err := New(ctx, Config{Store: f, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"coalition", "russia", "airgroup", "navy"} {
		if _, err := a.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// Another process on the same store, which sweeps the rows of the
	// processes silent for processGoneAfter.
	b, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	sub := a.Subscribe(party.Principal{Party: "navy"})
	defer sub.Close()

	now := time.Now().UTC()
	c1, r1 := closing("C1", "R1", 35, now)
	if err := ingest(a, "russia", 10*time.Second, r1); err != nil {
		t.Fatal(err)
	}
	if committed {
		raised := `"state":"raised"`
		f.downAfterLostAck.Store(true)
		f.loseAck.Store(&raised)
	} else {
		f.armed.Store(true)
	}
	if err := ingest(a, "coalition", 100*time.Millisecond, c1); err == nil {
		t.Fatal("the batch was answered as committed while the store was down")
	}
	if !f.down.Load() || a.tac.queuedTransitions() == 0 {
		t.Fatal("no commit is in doubt: the test injected nothing")
	}
	if _, copies := alertCopies(t, st, "C1", "R1", [2]string{"coalition", "russia"}); (copies["audit record"] == 1) != committed {
		t.Fatalf("the commit in doubt left %v in the store, want it committed: %v", copies, committed)
	}

	// b alone reaches the store for longer than processGoneAfter: it
	// deletes a's rows.
	clock := &testClock{}
	for range int(processGoneAfter/time.Minute) + 2 {
		clock.advance(time.Minute)
		if err := b.beatProcess(ctx, clock.now()); err != nil {
			t.Fatal(err)
		}
		if err := b.sweepEndedProcesses(ctx, clock.now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range processRows(a.process.id) {
		if processRowsLeft(t, st)[k] {
			t.Fatalf("a's row %s was not deleted", k)
		}
	}

	// b writes an event: had the commit in doubt not happened, it takes
	// the id of the commit's first event.
	if _, err := b.PostMessage(ctx, party.Principal{Party: "coalition"}, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: "written while a was away"}); err != nil {
		t.Fatal(err)
	}

	// The store is back to a, and a new conflict arises.
	f.down.Store(false)
	a1, n1 := closing("A1", "N1", 40, now)
	if err := ingest(a, "navy", 10*time.Second, n1); err != nil {
		t.Fatal(err)
	}
	_ = ingest(a, "airgroup", 100*time.Millisecond, a1)
	tickUntilCommitted(t, a)
	checkRaisedOnce(t, st, "C1", "R1", [2]string{"coalition", "russia"})
	checkRaisedOnce(t, st, "A1", "N1", [2]string{"airgroup", "navy"})
	evs, _ := sub.Take(nil)
	var raised int
	for _, e := range evs {
		if e.Kind == "alert_raised" {
			raised++
		}
	}
	if raised != 1 {
		t.Errorf("navy's live stream got %d alert_raised events, want the one of A1/N1", raised)
	}

	// Nothing of it in doubt any more, a registers again at its next beat.
	if err := a.beatProcess(ctx, a.process.mono().Add(processBeatEvery)); err != nil {
		t.Fatalf("a's beat once the commit in doubt was settled: %v", err)
	}
	if !processRowsLeft(t, st)[a.process.key()] {
		t.Fatal("a did not register again once the commit in doubt was settled")
	}
}

// TestAlertCommitInDoubtIsInTheMetrics: while a commit of alert
// transitions is in doubt (the store down as it committed), the metrics
// tell the operator that alerts wait for their commit and that one is in
// doubt; once it is settled and the alerts committed, they say so too.
func TestAlertCommitInDoubtIsInTheMetrics(t *testing.T) {
	s, f := newFaultyService(t)
	gauges := func() map[string]float64 {
		t.Helper()
		mfs, err := s.Metrics().Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			switch name := mf.GetName(); name {
			case "deconflict_alert_transitions_uncommitted", "deconflict_alert_commit_in_doubt":
				out[name] = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return out
	}
	now := time.Now().UTC()
	c1, r1 := closing("C1", "R1", 35, now)
	if err := ingest(s, "russia", 10*time.Second, r1); err != nil {
		t.Fatal(err)
	}
	if got := gauges(); got["deconflict_alert_transitions_uncommitted"] != 0 || got["deconflict_alert_commit_in_doubt"] != 0 {
		t.Fatalf("metrics before any alert: %v, want both 0", got)
	}
	raised := `"state":"raised"`
	f.downAfterLostAck.Store(true)
	f.loseAck.Store(&raised)
	if err := ingest(s, "coalition", 100*time.Millisecond, c1); err == nil {
		t.Fatal("the batch was answered as committed while the store was down")
	}
	if !f.down.Load() {
		t.Fatal("no acknowledgement was lost: the test injected nothing")
	}
	if got := gauges(); got["deconflict_alert_transitions_uncommitted"] < 1 || got["deconflict_alert_commit_in_doubt"] != 1 {
		t.Errorf("metrics while a commit is in doubt: %v, want transitions uncommitted and a commit in doubt", got)
	}
	f.down.Store(false)
	tickUntilCommitted(t, s)
	if got := gauges(); got["deconflict_alert_transitions_uncommitted"] != 0 || got["deconflict_alert_commit_in_doubt"] != 0 {
		t.Errorf("metrics once committed: %v, want both 0", got)
	}
}
