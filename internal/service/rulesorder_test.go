package service

import (
	"context"
	"testing"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// Two activations one after the other, the first changing the separation
// (its volume index rebuilt, seconds with 100,000 volumes, without the
// writers' lock) and the second not: the second commits and is adopted
// while the first still rebuilds. The live engines must end up with the
// rules in force, the second's, not with the first's applied after it.
func TestRulesAppliedInVersionOrder(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	op := party.Principal{Party: party.OperatorName, Operator: true}
	first := s.Rules()
	first.HorizontalSepM *= 2
	second := first
	second.SamePartyAlerts = !first.SamePartyAlerts

	secondDone := make(chan error, 1)
	waiting := make(chan struct{}, 1)
	s.onRulesApplyWait = func() { waiting <- struct{}{} }
	var loads int
	s.onLoadVolumes = func() {
		loads++
		if loads > 1 {
			return
		}
		// No party to ask: each proposal comes into force at once.
		go func() {
			_, err := s.ProposeRules(ctx, op, second)
			secondDone <- err
		}()
		// The second is adopted meanwhile, or waits for the first.
		select {
		case err := <-secondDone:
			secondDone <- err
		case <-waiting:
		}
	}
	p1, err := s.ProposeRules(ctx, op, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-secondDone; err != nil {
		t.Fatal(err)
	}
	got := s.Rules()
	if got.Version != p1.Version+1 || got.SamePartyAlerts != second.SamePartyAlerts {
		t.Fatalf("rules version %d (same party alerts %v) in force, want %d (%v)", got.Version, got.SamePartyAlerts, p1.Version+1, second.SamePartyAlerts)
	}
	if engine := s.tac.eng.Load().Params().SameParty; engine != second.SamePartyAlerts {
		t.Errorf("the alert engine runs with same party alerts %v, the rules in force (version %d) say %v: an older version was applied after it", engine, got.Version, second.SamePartyAlerts)
	}
}
