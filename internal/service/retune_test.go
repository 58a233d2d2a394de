package service

import (
	"context"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/track"
)

// TestRulesChangeNeverRaisesAClearedIdAgain: new rules clear every open
// alert (reason rules_changed) and raise what the new engine finds. An
// alert whose aircraft have not reported since it was raised is found
// again from the very reports that raised it, and its id is derived from
// them: raised again under the id the parties were just told ended, the
// store said the one alert cleared and opened again, and a party could
// not tell the new alert from the old. It is raised under a new id.
func TestRulesChangeNeverRaisesAClearedIdAgain(t *testing.T) {
	ctx := context.Background()
	s, st := newEmbedded(t)
	c, r := headOnPair(s.now())
	ingestBoth(t, s, c, r)
	raised := alertEvents(t, st)
	if len(raised) != 1 {
		t.Fatalf("the store has %v, want one raise", raised)
	}
	id := strings.TrimPrefix(raised[0], "alert_raised ")
	next := s.Rules()
	next.Version++
	if err := s.retuneTactical(ctx, next); err != nil {
		t.Fatal(err)
	}
	got := alertEvents(t, st)
	if len(got) != 3 || got[1] != "alert_cleared "+id || !strings.HasPrefix(got[2], "alert_raised ") {
		t.Fatalf("after the rules change the store has %v, want the alert cleared and the conflict raised", got)
	}
	again := strings.TrimPrefix(got[2], "alert_raised ")
	if again == id {
		t.Fatalf("the conflict was raised again under the id %s the parties were told ended", id)
	}
	open := s.Alerts(party.Principal{Operator: true})
	if len(open) != 1 || open[0].ID != again {
		t.Fatalf("the engine has %+v open, want the alert %s", open, again)
	}
}

// TestRulesChangeEndsTheAlertsHeldSinceATakeover: new rules clear every
// open alert (reason rules_changed), those the leader holds since a
// takeover (open in the store, their aircraft's reports not yet here)
// too: such an alert was left open, and went on under the new rules, its
// old id, as an update, while every other alert was ended and raised
// again.
func TestRulesChangeEndsTheAlertsHeldSinceATakeover(t *testing.T) {
	ctx := context.Background()
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	_, id := p.raise(t, 0, c, r)
	p.relay(t, 1, reportOf("coalition", c))
	p.handOver(t, 1)
	s := p.svc[1]
	if open := s.Alerts(party.Principal{Operator: true}); len(open) != 1 || open[0].ID != id {
		t.Fatalf("after the takeover the leader lists %+v, want the held alert %s", open, id)
	}
	next := s.Rules()
	next.Version++
	if err := s.retuneTactical(ctx, next); err != nil {
		t.Fatal(err)
	}
	p.wantEvents(t, "after the rules change", "alert_raised "+id, "alert_cleared "+id)
	if got := lastClear(t, p.st); got.Reason != "rules_changed" {
		t.Fatalf("the held alert cleared with reason %q, want rules_changed", got.Reason)
	}
	// The russian report arrives: the conflict is raised under the new
	// rules, under a new id.
	if err := s.IngestRelayed(ctx, []track.Report{reportOf("russia", r)}); err != nil {
		t.Fatal(err)
	}
	got := alertEvents(t, p.st)
	if len(got) != 3 || !strings.HasPrefix(got[2], "alert_raised ") || got[2] == "alert_raised "+id {
		t.Fatalf("once the russian report arrived the store has %v, want the conflict raised under a new id", got)
	}
}
