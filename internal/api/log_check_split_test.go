package api

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/logcheck"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/witness"
)

// realWitness runs a party's witness (the real implementation) for the log
// of logVKey, named name, and returns it, its state directory (which the
// party's check shares) and its URL.
func realWitness(t *testing.T, name, logVKey string) (*witness.Server, string, string) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	ws, err := witness.NewServer(name, key, dir, []string{logVKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	return ws, dir, srv.URL
}

// notPushed is the URL of a witness the operator does not push to (it
// answers every push 503, as the operator's network would drop it).
func notPushed(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not pushed", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// logKey is the log's key as e serves it.
func logKey(e *env) struct{ Origin, VKey string } {
	var key struct{ Origin, VKey string }
	e.mustDo("GET", "/v1/log/key", e.tokens["coalition"], nil, 200, &key)
	return key
}

// withWitnesses agrees rules naming ws in e and publishes a checkpoint
// (pushed to each).
func withWitnesses(t *testing.T, e *env, ws ...rules.Witness) {
	t.Helper()
	r := e.svc.Rules()
	r.Witnesses = ws
	e.agreeRules(r)
	if err := e.svc.PublishLog(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func wantUncosigned(t *testing.T, what string, err error, party string) *logcheck.Finding {
	t.Helper()
	var f *logcheck.Finding
	if !errors.As(err, &f) || f.Kind != logcheck.Uncosigned {
		t.Fatalf("%s: %v, want an UNCOSIGNED finding", what, err)
	}
	if !strings.Contains(f.What, "the witness of "+party+" ") {
		t.Fatalf("%s: the finding %q does not name the witness of %s", what, f.What, party)
	}
	return f
}

// TestWitnessCheckFindsASplitView: the operator runs two forks of the
// record under the one log key (two stores, one signing key) and shows
// each party its own: coalition's fork is pushed to coalition's witness
// alone, russia's to russia's alone, and the rules of each name both
// witnesses with their real keys. Each fork is consistent, its records
// rebuild its checkpoints, and each is cosigned by the viewer's own
// witness: a check that required only that passed for both parties. Each
// party's check must find its checkpoint not cosigned by the other's
// witness, naming it.
func TestWitnessCheckFindsASplitView(t *testing.T) {
	dataDir := t.TempDir()
	fork := func() *env {
		return newEnvConfig(t, openTestStore(t), Options{}, func(c *service.Config) { c.DataDir = dataDir })
	}
	forkA := fork()
	key := logKey(forkA)
	forkB := fork()
	if got := logKey(forkB); got != key {
		t.Fatalf("the two forks have the log keys %v and %v, want one", key, got)
	}
	cws, cdir, curl := realWitness(t, "coalition.test/witness", key.VKey)
	rws, rdir, rurl := realWitness(t, "russia.test/witness", key.VKey)
	withWitnesses(t, forkA, rules.Witness{Party: "coalition", URL: curl, VKey: cws.VerifierKey()}, rules.Witness{Party: "russia", URL: notPushed(t), VKey: rws.VerifierKey()})
	withWitnesses(t, forkB, rules.Witness{Party: "coalition", URL: notPushed(t), VKey: cws.VerifierKey()}, rules.Witness{Party: "russia", URL: rurl, VKey: rws.VerifierKey()})
	// The forks differ: what each party is told is not what the other is.
	forkA.mustDo("POST", "/v1/hotline/messages", forkA.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "we hold FL200", "thread": "coalition/a"}, 201, nil)
	forkB.mustDo("POST", "/v1/hotline/messages", forkB.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "notice", "text": "we climb to FL200", "thread": "russia/b"}, 201, nil)
	for _, e := range []*env{forkA, forkB} {
		if err := e.svc.PublishLog(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	_, heldA, okA, _ := cws.Latest(key.Origin)
	_, heldB, okB, _ := rws.Latest(key.Origin)
	if !okA || !okB || heldA.Root == heldB.Root {
		t.Fatalf("the witnesses hold %v (%v) and %v (%v): want two different trees", heldA, okA, heldB, okB)
	}
	coalition := &logcheck.Checker{Server: forkA.srv.URL, Token: forkA.tokens["coalition"], Dir: cdir, HTTP: forkA.srv.Client(),
		WitnessKeys: map[string]string{"russia": rws.VerifierKey()}}
	russia := &logcheck.Checker{Server: forkB.srv.URL, Token: forkB.tokens["russia"], Dir: rdir, HTTP: forkB.srv.Client(),
		WitnessKeys: map[string]string{"coalition": cws.VerifierKey()}}
	_, err := coalition.Check(context.Background())
	wantUncosigned(t, "coalition's check of its fork", err, "russia")
	_, err = russia.Check(context.Background())
	wantUncosigned(t, "russia's check of its fork", err, "coalition")
}

// TestWitnessCheckRefusesAForgedWitnessKey: the operator serves rules
// naming, for russia's witness, a key of its own under the witness's name,
// and cosigns every checkpoint with it. Coalition pinned russia's real
// key: the checkpoint carries no cosignature of russia's witness, and the
// finding says the served key is not the pinned one.
func TestWitnessCheckRefusesAForgedWitnessKey(t *testing.T) {
	e := newEnv(t, Options{})
	key := logKey(e)
	cws, cdir, curl := realWitness(t, "coalition.test/witness", key.VKey)
	forged, _, furl := realWitness(t, "russia.test/witness", key.VKey)
	real, _, _ := realWitness(t, "russia.test/witness", key.VKey)
	withWitnesses(t, e, rules.Witness{Party: "coalition", URL: curl, VKey: cws.VerifierKey()}, rules.Witness{Party: "russia", URL: furl, VKey: forged.VerifierKey()})
	if _, _, ok, _ := forged.Latest(key.Origin); !ok {
		t.Fatal("the operator's witness cosigned nothing")
	}
	c := &logcheck.Checker{Server: e.srv.URL, Token: e.tokens["coalition"], Dir: cdir, HTTP: e.srv.Client(),
		WitnessKeys: map[string]string{"russia": real.VerifierKey()}}
	_, err := c.Check(context.Background())
	f := wantUncosigned(t, "a checkpoint cosigned under a key the operator serves for russia's witness", err, "russia")
	if !strings.Contains(f.What, forged.VerifierKey()) || !strings.Contains(f.What, "not the one pinned") {
		t.Errorf("the finding %q does not say the served key %s is not the pinned one", f.What, forged.VerifierKey())
	}
	// The key served for russia's witness: used, the forgery passed.
	c.WitnessKeys = map[string]string{"russia": forged.VerifierKey()}
	if _, err := c.Check(context.Background()); err != nil {
		t.Fatalf("pinned as served, the key cosigns: %v", err)
	}
}

// TestWitnessCheckNeedsEveryNamedWitnessPinned: rules that name a
// witness whose key the party did not pin cannot be checked: the check
// fails (no key served by the operator is taken), naming the party.
func TestWitnessCheckNeedsEveryNamedWitnessPinned(t *testing.T) {
	l := newWitnessedLog(t)
	c := l.checker(l.e.srv)
	c.WitnessKeys = nil
	_, err := c.Check(context.Background())
	var f *logcheck.Finding
	if err == nil || errors.As(err, &f) || !strings.Contains(err.Error(), "the witness of russia, whose key this party has not pinned") {
		t.Fatalf("rules naming russia's witness, its key not pinned: %v, want a failure to check naming russia", err)
	}
}

// TestWitnessCheckAllowsASlowWitnessItsAge: russia's witness stops
// answering (slow, or down) while the log grows. Within witness_max_age_s
// of its latest cosignature of a checkpoint the newest extends, the check
// passes, saying so; beyond, it is an UNCOSIGNED finding naming it.
func TestWitnessCheckAllowsASlowWitnessItsAge(t *testing.T) {
	l := newWitnessedLog(t)
	ctx := context.Background()
	c := l.checker(l.e.srv)
	first, err := c.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Others) != 1 || first.Others[0].Party != "russia" || first.Others[0].Graced {
		t.Fatalf("both witnesses cosigned: the check found %+v, want russia's on the checkpoint", first.Others)
	}
	russiaAt := first.Others[0].CosignedAt
	l.russiaDown.Store(true)
	// Cosignatures are dated to the second: coalition's next one is
	// dated at least a second after russia's last.
	time.Sleep(2100 * time.Millisecond)
	l.write("t")
	if err := l.e.svc.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	within, err := c.Check(ctx)
	if err != nil {
		t.Fatalf("russia's witness a few seconds behind: %v", err)
	}
	if within.Size <= first.Size || len(within.Others) != 1 || !within.Others[0].Graced || within.Others[0].Size != first.Size {
		t.Fatalf("russia's witness behind: verified size %d (before %d), others %+v; want it allowed on size %d", within.Size, first.Size, within.Others, first.Size)
	}
	if !within.CosignedAt.After(russiaAt) {
		t.Fatalf("coalition's witness cosigned at %v, not after russia's %v", within.CosignedAt, russiaAt)
	}
	// Just past russia's age, still within coalition's.
	maxAge := time.Duration(l.e.svc.Rules().WitnessMaxAgeS * float64(time.Second))
	c.Now = func() time.Time { return russiaAt.Add(maxAge + 500*time.Millisecond) }
	_, err = c.Check(ctx)
	wantUncosigned(t, "russia's witness silent for longer than witness_max_age_s", err, "russia")
}
