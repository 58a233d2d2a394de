package httpsig

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary Signature-Input, Signature and Content-Digest
// fields to the verifier: it must return an *Error naming a field (never
// panic, never accept: no key verifies).
func FuzzVerify(f *testing.F) {
	f.Add(`sig1=("@method" "@target-uri" "content-digest");created=1795000000;keyid="k";nonce="n"`, `sig1=:`+string(make([]byte, 0))+`AAAA:`, "sha-256=:AAAA:", []byte("{}"))
	f.Add(`sig1=("@method" "@target-uri");created=1795000000;keyid="k";nonce="n";alg="ed25519"`, `sig1=:YWJj:`, "", []byte(nil))
	f.Add(`sig1=("@method";req "@x");created=-1`, `sig1=?1`, "sha-512=:YWJj:, sha-256=(1 2)", []byte("x"))
	f.Add(`a=(), b="x"`, `b=:YWJj:`, `md5=:YWJj:`, []byte(""))
	f.Fuzz(func(t *testing.T, input, sig, digest string, body []byte) {
		req, err := http.NewRequest("POST", "http://h/v1/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.RequestURI = "/v1/x"
		req.Header.Set("Signature-Input", input)
		req.Header.Set("Signature", sig)
		if digest != "" {
			req.Header.Set("Content-Digest", digest)
		}
		v := &Verifier{Nonces: NewNonceCache(), Keys: func(string) (ed25519.PublicKey, error) {
			return make(ed25519.PublicKey, ed25519.PublicKeySize), nil
		}}
		_, err = v.Verify(req, body, time.Unix(1795000000, 0))
		var e *Error
		if !errors.As(err, &e) || e.Field == "" {
			t.Fatalf("Verify = %v, want a refusal naming a field", err)
		}
	})
}
