package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// env is one service behind a test HTTP server with two parties.
type env struct {
	t        testing.TB
	st       store.Store
	svc      *service.Service
	srv      *httptest.Server
	handler  *Handler
	operator string
	tokens   map[string]string // party -> token
	checker  *schemaChecker
	// skew is added to the wall clock of the service, so that a test can
	// move past a deadline without waiting.
	skew atomic.Int64
}

// advance moves the service's clock forward.
func (e *env) advance(d time.Duration) { e.skew.Add(int64(d)) }

func newEnv(t testing.TB, opt Options) *env {
	t.Helper()
	return newEnvOn(t, openTestStore(t), opt)
}

// openTestStore opens the embedded store in a fresh directory.
func openTestStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEnvOn(t testing.TB, st store.Store, opt Options) *env {
	t.Helper()
	return newEnvConfig(t, st, opt, nil)
}

// newEnvConfig is newEnvOn with the service's configuration changed by
// configure (when not nil).
func newEnvConfig(t testing.TB, st store.Store, opt Options, configure func(*service.Config)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, st: st, tokens: map[string]string{}, checker: newSchemaChecker(t)}
	cfg := service.Config{Store: st, Now: func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }}
	if configure != nil {
		configure(&cfg)
	}
	svc, err := service.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc, e.operator = svc, svc.OperatorToken
	e.handler = NewHandler(svc, opt)
	e.srv = httptest.NewServer(e.handler)
	t.Cleanup(func() {
		svc.EndStreams()
		e.srv.Close()
		_ = svc.Close(context.Background())
	})
	for _, name := range []string{"coalition", "russia"} {
		var out struct{ Token string }
		e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": name}, http.StatusCreated, &out)
		e.tokens[name] = out.Token
	}
	return e
}

// do sends one request and returns the status and body; every answer is
// checked against the OpenAPI document.
func (e *env) do(method, path, token string, body any) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.checker.check(method, path, resp, out)
	return resp.StatusCode, out, resp.Header
}

func (e *env) mustDo(method, path, token string, body any, want int, out any) []byte {
	e.t.Helper()
	code, b, _ := e.do(method, path, token, body)
	if code != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return b
}

// agreeRules proposes rules (the fields given over those in force) and has
// every party of the env, and those whose tokens are given, accept; the
// proposal must then be in force.
func (e *env) agreeRules(body any, tokens ...string) rules.Proposal {
	e.t.Helper()
	var p rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, body, 202, &p)
	for _, name := range []string{"coalition", "russia"} {
		if tok, ok := e.tokens[name]; ok {
			tokens = append(tokens, tok)
		}
	}
	for _, tok := range tokens {
		e.mustDo("POST", "/v1/rules/"+strconv.FormatInt(p.Version, 10)+"/accept", tok, map[string]string{"rules_sha256": p.RulesSHA256}, 200, &p)
	}
	var r rules.Rules
	e.mustDo("GET", "/v1/rules", e.operator, nil, 200, &r)
	if p.State != rules.ProposalActive || r.Version != p.Version {
		e.t.Fatalf("proposal %d is %s after every party accepted; rules in force: version %d", p.Version, p.State, r.Version)
	}
	return p
}

// eventDataSchema names the schema of the data of each kind of event.
var eventDataSchema = map[string]string{
	"alert_raised": "Alert", "alert_updated": "Alert", "alert_cleared": "Alert",
	"volume_changed": "Volume", "volume_conflict": "VolumeConflict",
	"message": "Message", "ack": "Message", "escalated": "Message",
	"rules_changed": "Rules", "volume_flagged": "VolumeFlag", "volumes_probed": "VolumesProbed", "credentials_changed": "CredentialsChange", "rules_proposed": "RulesProposal", "rules_answered": "RulesProposal",
	"snapshot": "EventsSnapshot",
}

// sseEvent is one parsed event of a stream.
type sseEvent struct {
	ID int64
	// HasID: the event had an id: line (ID is 0 without one).
	HasID bool
	Kind  string
	Data  eventEnvelope
}

// stream is an open SSE connection.
type stream struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
	// bytesRead counts the bytes of the stream read so far.
	bytesRead atomic.Int64
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (e *env) openStream(token string, lastID string) *stream {
	e.t.Helper()
	return e.openStreamPath(token, "/v1/events", lastID)
}

func (e *env) openStreamPath(token, path, lastID string) *stream {
	e.t.Helper()
	s, code := e.tryStreamPath(token, path, lastID)
	if s == nil {
		e.t.Fatalf("events: status %d", code)
	}
	return s
}

// tryStreamPath opens a stream, or returns nil and the status of its
// refusal.
func (e *env) tryStreamPath(token, path, lastID string) (*stream, int) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		cancel()
		e.t.Fatalf("events: content type %q", ct)
	}
	s := &stream{resp: resp, events: make(chan sseEvent, 1024), cancel: cancel}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(countingReader{resp.Body, &s.bytesRead})
		sc.Buffer(make([]byte, 1<<20), 16<<20) // a snapshot is one line
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.Kind != "" {
					s.events <- cur
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				cur.ID, _ = strconv.ParseInt(line[4:], 10, 64)
				cur.HasID = true
			case strings.HasPrefix(line, "event: "):
				cur.Kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(line[6:]), &cur.Data)
				e.checker.checkValue("Event", []byte(line[6:]))
				if name, ok := eventDataSchema[cur.Kind]; ok {
					e.checker.checkValue(name, cur.Data.Data)
				}
			}
		}
	}()
	e.t.Cleanup(s.close)
	return s, resp.StatusCode
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next waits for the next event; the timeout only guards against a hang.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20 s")
	}
	return sseEvent{}
}

// metrics returns the Prometheus text of the handler, read with the
// operator's token.
func (e *env) metrics() string {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+e.operator)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}
