package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// now is before every test window, so nothing has expired.
var now = t0.Add(-time.Hour)

type env struct {
	t   testing.TB
	st  txStore
	reg *Registry
	rl  rules.Rules
}

func newEnv(t testing.TB, st txStore) *env {
	e := &env{t: t, st: st, reg: NewRegistry(rules.Default()), rl: testRules()}
	if err := st.View(context.Background(), func(tx volumeTx) error { return e.reg.Load(tx) }); err != nil {
		t.Fatal(err)
	}
	return e
}

// do runs one write the way the service does: in one transaction with its
// events, then hands the result to the registry after the commit.
func (e *env) do(write func(tx volumeTx) (Result, error)) (Result, error) {
	var res Result
	err := e.st.Update(context.Background(), func(tx volumeTx) error {
		var err error
		if res, err = write(tx); err != nil {
			return err
		}
		return res.AppendEvents(tx, now)
	})
	if err == nil {
		e.reg.Apply(res)
	}
	return res, err
}

func (e *env) create(party string, in Input, key ...KeyEntry) (Result, error) {
	in.Key = key
	return e.do(func(tx volumeTx) (Result, error) { return e.reg.Create(tx, party, in, e.rl, now) })
}

func (e *env) update(party string, v Volume, in Input, key ...KeyEntry) (Result, error) {
	in.Key, in.Version = key, v.Version
	return e.do(func(tx volumeTx) (Result, error) { return e.reg.Update(tx, party, v.ID, in, e.rl, now) })
}

func (e *env) setState(party string, v Volume, to State, key ...KeyEntry) (Result, error) {
	return e.do(func(tx volumeTx) (Result, error) {
		return e.reg.SetState(tx, party, v.ID, v.Version, to, key, e.rl, now)
	})
}

func (e *env) mustCreate(party string, in Input, key ...KeyEntry) Volume {
	e.t.Helper()
	res, err := e.create(party, in, key...)
	if err != nil {
		e.t.Fatalf("create for %s: %v", party, err)
	}
	return res.Volume
}

// stored returns every volume and event in the store.
func (e *env) stored() ([]*Volume, []store.Event) {
	e.t.Helper()
	var vs []*Volume
	var evs []store.Event
	err := e.st.View(context.Background(), func(tx volumeTx) error {
		recs, err := tx.VolumesChangedSince(0, 1<<30)
		if err != nil {
			return err
		}
		for _, r := range recs {
			v, err := Decode(r)
			if err != nil {
				return err
			}
			vs = append(vs, v)
		}
		evs, err = tx.EventsAfter(0, 1<<30)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return vs, evs
}

func keyOf(vs ...Volume) []KeyEntry {
	out := make([]KeyEntry, len(vs))
	for i, v := range vs {
		out[i] = KeyEntry{ID: v.ID, Version: v.Version}
	}
	return out
}

// area returns an input around a point of the test airspace; volumes with
// the same n overlap, different n are far apart.
func area(n int) Input {
	in := input(circle(30+float64(n), 40, 2000), 1000, 2000, t0, t0.Add(time.Hour))
	in.Details = json.RawMessage(`{"secret":"only the owner"}`)
	return in
}

func missingIDs(t *testing.T, err error) []string {
	t.Helper()
	var mk *MissingKeyError
	if !errors.As(err, &mk) || !errors.Is(err, ErrMissingKey) {
		t.Fatalf("want a missing-key refusal, got %v", err)
	}
	var out []string
	for _, v := range mk.Missing {
		if v.Details != nil {
			t.Errorf("missing volume %s shown with its details", v.ID)
		}
		out = append(out, v.ID+"@"+v.Version)
	}
	slices.Sort(out)
	return out
}

func refs(vs ...Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID+"@"+v.Version)
	}
	slices.Sort(out)
	return out
}

func TestAwarenessKey(t *testing.T) { testAwarenessKey(t, newFakeStore()) }

func testAwarenessKey(t *testing.T, st txStore) {
	e := newEnv(t, st)
	a := e.mustCreate("a", area(0))
	volsBefore, evsBefore := e.stored()

	_, err := e.create("b", area(0))
	if got, want := missingIDs(t, err), refs(a); !slices.Equal(got, want) {
		t.Errorf("missing %v, want %v", got, want)
	}
	_, err = e.create("b", area(0), KeyEntry{ID: a.ID, Version: "stale"})
	if got, want := missingIDs(t, err), refs(a); !slices.Equal(got, want) {
		t.Errorf("stale key: missing %v, want %v", got, want)
	}
	if vs, evs := e.stored(); len(vs) != len(volsBefore) || len(evs) != len(evsBefore) {
		t.Fatalf("a refused write changed the store: %d volumes, %d events (were %d, %d)", len(vs), len(evs), len(volsBefore), len(evsBefore))
	}

	res, err := e.create("b", area(0), keyOf(a)...)
	if err != nil {
		t.Fatal(err)
	}
	b := res.Volume
	if len(res.Conflicts) != 1 || res.Conflicts[0].ID != a.ID || res.Conflicts[0].Details != nil {
		t.Errorf("conflicts %+v, want a reduced", res.Conflicts)
	}
	if len(b.Conflicts) != 1 || b.Conflicts[0] != a.Ref() {
		t.Errorf("volume lists conflicts %+v", b.Conflicts)
	}
	_, evs := e.stored()
	last := evs[len(evs)-1]
	if last.Kind != "volume_conflict" || !slices.Contains(last.Audience, "a") || !slices.Contains(last.Audience, "b") {
		t.Errorf("last event %s to %v, want volume_conflict to a and b", last.Kind, last.Audience)
	}
	var data ConflictData
	if err := json.Unmarshal(last.Body, &data); err != nil || len(data.Volumes) != 2 || data.Volumes[0].Details != nil || data.Volumes[1].Details != nil {
		t.Errorf("volume_conflict data %s (%v)", last.Body, err)
	}

	// a must now know b to change its volume; c must know both, and the
	// refusal lists exactly the one it did not name.
	moved := area(0)
	moved.AltUpperM = 2500
	_, err = e.update("a", a, moved)
	if got, want := missingIDs(t, err), refs(b); !slices.Equal(got, want) {
		t.Errorf("update: missing %v, want %v", got, want)
	}
	_, err = e.create("c", area(0), keyOf(a)...)
	if got, want := missingIDs(t, err), refs(b); !slices.Equal(got, want) {
		t.Errorf("third party: missing %v, want %v", got, want)
	}
	// Key entries that do not conflict are ignored.
	far := e.mustCreate("c", area(5), keyOf(a, b)...)
	if len(far.Conflicts) != 0 {
		t.Errorf("a distant volume lists conflicts %v", far.Conflicts)
	}
}

// testRules are the default rules granting the parties of the tests
// (a, b, c, p0..p3) priorities up to 10.
func testRules() rules.Rules {
	rl := rules.Default()
	rl.PriorityMax = map[string]int{}
	for _, p := range []string{"a", "b", "c", "p0", "p1", "p2", "p3"} {
		rl.PriorityMax[p] = 10
	}
	return rl
}

func TestPriorityRules(t *testing.T) { testPriorityRules(t, newFakeStore()) }

func testPriorityRules(t *testing.T, st txStore) {
	e := newEnv(t, st)
	// Priority is what the rules grant a party, nothing above: by default
	// nothing at all.
	e.rl = rules.Default()
	e.rl.PriorityMax = map[string]int{"a": 5, "b": 7}
	for _, c := range []struct {
		party    string
		priority int
	}{{"c", 1}, {"a", 6}, {"b", 8}, {"b", -1}, {"c", math.MaxInt}} {
		in := area(0)
		in.Priority = c.priority
		if _, err := e.create(c.party, in); fieldOf(err) != "priority" {
			t.Errorf("%s at priority %d: %v", c.party, c.priority, err)
		}
	}
	hi := area(0)
	hi.Priority = 5
	a := e.mustCreate("a", hi)

	lower := area(0)
	lower.Priority = 3
	_, err := e.create("b", lower, keyOf(a)...)
	var pe *PriorityError
	if !errors.As(err, &pe) || !errors.Is(err, ErrHigherPriority) || len(pe.Higher) != 1 || pe.Higher[0].ID != a.ID {
		t.Fatalf("lower priority: %v", err)
	}
	for _, p := range []int{5, 7} {
		in := area(0)
		in.Priority = p
		in.State = Activated
		if _, err := e.create("b", in, keyOf(a)...); !errors.Is(err, ErrActivatedConflict) {
			t.Errorf("priority %d activated over a conflict: %v", p, err)
		}
		in.State = Accepted
		if _, err := e.create("b", in, keyOf(a)...); err != nil {
			t.Errorf("priority %d accepted with the key: %v", p, err)
		}
	}
	// Without any conflict, activation is allowed.
	in := area(3)
	in.State = Activated
	e.mustCreate("b", in)

	// When the rules withdraw a party's priority, its volumes stay as
	// they are, but outrank nobody beyond what is granted now.
	e.rl.PriorityMax = nil
	if got, err := e.reg.Get("a", a.ID); err != nil || got.Priority != 5 || got.State != Accepted {
		t.Fatalf("a's volume after the rules changed: %+v, %v", got, err)
	}
	var mk *MissingKeyError
	if _, err := e.create("c", area(0)); !errors.As(err, &mk) {
		t.Fatalf("no key: %v", err)
	}
	if _, err := e.create("c", area(0), keyOf(mk.Missing...)...); err != nil {
		t.Errorf("priority 0 against a priority no longer granted: %v", err)
	}
	// Ending or cancelling is never refused for the priority.
	if _, err := e.setState("a", a, Cancelled); err != nil {
		t.Errorf("cancelling a volume whose priority is no longer granted: %v", err)
	}
}

func TestOptimisticConcurrency(t *testing.T) { testOptimisticConcurrency(t, newFakeStore()) }

func testOptimisticConcurrency(t *testing.T, st txStore) {
	e := newEnv(t, st)
	v1 := e.mustCreate("a", area(0))
	changed := area(0)
	changed.AltUpperM = 3000
	res, err := e.update("a", v1, changed)
	if err != nil {
		t.Fatal(err)
	}
	v2 := res.Volume
	if v2.Version == v1.Version || v2.ID != v1.ID {
		t.Fatalf("update kept version %s", v2.Version)
	}
	again := area(0)
	again.AltUpperM = 4000
	if _, err := e.update("a", v1, again); !errors.Is(err, ErrStaleVersion) {
		t.Errorf("update naming a replaced version: %v", err)
	}
	if _, err := e.setState("a", v1, Cancelled); !errors.Is(err, ErrStaleVersion) {
		t.Errorf("state change naming a replaced version: %v", err)
	}
	if _, err := e.update("b", v2, again); !errors.Is(err, ErrForbidden) {
		t.Errorf("update by another party: %v", err)
	}
	vs, _ := e.stored()
	if len(vs) != 1 || vs[0].Version != v2.Version || vs[0].AltUpperM != 3000 {
		t.Errorf("store holds %+v, want exactly version %s", vs[0], v2.Version)
	}
}

// Every pair of states, including creation, through the registry.
func TestStateTransitionsExhaustive(t *testing.T) {
	allowed := map[[2]State]bool{
		{"", Proposed}: true, {"", Accepted}: true, {"", Activated}: true,
		{Proposed, Proposed}: true, {Proposed, Accepted}: true, {Proposed, Activated}: true, {Proposed, Cancelled}: true,
		{Accepted, Accepted}: true, {Accepted, Activated}: true, {Accepted, Ended}: true, {Accepted, Cancelled}: true,
		{Activated, Activated}: true, {Activated, Ended}: true, {Activated, Cancelled}: true,
	}
	// How to reach each state from creation.
	paths := map[State][]State{
		Proposed: {Proposed}, Accepted: {Accepted}, Activated: {Activated},
		Ended: {Accepted, Ended}, Cancelled: {Proposed, Cancelled},
	}
	e := newEnv(t, newFakeStore())
	n := 0
	for _, from := range append([]State{""}, States...) {
		for _, to := range States {
			n++
			want := allowed[[2]State{from, to}]
			if CanTransition(from, to) != want {
				t.Errorf("CanTransition(%q, %q) = %v", from, to, !want)
			}
			in := area(n)
			var err error
			if from == "" {
				in.State = to
				_, err = e.create("a", in)
			} else {
				path := paths[from]
				in.State = path[0]
				v := e.mustCreate("a", in)
				for _, s := range path[1:] {
					res, err := e.setState("a", v, s)
					if err != nil {
						t.Fatalf("reaching %s: %v", from, err)
					}
					v = res.Volume
				}
				var res Result
				res, err = e.setState("a", v, to)
				if err == nil && res.Volume.State != to {
					t.Errorf("%s -> %s stored state %s", from, to, res.Volume.State)
				}
			}
			switch {
			case want && err != nil:
				t.Errorf("%q -> %s refused: %v", from, to, err)
			case !want && !errors.Is(err, ErrIllegalTransition):
				t.Errorf("%q -> %s: %v, want ErrIllegalTransition", from, to, err)
			}
		}
	}
}

func TestEndedAndCancelledStopCounting(t *testing.T) {
	e := newEnv(t, newFakeStore())
	for i, to := range []State{Ended, Cancelled} {
		a := e.mustCreate("a", area(i))
		if _, err := e.setState("a", a, to); err != nil {
			t.Fatal(err)
		}
		res, err := e.create("b", area(i))
		if err != nil || len(res.Conflicts) != 0 {
			t.Errorf("after %s: %v, conflicts %v", to, err, res.Conflicts)
		}
	}
}

func TestEndExpired(t *testing.T) { testEndExpired(t, newFakeStore()) }

func testEndExpired(t *testing.T, st txStore) {
	e := newEnv(t, st)
	a := e.mustCreate("a", area(0))
	later := area(1)
	later.Start, later.End = t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	b := e.mustCreate("a", later)
	buf := time.Duration(e.rl.TimeBufferS * float64(time.Second))
	run := func(at time.Time) []Result {
		var out []Result
		err := e.st.Update(context.Background(), func(tx volumeTx) error {
			var err error
			out, err = e.reg.EndExpired(tx, e.rl, at)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		e.reg.Apply(out...)
		return out
	}
	if got := run(a.End.Add(buf - time.Second)); len(got) != 0 {
		t.Errorf("ended %d volumes before the buffer ran out", len(got))
	}
	got := run(a.End.Add(buf))
	if len(got) != 1 || got[0].Volume.ID != a.ID || got[0].Volume.State != Ended || got[0].Previous.Version != a.Version {
		t.Fatalf("ended %+v, want only %s", got, a.ID)
	}
	v, err := e.reg.Get("a", a.ID)
	if err != nil || v.State != Ended {
		t.Errorf("registry holds %s in %s (%v)", a.ID, v.State, err)
	}
	if v, _ := e.reg.Get("a", b.ID); v.State != Accepted {
		t.Errorf("the later volume is %s", v.State)
	}
}

// Rules whose time buffer does not fit a Duration (1e15 s, stored before
// the rules had bounds) end no volume: it wrapped around to a negative
// buffer and ended every live volume of every party. The registry refuses
// to work under rules that fail their validation; writes wait for valid
// rules.
func TestEndExpiredWithHugeBufferEndsNothing(t *testing.T) {
	e := newEnv(t, newFakeStore())
	a := e.mustCreate("a", area(0))
	b := e.mustCreate("b", area(3))
	for _, buf := range []float64{1e15, 1e300, math.Inf(1)} {
		rl := e.rl
		rl.TimeBufferS = buf
		var out []Result
		err := e.st.Update(context.Background(), func(tx volumeTx) error {
			var err error
			out, err = e.reg.EndExpired(tx, rl, a.Start.Add(time.Minute))
			return err
		})
		if len(out) != 0 {
			t.Errorf("time buffer %g s: ended %d volumes (%v)", buf, len(out), err)
		}
		e.reg.Apply(out...)
		for _, v := range []Volume{a, b} {
			if got, _ := e.reg.Get(v.Party, v.ID); got.State != Accepted {
				t.Errorf("time buffer %g s: %s is %s", buf, v.ID, got.State)
			}
		}
	}
	// Under such rules, a fresh index still loads at once.
	rl := e.rl
	rl.TimeBufferS = 1e15
	reg := NewRegistry(rl)
	if err := e.st.View(context.Background(), func(tx volumeTx) error { return reg.Load(tx) }); err != nil {
		t.Fatal(err)
	}
}

// Rules adopted after a volume was written never change it; Breaking lists
// the live volumes that break the new rules, with the field at fault, for
// their owners.
func TestBreakingFlagsWithoutChanging(t *testing.T) {
	e := newEnv(t, newFakeStore())
	wide := area(0)
	wide.Footprint = circle(30, 40, 5000) // 78.5 km²; the others 12.6 km²
	long := area(3)
	long.End = long.Start.Add(20 * time.Hour)
	high := area(6)
	high.Priority = 4
	fine := area(9)
	fine.End = fine.Start.Add(time.Hour)
	vs := map[string]Volume{"wide": e.mustCreate("a", wide), "long": e.mustCreate("b", long), "high": e.mustCreate("c", high), "fine": e.mustCreate("a", fine)}
	tight := e.rl
	tight.MaxWindowS = 10 * 3600
	tight.PriorityMax = map[string]int{"c": 2}
	tight.MaxFootprintAreaM2 = 30e6
	var flags []Flag
	err := e.st.Update(context.Background(), func(tx volumeTx) error {
		var err error
		flags, err = e.reg.Breaking(tx, tight)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range flags {
		got[f.Volume.ID] = f.Reason.Field
	}
	want := map[string]string{vs["wide"].ID: "footprint", vs["long"].ID: "end", vs["high"].ID: "priority"}
	for name, v := range vs {
		if got[v.ID] != want[v.ID] {
			t.Errorf("%s: flagged for %q, want %q", name, got[v.ID], want[v.ID])
		}
		if stored, err := e.reg.Get(v.Party, v.ID); err != nil || stored.Version != v.Version || stored.State != v.State {
			t.Errorf("%s changed: %+v, %v", name, stored, err)
		}
	}
}

// A transaction that rolls back leaves nothing behind, in the store or in
// the index.
func TestRollbackLeavesIndexClean(t *testing.T) { testRollbackLeavesIndexClean(t, newFakeStore()) }

func testRollbackLeavesIndexClean(t *testing.T, st txStore) {
	e := newEnv(t, st)
	boom := errors.New("audit failed")
	err := e.st.Update(context.Background(), func(tx volumeTx) error {
		if _, err := e.reg.Create(tx, "a", area(0), e.rl, now); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if vs, _ := e.reg.Query("a", nil, Extent{LowerM: -1e6, UpperM: 1e6, From: t0.Add(-24 * time.Hour), To: t0.Add(24 * time.Hour)}); len(vs) != 0 {
		t.Errorf("index kept a rolled-back volume: %v", vs)
	}
	res, err := e.create("b", area(0))
	if err != nil || len(res.Conflicts) != 0 {
		t.Errorf("a rolled-back volume still counts: %v %v", err, res.Conflicts)
	}
}

// Two registries (two replicas) on one store: each sees the other's
// commits before it checks, because the store is the truth.
// With group commit, several writes share one transaction: a write sees
// the earlier ones of its batch (they commit together or not at all), and
// when the batch rolls back nothing of it stays in the index.
func TestBatchMatesCountButDoNotStick(t *testing.T) {
	testBatchMatesCountButDoNotStick(t, newFakeStore())
}

func testBatchMatesCountButDoNotStick(t *testing.T, st txStore) {
	e := newEnv(t, st)
	abort := errors.New("batch aborted")
	err := e.st.Update(context.Background(), func(tx volumeTx) error {
		a, err := e.reg.Create(tx, "a", area(0), e.rl, now)
		if err != nil {
			return err
		}
		_, err = e.reg.Create(tx, "b", area(0), e.rl, now)
		if got, want := missingIDs(t, err), refs(a.Volume); !slices.Equal(got, want) {
			t.Errorf("batch-mate: missing %v, want %v", got, want)
		}
		keyed := area(0)
		keyed.Key = keyOf(a.Volume)
		if _, err := e.reg.Create(tx, "b", keyed, e.rl, now); err != nil {
			t.Errorf("batch-mate with the key: %v", err)
		}
		return abort
	})
	if !errors.Is(err, abort) {
		t.Fatal(err)
	}
	res, err := e.create("b", area(0))
	if err != nil || len(res.Conflicts) != 0 {
		t.Errorf("after the rollback: %v, conflicts %v", err, res.Conflicts)
	}
	if _, err := e.create("a", area(0)); !errors.Is(err, ErrMissingKey) {
		t.Errorf("the committed volume does not count: %v", err)
	}
}

func TestReplicasShareTheStore(t *testing.T) { testReplicasShareTheStore(t, newFakeStore()) }

func testReplicasShareTheStore(t *testing.T, st txStore) {
	r1, r2 := newEnv(t, st), newEnv(t, st)
	a := r1.mustCreate("a", area(0))
	_, err := r2.create("b", area(0))
	if got, want := missingIDs(t, err), refs(a); !slices.Equal(got, want) {
		t.Errorf("replica 2 missing %v, want %v", got, want)
	}
	b := r2.mustCreate("b", area(0), keyOf(a)...)
	r3 := newEnv(t, st)
	got, err := r3.reg.Query("x", nil, Extent{LowerM: -1e6, UpperM: 1e6, From: t0.Add(-time.Hour), To: t0.Add(2 * time.Hour)})
	if err != nil || len(got) != 2 {
		t.Fatalf("loaded registry sees %d volumes (%v)", len(got), err)
	}
	if _, err := r1.update("a", a, area(0)); !errors.Is(err, ErrMissingKey) {
		t.Errorf("replica 1 did not catch up with b (%s): %v", b.ID, err)
	}
}

func TestQueryGetAndDetails(t *testing.T) {
	e := newEnv(t, newFakeStore())
	a := e.mustCreate("a", area(0))
	far := e.mustCreate("b", area(10))
	full, err := e.reg.Get("a", a.ID)
	if err != nil || string(full.Details) != string(area(0).Details) {
		t.Errorf("owner gets details %s (%v)", full.Details, err)
	}
	if red, _ := e.reg.Get("b", a.ID); red.Details != nil {
		t.Error("another party sees the details")
	}
	if _, err := e.reg.Get("a", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	bbox := polygon([2]float64{39.5, 29.5}, [2]float64{40.5, 29.5}, [2]float64{40.5, 30.5}, [2]float64{39.5, 30.5})
	got, err := e.reg.Query("b", &bbox, Extent{LowerM: 0, UpperM: 5000, From: t0, To: t0.Add(time.Minute)})
	if err != nil || len(got) != 1 || got[0].ID != a.ID || got[0].Details != nil {
		t.Errorf("query near a: %+v (%v)", got, err)
	}
	if got, _ := e.reg.Query("b", &bbox, Extent{LowerM: 3000, UpperM: 5000, From: t0, To: t0.Add(time.Minute)}); len(got) != 0 {
		t.Errorf("query above the band found %d", len(got))
	}
	all, _ := e.reg.Query("b", nil, Extent{LowerM: 0, UpperM: 5000, From: t0, To: t0.Add(time.Minute)})
	if len(all) != 2 || all[0].ID > all[1].ID || !slices.ContainsFunc(all, func(v Volume) bool { return v.ID == far.ID && v.Details != nil }) {
		t.Errorf("query everywhere: %+v", all)
	}
}

func TestConforms(t *testing.T) {
	e := newEnv(t, newFakeStore())
	in := area(0) // circle of 2 km at (30, 40), 1000-2000 m
	if _, applies := e.reg.Conforms("a", geo.LLA{LatDeg: 30, LonDeg: 40, AltM: 1500}, t0.Add(time.Minute)); applies {
		t.Error("applies without any volume")
	}
	e.mustCreate("a", in)
	lat, lon := destination(30, 40, 45, 1900/meanEarthRadiusM)
	farLat, farLon := destination(30, 40, 45, 2100/meanEarthRadiusM)
	cases := []struct {
		name           string
		lat, lon, altM float64
		at             time.Time
		conf, applies  bool
	}{
		{"inside", lat, lon, 1500, t0.Add(time.Minute), true, true},
		{"outside the circle", farLat, farLon, 1500, t0.Add(time.Minute), false, true},
		{"above the band", lat, lon, 2100, t0.Add(time.Minute), false, true},
		{"before the window", lat, lon, 1500, t0.Add(-time.Minute), false, false},
	}
	for _, c := range cases {
		conf, applies := e.reg.Conforms("a", geo.LLA{LatDeg: c.lat, LonDeg: c.lon, AltM: c.altM}, c.at)
		if conf != c.conf || applies != c.applies {
			t.Errorf("%s: conforming %v applies %v, want %v %v", c.name, conf, applies, c.conf, c.applies)
		}
	}
	if _, applies := e.reg.Conforms("b", geo.LLA{LatDeg: lat, LonDeg: lon, AltM: 1500}, t0.Add(time.Minute)); applies {
		t.Error("another party's volume applies")
	}
}

// hammer runs writers goroutines, spread over the replicas, of several parties creating and updating
// overlapping volumes through the registry, each retrying with the
// conflicts it learns from refusals, as a client does.
func hammer(t testing.TB, replicas []*env, writers, opsEach int) (ok, refused int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := replicas[g%len(replicas)]
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			party := fmt.Sprintf("p%d", g%4)
			var mine []Volume
			for op := 0; op < opsEach; op++ {
				lat, lon := destination(35, 36, rng.Float64()*360, rng.Float64()*15_000/meanEarthRadiusM)
				lo := float64(rng.IntN(10)) * 300
				start := t0.Add(time.Duration(rng.IntN(120)) * time.Minute)
				in := input(circle(lat, lon, 300+rng.Float64()*2000), lo, lo+300+rng.Float64()*600, start, start.Add(time.Duration(10+rng.IntN(90))*time.Minute))
				in.Priority = rng.IntN(3)
				if rng.IntN(4) == 0 {
					in.State = Activated
				}
				var key []KeyEntry
				var res Result
				var err error
				for try := 0; try < 4; try++ {
					if len(mine) > 0 && rng.IntN(2) == 0 {
						i := rng.IntN(len(mine))
						upd := in
						if upd.State == Accepted {
							upd.State = "" // keep the current state
						}
						res, err = e.update(party, mine[i], upd, key...)
						if err == nil {
							mine[i] = res.Volume
						}
					} else {
						res, err = e.create(party, in, key...)
						if err == nil {
							mine = append(mine, res.Volume)
						}
					}
					var mk *MissingKeyError
					if !errors.As(err, &mk) {
						break
					}
					for _, m := range mk.Missing {
						key = append(key, KeyEntry{ID: m.ID, Version: m.Version})
					}
				}
				mu.Lock()
				if err == nil {
					ok++
				} else {
					refused++
				}
				mu.Unlock()
				switch {
				case err == nil, errors.Is(err, ErrMissingKey), errors.Is(err, ErrHigherPriority),
					errors.Is(err, ErrActivatedConflict), errors.Is(err, ErrStaleVersion):
				default:
					t.Errorf("writer %d: unexpected error %v", g, err)
				}
			}
		}()
	}
	wg.Wait()
	return ok, refused
}

// checkNoHiddenConflict asserts that every pair of committed live volumes
// that conflict was announced to both parties with a volume_conflict event,
// and that the later of the two was not committed activated.
func checkNoHiddenConflict(t testing.TB, e *env) (pairs int) {
	vs, evs := e.stored()
	told := map[[2]string]bool{}
	for _, ev := range evs {
		if ev.Kind != "volume_conflict" {
			continue
		}
		var d ConflictData
		if err := json.Unmarshal(ev.Body, &d); err != nil || len(d.Volumes) != 2 {
			t.Fatalf("bad volume_conflict body %s", ev.Body)
		}
		a, b := d.Volumes[0], d.Volumes[1]
		if slices.Contains(ev.Audience, a.Party) && slices.Contains(ev.Audience, b.Party) {
			told[[2]string{a.ID, b.ID}], told[[2]string{b.ID, a.ID}] = true, true
		}
	}
	for i, a := range vs {
		for _, b := range vs[i+1:] {
			if !Conflict(*a, *b, e.rl) {
				continue
			}
			pairs++
			if !told[[2]string{a.ID, b.ID}] {
				t.Errorf("volumes %s (%s) and %s (%s) conflict and nobody was told", a.ID, a.Party, b.ID, b.Party)
			}
			later := a
			if b.ChangeSeq > a.ChangeSeq {
				later = b
			}
			if later.State == Activated {
				t.Errorf("volume %s was committed activated over a conflict", later.ID)
			}
		}
	}
	return pairs
}

func TestConcurrentWritersNeverHideConflicts(t *testing.T) {
	testConcurrentWritersNeverHideConflicts(t, newFakeStore())
}

func testConcurrentWritersNeverHideConflicts(t *testing.T, st txStore) {
	e := newEnv(t, st)
	// Two registries on one store, as two replicas of the service.
	ok, refused := hammer(t, []*env{e, newEnv(t, st)}, 64, 8)
	pairs := checkNoHiddenConflict(t, e)
	t.Logf("%d writes committed, %d refused, %d conflicting pairs, all announced", ok, refused, pairs)
	if ok == 0 || pairs == 0 {
		t.Fatalf("the test exercised nothing: %d committed, %d conflicting pairs", ok, pairs)
	}
}

// A new version of the rules with a wider separation applies at once: the
// index is rebuilt for it.
func TestRulesChangeRebuildsIndex(t *testing.T) {
	e := newEnv(t, newFakeStore())
	a := e.mustCreate("a", area(0))
	gapM := havAngle(30, 40, 31, 40)*meanEarthRadiusM - 2*2000
	if res := e.mustCreate("b", area(1)); len(res.Conflicts) != 0 {
		t.Fatalf("volumes %.0f m apart conflict under the default rules", gapM)
	}
	e.rl.Version++
	e.rl.HorizontalSepM = 1.1 * gapM
	_, err := e.create("b", area(1))
	if got, want := missingIDs(t, err), refs(a); !slices.Equal(got, want) {
		t.Errorf("after widening the separation: missing %v, want %v", got, want)
	}
}

// A replica's reads see another replica's writes after a Sync.
func TestSyncShowsOtherReplicasWrites(t *testing.T) {
	st := newFakeStore()
	r1, r2 := newEnv(t, st), newEnv(t, st)
	a := r1.mustCreate("a", area(0))
	if _, err := r2.reg.Get("a", a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replica 2 sees %s before syncing: %v", a.ID, err)
	}
	if err := st.View(context.Background(), func(tx volumeTx) error { return r2.reg.Sync(tx) }); err != nil {
		t.Fatal(err)
	}
	if v, err := r2.reg.Get("b", a.ID); err != nil || v.Version != a.Version || v.Details != nil {
		t.Errorf("after Sync replica 2 has %+v (%v)", v, err)
	}
}

// A state change by another party is refused for the owner before
// anything of the volume is checked: its priority, above the caller's
// grant, would otherwise be refused naming the priority, telling the
// caller what the volume holds.
func TestSetStateChecksOwnerFirst(t *testing.T) {
	e := newEnv(t, newFakeStore())
	e.rl.PriorityMax = map[string]int{"a": 3}
	in := area(0)
	in.Priority = 3
	v := e.mustCreate("a", in)
	for _, to := range []State{Accepted, Activated, Ended, Cancelled} {
		if _, err := e.setState("b", v, to); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s by another party: %v, want %v", to, err, ErrForbidden)
		}
	}
}

// TestStoredBandWithoutHeightStillChangesState: a band without height is
// refused on a write, but a volume stored with one before it was refused
// is still ended or cancelled by its owner, and no new rules flag it for
// it (it breaks no rule; the check is not the rules').
func TestStoredBandWithoutHeightStillChangesState(t *testing.T) {
	e := newEnv(t, newFakeStore())
	flat := area(0)
	flat.AltUpperM = flat.AltLowerM
	if _, err := e.create("a", flat); fieldOf(err) != "alt_upper_m" {
		t.Fatalf("a new band without height: %v", err)
	}
	old := flat
	old.storedBand = true // as written before such bands were refused
	v := e.mustCreate("a", old)
	if fe := v.Breaks(e.rl); fe != nil {
		t.Fatalf("the stored volume is flagged: %v", fe)
	}
	if _, err := e.setState("a", v, Cancelled); err != nil {
		t.Fatalf("cancelling the stored volume without height: %v", err)
	}
}

// A state change of another party's volume is refused before the stored
// volume is decoded: decoding compiles its footprint (13 ms for a
// corridor of 1,000 positions), work the party asking would make for a request
// its budget of volume writes counts as one without a footprint. Here the
// stored body cannot be decoded: the refusal is the owner's, not the
// decoding's error.
func TestSetStateOfAnotherPartysVolumeDecodesNothing(t *testing.T) {
	fs := newFakeStore()
	e := newEnv(t, fs)
	v := e.mustCreate("b", input(circle(35, 36, 2000), 1000, 2000, t0, t0.Add(time.Hour)))
	fs.mu.Lock()
	rec := fs.state.volumes[v.ID]
	rec.Body = []byte("{")
	fs.state.volumes[v.ID] = rec
	fs.mu.Unlock()
	if _, err := e.setState("a", v, Cancelled); !errors.Is(err, ErrForbidden) {
		t.Fatalf("another party's state change: %v, want ErrForbidden before decoding", err)
	}
}
