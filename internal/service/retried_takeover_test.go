package service

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRetriedTakeoverHoldsAnAlertItQueuedOnAnOlderPicture: the leader
// raised a conflict at caution and updated it to advisory from a russian
// report (the aircraft slowed) that the other replica has not had when it
// takes over. Its engine has the alert at caution, from a picture older
// than the store's update: the takeover queues the update to the higher
// level, and its commit fails (the store is down); the takeover is tried
// again once the store is back, with the update still queued. The alert
// is taken up from the older picture all the same: when the engine's
// picture no longer shows the conflict (the coalition aircraft climbs),
// the store's alert is not cleared, and the relayed russian climb is the
// store's alert, under its id — not an end that never was followed by the
// same conflict raised under a new id.
func TestRetriedTakeoverHoldsAnAlertItQueuedOnAnOlderPicture(t *testing.T) {
	p := newReplicaPair(t)
	faulty := &faultyStore{Store: p.st}
	p.svc[1] = newReplicaServiceAt(t, faulty, p.peers[1], p.clock)
	c, r := headOnPair(p.clock.now())
	r.LonDeg = eastM(c, 45_000).LonDeg
	_, id := p.raise(t, 0, c, r)
	p.relay(t, 1, reportOf("coalition", c), reportOf("russia", r))
	first := storedAlertTransitions(t, p, id)[0]
	p.clock.advance(time.Second)
	slower := eastM(r, -200)
	slower.Time, slower.VelEastMps = p.clock.now(), -20
	p.ingest(t, 0, "russia", slower)
	trs := storedAlertTransitions(t, p, id)
	if len(trs) != 2 || p.svc[0].Rules().LevelRank(trs[1].Level) >= p.svc[0].Rules().LevelRank(first.Level) {
		t.Fatalf("after the russian slow-down the store has %+v, want the alert raised and updated to a lower level", trs)
	}
	// The takeover's commit fails; it is tried again.
	p.peers[0].leads.Store(false)
	p.peers[1].leads.Store(true)
	faulty.down.Store(true)
	if err := p.svc[1].ReconcileDetection(context.Background(), openInStore(p.st)); err == nil {
		t.Fatal("the takeover committed on a store that is down")
	}
	faulty.down.Store(false)
	p.handOver(t, 1)
	commitNow(t, p.svc[1])
	events := alertEvents(t, p.st)
	if want := []string{"alert_raised " + id, "alert_updated " + id}; !slices.Equal(events, want) {
		t.Fatalf("after the takeover the store has %v, want %v (the update to the higher level is committed)", events, want)
	}
	// The coalition aircraft climbs away: the engine's picture, older
	// than the store's update for the russian aircraft, shows no
	// conflict; its wait ends.
	p.clock.advance(time.Second)
	climbed := eastM(c, 400)
	climbed.Time, climbed.AltM = p.clock.now(), c.AltM+1500
	p.ingest(t, 1, "coalition", climbed)
	p.clock.advance(5 * time.Second)
	p.svc[1].Tick(context.Background())
	commitNow(t, p.svc[1])
	p.wantEvents(t, "once the engine's wait ended", events...)
	p.wantListsTheStores(t, 1, "once the engine's wait ended", id)
	// The relay brings the russian climb: the conflict again.
	rClimbed := eastM(slower, -200)
	rClimbed.Time, rClimbed.AltM = p.clock.now(), r.AltM+1500
	p.relay(t, 1, reportOf("russia", rClimbed))
	p.svc[1].Tick(context.Background())
	commitNow(t, p.svc[1])
	for _, e := range alertEvents(t, p.st) {
		if !strings.HasSuffix(e, " "+id) || strings.HasPrefix(e, "alert_cleared ") {
			t.Fatalf("after the relayed climb the store has %v, want the alert %s open alone", alertEvents(t, p.st), id)
		}
	}
	if got := p.open(1); !slices.Equal(got, []string{id}) {
		t.Fatalf("after the relayed climb the engine has %v, want the store's %s", got, id)
	}
}

// commitNow commits what s has queued, without waiting out the backoff of
// a failed commit (which runs on the host's clock).
func commitNow(t *testing.T, s *Service) {
	t.Helper()
	s.tac.commitMu.Lock()
	defer s.tac.commitMu.Unlock()
	if _, err := s.commitQueuedLocked(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}
