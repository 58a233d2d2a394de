package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
)

// lossyStore loses the acknowledgement of a commit: once armed, the next
// Update that appends an event commits and then fails all the same, and
// the store is down (every Update and View fails) until up is called, as
// when the database server restarts just after committing.
type lossyStore struct {
	store.Store
	armed, down atomic.Bool
}

var errStoreDown = errors.New("injected: the database is down")

func (l *lossyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if l.down.Load() {
		return errStoreDown
	}
	var wrote bool
	err := l.Store.Update(ctx, func(tx store.Tx) error {
		wrote = false
		return fn(eventSpy{tx, &wrote})
	})
	if err == nil && wrote && l.armed.CompareAndSwap(true, false) {
		l.down.Store(true)
		return errors.New("injected: the commit's acknowledgement was lost")
	}
	return err
}

func (l *lossyStore) View(ctx context.Context, fn func(store.Tx) error) error {
	if l.down.Load() {
		return errStoreDown
	}
	return l.Store.View(ctx, fn)
}

type eventSpy struct {
	store.Tx
	wrote *bool
}

func (s eventSpy) AppendEvent(e store.Event) (int64, error) {
	*s.wrote = true
	return s.Tx.AppendEvent(e)
}

// withKey is req with an Idempotency-Key header.
func withKey(req *http.Request, key string) *http.Request {
	req.Header.Set(IdempotencyKeyHeader, key)
	return req
}

// signedKeyed is a signed write carrying an Idempotency-Key (covered by
// its signature, as httpsig.Sign covers it).
func signedKeyed(t *testing.T, e *env, key []byte, path, token, idemKey string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(IdempotencyKeyHeader, idemKey)
	if err := httpsig.Sign(req, body, key, partykey.ID(partykey.Public(key)), time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

// exchange sends req and returns the status, body and header of its answer.
func exchange(t *testing.T, e *env, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// recordsOf counts the audit records of kind by actor.
func recordsOf(t *testing.T, st store.Store, actor, kind string) int {
	t.Helper()
	n := 0
	err := st.View(context.Background(), func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 1<<20)
		for _, r := range recs {
			if r.Actor == actor && r.Kind == kind {
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

// TestIdempotentSignedRetryAfterOutcomeUnknown: a signed hotline message
// whose commit's acknowledgement is lost, the database down just after,
// is answered 503 outcome-unknown; the client signs it again (a fresh
// nonce) with the same Idempotency-Key once the database is back, and is
// answered the message that was committed, which exists once, with one
// statement in the record.
func TestIdempotentSignedRetryAfterOutcomeUnknown(t *testing.T) {
	lossy := &lossyStore{Store: openTestStore(t)}
	e := newEnvOn(t, lossy, Options{})
	key, _ := partykey.Generate()
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{partykey.Format(partykey.Public(key))}}, 201, &tok)
	msg := []byte(`{"to":["russia"],"kind":"notice","text":"orbit moved 20 NM north"}`)
	const idemKey = `"5f0c1c5e-8f7a-4d2b-9a51-2b2c4f7e3a10"`

	first := signedKeyed(t, e, key, "/v1/hotline/messages", tok.Token, idemKey, msg)
	replayOfFirst := first.Clone(context.Background())
	replayOfFirst.Body = ioNop(msg)
	lossy.armed.Store(true)
	code, body, _ := exchange(t, e, first)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "outcome-unknown") {
		t.Fatalf("the write whose acknowledgement was lost: %d %s, want 503 outcome-unknown", code, body)
	}
	lossy.down.Store(false)
	var keptID string
	err := lossy.View(context.Background(), func(tx store.Tx) error {
		ms, err := tx.MessagesFor("delta", "", time.Time{}, 10)
		if len(ms) != 1 {
			t.Fatalf("%d messages of delta committed, want 1", len(ms))
		}
		keptID = ms[0].ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Sent again unchanged: still a replay of the signature.
	if code, p := send(t, e, replayOfFirst); code != http.StatusUnauthorized || p.Field != "nonce" {
		t.Errorf("the same signed request sent again: %d %+v, want 401 nonce", code, p)
	}
	// Signed again with the same key: the answer of the committed write.
	code, body, hdr := exchange(t, e, signedKeyed(t, e, key, "/v1/hotline/messages", tok.Token, idemKey, msg))
	if code != http.StatusCreated || hdr.Get(ReplayedHeader) != "true" {
		t.Fatalf("the retry: %d (%s: %q) %s, want 201 replayed", code, ReplayedHeader, hdr.Get(ReplayedHeader), body)
	}
	var got struct{ ID, Text string }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != keptID || got.Text != "orbit moved 20 NM north" {
		t.Errorf("the retry answered message %q (%q), want the one committed, %q", got.ID, got.Text, keptID)
	}
	err = lossy.View(context.Background(), func(tx store.Tx) error {
		ms, err := tx.MessagesFor("delta", "", time.Time{}, 10)
		if len(ms) != 1 {
			t.Errorf("%d messages of delta after the retry, want 1: the retry wrote a second message", len(ms))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := recordsOf(t, lossy, "delta", audit.KindStatement); n != 1 {
		t.Errorf("%d statements of delta in the record, want 1", n)
	}
	// The key a signature does not cover is refused.
	req := signedRequest(t, e, key, "POST", "/v1/hotline/messages", tok.Token, msg)
	req.Header.Set(IdempotencyKeyHeader, `"not-covered"`)
	if code, p := send(t, e, req); code != http.StatusUnauthorized || p.Field != httpsig.FieldSignature || !strings.Contains(p.Detail, "idempotency-key") {
		t.Errorf("a key outside the signature: %d %+v, want 401 signature naming idempotency-key", code, p)
	}
}

// TestIdempotentRetryLostAnswer: writes sent again with their key (their
// first answer lost on the way) are answered the same status and body and
// write once: a volume, a rules proposal; the key with another body is
// refused with 422 naming the header; another party's equal key is its
// own.
func TestIdempotentRetryLostAnswer(t *testing.T) {
	e := newEnv(t, Options{})
	post := func(method, path, token, key string, body any) (int, []byte, http.Header) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		withKey(req, key)
		code, out, hdr := exchange(t, e, req)
		e.checker.check(method, path, &http.Response{StatusCode: code, Header: hdr}, out)
		return code, out, hdr
	}
	vol := circleVolume(35, 36, "tanker", nil)
	code1, body1, _ := post("POST", "/v1/volumes", e.tokens["coalition"], `"vol-1"`, vol)
	if code1 != http.StatusCreated {
		t.Fatalf("first write: %d %s", code1, body1)
	}
	code2, body2, hdr := post("POST", "/v1/volumes", e.tokens["coalition"], `"vol-1"`, vol)
	if code2 != code1 || !bytes.Equal(body2, body1) || hdr.Get(ReplayedHeader) != "true" {
		t.Errorf("the retry: %d %s (replayed %q), want %d %s", code2, body2, hdr.Get(ReplayedHeader), code1, body1)
	}
	volumes := func() int {
		n := 0
		_ = e.st.View(context.Background(), func(tx store.Tx) error {
			vs, err := tx.VolumesChangedSince(0, 100)
			n = len(vs)
			return err
		})
		return n
	}
	if n := volumes(); n != 1 {
		t.Errorf("%d volumes after the retry, want 1", n)
	}
	// The key reused for another body: 422, nothing written.
	other := circleVolume(36, 37, "other", nil)
	code, body, _ := post("POST", "/v1/volumes", e.tokens["coalition"], `"vol-1"`, other)
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusUnprocessableEntity || p.Field != IdempotencyKeyHeader || p.Type != ProblemBase+"idempotency-key-reused" {
		t.Errorf("the key reused for another volume: %d %s, want 422 naming %s", code, body, IdempotencyKeyHeader)
	}
	if n := volumes(); n != 1 {
		t.Errorf("%d volumes after the refused reuse, want 1", n)
	}
	// Russia's key of the same string is russia's own.
	code, body, hdr = post("POST", "/v1/volumes", e.tokens["russia"], `"vol-1"`, other)
	if code != http.StatusCreated || hdr.Get(ReplayedHeader) != "" || bytes.Equal(body, body1) {
		t.Errorf("russia's write with coalition's key string: %d %s (replayed %q), want its own 201", code, body, hdr.Get(ReplayedHeader))
	}
	if n := volumes(); n != 2 {
		t.Errorf("%d volumes after russia's write, want 2", n)
	}

	// A rules proposal sent again: one proposal.
	change := map[string]any{"disclose_linger_s": 30}
	code1, body1, _ = post("PUT", "/v1/rules", e.operator, `"rules-1"`, change)
	code2, body2, _ = post("PUT", "/v1/rules", e.operator, `"rules-1"`, change)
	if code1 != http.StatusAccepted || code2 != code1 || !bytes.Equal(body1, body2) {
		t.Errorf("the proposal sent again: %d %s then %d %s", code1, body1, code2, body2)
	}
	var open struct{ Proposals []json.RawMessage }
	e.mustDo("GET", "/v1/rules/proposals", e.operator, nil, 200, &open)
	if len(open.Proposals) != 1 {
		t.Errorf("%d open proposals after the retry, want 1", len(open.Proposals))
	}
}

// TestIdempotencyKeyRefused: a malformed Idempotency-Key is a 400 naming
// the header, and changes nothing.
func TestIdempotencyKeyRefused(t *testing.T) {
	e := newEnv(t, Options{})
	before := fingerprint(t, e.st)
	for _, values := range [][]string{
		{`abc`}, // a token, not a string
		{`""`},  // empty
		{`"` + strings.Repeat("k", MaxIdempotencyKeyLen+1) + `"`}, // too long
		{`"a";p=1`},    // parameters
		{`"a b"`},      // a space
		{`"a\"b"`},     // a quote
		{`"a"`, `"b"`}, // twice
		{`"unterminated`},
	} {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/hotline/messages", strings.NewReader(`{"to":["russia"],"kind":"notice","text":"x"}`))
		req.Header.Set("Authorization", "Bearer "+e.tokens["coalition"])
		for _, v := range values {
			req.Header.Add(IdempotencyKeyHeader, v)
		}
		code, p := send(t, e, req)
		if code != http.StatusBadRequest || p.Field != IdempotencyKeyHeader {
			t.Errorf("Idempotency-Key %q: %d %+v, want 400 naming the header", values, code, p)
		}
	}
	if after := fingerprint(t, e.st); after != before {
		t.Error("a refused key changed the store")
	}
}

// FuzzIdempotencyKey: the parser never panics; a key it accepts is 1 to
// MaxIdempotencyKeyLen visible ASCII characters without '"' or '\', and
// reads back the same from its own sf-string.
func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`, `abc`, `""`, `"a";p=1`, `"a\"b"`, `"a\\b"`, `  "x"  `, `"x", "y"`, `?0`, `:YQ==:`, "\"\x7f\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, err := parseIdempotencyKey([]string{v})
		if err != nil {
			if key != "" {
				t.Fatalf("refused %q and returned %q", v, key)
			}
			return
		}
		if key == "" || len(key) > MaxIdempotencyKeyLen {
			t.Fatalf("accepted %q as %q (%d characters)", v, key, len(key))
		}
		for i := range len(key) {
			if c := key[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
				t.Fatalf("accepted %q as %q, holding %q", v, key, c)
			}
		}
		again, err := parseIdempotencyKey([]string{`"` + key + `"`})
		if err != nil || again != key {
			t.Fatalf("%q read back as %q, %v", key, again, err)
		}
	})
}

// dropFirstAnswer serves every request with next, but drops the
// connection instead of answering the first write to path: the write is
// done, its answer lost on the way.
type dropFirstAnswer struct {
	next    http.Handler
	path    string
	dropped atomic.Bool
}

func (d *dropFirstAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.URL.Path != d.path || d.dropped.Load() {
		d.next.ServeHTTP(w, r)
		return
	}
	d.dropped.Store(true)
	d.next.ServeHTTP(httptest.NewRecorder(), r)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// TestClientRetriesALostAnswerOnce: the Go client's signed hotline message
// whose answer is lost (the connection dropped after the server wrote it)
// is sent again, signed again, with the same Idempotency-Key: the client
// gets the message, which exists once, with one statement.
func TestClientRetriesALostAnswerOnce(t *testing.T) {
	e := newEnv(t, Options{})
	key, _ := partykey.Generate()
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{partykey.Format(partykey.Public(key))}}, 201, &tok)
	drop := &dropFirstAnswer{next: e.srv.Config.Handler, path: "/v1/hotline/messages"}
	srv := httptest.NewServer(drop)
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, tok.Token).WithKey(key)
	m, err := c.PostMessage(context.Background(), client.NewMessage{To: []string{"russia"}, Kind: "notice", Text: "said once"})
	if !drop.dropped.Load() {
		t.Fatal("no answer was dropped: the test tested nothing")
	}
	if err != nil {
		t.Fatalf("the message whose first answer was lost: %v", err)
	}
	err = e.st.View(context.Background(), func(tx store.Tx) error {
		ms, err := tx.MessagesFor("delta", "", time.Time{}, 10)
		if len(ms) != 1 || ms[0].ID != m.ID {
			t.Errorf("delta's messages after the retry: %d, want 1, %q, the one answered", len(ms), m.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := recordsOf(t, e.st, "delta", audit.KindStatement); n != 1 {
		t.Errorf("%d statements of delta in the record, want 1", n)
	}
	// The statement, its key covered, verifies offline.
	var export bytes.Buffer
	if err := e.svc.ExportAudit(context.Background(), operatorPrincipal(), &export, 1); err != nil {
		t.Fatal(err)
	}
	pub, _ := audit.ParsePublicKey(e.svc.AuditKey().PublicKey)
	keys := audit.PartyKeys{"delta": {partykey.ID(partykey.Public(key)): partykey.Public(key)}}
	sum, err := audit.VerifyWithPartyKeys(bytes.NewReader(export.Bytes()), pub, keys)
	if err != nil || sum.Statements != 1 {
		t.Errorf("the record verifies with %d statements, %v; want 1", sum.Statements, err)
	}
	if !strings.Contains(export.String(), `"idempotency-key"`) {
		t.Error("the statement does not hold the key it covers")
	}
}

// TestIdempotentRetryOfAVolumeIsLocated: the retry of a volume's creation
// is answered as the first was, Location included: a client that follows
// it to read the volume back finds the one created.
func TestIdempotentRetryOfAVolumeIsLocated(t *testing.T) {
	e := newEnv(t, Options{})
	body, _ := json.Marshal(circleVolume(35, 36, "tanker", nil))
	send := func() (int, []byte, http.Header) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/volumes", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.tokens["coalition"])
		return exchange(t, e, withKey(req, `"vol-located"`))
	}
	code1, _, hdr1 := send()
	code2, _, hdr2 := send()
	if code1 != http.StatusCreated || code2 != code1 || hdr2.Get(ReplayedHeader) != "true" {
		t.Fatalf("the write and its retry: %d, %d (replayed %q)", code1, code2, hdr2.Get(ReplayedHeader))
	}
	if hdr1.Get("Location") == "" || hdr2.Get("Location") != hdr1.Get("Location") {
		t.Errorf("the retry's Location %q, the first's %q", hdr2.Get("Location"), hdr1.Get("Location"))
	}
}

// TestTokenWriteRetryAfterLostAnswer: a party's creation and a rotation,
// whose answer holds a token the server keeps only as its hash, sent again
// with their Idempotency-Key after the answer was lost, are not done again
// (one party, one rotation in the record): the retry is answered a new
// token, marked replayed, and the token of the lost answer no longer
// works. The store keeps no token for the key; a party revoked since is
// not given access again by such a retry; once the window is over, the
// key is judged as new.
func TestTokenWriteRetryAfterLostAnswer(t *testing.T) {
	e := newEnv(t, Options{})
	post := func(path, key string, body any) (int, []byte, http.Header) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+e.operator)
		withKey(req, key)
		code, out, hdr := exchange(t, e, req)
		e.checker.check("POST", path, &http.Response{StatusCode: code, Header: hdr}, out)
		return code, out, hdr
	}
	tokenOf := func(body []byte) string {
		t.Helper()
		var a tokenAnswer
		if err := json.Unmarshal(body, &a); err != nil || a.Token == "" {
			t.Fatalf("answer %s holds no token: %v", body, err)
		}
		return a.Token
	}
	works := func(token string) bool {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		code, _, _ := exchange(t, e, req)
		return code == http.StatusOK
	}
	parties := func() int {
		var out struct{ Parties []json.RawMessage }
		e.mustDo("GET", "/v1/parties", e.operator, nil, 200, &out)
		return len(out.Parties)
	}
	before := parties()

	for _, tc := range []struct {
		path, key, kind string
		body            any
		status          int
	}{
		{"/v1/parties", `"add-nato"`, "party_added", map[string]string{"name": "nato"}, http.StatusCreated},
		{"/v1/parties/russia/rotate", `"rotate-russia"`, "party_rotated", struct{}{}, http.StatusOK},
	} {
		code, body, hdr := post(tc.path, tc.key, tc.body)
		if code != tc.status || hdr.Get(ReplayedHeader) != "" {
			t.Fatalf("%s: %d %s (replayed %q)", tc.path, code, body, hdr.Get(ReplayedHeader))
		}
		lost := tokenOf(body) // the answer the caller never got
		code, body, hdr = post(tc.path, tc.key, tc.body)
		if code != tc.status || hdr.Get(ReplayedHeader) != "true" {
			t.Fatalf("%s sent again: %d %s (replayed %q), want %d replayed", tc.path, code, body, hdr.Get(ReplayedHeader), tc.status)
		}
		got := tokenOf(body)
		if got == lost || works(lost) || !works(got) {
			t.Errorf("%s sent again: the lost token works %v, the new one (different: %v) works %v; want only the new one", tc.path, works(lost), got != lost, works(got))
		}
		if n := recordsOf(t, e.st, party.OperatorName, tc.kind); tc.kind == "party_rotated" && n != 1 {
			t.Errorf("%d %s records after the retry, want 1", n, tc.kind)
		}
		// Nothing the store keeps for the key holds either token.
		err := e.st.View(context.Background(), func(tx store.Tx) error {
			a, err := tx.GetIdempotent(party.OperatorName, strings.Trim(tc.key, `"`), time.Now())
			if err != nil {
				return err
			}
			if bytes.Contains(a.Body, []byte(lost)) || bytes.Contains(a.Body, []byte(got)) {
				t.Errorf("the answer kept for %s holds a token: %s", tc.key, a.Body)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := parties(); n != before+1 {
		t.Errorf("%d parties after the creation sent twice, want %d", n, before+1)
	}
	if n := recordsOf(t, e.st, party.OperatorName, "party_token_reissued"); n != 2 {
		t.Errorf("%d party_token_reissued records, want 2", n)
	}

	// Revoked since: the retry does not give the party access again.
	e.mustDo("POST", "/v1/parties/nato/revoke", e.operator, struct{}{}, http.StatusOK, nil)
	code, body, _ := post("/v1/parties", `"add-nato"`, map[string]string{"name": "nato"})
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusConflict || p.Type != ProblemBase+"revoked" {
		t.Errorf("the creation sent again after a revocation: %d %s, want 409 revoked", code, body)
	}

	// Past the window, the key is judged as new: the name exists.
	e.advance(service.TokenIdempotencyTTL + time.Second)
	code, body, _ = post("/v1/parties", `"add-nato"`, map[string]string{"name": "nato"})
	_ = json.Unmarshal(body, &p)
	if code != http.StatusConflict || p.Type != ProblemBase+"exists" {
		t.Errorf("the creation sent again after the window: %d %s, want 409 exists", code, body)
	}
}

// TestTokenRetryAfterALaterRotation: the retry of a write that issued a
// token, once a later rotation (another key, or none) has replaced that
// token and its answer was delivered, must not revoke the later token: it
// is 409 superseded naming Idempotency-Key and changes nothing. The retry
// of a reissue whose answer was lost too is still a reissue.
func TestTokenRetryAfterALaterRotation(t *testing.T) {
	e := newEnv(t, Options{})
	post := func(path, key string, body any) (int, []byte, http.Header) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+e.operator)
		if key != "" {
			withKey(req, key)
		}
		code, out, hdr := exchange(t, e, req)
		e.checker.check("POST", path, &http.Response{StatusCode: code, Header: hdr}, out)
		return code, out, hdr
	}
	tokenOf := func(body []byte) string {
		t.Helper()
		var a tokenAnswer
		if err := json.Unmarshal(body, &a); err != nil || a.Token == "" {
			t.Fatalf("answer %s holds no token: %v", body, err)
		}
		return a.Token
	}
	works := func(token string) bool {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		code, _, _ := exchange(t, e, req)
		return code == http.StatusOK
	}

	for _, tc := range []struct {
		name, path, key string
		body            any
		status          int
		laterKey        string
	}{
		{"rotation superseded by a rotation under another key", "/v1/parties/russia/rotate", `"rotate-k1"`, struct{}{}, http.StatusOK, `"rotate-k2"`},
		{"creation superseded by a rotation without a key", "/v1/parties", `"add-ukraine"`, map[string]string{"name": "ukraine"}, http.StatusCreated, ""},
	} {
		code, body, _ := post(tc.path, tc.key, tc.body)
		if code != tc.status {
			t.Fatalf("%s: %d %s", tc.name, code, body)
		}
		first := tokenOf(body)
		name := "russia"
		if tc.path == "/v1/parties" {
			name = "ukraine"
		}
		code, body, _ = post("/v1/parties/"+name+"/rotate", tc.laterKey, struct{}{})
		if code != http.StatusOK {
			t.Fatalf("%s: the later rotation: %d %s", tc.name, code, body)
		}
		later := tokenOf(body) // delivered, handed out
		reissuedBefore := recordsOf(t, e.st, party.OperatorName, "party_token_reissued")

		code, body, hdr := post(tc.path, tc.key, tc.body)
		var p Problem
		_ = json.Unmarshal(body, &p)
		if code != http.StatusConflict || p.Type != ProblemBase+"superseded" || p.Field != IdempotencyKeyHeader || hdr.Get(ReplayedHeader) != "" {
			t.Errorf("%s: the first write sent again: %d %s, want 409 superseded naming %s", tc.name, code, body, IdempotencyKeyHeader)
		}
		if !works(later) || works(first) {
			t.Errorf("%s: the later token works %v (want true), the first %v (want false)", tc.name, works(later), works(first))
		}
		if n := recordsOf(t, e.st, party.OperatorName, "party_token_reissued"); n != reissuedBefore {
			t.Errorf("%s: %d party_token_reissued records, want %d", tc.name, n, reissuedBefore)
		}
	}

	// Two answers lost in a row: the retry of the reissue reissues again.
	code, body, _ := post("/v1/parties/russia/rotate", `"rotate-twice-lost"`, struct{}{})
	if code != http.StatusOK {
		t.Fatalf("rotation: %d %s", code, body)
	}
	lost := tokenOf(body)
	for i := range 2 {
		code, body, hdr := post("/v1/parties/russia/rotate", `"rotate-twice-lost"`, struct{}{})
		if code != http.StatusOK || hdr.Get(ReplayedHeader) != "true" {
			t.Fatalf("retry %d: %d %s (replayed %q), want 200 replayed", i+1, code, body, hdr.Get(ReplayedHeader))
		}
		got := tokenOf(body)
		if works(lost) || !works(got) {
			t.Errorf("retry %d: the lost token works %v, the new one %v; want only the new one", i+1, works(lost), works(got))
		}
		lost = got
	}
}

// heldStore holds, once armed, the next Update made for an HTTP request
// before its transaction begins: the request waits there as for the
// writers' lock another replica holds, until the test releases it.
type heldStore struct {
	store.Store
	armed   atomic.Bool
	waiting chan struct{}
	release chan struct{}
}

func (h *heldStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if ctx.Value(http.ServerContextKey) != nil && h.armed.CompareAndSwap(true, false) {
		h.waiting <- struct{}{}
		<-h.release
	}
	return h.Store.Update(ctx, fn)
}

// TestTokenRetryServedBeforeItsFirst: a rotation sent with its
// Idempotency-Key to replica A waits there (for the writers' lock); its
// client gives up and sends it again to replica B, which rotates and
// delivers the token. The first, once it runs, is 409 overtaken naming
// Idempotency-Key and changes nothing: the delivered token keeps working.
// Sent again after that (its answer lost too), the rotation is reissued.
func TestTokenRetryServedBeforeItsFirst(t *testing.T) {
	st := openTestStore(t)
	held := &heldStore{Store: st, waiting: make(chan struct{}), release: make(chan struct{})}
	e := newEnvOn(t, held, Options{}) // replica A
	svcB, err := service.New(context.Background(), service.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srvB := httptest.NewServer(NewHandler(svcB, Options{}))
	t.Cleanup(func() {
		svcB.EndStreams()
		srvB.Close()
		_ = svcB.Close(context.Background())
	})
	const path = "/v1/parties/russia/rotate"
	rotate := func(base string) *http.Request {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+e.operator)
		req.Header.Set("Content-Type", "application/json")
		return withKey(req, `"rotate-russia"`)
	}
	works := func(token string) bool {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		code, _, _ := exchange(t, e, req)
		return code == http.StatusOK
	}
	tokenOf := func(body []byte) string {
		t.Helper()
		var a tokenAnswer
		if err := json.Unmarshal(body, &a); err != nil || a.Token == "" {
			t.Fatalf("answer %s holds no token: %v", body, err)
		}
		return a.Token
	}

	type answer struct {
		resp *http.Response
		body []byte
		err  error
	}
	first := make(chan answer, 1)
	held.armed.Store(true)
	go func() {
		resp, err := e.srv.Client().Do(rotate(e.srv.URL))
		if err != nil {
			first <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		first <- answer{resp, b, err}
	}()
	<-held.waiting

	resp, err := srvB.Client().Do(rotate(srvB.URL))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get(ReplayedHeader) != "" {
		t.Fatalf("the retry, served first by replica B: %d %s (replayed %q), %v", resp.StatusCode, body, resp.Header.Get(ReplayedHeader), err)
	}
	delivered := tokenOf(body)
	reissuedBefore := recordsOf(t, st, party.OperatorName, "party_token_reissued")

	held.release <- struct{}{}
	got := <-first
	if got.err != nil {
		t.Fatal(got.err)
	}
	e.checker.check("POST", path, got.resp, got.body)
	var p Problem
	_ = json.Unmarshal(got.body, &p)
	if got.resp.StatusCode != http.StatusConflict || p.Type != ProblemBase+"overtaken" || p.Field != IdempotencyKeyHeader {
		t.Errorf("the first, served after its retry: %d %s, want 409 overtaken naming %s", got.resp.StatusCode, got.body, IdempotencyKeyHeader)
	}
	if !works(delivered) {
		t.Error("the token the retry delivered was revoked by its first, served after it: the party is locked out")
	}
	if n := recordsOf(t, st, party.OperatorName, "party_token_reissued"); n != reissuedBefore {
		t.Errorf("%d party_token_reissued records, want %d", n, reissuedBefore)
	}

	// That answer lost too: sent again, the rotation is reissued.
	code, body, hdr := exchange(t, e, rotate(e.srv.URL))
	if code != http.StatusOK || hdr.Get(ReplayedHeader) != "true" {
		t.Fatalf("sent again: %d %s (replayed %q), want 200 replayed", code, body, hdr.Get(ReplayedHeader))
	}
	if again := tokenOf(body); works(delivered) || !works(again) {
		t.Errorf("after the reissue the lost token works %v, the new one %v; want only the new one", works(delivered), works(again))
	}
}
