package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// propAircraft is one aircraft of TestTakeoversKeepOneHistoryPerPair: it
// flies east or west along latitude 35° at 6,000 m, or 1,500 m above.
type propAircraft struct {
	party, id string
	lonDeg    float64 // at the clock's start
	eastMps   float64
}

// TestTakeoversKeepOneHistoryPerPair: two replicas share a store; each
// ingests reports of its own clients and relays them to the other, whose
// engine gets them late or in another order; the detection lease passes
// back and forth. Whatever the order, the store tells each pair's story
// once: per alert id raised, then updates, then at most a clear; never a
// second alert open for a pair while one is; and once every report has
// reached both replicas and the leader has reconciled, what the store has
// open is what the leader's engine has open. After each step, what the
// store keeps of its alerts (store.Alerts) is what a scan of its events
// finds.
func TestTakeoversKeepOneHistoryPerPair(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { takeovers(rt, false) })
}

// TestTakeoversWithAFlakyStore is TestTakeoversKeepOneHistoryPerPair with
// a store that goes down and comes back, and loses the acknowledgement of
// a commit now and then: the same story, once the store is back and
// everything queued is committed.
func TestTakeoversWithAFlakyStore(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { takeovers(rt, true) })
}

// flakyStore fails every transaction while down, and commits the next
// Update but reports it failed when loseNextAck is set.
type flakyStore struct {
	store.Store
	down, loseNextAck atomic.Bool
}

var errFlaky = errors.New("injected: the store is down")

func (f *flakyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f.down.Load() {
		return errFlaky
	}
	err := f.Store.Update(ctx, fn)
	if err == nil && f.loseNextAck.CompareAndSwap(true, false) {
		return errors.New("injected: the acknowledgement of a commit was lost")
	}
	return err
}

func (f *flakyStore) View(ctx context.Context, fn func(store.Tx) error) error {
	if f.down.Load() {
		return errFlaky
	}
	return f.Store.View(ctx, fn)
}

func takeovers(rt *rapid.T, flaky bool) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "takeovers")
	if err != nil {
		rt.Fatal(err)
	}
	defer os.RemoveAll(dir)
	raw, err := sqlite.Open(ctx, dir)
	if err != nil {
		rt.Fatal(err)
	}
	defer raw.Close()
	st := &flakyStore{Store: raw}
	clock := &testClock{}
	var peers [2]*testPeers
	var svc [2]*Service
	// reconciled is false while the leader's takeover waits for the
	// store (a replica retries it every second).
	reconciled := true
	var seen int64 // the events logged so far
	// The last event before each takeover: an alert recorded late must
	// not overlap an alert of its pair the store had then.
	var marks []int64
	// When the engine that recorded an alert late raised it, on the
	// service's clock (unledAlert.raisedAt), by id: its raise's time is
	// its report's, which may lag.
	lateRaisedAt := map[string]time.Time{}
	noteRaisedAt := func(logged map[string]*unledAlert) {
		for id, u := range logged {
			if !u.raisedAt.IsZero() {
				lateRaisedAt[id] = u.raisedAt
			}
		}
	}
	mark := func() {
		err := raw.View(ctx, func(tx store.Tx) error {
			last, err := tx.LastEventID()
			marks = append(marks, last)
			return err
		})
		if err != nil {
			rt.Fatal(err)
		}
	}
	// ledUntil is when each replica last stopped leading (zero: it never
	// led), as the other's lease tells it (OtherLeaderRenewedWithin): a
	// takeover records late only what was open since the other's.
	var ledUntil [2]time.Time
	stopLeading := func() {
		for i := range peers {
			if peers[i].leads.Load() {
				ledUntil[i] = clock.now()
			}
			peers[i].leads.Store(false)
		}
	}
	reconcile := func(leader int) {
		mark()
		logged := completeUnled(svc[leader])
		noteRaisedAt(logged)
		err := svc[leader].ReconcileDetection(ctx, openInStore(st))
		switch {
		case err == nil:
			reconciled = true
			checkUnledRecorded(rt, raw, logged, ledUntil[1-leader], marks[len(marks)-1])
		case flaky:
			reconciled = false
		default:
			rt.Fatal(err)
		}
	}
	for i := range svc {
		peers[i] = &testPeers{otherLed: func() (time.Duration, bool) {
			if other := ledUntil[1-i]; !other.IsZero() {
				return clock.now().Sub(other), true
			}
			return 0, false
		}}
		s, err := New(ctx, Config{Store: st, Peers: peers[i], Now: clock.now})
		if err != nil {
			rt.Fatal(err)
		}
		svc[i] = s
	}
	leader := 0
	peers[leader].leads.Store(true)
	start := clock.now()
	planes := []propAircraft{
		{"coalition", "C1", 35.90, 200}, {"coalition", "C2", 36.30, -200},
		{"russia", "R1", 36.10, -200}, {"russia", "R2", 35.80, 200},
	}
	climbed := make([]bool, len(planes))
	// Each aircraft reports at most once at a time (a client sends its
	// reports in order, each newer than the last), through either
	// replica.
	lastReport := make([]time.Time, len(planes))
	delivered := [2]int{} // of the other replica's published reports
	deliver := func(to, n int) {
		from := peers[1-to]
		from.mu.Lock()
		pending := slices.Clone(from.published[delivered[to]:])
		from.mu.Unlock()
		n = min(n, len(pending))
		if n == 0 {
			return
		}
		delivered[to] += n
		for _, r := range pending[:n] {
			rt.Logf("%s: relay %s at %s to replica %d", clock.now().Format("05.000"), r.Aircraft, r.Time.Format("05.000"), to)
		}
		// With the store down, the engine takes them and the commit of
		// their alerts is retried later.
		if err := svc[to].IngestRelayed(ctx, pending[:n]); err != nil && !flaky {
			rt.Fatal(err)
		}
	}
	report := func(at, j int) {
		a := planes[j]
		now := clock.now()
		if !now.After(lastReport[j]) {
			return
		}
		lastReport[j] = now
		r := PositionReport{Aircraft: a.id, Time: now, LatDeg: 35, AltM: 6000, VelEastMps: a.eastMps,
			LonDeg: a.lonDeg + a.eastMps*now.Sub(start).Seconds()/(111_320*0.8192)}
		if climbed[j] {
			r.AltM += 1500
		}
		rt.Logf("%s: report %s alt %.0f to replica %d", now.Format("05.000"), a.id, r.AltM, at)
		// A batch waits for the commit of its alerts, which a store
		// that is down holds back: the caller gives up, and the
		// transitions stay queued.
		ictx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, _, err := svc[at].IngestPositions(ictx, party.Principal{Party: a.party}, []PositionReport{r}); err != nil && !flaky {
			rt.Fatal(err)
		}
	}
	steps := rapid.IntRange(4, 40).Draw(rt, "steps")
	for range steps {
		switch rapid.IntRange(0, 8).Draw(rt, "action") {
		case 0, 1: // a report to a replica
			at := rapid.IntRange(0, 1).Draw(rt, "replica")
			j := rapid.IntRange(0, len(planes)-1).Draw(rt, "aircraft")
			if rapid.IntRange(0, 3).Draw(rt, "climb") == 0 {
				climbed[j] = !climbed[j]
			}
			report(at, j)
		case 2: // the relay brings some of what the other replica accepted
			to := rapid.IntRange(0, 1).Draw(rt, "to")
			deliver(to, rapid.IntRange(1, 4).Draw(rt, "relayed"))
		case 3: // the lease changes hands, or lapses and is taken again
			stopLeading()
			leader = rapid.IntRange(0, 1).Draw(rt, "new leader")
			if rapid.IntRange(0, 2).Draw(rt, "lapse") == 0 {
				// Nobody leads for a while: the engines' transitions
				// are dropped until the next takeover.
				rt.Logf("%s: nobody leads", clock.now().Format("05.000"))
				break
			}
			peers[leader].leads.Store(true)
			peers[leader].tenure.Add(1)
			rt.Logf("%s: replica %d takes over", clock.now().Format("05.000"), leader)
			reconcile(leader)
		case 4:
			clock.advance(time.Duration(rapid.IntRange(0, 4000).Draw(rt, "ms")) * time.Millisecond)
		case 5:
			rt.Logf("%s: tick", clock.now().Format("05.000"))
			svc[rapid.IntRange(0, 1).Draw(rt, "ticked")].Tick(ctx)
			if !reconciled && peers[leader].leads.Load() {
				reconcile(leader)
			}
		case 6:
			if flaky {
				down := !st.down.Load()
				rt.Logf("%s: the store is down %v", clock.now().Format("05.000"), down)
				st.down.Store(down)
			}
		case 7:
			if flaky {
				rt.Logf("%s: the next commit's acknowledgement will be lost", clock.now().Format("05.000"))
				st.loseNextAck.Store(true)
			}
		case 8:
			// The leader dies and its lease has not lapsed yet: for a
			// few seconds nobody leads, while the aircraft report, the
			// relay brings the reports and the engines raise and clear
			// alerts (the next takeover records those over).
			stopLeading()
			rt.Logf("%s: nobody leads for a while", clock.now().Format("05.000"))
			for range rapid.IntRange(1, 6).Draw(rt, "rounds without a leader") {
				j := rapid.IntRange(0, len(planes)-1).Draw(rt, "aircraft")
				if rapid.IntRange(0, 1).Draw(rt, "climb") == 0 {
					climbed[j] = !climbed[j]
				}
				report(rapid.IntRange(0, 1).Draw(rt, "replica"), j)
				deliver(0, rapid.IntRange(0, 4).Draw(rt, "relayed"))
				deliver(1, rapid.IntRange(0, 4).Draw(rt, "relayed"))
				clock.advance(time.Duration(rapid.IntRange(500, 3000).Draw(rt, "ms")) * time.Millisecond)
				svc[0].Tick(ctx)
				svc[1].Tick(ctx)
			}
		}
		seen = checkPairHistories(rt, raw, seen, marks, lateRaisedAt)
		checkStoredAlertsAsScanned(rt, raw)
	}
	// The store is back, reliable, and everything queued is committed
	// (the commit's backoff runs on the wall clock).
	st.down.Store(false)
	st.loseNextAck.Store(false)
	// Everything reaches both replicas, and every aircraft reports
	// once more (a takeover holds what the store has open until its
	// engine has reports of the alert's aircraft as recent as the
	// store's); the leader reconciles and ticks.
	deliver(0, 1<<30)
	deliver(1, 1<<30)
	clock.advance(time.Second)
	for j := range planes {
		report(rapid.IntRange(0, 1).Draw(rt, "last report to"), j)
	}
	deliver(0, 1<<30)
	deliver(1, 1<<30)
	stopLeading()
	peers[leader].leads.Store(true)
	peers[leader].tenure.Add(1)
	mark()
	logged := completeUnled(svc[leader])
	noteRaisedAt(logged)
	if err := svc[leader].ReconcileDetection(ctx, openInStore(st)); err != nil {
		rt.Fatal(err)
	}
	checkUnledRecorded(rt, raw, logged, ledUntil[1-leader], marks[len(marks)-1])
	svc[0].Tick(ctx)
	svc[1].Tick(ctx)
	// What the backoff of the failures still holds back is committed
	// now, as the next attempt would.
	t := svc[leader].tac
	t.commitMu.Lock()
	_, err = svc[leader].commitQueuedLocked(ctx, nil)
	t.commitMu.Unlock()
	if err != nil {
		rt.Fatal(err)
	}
	if n := t.queuedTransitions(); n > 0 {
		rt.Fatalf("%d alert transitions still queued", n)
	}
	checkPairHistories(rt, raw, seen, marks, lateRaisedAt)
	checkStoredAlertsAsScanned(rt, raw)
	stored, err := openInStore(st)(ctx)
	if err != nil {
		rt.Fatal(err)
	}
	var inEngine []string
	for _, a := range svc[leader].Alerts(party.Principal{Operator: true}) {
		inEngine = append(inEngine, a.ID)
	}
	inStore := slices.Sorted(maps.Keys(stored.Open))
	slices.Sort(inEngine)
	if !slices.Equal(inStore, inEngine) {
		rt.Fatalf("open in the store %v, in the leader's engine %v", inStore, inEngine)
	}
}

// checkPairHistories checks the store's alert events: per id raised,
// updated, cleared in that order, the raise first and nothing after the
// clear; per pair of aircraft at most one alert open at a time. An alert
// recorded late (raised and cleared while nobody led) is history: all its
// transitions are marked so, its raise first, and it was not open at the
// same time as an alert of its pair that the store had at the takeover
// that recorded it (the last of marks, the last event before each
// takeover, before it): open from when the engine raised it (raisedAt, by
// id, on the service's clock as the clears are; its raise's time when not
// there), not from its report's time, which lags when the relay brought
// the report late.
//
// It logs the alert events after seen, and returns the last event's id.
func checkPairHistories(rt *rapid.T, st store.Store, seen int64, marks []int64, raisedAt map[string]time.Time) int64 {
	var evs []store.Event
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		evs, err = tx.EventsAfter(0, 1_000_000)
		return err
	})
	if err != nil {
		rt.Fatal(err)
	}
	type history struct {
		pair  string
		kinds []string
		late  *alert.Alert // the raise of an alert recorded late
	}
	// The times of the alerts so far, by the times of their transitions,
	// and the event that raised them.
	type span struct {
		pair     string
		from, to time.Time
		raisedBy int64
	}
	// before returns the last event before the takeover that committed
	// event id.
	before := func(id int64) int64 {
		var m int64
		for _, at := range marks {
			if at < id {
				m = max(m, at)
			}
		}
		return m
	}
	spans := map[string]span{}
	byID := map[string]*history{}
	openOf := map[string]string{} // pair -> the open alert's id
	var order []string
	lastSeen := map[string]int64{} // one transition is an event per party: count it once
	for _, e := range evs {
		kind, ok := strings.CutPrefix(e.Kind, "alert_")
		if !ok {
			continue
		}
		var a alert.Alert
		if err := json.Unmarshal(e.Body, &a); err != nil {
			rt.Fatal(err)
		}
		key := fmt.Sprintf("%s %s %s", kind, a.ID, a.Time.Format(time.RFC3339Nano))
		if id, seen := lastSeen[key]; seen && id == e.ID-1 {
			lastSeen[key] = e.ID
			continue
		}
		lastSeen[key] = e.ID
		var keys []string
		for i := range a.Aircraft {
			keys = append(keys, a.Aircraft[i].Party+"/"+a.Aircraft[i].Aircraft)
		}
		slices.Sort(keys)
		pair := a.Kind + " " + strings.Join(keys, " ")
		h := byID[a.ID]
		if h == nil {
			h = &history{pair: pair}
			byID[a.ID] = h
		}
		h.kinds = append(h.kinds, kind)
		order = append(order, kind+" "+a.Reason+" "+a.ID[:6]+" "+pair+" "+a.Level+" "+a.Time.Format("05.000"))
		if e.ID > seen {
			rt.Logf("  event %d: %s", e.ID, order[len(order)-1])
		}
		if a.RecordedLate {
			// History: raised and cleared while nobody led, committed
			// at a takeover. Complete, its times in order, and no
			// alert of its pair in the store then at the same time.
			if h.late == nil && kind == "raised" && len(h.kinds) == 1 {
				h.late = &a
			}
			switch {
			case h.late == nil || kind == "raised" && len(h.kinds) != 1:
				rt.Fatalf("alert %s %s recorded late, not after its raise recorded late: %v\n%s", a.ID, kind, h.kinds, strings.Join(order, "\n"))
			case a.Time.Before(h.late.Time):
				rt.Fatalf("alert %s recorded late %s at %s, before its raise at %s", a.ID, kind, a.Time, h.late.Time)
			case kind == "cleared":
				// Another alert of the pair is open with it for
				// less than sameAlertOverlap: the relay's delay
				// (late.go).
				from := h.late.Time
				if at, ok := raisedAt[a.ID]; ok {
					from = at
				}
				for id, sp := range spans {
					if id != a.ID && sp.pair == pair && sp.raisedBy <= before(e.ID) && (AlertSpan{From: sp.from, To: sp.to}).openWith(from, a.Time) >= sameAlertOverlap(rules.Default()) {
						rt.Fatalf("alert %s recorded late, open from %s to %s, as %s of its pair\n%s", a.ID, from, a.Time, id, strings.Join(order, "\n"))
					}
				}
			}
			if kind == "cleared" {
				spans[a.ID] = span{pair: pair, from: h.late.Time, to: a.Time, raisedBy: e.ID}
			}
			continue
		}
		switch kind {
		case "raised":
			spans[a.ID] = span{pair: pair, from: a.Time, raisedBy: e.ID}
		case "cleared":
			if sp, ok := spans[a.ID]; ok {
				sp.to = a.Time
				spans[a.ID] = sp
			}
		}
		switch {
		case kind == "raised" && len(h.kinds) != 1:
			rt.Fatalf("alert %s raised again: %v\n%s", a.ID, h.kinds, strings.Join(order, "\n"))
		case kind != "raised" && (len(h.kinds) == 1 || h.kinds[len(h.kinds)-2] == "cleared"):
			rt.Fatalf("alert %s %s while not open: %v\n%s", a.ID, kind, h.kinds, strings.Join(order, "\n"))
		}
		switch kind {
		case "raised":
			if other, open := openOf[pair]; open {
				rt.Fatalf("alert %s raised for %s while %s is open\n%s", a.ID, pair, other, strings.Join(order, "\n"))
			}
			openOf[pair] = a.ID
		case "cleared":
			delete(openOf, pair)
		}
	}
	if len(evs) > 0 {
		return evs[len(evs)-1].ID
	}
	return seen
}

// completeUnled returns the alerts of s's log of what nobody committed that
// were raised and cleared there, by id: a takeover by s must leave each in
// the store (checkUnledRecorded).
func completeUnled(s *Service) map[string]*unledAlert {
	t := s.tac
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]*unledAlert{}
	for id, u := range t.unled.byID {
		if u.complete() {
			out[id] = u
		}
	}
	return out
}

// checkUnledRecorded checks, after a takeover, the alerts of logged (the
// alerts a replica's engine raised and cleared while it did not commit
// them, before its takeover). Those open at or after gapFrom (when the
// other replica last led; zero: it never did), or queued by this one as
// the leader, were open while nobody committed: the store has each under
// its id, or an alert of its pair open with it (from when the engine
// raised it: openFrom) for at least sameAlertOverlap. Those over before
// were the leader's to judge: the takeover's events (after the event
// mark) record none of them late.
func checkUnledRecorded(rt *rapid.T, st store.Store, logged map[string]*unledAlert, gapFrom time.Time, mark int64) {
	if len(logged) == 0 {
		return
	}
	stored, err := openInStore(st)(context.Background())
	if err != nil {
		rt.Fatal(err)
	}
	var evs []store.Event
	err = st.View(context.Background(), func(tx store.Tx) error {
		var err error
		evs, err = tx.EventsAfter(mark, 1_000_000)
		return err
	})
	if err != nil {
		rt.Fatal(err)
	}
	recordedLate := map[string]bool{}
	for _, e := range evs {
		var a alert.Alert
		if strings.HasPrefix(e.Kind, "alert_") && json.Unmarshal(e.Body, &a) == nil && a.RecordedLate {
			recordedLate[a.ID] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(logged)) {
		u := logged[id]
		if !u.own && u.clear.Time.Before(gapFrom) {
			if recordedLate[id] {
				rt.Fatalf("alert %s raised at %s and cleared at %s, while the other replica led (until %s), recorded late", id, u.raise.Time, u.clear.Time, gapFrom)
			}
			continue
		}
		if _, ok := stored.Spans[id]; ok {
			continue
		}
		found := false
		for _, sp := range stored.Spans {
			found = found || sp.Pair == pairOf(u.raise) && sp.openWith(u.openFrom(), u.clear.Time) >= sameAlertOverlap(rules.Default())
		}
		if !found {
			rt.Fatalf("alert %s raised at %s and cleared at %s while nobody led is not in the store after the takeover", id, u.raise.Time, u.clear.Time)
		}
	}
}
