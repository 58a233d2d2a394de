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

// witnessedLog is a server whose rules name two witnesses, both real:
// coalition's, whose directory the party's check reads (down: it answers
// 503 meanwhile), and russia's (russiaDown: it answers 503), which, while
// hold is set, holds each push until letGo (arrived tells one arrived)
// and then answers 503. Coalition's check pins russia's witness key.
type witnessedLog struct {
	e           *env
	key         struct{ Origin, VKey string }
	ws          *witness.Server
	wdir        string
	russiaVKey  string
	russiaState string

	down, hold, russiaDown atomic.Bool
	arrived                chan struct{}
	letGo                  func()
}

func newWitnessedLog(t *testing.T) *witnessedLog {
	t.Helper()
	l := &witnessedLog{e: newEnv(t, Options{}), wdir: t.TempDir(), arrived: make(chan struct{}, 1)}
	l.e.mustDo("GET", "/v1/log/key", l.e.tokens["coalition"], nil, 200, &l.key)
	_, wpriv, _ := ed25519.GenerateKey(nil)
	ws, err := witness.NewServer("coalition.test/witness", wpriv, l.wdir, []string{l.key.VKey})
	if err != nil {
		t.Fatal(err)
	}
	l.ws = ws
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.down.Load() {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		ws.ServeHTTP(w, r)
	}))
	t.Cleanup(good.Close)
	_, rpriv, _ := ed25519.GenerateKey(nil)
	l.russiaState = t.TempDir()
	rws, err := witness.NewServer("russia.test/witness", rpriv, l.russiaState, []string{l.key.VKey})
	if err != nil {
		t.Fatal(err)
	}
	l.russiaVKey = rws.VerifierKey()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.hold.Load() {
			select {
			case l.arrived <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		if l.russiaDown.Load() {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		rws.ServeHTTP(w, r)
	}))
	t.Cleanup(slow.Close)
	// Whatever happens, a held push is let go before the servers close.
	l.letGo = sync.OnceFunc(func() { close(release) })
	t.Cleanup(l.letGo)
	r := l.e.svc.Rules()
	r.Witnesses = []rules.Witness{{Party: "coalition", URL: good.URL, VKey: ws.VerifierKey()}, {Party: "russia", URL: slow.URL, VKey: l.russiaVKey}}
	l.e.agreeRules(r)
	if err := l.e.svc.PublishLog(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

// checker is coalition's check of the log, through server.
func (l *witnessedLog) checker(server *httptest.Server) *logcheck.Checker {
	return &logcheck.Checker{Server: server.URL, Token: l.e.tokens["coalition"], Dir: l.wdir, HTTP: server.Client(),
		WitnessKeys: map[string]string{"russia": l.russiaVKey}}
}

// proofsAnswered is the log as the party sees it: every answer the
// server's, but the consistency proofs, which answer answers.
func (l *witnessedLog) proofsAnswered(t *testing.T, answer func(http.ResponseWriter)) *httptest.Server {
	t.Helper()
	target, _ := url.Parse(l.e.srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = l.e.srv.Client().Transport
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/log/proof/consistency" {
			answer(w)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front
}

// write has coalition post a message: the log grows.
func (l *witnessedLog) write(thread string) {
	l.e.mustDo("POST", "/v1/hotline/messages", l.e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "msg", "thread": "coalition/" + thread}, 201, nil)
}

// pushHeld starts a push that russia's witness holds, and returns once
// coalition's holds a checkpoint larger than size; the push's result
// arrives on the channel once letGo.
func (l *witnessedLog) pushHeld(t *testing.T, size int64) <-chan error {
	t.Helper()
	l.hold.Store(true)
	published := make(chan error, 1)
	go func() { published <- l.e.svc.PublishLog(context.Background()) }()
	<-l.arrived
	for {
		_, held, ok, err := l.ws.Latest(l.key.Origin)
		if err != nil {
			t.Fatal(err)
		}
		if ok && held.Size > size {
			return published
		}
		time.Sleep(time.Millisecond)
	}
}

// late makes c check as after the rules' witness_max_age.
func (l *witnessedLog) late(c *logcheck.Checker) {
	maxAge := time.Duration(l.e.svc.Rules().WitnessMaxAgeS * float64(time.Second))
	c.Now = func() time.Time { return time.Now().Add(maxAge + time.Minute) }
}

// TestWitnessCheckWhileAPushIsInFlight: the log pushes a new checkpoint to
// every witness at once and publishes it with the cosignatures once all
// have answered. While russia's witness holds the push, coalition's has
// already cosigned the new checkpoint and the log still publishes the
// previous one: coalition's check run then sees a published checkpoint
// older than the one its witness holds. That is a push in flight, not a
// log that lost records: the check passes (and its witness goes on
// cosigning), before, during and after the push.
func TestWitnessCheckWhileAPushIsInFlight(t *testing.T) {
	l := newWitnessedLog(t)
	ctx := context.Background()
	checker := l.checker(l.e.srv)
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
		l.write("t" + string(rune('a'+i)))
	}
	published := l.pushHeld(t, first.Size)
	during := check("during the push")
	if during.Size <= first.Size {
		t.Fatalf("during the push the check verified size %d, no more than before (%d)", during.Size, first.Size)
	}
	l.letGo()
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
	l := newWitnessedLog(t)
	ctx := context.Background()
	checker := l.checker(l.proofsAnswered(t, answer))
	first, err := checker.Check(ctx)
	if err != nil {
		t.Fatalf("before the push: %v", err)
	}
	l.write("t")
	published := l.pushHeld(t, first.Size)
	if late {
		l.late(checker)
	}
	_, err = checker.Check(ctx)
	var f *logcheck.Finding
	switch {
	case want != "" && (!errors.As(err, &f) || f.Kind != want):
		t.Errorf("a published checkpoint older than the witness's, the log proving nothing: %v, want a %s finding", err, want)
	case want == "" && (errors.As(err, &f) || err == nil):
		t.Errorf("a published checkpoint older than the witness's, the proof not answered now: %v, want a failure to check", err)
	}
	l.letGo()
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
	l := newWitnessedLog(t)
	ctx := context.Background()
	checker := l.checker(l.proofsAnswered(t, func(w http.ResponseWriter) {
		http.Error(w, "timeout", http.StatusServiceUnavailable)
	}))
	first, err := checker.Check(ctx)
	if err != nil {
		t.Fatalf("before the witness is left out: %v", err)
	}
	l.down.Store(true)
	l.write("t")
	if err := l.e.svc.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	var f *logcheck.Finding
	if _, err := checker.Check(ctx); err == nil || errors.As(err, &f) {
		t.Fatalf("a later checkpoint, the proof not answered now: %v, want a failure to check", err)
	}
	l.late(checker)
	if _, err = checker.Check(ctx); !errors.As(err, &f) || f.Kind != logcheck.Stale {
		t.Fatalf("a later checkpoint (after size %d) never proved, after witness_max_age: %v, want a STALE finding", first.Size, err)
	}
}
