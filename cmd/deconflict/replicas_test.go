package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// startReplica runs `deconflict serve` on the shared PostgreSQL at url.
// The replicas share the data directory for the audit signing key.
func startReplica(t *testing.T, bin, data, url string) *serverProc {
	t.Helper()
	return startServe(t, bin, 60*time.Second, "--store", url, "--data", data, "--log-level", "warn")
}

// shownID is the id the client of party (the operator's for "") is shown
// of want[i], the party's i-th event in the store: the store's global id
// for the operator, the party's own number for a party (a fresh store:
// no base).
func shownID(party string, want []store.Event, i int) int64 {
	if party == "" {
		return want[i].ID
	}
	return int64(i + 1)
}

// checkFollowed fails unless got, what the client of party was sent, is
// want, the party's events in the store, in order, each under the id
// shownID, with the same kind and data.
func checkFollowed(t *testing.T, party string, got []sseEvent, want []store.Event, what string) {
	t.Helper()
	if len(got) > len(want) {
		t.Fatalf("client of %q saw %d events, the store holds %d for it", party, len(got), len(want))
	}
	for i := range got {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(got[i].Data, &env)
		if got[i].ID != shownID(party, want, i) || got[i].Kind != want[i].Kind || !bytes.Equal(env.Data, want[i].Body) {
			t.Fatalf("client of %q: event %d is %d %s, the store has %s %d shown as %d (gap, duplicate or disorder %s)",
				party, i, got[i].ID, got[i].Kind, want[i].Kind, want[i].ID, shownID(party, want, i), what)
		}
	}
}

// follower is one client's event stream that fails over between replicas:
// when its stream ends or cannot connect, it resumes on the next replica
// with Last-Event-ID.
type follower struct {
	token string
	mu    sync.Mutex
	bases []string
	cur   int
	seen  []sseEvent
	note  chan struct{}
}

func newFollower(token string, bases ...string) *follower {
	return &follower{token: token, bases: bases, note: make(chan struct{}, 1)}
}

func (f *follower) run(ctx context.Context) {
	client := &http.Client{}
	for ctx.Err() == nil {
		f.mu.Lock()
		base := f.bases[f.cur]
		var after int64
		if len(f.seen) > 0 {
			after = f.seen[len(f.seen)-1].ID
		}
		f.mu.Unlock()
		resp, err := getEvents(ctx, client, base, f.token, after)
		if err == nil && resp.StatusCode != 200 {
			resp.Body.Close()
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if err != nil {
			f.mu.Lock()
			f.cur = (f.cur + 1) % len(f.bases)
			f.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		readEvents(resp.Body, func(ev sseEvent) {
			f.mu.Lock()
			f.seen = append(f.seen, ev)
			f.mu.Unlock()
			select {
			case f.note <- struct{}{}:
			default:
			}
		})
		resp.Body.Close()
	}
}

func (f *follower) events() []sseEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// waitFor waits until cond holds over the events seen, failing with what
// after a generous time (the machine may be loaded).
func (f *follower) waitFor(t *testing.T, what string, limit time.Duration, cond func([]sseEvent) bool) {
	t.Helper()
	deadline := time.After(limit)
	for !cond(f.events()) {
		select {
		case <-f.note:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			evs := f.events()
			t.Fatalf("after %v still waiting for %s (%d events seen)", limit, what, len(evs))
		}
	}
}

// raisedFor reports whether evs hold an alert_raised of a conflict between
// the two aircraft.
func raisedFor(evs []sseEvent, a, b string) bool {
	for _, e := range evs {
		if e.Kind != "alert_raised" {
			continue
		}
		var env struct {
			Data struct {
				Aircraft []struct{ Aircraft string }
			}
		}
		if json.Unmarshal(e.Data, &env) != nil {
			continue
		}
		var names []string
		for _, ac := range env.Data.Aircraft {
			names = append(names, ac.Aircraft)
		}
		if slices.Contains(names, a) && slices.Contains(names, b) {
			return true
		}
	}
	return false
}

// headOn sends the reports of two aircraft of different parties 22 km apart
// closing at 400 m/s at the same altitude: a conflict within a minute.
func headOn(t *testing.T, client *http.Client, baseA, tokenA, acA, baseB, tokenB, acB string, latDeg float64) {
	t.Helper()
	now := time.Now().UTC()
	send := func(base, token, ac string, lon, ve float64) {
		body := map[string]any{"reports": []any{map[string]any{"aircraft": ac, "time": now,
			"lat": latDeg, "lon": lon, "alt_m": 6000, "vel_east_mps": ve}}}
		for attempt := 0; ; attempt++ {
			code, b, err := do(client, "POST", base+"/v1/positions", token, body)
			if err == nil && code == 202 {
				return
			}
			if attempt == 20 {
				t.Fatalf("positions of %s to %s: %d %s %v", ac, base, code, b, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	send(baseA, tokenA, acA, 10, 200)
	send(baseB, tokenB, acB, 10.2, -200)
}

// TestTwoReplicasOnPostgres runs two real replicas on one PostgreSQL:
// positions sent to one raise alerts seen by clients of the other; volumes
// written through both at once never both commit in conflict; under load
// the leader is killed with SIGKILL, the clients resume on the survivor
// with Last-Event-ID, which takes over detection; every write answered 2xx
// is in the store, and each party's client saw exactly the party's events
// of the store, in order, with no gap or duplicate across the failover.
func TestTwoReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary on PostgreSQL")
	}
	url := pgtest.NewDatabase(t)
	bin := buildBinary(t)
	data := t.TempDir()
	tokens := map[string]string{}
	for _, p := range []string{"coalition", "russia"} {
		tokens[p] = lastLine(runCLI(t, bin, "party", "add", p, "--store", url, "--data", data))
	}
	operator := lastLine(runCLI(t, bin, "party", "add", "operator", "--operator", "--store", url, "--data", data))

	a := startReplica(t, bin, data, url)
	b := startReplica(t, bin, data, url)
	client := &http.Client{Timeout: 20 * time.Second}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	coalition := newFollower(tokens["coalition"], a.base, b.base)
	russia := newFollower(tokens["russia"], b.base, a.base)
	op := newFollower(operator, b.base, a.base)
	var swg sync.WaitGroup
	for _, f := range []*follower{coalition, russia, op} {
		swg.Add(1)
		go func() {
			defer swg.Done()
			f.run(ctx)
		}()
	}

	// Both aircraft reported to replica a: russia's client on b sees the alert.
	headOn(t, client, a.base, tokens["coalition"], "C-1", a.base, tokens["russia"], "R-1", -10)
	russia.waitFor(t, "russia's client on b to see the alert of C-1/R-1 reported to a", 60*time.Second,
		func(evs []sseEvent) bool { return raisedFor(evs, "C-1", "R-1") })
	// One aircraft reported to each replica: the relay joins them.
	headOn(t, client, a.base, tokens["coalition"], "C-2", b.base, tokens["russia"], "R-2", -11)
	for _, f := range []*follower{coalition, russia} {
		f.waitFor(t, "the alert of C-2 (to a) and R-2 (to b)", 60*time.Second,
			func(evs []sseEvent) bool { return raisedFor(evs, "C-2", "R-2") })
	}

	led := newLedger()
	raceVolumes(t, client, a.base, b.base, tokens, led)

	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The replica killed below is the one that holds the detection lease,
	// whichever that is: the failover of detection is what is tested.
	leader, survivor := detectionLeader(t, st, a, b)

	// Load through both replicas; a writer whose replica died moves on.
	var (
		wmu  sync.Mutex
		n    int64
		dead = map[string]bool{}
	)
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w, start := range []struct{ party, base string }{
		{"coalition", a.base}, {"russia", a.base}, {"coalition", b.base}, {"russia", b.base},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := start.base
			for wctx.Err() == nil {
				wmu.Lock()
				n++
				i := n
				if dead[base] {
					base = survivor.base
				}
				wmu.Unlock()
				if !postVolume(client, base, tokens[start.party], i, w, led) {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				otherWrites(client, base, tokens, start.party, i, led)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	if got, _ := detectionLeader(t, st, a, b); got != leader {
		t.Fatal("the detection lease changed hands under load, before the leader was killed")
	}
	leader.kill()
	wmu.Lock()
	dead[leader.base] = true
	wmu.Unlock()
	// The survivor takes over detection once the lease lapses: both
	// parties see the alert of a new encounter reported to it.
	headOn(t, client, survivor.base, tokens["coalition"], "C-3", survivor.base, tokens["russia"], "R-3", -12)
	for _, f := range []*follower{coalition, russia} {
		f.waitFor(t, "the alert of C-3/R-3 after the leader was killed", 90*time.Second,
			func(evs []sseEvent) bool { return raisedFor(evs, "C-3", "R-3") })
	}
	stopWriters()
	wg.Wait()

	var last int64
	wantFor := map[string][]store.Event{}
	// The clients catch up with the store.
	for _, c := range []struct {
		party string
		f     *follower
	}{{"coalition", coalition}, {"russia", russia}, {"", op}} {
		var want []store.Event
		err := st.View(context.Background(), func(tx store.Tx) error {
			var err error
			last, err = tx.LastEventID()
			if err != nil {
				return err
			}
			if c.party == "" {
				want, err = tx.EventsAfter(0, int(last)+1)
			} else {
				want, err = store.EventsAfterFor(tx, c.party, 0, int(last)+1)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		wantFor[c.party] = want
		c.f.waitFor(t, fmt.Sprintf("the client of %q to reach the store's last event %d", c.party, want[len(want)-1].ID), 60*time.Second,
			func(evs []sseEvent) bool {
				return len(evs) > 0 && evs[len(evs)-1].ID >= shownID(c.party, want, len(want)-1)
			})
		got := c.f.events()
		checkFollowed(t, c.party, got[:min(len(got), len(want))], want, "across the failover")
		if len(got) < len(want) {
			t.Fatalf("client of %q saw %d events, the store holds %d for it", c.party, len(got), len(want))
		}
	}
	for i, e := range wantFor[""] {
		if e.ID != int64(i+1) {
			t.Fatalf("stored event %d has id %d: ids are not gap-free", i+1, e.ID)
		}
	}
	// The events concerning both parties reached both clients in the same
	// order, whichever replica each was connected to: each under its own
	// id, matched here by the store's id of the event each client was
	// shown at that place.
	followers := map[string]*follower{"coalition": coalition, "russia": russia}
	common := func(party string, other []store.Event) []int64 {
		ids := map[int64]bool{}
		for _, e := range other {
			ids[e.ID] = true
		}
		var out []int64
		for _, e := range wantFor[party][:min(len(wantFor[party]), len(followers[party].events()))] {
			if ids[e.ID] {
				out = append(out, e.ID)
			}
		}
		return out
	}
	if c, r := common("coalition", wantFor["russia"]), common("russia", wantFor["coalition"]); !slices.Equal(c, r) {
		t.Fatalf("the events shared by both parties differ between their clients: %d vs %d", len(c), len(r))
	}
	// One alert, one raise for each of its parties (an event each, with
	// its resolution): the detection lease kept the replicas from both
	// writing the transitions of one conflict.
	raised := map[string]int{}
	alerts := 0
	for _, e := range wantFor[""] {
		if e.Kind != "alert_raised" {
			continue
		}
		var a struct{ ID string }
		if err := json.Unmarshal(e.Body, &a); err != nil {
			t.Fatal(err)
		}
		to := a.ID + " to " + strings.Join(e.Audience, ",")
		raised[to]++
		alerts++
		if raised[to] > 1 {
			t.Fatalf("alert %s raised %d times", to, raised[to])
		}
	}
	err = st.View(context.Background(), func(tx store.Tx) error { return led.verify(tx) })
	if err != nil {
		t.Fatal(err)
	}
	if len(led.volumes) == 0 || len(led.messages) == 0 {
		t.Fatal("no write succeeded under load: the test proved nothing")
	}
	// The subcommands work on the shared store too: the audit chain that
	// both replicas appended to exports and verifies as one.
	exported := filepath.Join(t.TempDir(), "audit.jsonl")
	runCLI(t, bin, "audit", "export", "--store", url, "--data", data, "--out", exported)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal([]byte(lastLine(runCLI(t, bin, "audit", "key", "--data", data))), &key); err != nil {
		t.Fatal(err)
	}
	t.Log(lastLine(runCLI(t, bin, "audit", "verify", exported, "--key", key.PublicKey)))
	cancel()
	swg.Wait()

	// A clean stop hands the detection lease over at once.
	survivor.stop(t, 30*time.Second)
	err = st.View(context.Background(), func(tx store.Tx) error {
		raw, err := tx.GetMeta("lease/detect")
		if err != nil {
			return err
		}
		var l struct{ Holder string }
		if err := json.Unmarshal(raw, &l); err != nil {
			return err
		}
		if l.Holder != "" {
			return fmt.Errorf("the detection lease is still held by %q after the last replica stopped cleanly", l.Holder)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("answered 2xx and present: %d volumes, %d messages, %d acknowledgments; %d events without a gap, %d alerts raised once each",
		len(led.volumes), len(led.messages), len(led.acks), last, alerts)
}

// detectionLeader returns the replica that holds the detection lease (its
// holder's name carries the process id) and the other one, waiting for the
// lease to be taken; the limit only guards against a hang.
func detectionLeader(t *testing.T, st store.Store, a, b *serverProc) (leader, other *serverProc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var holder string
		err := st.View(context.Background(), func(tx store.Tx) error {
			raw, err := tx.GetMeta("lease/detect")
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			var l struct{ Holder string }
			if err := json.Unmarshal(raw, &l); err != nil {
				return err
			}
			holder = l.Holder
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range [][2]*serverProc{{a, b}, {b, a}} {
			if strings.Contains(holder, fmt.Sprintf("-%d-", c[0].cmd.Process.Pid)) {
				return c[0], c[1]
			}
		}
		if holder != "" {
			t.Fatalf("the detection lease is held by %q, neither replica (pids %d, %d)", holder, a.cmd.Process.Pid, b.cmd.Process.Pid)
		}
		if time.Now().After(deadline) {
			t.Fatal("no replica took the detection lease")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// raceVolumes has the two parties declare the same airspace at the same
// instant, each through its own replica, without an awareness key: in every
// round exactly one volume commits, and the other is refused naming it.
func raceVolumes(t *testing.T, client *http.Client, baseA, baseB string, tokens map[string]string, led *ledger) {
	t.Helper()
	type answer struct {
		code int
		body []byte
		err  error
	}
	for round := range 8 {
		now := time.Now().UTC()
		body := map[string]any{
			"footprint":   map[string]any{"type": "Circle", "center": []float64{100 + float64(round), 50}, "radius_m": 5000},
			"alt_lower_m": 1000, "alt_upper_m": 3000, "start": now, "end": now.Add(time.Hour),
		}
		var answers [2]answer
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, w := range []struct{ party, base string }{{"coalition", baseA}, {"russia", baseB}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// A server error (a transaction that gave up on its
				// retries under load) is asked again: the answer that
				// counts is the first 201 or 409.
				for attempt := 0; ; attempt++ {
					code, b, err := do(client, "POST", w.base+"/v1/volumes", tokens[w.party], body)
					answers[i] = answer{code, b, err}
					if (err == nil && code < 500) || attempt == 5 {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
		close(start)
		wg.Wait()
		var created []string
		for i, an := range answers {
			if an.err != nil {
				t.Fatalf("round %d, writer %d: %v", round, i, an.err)
			}
			if an.code == 201 {
				var v struct{ ID, Version string }
				if err := json.Unmarshal(an.body, &v); err != nil {
					t.Fatal(err)
				}
				created = append(created, v.ID)
				led.mu.Lock()
				led.volumes[v.ID] = v.Version
				led.mu.Unlock()
			}
		}
		if len(created) != 1 {
			t.Fatalf("round %d: %d of two conflicting volumes written at once through two replicas were created (%d %s / %d %s)",
				round, len(created), answers[0].code, answers[0].body, answers[1].code, answers[1].body)
		}
		for _, an := range answers {
			if an.code == 201 {
				continue
			}
			var p struct{ Missing []struct{ ID string } }
			if an.code != 409 || json.Unmarshal(an.body, &p) != nil || len(p.Missing) != 1 || p.Missing[0].ID != created[0] {
				t.Fatalf("round %d: the refused writer got %d %s, want 409 naming %s", round, an.code, an.body, created[0])
			}
		}
	}
}
