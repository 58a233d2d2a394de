package service

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
)

// TestHeldAlertTakenUpOnAnOlderPictureIsNotClearedOnIt: as
// TestTakeoverDoesNotClearAnAlertOnAnOlderPicture, but before the relay
// brings the russian climb it brings coalition reports that show the
// conflict again (the coalition aircraft back down to the russian's
// level) and then not (back up): the engine takes the held alert up from
// a picture still older than the store's raise, and its clear at the end
// of the wait is not committed either (the russian climb, a moment later,
// is the conflict again: it would be raised under a new id, and the
// parties would read an end that never was).
func TestHeldAlertTakenUpOnAnOlderPictureIsNotClearedOnIt(t *testing.T) {
	p, events, open, rClimbed := clearingAtTakeover(t)
	c, _ := headOnPair(rClimbed.Time.Add(-3 * time.Second))
	p.clock.advance(500 * time.Millisecond)
	down := eastM(c, 700)
	down.Time = p.clock.now()
	p.relay(t, 0, reportOf("coalition", down))
	p.svc[0].Tick(context.Background())
	if got := p.open(0); !slices.Equal(got, []string{open}) {
		t.Fatalf("after the coalition's descent the engine has %v, want the store's %s", got, open)
	}
	p.clock.advance(time.Second)
	up := eastM(c, 900)
	up.Time, up.AltM = p.clock.now(), c.AltM+1500
	p.relay(t, 0, reportOf("coalition", up))
	p.clock.advance(5 * time.Second)
	p.svc[0].Tick(context.Background())
	got := alertEvents(t, p.st)
	if slices.Contains(got, "alert_cleared "+open) {
		t.Fatalf("the store's alert was cleared on a picture older than its raise: %v", got)
	}
	if l := p.listed(0); !slices.Equal(l, []string{open}) {
		t.Fatalf("the new leader lists %v, want the store's %s", l, open)
	}
	// The relay brings the russian climb: the same conflict, the store's
	// alert.
	p.relay(t, 0, reportOf("russia", rClimbed))
	p.svc[0].Tick(context.Background())
	after := alertEvents(t, p.st)
	for _, e := range after[len(events):] {
		if e != "alert_updated "+open {
			t.Fatalf("after the relayed climb the store has %v, want %v and updates of %s at most", after, events, open)
		}
	}
	if got := p.open(0); !slices.Equal(got, []string{open}) {
		t.Fatalf("after the relayed climb the engine has %v, want the store's %s", got, open)
	}
}

// TestHeldAlertWhoseAircraftStopReportingEndsStaleOnce: the store's alert
// held at the takeover (the engine waited out its clear from an older
// picture) whose aircraft report no more is cleared at the stale limit,
// once, reason stale, and nothing is published of it after.
func TestHeldAlertWhoseAircraftStopReportingEndsStaleOnce(t *testing.T) {
	p, events, open, _ := clearingAtTakeover(t)
	p.clock.advance(10 * time.Second)
	p.svc[0].Tick(context.Background())
	p.wantEvents(t, "before the stale limit", events...)
	p.clock.advance(25 * time.Second)
	p.svc[0].Tick(context.Background())
	want := append(slices.Clone(events), "alert_cleared "+open)
	p.wantEvents(t, "after the stale limit", want...)
	trs := storedAlertTransitions(t, p, open)
	if last := trs[len(trs)-1]; last.Reason != alert.ReasonStale {
		t.Fatalf("the alert cleared %q, want %q", last.Reason, alert.ReasonStale)
	}
	p.clock.advance(time.Minute)
	p.svc[0].Tick(context.Background())
	p.wantEvents(t, "a minute later", want...)
	if l := p.listed(0); len(l) != 0 {
		t.Fatalf("a minute later the leader lists %v", l)
	}
}
