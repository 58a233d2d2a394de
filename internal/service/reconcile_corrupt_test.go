package service

import (
	"context"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

// TestTakeoverPassesOverAStoredAlertItCannotRead: the store keeps an open
// alert whose body does not decode as an alert (a fault of the store, or
// a row an older version wrote that migration 9 took up from the events).
// Every takeover failed on it: the replica holding the lease retried its
// reconcile every second for ever and never committed an alert
// transition, so that no alert of any party reached the store, the
// streams or the hotline while the one bad row stayed. The takeover
// passes over it (an ERROR naming it) and detection goes on.
func TestTakeoverPassesOverAStoredAlertItCannotRead(t *testing.T) {
	ctx := context.Background()
	logs, log := newLogBuffer()
	p := newReplicaPair(t)
	p.svc[1].log = log
	err := p.st.Update(ctx, func(tx store.Tx) error {
		return tx.PutOpenAlert(store.StoredAlert{ID: "unreadable", EventID: 1, Time: p.clock.now(),
			Body: []byte(`{"id":"unreadable","time":"not a time"}`), Pair: "?"})
	})
	if err != nil {
		t.Fatal(err)
	}
	p.peers[0].leads.Store(false)
	p.peers[1].leads.Store(true)
	p.peers[1].tenure.Store(1)
	if err := p.svc[1].ReconcileDetection(ctx, readsStoredAlerts(p.st)); err != nil {
		t.Fatalf("the takeover failed on the unreadable alert: %v", err)
	}
	c, r := headOnPair(p.clock.now())
	p.ingest(t, 1, "coalition", c)
	p.ingest(t, 1, "russia", r)
	if got := alertEvents(t, p.st); len(got) != 1 || !strings.HasPrefix(got[0], "alert_raised ") {
		t.Fatalf("after the takeover the store has %v, want the new conflict raised", got)
	}
	var named bool
	for _, line := range logs.errors() {
		named = named || strings.Contains(line, "unreadable")
	}
	if !named {
		t.Errorf("no ERROR names the stored alert passed over: %q", logs.errors())
	}
}
