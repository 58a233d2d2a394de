package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// getEvents opens an event stream and returns the response, whatever its
// status.
func (e *env) getEvents(token string) *http.Response {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events?live=1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestStreamCapPerParty: a party's event streams beyond its cap are
// refused with 429 and Retry-After; other parties are not affected, and a
// closed stream frees its place.
func TestStreamCapPerParty(t *testing.T) {
	e := newEnv(t, Options{MaxStreamsPerParty: 3})
	var open []*stream
	for range 3 {
		open = append(open, e.openStreamPath(e.tokens["coalition"], "/v1/events?live=1", ""))
	}
	resp := e.getEvents(e.tokens["coalition"])
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), "too-many-streams") {
		t.Fatalf("a stream beyond the cap: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	e.wantRefusals(budgetStreams, "coalition", 1)
	e.openStreamPath(e.tokens["russia"], "/v1/events?live=1", "").close()
	open[0].close()
	// A minute only guards against a hang: a loaded -race run is slow.
	deadline := time.Now().Add(time.Minute)
	for {
		resp := e.getEvents(e.tokens["coalition"])
		if resp.StatusCode == http.StatusOK {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream did not free its place: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPrivateAnswersAreNotStored: every answer to a request with a token,
// problems included, carries Cache-Control: no-store.
func TestPrivateAnswersAreNotStored(t *testing.T) {
	e := newEnv(t, Options{})
	for _, c := range []struct{ method, path, token string }{
		{"GET", "/v1/me", e.tokens["coalition"]},
		{"GET", "/v1/hotline/messages", e.tokens["coalition"]},
		{"POST", "/v1/parties/russia/rotate", e.operator},
		{"GET", "/v1/me", ""},
		{"GET", "/v1/parties", e.tokens["coalition"]},
	} {
		code, _, hdr := e.do(c.method, c.path, c.token, nil)
		if hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: %d with Cache-Control %q", c.method, c.path, code, hdr.Get("Cache-Control"))
		}
	}
}

// ended waits until the stream's connection ends; the limit only guards
// against a hang (the stream is idle: no heartbeat comes within it).
func ended(t *testing.T, s *stream, what string) time.Duration {
	t.Helper()
	start := time.Now()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return time.Since(start)
			}
		case <-timeout:
			t.Fatalf("%s: the stream is still open", what)
		}
	}
}

// TestRevocationEndsStreamsAndRequests: rotating a party's token ends its
// open streams and a request still reading its body; the party's new
// token and other parties' streams go on; revoking ends the new token's.
func TestRevocationEndsStreamsAndRequests(t *testing.T) {
	e := newEnv(t, Options{HeartbeatEvery: time.Hour})
	old := e.tokens["russia"]
	s1 := e.openStream(old, "")
	s2 := e.openStreamPath(old, "/v1/events?live=1", "")
	other := e.openStreamPath(e.tokens["coalition"], "/v1/events?live=1", "")

	// A request of the old token whose body is still coming.
	slow := e.postStalled(t, old)

	var rot struct{ Token string }
	e.mustDo("POST", "/v1/parties/russia/rotate", e.operator, nil, 200, &rot)
	for i, s := range []*stream{s1, s2} {
		t.Logf("stream %d of the rotated token ended after %v", i, ended(t, s, "a stream of a rotated token"))
	}
	select {
	case code := <-slow:
		if code != http.StatusUnauthorized && code != -1 {
			t.Fatalf("the request of the rotated token was answered %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the request of the rotated token still runs")
	}
	if resp := e.getEvents(old); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a new stream with the rotated token: %d", resp.StatusCode)
	}
	// The other party's stream and the new token live on.
	fresh := e.openStreamPath(rot.Token, "/v1/events?live=1", "")
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "still there?"}, 201, nil)
	for _, s := range []*stream{other, fresh} {
		if ev := s.next(t); ev.Kind != "message" {
			t.Fatalf("event %s", ev.Kind)
		}
	}
	e.mustDo("POST", "/v1/parties/russia/revoke", e.operator, nil, 200, nil)
	ended(t, fresh, "a stream of a revoked party")
	var rules map[string]any
	e.mustDo("GET", "/v1/rules", e.operator, nil, 200, &rules)
	delete(rules, "version")
	e.mustDo("PUT", "/v1/rules", e.operator, rules, 202, nil)
	if ev := other.next(t); ev.Kind != "rules_proposed" {
		t.Fatalf("the other party's stream after the revocation: %s", ev.Kind)
	}
}

// TestBodyEndedBeforeItsFirstRead: a request ended (its token revoked)
// before its handler began to read the body fails that read at once,
// instead of blocking while the client sends nothing; one blocked in a
// read is unblocked.
func TestBodyEndedBeforeItsFirstRead(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	b := &watchedBody{ReadCloser: pr}
	unblocked := false
	b.end(errCredentialsChanged, func() { unblocked = true })
	if unblocked {
		t.Fatal("unblocked a body nobody was reading")
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 8))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errCredentialsChanged) {
			t.Fatalf("read after the end: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a read after the end blocked")
	}

	// Ended while a read blocks: unblock is called.
	pr2, pw2 := io.Pipe()
	defer pw2.Close()
	b2 := &watchedBody{ReadCloser: pr2}
	go func() { _, _ = b2.Read(make([]byte, 8)) }()
	for !b2.reading.Load() {
		time.Sleep(time.Millisecond)
	}
	called := make(chan struct{})
	b2.end(errCredentialsChanged, func() { close(called); pr2.CloseWithError(errCredentialsChanged) })
	select {
	case <-called:
	case <-time.After(time.Minute):
		t.Fatal("a blocked read was not unblocked")
	}
}

// viewsFail is a store whose reads fail while fail is set.
type viewsFail struct {
	store.Store
	fail atomic.Bool
}

func (v *viewsFail) View(ctx context.Context, fn func(store.Tx) error) error {
	if v.fail.Load() {
		return errors.New("injected: reads fail")
	}
	return v.Store.View(ctx, fn)
}

// TestRotationEndsStreamsWhenTheTokenCannotBeChecked: when the store
// cannot be read to check whether a token still authenticates after its
// party's tokens were rotated, its streams are ended all the same (fail
// closed), not left running on a token that may be revoked.
func TestRotationEndsStreamsWhenTheTokenCannotBeChecked(t *testing.T) {
	st := &viewsFail{Store: openTestStore(t)}
	e := newEnvOn(t, st, Options{HeartbeatEvery: time.Hour})
	s := e.openStream(e.tokens["russia"], "")
	st.fail.Store(true)
	e.mustDo("POST", "/v1/parties/russia/rotate", e.operator, nil, 200, nil)
	ended(t, s, "a stream whose token could not be checked after a rotation")
	st.fail.Store(false)
}

// postStalled posts positions with token whose body stops after its
// first bytes (its writer is closed when the test ends); the channel gets
// the answer's status, -1 when the request failed without one.
func (e *env) postStalled(t *testing.T, token string) <-chan int {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/positions", pr)
	req.Header.Set("Authorization", "Bearer "+token)
	answered := make(chan int, 1)
	go func() {
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte(`{"reports":[`)); err != nil {
		t.Fatal(err)
	}
	return answered
}

// TestRefusalDoesNotWaitForTheBody: a request refused before its handler
// reads the body (here: its token was rotated out before it arrived) is
// answered while its client is still sending, not after the rest of the
// body, which may never come.
func TestRefusalDoesNotWaitForTheBody(t *testing.T) {
	e := newEnv(t, Options{})
	old := e.tokens["russia"]
	e.mustDo("POST", "/v1/parties/russia/rotate", e.operator, nil, 200, nil)

	answered := e.postStalled(t, old)
	select {
	case code := <-answered:
		if code != http.StatusUnauthorized {
			t.Fatalf("a request of a rotated token was answered %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the refusal waits for the rest of the body")
	}
}

// TestRefusalReadsNoBodyTheServerWouldNot: a request refused before its
// body was read is answered at once, reading none of it, when the server
// would not read it anyway: its client waits for 100 Continue before it
// sends the body (curl does, for a body over 1 KiB), or its body is
// longer than the server ever reads after a handler (256 KiB), and the
// connection is closed. The wrapper that tells whether the body was read
// hid the server's own body from it (it looks at the request's Body), and
// the server waited for a body the client was not sending, up to the
// refusal's grace, or read 256 KiB of an unauthenticated client's body.
func TestRefusalReadsNoBodyTheServerWouldNot(t *testing.T) {
	for _, c := range []struct {
		name, headers string
	}{
		{"expect 100-continue", "Expect: 100-continue\r\nContent-Length: 2048\r\n"},
		{"body longer than the server reads", "Content-Length: 10485760\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A grace longer than the test may wait: answered
			// within it, the refusal waited for nothing.
			e := newEnv(t, Options{refusedBodyGrace: time.Hour})
			conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "POST /v1/positions HTTP/1.1\r\nHost: deconflict\r\n"+
				"Authorization: Bearer not-a-token\r\nContent-Type: application/json\r\n"+c.headers+"\r\n"); err != nil {
				t.Fatal(err)
			}
			answered := make(chan *http.Response, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					answered <- nil
					return
				}
				answered <- resp
			}()
			select {
			case resp := <-answered:
				if resp == nil || resp.StatusCode != http.StatusUnauthorized || !resp.Close {
					t.Fatalf("a refused request whose body was not sent was answered %+v, want 401 and the connection closed", resp)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the refusal waits for a body the server does not read")
			}
		})
	}
}
