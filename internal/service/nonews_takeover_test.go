package service

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestTakeoverDoesNotClearAnAlertOnAPictureOlderThanTheLeadersNoNews: as
// TestTakeoverDoesNotClearAnAlertOfItsIDOnAnOlderPicture, but the russian
// climb, which brings the conflict back on the leader, tells nothing new
// of the alert: the leader commits nothing for it, and the store's last
// transition of the alert is its raise, older than the other replica's
// picture of both aircraft. That picture is older than the leader's all
// the same (it lacks the climb): the other replica, taking over, does not
// clear the alert when its engine's wait ends, and the relayed climb is
// the store's alert, under its id — not an end that never was followed by
// the same conflict raised under a new id. The leader recorded what it
// saw by its periodic job, or at its shutdown.
func TestTakeoverDoesNotClearAnAlertOnAPictureOlderThanTheLeadersNoNews(t *testing.T) {
	for _, shutdown := range []bool{false, true} {
		t.Run(fmt.Sprintf("leader shut down %v", shutdown), func(t *testing.T) { noNewsTakeover(t, shutdown) })
	}
}

// noNewsTakeover plays
// TestTakeoverDoesNotClearAnAlertOnAPictureOlderThanTheLeadersNoNews.
func noNewsTakeover(t *testing.T, shutdown bool) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	raised, id := p.raise(t, 0, c, r)
	p.relay(t, 1, reportOf("coalition", c), reportOf("russia", r))
	p.clock.advance(time.Second)
	climbed := eastM(c, 200)
	climbed.Time, climbed.AltM = p.clock.now(), c.AltM+1500
	p.ingest(t, 0, "coalition", climbed)
	p.relay(t, 1, reportOf("coalition", climbed))
	p.clock.advance(2 * time.Second)
	rClimbed := eastM(r, -600)
	rClimbed.Time, rClimbed.AltM = p.clock.now(), r.AltM+1500
	p.ingest(t, 0, "russia", rClimbed)
	p.wantEvents(t, "after the russian climb (no news)", raised...)
	if got := p.open(0); !slices.Equal(got, []string{id}) {
		t.Fatalf("after the russian climb the leader's engine has %v, want %s", got, id)
	}
	if got := p.open(1); !slices.Equal(got, []string{id}) {
		t.Fatalf("before its takeover the second replica's engine has %v, want %s waiting out its clear", got, id)
	}
	if shutdown {
		if err := p.svc[0].Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	} else {
		p.svc[0].Tick(context.Background())
	}
	p.handOver(t, 1)
	p.clock.advance(5 * time.Second)
	p.svc[1].Tick(context.Background())
	p.wantEvents(t, "once the engine's wait would have ended", raised...)
	p.wantListsTheStores(t, 1, "once the engine's wait would have ended", id)
	p.relayedClimbIsTheStoresAlert(t, 1, raised, id, rClimbed)
}
