package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/store"
)

// signedRequest builds a write of party token signed with key, as the
// server receives it.
func signedRequest(t *testing.T, e *env, key ed25519.PrivateKey, method, path, token string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if err := httpsig.Sign(req, body, key, partykey.ID(partykey.Public(key)), time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

func send(t *testing.T, e *env, req *http.Request) (int, Problem) {
	t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p Problem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	return resp.StatusCode, p
}

func TestSignedWrites(t *testing.T) {
	e := newEnv(t, Options{})
	key, _ := partykey.Generate()
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{partykey.Format(partykey.Public(key))}}, 201, &tok)
	msg := []byte(`{"to":["russia"],"kind":"notice","text":"signed words"}`)

	before := fingerprint(t, e.st)
	// Unsigned: refused, naming the signature, nothing changed.
	code, body, _ := e.do("POST", "/v1/hotline/messages", tok.Token, msg)
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusUnauthorized || p.Field != "signature" {
		t.Fatalf("unsigned write: %d %s", code, body)
	}
	// Signed, then the body altered in transit.
	req := signedRequest(t, e, key, "POST", "/v1/hotline/messages", tok.Token, msg)
	req.Body = ioNop(bytes.Replace(msg, []byte("signed"), []byte("forged"), 1))
	req.ContentLength = -1
	if code, p := send(t, e, req); code != 401 || p.Field != "content-digest" {
		t.Fatalf("altered body: %d %+v", code, p)
	}
	// Signed by another key.
	other, _ := partykey.Generate()
	if code, p := send(t, e, signedRequest(t, e, other, "POST", "/v1/hotline/messages", tok.Token, msg)); code != 401 || p.Field != "keyid" {
		t.Fatalf("unknown key: %d %+v", code, p)
	}
	if after := fingerprint(t, e.st); after != before {
		t.Fatal("a refused write changed the store")
	}
	// Signed: accepted, once.
	req = signedRequest(t, e, key, "POST", "/v1/hotline/messages", tok.Token, msg)
	replay := req.Clone(context.Background())
	replay.Body = ioNop(msg)
	if code, p := send(t, e, req); code != 201 {
		t.Fatalf("signed write: %d %+v", code, p)
	}
	if code, p := send(t, e, replay); code != 401 || p.Field != "nonce" {
		t.Fatalf("replayed write: %d %+v", code, p)
	}
	// The Go client signs.
	c := client.New(e.srv.URL, tok.Token).WithKey(key)
	m, err := c.PostMessage(context.Background(), client.NewMessage{To: []string{"russia"}, Kind: "request", Text: "by the client"})
	if err != nil {
		t.Fatal(err)
	}
	// Key rotation: a new key added with a request signed by the current
	// one, then the old one retired with the new.
	next, _ := partykey.Generate()
	body, _ = json.Marshal(map[string]string{"public_key": partykey.Format(partykey.Public(next))})
	if code, p := send(t, e, signedRequest(t, e, key, "POST", "/v1/parties/delta/keys", tok.Token, body)); code != 201 {
		t.Fatalf("add key: %d %+v", code, p)
	}
	if code, p := send(t, e, signedRequest(t, e, next, "POST", "/v1/parties/delta/keys/"+partykey.ID(partykey.Public(key))+"/retire", tok.Token, nil)); code != 200 {
		t.Fatalf("retire key: %d %+v", code, p)
	}
	time.Sleep(keysWait)
	if code, p := send(t, e, signedRequest(t, e, key, "POST", "/v1/hotline/messages", tok.Token, msg)); code != 401 || p.Field != "keyid" {
		t.Fatalf("retired key still signs: %d %+v", code, p)
	}
	if _, err := c.WithKey(next).AckMessage(context.Background(), m.ID, "x"); err == nil {
		t.Fatal("delta acknowledged its own message") // not the recipient: any refusal but a signature one
	} else if strings.Contains(err.Error(), "Signature refused") {
		t.Fatalf("the new key does not sign: %v", err)
	}

	// The record: every statement of delta verifies with its keys, and
	// every record of delta follows one.
	var export bytes.Buffer
	if err := e.svc.ExportAudit(context.Background(), operatorPrincipal(), &export, 1); err != nil {
		t.Fatal(err)
	}
	keys := audit.PartyKeys{"delta": {partykey.ID(partykey.Public(key)): partykey.Public(key), partykey.ID(partykey.Public(next)): partykey.Public(next)}}
	pub, _ := audit.ParsePublicKey(e.svc.AuditKey().PublicKey)
	sum, err := audit.VerifyWithPartyKeys(bytes.NewReader(export.Bytes()), pub, keys)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Statements < 4 {
		t.Fatalf("%d statements verified, want 4", sum.Statements)
	}
	// The operator records a statement of delta without its signature.
	err = e.st.Update(context.Background(), func(tx store.Tx) error {
		_, err := audit.Append(tx, "delta", "message_acked", audit.Everyone, map[string]any{"id": m.ID, "party": "delta"}, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	export.Reset()
	if err := e.svc.ExportAudit(context.Background(), operatorPrincipal(), &export, 1); err != nil {
		t.Fatal(err)
	}
	_, err = audit.VerifyWithPartyKeys(bytes.NewReader(export.Bytes()), pub, keys)
	if err == nil || !strings.Contains(err.Error(), "without delta's signature") {
		t.Fatalf("a forged statement verifies: %v", err)
	}
}

// keysWait outlasts the service's cache of party keys.
const keysWait = 2100 * time.Millisecond

func operatorPrincipal() party.Principal {
	return party.Principal{Party: party.OperatorName, Operator: true}
}

func ioNop(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
