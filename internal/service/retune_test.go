package service

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// widerSeparation is r as the next version, every cylinder of its
// separation table 10% wider: a change of detection, under which the
// head-on pair still conflicts.
func widerSeparation(r rules.Rules) rules.Rules {
	r.Version++
	r.Separation = slices.Clone(r.Separation)
	for i := range r.Separation {
		d := r.Separation[i].Detector
		if d.Kind == rules.DetectorCylinder {
			r.Separation[i].Detector = rules.Cylinder(1.1*rules.Param(d.HorizontalM), rules.Param(d.VerticalM))
		}
	}
	return r
}

// TestRulesChangeNeverRaisesAClearedIdAgain: new rules that change
// detection clear every open
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
	next := widerSeparation(s.Rules())
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

// TestRulesChangeEndsTheAlertsHeldSinceATakeover: new rules that change
// detection clear every
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
	next := widerSeparation(s.Rules())
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

// TestRulesChangeOutsideDetectionKeepsTheAlerts: new rules that name a
// witness (nothing detection reads) came into force, and every open
// alert was cleared with reason rules_changed and raised again under a
// new id, each raise a new hotline item every party of it had to
// acknowledge: a storm of alarms for nothing at every such change. The
// alert goes on under its id, nothing is cleared, raised or posted.
func TestRulesChangeOutsideDetectionKeepsTheAlerts(t *testing.T) {
	ctx := context.Background()
	s, st := newEmbedded(t)
	c, r := headOnPair(s.now())
	ingestBoth(t, s, c, r)
	before := alertEvents(t, st)
	if len(before) != 1 {
		t.Fatalf("the store has %v, want one raise", before)
	}
	id := strings.TrimPrefix(before[0], "alert_raised ")
	items := alertItems(t, st)
	_, logVKey := s.LogKey()
	next := s.Rules()
	w := newLogWitness(t, logVKey)
	next.Witnesses = append(slices.Clone(next.Witnesses), rules.Witness{Party: "coalition", URL: w.url, VKey: w.srv.VerifierKey()})
	p, err := s.ProposeRules(ctx, party.Principal{Party: party.OperatorName, Operator: true}, next)
	if err != nil {
		t.Fatal(err)
	}
	if p.State != rules.ProposalActive || s.Rules().Version != p.Version {
		t.Fatalf("the proposal is %s and the rules in use are version %d, want version %d in force", p.State, s.Rules().Version, p.Version)
	}
	if got := alertEvents(t, st); !slices.Equal(got, before) {
		t.Fatalf("after a change of the witnesses the store has %v, want %v alone", got, before)
	}
	if got := alertItems(t, st); got != items {
		t.Fatalf("after a change of the witnesses the hotline holds %d alert items, want %d", got, items)
	}
	open := s.Alerts(party.Principal{Operator: true})
	if len(open) != 1 || open[0].ID != id {
		t.Fatalf("the engine has %+v open, want the alert %s", open, id)
	}
	// The alert goes on under the new rules: a report of its aircraft
	// updates it, or leaves it as it is, under its id.
	c.Time, r.Time = c.Time.Add(time.Second), r.Time.Add(time.Second)
	c.LonDeg, r.LonDeg = c.LonDeg+0.002, r.LonDeg-0.002
	ingestBoth(t, s, c, r)
	for _, e := range alertEvents(t, st) {
		if !strings.HasSuffix(e, " "+id) {
			t.Fatalf("after the next reports the store has %v, want the alert %s alone", alertEvents(t, st), id)
		}
	}
}

// TestRulesChangeOutsideDetectionKeepsTheHeldAlerts: the alerts a leader
// holds since a takeover stay held through new rules that change nothing
// detection reads: not cleared, and taken up under their id when their
// aircraft report.
func TestRulesChangeOutsideDetectionKeepsTheHeldAlerts(t *testing.T) {
	ctx := context.Background()
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	_, id := p.raise(t, 0, c, r)
	p.relay(t, 1, reportOf("coalition", c))
	p.handOver(t, 1)
	s := p.svc[1]
	next := s.Rules()
	next.Version++
	next.AckDeadlineS++
	next.MaxAircraftByParty = map[string]int{"russia": 10}
	next.DiscloseWithinM++
	if err := s.retuneTactical(ctx, next); err != nil {
		t.Fatal(err)
	}
	p.wantEvents(t, "after the rules change", "alert_raised "+id)
	if open := s.Alerts(party.Principal{Operator: true}); len(open) != 1 || open[0].ID != id {
		t.Fatalf("after the rules change the leader lists %+v, want the held alert %s", open, id)
	}
	if err := s.IngestRelayed(ctx, []track.Report{reportOf("russia", r)}); err != nil {
		t.Fatal(err)
	}
	for _, e := range alertEvents(t, p.st) {
		if !strings.HasSuffix(e, " "+id) {
			t.Fatalf("once the russian report arrived the store has %v, want the alert %s alone", alertEvents(t, p.st), id)
		}
	}
}
