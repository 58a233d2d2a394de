package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/track"
)

// clearingAtTakeover plays the takeover of the tests below: replica 0
// raises a conflict; the coalition aircraft climbs away, which both
// replicas have, and replica 1 takes over and ends the alert; the russian
// aircraft climbs too, reported to replica 1 only: the conflict again,
// raised under an id derived from that report. Replica 0 takes the lease
// back before the relay brings it that report: its engine has the
// conflict under the first id, waiting out its clear (its picture is
// older than the store's raise). It returns the pair, the store's alert
// events after the takeover, the id the store has open, and the russian
// climb.
func clearingAtTakeover(t *testing.T) (p *replicaPair, events []string, open string, rClimbed PositionReport) {
	t.Helper()
	p = newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	raised, first := p.raise(t, 0, c, r)
	p.clock.advance(time.Second)
	climbed := eastM(c, 200)
	climbed.Time, climbed.AltM = p.clock.now(), c.AltM+1500
	p.ingest(t, 0, "coalition", climbed)
	p.relay(t, 1, reportOf("coalition", climbed), reportOf("russia", r))
	p.handOver(t, 1)
	p.wantEvents(t, "after the second replica's takeover", append(raised, "alert_cleared "+first)...)
	p.clock.advance(2 * time.Second)
	rClimbed = eastM(r, -600)
	rClimbed.Time, rClimbed.AltM = p.clock.now(), r.AltM+1500
	p.ingest(t, 1, "russia", rClimbed)
	events = alertEvents(t, p.st)
	if len(events) != 3 || events[2][:len("alert_raised ")] != "alert_raised " {
		t.Fatalf("after the russian climb the store has %v, want a raise, its clear and a raise", events)
	}
	open = events[2][len("alert_raised "):]
	if got := p.open(0); !slices.Equal(got, []string{first}) {
		t.Fatalf("before its takeover the first replica's engine has %v, want %s waiting out its clear", got, first)
	}
	p.handOver(t, 0)
	p.wantEvents(t, "after the first replica's takeover", events...)
	return p, events, open, rClimbed
}

// leaderAloneHasTheRussianClimb plays the start of the takeovers on an
// older picture: replica 0 raises the head-on conflict of a pair; both
// replicas have the pair and, a second later, the coalition aircraft's
// climb out of it; 2 s later replica 0 alone has the russian aircraft's
// climb back into it (flying east at turnEastMps, when not 0). It returns
// the raise's events, the alert's id and the russian climb.
func (p *replicaPair) leaderAloneHasTheRussianClimb(t *testing.T, turnEastMps float64) (raised []string, id string, rClimbed PositionReport) {
	t.Helper()
	c, r := headOnPair(p.clock.now())
	raised, id = p.raise(t, 0, c, r)
	p.relay(t, 1, reportOf("coalition", c), reportOf("russia", r))
	p.clock.advance(time.Second)
	climbed := eastM(c, 200)
	climbed.Time, climbed.AltM = p.clock.now(), c.AltM+1500
	p.ingest(t, 0, "coalition", climbed)
	p.relay(t, 1, reportOf("coalition", climbed))
	p.clock.advance(2 * time.Second)
	rClimbed = eastM(r, -600)
	rClimbed.Time, rClimbed.AltM = p.clock.now(), r.AltM+1500
	if turnEastMps != 0 {
		rClimbed.VelEastMps = turnEastMps
	}
	p.ingest(t, 0, "russia", rClimbed)
	return raised, id, rClimbed
}

// listed is the ids of the alerts replica i lists to the operator.
func (p *replicaPair) listed(i int) []string {
	var ids []string
	for _, a := range p.svc[i].Alerts(party.Principal{Operator: true}) {
		ids = append(ids, a.ID)
	}
	return ids
}

// TestTakeoverDoesNotClearAnAlertOnAnOlderPicture: the new leader's
// engine waits out the clear of a conflict the store has open from a
// report it has not had yet. It does not clear the store's alert when
// the wait ends (the relay brings the report a moment later, and the
// conflict would be raised again under another id: the parties would read
// an end that never was); the alert stays open, listed, and the report,
// when it comes, is the store's alert: nothing to tell.
func TestTakeoverDoesNotClearAnAlertOnAnOlderPicture(t *testing.T) {
	p, events, open, rClimbed := clearingAtTakeover(t)
	p.wantListsTheStores(t, 0, "after the takeover", open)
	// The engine's wait would have ended.
	p.clock.advance(5 * time.Second)
	p.svc[0].Tick(context.Background())
	p.wantEvents(t, "once the engine's wait would have ended", events...)
	p.wantListsTheStores(t, 0, "once the engine's wait would have ended", open)
	// The relay brings the russian climb: the same conflict.
	p.relayedClimbIsTheStoresAlert(t, 0, events, open, rClimbed)
}

// wantListsTheStores checks that replica i, which leads, lists the
// store's alert open and nothing else: the takeover held it.
func (p *replicaPair) wantListsTheStores(t *testing.T, i int, when, open string) {
	t.Helper()
	if got := p.listed(i); !slices.Equal(got, []string{open}) {
		t.Fatalf("%s the leader lists %v, want the store's %s", when, got, open)
	}
}

// relayedClimbIsTheStoresAlert has the relay bring replica i, which
// leads, the russian climb behind the store's alert open: it is the same
// conflict, so the store has nothing more than events and the engine has
// takesOverAndKeepsTheStores hands the lease to replica i and lets the
// time of the engine's wait for a clear pass: the parties have read
// nothing more than events, the new leader lists the store's alert open
// alone, and the relayed climb it lacked is that alert's, not a new one's.
func (p *replicaPair) takesOverAndKeepsTheStores(t *testing.T, i int, when string, events []string, open string, rClimbed PositionReport) {
	t.Helper()
	p.handOver(t, i)
	p.clock.advance(5 * time.Second)
	p.svc[i].Tick(context.Background())
	p.wantEvents(t, when, events...)
	p.wantListsTheStores(t, i, when, open)
	p.relayedClimbIsTheStoresAlert(t, i, events, open, rClimbed)
}

// the store's alert open, under its id.
func (p *replicaPair) relayedClimbIsTheStoresAlert(t *testing.T, i int, events []string, open string, rClimbed PositionReport) {
	t.Helper()
	p.relay(t, i, reportOf("russia", rClimbed))
	p.svc[i].Tick(context.Background())
	p.wantEvents(t, "after the relayed climb", events...)
	if got := p.open(i); !slices.Equal(got, []string{open}) {
		t.Fatalf("after the relayed climb the engine has %v, want the store's %s", got, open)
	}
}

// TestTakeoverClearsAnAlertOnceItsPictureCaughtUp: as
// TestTakeoverDoesNotClearAnAlertOnAnOlderPicture, but the russian
// aircraft came back down, and the relay brings reports of both aircraft
// after the store's raise that show no conflict: the store's alert is
// cleared then, resolved, once, and the conflict is not raised again.
func TestTakeoverClearsAnAlertOnceItsPictureCaughtUp(t *testing.T) {
	p, events, open, rClimbed := clearingAtTakeover(t)
	p.clock.advance(time.Second)
	down := eastM(rClimbed, -200)
	down.Time, down.AltM = p.clock.now(), rClimbed.AltM-1500
	c, _ := headOnPair(down.Time)
	c = eastM(c, 800)
	c.AltM += 1500
	p.relay(t, 0, reportOf("coalition", c), reportOf("russia", down))
	p.clock.advance(5 * time.Second)
	p.svc[0].Tick(context.Background())
	p.wantEvents(t, "once the picture caught up", append(events, "alert_cleared "+open)...)
	if got := p.open(0); len(got) != 0 {
		t.Fatalf("once the picture caught up the engine has %v open, want nothing", got)
	}
	var reason string
	for _, a := range storedAlertTransitions(t, p, open) {
		reason = a.Reason
	}
	if reason != alert.ReasonResolved {
		t.Fatalf("the alert cleared %q, want %q", reason, alert.ReasonResolved)
	}
}

// storedAlertTransitions is the store's transitions of alert id, in
// order (one per transition: the events of one for each party count once).
func storedAlertTransitions(t *testing.T, p *replicaPair, id string) []alert.Alert {
	t.Helper()
	var out []alert.Alert
	err := p.st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100000)
		for _, e := range evs {
			var a alert.Alert
			if strings.HasPrefix(e.Kind, "alert_") && json.Unmarshal(e.Body, &a) == nil && a.ID == id {
				if n := len(out); n > 0 && out[n-1].State == a.State && out[n-1].Time.Equal(a.Time) {
					continue
				}
				out = append(out, a)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTakeoverDoesNotClearAnAlertOfItsIDOnAnOlderPicture: as
// TestTakeoverDoesNotClearAnAlertOnAnOlderPicture, with the engine's alert
// under the store's id: both replicas raised the conflict from the same
// reports and had the coalition aircraft's climb; the leader then had the
// russian aircraft's climb and turn (the conflict again, an update), and
// the other replica takes over before the relay brings it. Its engine
// waits out the clear of the alert: not cleared, and the relayed climb is
// the store's alert.
func TestTakeoverDoesNotClearAnAlertOfItsIDOnAnOlderPicture(t *testing.T) {
	p := newReplicaPair(t)
	_, id, rClimbed := p.leaderAloneHasTheRussianClimb(t, -100)
	events := []string{"alert_raised " + id, "alert_updated " + id}
	p.wantEvents(t, "after the russian climb", events...)
	if got := p.open(1); !slices.Equal(got, []string{id}) {
		t.Fatalf("before its takeover the second replica's engine has %v, want %s waiting out its clear", got, id)
	}
	p.takesOverAndKeepsTheStores(t, 1, "once the engine's wait would have ended", events, id, rClimbed)
}

// TestTakeoverClearsARenamedAlertOnceItsPictureCaughtUp: as
// TestTakeoverDoesNotClearARenamedAlertOnAnOlderPicture, but the russian
// aircraft came back down, and the relay brings reports of both aircraft
// after the store's raise that show no conflict, before the engine's wait
// ends or after it: the store's alert is cleared, resolved, once, and the
// conflict is not raised again.
func TestTakeoverClearsARenamedAlertOnceItsPictureCaughtUp(t *testing.T) {
	for _, caughtUpFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("caught up before the wait ended %v", caughtUpFirst), func(t *testing.T) {
			p, events, ids, climbs := renamedAtTakeover(t)
			p.relay(t, 0, reportOf("coalition", climbs[0]))
			p.clock.advance(time.Second)
			down := eastM(climbs[1], -200)
			down.Time, down.AltM = p.clock.now(), climbs[1].AltM-1500
			c := eastM(climbs[0], 600)
			c.Time = down.Time
			caughtUp := []track.Report{reportOf("coalition", c), reportOf("russia", down)}
			if caughtUpFirst {
				p.relay(t, 0, caughtUp...)
			}
			p.clock.advance(5 * time.Second)
			p.svc[0].Tick(context.Background())
			if !caughtUpFirst {
				p.wantEvents(t, "once the engine's wait ended", events...)
				p.relay(t, 0, caughtUp...)
				p.svc[0].Tick(context.Background())
			}
			p.wantEvents(t, "once the picture caught up", append(events, "alert_cleared "+ids[1])...)
			if got := p.open(0); len(got) != 0 {
				t.Fatalf("once the picture caught up the engine has %v open, want nothing", got)
			}
			if got := p.listed(0); len(got) != 0 {
				t.Fatalf("once the picture caught up the new leader lists %v, want nothing", got)
			}
			trs := storedAlertTransitions(t, p, ids[1])
			if last := trs[len(trs)-1]; last.Reason != alert.ReasonResolved {
				t.Fatalf("the alert cleared %q, want %q", last.Reason, alert.ReasonResolved)
			}
		})
	}
}
