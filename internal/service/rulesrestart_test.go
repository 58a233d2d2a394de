package service

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/track"
)

// crashAfterActivation has the operator bring next into force through s,
// whose process dies (a panic in onRulesCommitted) once the activation
// committed, before the rules are adopted and the open alerts retuned.
func crashAfterActivation(t *testing.T, s *Service, next rules.Rules) {
	t.Helper()
	type crash struct{}
	s.onRulesCommitted = func() { panic(crash{}) }
	defer func() {
		if _, ok := recover().(crash); !ok {
			t.Fatal("the process did not die between the activation's commit and the retune")
		}
	}()
	p, err := s.ProposeRules(context.Background(), party.Principal{Party: party.OperatorName, Operator: true}, next)
	t.Fatalf("the proposal returned %+v, %v; want the process dead after the activation's commit", p, err)
}

// storedRulesVersion is the rules_version of the body the store keeps of
// the open alert id.
func storedRulesVersion(t *testing.T, st store.Store, id string) int64 {
	t.Helper()
	var version int64 = -1
	err := st.View(context.Background(), func(tx store.Tx) error {
		open, err := tx.OpenAlerts()
		for _, a := range open {
			if a.ID == id {
				var body alert.Alert
				if err := json.Unmarshal(a.Body, &body); err != nil {
					return err
				}
				version = body.RulesVersion
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return version
}

// forgetRulesVersions rewrites the store's open alerts as a program
// before alert.Alert.RulesVersion kept them: without it.
func forgetRulesVersions(t *testing.T, st store.Store) {
	t.Helper()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		open, err := tx.OpenAlerts()
		if err != nil {
			return err
		}
		for _, a := range open {
			var body map[string]any
			if err := json.Unmarshal(a.Body, &body); err != nil {
				return err
			}
			delete(body, "rules_version")
			if a.Body, err = json.Marshal(body); err != nil {
				return err
			}
			if err := tx.PutOpenAlert(a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRestartBetweenRulesActivationAndRetune: new rules came into force
// and the process died before its retune committed the end of the open
// alerts (rules_changed). The next start took up the store's open alerts
// under the new rules: held, then continued under their ids, one alert
// spanning two sets of rules, its acknowledgment made under rules no
// longer in force. The start ends them as the retune would have (when
// the new rules change detection), and raises what the new rules find
// under new ids; an alert of a program before rules_version is judged by
// its time against the activation's. Rules that leave detection as it
// was keep it, as a live change does.
func TestRestartBetweenRulesActivationAndRetune(t *testing.T) {
	for _, tc := range []struct {
		name string
		next func(rules.Rules) rules.Rules
		// unversioned: the store's open alert as an older program kept
		// it, without rules_version.
		unversioned bool
		ended       bool
	}{
		{"detection changed", widerSeparation, false, true},
		{"detection changed, an alert kept by an older program", widerSeparation, true, true},
		{"detection as it was", func(r rules.Rules) rules.Rules {
			r.AckDeadlineS++
			return r
		}, false, false},
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
			old := s.Rules()
			c, r := headOnPair(clock.now())
			ingestBoth(t, s, c, r)
			raised := alertEvents(t, st)
			if len(raised) != 1 {
				t.Fatalf("before the rules change the store has %v, want one raise", raised)
			}
			id := strings.TrimPrefix(raised[0], "alert_raised ")
			if got := storedRulesVersion(t, st, id); got != old.Version {
				t.Fatalf("the store keeps the alert as judged under rules version %d, want %d", got, old.Version)
			}
			clock.advance(time.Second)
			crashAfterActivation(t, s, tc.next(old))
			if tc.unversioned {
				forgetRulesVersions(t, st)
			}

			s = open()
			version := s.Rules().Version
			if version == old.Version {
				t.Fatalf("after the restart rules version %d is in force, want the new one", version)
			}
			want := raised
			if tc.ended {
				want = append(want, "alert_cleared "+id)
			}
			if got := alertEvents(t, st); !slices.Equal(got, want) {
				t.Fatalf("right after the restart the store has %v, want %v", got, want)
			}
			if tc.ended {
				if got := lastClear(t, st); got.ID != id || got.Reason != reasonRulesChanged {
					t.Fatalf("the alert was cleared as %+v, want %s cleared with reason rules_changed", got, id)
				}
			}

			// Its aircraft report again: the conflict goes on under the
			// store's id when the rules judge as before, and is raised
			// under a new id otherwise.
			clock.advance(time.Second)
			c, r = headOnPair(clock.now())
			ingestBoth(t, s, c, r)
			openNow := s.Alerts(party.Principal{Operator: true})
			if len(openNow) != 1 {
				t.Fatalf("after the reports the service lists %+v, want one alert", openNow)
			}
			got := alertEvents(t, st)
			if !tc.ended {
				if openNow[0].ID != id {
					t.Fatalf("after the reports the service lists %+v, want the store's alert %s", openNow, id)
				}
				for _, e := range got {
					if !strings.HasSuffix(e, " "+id) {
						t.Fatalf("after the reports the store has %v, want the alert %s alone", got, id)
					}
				}
				if n := alertItems(t, st); n != 1 {
					t.Fatalf("%d hotline items for the alert, want 1", n)
				}
				return
			}
			again := openNow[0]
			if again.ID == id || len(got) != 3 || got[2] != "alert_raised "+again.ID {
				t.Fatalf("after the reports the store has %v and the service lists %s, want the conflict raised under a new id", got, again.ID)
			}
			if again.RulesVersion != version {
				t.Fatalf("the conflict raised anew is judged under rules version %d, want %d", again.RulesVersion, version)
			}
			// Its raise is posted to the parties to acknowledge, as a raise
			// after a live change of the rules.
			if n := alertItems(t, st); n != 2 {
				t.Fatalf("%d hotline items for the alerts, want 2: the ended one's and the new one's", n)
			}
		})
	}
}

// TestTakeoverAfterRulesActivatedWithoutRetune: the leader brought rules
// that change detection into force and died before its retune committed
// the end of the open alerts. The replica that takes over (its engine
// retuned to the new rules from the store) ends the store's alert as the
// retune would have (rules_changed), and raises the conflict its engine
// finds under a new id: it no longer takes up the old alert as its own,
// continued under the new rules.
func TestTakeoverAfterRulesActivatedWithoutRetune(t *testing.T) {
	ctx := context.Background()
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	raised, id := p.raise(t, 0, c, r)
	p.relay(t, 1, reportOf("coalition", c), reportOf("russia", r))
	p.clock.advance(time.Second)
	crashAfterActivation(t, p.svc[0], widerSeparation(p.svc[0].Rules()))
	if _, err := p.svc[1].SyncFromStore(ctx, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	p.wantEvents(t, "before the takeover", raised...)
	p.handOver(t, 1)
	got := alertEvents(t, p.st)
	if len(got) != 3 || got[1] != "alert_cleared "+id || !strings.HasPrefix(got[2], "alert_raised ") || got[2] == "alert_raised "+id {
		t.Fatalf("after the takeover the store has %v, want %s cleared and the conflict raised under a new id", got, id)
	}
	if clear := lastClear(t, p.st); clear.Reason != reasonRulesChanged {
		t.Fatalf("the alert cleared with reason %q, want rules_changed", clear.Reason)
	}
	// The reports that follow keep the new alert.
	p.clock.advance(time.Second)
	c, r = headOnPair(p.clock.now())
	if err := p.svc[1].IngestRelayed(ctx, []track.Report{reportOf("coalition", c), reportOf("russia", r)}); err != nil {
		t.Fatal(err)
	}
	for _, e := range alertEvents(t, p.st)[3:] {
		if strings.HasSuffix(e, " "+id) {
			t.Fatalf("after the takeover the store has %v: the ended alert %s went on", alertEvents(t, p.st), id)
		}
	}
}
