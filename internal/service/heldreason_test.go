package service

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/track"
)

// lastClear is the store's last alert_cleared event as an alert.
func lastClear(t *testing.T, st store.Store) alert.Alert {
	t.Helper()
	var out alert.Alert
	err := st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100000)
		for _, e := range evs {
			if e.Kind == "alert_cleared" {
				out = alert.Alert{}
				if err := json.Unmarshal(e.Body, &out); err != nil {
					return err
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.ID == "" {
		t.Fatal("the store has no alert_cleared event")
	}
	return out
}

// TestTakeoverClearSaysWhyItEnded: an alert the old leader raised, which
// the new leader holds after a takeover until its aircraft's reports reach
// it, is cleared as resolved when they came and show no conflict (both
// aircraft are tracked: nothing went stale), and as stale, naming the
// aircraft whose reports never came, when the stale limit passes first.
func TestTakeoverClearSaysWhyItEnded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		turn   bool // the aircraft's next reports reach the new leader, turned away
		reason string
		stale  map[string]bool
	}{
		{"the picture catches up without the conflict", true, alert.ReasonResolved, map[string]bool{}},
		{"the russian aircraft's reports never come", false, alert.ReasonStale, map[string]bool{"R1": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			p := newReplicaPair(t)
			c, r := headOnPair(p.clock.now())
			_, id := p.raise(t, 0, c, r)
			// Only the coalition report reached the survivor.
			p.relay(t, 1, reportOf("coalition", c))
			p.handOver(t, 1)
			s := p.svc[1]
			s.Tick(ctx)
			p.wantEvents(t, "right after the takeover", "alert_raised "+id)
			if tc.turn {
				p.clock.advance(time.Second)
				c.Time, r.Time = p.clock.now(), p.clock.now()
				c.VelEastMps, r.VelEastMps = -200, 200
				if err := s.IngestRelayed(ctx, []track.Report{reportOf("coalition", c), reportOf("russia", r)}); err != nil {
					t.Fatal(err)
				}
			} else {
				// The coalition aircraft reports on; the russian one's
				// reports never reach the new leader.
				for k := 1; k <= int(s.Rules().StaleAfter()/time.Second)+1; k++ {
					p.clock.advance(time.Second)
					next := eastM(c, 200*float64(k))
					next.Time = p.clock.now()
					if err := s.IngestRelayed(ctx, []track.Report{reportOf("coalition", next)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			s.Tick(ctx)
			p.wantEvents(t, "at the end", "alert_raised "+id, "alert_cleared "+id)
			got := lastClear(t, p.st)
			if got.Reason != tc.reason {
				t.Fatalf("cleared with reason %q, want %q", got.Reason, tc.reason)
			}
			for _, ac := range got.Aircraft {
				if ac.Stale != tc.stale[ac.Aircraft] {
					t.Fatalf("aircraft %s of the clear: stale %v, want %v", ac.Aircraft, ac.Stale, tc.stale[ac.Aircraft])
				}
			}
			if open := s.Alerts(party.Principal{Operator: true}); len(open) != 0 {
				t.Fatalf("the new leader lists %+v, want none", open)
			}
		})
	}
}
