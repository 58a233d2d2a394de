package service

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// A replica leading detection that finds the rules in force written by a
// newer version (a field it does not know), which it refuses to adopt,
// leads no more: it judged the alerts under the rules before them, no
// longer in force, and committed them. It says why its lease is to be
// given up (DetectionStandDown, which the server's lease asks), in its
// log and its metrics; once the rules in force are readable again it
// leads, and commits what its engine found meanwhile.
func TestAReplicaThatCannotReadTheRulesInForceLeadsNoDetection(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs, logger := newLogBuffer()
	peers := &testPeers{}
	peers.leads.Store(true)
	s, err := New(ctx, Config{Store: st, Peers: peers, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if err := s.DetectionStandDown(); err != nil {
		t.Fatalf("DetectionStandDown = %v under rules it reads, want nil", err)
	}
	var readable store.RulesRecord
	if err := st.View(ctx, func(tx store.Tx) error { readable, err = tx.LatestRules(); return err }); err != nil {
		t.Fatal(err)
	}
	newer := putNewerRules(t, st)
	var seen int64
	for range 2 { // adopted, were they readable, at the second look
		if seen, err = s.SyncFromStore(ctx, seen); err != nil && !errors.As(err, new(*NewerRulesError)) {
			t.Fatal(err)
		}
	}
	var ne *NewerRulesError
	if err := s.DetectionStandDown(); !errors.As(err, &ne) || ne.Version != newer {
		t.Fatalf("DetectionStandDown = %v, want the NewerRulesError of version %d", err, newer)
	}
	if g := gaugeValue(t, s); g != 1 {
		t.Errorf("deconflict_detection_stood_down = %v, want 1", g)
	}
	if errs := logs.errors(); len(errs) != 1 || !strings.Contains(errs[0], "gives up the detection lease") {
		t.Errorf("ERROR lines %q, want one saying the lease is given up", errs)
	}

	c, r := headOnPair(time.Now().UTC())
	if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
		t.Fatal(err)
	}
	if got := alertEvents(t, st); len(got) != 0 {
		t.Fatalf("a replica that cannot read the rules in force committed %v under the rules before them", got)
	}
	open := s.tac.eng.Load().Alerts()
	if len(open) != 1 {
		t.Fatalf("the engine has %d alerts, want the conflict", len(open))
	}

	// Rules readable by this version come into force after them.
	err = st.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.LatestRules()
		if err != nil {
			return err
		}
		return tx.PutRules(store.RulesRecord{Version: rec.Version + 1, Created: time.Now().UTC(), Actor: "deconflict", Body: readable.Body})
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if seen, err = s.SyncFromStore(ctx, seen); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DetectionStandDown(); err != nil {
		t.Fatalf("DetectionStandDown = %v under readable rules in force, want nil", err)
	}
	if g := gaugeValue(t, s); g != 0 {
		t.Errorf("deconflict_detection_stood_down = %v, want 0", g)
	}
	peers.tenure.Add(1) // the lease taken again: a new tenure
	if err := s.ReconcileDetection(ctx, openInStore(st)); err != nil {
		t.Fatal(err)
	}
	if got, want := alertEvents(t, st), []string{"alert_raised " + open[0].ID}; !slices.Equal(got, want) {
		t.Errorf("leading again, the store has %v, want %v", got, want)
	}
}

func gaugeValue(t *testing.T, s *Service) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.m.DetectionStoodDown.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
