package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
)

// signedDelta is a server with party delta, whose writes are signed, and a
// request of russia's to it.
type signedDelta struct {
	e     *env
	token string
	key   ed25519.PrivateKey
	keys  audit.PartyKeys
	msg   client.Message
}

func newSignedDelta(t *testing.T) *signedDelta {
	t.Helper()
	d := &signedDelta{e: newEnv(t, Options{})}
	d.key, _ = partykey.Generate()
	var tok struct{ Token string }
	d.e.mustDo("POST", "/v1/parties", d.e.operator, map[string]any{"name": "delta", "public_keys": []string{partykey.Format(partykey.Public(d.key))}}, 201, &tok)
	d.token = tok.Token
	d.keys = audit.PartyKeys{"delta": {partykey.ID(partykey.Public(d.key)): partykey.Public(d.key)}}
	var err error
	d.msg, err = client.New(d.e.srv.URL, d.e.tokens["russia"]).PostMessage(context.Background(), client.NewMessage{To: []string{"delta"}, Kind: "request", Text: "acknowledge"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// forgeAck records delta's acknowledgment of the message, signed with key
// at signedAt, as the operator would: the record and its statement stamped
// at recordedAt, in one transaction.
func (d *signedDelta) forgeAck(t *testing.T, key ed25519.PrivateKey, signedAt, recordedAt time.Time) {
	t.Helper()
	d.forgeAckOf(t, d.msg.ID, key, signedAt, recordedAt)
}

// forgeAckOf is forgeAck with a record that names the message id instead.
func (d *signedDelta) forgeAckOf(t *testing.T, id string, key ed25519.PrivateKey, signedAt, recordedAt time.Time) {
	t.Helper()
	body := []byte(`{}`)
	req := signedRequest(t, d.e, key, "POST", "/v1/hotline/messages/"+d.msg.ID+"/ack", d.token, body)
	// Signed at signedAt: sign again with that time.
	req.Header.Del("Signature")
	req.Header.Del("Signature-Input")
	if err := httpsig.Sign(req, body, key, partykey.ID(partykey.Public(key)), signedAt); err != nil {
		t.Fatal(err)
	}
	v := httpsig.Verifier{Keys: func(string) (ed25519.PublicKey, error) { return partykey.Public(key), nil }}
	st, err := v.Verify(req, body, signedAt)
	if err != nil {
		t.Fatal(err)
	}
	err = d.e.st.Update(context.Background(), func(tx store.Tx) error {
		content := map[string]any{"id": id, "party": "delta", "state": "acknowledged", "late": false}
		rec, err := audit.Append(tx, "delta", "message_acked", audit.For("delta", "russia"), content, recordedAt)
		if err != nil {
			return err
		}
		sealed := audit.Seal(base64.StdEncoding.EncodeToString(body), "delta", "russia")
		_, err = audit.Append(tx, "delta", audit.KindStatement, audit.For("delta", "russia"),
			service.StatementContent{Statement: st, Covers: audit.Covers{From: rec.Seq, To: rec.Seq}, Body: &sealed}, recordedAt)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// verify checks the whole record as delta sees it, with delta's keys.
func (d *signedDelta) verify(t *testing.T) error {
	t.Helper()
	var export bytes.Buffer
	if err := d.e.svc.ExportAudit(context.Background(), operatorPrincipal(), &export, 1); err != nil {
		t.Fatal(err)
	}
	pub, _ := audit.ParsePublicKey(d.e.svc.AuditKey().PublicKey)
	_, err := audit.VerifyWith(bytes.NewReader(export.Bytes()), pub, audit.VerifyOptions{PartyKeys: d.keys, Bind: service.BindStatement})
	return err
}

// TestStatementTimeIsTheSignaturesTime: the operator holds back delta's
// genuine signed acknowledgment and records it an hour earlier than delta
// signed it (acknowledged in time), or an hour later (late). The server
// records a signed write when it accepts the signature, within a few
// minutes of its created time: a record stamped an hour away from it is
// not what delta said when it said it. Recorded at once, it verifies.
func TestStatementTimeIsTheSignaturesTime(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name       string
		recordedAt time.Time
		ok         bool
	}{
		{"recorded when signed", now, true},
		{"recorded an hour before it was signed", now.Add(-time.Hour), false},
		{"recorded an hour after it was signed", now.Add(time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newSignedDelta(t)
			d.forgeAck(t, d.key, now, tc.recordedAt)
			err := d.verify(t)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("an acknowledgment recorded when it was signed: %v", err)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), "is stamped")):
				t.Fatalf("an acknowledgment recorded an hour away from its signature: %v, want it named", err)
			}
		})
	}
}

// TestStatementKeyMustBeInForce: delta retires its first key (it leaked)
// with a request signed by a new one; whoever holds the leaked key (the
// operator) signs an acknowledgment with it and records it. The party,
// which keeps the retired key in its key file to verify its older
// statements, must see that this one was signed with a key the record had
// retired. Likewise a statement signed with a key before the record added
// it.
func TestStatementKeyMustBeInForce(t *testing.T) {
	t.Run("retired", func(t *testing.T) {
		d := newSignedDelta(t)
		next, _ := partykey.Generate()
		body, _ := json.Marshal(map[string]string{"public_key": partykey.Format(partykey.Public(next))})
		if code, p := send(t, d.e, signedRequest(t, d.e, d.key, "POST", "/v1/parties/delta/keys", d.token, body)); code != 201 {
			t.Fatalf("add key: %d %+v", code, p)
		}
		// Retired with a request signed by the key retired itself.
		if code, p := send(t, d.e, signedRequest(t, d.e, d.key, "POST", "/v1/parties/delta/keys/"+partykey.ID(partykey.Public(d.key))+"/retire", d.token, nil)); code != 200 {
			t.Fatalf("retire key: %d %+v", code, p)
		}
		d.keys["delta"][partykey.ID(partykey.Public(next))] = partykey.Public(next)
		if err := d.verify(t); err != nil {
			t.Fatalf("before the forgery: %v", err)
		}
		// Signed before the retirement's second, it is a request that
		// raced the retirement (the server verified it before the
		// retirement committed).
		d.forgeAck(t, d.key, time.Now().Add(-2*time.Second), time.Now())
		if err := d.verify(t); err != nil {
			t.Fatalf("an acknowledgment signed before the retirement, recorded after it: %v", err)
		}
		d.forgeAck(t, d.key, time.Now().Add(2*time.Second), time.Now().Add(2*time.Second))
		if err := d.verify(t); err == nil || !strings.Contains(err.Error(), "retired") {
			t.Fatalf("an acknowledgment signed with a retired key: %v, want it named", err)
		}
	})
	t.Run("not yet added", func(t *testing.T) {
		d := newSignedDelta(t)
		later, _ := partykey.Generate()
		d.keys["delta"][partykey.ID(partykey.Public(later))] = partykey.Public(later)
		d.forgeAck(t, later, time.Now(), time.Now())
		if err := d.verify(t); err == nil || !strings.Contains(err.Error(), "before any record added") {
			t.Fatalf("an acknowledgment signed with a key no record added: %v, want it named", err)
		}
	})
}

// TestVerifyErrorShowsNoControlCharacters: the operator re-attaches
// delta's genuine signed acknowledgment to a record naming a message id of
// its own making, holding a terminal escape, a carriage return, "OK: ..."
// and a bidi override. The verification names the record, and its error,
// which audit verify prints and a party's check keeps, shows none of those
// characters as they are.
func TestVerifyErrorShowsNoControlCharacters(t *testing.T) {
	d := newSignedDelta(t)
	d.forgeAckOf(t, "x\x1b[2K\rOK: 12 records verified \u202egnihton", d.key, time.Now(), time.Now())
	err := d.verify(t)
	if err == nil || !strings.Contains(err.Error(), "OK: 12 records verified") {
		t.Fatalf("an acknowledgment re-attached to another message: %v, want it named", err)
	}
	if perr := printable.Check(err.Error()); perr != nil {
		t.Errorf("the error %q %v", err, perr)
	}
}
