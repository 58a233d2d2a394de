package service

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
)

// TestFollowerAnswersAlertsByTheStoresIds: a party served by a replica
// that does not lead detection reads its alerts as the leader committed
// them, the ids its event stream carries: GET /v1/alerts lists the
// store's alert, not the one the follower's engine (fed the reports in
// another order) named after another report, and the resolution of the
// alert its stream announced is answered, not 404; once the leader clears
// it, the follower answers 410 and lists it no more.
func TestFollowerAnswersAlertsByTheStoresIds(t *testing.T) {
	ctx := context.Background()
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	r.Time = r.Time.Add(100 * time.Millisecond)
	_, id := p.raise(t, 0, c, r)
	// The follower gets the russian report, then the coalition's next.
	p.clock.advance(time.Second)
	c = eastM(c, 200)
	c.Time = p.clock.now()
	p.relay(t, 1, reportOf("russia", r))
	p.ingest(t, 1, "coalition", c)
	p.relay(t, 0, reportOf("coalition", c))
	if open := p.open(1); len(open) != 1 || open[0] == id {
		t.Fatalf("the follower's engine has %v, want the conflict under another id than %s", open, id)
	}
	follower := p.svc[1]
	if err := follower.CatchUpEvents(ctx); err != nil {
		t.Fatal(err)
	}
	for _, who := range []party.Principal{{Party: "coalition"}, {Party: "russia"}, {Party: party.OperatorName, Operator: true}} {
		var ids []string
		for _, a := range follower.Alerts(who) {
			ids = append(ids, a.ID)
		}
		if !slices.Equal(ids, []string{id}) {
			t.Fatalf("the follower lists %v to %s, want the store's alert %s", ids, who.Party, id)
		}
		res, err := follower.Resolution(who, id)
		if err != nil {
			t.Fatalf("the follower's resolution of the store's alert %s for %s: %v", id, who.Party, err)
		}
		if res.AlertID != id || len(res.Aircraft) == 0 {
			t.Fatalf("the follower's resolution for %s: %+v, want alert %s with its aircraft", who.Party, res, id)
		}
	}
	if got := follower.Alerts(party.Principal{Party: "turkey"}); len(got) != 0 {
		t.Fatalf("the follower lists %+v to a party of neither aircraft", got)
	}
	if _, err := follower.Resolution(party.Principal{Party: "turkey"}, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the follower's resolution for a party of neither aircraft: %v, want not found", err)
	}

	// Both turn away; the leader clears the alert once the hysteresis is
	// over.
	p.clock.advance(time.Second)
	c, r = eastM(c, 200), eastM(r, 200)
	c.Time, r.Time = p.clock.now(), p.clock.now()
	c.VelEastMps, r.VelEastMps = -200, 200
	p.ingest(t, 0, "coalition", c)
	p.ingest(t, 0, "russia", r)
	p.clock.advance(10 * time.Second)
	p.svc[0].Tick(ctx)
	p.wantEvents(t, "after the turn", "alert_raised "+id, "alert_cleared "+id)
	if err := follower.CatchUpEvents(ctx); err != nil {
		t.Fatal(err)
	}
	if got := follower.Alerts(party.Principal{Party: "coalition"}); len(got) != 0 {
		t.Fatalf("after the leader cleared it the follower lists %+v", got)
	}
	var gone *AlertClearedError
	if _, err := follower.Resolution(party.Principal{Party: "coalition"}, id); !errors.As(err, &gone) {
		t.Fatalf("the follower's resolution of the cleared alert: %v, want 410", err)
	}
}
