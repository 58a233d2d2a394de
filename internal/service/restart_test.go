package service

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/track"
)

// TestRestartOnTheEmbeddedStoreEndsOrContinuesItsOpenAlerts: a server on
// the embedded store restarts (crash or clean stop) while an alert is
// open in the store. The new process's engine starts empty; the store's
// alert is neither left open for ever (every console that resumes after
// the restart would show it, and its hotline item would wait for an
// acknowledgment, with nothing ever clearing it) nor raised a second time
// under a new id when its aircraft report again: it goes on under its id
// when the conflict is found again, and is cleared as stale once its
// aircraft do not come back within the stale limit.
func TestRestartOnTheEmbeddedStoreEndsOrContinuesItsOpenAlerts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clean bool
		// after runs on the restarted service and returns the events the
		// store must then have after the raise.
		after func(t *testing.T, s *Service, clock *testClock, id string) []string
	}{
		{"the aircraft report again", true, func(t *testing.T, s *Service, clock *testClock, id string) []string {
			clock.advance(time.Second)
			c, r := headOnPair(clock.now())
			ingestBoth(t, s, c, r)
			if open := s.Alerts(party.Principal{Operator: true}); len(open) != 1 || open[0].ID != id {
				t.Fatalf("after the restart the engine has %+v, want the store's alert %s", open, id)
			}
			return nil
		}},
		{"a steady alert, its last transition long before the restart", false, func(t *testing.T, s *Service, clock *testClock, id string) []string {
			clock.advance(time.Second)
			c, r := abreast(clock, clock.now())
			ingestBoth(t, s, c, r)
			if open := s.Alerts(party.Principal{Operator: true}); len(open) != 1 || open[0].ID != id {
				t.Fatalf("after the restart the engine has %+v, want the store's alert %s", open, id)
			}
			return nil
		}},
		{"they never come back", false, func(t *testing.T, s *Service, clock *testClock, id string) []string {
			clock.advance(s.Rules().StaleAfter() + time.Second)
			s.Tick(context.Background())
			return []string{"alert_cleared " + id}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			clock := &testClock{}
			open := func() *Service {
				t.Helper()
				s, err := New(ctx, Config{Store: st, Now: clock.now})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			s := open()
			c, r := headOnPair(clock.now())
			if strings.HasPrefix(tc.name, "a steady alert") {
				// Flying abreast within the minima: the loss goes on,
				// and no report is news.
				for range 45 {
					c, r = abreast(clock, clock.now())
					ingestBoth(t, s, c, r)
					clock.advance(time.Second)
				}
			} else {
				ingestBoth(t, s, c, r)
			}
			raised := alertEvents(t, st)
			if len(raised) != 1 {
				t.Fatalf("before the restart the store has %v, want one raise", raised)
			}
			id := strings.TrimPrefix(raised[0], "alert_raised ")
			if tc.clean {
				if err := s.Close(ctx); err != nil {
					t.Fatal(err)
				}
			}
			s = open()
			s.Tick(ctx)
			// Until its aircraft report again, the store's alert is
			// listed as the store has it.
			if got := s.Alerts(party.Principal{Party: "russia"}); len(got) != 1 || got[0].ID != id {
				t.Fatalf("right after the restart the service lists %+v, want the store's alert %s", got, id)
			}
			if got := alertEvents(t, st); !slices.Equal(got, raised) {
				t.Fatalf("right after the restart the store has %v, want %v", got, raised)
			}
			want := append(raised, tc.after(t, s, clock, id)...)
			// Later ticks change nothing more.
			clock.advance(s.Rules().StaleAfter() / 2)
			s.Tick(ctx)
			if got := alertEvents(t, st); !slices.Equal(got, want) {
				t.Fatalf("after the restart the store has %v, want %v", got, want)
			}
			if n := alertItems(t, st); n != 1 {
				t.Fatalf("%d hotline items for the alert, want 1", n)
			}
		})
	}
}

// ingestBoth has s take coalition's c, then russia's r.
func ingestBoth(t *testing.T, s *Service, c, r PositionReport) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
		t.Fatal(err)
	}
}

// abreast is a coalition and a russia aircraft 2 km apart, flying east
// side by side at 200 m/s, where they are at now, the clock's start at 36°
// east.
func abreast(clock *testClock, now time.Time) (c, r PositionReport) {
	eastM := 200 * now.Sub(clock.start).Seconds()
	c = PositionReport{Aircraft: "C1", Time: now, LatDeg: 35, LonDeg: 36 + eastM/(111_320*0.8192), AltM: 6000, VelEastMps: 200}
	r = c
	r.Aircraft, r.LatDeg = "R1", 35.018
	return c, r
}

// TestFreshReplicaTakingOverHoldsASteadyAlert: the leader raised an alert
// whose aircraft fly on abreast within the minima (no report is news: its
// last transition is the raise), and dies; a replica that has just
// started, its engine without a track yet, takes the lease. The alert is
// held until the aircraft's reports reach it, and goes on under its id:
// not cleared as stale at once because its raise is older than the stale
// time, and raised again under a new id a second later.
func TestFreshReplicaTakingOverHoldsASteadyAlert(t *testing.T) {
	ctx := context.Background()
	p := newReplicaPair(t)
	for range 45 {
		c, r := abreast(p.clock, p.clock.now())
		p.ingest(t, 0, "coalition", c)
		p.ingest(t, 0, "russia", r)
		p.clock.advance(time.Second)
	}
	raised := alertEvents(t, p.st)
	if len(raised) != 1 {
		t.Fatalf("the leader wrote %v, want one raise", raised)
	}
	id := strings.TrimPrefix(raised[0], "alert_raised ")
	// The leader dies; a replica starts and takes the lease.
	p.peers[0].leads.Store(false)
	peers := &testPeers{}
	fresh := newReplicaServiceAt(t, p.st, peers, p.clock)
	peers.leads.Store(true)
	if err := fresh.ReconcileDetection(ctx, openInStore(p.st)); err != nil {
		t.Fatal(err)
	}
	fresh.Tick(ctx)
	p.wantEvents(t, "right after the takeover", raised...)
	p.clock.advance(time.Second)
	c, r := abreast(p.clock, p.clock.now())
	if err := fresh.IngestRelayed(ctx, []track.Report{reportOf("coalition", c), reportOf("russia", r)}); err != nil {
		t.Fatal(err)
	}
	fresh.Tick(ctx)
	p.wantEvents(t, "once the reports reached the new leader", raised...)
	if open := fresh.Alerts(party.Principal{Operator: true}); len(open) != 1 || open[0].ID != id {
		t.Fatalf("the new leader has %+v open, want the store's alert %s", open, id)
	}
}
