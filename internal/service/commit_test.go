package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
)

// faultyStore wraps a store with injected failures: while down, every
// Update fails; while poison is set, appending an event whose body holds
// it fails (and with it the transaction); while loseAck is set, the next
// Update that appends an event whose body holds it commits and then fails
// all the same, as when the acknowledgement of a COMMIT is lost (the
// connection dropped, the server restarted just after committing), and
// with downAfterLostAck the store is down from then on.
type faultyStore struct {
	store.Store
	down             atomic.Bool
	poison           atomic.Pointer[string]
	loseAck          atomic.Pointer[string]
	downAfterLostAck atomic.Bool
}

var (
	errInjected = errors.New("injected store failure")
	errAckLost  = errors.New("injected loss of a commit's acknowledgement")
)

func (f *faultyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f.down.Load() {
		return errInjected
	}
	var ackToLose *string
	err := f.Store.Update(ctx, func(tx store.Tx) error {
		ackToLose = nil
		return fn(poisonTx{tx, f, &ackToLose})
	})
	if err == nil && ackToLose != nil && f.loseAck.CompareAndSwap(ackToLose, nil) {
		if f.downAfterLostAck.Load() {
			f.down.Store(true)
		}
		return errAckLost
	}
	return err
}

type poisonTx struct {
	store.Tx
	f *faultyStore
	// ackToLose is set to f.loseAck when an event holding it is appended.
	ackToLose **string
}

func (p poisonTx) AppendEvent(e store.Event) (int64, error) {
	if s := p.f.poison.Load(); s != nil && bytes.Contains(e.Body, []byte(*s)) {
		return 0, errInjected
	}
	if s := p.f.loseAck.Load(); s != nil && bytes.Contains(e.Body, []byte(*s)) {
		*p.ackToLose = s
	}
	return p.Tx.AppendEvent(e)
}

// newFaultyService is a service over a faulty embedded store with the
// parties coalition, russia, airgroup and navy.
func newFaultyService(t testing.TB) (*Service, *faultyStore) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newFaultyServiceOn(t, st)
}

// newFaultyServiceOn is newFaultyService over st.
func newFaultyServiceOn(t testing.TB, st store.Store) (*Service, *faultyStore) {
	t.Helper()
	ctx := context.Background()
	f := &faultyStore{Store: st}
	s, err := New(ctx, Config{Store: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"coalition", "russia", "airgroup", "navy"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return s, f
}

// ingest posts one party's reports, giving up waiting for the commit
// after wait; it returns the error.
func ingest(s *Service, partyName string, wait time.Duration, reports ...PositionReport) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, _, err := s.IngestPositions(ctx, party.Principal{Party: partyName}, reports)
	return err
}

// closing is a head-on pair 20 km apart at latDeg: a conflict within a
// minute.
func closing(a, b string, latDeg float64, now time.Time) (PositionReport, PositionReport) {
	return PositionReport{Aircraft: a, Callsign: "CS-" + a, Time: now, LatDeg: latDeg, LonDeg: 36, AltM: 6000, VelEastMps: 200},
		PositionReport{Aircraft: b, Callsign: "CS-" + b, Time: now, LatDeg: latDeg, LonDeg: 36.2, AltM: 6000, VelEastMps: -200}
}

// alertReached checks that the alert between the aircraft reached both
// parties the way every alert must: an alert_raised event for both, a
// hotline item to both, and an audit record. It returns what is missing.
func alertReached(t *testing.T, st store.Store, acA, acB string, parties [2]string) []string {
	t.Helper()
	var missing []string
	err := st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100000)
		if err != nil {
			return err
		}
		var id string
		reached := map[string]bool{}
		for _, e := range evs {
			var a struct {
				ID       string
				Aircraft []struct{ Aircraft string }
			}
			if e.Kind != "alert_raised" || json.Unmarshal(e.Body, &a) != nil || len(a.Aircraft) != 2 {
				continue
			}
			if names := []string{a.Aircraft[0].Aircraft, a.Aircraft[1].Aircraft}; slices.Contains(names, acA) && slices.Contains(names, acB) {
				id = a.ID
				for _, p := range parties {
					reached[p] = reached[p] || store.Concerns(e, p)
				}
			}
		}
		if id == "" {
			missing = append(missing, "the alert_raised event")
			return nil
		}
		for _, p := range parties {
			if !reached[p] {
				missing = append(missing, "the event for "+p)
			}
		}
		for _, p := range parties {
			ms, err := tx.MessagesFor(p, "alert:"+id, time.Time{}, 10)
			if err != nil {
				return err
			}
			if len(ms) == 0 {
				missing = append(missing, "the hotline item to "+p)
			}
		}
		recs, err := tx.AuditFrom(1, 100000)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(recs, func(r store.AuditRecord) bool {
			return r.Kind == "alert_raised" && bytes.Contains(r.Content, []byte(id))
		}) {
			missing = append(missing, "the audit record")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return missing
}

// tickUntilCommitted runs the periodic jobs until no alert transition is
// queued; the limit only guards against a hang.
func tickUntilCommitted(t *testing.T, s *Service) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.tac.queuedTransitions() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d alert transitions still queued", s.tac.queuedTransitions())
		}
		s.Tick(context.Background())
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAlertCommitSurvivesAStoreFailure: while the store fails, the alerts
// of two unrelated pairs of parties are raised; the requests give up
// waiting, but the transitions stay queued and, once the store is back,
// every alert reaches both of its parties (event, hotline item, audit
// record).
func TestAlertCommitSurvivesAStoreFailure(t *testing.T) {
	s, f := newFaultyService(t)
	now := time.Now().UTC()
	c1, r1 := closing("C1", "R1", 35, now)
	a1, n1 := closing("A1", "N1", 40, now)
	for _, in := range []struct {
		party string
		r     PositionReport
	}{{"russia", r1}, {"navy", n1}} {
		if err := ingest(s, in.party, 10*time.Second, in.r); err != nil {
			t.Fatal(err)
		}
	}
	f.down.Store(true)
	for _, in := range []struct {
		party string
		r     PositionReport
	}{{"coalition", c1}, {"airgroup", a1}} {
		if err := ingest(s, in.party, 300*time.Millisecond, in.r); err == nil {
			t.Fatalf("the %s report was answered as committed while the store was down", in.party)
		}
	}
	if got := alertEvents(t, f.Store); len(got) != 0 {
		t.Fatalf("alert events while the store was down: %v", got)
	}
	f.down.Store(false)
	tickUntilCommitted(t, s)
	for _, pair := range []struct {
		a, b    string
		parties [2]string
	}{{"C1", "R1", [2]string{"coalition", "russia"}}, {"A1", "N1", [2]string{"airgroup", "navy"}}} {
		if missing := alertReached(t, f.Store, pair.a, pair.b, pair.parties); len(missing) > 0 {
			t.Errorf("the alert of %s/%s lacks %v after the store recovered", pair.a, pair.b, missing)
		}
	}
}

// TestOneAlertsFailureIsNotAnothers: two alerts of one batch, of different
// pairs of parties, share a commit; one of them cannot be written (its
// event is refused). The other still reaches both its parties at once;
// the first follows as soon as it can be written.
func TestOneAlertsFailureIsNotAnothers(t *testing.T) {
	s, f := newFaultyService(t)
	now := time.Now().UTC()
	c1, r1 := closing("C1", "R1", 35, now)
	c2, n2 := closing("C2", "N2", 40, now)
	r1.Callsign = "POISON"
	poison := "POISON"
	if err := ingest(s, "russia", 10*time.Second, r1); err != nil {
		t.Fatal(err)
	}
	if err := ingest(s, "navy", 10*time.Second, n2); err != nil {
		t.Fatal(err)
	}
	f.poison.Store(&poison)
	if err := ingest(s, "coalition", 500*time.Millisecond, c1, c2); err == nil {
		t.Fatal("the batch was answered as committed with one of its alerts unwritable")
	}
	if missing := alertReached(t, f.Store, "C2", "N2", [2]string{"coalition", "navy"}); len(missing) > 0 {
		t.Fatalf("the alert of C2/N2 lacks %v while another alert of its commit cannot be written", missing)
	}
	if missing := alertReached(t, f.Store, "C1", "R1", [2]string{"coalition", "russia"}); len(missing) == 0 {
		t.Fatal("the unwritable alert was written")
	}
	f.poison.Store(nil)
	tickUntilCommitted(t, s)
	if missing := alertReached(t, f.Store, "C1", "R1", [2]string{"coalition", "russia"}); len(missing) > 0 {
		t.Fatalf("the alert of C1/R1 lacks %v once it could be written", missing)
	}
}

// TestCommitWaitsOnlyForResolutionsBeforeItsCaller: a caller's commit
// takes the queue up to its own transitions and, after them, only those
// whose resolutions are ready: a younger batch whose resolution is still
// being computed neither holds it back nor is committed without it (nor
// counted late). The youngest batch's caller then commits what is left,
// once it is ready, each event with its resolution.
func TestCommitWaitsOnlyForResolutionsBeforeItsCaller(t *testing.T) {
	s, f := newFaultyService(t)
	now := time.Now().UTC()
	conflict := func(id, a, b string) alert.Transition {
		return alert.Transition{ID: id, Kind: alert.KindConflict, Level: "caution", State: alert.StateRaised, Time: now,
			Aircraft: []alert.Aircraft{{Party: "coalition", Aircraft: a, Class: "manned"}, {Party: "russia", Aircraft: b, Class: "manned"}}}
	}
	ready := func(id string) *pendingResolution {
		p := newPendingResolution()
		p.res = &Resolution{AlertID: id, Time: now}
		close(p.done)
		return p
	}
	// Still being computed long after the first commit: one that waited
	// for it would come back late, without it, and with the queue empty.
	slow := newPendingResolution()
	slow.deadline = time.Now().Add(30 * time.Second)
	first := &commitWaiter{left: 2, done: make(chan struct{}), res: []*pendingResolution{ready("X1"), ready("X2")}}
	younger := &commitWaiter{left: 1, done: make(chan struct{}), res: []*pendingResolution{slow}}
	youngest := &commitWaiter{left: 1, done: make(chan struct{}), res: []*pendingResolution{ready("X4")}}
	tac := s.tac
	tac.mu.Lock()
	tac.pending = []queued{
		{tr: conflict("X1", "C1", "R1"), w: first, res: first.res[0]},
		{tr: conflict("X2", "C2", "R2"), w: first, res: first.res[1]},
		{tr: conflict("X3", "C3", "R3"), w: younger, res: slow},
		{tr: conflict("X4", "C4", "R4"), w: youngest, res: youngest.res[0]},
	}
	tac.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.commitTransitions(ctx, first); err != nil {
		t.Fatalf("the first batch's commit: %v", err)
	}
	if left := tac.queuedTransitions(); left != 2 {
		t.Fatalf("%d transitions left queued after the first batch's commit, want the younger two", left)
	}
	select {
	case <-younger.done:
		t.Fatal("the younger batch was committed before its resolution was ready")
	case <-youngest.done:
		t.Fatal("a batch queued after one whose resolution is not ready was committed ahead of it")
	default:
	}
	if got := alertEvents(t, f.Store); !slices.Equal(got, []string{"alert_raised X1", "alert_raised X2"}) {
		t.Fatalf("alert events after the first commit: %v, want X1 and X2", got)
	}

	slow.res = &Resolution{AlertID: "X3", Time: now}
	close(slow.done)
	if err := s.commitTransitions(ctx, youngest); err != nil {
		t.Fatalf("the youngest batch's commit: %v", err)
	}
	for name, w := range map[string]*commitWaiter{"younger": younger, "youngest": youngest} {
		select {
		case <-w.done:
		default:
			t.Fatalf("the %s batch is not released after the queue was committed", name)
		}
	}
	if got := alertEvents(t, f.Store); !slices.Equal(got, []string{"alert_raised X1", "alert_raised X2", "alert_raised X3", "alert_raised X4"}) {
		t.Fatalf("alert events: %v, want every alert, in order", got)
	}
	if late := counterValue(t, s.Metrics().ResolutionsLate); late != 0 {
		t.Fatalf("%v resolutions counted late, want none", late)
	}
	// Each event carries its alert's resolution, the slow one's too.
	err := f.Store.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 1000)
		for _, e := range evs {
			var body struct {
				ID         string
				Resolution *Resolution
			}
			if e.Kind != "alert_raised" || json.Unmarshal(e.Body, &body) != nil {
				continue
			}
			if body.Resolution == nil || body.Resolution.AlertID != body.ID {
				t.Errorf("the event of %s for %v carries resolution %+v", body.ID, e.Audience, body.Resolution)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTakeQueuedIsTheCallersPrefix: on random queues of a few batches,
// some resolutions ready and some not, what a commit for a batch takes is
// a prefix of the queue (the rest stays queued, in order) that holds every
// transition of the batch, and after the batch's last one only ready ones,
// as many as follow it; a commit without a caller takes everything.
func TestTakeQueuedIsTheCallersPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, uint64(time.Now().UnixNano())))
	done := newPendingResolution()
	close(done.done)
	superseded := newPendingResolution()
	superseded.superseded.Store(true)
	late := newPendingResolution()
	late.deadline = time.Now().Add(-time.Second)
	running := newPendingResolution()
	running.deadline = time.Now().Add(time.Hour)
	states := []*pendingResolution{nil, done, superseded, late, running}
	for range 2000 {
		waiters := make([]*commitWaiter, 1+rng.IntN(4))
		for i := range waiters {
			waiters[i] = &commitWaiter{}
		}
		queue := make([]queued, rng.IntN(12))
		for i := range queue {
			queue[i] = queued{tr: alert.Transition{ID: fmt.Sprint(i)}, w: waiters[rng.IntN(len(waiters))], res: states[rng.IntN(len(states))]}
		}
		var w *commitWaiter
		if rng.IntN(5) > 0 {
			w = waiters[rng.IntN(len(waiters))]
		}
		tac := &tactical{pending: slices.Clone(queue)}
		batch := tac.takeQueued(w)
		rest := tac.pending
		if len(batch)+len(rest) != len(queue) {
			t.Fatalf("took %d and left %d of %d", len(batch), len(rest), len(queue))
		}
		for i, q := range append(slices.Clone(batch), rest...) {
			if q.tr.ID != queue[i].tr.ID {
				t.Fatalf("the queue's order changed: %v then %v", batch, rest)
			}
		}
		if w == nil {
			if len(rest) > 0 {
				t.Fatalf("a commit without a caller left %d queued", len(rest))
			}
			continue
		}
		last := -1
		for i, q := range queue {
			if q.w == w {
				last = i
			}
		}
		if len(batch) <= last {
			t.Fatalf("the caller's transition %d was left queued (took %d)", last, len(batch))
		}
		for _, q := range batch[last+1:] {
			if !q.ready() {
				t.Fatalf("took transition %s after the caller's, whose resolution is not ready", q.tr.ID)
			}
		}
		if len(rest) > 0 && rest[0].ready() {
			t.Fatalf("left transition %s queued, whose resolution is ready, after the caller's", rest[0].tr.ID)
		}
	}
}

// alertCopies counts what the store holds of the alert raised between the
// aircraft: its alert_raised events for each party, its hotline items to
// each party and its audit records; every count of an alert raised once is
// one. It returns the alert's id too ("" when it was not raised).
func alertCopies(t *testing.T, st store.Store, acA, acB string, parties [2]string) (string, map[string]int) {
	t.Helper()
	var id string
	copies := map[string]int{}
	err := st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100000)
		if err != nil {
			return err
		}
		for _, e := range evs {
			var a struct {
				ID       string
				Aircraft []struct{ Aircraft string }
			}
			if e.Kind != "alert_raised" || json.Unmarshal(e.Body, &a) != nil || len(a.Aircraft) != 2 {
				continue
			}
			if names := []string{a.Aircraft[0].Aircraft, a.Aircraft[1].Aircraft}; !slices.Contains(names, acA) || !slices.Contains(names, acB) {
				continue
			}
			id = a.ID
			for _, p := range parties {
				if store.Concerns(e, p) {
					copies["alert_raised event for "+p]++
				}
			}
		}
		if id == "" {
			return nil
		}
		for _, p := range parties {
			ms, err := tx.MessagesFor(p, "alert:"+id, time.Time{}, 10)
			if err != nil {
				return err
			}
			copies["hotline item to "+p] = len(ms)
		}
		recs, err := tx.AuditFrom(1, 100000)
		for _, r := range recs {
			if r.Kind == "alert_raised" && bytes.Contains(r.Content, []byte(id)) {
				copies["audit record"]++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, copies
}

// checkRaisedOnce fails the test unless the alert between the aircraft was
// written exactly once: one event for each party, one hotline item to
// each, one audit record.
func checkRaisedOnce(t *testing.T, st store.Store, acA, acB string, parties [2]string) {
	t.Helper()
	id, copies := alertCopies(t, st, acA, acB, parties)
	if id == "" {
		t.Fatalf("the alert of %s/%s was not raised", acA, acB)
	}
	for _, what := range []string{"alert_raised event for " + parties[0], "alert_raised event for " + parties[1],
		"hotline item to " + parties[0], "hotline item to " + parties[1], "audit record"} {
		if copies[what] != 1 {
			t.Errorf("the alert %s of %s/%s has %d copies of its %s, want 1 (all: %v)", id, acA, acB, copies[what], what, copies)
		}
	}
}

// TestLostCommitAckWritesAlertOnce: the transaction carrying an alert's
// transition commits but its acknowledgement is lost, so that the service
// sees the commit fail. Trying it again must not write the alert a second
// time (a second alert_raised event, audit record and hotline item, with
// a deadline and escalation of its own, and a record that cannot tell
// whether the alert was raised twice); the caller learns that its batch
// is committed, and a live stream gets the alert.
func TestLostCommitAckWritesAlertOnce(t *testing.T) {
	s, f := newFaultyService(t)
	lostCommitAckWritesAlertOnce(t, s, f)
}

func lostCommitAckWritesAlertOnce(t *testing.T, s *Service, f *faultyStore) {
	now := time.Now().UTC()
	c1, r1 := closing("C1", "R1", 35, now)
	if err := ingest(s, "russia", 10*time.Second, r1); err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe(party.Principal{Party: "coalition"})
	defer sub.Close()
	raised := `"state":"raised"`
	f.loseAck.Store(&raised)
	if err := ingest(s, "coalition", 10*time.Second, c1); err != nil {
		t.Fatalf("the batch whose commit's acknowledgement was lost: %v", err)
	}
	if f.loseAck.Load() != nil {
		t.Fatal("no acknowledgement was lost: the test injected nothing")
	}
	checkRaisedOnce(t, f.Store, "C1", "R1", [2]string{"coalition", "russia"})
	evs, _ := sub.Take(nil)
	if !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Kind == "alert_raised" }) {
		t.Errorf("the live stream got no alert_raised event, only %d events", len(evs))
	}
}

// TestLostCommitAckThenStoreDown: the acknowledgement of the commit of an
// alert is lost and the store is down just after (the database server
// restarted once it had committed): nobody can tell yet whether the alert
// was written. Once the store is back, the alert is there once, and
// another alert raised while the outcome was unknown is written too.
func TestLostCommitAckThenStoreDown(t *testing.T) {
	s, f := newFaultyService(t)
	lostCommitAckThenStoreDown(t, s, f)
}

func lostCommitAckThenStoreDown(t *testing.T, s *Service, f *faultyStore) {
	now := time.Now().UTC()
	c1, r1 := closing("C1", "R1", 35, now)
	a1, n1 := closing("A1", "N1", 40, now)
	for _, in := range []struct {
		party string
		r     PositionReport
	}{{"russia", r1}, {"navy", n1}} {
		if err := ingest(s, in.party, 10*time.Second, in.r); err != nil {
			t.Fatal(err)
		}
	}
	raised := `"state":"raised"`
	f.downAfterLostAck.Store(true)
	f.loseAck.Store(&raised)
	if err := ingest(s, "coalition", 300*time.Millisecond, c1); err == nil {
		t.Fatal("the batch was answered as committed while the store was down after losing its acknowledgement")
	}
	if !f.down.Load() {
		t.Fatal("no acknowledgement was lost: the test injected nothing")
	}
	if err := ingest(s, "airgroup", 300*time.Millisecond, a1); err == nil {
		t.Fatal("a batch was answered as committed while the store was down")
	}
	f.down.Store(false)
	tickUntilCommitted(t, s)
	checkRaisedOnce(t, f.Store, "C1", "R1", [2]string{"coalition", "russia"})
	checkRaisedOnce(t, f.Store, "A1", "N1", [2]string{"airgroup", "navy"})
}

// TestLostCommitAckKeepsWhatWasPosted: the commit that raised an alert
// lost its acknowledgement and the store went down; once it is back, the
// alert's next transition, at the same level, posts nothing to the
// hotline, as after any commit: what the commit in doubt posted counts.
func TestLostCommitAckKeepsWhatWasPosted(t *testing.T) {
	s, f := newFaultyService(t)
	now := time.Now().UTC()
	tr := alert.Transition{ID: "X1", Kind: alert.KindConflict, Level: "caution", State: alert.StateRaised, Time: now,
		Aircraft: []alert.Aircraft{{Party: "coalition", Aircraft: "C1", Class: "manned"}, {Party: "russia", Aircraft: "R1", Class: "manned"}}}
	commit := func(tr alert.Transition, wait time.Duration) error {
		w := &commitWaiter{left: 1, done: make(chan struct{})}
		s.tac.mu.Lock()
		s.tac.pending = append(s.tac.pending, queued{tr: tr, w: w})
		s.tac.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		return s.commitTransitions(ctx, w)
	}
	raised := `"state":"raised"`
	f.downAfterLostAck.Store(true)
	f.loseAck.Store(&raised)
	if err := commit(tr, 300*time.Millisecond); err == nil {
		t.Fatal("the commit was answered as done while the store was down after losing its acknowledgement")
	}
	if !f.down.Load() {
		t.Fatal("no acknowledgement was lost: the test injected nothing")
	}
	f.down.Store(false)
	tr.State = alert.StateUpdated
	tr.Time = now.Add(time.Second)
	if err := commit(tr, 10*time.Second); err != nil {
		t.Fatalf("the commit of the update: %v", err)
	}
	err := f.Store.View(context.Background(), func(tx store.Tx) error {
		for _, p := range []string{"coalition", "russia"} {
			ms, err := tx.MessagesFor(p, "alert:X1", time.Time{}, 10)
			if err != nil {
				return err
			}
			if len(ms) != 1 {
				t.Errorf("%d hotline items of the alert to %s, want 1", len(ms), p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLiveStreamGetsTheEventsOfALostAck: a write commits but its
// acknowledgement is lost and the store is down just after, so that
// nobody can tell yet whether it committed, and its events are not handed
// to the live streams then; the next write's events must not overtake
// them: a stream (and a client resuming after the last id it got) would
// skip them for good.
func TestLiveStreamGetsTheEventsOfALostAck(t *testing.T) {
	s, f := newFaultyService(t)
	ctx := context.Background()
	sub := s.Subscribe(party.Principal{Party: "russia"})
	defer sub.Close()
	lost := "the first notice"
	f.downAfterLostAck.Store(true)
	f.loseAck.Store(&lost)
	if _, err := s.PostMessage(ctx, party.Principal{Party: "coalition"}, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: lost}); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("the write whose acknowledgement is lost, the store down, returned %v", err)
	}
	f.down.Store(false)
	if _, err := s.PostMessage(ctx, party.Principal{Party: "coalition"}, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: "the second notice"}); err != nil {
		t.Fatal(err)
	}
	got, _ := sub.Take(nil)
	var texts []string
	for i, e := range got {
		if i > 0 && e.ID != got[i-1].ID+1 {
			t.Errorf("the live stream went from event %d to %d", got[i-1].ID, e.ID)
		}
		var m struct{ Text string }
		if json.Unmarshal(e.Body, &m) == nil && m.Text != "" {
			texts = append(texts, m.Text)
		}
	}
	if !slices.Equal(texts, []string{"the first notice", "the second notice"}) {
		t.Errorf("the live stream got the messages %q, want both, in order", texts)
	}
}

// TestLostCommitAckOnPostgres: the commits whose acknowledgement is lost
// write their alerts once on PostgreSQL too.
func TestLostCommitAckOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	for name, scenario := range map[string]func(*testing.T, *Service, *faultyStore){
		"WritesAlertOnce": lostCommitAckWritesAlertOnce,
		"ThenStoreDown":   lostCommitAckThenStoreDown,
	} {
		t.Run(name, func(t *testing.T) {
			st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			s, f := newFaultyServiceOn(t, st)
			scenario(t, s, f)
		})
	}
}

// TestLostAckOfWritesAppliedInMemory: on the embedded store, a write whose
// commit's acknowledgement is lost while the store goes down failed for
// its caller, so what it changes in memory after the commit was never
// applied: rules it brought into force, a volume it declared. Once the
// store is back, the periodic jobs bring both up to the store, as they are
// there for everyone who reads the store.
func TestLostAckOfWritesAppliedInMemory(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &faultyStore{Store: st}
	s, err := New(ctx, Config{Store: f})
	if err != nil {
		t.Fatal(err)
	}
	op := party.Principal{Party: party.OperatorName, Operator: true}
	// No party to ask: the proposal comes into force at once.
	r := s.Rules()
	r.HorizontalSepM += 1000
	lost := `"horizontal_sep_m"`
	f.downAfterLostAck.Store(true)
	f.loseAck.Store(&lost)
	if _, err := s.ProposeRules(ctx, op, r); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("the proposal whose acknowledgement is lost, the store down, returned %v", err)
	}
	f.down.Store(false)
	var inStore store.RulesRecord
	if err := st.View(ctx, func(tx store.Tx) error { inStore, err = tx.LatestRules(); return err }); err != nil {
		t.Fatal(err)
	}
	if inStore.Version == s.Rules().Version {
		t.Fatalf("the rules in force in the store are version %d, as in memory: nothing to adopt", inStore.Version)
	}
	if _, err := s.CreateParty(ctx, "coalition"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	in := volume.Input{Footprint: volume.Footprint{Type: "Circle", Center: []float64{36, 35}, RadiusM: 5000},
		AltLowerM: 1000, AltUpperM: 2000, Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)}
	lost = `"alt_upper_m":2000`
	f.loseAck.Store(&lost)
	if _, err := s.CreateVolume(ctx, party.Principal{Party: "coalition"}, in); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("the volume write whose acknowledgement is lost, the store down, returned %v", err)
	}
	f.down.Store(false)
	var declared []store.Volume
	if err := st.View(ctx, func(tx store.Tx) error { declared, err = tx.VolumesChangedSince(0, 10); return err }); err != nil {
		t.Fatal(err)
	}
	if len(declared) != 1 {
		t.Fatalf("%d volumes in the store, want the one declared", len(declared))
	}
	for range 2 { // rules are adopted at the second look
		s.Tick(ctx)
	}
	if got := s.Rules(); got.Version != inStore.Version || got.HorizontalSepM != r.HorizontalSepM {
		t.Errorf("the rules in memory are version %d (horizontal separation %v m), want version %d in force in the store (%v m)",
			got.Version, got.HorizontalSepM, inStore.Version, r.HorizontalSepM)
	}
	if _, err := s.GetVolume(party.Principal{Party: "coalition"}, declared[0].ID); err != nil {
		t.Errorf("the volume declared is not known in memory: %v", err)
	}
}

// TestLostCommitAckWhileSplit: a commit of two alerts fails (one of them
// cannot be written), and in the alert-by-alert attempt that follows, the
// other's commit loses its acknowledgement and the store goes down. Once
// the store is back and the first alert can be written, each alert is
// there once.
func TestLostCommitAckWhileSplit(t *testing.T) {
	s, f := newFaultyService(t)
	now := time.Now().UTC()
	c1, r1 := closing("C1", "R1", 35, now)
	c2, n2 := closing("C2", "N2", 40, now)
	r1.Callsign = "POISON"
	for _, in := range []struct {
		party string
		r     PositionReport
	}{{"russia", r1}, {"navy", n2}} {
		if err := ingest(s, in.party, 10*time.Second, in.r); err != nil {
			t.Fatal(err)
		}
	}
	poison, lost := "POISON", `"N2"`
	f.poison.Store(&poison)
	f.downAfterLostAck.Store(true)
	f.loseAck.Store(&lost)
	if err := ingest(s, "coalition", 500*time.Millisecond, c1, c2); err == nil {
		t.Fatal("the batch was answered as committed with one of its alerts unwritable")
	}
	if !f.down.Load() {
		t.Fatal("no acknowledgement was lost: the test injected nothing")
	}
	f.poison.Store(nil)
	f.down.Store(false)
	tickUntilCommitted(t, s)
	checkRaisedOnce(t, f.Store, "C1", "R1", [2]string{"coalition", "russia"})
	checkRaisedOnce(t, f.Store, "C2", "N2", [2]string{"coalition", "navy"})
}

// TestLostAckOfAWriteIsRecognised: a party's write commits but its
// acknowledgement is lost. The write reads its token back and succeeds:
// its caller (an HTTP request) does not get an error it would retry,
// writing a second message with a deadline and escalation of its own; the
// message is there once and the live stream gets it. Likewise a volume
// declared so is known at once.
func TestLostAckOfAWriteIsRecognised(t *testing.T) {
	s, f := newFaultyService(t)
	ctx := context.Background()
	sub := s.Subscribe(party.Principal{Party: "russia"})
	defer sub.Close()
	lost := "a notice"
	f.loseAck.Store(&lost)
	m, err := s.PostMessage(ctx, party.Principal{Party: "coalition"}, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: lost})
	if err != nil {
		t.Fatalf("the write whose acknowledgement was lost returned %v", err)
	}
	if f.loseAck.Load() != nil {
		t.Fatal("no acknowledgement was lost: the test injected nothing")
	}
	ms, err := s.ListMessages(ctx, party.Principal{Party: "russia"}, "", time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != m.ID {
		t.Errorf("russia has %d messages, want the one posted (%s)", len(ms), m.ID)
	}
	if got, _ := sub.Take(nil); len(got) != 1 {
		t.Errorf("the live stream got %d events, want the message's", len(got))
	}

	now := time.Now().UTC()
	in := volume.Input{Footprint: volume.Footprint{Type: "Circle", Center: []float64{36, 35}, RadiusM: 5000},
		AltLowerM: 1000, AltUpperM: 2000, Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)}
	lost = `"alt_upper_m":2000`
	f.loseAck.Store(&lost)
	v, err := s.CreateVolume(ctx, party.Principal{Party: "coalition"}, in)
	if err != nil {
		t.Fatalf("the volume write whose acknowledgement was lost returned %v", err)
	}
	if _, err := s.GetVolume(party.Principal{Party: "coalition"}, v.ID); err != nil {
		t.Errorf("the volume declared is not known: %v", err)
	}
}

// TestLostCommitAckSettledAfterAnotherLeaderCommitted: the commit that
// raised an alert lost its acknowledgement and the store went down; the
// lease went to another replica, which committed alerts of its own, and
// came back before this replica reconciled (ReconcileDetection runs a
// moment after the lease is taken, and commits go on meanwhile). The
// commit in doubt did commit: it must not be written again because the
// other leader's commit token is the last in the store.
func TestLostCommitAckSettledAfterAnotherLeaderCommitted(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := &faultyStore{Store: st}
	aPeers, bPeers := &testPeers{}, &testPeers{}
	aPeers.leads.Store(true)
	a := newReplicaService(t, f, aPeers)
	for _, p := range []string{"coalition", "russia", "airgroup", "navy"} {
		if _, err := a.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	b := newReplicaService(t, st, bPeers)
	now := time.Now().UTC()
	c1, r1 := closing("C1", "R1", 35, now)
	if err := ingest(a, "russia", 10*time.Second, r1); err != nil {
		t.Fatal(err)
	}
	raised := `"state":"raised"`
	f.downAfterLostAck.Store(true)
	f.loseAck.Store(&raised)
	if err := ingest(a, "coalition", 100*time.Millisecond, c1); err == nil {
		t.Fatal("the batch was answered as committed while the store was down after losing its acknowledgement")
	}
	if !f.down.Load() {
		t.Fatal("no acknowledgement was lost: the test injected nothing")
	}
	// The lease moves to b, which commits an alert of its own.
	aPeers.leads.Store(false)
	bPeers.leads.Store(true)
	f.down.Store(false)
	a1, n1 := closing("A1", "N1", 40, now)
	if err := ingest(b, "navy", 10*time.Second, n1); err != nil {
		t.Fatal(err)
	}
	if err := ingest(b, "airgroup", 10*time.Second, a1); err != nil {
		t.Fatal(err)
	}
	checkRaisedOnce(t, st, "A1", "N1", [2]string{"airgroup", "navy"})
	// The lease comes back to a, whose queue commits before it reconciles.
	bPeers.leads.Store(false)
	aPeers.leads.Store(true)
	tickUntilCommitted(t, a)
	checkRaisedOnce(t, st, "C1", "R1", [2]string{"coalition", "russia"})
}

// failingCommit is a faultyStore whose next Update, once armed, runs fn
// through and then fails without committing, the store down just after:
// a commit whose outcome nobody can tell, which did not happen.
type failingCommit struct {
	*faultyStore
	armed atomic.Bool
}

var errCommitFailed = errors.New("injected failure of a commit")

func (f *failingCommit) Update(ctx context.Context, fn func(store.Tx) error) error {
	if !f.armed.CompareAndSwap(true, false) {
		return f.faultyStore.Update(ctx, fn)
	}
	err := f.faultyStore.Update(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errCommitFailed
	})
	f.down.Store(true)
	return err
}

// TestTakeoverThatCannotReadTheStoreKeepsTheCommitInDoubt: a replica
// that takes the lease back with a commit of alert transitions in doubt
// (it did not commit; nobody could tell) fails to read the store's
// alerts. Until a takeover succeeds, the commit stays in doubt and holds
// the queue: a later transition of its alert committed first would tell
// the parties of an update of an alert never raised.
func TestTakeoverThatCannotReadTheStoreKeepsTheCommitInDoubt(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := &failingCommit{faultyStore: &faultyStore{Store: st}}
	peers := &testPeers{}
	peers.leads.Store(true)
	s := newReplicaService(t, f, peers)
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	c1, r1 := closing("C1", "R1", 35, now)
	if err := ingest(s, "russia", 10*time.Second, r1); err != nil {
		t.Fatal(err)
	}
	f.armed.Store(true)
	if err := ingest(s, "coalition", 100*time.Millisecond, c1); err == nil {
		t.Fatal("the batch was answered as committed while its commit failed and the store was down")
	}
	if s.tac.queuedTransitions() == 0 {
		t.Fatal("no commit is in doubt: the test injected nothing")
	}
	// The lease lapses and comes back; the takeover cannot read the store.
	peers.leads.Store(false)
	peers.leads.Store(true)
	unreadable := func(context.Context) (StoredAlerts, error) { return StoredAlerts{}, errInjected }
	if err := s.ReconcileDetection(ctx, unreadable); err == nil {
		t.Fatal("the takeover succeeded without reading the store")
	}
	// The store is back; the coalition aircraft turns, which updates the
	// alert, before the takeover is tried again.
	f.down.Store(false)
	c2 := c1
	c2.Time = c1.Time.Add(time.Second)
	c2.LonDeg += 200.0 / (111_320 * 0.8192)
	c2.VelEastMps = 100
	if err := ingest(s, "coalition", 10*time.Second, c2); err != nil {
		t.Fatal(err)
	}
	if err := s.ReconcileDetection(ctx, openInStore(st)); err != nil {
		t.Fatal(err)
	}
	got := alertEvents(t, st)
	if len(got) == 0 || !strings.HasPrefix(got[0], "alert_raised ") {
		t.Fatalf("the store has %v: the alert's story does not start with its raise", got)
	}
}
