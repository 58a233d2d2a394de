package service

import (
	"context"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
)

// renew lets n seconds pass on both clocks, the leader (replica 0)
// renewing the lease every second and the other replicas trying it, as
// they do every period.
func (r *lateReplicas) renew(t *testing.T, n int) {
	t.Helper()
	for range n {
		r.clock.advance(time.Second)
		r.leaseClock.advance(time.Second)
		if held, err := r.peers[0].lease.Try(context.Background()); err != nil || !held {
			t.Fatalf("replica 0 did not renew the lease it holds (%v)", err)
		}
		for _, i := range []int{1, 2} {
			if r.peers[i].takeLease(t, r.svc[i]) {
				t.Fatalf("replica %d took the lease replica 0 holds", i)
			}
		}
	}
}

// takeOverFromTheStopped lets the seconds pass on both clocks, replica i
// trying the lease every second, until it takes it.
func (r *lateReplicas) takeOverFromTheStopped(t *testing.T, i int) {
	t.Helper()
	for range 15 {
		r.clock.advance(time.Second)
		r.leaseClock.advance(time.Second)
		if r.peers[i].takeLease(t, r.svc[i]) {
			return
		}
	}
	t.Fatalf("replica %d did not take the lease replica 0 stopped renewing", i)
}

// TestAlertAFollowerSawWhileTheLeaderLedIsNotRecordedLate is the
// reviewer's case: replica 0 leads and renews the lease; replica 1's
// engine alone finds a conflict, which the leader's does not (its clients
// report to replica 1, and the leader never had those reports: engines
// differ at the margins), raised and cleared. Half a minute later replica
// 0 stops and replica 1 takes over: the leader judged that time, and
// nothing is recorded late (it was, raised and cleared, claiming that
// nobody led).
func TestAlertAFollowerSawWhileTheLeaderLedIsNotRecordedLate(t *testing.T) {
	r := newLateReplicas(t)
	if !r.peers[0].takeLease(t, r.svc[0]) {
		t.Fatal("replica 0 did not take the free lease")
	}
	r.renew(t, 3)
	r.conflictThenApart(t, 1, nil)
	r.leaseClock.advance(7 * time.Second) // the time conflictThenApart took
	r.renew(t, 30)
	if n := len(completeUnled(r.svc[1])); n != 1 {
		t.Fatalf("replica 1 logged %d alerts raised and cleared, want its conflict", n)
	}
	if got := lateAlertEvents(t, r.st); len(got) != 0 {
		t.Fatalf("the leader committed %+v, want nothing: its engine never had the reports", got)
	}
	r.takeOverFromTheStopped(t, 1)
	if got := lateAlertEvents(t, r.st); len(got) != 0 {
		t.Fatalf("after the takeover the store has %+v, want nothing: the alert was raised and cleared while replica 0 led", got)
	}
}

// TestAlertOpenAfterTheLeadersLastRenewalIsRecordedLate: replica 1's
// engine alone finds a conflict while replica 0 leads, and replica 0
// stops a second later, after one more renewal; the conflict clears after
// that. The alert was open when nobody led: the takeover records it late,
// raised and cleared as it happened.
func TestAlertOpenAfterTheLeadersLastRenewalIsRecordedLate(t *testing.T) {
	r := newLateReplicas(t)
	if !r.peers[0].takeLease(t, r.svc[0]) {
		t.Fatal("replica 0 did not take the free lease")
	}
	r.renew(t, 5)
	raisedAt := r.clock.now()
	c, ru := headOnPair(raisedAt)
	r.ingest(t, 1, nil, c, ru)
	// Two more renewals, then replica 0 stops; the raise came before
	// the last renewal the followers saw.
	r.renew(t, 2)
	c.Time, ru.Time = r.clock.now(), r.clock.now()
	c.VelEastMps, ru.VelEastMps = -200, 200
	r.ingest(t, 1, nil, c, ru)
	r.clock.advance(6 * time.Second)
	r.leaseClock.advance(6 * time.Second)
	c.Time, ru.Time = r.clock.now(), r.clock.now()
	r.ingest(t, 1, nil, c, ru)
	r.svc[1].Tick(context.Background())
	if n := len(r.svc[1].tac.eng.Load().Alerts()); n != 0 {
		t.Fatalf("replica 1's engine still has %d alerts, want the conflict cleared", n)
	}
	r.takeOverFromTheStopped(t, 1)
	got := lateAlertEvents(t, r.st)
	if len(got) != 2 || got[0].kind != "alert_raised" || got[1].kind != "alert_cleared" || !got[0].alert.RecordedLate || !got[1].alert.RecordedLate {
		t.Fatalf("after the takeover the store has %+v, want the alert raised and cleared, recorded late", got)
	}
	if !got[0].alert.Time.Equal(raisedAt) {
		t.Errorf("the late raise has the time %s, want the raise's %s", got[0].alert.Time, raisedAt)
	}
}

// TestAlertTheDeadLeaderLeftOpenEndsWhenTheFollowerSawItEnd: the leader
// raised and committed an alert, which the follower's engine has too
// (relayed) and whose event it delivered; the leader stops, and the
// follower's engine sees the conflict end while nobody leads. Its takeover
// clears the alert the store has open at the time its engine cleared it,
// not at the takeover's.
func TestAlertTheDeadLeaderLeftOpenEndsWhenTheFollowerSawItEnd(t *testing.T) {
	ctx := context.Background()
	r := newLateReplicas(t)
	if !r.peers[0].takeLease(t, r.svc[0]) {
		t.Fatal("replica 0 did not take the free lease")
	}
	r.renew(t, 3)
	c, ru := headOnPair(r.clock.now())
	r.ingest(t, 0, []int{1, 2}, c, ru)
	raised := lateAlertEvents(t, r.st)
	if len(raised) != 1 || raised[0].kind != "alert_raised" {
		t.Fatalf("the leader committed %+v, want the alert raised", raised)
	}
	if err := r.svc[1].CatchUpEvents(ctx); err != nil {
		t.Fatal(err)
	}
	r.renew(t, 1)
	// Replica 0 stops; the clients report to replica 1 now.
	c.Time, ru.Time = r.clock.now(), r.clock.now()
	c.VelEastMps, ru.VelEastMps = -200, 200
	r.ingest(t, 1, nil, c, ru)
	r.clock.advance(6 * time.Second)
	r.leaseClock.advance(6 * time.Second)
	c.Time, ru.Time = r.clock.now(), r.clock.now()
	r.ingest(t, 1, nil, c, ru)
	r.svc[1].Tick(ctx)
	if n := len(r.svc[1].tac.eng.Load().Alerts()); n != 0 {
		t.Fatalf("replica 1's engine still has %d alerts, want the conflict cleared", n)
	}
	clearedAt := r.clock.now()
	r.takeOverFromTheStopped(t, 1)
	got := lateAlertEvents(t, r.st)
	if len(got) != 2 || got[1].kind != "alert_cleared" || got[1].alert.ID != raised[0].alert.ID {
		t.Fatalf("after the takeover the store has %+v, want the leader's alert cleared", got)
	}
	cl := got[1].alert
	if !cl.Time.Equal(clearedAt) || cl.Reason != alert.ReasonResolved || cl.RecordedLate {
		t.Errorf("the alert is cleared at %s (%s, recorded late %v), want at %s when replica 1's engine cleared it, resolved (takeover at %s)",
			cl.Time, cl.Reason, cl.RecordedLate, clearedAt, r.clock.now())
	}
}
