package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/replica"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/track"
)

// leasePeers are the peers of a replica holding (or not) the real detection
// lease on the shared store, as the server wires them, on the test's clock.
type leasePeers struct {
	lease     *replica.Lease
	mu        sync.Mutex
	published []track.Report
}

func (p *leasePeers) PublishPositions(r []track.Report) {
	p.mu.Lock()
	p.published = append(p.published, r...)
	p.mu.Unlock()
}

func (p *leasePeers) LeadsDetection() bool { return p.lease.Held() }

func (p *leasePeers) DetectionTenure() int64 {
	tenure, _ := p.lease.Tenure()
	return tenure
}

func (p *leasePeers) OtherLeaderRenewedWithin() (time.Duration, bool) {
	return p.lease.OthersRenewedWithin()
}

func (p *leasePeers) FenceDetection() func(store.Meta) error {
	fence := p.lease.Fence()
	if fence == nil {
		return nil
	}
	return func(tx store.Meta) error {
		if err := fence(tx); errors.Is(err, replica.ErrLost) {
			return fmt.Errorf("%w: %w", ErrNotLeading, err)
		} else if err != nil {
			return err
		}
		return nil
	}
}

// readsStoredAlerts reads the alerts the store keeps, as the server's
// takeover does (ReadStoredAlerts).
func readsStoredAlerts(st store.Store) func(context.Context) (StoredAlerts, error) {
	return func(ctx context.Context) (StoredAlerts, error) { return ReadStoredAlerts(ctx, st) }
}

// takeLease tries the lease, as the replica's renewal does, and
// reconciles when it holds it (as the server's takeover does).
func (p *leasePeers) takeLease(t *testing.T, s *Service) bool {
	t.Helper()
	ctx := context.Background()
	held, err := p.lease.Try(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if held {
		if err := s.ReconcileDetection(ctx, readsStoredAlerts(s.st)); err != nil {
			t.Fatal(err)
		}
	}
	return held
}

// lateReplicas is a shared PostgreSQL store and three replicas on it, on
// one service clock and one lease clock.
type lateReplicas struct {
	st         store.Store
	clock      *testClock // the services'
	leaseClock *testClock
	svc        [3]*Service
	peers      [3]*leasePeers
}

func newLateReplicas(t *testing.T) *lateReplicas {
	t.Helper()
	st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &lateReplicas{st: st, clock: &testClock{}, leaseClock: &testClock{}}
	for i := range r.svc {
		r.peers[i] = &leasePeers{lease: replica.NewLease(st, "detect", fmt.Sprintf("replica-%d", i), 10*time.Second, r.leaseClock.now)}
		r.svc[i] = newReplicaServiceAt(t, st, r.peers[i], r.clock)
	}
	return r
}

// ingest sends reports of the two aircraft of headOnPair to replica i, as
// its clients do, and relays them to the replicas of to.
func (r *lateReplicas) ingest(t *testing.T, i int, to []int, c, ru PositionReport) {
	t.Helper()
	ctx := context.Background()
	p := r.peers[i]
	p.mu.Lock()
	from := len(p.published)
	p.mu.Unlock()
	if _, _, err := r.svc[i].IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.svc[i].IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{ru}); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	relayed := slices.Clone(p.published[from:])
	p.mu.Unlock()
	for _, j := range to {
		if err := r.svc[j].IngestRelayed(ctx, relayed); err != nil {
			t.Fatal(err)
		}
	}
}

// conflictThenApart has the pair of headOnPair close in (from now on the
// service clock), then turn away a second later, and waits out the
// hysteresis of the clear with one more report each, ticking the replicas
// of at: each engine raises the alert and clears it. Replica i gets the
// reports from the clients, the others of at by the relay.
func (r *lateReplicas) conflictThenApart(t *testing.T, i int, at []int) {
	t.Helper()
	c, ru := headOnPair(r.clock.now())
	r.ingest(t, i, at, c, ru)
	for _, j := range append([]int{i}, at...) {
		if n := len(r.svc[j].tac.eng.Load().Alerts()); n != 1 {
			t.Fatalf("replica %d's engine has %d alerts, want the conflict", j, n)
		}
	}
	for _, step := range []time.Duration{time.Second, 6 * time.Second} {
		r.clock.advance(step)
		c.Time, ru.Time = r.clock.now(), r.clock.now()
		c.VelEastMps, ru.VelEastMps = -200, 200
		r.ingest(t, i, at, c, ru)
		r.svc[i].Tick(context.Background())
		for _, j := range at {
			r.svc[j].Tick(context.Background())
		}
	}
	for _, j := range append([]int{i}, at...) {
		if n := len(r.svc[j].tac.eng.Load().Alerts()); n != 0 {
			t.Fatalf("replica %d's engine still has %d alerts, want the conflict cleared", j, n)
		}
	}
}

// lateAlertEvent is an alert event of the store as the late test reads it.
type lateAlertEvent struct {
	kind     string
	audience []string
	alert    alert.Alert
}

func lateAlertEvents(t *testing.T, st store.Store) []lateAlertEvent {
	t.Helper()
	var out []lateAlertEvent
	err := st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100000)
		for _, e := range evs {
			if !strings.HasPrefix(e.Kind, "alert_") {
				continue
			}
			le := lateAlertEvent{kind: e.Kind, audience: e.Audience}
			if err := json.Unmarshal(e.Body, &le.alert); err != nil {
				return err
			}
			// A transition with a resolution is an event per party:
			// one transition, its audiences together.
			if n := len(out); n > 0 && out[n-1].kind == le.kind && out[n-1].alert.ID == le.alert.ID && out[n-1].alert.Time.Equal(le.alert.Time) {
				out[n-1].audience = append(out[n-1].audience, le.audience...)
				continue
			}
			out = append(out, le)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAlertRaisedAndClearedWithoutALeaderIsRecordedLate: the leader stops
// (its lease is not renewed any more); the conflict of a pair is raised
// and cleared by the engines of the two followers before one of them
// takes the lease. The new leader records it after its reconcile: raised
// and cleared as it happened, marked recorded_late, to both parties, with
// audit records for both and no hotline item (it is over). The third
// replica, which saw it too, takes the lease in turn and records nothing
// again.
func TestAlertRaisedAndClearedWithoutALeaderIsRecordedLate(t *testing.T) {
	r := newLateReplicas(t)
	if !r.peers[0].takeLease(t, r.svc[0]) {
		t.Fatal("replica 0 did not take the free lease")
	}
	for _, i := range []int{1, 2} {
		if r.peers[i].takeLease(t, r.svc[i]) {
			t.Fatalf("replica %d took the lease replica 0 holds", i)
		}
	}
	// Replica 0 stops: no renewal, no report. Replica 1 takes the reports
	// of both aircraft and relays them to replica 2; nobody leads.
	r.leaseClock.advance(9 * time.Second)
	raisedAt := r.clock.now()
	r.conflictThenApart(t, 1, []int{2})
	if got := lateAlertEvents(t, r.st); len(got) != 0 {
		t.Fatalf("the store has alert events while nobody led: %+v", got)
	}
	r.clock.advance(time.Second)
	r.leaseClock.advance(2 * time.Second) // past the TTL since replica 1 saw the record
	if !r.peers[1].takeLease(t, r.svc[1]) {
		t.Fatal("replica 1 did not take the lapsed lease")
	}
	takeover := r.clock.now()
	got := lateAlertEvents(t, r.st)
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, e.kind)
	}
	if !slices.Equal(kinds, []string{"alert_raised", "alert_cleared"}) || got[0].alert.ID != got[1].alert.ID {
		t.Fatalf("after the takeover the store has %+v, want the alert raised and cleared once", got)
	}
	id := got[0].alert.ID
	for _, e := range got {
		if !e.alert.RecordedLate {
			t.Errorf("%s of %s not marked recorded_late", e.kind, id)
		}
		if aud := slices.Sorted(slices.Values(e.audience)); !slices.Equal(aud, []string{"coalition", "russia"}) {
			t.Errorf("%s of %s is for %v, want both parties", e.kind, id, aud)
		}
	}
	if !got[0].alert.Time.Equal(raisedAt) {
		t.Errorf("the late raise has the time %s, want the raise's %s", got[0].alert.Time, raisedAt)
	}
	if at := got[1].alert.Time; !at.After(raisedAt) || !at.Before(takeover) || got[1].alert.Reason != alert.ReasonResolved {
		t.Errorf("the late clear is %s at %s, want resolved between the raise %s and the takeover %s", got[1].alert.Reason, at, raisedAt, takeover)
	}
	for _, p := range []string{"coalition", "russia"} {
		var evs []store.Event
		err := r.st.View(context.Background(), func(tx store.Tx) error {
			var err error
			evs, err = store.EventsAfterFor(tx, p, 0, 1000)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if strings.HasPrefix(e.Kind, "alert_") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%s reads %d alert events, want the raise and the clear", p, n)
		}
	}
	var recorded []string
	err := r.st.View(context.Background(), func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 100000)
		for _, rec := range recs {
			d, derr := audit.Decode(rec)
			if derr != nil {
				return derr
			}
			if !strings.HasPrefix(d.Kind, "alert_") {
				continue
			}
			var a alert.Alert
			if err := json.Unmarshal(d.Content, &a); err != nil {
				return err
			}
			if a.ID == id && a.RecordedLate && slices.Equal(slices.Sorted(slices.Values(d.Readers)), []string{"coalition", "russia"}) {
				recorded = append(recorded, d.Kind)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recorded, []string{"alert_raised", "alert_cleared"}) {
		t.Errorf("audit records of the late alert for both parties: %v, want its raise and its clear", recorded)
	}
	if n := alertItems(t, r.st); n != 0 {
		t.Errorf("%d hotline items for an alert over when recorded, want none", n)
	}

	// Replica 1 stops in turn; replica 2, whose engine raised and cleared
	// the same alert, takes over: the store has it, nothing is recorded
	// twice.
	r.leaseClock.advance(time.Second)
	if r.peers[2].takeLease(t, r.svc[2]) {
		t.Fatal("replica 2 took the lease replica 1 holds")
	}
	r.leaseClock.advance(11 * time.Second)
	if !r.peers[2].takeLease(t, r.svc[2]) {
		t.Fatal("replica 2 did not take the lapsed lease")
	}
	if again := lateAlertEvents(t, r.st); len(again) != len(got) {
		t.Fatalf("after replica 2's takeover the store has %+v, want the late alert once", again)
	}
}

// TestAlertTheOldLeaderCommittedIsNotRecordedAgain: the leader raised and
// cleared the alert (committed) and then stopped; the follower's engine,
// which missed the first report of one aircraft, raised the same conflict
// a second later under another id. Its takeover records nothing: the
// store has the pair's alert over the same time.
func TestAlertTheOldLeaderCommittedIsNotRecordedAgain(t *testing.T) {
	r := newLateReplicas(t)
	if !r.peers[0].takeLease(t, r.svc[0]) {
		t.Fatal("replica 0 did not take the free lease")
	}
	if r.peers[1].takeLease(t, r.svc[1]) {
		t.Fatal("replica 1 took the lease replica 0 holds")
	}
	ctx := context.Background()
	c, ru := headOnPair(r.clock.now())
	// The leader has both first reports, the follower only the first of
	// the coalition aircraft.
	r.ingest(t, 0, nil, c, ru)
	if err := r.svc[1].IngestRelayed(ctx, r.peers[0].published[:1]); err != nil {
		t.Fatal(err)
	}
	r.peers[0].published = nil
	for _, step := range []time.Duration{time.Second, time.Second, 6 * time.Second, 6 * time.Second} {
		r.clock.advance(step)
		c.Time, ru.Time = r.clock.now(), r.clock.now()
		if step > time.Second {
			c.VelEastMps, ru.VelEastMps = -200, 200 // apart
		}
		r.ingest(t, 0, []int{1}, c, ru)
		r.svc[0].Tick(ctx)
		r.svc[1].Tick(ctx)
		r.leaseClock.advance(time.Second)
	}
	committed := lateAlertEvents(t, r.st)
	if len(committed) != 2 || committed[0].kind != "alert_raised" || committed[1].kind != "alert_cleared" {
		t.Fatalf("the leader committed %+v, want the alert raised and cleared", committed)
	}
	logged := r.svc[1].tac.unled.byID
	if len(logged) != 1 {
		t.Fatalf("the follower logged %d alerts, want the conflict", len(logged))
	}
	for id, u := range logged {
		if id == committed[0].alert.ID || !u.complete() {
			t.Fatalf("the follower's engine has the alert under the leader's id %s (complete %v): the test needs another", id, u.complete())
		}
	}
	// The leader stops; the follower takes over.
	r.leaseClock.advance(11 * time.Second)
	if !r.peers[1].takeLease(t, r.svc[1]) {
		t.Fatal("replica 1 did not take the lapsed lease")
	}
	if got := lateAlertEvents(t, r.st); len(got) != len(committed) {
		t.Fatalf("after the takeover the store has %+v, want only the leader's alert", got)
	}
}

// TestLateAlertQueuedThenRecordedByAnotherIsNotCommittedTwice: a replica
// took over with an alert over in its log, and the commit of its late
// record failed (the store went down); the lease went to another replica,
// whose engine named the same alert after a later report and recorded it
// late. When the first takes the lease back, the record it had queued is
// dropped: the store has the pair's alert over the same time.
func TestLateAlertQueuedThenRecordedByAnotherIsNotCommittedTwice(t *testing.T) {
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	st := &flakyStore{Store: raw}
	clock := &testClock{}
	var peers [2]*testPeers
	var svc [2]*Service
	for i := range svc {
		peers[i] = &testPeers{}
		svc[i] = newReplicaServiceAt(t, st, peers[i], clock)
	}
	// Nobody leads. Replica 0 has every report; replica 1 misses the
	// first of the russia aircraft, and raises the conflict a second
	// later, under another id.
	c, r := headOnPair(clock.now())
	for i, step := range []time.Duration{0, time.Second, time.Second, 6 * time.Second, 6 * time.Second} {
		clock.advance(step)
		c.Time, r.Time = clock.now(), clock.now()
		if step > time.Second {
			c.VelEastMps, r.VelEastMps = -200, 200 // apart
		}
		from := len(peers[0].published)
		if _, _, err := svc[0].IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc[0].IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
			t.Fatal(err)
		}
		relayed := peers[0].published[from:]
		if i == 0 {
			relayed = relayed[:1]
		}
		if err := svc[1].IngestRelayed(ctx, relayed); err != nil {
			t.Fatal(err)
		}
		svc[0].Tick(ctx)
		svc[1].Tick(ctx)
	}
	ids := [2]string{}
	for i := range svc {
		logged := completeUnled(svc[i])
		if len(logged) != 1 {
			t.Fatalf("replica %d logged %d alerts over, want the conflict", i, len(logged))
		}
		for id := range logged {
			ids[i] = id
		}
	}
	if ids[0] == ids[1] {
		t.Fatalf("both engines named the alert %s: the test needs two ids", ids[0])
	}
	// Replica 0 takes over; the store goes down before its commit.
	peers[0].leads.Store(true)
	peers[0].tenure.Add(1)
	st.down.Store(true)
	if err := svc[0].ReconcileDetection(ctx, readsStoredAlerts(raw)); err == nil {
		t.Fatal("the takeover committed with the store down")
	}
	st.down.Store(false)
	// Replica 1 takes the lease and records the alert late, as it named it.
	peers[0].leads.Store(false)
	peers[1].leads.Store(true)
	peers[1].tenure.Add(1)
	if err := svc[1].ReconcileDetection(ctx, readsStoredAlerts(st)); err != nil {
		t.Fatal(err)
	}
	want := []string{"alert_raised " + ids[1], "alert_cleared " + ids[1]}
	if got := alertEvents(t, st); !slices.Equal(got, want) {
		t.Fatalf("after replica 1's takeover the store has %v, want %v", got, want)
	}
	// Replica 0 takes the lease back.
	peers[1].leads.Store(false)
	peers[0].leads.Store(true)
	peers[0].tenure.Add(1)
	if err := svc[0].ReconcileDetection(ctx, readsStoredAlerts(st)); err != nil {
		t.Fatal(err)
	}
	// What it queued is committed now, as the next attempt after the
	// failure's backoff would.
	tac := svc[0].tac
	tac.commitMu.Lock()
	_, err = svc[0].commitQueuedLocked(ctx, nil)
	tac.commitMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got := alertEvents(t, st); !slices.Equal(got, want) {
		t.Fatalf("after replica 0 took the lease back the store has %v, want %v (the alert once)", got, want)
	}
}

// TestUnledLogIsBounded: a follower's log of what nobody commits keeps at
// most unledMax alerts, drops the oldest first and counts those dropped;
// an alert over is let go unledKept after its last transition, one still
// open is kept.
func TestUnledLogIsBounded(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &testClock{}
	s := newReplicaServiceAt(t, st, &testPeers{}, clock)
	alertOf := func(i int, state string) alert.Transition {
		return alert.Transition{ID: fmt.Sprintf("a%06d", i), Kind: alert.KindConflict, State: state, Time: clock.now(),
			Aircraft: []alert.Aircraft{{Party: "coalition", Aircraft: fmt.Sprint("C", i)}, {Party: "russia", Aircraft: "R1"}}}
	}
	tac := s.tac
	tac.mu.Lock()
	// One alert open, then unledMax alerts over.
	s.logUnled([]alert.Transition{alertOf(0, alert.StateRaised)})
	for i := 1; i <= unledMax; i++ {
		s.logUnled([]alert.Transition{alertOf(i, alert.StateRaised), alertOf(i, alert.StateCleared)})
	}
	n, first := len(tac.unled.byID), tac.unled.byID["a000000"]
	tac.mu.Unlock()
	if n != unledMax || first != nil {
		t.Fatalf("the log holds %d alerts (the oldest: %v), want %d, the oldest dropped", n, first, unledMax)
	}
	if got := counterValue(t, s.Metrics().UnledAlertsDropped); got != 1 {
		t.Fatalf("%v alerts counted dropped, want 1", got)
	}
	// Past unledKept, the alerts over are let go; one raised since, still
	// open, stays.
	clock.advance(unledKept + time.Second)
	tac.mu.Lock()
	s.logUnled([]alert.Transition{alertOf(unledMax+1, alert.StateRaised)})
	_, open := tac.unled.byID[alertOf(unledMax+1, "").ID]
	n = len(tac.unled.byID)
	tac.mu.Unlock()
	if n != 1 || !open {
		t.Fatalf("past unledKept the log holds %d alerts (the open one: %v), want only the open one", n, open)
	}
	clock.advance(unledKept + time.Second)
	tac.mu.Lock()
	s.logUnled([]alert.Transition{alertOf(unledMax+2, alert.StateRaised)})
	_, open = tac.unled.byID[alertOf(unledMax+1, "").ID]
	tac.mu.Unlock()
	if !open {
		t.Fatal("an alert still open was let go of with the time")
	}
	if got := counterValue(t, s.Metrics().UnledAlertsDropped); got != 1 {
		t.Fatalf("%v alerts counted dropped, want 1 (those over let go with the time are not)", got)
	}
}

// TestUnledLogBoundDropsTheOldestAfterAForget: an alert the log forgot
// (the store has its raise) and logged again (its clear, the store having
// it open) takes a new place at the end of the log's order; past unledMax
// the oldest alert is dropped, not that one at the place it had first.
func TestUnledLogBoundDropsTheOldestAfterAForget(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &testClock{}
	s := newReplicaServiceAt(t, st, &testPeers{}, clock)
	alertOf := func(i int, state string) alert.Transition {
		return alert.Transition{ID: fmt.Sprintf("a%06d", i), Kind: alert.KindConflict, State: state, Time: clock.now(),
			Aircraft: []alert.Aircraft{{Party: "coalition", Aircraft: fmt.Sprint("C", i)}, {Party: "russia", Aircraft: "R1"}}}
	}
	tac := s.tac
	tac.mu.Lock()
	defer tac.mu.Unlock()
	// Alert 0 raised, then alert 1 raised and cleared; the store's raise
	// of alert 0 is delivered, and its clear logged (the store has it
	// open).
	s.logUnled([]alert.Transition{alertOf(0, alert.StateRaised)})
	s.logUnled([]alert.Transition{alertOf(1, alert.StateRaised), alertOf(1, alert.StateCleared)})
	tac.unled.forgetStored([]deliveredAlert{{id: alertOf(0, "").ID}}, clock.now())
	s.logUnled([]alert.Transition{alertOf(0, alert.StateCleared)})
	// Then unledMax-1 alerts more: one past the bound.
	for i := 2; i <= unledMax; i++ {
		s.logUnled([]alert.Transition{alertOf(i, alert.StateRaised), alertOf(i, alert.StateCleared)})
	}
	_, zero := tac.unled.byID[alertOf(0, "").ID]
	_, one := tac.unled.byID[alertOf(1, "").ID]
	if n := len(tac.unled.byID); n != unledMax || !zero || one {
		t.Fatalf("the log holds %d alerts, alert 0's clear %v, alert 1 %v: want %d, alert 0's clear kept and alert 1, the oldest, dropped", n, zero, one, unledMax)
	}
}

// TestAlertRaisedWithoutALeaderAndOpenIsRaisedAtTheTakeover: an alert
// raised while nobody led and still open at the takeover is the
// reconcile's: raised once, as the engine published it (its raise's time
// when nothing changed since), not marked late, with its hotline item.
func TestAlertRaisedWithoutALeaderAndOpenIsRaisedAtTheTakeover(t *testing.T) {
	r := newLateReplicas(t)
	if !r.peers[0].takeLease(t, r.svc[0]) {
		t.Fatal("replica 0 did not take the free lease")
	}
	if r.peers[1].takeLease(t, r.svc[1]) {
		t.Fatal("replica 1 took the lease replica 0 holds")
	}
	// Replica 0 stops; replica 1's clients report the pair closing, and
	// again two seconds later, the prediction the same.
	r.leaseClock.advance(9 * time.Second)
	raisedAt := r.clock.now()
	c, ru := headOnPair(raisedAt)
	r.ingest(t, 1, nil, c, ru)
	r.clock.advance(2 * time.Second)
	c.Time, ru.Time = r.clock.now(), r.clock.now()
	c.LonDeg, ru.LonDeg = c.LonDeg+200*2/(111_320*0.8192), ru.LonDeg-200*2/(111_320*0.8192)
	r.ingest(t, 1, nil, c, ru)
	r.leaseClock.advance(2 * time.Second)
	if !r.peers[1].takeLease(t, r.svc[1]) {
		t.Fatal("replica 1 did not take the lapsed lease")
	}
	got := lateAlertEvents(t, r.st)
	if len(got) != 1 || got[0].kind != "alert_raised" || got[0].alert.RecordedLate {
		t.Fatalf("after the takeover the store has %+v, want the open alert raised, not marked late", got)
	}
	if !got[0].alert.Time.Equal(raisedAt) {
		t.Errorf("the alert is raised with the time %s, want its raise's %s", got[0].alert.Time, raisedAt)
	}
	if n := alertItems(t, r.st); n != 1 {
		t.Errorf("%d hotline items for the open alert, want 1", n)
	}
}

// TestLateAlertQueuedIsKeptWhenItsPairIsOpenAgain: a replica took over
// with an alert over in its log, and the commit of its late record failed
// (the store went down). Another replica took the lease, whose engine had
// not seen that alert but raised the same pair a minute later, a new
// conflict, and committed it. When the first takes the lease back, the
// record it had queued is committed: the store has the pair open now, but
// no alert of it over the time of the one recorded late (a later one is
// another alert, not the same under another id).
func TestLateAlertQueuedIsKeptWhenItsPairIsOpenAgain(t *testing.T) {
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	st := &flakyStore{Store: raw}
	clock := &testClock{}
	var peers [2]*testPeers
	var svc [2]*Service
	for i := range svc {
		peers[i] = &testPeers{}
		svc[i] = newReplicaServiceAt(t, st, peers[i], clock)
	}
	// Nobody leads. Replica 0 alone has the reports of the pair: it
	// raises and clears the conflict.
	c, r := headOnPair(clock.now())
	for _, step := range []time.Duration{0, time.Second, 6 * time.Second, 6 * time.Second} {
		clock.advance(step)
		c.Time, r.Time = clock.now(), clock.now()
		if step > time.Second {
			c.VelEastMps, r.VelEastMps = -200, 200 // apart
		}
		if _, _, err := svc[0].IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc[0].IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
			t.Fatal(err)
		}
		svc[0].Tick(ctx)
	}
	logged := completeUnled(svc[0])
	if len(logged) != 1 {
		t.Fatalf("replica 0 logged %d alerts over, want the conflict", len(logged))
	}
	var lateID string
	for id := range logged {
		lateID = id
	}
	// Replica 0 takes over; the store goes down before its commit.
	peers[0].leads.Store(true)
	peers[0].tenure.Add(1)
	st.down.Store(true)
	if err := svc[0].ReconcileDetection(ctx, readsStoredAlerts(raw)); err == nil {
		t.Fatal("the takeover committed with the store down")
	}
	st.down.Store(false)
	peers[0].leads.Store(false)
	// A minute later the same aircraft close in again: replica 1 has
	// the reports, takes the lease and raises the new conflict.
	clock.advance(time.Minute)
	c, r = headOnPair(clock.now())
	if _, _, err := svc[1].IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc[1].IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
		t.Fatal(err)
	}
	peers[1].leads.Store(true)
	peers[1].tenure.Add(1)
	if err := svc[1].ReconcileDetection(ctx, readsStoredAlerts(st)); err != nil {
		t.Fatal(err)
	}
	got := alertEvents(t, st)
	if len(got) != 1 || !strings.HasPrefix(got[0], "alert_raised ") || strings.HasSuffix(got[0], " "+lateID) {
		t.Fatalf("after replica 1's takeover the store has %v, want the new conflict raised", got)
	}
	// Replica 0 takes the lease back.
	peers[1].leads.Store(false)
	peers[0].leads.Store(true)
	peers[0].tenure.Add(1)
	if err := svc[0].ReconcileDetection(ctx, readsStoredAlerts(st)); err != nil {
		t.Fatal(err)
	}
	tac := svc[0].tac
	tac.commitMu.Lock()
	_, err = svc[0].commitQueuedLocked(ctx, nil)
	tac.commitMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	got = alertEvents(t, st)
	if !slices.Contains(got, "alert_raised "+lateID) || !slices.Contains(got, "alert_cleared "+lateID) {
		t.Fatalf("after replica 0 took the lease back the store has %v: the alert %s over before the new conflict, which it had queued late, is lost", got, lateID)
	}
}

// TestSameAlertIsOpenTogetherLongEnough: a logged alert is taken for a
// stored alert of its pair under another id only when they were open
// together for at least sameAlertOverlap; a second conflict of the pair
// raised, or one cleared, a moment from the stored alert is another one.
func TestSameAlertIsOpenTogetherLongEnough(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newReplicaServiceAt(t, st, &testPeers{}, &testClock{})
	at := func(s float64) time.Time { return time.Unix(1_000_000, 0).Add(time.Duration(s * float64(time.Second))) }
	const pair = "conflict coalition/C1 russia/R1"
	// The old leader's alert of the pair: raised at 10 s, cleared at 20 s.
	stored := StoredAlerts{Spans: map[string]AlertSpan{
		"stored":  {Pair: pair, From: at(10), To: at(20)},
		"other":   {Pair: "conflict coalition/C2 russia/R1", From: at(0), To: at(100)},
		"unknown": {Pair: "conflict coalition/C3 russia/R1", To: at(50)}, // its raise before the store's events
	}}
	traced := s.tracedIn(stored)
	for _, c := range []struct {
		name     string
		id, pair string
		from, to float64
		want     bool
	}{
		{"the same id", "stored", pair, 40, 50, true},
		{"the same alert, raised a report later", "a", pair, 11, 21, true},
		{"the same alert, raised earlier and cleared before it", "a", pair, 9, 16, true},
		{"the same alert, two alerts of the other engine as one", "a", pair, 5, 30, true},
		{"a second conflict raised 2 s after its clear", "a", pair, 22, 30, false},
		{"a second conflict raised as it cleared", "a", pair, 20, 30, false},
		{"a second conflict raised by a report 1 s late", "a", pair, 19, 30, false},
		{"a conflict cleared 2 s before its raise", "a", pair, 1, 8, false},
		{"a conflict of another pair", "a", "conflict coalition/C9 russia/R1", 11, 21, false},
		{"a conflict of a pair whose raise the store has not", "a", "conflict coalition/C3 russia/R1", 40, 48, true},
		{"a conflict after one whose raise the store has not", "a", "conflict coalition/C3 russia/R1", 52, 60, false},
	} {
		if got := traced(c.id, c.pair, at(c.from), at(c.to)); got != c.want {
			t.Errorf("%s (%s from %v s to %v s): traced %v, want %v", c.name, c.pair, c.from, c.to, got, c.want)
		}
	}
}

// TestSecondConflictFromALaggingFeedIsRecordedLate: the leader raised and
// cleared a conflict, and died; right after its clear the follower's
// engine raised the pair's second conflict from a report whose feed lags
// 3 s (its time 2.5 s before the stored clear), and cleared it. Compared
// on the service's clock, as the clears are (when the engine raised it,
// not the report's time), it was never open with the stored alert: another
// alert, recorded late. The same alert raised by the follower's engine a
// second after the leader's is still taken for it.
func TestSecondConflictFromALaggingFeedIsRecordedLate(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &testClock{}
	s := newReplicaServiceAt(t, st, &testPeers{}, clock)
	base := clock.now()
	at := func(sec float64) time.Time { return base.Add(time.Duration(sec * float64(time.Second))) }
	tr := func(id, state string, sec float64) alert.Transition {
		return alert.Transition{ID: id, Kind: alert.KindConflict, State: state, Time: at(sec),
			Aircraft: []alert.Aircraft{{Party: "coalition", Aircraft: "C1"}, {Party: "russia", Aircraft: "R1"}}}
	}
	pair := pairOf(new(tr("", "", 0)))
	// The old leader's alert: raised at 10 s, cleared at 20 s.
	stored := StoredAlerts{Spans: map[string]AlertSpan{"stored": {Pair: pair, From: at(10), To: at(20)}}}
	for _, c := range []struct {
		name             string
		reportS, raisedS float64 // the raise's report time, and when the engine raised it
		clearedS         float64
		recorded         bool
	}{
		{"a second conflict from a report 3 s late", 17.5, 20.5, 30, true},
		{"the same alert, raised from a report a second later", 11, 11.2, 24, false},
	} {
		s.tac.mu.Lock()
		s.tac.unled.add([]alert.Transition{tr("logged", alert.StateRaised, c.reportS)}, at(c.raisedS), false)
		s.tac.unled.add([]alert.Transition{tr("logged", alert.StateCleared, c.clearedS)}, at(c.clearedS), false)
		out := s.recordLate(stored, func(string) bool { return false }, time.Time{})
		s.tac.mu.Unlock()
		if got := len(out) > 0; got != c.recorded {
			t.Errorf("%s: recorded late %v (%d transitions), want %v", c.name, got, len(out), c.recorded)
		}
	}
}

// TestSecondConflictRightAfterTheLeadersIsRecordedLate: the leader raised
// and cleared a conflict, and stopped; a second later the same aircraft
// closed in again, and the follower's engine raised and cleared that
// second conflict while nobody led. Its takeover records it late: it began
// after the stored alert of the pair ended, another alert.
func TestSecondConflictRightAfterTheLeadersIsRecordedLate(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &testClock{}
	var peers [2]*testPeers
	var svc [2]*Service
	for i := range svc {
		peers[i] = &testPeers{}
		svc[i] = newReplicaServiceAt(t, st, peers[i], clock)
	}
	peers[0].leads.Store(true)
	peers[0].tenure.Add(1)
	if err := svc[0].ReconcileDetection(ctx, readsStoredAlerts(st)); err != nil {
		t.Fatal(err)
	}
	// conflict has the pair close in at replica at (relayed to the
	// other replicas of to), turn away a second later, and waits out the
	// hysteresis of the clear.
	conflict := func(at int, to []int) {
		c, r := headOnPair(clock.now())
		for _, step := range []time.Duration{0, time.Second, 6 * time.Second} {
			clock.advance(step)
			c.Time, r.Time = clock.now(), clock.now()
			if step > 0 {
				c.VelEastMps, r.VelEastMps = -200, 200 // apart
			}
			p := peers[at]
			p.mu.Lock()
			from := len(p.published)
			p.mu.Unlock()
			if _, _, err := svc[at].IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := svc[at].IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			relayed := slices.Clone(p.published[from:])
			p.mu.Unlock()
			for _, j := range to {
				if err := svc[j].IngestRelayed(ctx, relayed); err != nil {
					t.Fatal(err)
				}
			}
			for _, j := range append([]int{at}, to...) {
				svc[j].Tick(ctx)
			}
		}
	}
	conflict(0, []int{1})
	first := alertEvents(t, st)
	if len(first) != 2 || !strings.HasPrefix(first[0], "alert_raised ") || !strings.HasPrefix(first[1], "alert_cleared ") {
		t.Fatalf("the leader committed %v, want the conflict raised and cleared", first)
	}
	// The leader stops. A second after the clear the aircraft close in
	// again, reporting to replica 1.
	peers[0].leads.Store(false)
	firstCleared := clock.now()
	clock.advance(time.Second)
	conflict(1, nil)
	// Replica 1 logged it (and the first, under the leader's id, unless
	// it forgot it on seeing it committed).
	second := completeUnled(svc[1])
	var id string
	for logged := range second {
		if !strings.HasSuffix(first[0], " "+logged) {
			id = logged
		}
	}
	if id == "" {
		t.Fatalf("replica 1 logged %d alerts over, none the second conflict", len(second))
	}
	peers[1].leads.Store(true)
	peers[1].tenure.Add(1)
	if err := svc[1].ReconcileDetection(ctx, readsStoredAlerts(st)); err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(first), "alert_raised "+id, "alert_cleared "+id)
	if got := alertEvents(t, st); !slices.Equal(got, want) {
		t.Fatalf("after the takeover the store has %v, want %v: the second conflict, raised %s after the first cleared, is lost",
			got, want, second[id].raise.Time.Sub(firstCleared))
	}
}

// TestFollowerForgetsTheAlertsTheLeaderCommitted: a follower's log of
// what nobody committed lets go of an alert once it has delivered the
// leader's events of it, and logs none of its later transitions: they
// would crowd out, in its bounds, the alerts that matter.
func TestFollowerForgetsTheAlertsTheLeaderCommitted(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &testClock{}
	var peers [2]*testPeers
	var svc [2]*Service
	for i := range svc {
		peers[i] = &testPeers{}
		svc[i] = newReplicaServiceAt(t, st, peers[i], clock)
	}
	peers[0].leads.Store(true)
	if err := svc[0].ReconcileDetection(ctx, readsStoredAlerts(st)); err != nil {
		t.Fatal(err)
	}
	// The leader raises the conflict and commits it; the follower
	// delivers its events, then gets the reports by the relay (late).
	c, r := headOnPair(clock.now())
	for _, step := range []time.Duration{0, time.Second, 6 * time.Second} {
		clock.advance(step)
		c.Time, r.Time = clock.now(), clock.now()
		if step > 0 {
			c.VelEastMps, r.VelEastMps = -200, 200 // apart
		}
		from := len(peers[0].published)
		if _, _, err := svc[0].IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc[0].IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
			t.Fatal(err)
		}
		svc[0].Tick(ctx)
		if err := svc[1].CatchUpEvents(ctx); err != nil {
			t.Fatal(err)
		}
		if err := svc[1].IngestRelayed(ctx, peers[0].published[from:]); err != nil {
			t.Fatal(err)
		}
		svc[1].Tick(ctx)
	}
	if got := alertEvents(t, st); len(got) != 2 {
		t.Fatalf("the leader committed %v, want the conflict raised and cleared", got)
	}
	if n := len(svc[1].tac.eng.Load().Alerts()); n != 0 {
		t.Fatalf("the follower's engine has %d alerts, want the conflict cleared", n)
	}
	tac := svc[1].tac
	tac.mu.Lock()
	logged := maps.Clone(tac.unled.byID)
	tac.mu.Unlock()
	if len(logged) != 0 {
		t.Fatalf("the follower's log holds %d alerts after the leader committed them, want none", len(logged))
	}
}

// TestUnledLogBytes: a log of alerts of two aircraft with their
// separation, each with every change of level it keeps, holds no more
// than unledBytesMax (and what it counts, unledAlert.bytes, is what the
// heap says it holds); the alerts dropped for it are counted and logged.
func TestUnledLogBytes(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs, logger := newLogBuffer()
	clock := &testClock{}
	s, err := New(context.Background(), Config{Store: st, Peers: &testPeers{}, Now: clock.now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	// The separation of the rules, which every transition points into.
	classes, detector := []string{rules.ClassManned, rules.ClassManned}, rules.Cylinder(9260, 300)
	// As the engine makes them (alert.conflictAlert): the aircraft and
	// the separation of each transition its own, the id of each alert.
	levels := []string{"advisory", "caution", "warning"}
	transition := func(id, state string, level int) alert.Transition {
		return alert.Transition{ID: id, Kind: alert.KindConflict, State: state, Level: levels[level%len(levels)], Time: clock.now(),
			TInS: 40, TOutS: 80, TCPAS: 60, DHCPAM: 500, DVCPAM: 100,
			Aircraft: []alert.Aircraft{
				{Party: "coalition", Aircraft: "C1", Callsign: "AFR1234", Class: "manned", LatDeg: 35, LonDeg: 36, AltM: 6000, VelEastMps: 200},
				{Party: "russia", Aircraft: "R1", Callsign: "AFL5678", Class: "manned", LatDeg: 35, LonDeg: 36.2, AltM: 6000, VelEastMps: -200},
			},
			Separation: &alert.Separation{Classes: classes, Detector: detector, LookaheadS: 300},
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tac := s.tac
	tac.mu.Lock()
	for i := range unledMax {
		id := fmt.Sprintf("%024x", i)
		trs := []alert.Transition{transition(id, alert.StateRaised, 0)}
		for j := range unledLevelsKept {
			trs = append(trs, transition(id, alert.StateUpdated, j+1))
		}
		s.logUnled(append(trs, transition(id, alert.StateCleared, unledLevelsKept)))
	}
	kept, keptBytes := len(tac.unled.byID), tac.unled.bytes
	tac.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int(after.HeapAlloc) - int(before.HeapAlloc)
	t.Logf("%d alerts kept, %d bytes counted, %d bytes held (%d an alert)", kept, keptBytes, held, held/max(kept, 1))
	if held > unledBytesMax*5/4 {
		t.Errorf("the log holds %d MB, want at most about %d MB", held>>20, unledBytesMax>>20)
	}
	if keptBytes < held*4/5 || keptBytes > held*5/4 {
		t.Errorf("the log counts %d bytes, the heap says it holds %d", keptBytes, held)
	}
	dropped := counterValue(t, s.Metrics().UnledAlertsDropped)
	if dropped == 0 || int(dropped) != unledMax-kept {
		t.Errorf("%v alerts counted dropped, want the %d not kept", dropped, unledMax-kept)
	}
	logs.mu.Lock()
	logged := logs.buf.String()
	logs.mu.Unlock()
	if !strings.Contains(logged, "log of the alerts its engine raised while it did not lead is full") {
		t.Errorf("the drop was not logged: %s", logged)
	}
	runtime.KeepAlive(s)
}
