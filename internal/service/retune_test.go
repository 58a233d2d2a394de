package service

import (
	"context"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/party"
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
