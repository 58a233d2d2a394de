package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestStatementsBindTheirRecords: every signed write of a party, position
// batches included, is a statement in the record, and each statement is
// bound to what its records say: a genuine signed request held back by the
// operator and re-attached to a forged record does not verify.
func TestStatementsBindTheirRecords(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	key, _ := partykey.Generate()
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{partykey.Format(partykey.Public(key))}}, 201, &tok)
	delta := client.New(e.srv.URL, tok.Token).WithKey(key)
	russia := client.New(e.srv.URL, e.tokens["russia"])

	now := time.Now().UTC()
	vol, err := delta.CreateVolume(ctx, client.VolumeInput{Footprint: client.Circle(35, 36, 1000), AltLowerM: 1000, AltUpperM: 2000,
		Start: now.Add(time.Hour), End: now.Add(2 * time.Hour), Details: json.RawMessage(`{"mission":"survey"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if vol, err = delta.UpdateVolume(ctx, vol.ID, client.VolumeInput{Footprint: client.Circle(35, 36, 1500), AltLowerM: 1000, AltUpperM: 2500,
		Start: now.Add(time.Hour), End: now.Add(2 * time.Hour), Version: vol.Version}); err != nil {
		t.Fatal(err)
	}
	if _, err := delta.SetVolumeState(ctx, vol.ID, "activated", vol.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := delta.PostMessage(ctx, client.NewMessage{To: []string{"russia"}, Kind: "notice", Text: "delta's words"}); err != nil {
		t.Fatal(err)
	}
	m1, err := russia.PostMessage(ctx, client.NewMessage{To: []string{"delta"}, Kind: "request", Text: "first"})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := russia.PostMessage(ctx, client.NewMessage{To: []string{"delta"}, Kind: "request", Text: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := delta.AckMessage(ctx, m1.ID, "understood"); err != nil {
		t.Fatal(err)
	}
	const batches = 3
	for i := range batches {
		reports := []client.Report{{Aircraft: "d1", Time: time.Now().Add(time.Duration(i) * time.Millisecond), LatDeg: 35, LonDeg: 36, AltM: 3000}}
		if _, err := delta.PostPositions(ctx, reports); err != nil {
			t.Fatal(err)
		}
	}
	prop, err := client.New(e.srv.URL, e.operator).ProposeRules(ctx, []byte(`{"time_buffer_s":45}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := delta.AcceptRules(ctx, prop.Version); err != nil {
		t.Fatal(err)
	}

	keys := audit.PartyKeys{"delta": {partykey.ID(partykey.Public(key)): partykey.Public(key)}}
	pub, _ := audit.ParsePublicKey(e.svc.AuditKey().PublicKey)
	verify := func(viewer party.Principal) (audit.Summary, error) {
		t.Helper()
		var export bytes.Buffer
		if err := e.svc.ExportAudit(ctx, viewer, &export, 1); err != nil {
			t.Fatal(err)
		}
		return audit.VerifyWith(bytes.NewReader(export.Bytes()), pub, audit.VerifyOptions{PartyKeys: keys, Bind: service.BindStatement})
	}
	// create, update, state, message, ack, 3 batches, accept.
	const signed = 5 + batches + 1
	for _, viewer := range []party.Principal{operatorPrincipal(), {Party: "delta"}} {
		sum, err := verify(viewer)
		if err != nil {
			t.Fatalf("export for %q: %v", viewer.Party, err)
		}
		if sum.Statements != signed {
			t.Errorf("export for %q: %d statements verified, want %d", viewer.Party, sum.Statements, signed)
		}
	}
	// The batches are statements of their own, without their reports.
	batchStatements := 0
	err = e.st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 10000)
		for _, r := range recs {
			d, _ := audit.Decode(r)
			if d.Kind == audit.KindStatement && strings.Contains(string(d.Content), `/v1/positions"`) {
				batchStatements++
				if strings.Contains(string(d.Content), `"body"`) || strings.Contains(string(d.Content), `"reports"`) {
					t.Errorf("a batch's statement holds its body: %s", d.Content)
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if batchStatements != batches {
		t.Errorf("%d statements of position batches, want %d", batchStatements, batches)
	}

	// The operator holds back delta's genuine signed acknowledgment of m1
	// (delta signed it; it never reached the service) ...
	held := func(path string, body []byte) httpsig.Statement {
		t.Helper()
		req := signedRequest(t, e, key, "POST", path, tok.Token, body)
		v := httpsig.Verifier{Keys: func(string) (ed25519.PublicKey, error) { return partykey.Public(key), nil }}
		st, err := v.Verify(req, body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	heldAck := held("/v1/hotline/messages/"+m1.ID+"/ack", []byte(`{"reply":"understood"}`))
	// ... and re-attaches it to a forged record.
	forge := func(content map[string]any, st httpsig.Statement, body []byte) {
		t.Helper()
		err := e.st.Update(ctx, func(tx store.Tx) error {
			rec, err := audit.Append(tx, "delta", "message_acked", audit.For("delta", "russia"), content, time.Now())
			if err != nil {
				return err
			}
			sealed := audit.Seal(base64.StdEncoding.EncodeToString(body), "delta", "russia")
			_, err = audit.Append(tx, "delta", audit.KindStatement, audit.For("delta", "russia"),
				service.StatementContent{Statement: st, Covers: audit.Covers{From: rec.Seq, To: rec.Seq}, Body: &sealed}, time.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The signed acknowledgment of m1 covering an acknowledgment of m2.
	forge(map[string]any{"id": m2.ID, "party": "delta", "state": "acknowledged", "late": false}, heldAck, []byte(`{"reply":"understood"}`))
	for _, viewer := range []party.Principal{operatorPrincipal(), {Party: "delta"}, {Party: "russia"}} {
		if _, err := verify(viewer); err == nil || !strings.Contains(err.Error(), "message "+m2.ID+" differs from the request") {
			t.Errorf("export for %q: a genuine statement on a forged record verifies: %v", viewer.Party, err)
		}
	}
}

// TestStatementBindsTheBody: a genuine statement whose record says
// something else than its body (the reply changed) does not verify where
// the body is visible, and the body recorded must be the one signed.
func TestStatementBindsTheBody(t *testing.T) {
	cases := []struct {
		name, reply string
		body        []byte
		want        string
	}{
		{"genuine", "no", []byte(`{"reply":"no"}`), ""},
		{"reply changed", "yes", []byte(`{"reply":"no"}`), `reply "yes" differs from the request`},
		{"body changed", "yes", []byte(`{"reply":"yes"}`), "the recorded body is not the one it signed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			ctx := context.Background()
			key, _ := partykey.Generate()
			var tok struct{ Token string }
			e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{partykey.Format(partykey.Public(key))}}, 201, &tok)
			m, err := client.New(e.srv.URL, e.tokens["russia"]).PostMessage(ctx, client.NewMessage{To: []string{"delta"}, Kind: "request", Text: "climb?"})
			if err != nil {
				t.Fatal(err)
			}
			signedBody := []byte(`{"reply":"no"}`)
			req := signedRequest(t, e, key, "POST", "/v1/hotline/messages/"+m.ID+"/ack", tok.Token, signedBody)
			st, err := (&httpsig.Verifier{Keys: func(string) (ed25519.PublicKey, error) { return partykey.Public(key), nil }}).Verify(req, signedBody, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			err = e.st.Update(ctx, func(tx store.Tx) error {
				rec, err := audit.Append(tx, "delta", "message_acked", audit.For("delta", "russia"),
					map[string]any{"id": m.ID, "party": "delta", "reply": audit.Seal(c.reply, "delta", "russia")}, time.Now())
				if err != nil {
					return err
				}
				sealed := audit.Seal(base64.StdEncoding.EncodeToString(c.body), "delta", "russia")
				_, err = audit.Append(tx, "delta", audit.KindStatement, audit.For("delta", "russia"),
					service.StatementContent{Statement: st, Covers: audit.Covers{From: rec.Seq, To: rec.Seq}, Body: &sealed}, time.Now())
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			keys := audit.PartyKeys{"delta": {partykey.ID(partykey.Public(key)): partykey.Public(key)}}
			pub, _ := audit.ParsePublicKey(e.svc.AuditKey().PublicKey)
			for _, viewer := range []party.Principal{operatorPrincipal(), {Party: "delta"}, {Party: "russia"}} {
				var export bytes.Buffer
				if err := e.svc.ExportAudit(ctx, viewer, &export, 1); err != nil {
					t.Fatal(err)
				}
				_, err := audit.VerifyWith(bytes.NewReader(export.Bytes()), pub, audit.VerifyOptions{PartyKeys: keys, Bind: service.BindStatement})
				if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
					t.Errorf("export for %q: %v, want %q", viewer.Party, err, c.want)
				}
			}
		})
	}
}

// TestSignedBatchRefusals: a signed position batch that is not well formed
// is refused (400) before its statement is committed, and changes nothing,
// the record included; a signed batch replayed to another replica (its
// own nonce cache, the same store) is refused naming the nonce and changes
// nothing either; the batch itself was accepted once, with one statement.
func TestSignedBatchRefusals(t *testing.T) {
	e := newEnv(t, Options{})
	key, _ := partykey.Generate()
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{partykey.Format(partykey.Public(key))}}, 201, &tok)

	before := fingerprint(t, e.st)
	for _, body := range []string{
		`{"reports":[{"aircraft":"d1","time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","lat":35,"lon":36,"alt_m":3000}`, // cut short
		`{"reports":[{"aircraft":"d\u00001","time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","lat":35,"lon":36,"alt_m":3000}]}`,
	} {
		if code, p := send(t, e, signedRequest(t, e, key, "POST", "/v1/positions", tok.Token, []byte(body))); code != http.StatusBadRequest {
			t.Fatalf("malformed signed batch %s: %d %+v", body, code, p)
		}
	}
	// A refused signature is answered first, whatever the body holds.
	good := []byte(`{"reports":[{"aircraft":"d1","time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","lat":35,"lon":36,"alt_m":3000}]}`)
	for _, altered := range [][]byte{[]byte(`{"reports":[`), bytes.Replace(good, []byte(`"lat":35`), []byte(`"lat":36`), 1)} {
		req := signedRequest(t, e, key, "POST", "/v1/positions", tok.Token, good)
		req.Body, req.ContentLength = ioNop(altered), int64(len(altered))
		if code, p := send(t, e, req); code != http.StatusUnauthorized || p.Field != "content-digest" {
			t.Fatalf("signed batch altered to %s: %d %+v", altered, code, p)
		}
	}
	other, _ := partykey.Generate()
	if code, p := send(t, e, signedRequest(t, e, other, "POST", "/v1/positions", tok.Token, good)); code != http.StatusUnauthorized || p.Field != "keyid" {
		t.Fatalf("batch signed by another key: %d %+v", code, p)
	}
	if after := fingerprint(t, e.st); after != before {
		t.Fatalf("a refused signed batch changed the store: %s, was %s", after, before)
	}

	// The other replica is reached at the same public URL (behind one
	// load balancer): the signature verifies there.
	replica := httptest.NewServer(NewHandler(e.svc, Options{PublicURL: e.srv.URL}))
	defer replica.Close()
	batch := []byte(`{"reports":[{"aircraft":"d1","time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","lat":35,"lon":36,"alt_m":3000}]}`)
	req := signedRequest(t, e, key, "POST", "/v1/positions", tok.Token, batch)
	if code, p := send(t, e, req); code != http.StatusAccepted {
		t.Fatalf("signed batch: %d %+v", code, p)
	}
	accepted := fingerprint(t, e.st)
	if accepted == before {
		t.Fatal("a signed batch recorded no statement")
	}
	replay := req.Clone(context.Background())
	replay.URL.Host = strings.TrimPrefix(replica.URL, "http://")
	replay.Host = ""
	replay.Body = ioNop(batch)
	resp, err := replica.Client().Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	var p Problem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || p.Field != "nonce" {
		t.Fatalf("batch replayed to another replica: %d %+v", resp.StatusCode, p)
	}
	if after := fingerprint(t, e.st); after != accepted {
		t.Fatalf("a replayed signed batch changed the store: %s, was %s", after, accepted)
	}
}

// A key given twice when a party is created is a 400 naming the second,
// and nothing is created (it was a 500: the second registration failed
// inside the transaction); more keys than a party may have are a 400; a
// key registered again is a 409 and an unknown key retired a 404 (both
// were 500s).
func TestPartyKeysRefused(t *testing.T) {
	e := newEnv(t, Options{})
	key, _ := partykey.Generate()
	k := partykey.Format(partykey.Public(key))
	code, body, _ := e.do("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{k, k}})
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusBadRequest || p.Field != "public_keys[1]" {
		t.Fatalf("a key given twice: %d %s", code, body)
	}
	many := make([]string, party.MaxKeys+1)
	for i := range many {
		k, _ := partykey.Generate()
		many[i] = partykey.Format(partykey.Public(k))
	}
	code, body, _ = e.do("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": many})
	p = Problem{}
	_ = json.Unmarshal(body, &p)
	if code != http.StatusBadRequest || p.Field != "public_keys" {
		t.Fatalf("%d keys: %d %s", len(many), code, body)
	}
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{k}}, 201, &tok)
	again, _ := json.Marshal(map[string]string{"public_key": k})
	if code, p := send(t, e, signedRequest(t, e, key, "POST", "/v1/parties/delta/keys", tok.Token, again)); code != http.StatusConflict {
		t.Fatalf("a key registered again: %d %+v", code, p)
	}
	if code, p := send(t, e, signedRequest(t, e, key, "POST", "/v1/parties/delta/keys/nosuchkey/retire", tok.Token, nil)); code != http.StatusNotFound {
		t.Fatalf("an unknown key retired: %d %+v", code, p)
	}
}

// A key under which anyone can sign anything (the identity point of the
// curve verifies one fixed signature on every message) is refused, at a
// party's creation and when a party adds it, naming the field: a party
// that registered one could disown every statement it signed.
func TestSmallOrderKeysRefused(t *testing.T) {
	e := newEnv(t, Options{})
	identity := partykey.Format(append([]byte{1}, make([]byte, 31)...))
	key, _ := partykey.Generate()
	k := partykey.Format(partykey.Public(key))
	code, body, _ := e.do("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{k, identity}})
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusBadRequest || p.Field != "public_keys[1]" || !strings.Contains(string(body), "small order") {
		t.Fatalf("a small-order key at a party's creation: %d %s", code, body)
	}
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{k}}, 201, &tok)
	add, _ := json.Marshal(map[string]string{"public_key": identity})
	code, p = send(t, e, signedRequest(t, e, key, "POST", "/v1/parties/delta/keys", tok.Token, add))
	if code != http.StatusBadRequest || p.Field != "public_key" {
		t.Fatalf("a small-order key added: %d %+v", code, p)
	}
}
