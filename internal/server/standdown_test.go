package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
)

// leaseHolder is the replica the detection lease's record names ("" when
// free).
func leaseHolder(t *testing.T, st store.Store) string {
	t.Helper()
	var holder string
	err := st.View(context.Background(), func(tx store.Tx) error {
		raw, err := tx.GetMeta("lease/detect")
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var l struct{ Holder string }
		if err := json.Unmarshal(raw, &l); err != nil {
			return err
		}
		holder = l.Holder
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return holder
}

// Two replicas on a shared PostgreSQL, one leading detection; rules a
// newer version of the program wrote (with a field this one does not
// know) come into force. Neither may lead detection under the rules
// before them: the leader frees the lease (at its next try, not after the
// TTL), and neither takes it while those rules are in force, each saying
// so in its log; a replica that can read them would take it.
func TestReplicasThatCannotReadTheRulesInForceGiveUpTheDetectionLease(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	dir := t.TempDir()
	var logs syncBuffer
	var svcs []*service.Service
	var st store.Store
	for range 2 {
		st = openPostgres(t, url)
		cfg := Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		startedWith(t, cfg, func(svc *service.Service) { svcs = append(svcs, svc) })
	}
	deadline := time.Now().Add(2 * DetectionLeaseTTL)
	for leaseHolder(t, st) == "" {
		if time.Now().After(deadline) {
			t.Fatal("no replica took the detection lease")
		}
		time.Sleep(100 * time.Millisecond)
	}

	err := st.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.LatestRules()
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body, &m); err != nil {
			return err
		}
		m["uas_geofence_margin_m"] = 30
		body, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return tx.PutRules(store.RulesRecord{Version: rec.Version + 1, Created: time.Now().UTC(), Actor: "deconflict", Body: body})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Freed within a sync and a renewal period (2 s each), well before
	// the TTL a lease left to lapse takes.
	given := time.Now()
	for leaseHolder(t, st) != "" {
		if time.Since(given) > DetectionLeaseTTL*4/5 {
			t.Fatalf("the detection lease is still held by %q %v after rules it cannot read came into force", leaseHolder(t, st), time.Since(given))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the lease was freed %v after the rules came into force", time.Since(given).Round(time.Millisecond))
	// And not taken again: watched over several renewal periods.
	for watched := time.Now(); time.Since(watched) < 3*DetectionLeaseTTL/5; time.Sleep(100 * time.Millisecond) {
		if h := leaseHolder(t, st); h != "" {
			t.Fatalf("the detection lease was taken again by %q while the rules in force are of a newer version", h)
		}
	}
	for i, svc := range svcs {
		if err := svc.DetectionStandDown(); err == nil {
			t.Errorf("replica %d: DetectionStandDown = nil, want why it stands down", i)
		}
	}
	if out := logs.String(); !strings.Contains(out, "detection lease given up") || !strings.Contains(out, "gives up the detection lease") {
		t.Errorf("the log does not say the lease was given up and why:\n%s", out)
	}
}
