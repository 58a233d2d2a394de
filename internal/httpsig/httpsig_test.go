package httpsig

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/partykey"
)

var t0 = time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)

type fixture struct {
	key   ed25519.PrivateKey
	keyID string
	v     *Verifier
}

func newFixture(t *testing.T) fixture {
	key, err := partykey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	id := partykey.ID(partykey.Public(key))
	v := &Verifier{Nonces: NewNonceCache(), Keys: func(k string) (ed25519.PublicKey, error) {
		if k == id {
			return partykey.Public(key), nil
		}
		return nil, errors.New("no party has this key")
	}}
	return fixture{key, id, v}
}

// signed returns a request signed at t0 as the server receives it.
func (f fixture) signed(t *testing.T, method, url, body string) (*http.Request, []byte) {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := Sign(req, b, f.key, f.keyID, t0); err != nil {
		t.Fatal(err)
	}
	req.RequestURI = req.URL.RequestURI()
	return req, b
}

func TestVerifyRefusesNamingTheField(t *testing.T) {
	const url = "http://127.0.0.1:8080/v1/volumes"
	const body = `{"priority":0}`
	cases := []struct {
		name   string
		edit   func(f fixture, r *http.Request, body *[]byte)
		at     time.Time
		field  string
		detail string
	}{
		{"unsigned", func(_ fixture, r *http.Request, _ *[]byte) {
			r.Header.Del("Signature")
			r.Header.Del("Signature-Input")
		}, t0, FieldSignature, "missing"},
		{"malformed input", func(_ fixture, r *http.Request, _ *[]byte) { r.Header.Set("Signature-Input", `sig1=("@method"`) }, t0, FieldSignature, "not a structured dictionary"},
		{"malformed signature", func(_ fixture, r *http.Request, _ *[]byte) { r.Header.Set("Signature", `sig1=:not base64:`) }, t0, FieldSignature, "not a structured dictionary"},
		{"short signature", func(_ fixture, r *http.Request, _ *[]byte) { r.Header.Set("Signature", `sig1=:AAAA:`) }, t0, FieldSignature, "bytes"},
		{"label mismatch", func(_ fixture, r *http.Request, _ *[]byte) {
			r.Header.Set("Signature", strings.Replace(r.Header.Get("Signature"), "sig1=", "sig2=", 1))
		}, t0, FieldSignature, "no label"},
		{"wrong algorithm", func(_ fixture, r *http.Request, _ *[]byte) {
			r.Header.Set("Signature-Input", r.Header.Get("Signature-Input")+`;alg="rsa-pss-sha512"`)
		}, t0, FieldSignature, "algorithm"},
		{"method not covered", func(_ fixture, r *http.Request, _ *[]byte) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `"@method" `, "", 1))
		}, t0, FieldSignature, `"@method"`},
		{"digest not covered", func(_ fixture, r *http.Request, _ *[]byte) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), ` "content-digest"`, "", 1))
		}, t0, FieldSignature, "content-digest"},
		{"digest mismatch", func(_ fixture, _ *http.Request, b *[]byte) { *b = []byte(`{"priority":9}`) }, t0, FieldContentDigest, "does not match"},
		{"digest missing", func(_ fixture, r *http.Request, _ *[]byte) { r.Header.Del("Content-Digest") }, t0, FieldContentDigest, "missing"},
		{"digest unknown alg", func(_ fixture, r *http.Request, _ *[]byte) { r.Header.Set("Content-Digest", "md5=:AAAA:") }, t0, FieldContentDigest, "neither"},
		{"stale created", nil, t0.Add(MaxSkew + time.Second), FieldCreated, "from the server's clock"},
		{"future created", nil, t0.Add(-MaxSkew - time.Second), FieldCreated, "from the server's clock"},
		{"created not integer", func(_ fixture, r *http.Request, _ *[]byte) {
			r.Header.Set("Signature-Input", regexp.MustCompile(`;created=\d+`).ReplaceAllString(r.Header.Get("Signature-Input"), `;created="soon"`))
		}, t0, FieldCreated, ""},
		{"no nonce", func(_ fixture, r *http.Request, _ *[]byte) {
			in := r.Header.Get("Signature-Input")
			r.Header.Set("Signature-Input", in[:strings.Index(in, ";nonce=")])
		}, t0, FieldNonce, "missing"},
		{"unknown keyid", func(_ fixture, r *http.Request, _ *[]byte) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `keyid="`, `keyid="x`, 1))
		}, t0, FieldKeyID, "no party has this key"},
		{"altered method", func(_ fixture, r *http.Request, _ *[]byte) { r.Method = "PUT" }, t0, FieldSignature, "does not verify"},
		{"altered uri", func(_ fixture, r *http.Request, _ *[]byte) {
			r.RequestURI = "/v1/volumes/other"
			r.URL.Path = "/v1/volumes/other"
		}, t0, FieldSignature, "does not verify"},
		{"altered nonce", func(_ fixture, r *http.Request, _ *[]byte) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `nonce="`, `nonce="x`, 1))
		}, t0, FieldSignature, "does not verify"},
		{"other key's signature", func(f fixture, r *http.Request, b *[]byte) {
			other, _ := partykey.Generate()
			r2, _ := http.NewRequest(r.Method, "http://127.0.0.1:8080"+r.RequestURI, bytes.NewReader(*b))
			_ = Sign(r2, *b, other, f.keyID, t0)
			r.Header = r2.Header
		}, t0, FieldSignature, "does not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			req, b := f.signed(t, "POST", url, body)
			if c.edit != nil {
				c.edit(f, req, &b)
			}
			_, err := f.v.Verify(req, b, c.at)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error on %s", err, c.field)
			}
			if e.Field != c.field || !strings.Contains(e.Detail, c.detail) {
				t.Fatalf("err = %v, want field %s mentioning %q", err, c.field, c.detail)
			}
			if f.v.Nonces.Len() != 0 {
				t.Fatal("a refused signature consumed its nonce")
			}
		})
	}
}

func TestVerifyAcceptsAndRefusesReplay(t *testing.T) {
	f := newFixture(t)
	req, b := f.signed(t, "POST", "http://127.0.0.1:8080/v1/positions?x=1", `{"reports":[]}`)
	saved := req.Header.Clone()
	st, err := f.v.Verify(req, b, t0.Add(299*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.TargetURI != "http://127.0.0.1:8080/v1/positions?x=1" || st.Method != "POST" || st.Created != t0.Unix() || st.KeyID != f.keyID {
		t.Fatalf("statement %+v", st)
	}
	if st.ContentDigest != ContentDigest(b) {
		t.Fatalf("content digest %q", st.ContentDigest)
	}
	req.Header = saved
	_, err = f.v.Verify(req, b, t0.Add(300*time.Second))
	if fieldOf(err) != FieldNonce {
		t.Fatalf("replay: %v", err)
	}
	// The nonce is forgotten only after the window, by when created is stale.
	req.Header = saved.Clone()
	if _, err := f.v.Verify(req, b, t0.Add(NonceWindow+time.Second)); fieldOf(err) != FieldCreated {
		t.Fatalf("late replay: %v", err)
	}
}

func TestStatementOffline(t *testing.T) {
	f := newFixture(t)
	req, b := f.signed(t, "POST", "http://127.0.0.1:8080/v1/hotline/messages", `{"text":"hello"}`)
	st, err := f.v.Verify(req, b, t0)
	if err != nil {
		t.Fatal(err)
	}
	pub := partykey.Public(f.key)
	if err := st.Verify(pub); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckBody(b); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckBody([]byte(`{"text":"goodbye"}`)); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("another body: %v", err)
	}
	other, _ := partykey.Generate()
	if err := st.Verify(partykey.Public(other)); fieldOf(err) != FieldSignature {
		t.Fatalf("another key: %v", err)
	}
	for name, edit := range map[string]func(s *Statement){
		"method":  func(s *Statement) { s.Method = "PUT" },
		"target":  func(s *Statement) { s.TargetURI += "/x" },
		"digest":  func(s *Statement) { s.ContentDigest = ContentDigest([]byte("x")) },
		"nonce":   func(s *Statement) { s.Nonce = "other" },
		"created": func(s *Statement) { s.Created++ },
		"keyid":   func(s *Statement) { s.KeyID = "k" },
	} {
		s := st
		edit(&s)
		if err := s.Verify(pub); err == nil {
			t.Errorf("statement with altered %s verifies", name)
		}
	}
}

func TestNonceCacheForgetsInOrder(t *testing.T) {
	c := NewNonceCache()
	for i := range 1000 {
		if !c.Use("k", string(rune('a'+i%26))+strings.Repeat("x", i/26), t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("nonce %d refused", i)
		}
	}
	// At t0+1000s the nonces used before t0+400s are forgotten.
	if !c.Use("k", "a", t0.Add(1000*time.Second)) {
		t.Fatal("a nonce older than the window is still refused")
	}
	if c.Use("k", "a"+strings.Repeat("x", 38), t0.Add(1000*time.Second)) {
		t.Fatal("a nonce inside the window was accepted twice")
	}
	if n := c.Len(); n > 602 {
		t.Fatalf("%d nonces remembered, want at most one window's", n)
	}
	if !c.Use("other-key", "a", t0.Add(1000*time.Second)) {
		t.Fatal("nonces are per key")
	}
}
