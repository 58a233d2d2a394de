package httpsig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/testutil/nodejs"
)

// The interoperability tests run the npm package http-message-signatures
// 1.0.6 (pinned in internal/testutil/nodejs/npm), an RFC 9421
// implementation we did not write, both ways: it signs and we verify, we
// sign and it verifies.

type wireRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	// Fields are the components the npm signer covers.
	Fields    []string `json:"fields,omitempty"`
	DigestAlg string   `json:"digest_alg,omitempty"`
}

func testKey(t *testing.T) (ed25519.PrivateKey, string, string, string) {
	t.Helper()
	key, err := partykey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := partykey.EncodePEM(key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(partykey.Public(key))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return key, partykey.ID(partykey.Public(key)), string(privPEM), string(pubPEM)
}

const nodeSign = `
const crypto = require('crypto');
const { httpbis, createSigner } = require('http-message-signatures');
(async () => {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const key = createSigner(crypto.createPrivateKey(input.pem), 'ed25519', input.keyid);
  const out = [];
  for (const r of input.requests) {
    const headers = Object.assign({}, r.headers);
    if (r.body.length > 0) {
      const alg = r.digest_alg || 'sha-256';
      const sum = crypto.createHash(alg.replace('-', '')).update(r.body).digest('base64');
      headers['Content-Digest'] = alg + '=:' + sum + ':';
    }
    const nonce = crypto.randomBytes(16).toString('base64url');
    const signed = await httpbis.signMessage({
      key, fields: r.fields, params: ['created', 'keyid', 'nonce'], paramValues: { nonce },
    }, { method: r.method, url: r.url, headers });
    out.push(Object.assign({}, r, { headers: signed.headers }));
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

func toHTTP(t *testing.T, w wireRequest) (*http.Request, []byte) {
	t.Helper()
	req, err := http.NewRequest(w.Method, w.URL, strings.NewReader(w.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	// As a server sees it: the request URI and Host, no absolute URL.
	req.RequestURI = req.URL.RequestURI()
	return req, []byte(w.Body)
}

func TestTheyJSSignWeVerify(t *testing.T) {
	key, keyID, privPEM, _ := testKey(t)
	reqs := []wireRequest{
		{Method: "POST", URL: "http://127.0.0.1:8080/v1/positions", Body: `{"reports":[]}`,
			Headers: map[string]string{"Content-Type": "application/json"},
			Fields:  []string{"@method", "@target-uri", "content-digest"}},
		{Method: "POST", URL: "http://127.0.0.1:8080/v1/hotline/messages/m-1/ack", Body: `{"reply":"roger"}`, DigestAlg: "sha-512",
			Headers: map[string]string{"Content-Type": "application/json"},
			Fields:  []string{"@method", "@target-uri", "content-digest", "content-type", "@authority", "@path"}},
		{Method: "PUT", URL: "https://deconflict.example:443/v1/volumes/v-9?dry=1", Body: `{"a":1}`,
			Fields: []string{"@target-uri", "@method", "@query", "@scheme", "content-digest"}},
		{Method: "POST", URL: "http://localhost:9/v1/parties/coalition/keys/retire", Body: "",
			Fields: []string{"@method", "@target-uri"}},
	}
	in, _ := json.Marshal(map[string]any{"pem": privPEM, "keyid": keyID, "requests": reqs})
	var signed []wireRequest
	if err := json.Unmarshal(nodejs.Run(t, nodeSign, in), &signed); err != nil {
		t.Fatal(err)
	}
	pub := partykey.Public(key)
	keys := func(id string) (ed25519.PublicKey, error) {
		if id == keyID {
			return pub, nil
		}
		return nil, errors.New("unknown")
	}
	for i, w := range signed {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			req, body := toHTTP(t, w)
			base := strings.SplitN(w.URL, "/v1/", 2)[0]
			v := &Verifier{Keys: keys, Nonces: NewNonceCache(), BaseURL: base}
			st, err := v.Verify(req, body, time.Now())
			if err != nil {
				t.Fatalf("their signature does not verify here: %v\nheaders %v", err, w.Headers)
			}
			if st.KeyID != keyID || st.Method != w.Method || st.TargetURI != w.URL {
				t.Errorf("statement %+v", st)
			}
			// Offline, from the statement alone.
			if err := st.Verify(pub); err != nil {
				t.Errorf("statement does not verify offline: %v", err)
			}
			if err := st.CheckBody(body); err != nil {
				t.Errorf("statement does not match the body: %v", err)
			}
			// The same request a second time is a replay.
			req, body = toHTTP(t, w)
			if _, err := v.Verify(req, body, time.Now()); fieldOf(err) != FieldNonce {
				t.Errorf("replay: %v, want a nonce error", err)
			}
		})
	}
}

const nodeVerify = `
const crypto = require('crypto');
const { httpbis, createVerifier } = require('http-message-signatures');
(async () => {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const verify = createVerifier(crypto.createPublicKey(input.pub), 'ed25519');
  const out = [];
  for (const r of input.requests) {
    let ok;
    try {
      ok = await httpbis.verifyMessage({
        keyLookup: async (p) => p.keyid === input.keyid ? { id: input.keyid, algs: ['ed25519'], verify } : null,
        requiredFields: ['@method', '@target-uri'].concat(r.body.length > 0 ? ['content-digest'] : []),
        requiredParams: ['created', 'keyid', 'nonce'],
        maxAge: 300, tolerance: 5,
      }, { method: r.method, url: r.url, headers: r.headers });
    } catch (e) {
      ok = 'error: ' + e.message;
    }
    // RFC 9530: the digest is checked by the application, not the library.
    if (ok === true && r.body.length > 0) {
      const m = /sha-256=:([^:]*):/.exec(r.headers['Content-Digest'] || '');
      ok = !!m && m[1] === crypto.createHash('sha256').update(r.body).digest('base64');
    }
    out.push(ok);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

func TestWeSignTheyJSVerify(t *testing.T) {
	key, keyID, _, pubPEM := testKey(t)
	type tc struct {
		name   string
		method string
		url    string
		body   string
		tamper func(w *wireRequest)
		want   bool
	}
	cases := []tc{
		{"positions", "POST", "http://127.0.0.1:8080/v1/positions", `{"reports":[{"aircraft":"RF-101"}]}`, nil, true},
		{"ack", "POST", "http://127.0.0.1:8080/v1/hotline/messages/m-1/ack?x=1", `{"reply":"ack"}`, nil, true},
		{"no body", "POST", "http://127.0.0.1:8080/v1/volumes/v-1/state", ``, nil, true},
		{"other method", "POST", "http://127.0.0.1:8080/v1/volumes/v-1", `{}`, func(w *wireRequest) { w.Method = "PUT" }, false},
		{"other uri", "POST", "http://127.0.0.1:8080/v1/volumes", `{}`, func(w *wireRequest) { w.URL += "/v-2" }, false},
		{"other body", "POST", "http://127.0.0.1:8080/v1/volumes", `{"a":1}`, func(w *wireRequest) { w.Body = `{"a":2}` }, false},
		{"other key", "POST", "http://127.0.0.1:8080/v1/volumes", `{}`, func(w *wireRequest) {
			w.Headers["Signature-Input"] = strings.Replace(w.Headers["Signature-Input"], keyID, "someone-else", 1)
		}, false},
	}
	var wires []wireRequest
	for _, c := range cases {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		req, err := http.NewRequest(c.method, c.url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := Sign(req, body, key, keyID, time.Now()); err != nil {
			t.Fatal(err)
		}
		w := wireRequest{Method: c.method, URL: c.url, Body: c.body, Headers: map[string]string{}}
		for k := range req.Header {
			w.Headers[k] = req.Header.Get(k)
		}
		if c.tamper != nil {
			c.tamper(&w)
		}
		wires = append(wires, w)
	}
	in, _ := json.Marshal(map[string]any{"pub": pubPEM, "keyid": keyID, "requests": wires})
	var got []any
	if err := json.Unmarshal(nodejs.Run(t, nodeVerify, in), &got); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		if (got[i] == true) != c.want {
			t.Errorf("%s: their verifier says %v, want %v (headers %v)", c.name, got[i], c.want, wires[i].Headers)
		}
	}
}

func fieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
