package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/track"
)

// testPeers records what the service relays and says whether it leads.
type testPeers struct {
	leads     atomic.Bool
	tenure    atomic.Int64
	holder    string // the name FenceDetection looks for ("": no check)
	mu        sync.Mutex
	published []track.Report
	// otherLed, when set, answers OtherLeaderRenewedWithin: the other
	// replica's last renewal seen, how long ago at most.
	otherLed func() (time.Duration, bool)
}

// OtherLeaderRenewedWithin is otherLed's answer; none (every logged alert
// taken as of a gap) unless the test set it.
func (p *testPeers) OtherLeaderRenewedWithin() (time.Duration, bool) {
	if p.otherLed == nil {
		return 0, false
	}
	return p.otherLed()
}

func (p *testPeers) PublishPositions(r []track.Report) {
	p.mu.Lock()
	p.published = append(p.published, r...)
	p.mu.Unlock()
}

func (p *testPeers) LeadsDetection() bool { return p.leads.Load() }

// DetectionTenure is 0 unless the test counts tenures (tenure).
func (p *testPeers) DetectionTenure() int64 { return p.tenure.Load() }

// FenceDetection checks, when the test set holder, that the meta key
// "lease" names it (as the lease record names its holder); otherwise it
// checks nothing.
func (p *testPeers) FenceDetection() func(store.Meta) error {
	if !p.leads.Load() {
		return nil
	}
	return func(tx store.Meta) error {
		if p.holder == "" {
			return nil
		}
		b, err := tx.GetMeta("lease")
		if err != nil {
			return err
		}
		if string(b) != p.holder {
			return fmt.Errorf("%w: the lease is held by %s", ErrNotLeading, b)
		}
		return nil
	}
}

// takeLease makes holder the holder of the test's lease in st.
func takeLease(t *testing.T, st store.Store, holder string) {
	t.Helper()
	err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutMeta("lease", []byte(holder)) })
	if err != nil {
		t.Fatal(err)
	}
}

func newReplicaService(t *testing.T, st store.Store, peers Peers) *Service {
	t.Helper()
	s, err := New(context.Background(), Config{Store: st, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// headOnPair is a coalition and a russia aircraft 20 km apart, closing.
func headOnPair(now time.Time) (c, r PositionReport) {
	c = PositionReport{Aircraft: "C1", Time: now, LatDeg: 35, LonDeg: 36, AltM: 6000, VelEastMps: 200}
	r = PositionReport{Aircraft: "R1", Time: now, LatDeg: 35, LonDeg: 36.2, AltM: 6000, VelEastMps: -200}
	return c, r
}

// alertEvents lists the alert transitions of the store as kind/id pairs:
// the events of one transition (one per party when it carries a
// resolution) count once.
func alertEvents(t *testing.T, st store.Store) []string {
	t.Helper()
	var out []string
	err := st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100000)
		for _, e := range evs {
			var a struct{ ID string }
			if len(e.Kind) > 6 && e.Kind[:6] == "alert_" && json.Unmarshal(e.Body, &a) == nil {
				if n := len(out); n > 0 && out[n-1] == e.Kind+" "+a.ID {
					continue
				}
				out = append(out, e.Kind+" "+a.ID)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// alertItems counts the hotline items posted for alerts.
func alertItems(t *testing.T, st store.Store) int {
	t.Helper()
	var n int
	err := st.View(context.Background(), func(tx store.Tx) error {
		ms, err := tx.MessagesFor("coalition", "", time.Time{}, 1000)
		for _, m := range ms {
			if m.Kind == "alert" {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// openInStore is the open and the cleared alerts of the store, with
// their spans, from a scan of its events (scanStoredAlerts).
func openInStore(st store.Store) func(context.Context) (StoredAlerts, error) {
	return func(ctx context.Context) (StoredAlerts, error) {
		scanned, _, err := scanStoredAlerts(ctx, st)
		return scanned, err
	}
}

// TestFollowerKeepsThePictureAndTheLeaderWritesIt: a replica that does
// not lead detection relays its reports and tracks the conflict but writes
// no alert; when it takes the lead it writes the alert once; a replica
// that takes the lead without the tracks clears what the store still has
// open.
func TestFollowerKeepsThePictureAndTheLeaderWritesIt(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	peers := &testPeers{}
	s := newReplicaService(t, st, peers)
	now := time.Now().UTC()
	c, r := headOnPair(now)
	if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	// The other aircraft arrives through the relay, as from another replica.
	relayed := track.Report{Party: "russia", Aircraft: r.Aircraft, Time: r.Time, VelEastMps: r.VelEastMps}
	relayed.Pos.LatDeg, relayed.Pos.LonDeg, relayed.Pos.AltM = r.LatDeg, r.LonDeg, r.AltM
	if err := s.IngestRelayed(ctx, []track.Report{relayed}); err != nil {
		t.Fatal(err)
	}
	if len(peers.published) != 1 || peers.published[0].Aircraft != "C1" || peers.published[0].Party != "coalition" {
		t.Fatalf("relayed to the peers: %+v, want the coalition report only (not the relayed one)", peers.published)
	}
	open := s.tac.eng.Load().Alerts()
	if len(open) != 1 {
		t.Fatalf("the follower's engine has %d alerts, want the conflict", len(open))
	}
	if got := alertEvents(t, st); len(got) != 0 {
		t.Fatalf("a follower wrote alert events: %v", got)
	}

	peers.leads.Store(true)
	for range 2 { // the second finds nothing to do
		if err := s.ReconcileDetection(ctx, openInStore(st)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"alert_raised " + open[0].ID}
	if got := alertEvents(t, st); !slices.Equal(got, want) {
		t.Fatalf("after the takeover the store has %v, want %v", got, want)
	}
	if n := alertItems(t, st); n != 1 {
		t.Fatalf("%d hotline items for the alert, want 1", n)
	}

	// A replica that follows, with the same picture, takes over in turn:
	// the alert is in the store, nothing is raised or posted again, not
	// even when the engine updates it later.
	peers2 := &testPeers{}
	third := newReplicaService(t, st, peers2)
	if _, _, err := third.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if err := third.IngestRelayed(ctx, []track.Report{relayed}); err != nil {
		t.Fatal(err)
	}
	peers2.leads.Store(true)
	if err := third.ReconcileDetection(ctx, openInStore(st)); err != nil {
		t.Fatal(err)
	}
	c.Time, relayed.Time = c.Time.Add(time.Second), relayed.Time.Add(time.Second)
	// Farther apart: the alert goes down to advisory (an update, which
	// posts nothing when the hotline already has the alert).
	c.LonDeg, relayed.Pos.LonDeg = 35.65, 36.55
	if _, _, err := third.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if err := third.IngestRelayed(ctx, []track.Report{relayed}); err != nil {
		t.Fatal(err)
	}
	got := alertEvents(t, st)
	if len(got) < 2 || got[0] != want[0] {
		t.Fatalf("after the second takeover and the move the store has %v, want the raise and updates", got)
	}
	for _, e := range got[1:] {
		if e != "alert_updated "+open[0].ID {
			t.Fatalf("after the second takeover and the move the store has %v, want only updates after the raise", got)
		}
	}
	if n := alertItems(t, st); n != 1 {
		t.Fatalf("%d hotline items for the alert after a takeover, want 1", n)
	}
	peers2.leads.Store(false)
	want = alertEvents(t, st)

	// A leader without the tracks (say, a replica just started) clears
	// it once the alert's reports would be stale: they may still be on
	// their way to it (TestTakeoverHoldsAnAlertWhoseReportsAreOnTheirWay).
	leader := &testPeers{}
	leader.leads.Store(true)
	clock := &testClock{}
	other := newReplicaServiceAt(t, st, leader, clock)
	if err := other.ReconcileDetection(ctx, openInStore(st)); err != nil {
		t.Fatal(err)
	}
	other.Tick(ctx)
	if got := alertEvents(t, st); !slices.Equal(got, want) {
		t.Fatalf("right after the third takeover the store has %v, want %v", got, want)
	}
	clock.advance(other.Rules().StaleAfter() + 2*time.Second)
	other.Tick(ctx)
	want = append(want, "alert_cleared "+open[0].ID)
	if got := alertEvents(t, st); !slices.Equal(got, want) {
		t.Fatalf("after the third takeover and the stale limit the store has %v, want %v", got, want)
	}
}

// TestTakeoverHoldsAnAlertWhoseReportsAreOnTheirWay: the old leader
// raised an alert from a report the relay has not yet brought to the
// replica that takes over (the relay does not wait for the store). The
// new leader neither clears the alert nor raises it again when the report
// arrives: the store keeps one raise. If the engine's picture catches up
// without the conflict, or the report never comes, the alert is cleared
// (stale) then, once.
func TestTakeoverHoldsAnAlertWhoseReportsAreOnTheirWay(t *testing.T) {
	for _, tc := range []struct {
		name string
		// after runs once the new leader has reconciled, with the
		// survivor's clock, the relayed reports of the two aircraft and
		// the store's alert id; it returns the events the store must
		// then have after the raise.
		after func(t *testing.T, s *Service, clock *testClock, c, r track.Report, id string) []string
	}{
		{"the report arrives", func(t *testing.T, s *Service, _ *testClock, _, r track.Report, id string) []string {
			if err := s.IngestRelayed(context.Background(), []track.Report{r}); err != nil {
				t.Fatal(err)
			}
			s.Tick(context.Background())
			if open := s.Alerts(party.Principal{Operator: true}); len(open) != 1 || open[0].ID != id {
				t.Fatalf("the new leader's engine has %+v, want alert %s", open, id)
			}
			return nil
		}},
		{"it never arrives", func(t *testing.T, s *Service, clock *testClock, _, _ track.Report, id string) []string {
			clock.advance(s.Rules().StaleAfter() - time.Second)
			s.Tick(context.Background())
			if got := alertEvents(t, s.st); len(got) != 1 {
				t.Fatalf("before the stale limit the store has %v, want the raise only", got)
			}
			clock.advance(2 * time.Second)
			s.Tick(context.Background())
			return []string{"alert_cleared " + id}
		}},
		{"the picture catches up without the conflict", func(t *testing.T, s *Service, clock *testClock, c, r track.Report, id string) []string {
			// Both turned away, reported a second after the raise.
			clock.advance(time.Second)
			c.Time, r.Time = c.Time.Add(time.Second), r.Time.Add(time.Second)
			c.VelEastMps, r.VelEastMps = -200, 200
			if err := s.IngestRelayed(context.Background(), []track.Report{c, r}); err != nil {
				t.Fatal(err)
			}
			s.Tick(context.Background())
			return []string{"alert_cleared " + id}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			oldPeers := &testPeers{}
			oldPeers.leads.Store(true)
			old := newReplicaService(t, st, oldPeers)
			clock := &testClock{}
			survivorPeers := &testPeers{}
			survivor := newReplicaServiceAt(t, st, survivorPeers, clock)
			c, r := headOnPair(clock.now())
			if _, _, err := old.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := old.IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
				t.Fatal(err)
			}
			raised := alertEvents(t, st)
			if len(raised) != 1 {
				t.Fatalf("the old leader wrote %v, want one raise", raised)
			}
			id := strings.TrimPrefix(raised[0], "alert_raised ")
			if len(oldPeers.published) != 2 {
				t.Fatalf("the old leader relayed %d reports, want 2", len(oldPeers.published))
			}
			relayedC, relayedR := oldPeers.published[0], oldPeers.published[1]
			// The old leader dies; only its first report reached the
			// survivor, which takes over.
			if err := survivor.IngestRelayed(ctx, []track.Report{relayedC}); err != nil {
				t.Fatal(err)
			}
			oldPeers.leads.Store(false)
			survivorPeers.leads.Store(true)
			if err := survivor.ReconcileDetection(ctx, openInStore(st)); err != nil {
				t.Fatal(err)
			}
			survivor.Tick(ctx)
			if got := alertEvents(t, st); !slices.Equal(got, raised) {
				t.Fatalf("right after the takeover the store has %v, want %v", got, raised)
			}
			want := append(raised, tc.after(t, survivor, clock, relayedC, relayedR, id)...)
			// Later ticks change nothing more.
			clock.advance(survivor.Rules().StaleAfter() / 2)
			survivor.Tick(ctx)
			if got := alertEvents(t, st); !slices.Equal(got, want) {
				t.Fatalf("the store has %v, want %v", got, want)
			}
			if n := alertItems(t, st); n != 1 {
				t.Fatalf("%d hotline items for the alert, want 1", n)
			}
		})
	}
}

// testClock is a service's clock: the time it started plus what the test
// advanced it by.
type testClock struct {
	start  time.Time
	offset atomic.Int64 // nanoseconds
	once   sync.Once
}

func (c *testClock) now() time.Time {
	c.once.Do(func() { c.start = time.Now().UTC() })
	return c.start.Add(time.Duration(c.offset.Load()))
}

func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func newReplicaServiceAt(t *testing.T, st store.Store, peers Peers, clock *testClock) *Service {
	t.Helper()
	s, err := New(context.Background(), Config{Store: st, Peers: peers, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestZombieLeaderWritesNothingAfterATakeover: a leader that looked at
// its lease, was then paused past it (SIGSTOP) while another replica took
// over and raised the alert, and resumes believing it leads, commits
// nothing: the alert is raised and posted to the hotline once, by the new
// leader. The zombie's commit returns (its transitions are the new
// leader's), and it commits again once it leads again.
func TestZombieLeaderWritesNothingAfterATakeover(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	zombiePeers := &testPeers{holder: "a"}
	zombiePeers.leads.Store(true)
	zombie := newReplicaService(t, st, zombiePeers)
	leaderPeers := &testPeers{holder: "b"}
	leader := newReplicaService(t, st, leaderPeers)
	c, r := headOnPair(time.Now().UTC())
	if _, _, err := leader.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := leader.IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
		t.Fatal(err)
	}
	takeLease(t, st, "b")
	leaderPeers.leads.Store(true)
	if err := leader.ReconcileDetection(ctx, openInStore(st)); err != nil {
		t.Fatal(err)
	}
	open := leader.Alerts(party.Principal{Operator: true})
	if len(open) != 1 {
		t.Fatalf("the new leader has %d alerts, want the conflict", len(open))
	}
	want := []string{"alert_raised " + open[0].ID}
	if got := alertEvents(t, st); !slices.Equal(got, want) {
		t.Fatalf("after the takeover the store has %v, want %v", got, want)
	}

	// The zombie resumes: it still counts itself the leader and commits
	// the transitions of the same conflict.
	if _, _, err := zombie.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := zombie.IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
		t.Fatal(err)
	}
	if got := alertEvents(t, st); !slices.Equal(got, want) {
		t.Fatalf("after the zombie leader resumed the store has %v, want %v (raised once)", got, want)
	}
	if n := alertItems(t, st); n != 1 {
		t.Fatalf("%d hotline items for the alert, want 1", n)
	}
	if n := zombie.tac.queuedTransitions(); n != 0 {
		t.Fatalf("the zombie keeps %d transitions queued, want them left to the leader", n)
	}
}

// TestTakeoverCommitsALevelChangedWithoutALeader: an alert the old
// leader raised went up a level while no replica led (the old leader
// dead, its lease not yet lapsed): the new leader commits the update and
// posts the new level to the hotline, instead of leaving the store (and
// every party's picture) at the old level until the alert changes again.
func TestTakeoverCommitsALevelChangedWithoutALeader(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	oldPeers := &testPeers{}
	oldPeers.leads.Store(true)
	old := newReplicaService(t, st, oldPeers)
	next := newReplicaService(t, st, &testPeers{})
	nextPeers := next.cfg.Peers.(*testPeers)
	now := time.Now().UTC()
	c, r := headOnPair(now)
	// Far apart first: a low level.
	c.LonDeg, r.LonDeg = 35.65, 36.55
	ingest := func(s *Service, c, r PositionReport) {
		t.Helper()
		if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
			t.Fatal(err)
		}
	}
	ingest(old, c, r)
	ingest(next, c, r)
	raised := old.Alerts(party.Principal{Operator: true})
	if len(raised) != 1 || len(alertEvents(t, st)) != 1 {
		t.Fatalf("the old leader has %d alerts and the store %v, want the conflict raised", len(raised), alertEvents(t, st))
	}
	// The old leader dies; the next reports, closer, reach the follower.
	oldPeers.leads.Store(false)
	c, r = headOnPair(now.Add(time.Second))
	ingest(next, c, r)
	higher := next.tac.eng.Load().Alerts()
	if len(higher) != 1 || higher[0].Level == raised[0].Level {
		t.Fatalf("the follower's alerts %+v, want the conflict at a level above %s", higher, raised[0].Level)
	}
	nextPeers.leads.Store(true)
	if err := next.ReconcileDetection(ctx, openInStore(st)); err != nil {
		t.Fatal(err)
	}
	open, err := openInStore(st)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stored struct{ Level string }
	if err := json.Unmarshal(open.Open[higher[0].ID], &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Level != higher[0].Level {
		t.Fatalf("after the takeover the store has the alert at %q (events %v), want %q", stored.Level, alertEvents(t, st), higher[0].Level)
	}
	if n := alertItems(t, st); n != 2 {
		t.Fatalf("%d hotline items for the alert, want 2 (the raise, the level up)", n)
	}
}

// TestEmbeddedStoreNeedsNoLease: without Peers the service writes its
// transitions itself.
func TestEmbeddedStoreNeedsNoLease(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newReplicaService(t, st, nil)
	c, r := headOnPair(time.Now().UTC())
	if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r}); err != nil {
		t.Fatal(err)
	}
	got := alertEvents(t, st)
	if len(got) != 1 || got[0][:12] != "alert_raised" {
		t.Fatalf("alert events %v, want one raise", got)
	}
}

// TestLiveStreamNeverSkipsAnotherReplicasEvent: when a replica commits an
// event whose id follows one committed by another replica that it has not
// published yet, its live streams get the other's event first.
func TestLiveStreamNeverSkipsAnotherReplicasEvent(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := newReplicaService(t, st, &testPeers{})
	b := newReplicaService(t, st, &testPeers{})
	op := party.Principal{Party: party.OperatorName, Operator: true}
	sub := b.Subscribe(op)
	defer sub.Close()
	if _, err := a.ProposeRules(ctx, op, a.Rules()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ProposeRules(ctx, op, a.Rules()); err != nil {
		t.Fatal(err)
	}
	var last int64
	err = st.View(ctx, func(tx store.Tx) error {
		last, err = tx.LastEventID()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := sub.Take(nil)
	for want := sub.Start() + 1; want <= last; want++ {
		if len(got) == 0 {
			t.Fatalf("the live stream of b lacks event %d of %d", want, last)
		}
		if got[0].ID != want {
			t.Fatalf("the live stream of b got event %d, want %d (the one a committed first)", got[0].ID, want)
		}
		got = got[1:]
	}
}

// TestRulesChangedThroughAnotherReplica: a replica adopts the rules another
// replica committed at its second look, and the replica that made the
// change does not apply it again.
func TestRulesChangedThroughAnotherReplica(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := newReplicaService(t, st, &testPeers{})
	b := newReplicaService(t, st, &testPeers{})
	op := party.Principal{Party: party.OperatorName, Operator: true}
	r := a.Rules()
	r.HorizontalSepM *= 2
	changed, err := a.ProposeRules(ctx, op, r)
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.SyncFromStore(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v != changed.Version || b.Rules().Version == v {
		t.Fatalf("first look: store version %d (want %d), b at %d (want it unchanged)", v, changed.Version, b.Rules().Version)
	}
	if _, err := b.SyncFromStore(ctx, v); err != nil {
		t.Fatal(err)
	}
	if got := b.Rules(); got.Version != changed.Version || got.HorizontalSepM != changed.Rules.HorizontalSepM {
		t.Fatalf("second look: b has version %d with %v m, want %d with %v m", got.Version, got.HorizontalSepM, changed.Version, changed.Rules.HorizontalSepM)
	}
	before := a.rules.Load()
	if _, err := a.SyncFromStore(ctx, v); err != nil {
		t.Fatal(err)
	}
	if a.rules.Load() != before {
		t.Fatal("the replica that changed the rules applied them again")
	}
}

// reportOf is the track report a replica relays for a position report of
// party's.
func reportOf(party string, p PositionReport) track.Report {
	r := track.Report{Party: party, Aircraft: p.Aircraft, Time: p.Time, VelEastMps: p.VelEastMps}
	r.Pos.LatDeg, r.Pos.LonDeg, r.Pos.AltM = p.LatDeg, p.LonDeg, p.AltM
	return r
}

// replicaPair is two replicas of one service on one SQLite store and one
// clock, as two processes on a shared database; the first leads.
type replicaPair struct {
	st    store.Store
	clock *testClock
	peers [2]*testPeers
	svc   [2]*Service
}

func newReplicaPair(t *testing.T) *replicaPair {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := &replicaPair{st: st, clock: &testClock{}}
	for i := range p.svc {
		p.peers[i] = &testPeers{}
		p.svc[i] = newReplicaServiceAt(t, st, p.peers[i], p.clock)
	}
	p.peers[0].leads.Store(true)
	return p
}

// ingest has replica i take reports of the party's.
func (p *replicaPair) ingest(t *testing.T, i int, partyName string, reports ...PositionReport) {
	t.Helper()
	if _, _, err := p.svc[i].IngestPositions(context.Background(), party.Principal{Party: partyName}, reports); err != nil {
		t.Fatal(err)
	}
}

// relay hands replica i reports another replica accepted.
func (p *replicaPair) relay(t *testing.T, i int, reports ...track.Report) {
	t.Helper()
	if err := p.svc[i].IngestRelayed(context.Background(), reports); err != nil {
		t.Fatal(err)
	}
}

// raise has replica i, which leads, take coalition's c and russia's r, and
// returns the store's alert events, one raise, and the alert's id.
func (p *replicaPair) raise(t *testing.T, i int, c, r PositionReport) (raised []string, id string) {
	t.Helper()
	p.ingest(t, i, "coalition", c)
	p.ingest(t, i, "russia", r)
	raised = alertEvents(t, p.st)
	if len(raised) != 1 {
		t.Fatalf("the leader wrote %v, want one raise", raised)
	}
	return raised, strings.TrimPrefix(raised[0], "alert_raised ")
}

// handOver has replica i take the detection lease and reconcile.
func (p *replicaPair) handOver(t *testing.T, i int) {
	t.Helper()
	p.peers[1-i].leads.Store(false)
	p.peers[i].leads.Store(true)
	if err := p.svc[i].ReconcileDetection(context.Background(), openInStore(p.st)); err != nil {
		t.Fatal(err)
	}
}

// open is the ids of the alerts replica i's engine has open.
func (p *replicaPair) open(i int) []string {
	var ids []string
	for _, a := range p.svc[i].tac.eng.Load().Alerts() {
		ids = append(ids, a.ID)
	}
	return ids
}

// wantEvents fails t unless the store's alert events are want.
func (p *replicaPair) wantEvents(t *testing.T, when string, want ...string) {
	t.Helper()
	if got := alertEvents(t, p.st); !slices.Equal(got, want) {
		t.Fatalf("%s the store has %v, want %v", when, got, want)
	}
}

// eastM moves a report's longitude by m metres east, at latitude 35°.
func eastM(r PositionReport, m float64) PositionReport {
	r.LonDeg += m / (111_320 * 0.8192)
	return r
}

// TestTakeoverNamesAnAlertAsTheStoreDoes: the new leader's engine, fed
// the reports in another order (the relay lost the coalition aircraft's
// first report), raised the conflict the store has open under another id,
// derived from another report. It takes the store's id: the store tells
// the story of one alert, not a clear and a second raise of the same
// conflict.
func TestTakeoverNamesAnAlertAsTheStoreDoes(t *testing.T) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	r.Time = r.Time.Add(100 * time.Millisecond)
	raised, id := p.raise(t, 0, c, r)
	// The follower gets the russian report, then the coalition's next.
	p.clock.advance(time.Second)
	c = eastM(c, 200)
	c.Time = p.clock.now()
	p.relay(t, 1, reportOf("russia", r))
	p.ingest(t, 1, "coalition", c)
	if open := p.open(1); len(open) != 1 || open[0] == id {
		t.Fatalf("the follower's engine has %v, want the conflict under another id than %s", open, id)
	}
	p.handOver(t, 1)
	p.svc[1].Tick(context.Background())
	if open := p.open(1); len(open) != 1 || open[0] != id {
		t.Fatalf("after the takeover the engine has %v, want the store's id %s", open, id)
	}
	// The engine's alert a second later says nothing new (the same
	// level, the same predicted loss): no update either.
	p.wantEvents(t, "after the takeover", raised...)
	if n := alertItems(t, p.st); n != 1 {
		t.Fatalf("%d hotline items, want 1", n)
	}
}

// TestTakeoverDoesNotRaiseAClearedAlertAgain: a replica took over with a
// newer picture (the coalition aircraft climbed away) and cleared the
// alert; the lease comes back to the first replica before the climb
// reaches it. Its engine still has the alert open: the id the parties were
// told ended is not raised again. While the engine still finds the
// conflict it is raised under a new id; once the engine waits to clear it
// too, it is dropped.
func TestTakeoverDoesNotRaiseAClearedAlertAgain(t *testing.T) {
	for _, climbArrivedFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("climb arrived first %v", climbArrivedFirst), func(t *testing.T) {
			p := newReplicaPair(t)
			c, r := headOnPair(p.clock.now())
			raised, id := p.raise(t, 0, c, r)
			// The coalition aircraft climbs 1,500 m, reported to the
			// second replica, which has the russian report too.
			p.clock.advance(time.Second)
			c = eastM(c, 200)
			c.Time, c.AltM = p.clock.now(), c.AltM+1500
			p.relay(t, 1, reportOf("russia", r))
			p.ingest(t, 1, "coalition", c)
			p.handOver(t, 1)
			want := append(raised, "alert_cleared "+id)
			p.wantEvents(t, "after the second replica's takeover", want...)
			if climbArrivedFirst {
				p.relay(t, 0, reportOf("coalition", c))
			}
			p.handOver(t, 0)
			open := p.open(0)
			if climbArrivedFirst {
				if len(open) != 0 {
					t.Fatalf("the first replica's engine has %v open, want nothing", open)
				}
				p.wantEvents(t, "after the first replica's takeover", want...)
				return
			}
			if len(open) != 1 || open[0] == id {
				t.Fatalf("the first replica's engine has %v, want the conflict under a new id", open)
			}
			p.wantEvents(t, "after the first replica's takeover", append(want, "alert_raised "+open[0])...)
		})
	}
}

// TestHeldAlertRenamedInABatchKeepsItsNameForTheBatch: the new leader
// holds the alert the store has open; the russian aircraft's reports reach
// it late, two in one relayed batch, the second after a turn that moves the
// predicted loss. The first raises the conflict under an id of its own,
// which takes the store's; the second's update must name the store's id
// too, not an id the store never raised.
func TestHeldAlertRenamedInABatchKeepsItsNameForTheBatch(t *testing.T) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	_, id := p.raise(t, 0, c, r)
	// The survivor has the coalition report only, and takes over.
	p.relay(t, 1, reportOf("coalition", c))
	p.handOver(t, 1)
	// Two later russian reports in one batch: the first raises the
	// conflict from a report the old leader never had (another id), the
	// second turns the aircraft, which moves the prediction.
	p.clock.advance(2 * time.Second)
	r1 := eastM(r, -200)
	r1.Time = r.Time.Add(time.Second)
	r2 := eastM(r1, -200)
	r2.Time = r1.Time.Add(time.Second)
	r2.VelEastMps = -100
	p.relay(t, 1, reportOf("russia", r1), reportOf("russia", r2))
	p.svc[1].Tick(context.Background())
	if open := p.open(1); len(open) != 1 || open[0] != id {
		t.Fatalf("the new leader's engine has %v, want the store's alert %s", open, id)
	}
	for _, ev := range alertEvents(t, p.st) {
		if !strings.HasSuffix(ev, " "+id) {
			t.Fatalf("the store has %v: a transition of an alert it never raised", alertEvents(t, p.st))
		}
	}
}

// TestHeldAlertRaisedFromALaterReportIsNoNews: the new leader holds the
// alert the store has open; the russian aircraft's next report, a second
// later on the same course, reaches it before the one the old leader
// raised the alert from. Its raise is the store's alert, at the same level
// and with the same predicted loss: nothing to tell the parties, as at a
// takeover (NewsAgainst).
func TestHeldAlertRaisedFromALaterReportIsNoNews(t *testing.T) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	raised, id := p.raise(t, 0, c, r)
	p.relay(t, 1, reportOf("coalition", c))
	p.handOver(t, 1)
	p.clock.advance(time.Second)
	r1 := eastM(r, -200)
	r1.Time = r.Time.Add(time.Second)
	p.relay(t, 1, reportOf("russia", r1))
	p.svc[1].Tick(context.Background())
	if open := p.open(1); len(open) != 1 || open[0] != id {
		t.Fatalf("the new leader's engine has %v, want the store's alert %s", open, id)
	}
	p.wantEvents(t, "after the later report", raised...)
}

// TestTakeoverDoesNotRaiseAClearedIdFromLateReports: the old leader raised
// an alert and cleared it (the russian aircraft climbed away); the reports
// that raised it reach the replica that takes over only after the
// takeover. Its engine raises the conflict from them under the same id:
// the id the parties were told ended is not raised again, the alert gets a
// new one.
func TestTakeoverDoesNotRaiseAClearedIdFromLateReports(t *testing.T) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	raised, id := p.raise(t, 0, c, r)
	// The russian aircraft climbs 1,500 m; the old leader clears the
	// alert once the hysteresis has passed.
	p.clock.advance(time.Second)
	climbed := eastM(r, -200)
	climbed.Time, climbed.AltM = p.clock.now(), r.AltM+1500
	p.ingest(t, 0, "russia", climbed)
	p.clock.advance(10 * time.Second)
	p.svc[0].Tick(context.Background())
	want := append(raised, "alert_cleared "+id)
	p.wantEvents(t, "once the old leader cleared the alert", want...)
	// The next replica takes over, then the relay brings it the first
	// reports.
	p.handOver(t, 1)
	p.relay(t, 1, reportOf("coalition", c), reportOf("russia", r))
	open := p.open(1)
	if len(open) != 1 || open[0] == id {
		t.Fatalf("the new leader's engine has %v, want the conflict under a new id", open)
	}
	p.wantEvents(t, "after the late reports", append(want, "alert_raised "+open[0])...)
	// Once no report older than the takeover can be fresh, the spent ids
	// are let go.
	p.clock.advance(2*p.svc[1].Rules().StaleAfter() + time.Second)
	p.svc[1].Tick(context.Background())
	p.svc[1].tac.mu.Lock()
	spent := len(p.svc[1].tac.spent)
	p.svc[1].tac.mu.Unlock()
	if spent != 0 {
		t.Fatalf("%d spent ids kept after the stale limit", spent)
	}
}

// TestTakeoverForgetsWhatItPostedOfAlertsClearedElsewhere: what a
// replica remembers having posted to the hotline of an alert another
// leader cleared since is forgotten at its next takeover, not kept for
// the life of the process.
func TestTakeoverForgetsWhatItPostedOfAlertsClearedElsewhere(t *testing.T) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	raised, id := p.raise(t, 0, c, r)
	postedBy := func(s *Service) bool {
		s.tac.commitMu.Lock()
		defer s.tac.commitMu.Unlock()
		_, ok := s.tac.posted[id]
		return ok
	}
	if !postedBy(p.svc[0]) {
		t.Fatal("the first leader does not remember posting the alert")
	}
	// The second replica, without the tracks, takes over and clears the
	// alert once it is stale.
	p.handOver(t, 1)
	p.clock.advance(p.svc[1].Rules().StaleAfter() + 2*time.Second)
	p.svc[1].Tick(context.Background())
	p.wantEvents(t, "once stale", append(raised, "alert_cleared "+id)...)
	// The first replica, its tracks stale too, leads again.
	p.svc[0].Tick(context.Background())
	p.handOver(t, 0)
	if postedBy(p.svc[0]) {
		t.Fatal("after its takeover the first replica still remembers posting an alert cleared elsewhere")
	}
}

// lapsingPeers is testPeers whose lease lapses and is taken again (a new
// tenure) once, between the service's check that it leads in a tenure it
// reconciled and its taking of the lease's fence: a renewal that came
// back too late, the lease perhaps held by another replica meanwhile. Its
// fence, as the lease's, checks the tenure it was taken in.
type lapsingPeers struct {
	*testPeers
	lapse atomic.Bool
}

func (p *lapsingPeers) FenceDetection() func(store.Meta) error {
	if p.lapse.CompareAndSwap(true, false) {
		p.tenure.Add(1)
	}
	fence := p.testPeers.FenceDetection()
	if fence == nil {
		return nil
	}
	tenure := p.tenure.Load()
	return func(tx store.Meta) error {
		if p.tenure.Load() != tenure {
			return fmt.Errorf("%w: tenure %d ended", ErrNotLeading, tenure)
		}
		return fence(tx)
	}
}

// TestNoCommitInATenureNotReconciled: the lease's tenure changes between
// the service's check that it reconciled the tenure it leads in and the
// fence of its commit: the commit is not made in the new tenure, which
// may follow another leader's (it waits for the takeover's
// reconciliation), and after it the store has the alert once.
func TestNoCommitInATenureNotReconciled(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	peers := &lapsingPeers{testPeers: &testPeers{}}
	peers.leads.Store(true)
	s := newReplicaService(t, st, peers)
	c, r := headOnPair(time.Now().UTC())
	if _, _, err := s.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c}); err != nil {
		t.Fatal(err)
	}
	peers.lapse.Store(true)
	_, _, _ = s.IngestPositions(ctx, party.Principal{Party: "russia"}, []PositionReport{r})
	if got := alertEvents(t, st); len(got) != 0 {
		t.Fatalf("committed %v in a tenure not reconciled", got)
	}
	if err := s.ReconcileDetection(ctx, openInStore(st)); err != nil {
		t.Fatal(err)
	}
	s.Tick(ctx)
	if got := alertEvents(t, st); len(got) != 1 {
		t.Fatalf("after the takeover's reconciliation the store has %v, want the alert raised once", got)
	}
}

// TestLateRaiseOfASpentIdWhosePairIsHeld: the old leader raised an alert,
// cleared it, and raised the same pair again under another id, which the
// store has open; the replica that takes over has no reports yet, so it
// holds that alert and counts the first id spent. The relay then brings
// it the first reports in one batch, the second a turn: its engine raises
// the conflict under the spent id (reissued) and updates it. The raise is
// the held alert, under the store's id, and so is the update of the same
// batch: no transition of an alert the store never raised.
func TestLateRaiseOfASpentIdWhosePairIsHeld(t *testing.T) {
	p := newReplicaPair(t)
	start := p.clock.now()
	c, r := headOnPair(start)
	// at is where an aircraft of the pair is dt after start, each flying
	// 200 m/s towards the other.
	at := func(q PositionReport, dt time.Duration, altM float64) PositionReport {
		sign := 1.0
		if q.VelEastMps < 0 {
			sign = -1
		}
		q = eastM(q, sign*200*dt.Seconds())
		q.Time, q.AltM = start.Add(dt), altM
		return q
	}
	_, spent := p.raise(t, 0, c, r)
	// Russia climbs away: cleared once the hysteresis passed.
	p.clock.advance(time.Second)
	p.ingest(t, 0, "russia", at(r, time.Second, r.AltM+1500))
	p.clock.advance(10 * time.Second)
	p.ingest(t, 0, "coalition", at(c, 11*time.Second, c.AltM))
	p.svc[0].Tick(context.Background())
	// And comes back down: the same pair raised again, another id.
	p.clock.advance(time.Second)
	p.ingest(t, 0, "coalition", at(c, 12*time.Second, c.AltM))
	p.ingest(t, 0, "russia", at(r, 12*time.Second, r.AltM))
	events := alertEvents(t, p.st)
	if len(events) != 3 || events[1] != "alert_cleared "+spent || !strings.HasPrefix(events[2], "alert_raised ") {
		t.Fatalf("the old leader wrote %v, want a raise, its clear and a raise of another id", events)
	}
	held := strings.TrimPrefix(events[2], "alert_raised ")
	p.handOver(t, 1)
	turned := at(r, time.Second, r.AltM)
	turned.VelEastMps = -100
	p.relay(t, 1, reportOf("coalition", c), reportOf("russia", r), reportOf("russia", turned))
	p.svc[1].Tick(context.Background())
	got := alertEvents(t, p.st)
	for _, ev := range got[len(events):] {
		if !strings.HasSuffix(ev, " "+held) {
			t.Fatalf("after the late reports the store has %v: a transition of an alert it never raised (the store's is %s)", got, held)
		}
	}
	if open := p.open(1); len(open) != 1 || open[0] != held {
		t.Fatalf("the new leader's engine has %v, want the store's alert %s", open, held)
	}
}

// newEmbedded is a service on a SQLite store in a fresh directory, as the
// embedded deployment runs it.
func newEmbedded(t testing.TB) (*Service, store.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(context.Background(), Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

// TestTakeoverDoesNotClearARenamedAlertOnAnOlderPicture: the store has
// open an alert the other replica raised from a report this one has not
// had yet; this replica's engine has the conflict open under its own id
// (its picture is older), and the takeover renames it to the store's id.
// The relay brings the report that ends the conflict in this engine's
// picture, but not yet the one the store's alert came from: the engine's
// clear at the end of its wait is not committed (the relay brings that
// report a moment later, and the conflict would be raised again under a
// new id: an end that never was); the alert stays open, listed as the
// store has it, and the report, when it comes, is the store's alert.
func TestTakeoverDoesNotClearARenamedAlertOnAnOlderPicture(t *testing.T) {
	p, want, ids, climbs := renamedAtTakeover(t)
	p.relay(t, 0, reportOf("coalition", climbs[0]))
	p.clock.advance(5 * time.Second)
	p.svc[0].Tick(context.Background())
	p.wantEvents(t, "once the engine's wait ended", want...)
	if got := p.listed(0); !slices.Equal(got, []string{ids[1]}) {
		t.Fatalf("once the engine's wait ended the new leader lists %v, want the store's %s", got, ids[1])
	}
	p.relay(t, 0, reportOf("russia", climbs[1]))
	p.svc[0].Tick(context.Background())
	p.wantEvents(t, "after the relayed russian climb", want...)
	if got := p.open(0); !slices.Equal(got, []string{ids[1]}) {
		t.Fatalf("after the relayed russian climb the engine has %v, want the store's %s", got, ids[1])
	}
}

// TestRenamedAlertEndedByRulesIsNotRaisedAgainUnderItsID: as
// TestTakeoverDoesNotClearARenamedAlertOnAnOlderPicture, with new rules
// that change detection after the relayed coalition climb: they end the
// alert under the store's id, and the new engine, which did not know the
// ids the old one had ended, derived that id again from the russian
// climb when the relay brought it, and the store read raised, cleared,
// raised under one id. The conflict is raised under a new id.
func TestRenamedAlertEndedByRulesIsNotRaisedAgainUnderItsID(t *testing.T) {
	p, want, ids, climbs := renamedAtTakeover(t)
	p.relay(t, 0, reportOf("coalition", climbs[0]))
	if err := p.svc[0].retuneTactical(context.Background(), widerSeparation(p.svc[0].Rules())); err != nil {
		t.Fatal(err)
	}
	want = append(want, "alert_cleared "+ids[1])
	p.wantEvents(t, "after the rules change", want...)
	p.relay(t, 0, reportOf("russia", climbs[1]))
	open := p.open(0)
	if len(open) != 1 || slices.Contains(ids, open[0]) {
		t.Fatalf("after the relayed russian climb the engine has %v, want the conflict under a new id (not one of %v)", open, ids)
	}
	p.wantEvents(t, "after the relayed russian climb", append(want, "alert_raised "+open[0])...)
}

// renamedAtTakeover plays the takeovers of the two tests above: replica 0
// raises a conflict (ids[0]); the coalition aircraft climbs (climbs[0]),
// reported to replica 1, which takes over and ends the alert; the russian
// aircraft climbs too (climbs[1]), reported to replica 1, which raises the
// conflict again (ids[1]) from that report. Replica 0 takes over before
// the relay brings it either climb: its engine's alert, the conflict
// still in its picture, is renamed to ids[1]. It returns the pair and the
// store's alert events.
func renamedAtTakeover(t *testing.T) (p *replicaPair, events, ids []string, climbs [2]PositionReport) {
	t.Helper()
	p = newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	raised, first := p.raise(t, 0, c, r)
	p.clock.advance(time.Second)
	climbs[0] = eastM(c, 200)
	climbs[0].Time, climbs[0].AltM = p.clock.now(), c.AltM+1500
	p.relay(t, 1, reportOf("russia", r))
	p.ingest(t, 1, "coalition", climbs[0])
	p.handOver(t, 1)
	want := append(raised, "alert_cleared "+first)
	p.wantEvents(t, "after the second replica's takeover", want...)
	p.clock.advance(2 * time.Second)
	climbs[1] = eastM(r, -600)
	climbs[1].Time, climbs[1].AltM = p.clock.now(), r.AltM+1500
	p.ingest(t, 1, "russia", climbs[1])
	events = alertEvents(t, p.st)
	if len(events) != len(want)+1 || !strings.HasPrefix(events[len(want)], "alert_raised ") {
		t.Fatalf("after the russian climb the store has %v, want a raise after %v", events, want)
	}
	second := strings.TrimPrefix(events[len(want)], "alert_raised ")
	p.handOver(t, 0)
	if open := p.open(0); len(open) != 1 || open[0] != second {
		t.Fatalf("after the takeover the first replica's engine has %v, want %s", open, second)
	}
	p.wantEvents(t, "after the first replica's takeover", events...)
	return p, events, []string{first, second}, climbs
}
