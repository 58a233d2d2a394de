package api

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/logcheck"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/witness"
)

// TestWitnessCheckWhileAPushIsInFlight: the log pushes a new checkpoint to
// every witness at once and publishes it with the cosignatures once all
// have answered. While russia's witness holds the push, coalition's has
// already cosigned the new checkpoint and the log still publishes the
// previous one: coalition's check run then sees a published checkpoint
// older than the one its witness holds. That is a push in flight, not a
// log that lost records: the check passes (and its witness goes on
// cosigning), before, during and after the push.
func TestWitnessCheckWhileAPushIsInFlight(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var key struct{ Origin, VKey string }
	e.mustDo("GET", "/v1/log/key", e.tokens["coalition"], nil, 200, &key)
	_, wpriv, _ := ed25519.GenerateKey(nil)
	wdir := t.TempDir()
	ws, err := witness.NewServer("coalition.test/witness", wpriv, wdir, []string{key.VKey})
	if err != nil {
		t.Fatal(err)
	}
	good := httptest.NewServer(ws)
	defer good.Close()
	_, russiaKey, _ := witness.CosignerKeys("russia.test/witness", wpriv)
	var hold atomic.Bool
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() {
			select {
			case arrived <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		http.Error(w, "not now", http.StatusServiceUnavailable)
	}))
	defer slow.Close()
	// Whatever happens, the held push is let go before the server closes.
	letGo := sync.OnceFunc(func() { close(release) })
	defer letGo()
	r := e.svc.Rules()
	r.Witnesses = []rules.Witness{{Party: "coalition", URL: good.URL, VKey: ws.VerifierKey()}, {Party: "russia", URL: slow.URL, VKey: russiaKey}}
	e.agreeRules(r)
	if err := e.svc.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	checker := &logcheck.Checker{Server: e.srv.URL, Token: e.tokens["coalition"], Dir: wdir, HTTP: e.srv.Client()}
	check := func(when string) logcheck.Result {
		t.Helper()
		res, err := checker.Check(ctx)
		var f *logcheck.Finding
		if errors.As(err, &f) {
			t.Fatalf("%s: a false finding: %v", when, f)
		}
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		return res
	}
	first := check("before the push")

	for i := range 3 {
		e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "msg", "thread": "coalition/t" + string(rune('a'+i))}, 201, nil)
	}
	hold.Store(true)
	published := make(chan error, 1)
	go func() { published <- e.svc.PublishLog(ctx) }()
	<-arrived
	// Coalition's witness answers at once: wait until it holds the new
	// checkpoint.
	for {
		_, held, ok, err := ws.Latest(key.Origin)
		if err != nil {
			t.Fatal(err)
		}
		if ok && held.Size > first.Size {
			break
		}
		time.Sleep(time.Millisecond)
	}
	during := check("during the push")
	if during.Size <= first.Size {
		t.Fatalf("during the push the check verified size %d, no more than before (%d)", during.Size, first.Size)
	}
	letGo()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if after := check("after the push"); after.Size != during.Size {
		t.Fatalf("after the push the check verified size %d, during it %d", after.Size, during.Size)
	}
}

// TestWitnessCheckFindsAnOlderCheckpointTheLogCannotProve: the published
// checkpoint is older than the one the party's witness cosigned, and the
// log answers the consistency proof that would show a push in flight with
// something that is no proof (a hostile operator who restored an older
// copy of the record hides it so). The server answered: that is a finding
// (INCONSISTENT, the witness withholds), not a failure to reach the
// server, which reports nothing and, returning before the staleness
// check, would never report STALE either.
func TestWitnessCheckFindsAnOlderCheckpointTheLogCannotProve(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		late   bool   // the check runs after witness_max_age
		want   string // the finding's kind; "": a failure to check
	}{
		{"no proof", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"proof":["not a hash"]}`))
		}, false, logcheck.Inconsistent},
		{"not found", func(w http.ResponseWriter) { http.Error(w, "no tree of that size", http.StatusNotFound) }, false, logcheck.Inconsistent},
		// The party's own rate limit, or a server that is busy, says
		// nothing of the log: a failure to check, not a finding (which
		// has the witness withhold its cosignatures from every party).
		{"rate limited", func(w http.ResponseWriter) { http.Error(w, "too many requests", http.StatusTooManyRequests) }, false, ""},
		{"unavailable", func(w http.ResponseWriter) { http.Error(w, "timeout", http.StatusServiceUnavailable) }, false, ""},
		// A log that never proves it (a hostile operator's older copy
		// behind answers that are never a proof) is STALE in the end.
		{"unavailable for longer than witness_max_age", func(w http.ResponseWriter) { http.Error(w, "timeout", http.StatusServiceUnavailable) }, true, logcheck.Stale},
	} {
		t.Run(tc.name, func(t *testing.T) { checkOlderCheckpointAnswered(t, tc.answer, tc.late, tc.want) })
	}
}

// checkOlderCheckpointAnswered runs the party's check while a push is in
// flight (the published checkpoint older than the witness's), the
// consistency proof answered by answer (late: after witness_max_age), and
// checks that it reports a finding of kind want, or ("") a failure to
// check.
func checkOlderCheckpointAnswered(t *testing.T, answer func(http.ResponseWriter), late bool, want string) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var key struct{ Origin, VKey string }
	e.mustDo("GET", "/v1/log/key", e.tokens["coalition"], nil, 200, &key)
	_, wpriv, _ := ed25519.GenerateKey(nil)
	wdir := t.TempDir()
	ws, err := witness.NewServer("coalition.test/witness", wpriv, wdir, []string{key.VKey})
	if err != nil {
		t.Fatal(err)
	}
	good := httptest.NewServer(ws)
	defer good.Close()
	_, russiaKey, _ := witness.CosignerKeys("russia.test/witness", wpriv)
	var hold atomic.Bool
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() {
			select {
			case arrived <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		http.Error(w, "not now", http.StatusServiceUnavailable)
	}))
	defer slow.Close()
	letGo := sync.OnceFunc(func() { close(release) })
	defer letGo()
	r := e.svc.Rules()
	r.Witnesses = []rules.Witness{{Party: "coalition", URL: good.URL, VKey: ws.VerifierKey()}, {Party: "russia", URL: slow.URL, VKey: russiaKey}}
	e.agreeRules(r)
	if err := e.svc.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	// The log as the party sees it: every answer the server's, but the
	// consistency proofs, which are no proofs.
	target, _ := url.Parse(e.srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = e.srv.Client().Transport
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/log/proof/consistency" {
			answer(w)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	checker := &logcheck.Checker{Server: front.URL, Token: e.tokens["coalition"], Dir: wdir, HTTP: front.Client()}
	first, err := checker.Check(ctx)
	if err != nil {
		t.Fatalf("before the push: %v", err)
	}
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "msg", "thread": "coalition/t"}, 201, nil)
	hold.Store(true)
	published := make(chan error, 1)
	go func() { published <- e.svc.PublishLog(ctx) }()
	<-arrived
	for {
		_, held, ok, err := ws.Latest(key.Origin)
		if err != nil {
			t.Fatal(err)
		}
		if ok && held.Size > first.Size {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if late {
		maxAge := time.Duration(e.svc.Rules().WitnessMaxAgeS * float64(time.Second))
		checker.Now = func() time.Time { return time.Now().Add(maxAge + time.Minute) }
	}
	_, err = checker.Check(ctx)
	var f *logcheck.Finding
	switch {
	case want != "" && (!errors.As(err, &f) || f.Kind != want):
		t.Errorf("a published checkpoint older than the witness's, the log proving nothing: %v, want a %s finding", err, want)
	case want == "" && (errors.As(err, &f) || err == nil):
		t.Errorf("a published checkpoint older than the witness's, the proof not answered now: %v, want a failure to check", err)
	}
	letGo()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
}

// TestWitnessCheckFindsALaterCheckpointTheLogNeverProves: the log stops
// pushing to the party's witness and publishes later checkpoints, whose
// consistency with the witness's it never proves (the proof not answered).
// The party's check is a failure to check at first, and STALE once the
// witness's last cosignature is older than witness_max_age, not a failure
// to check for ever.
func TestWitnessCheckFindsALaterCheckpointTheLogNeverProves(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var key struct{ Origin, VKey string }
	e.mustDo("GET", "/v1/log/key", e.tokens["coalition"], nil, 200, &key)
	_, wpriv, _ := ed25519.GenerateKey(nil)
	wdir := t.TempDir()
	ws, err := witness.NewServer("coalition.test/witness", wpriv, wdir, []string{key.VKey})
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	wsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		ws.ServeHTTP(w, r)
	}))
	defer wsrv.Close()
	r := e.svc.Rules()
	r.Witnesses = []rules.Witness{{Party: "coalition", URL: wsrv.URL, VKey: ws.VerifierKey()}}
	e.agreeRules(r)
	if err := e.svc.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(e.srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = e.srv.Client().Transport
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/log/proof/consistency" {
			http.Error(w, "timeout", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	checker := &logcheck.Checker{Server: front.URL, Token: e.tokens["coalition"], Dir: wdir, HTTP: front.Client()}
	first, err := checker.Check(ctx)
	if err != nil {
		t.Fatalf("before the witness is left out: %v", err)
	}
	down.Store(true)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "msg", "thread": "coalition/t"}, 201, nil)
	if err := e.svc.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	var published struct{ Size int64 }
	e.mustDo("GET", "/v1/log/witnesses", e.tokens["coalition"], nil, 200, &published)
	var f *logcheck.Finding
	if _, err := checker.Check(ctx); err == nil || errors.As(err, &f) {
		t.Fatalf("a later checkpoint, the proof not answered now: %v, want a failure to check", err)
	}
	maxAge := time.Duration(e.svc.Rules().WitnessMaxAgeS * float64(time.Second))
	checker.Now = func() time.Time { return time.Now().Add(maxAge + time.Minute) }
	_, err = checker.Check(ctx)
	if !errors.As(err, &f) || f.Kind != logcheck.Stale {
		t.Fatalf("a later checkpoint (size %d after %d) never proved, after witness_max_age: %v, want a STALE finding", published.Size, first.Size, err)
	}
}
