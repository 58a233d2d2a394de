package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
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

// TestTakeoverDoesNotDowngradeAnAlertOnAnOlderPicture: the leader raised
// a conflict at the lowest level and updated it to a higher one from a
// russian report (the aircraft sped up) that the other replica has not
// had yet when it takes over. Its engine has the alert at the lower
// level, from a picture older than the store's update: the takeover does
// not commit it (a downgrade that never was, its time before the store's
// update's), and the relayed report, when it comes, is the store's alert.
func TestTakeoverDoesNotDowngradeAnAlertOnAnOlderPicture(t *testing.T) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	r.LonDeg = eastM(c, 89_000).LonDeg
	_, id := p.raise(t, 0, c, r)
	p.relay(t, 1, reportOf("coalition", c), reportOf("russia", r))
	first := storedAlertTransitions(t, p, id)[0]
	p.clock.advance(time.Second)
	faster := r
	faster.LonDeg, faster.Time = eastM(c, 45_000).LonDeg, p.clock.now()
	p.ingest(t, 0, "russia", faster)
	events := alertEvents(t, p.st)
	trs := storedAlertTransitions(t, p, id)
	if len(trs) != 2 || trs[1].Level == first.Level {
		t.Fatalf("after the russian speed-up the store has %v, want the alert raised and updated to a higher level", events)
	}
	// The events of one alert in a row read as one (alertEvents): its
	// transitions are compared.
	levels := func(when string) {
		t.Helper()
		p.wantEvents(t, when, events...)
		var got []string
		for _, a := range storedAlertTransitions(t, p, id) {
			got = append(got, a.State+" "+a.Level)
		}
		if want := []string{"raised " + first.Level, "updated " + trs[1].Level}; !slices.Equal(got, want) {
			t.Fatalf("%s the store has the alert %v, want %v", when, got, want)
		}
	}
	p.handOver(t, 1)
	p.svc[1].Tick(context.Background())
	levels("after the takeover")
	if l := p.svc[1].Alerts(party.Principal{Operator: true}); len(l) != 1 || l[0].ID != id || l[0].Level != trs[1].Level {
		t.Fatalf("after the takeover the new leader lists %+v, want %s at %s", l, id, trs[1].Level)
	}
	// The relay brings the coalition's report of the time of the
	// store's update, then the russian one the update came from: the
	// picture has caught up, on the store's alert.
	n := storeEventCount(t, p)
	cThen := eastM(c, 200)
	cThen.Time = faster.Time
	p.relay(t, 1, reportOf("coalition", cThen))
	p.svc[1].Tick(context.Background())
	levels("after the relayed coalition report")
	p.relay(t, 1, reportOf("russia", faster))
	p.svc[1].Tick(context.Background())
	levels("after the relayed report")
	// Both aircraft report on, as the store has them: the picture has
	// caught up, and there is nothing to tell.
	p.clock.advance(time.Second)
	c2, r2 := eastM(c, 400), eastM(faster, -200)
	c2.Time, r2.Time = p.clock.now(), p.clock.now()
	p.ingest(t, 1, "coalition", c2)
	p.ingest(t, 1, "russia", r2)
	p.svc[1].Tick(context.Background())
	levels("once the picture caught up")
	if got := storeEventCount(t, p); got != n {
		t.Fatalf("the reports the store's update came from, and those after, wrote %d events", got-n)
	}
}

// storeEventCount is how many events the store has.
func storeEventCount(t *testing.T, p *replicaPair) int {
	t.Helper()
	var n int
	err := p.st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100000)
		n = len(evs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newReplicaPairWith is newReplicaPair on a store whose rules in force are
// r (version 1).
func newReplicaPairWith(t *testing.T, r rules.Rules) *replicaPair {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.Version = 1
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutRules(store.RulesRecord{Version: 1, Created: time.Now().UTC(), Actor: "test", Body: body})
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &replicaPair{st: st, clock: &testClock{}}
	for i := range p.svc {
		p.peers[i] = &testPeers{}
		p.svc[i] = newReplicaServiceAt(t, st, p.peers[i], p.clock)
	}
	p.peers[0].leads.Store(true)
	return p
}

// TestHeldAlertDisclosesItsAircraft: an alert discloses its aircraft to
// the parties it concerns while it is open (need to know). The new
// leader's engine waits out the clear of the store's alert from an older
// picture, and the takeover holds the store's alert: listed to the
// parties, open, it discloses the other party's aircraft to each as long
// as it is held, however short the linger after a clear (the rules here:
// a second, and no disclosure by proximity a conflict would give), and
// no longer once it has ended (or the replica lost the lease).
func TestHeldAlertDisclosesItsAircraft(t *testing.T) {
	for _, leaseLost := range []bool{false, true} {
		t.Run(fmt.Sprintf("lease lost %v", leaseLost), func(t *testing.T) { heldAlertDisclosesItsAircraft(t, leaseLost) })
	}
}

// heldAlertDisclosesItsAircraft plays TestHeldAlertDisclosesItsAircraft;
// with leaseLost, the replica that holds the alert loses the lease before
// the engine's wait ends.
func heldAlertDisclosesItsAircraft(t *testing.T, leaseLost bool) {
	r := rules.Default()
	r.DiscloseWithinM, r.DiscloseWithinAltM, r.DiscloseLingerS = 1000, 300, 1
	p := newReplicaPairWith(t, r)
	c, _ := headOnPair(p.clock.now()) // the coalition's report of the raise below
	_, id, rClimbed := p.leaderAloneHasTheRussianClimb(t, -100)
	p.handOver(t, 1)
	sees := func(when string) {
		t.Helper()
		if l := p.listed(1); !slices.Equal(l, []string{id}) {
			t.Fatalf("%s the new leader lists %v, want the store's %s", when, l, id)
		}
		var seen []string
		for _, s := range p.svc[1].Tracks(party.Principal{Party: "coalition"}, detect.World) {
			seen = append(seen, s.Party+"/"+s.Aircraft)
		}
		if !slices.Contains(seen, "russia/R1") {
			t.Fatalf("%s the coalition, whose alert %s with the russian aircraft is open, sees %v", when, id, seen)
		}
	}
	sees("after the takeover")
	if leaseLost {
		// The held alert is the new leader's to judge: it ends in this
		// replica's picture, which follows its engine, where the
		// conflict is over; nothing discloses the russian aircraft
		// once the linger has passed.
		p.handOver(t, 0)
		p.svc[1].Tick(context.Background())
		p.clock.advance(2 * time.Second)
		p.svc[1].Tick(context.Background())
		for _, s := range p.svc[1].Tracks(party.Principal{Party: "coalition"}, detect.World) {
			if s.Party == "russia" {
				t.Fatalf("the coalition sees the russian aircraft %s on the replica that held the alert and lost the lease", s.Aircraft)
			}
		}
		return
	}
	p.clock.advance(5 * time.Second)
	p.svc[1].Tick(context.Background())
	sees("once the engine's wait would have ended")
	p.clock.advance(5 * time.Second)
	p.svc[1].Tick(context.Background())
	sees("after the linger of a clear")
	// The relay brings the russian climb (the store's alert again, taken
	// up), then the two report apart in height: the conflict ends, the
	// alert clears, and the russian aircraft is no longer disclosed once
	// the linger has passed.
	p.relay(t, 1, reportOf("russia", rClimbed))
	start := rClimbed.Time.Add(-3 * time.Second)
	report := func() {
		at := p.clock.now()
		s := at.Sub(start).Seconds()
		cNow, rNow := eastM(c, 200*s), eastM(rClimbed, -100*(s-3))
		cNow.Time, rNow.Time = at, at
		p.ingest(t, 1, "coalition", cNow)
		p.ingest(t, 1, "russia", rNow)
		p.svc[1].Tick(context.Background())
	}
	report()
	for range 4 {
		p.clock.advance(2 * time.Second)
		report()
	}
	if got := alertEvents(t, p.st); got[len(got)-1] != "alert_cleared "+id {
		t.Fatalf("once the aircraft reported apart the store has %v, want %s cleared", got, id)
	}
	for _, s := range p.svc[1].Tracks(party.Principal{Party: "coalition"}, detect.World) {
		if s.Party == "russia" {
			t.Fatalf("the coalition sees the russian aircraft %s after its alert cleared and the linger passed", s.Aircraft)
		}
	}
}

// TestHeldAlertThroughTwoTakeovers: the store's alert held by the first
// replica (its engine waited out the clear on an older picture) goes
// through the lease passing to the second replica and back before the
// relay brings the first the report behind the store's alert, and while
// its engine's wait would end: nothing is cleared or raised, and the
// relayed report is the store's alert.
func TestHeldAlertThroughTwoTakeovers(t *testing.T) {
	p, events, open, rClimbed := clearingAtTakeover(t)
	p.clock.advance(2 * time.Second)
	p.svc[0].Tick(context.Background())
	p.handOver(t, 1)
	p.svc[1].Tick(context.Background())
	p.wantEvents(t, "after the lease passed to the second replica", events...)
	p.clock.advance(2 * time.Second)
	p.takesOverAndKeepsTheStores(t, 0, "after the lease came back", events, open, rClimbed)
}

// TestHeldAlertEndedByRulesIsNotRaisedAgainUnderItsID: new rules that
// change detection end the store's alert held at the takeover (reason
// rules_changed); the relay then brings the report it came from, and the
// new engine, which derives the held alert's id from it, raises the
// conflict under a new id, not under the one the parties were told ended.
func TestHeldAlertEndedByRulesIsNotRaisedAgainUnderItsID(t *testing.T) {
	p, events, open, rClimbed := clearingAtTakeover(t)
	if err := p.svc[0].retuneTactical(context.Background(), widerSeparation(p.svc[0].Rules())); err != nil {
		t.Fatal(err)
	}
	events = append(events, "alert_cleared "+open)
	p.wantEvents(t, "after the rules change", events...)
	trs := storedAlertTransitions(t, p, open)
	if last := trs[len(trs)-1]; last.Reason != reasonRulesChanged {
		t.Fatalf("the held alert ended %q, want %q", last.Reason, reasonRulesChanged)
	}
	p.relay(t, 0, reportOf("russia", rClimbed))
	p.svc[0].Tick(context.Background())
	got := p.open(0)
	if len(got) != 1 || got[0] == open {
		t.Fatalf("after the relayed climb the engine has %v, want the conflict under a new id (not %s)", got, open)
	}
	p.wantEvents(t, "after the relayed climb", append(events, "alert_raised "+got[0])...)
	if l := p.listed(0); !slices.Equal(l, got) {
		t.Fatalf("after the relayed climb the leader lists %v, want %v", l, got)
	}
}

// TestBehindAlertThroughALostLease: the first replica took the store's
// alert up at the takeover from an older picture (renamed) and loses the
// lease; as a follower its engine clears the alert on that picture, then
// raises the conflict again when the relay brings the report behind the
// store's. The lease comes back: the store's alert goes on, nothing
// cleared, nothing raised under another id.
func TestBehindAlertThroughALostLease(t *testing.T) {
	p, events, ids, climbs := renamedAtTakeover(t)
	p.handOver(t, 1)
	p.relay(t, 0, reportOf("coalition", climbs[0]))
	p.clock.advance(5 * time.Second)
	p.svc[0].Tick(context.Background())
	p.svc[1].Tick(context.Background())
	if got := p.open(0); len(got) != 0 {
		t.Fatalf("the follower's engine has %v, want the alert cleared on its older picture", got)
	}
	p.relay(t, 0, reportOf("russia", climbs[1]))
	p.handOver(t, 0)
	p.svc[0].Tick(context.Background())
	p.wantEvents(t, "after the lease came back", events...)
	if got := p.listed(0); !slices.Equal(got, []string{ids[1]}) {
		t.Fatalf("after the lease came back the leader lists %v, want the store's %s", got, ids[1])
	}
}
