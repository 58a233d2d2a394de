// Package httpsig owns the signatures parties put on their writes: HTTP
// Message Signatures (RFC 9421) with the ed25519 algorithm over at least
// "@method", "@target-uri" and, for a request with a body, "content-digest"
// (RFC 9530, sha-256 or sha-512), with the parameters created, keyid and
// nonce. It signs requests (the Go client), verifies them (the server,
// refusing a replayed nonce with a NonceCache), and keeps what an offline
// verifier needs as a Statement, which verifies again without the request.
//
// Structured field values (RFC 8941) are parsed and serialized by
// github.com/dunglas/httpsfv; the signature base (RFC 9421 section 2.5) is
// built here, and the tests check it both ways against the independent npm
// package http-message-signatures.
//
// Errors are *Error, whose Field names what is wrong: "signature" (missing,
// malformed, wrong algorithm, not covering what it must, or not verifying),
// "content-digest", "created", "nonce" or "keyid".
package httpsig

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"
)

// Label is the signature label this package writes ("sig1").
const Label = "sig1"

// Algorithm is the only signature algorithm accepted.
const Algorithm = "ed25519"

// MaxSkew is how far a signature's created time may be from the verifier's
// clock, either way.
const MaxSkew = 300 * time.Second

// NonceWindow is how long a nonce is remembered. It is at least twice
// MaxSkew, so a signature whose created time is still acceptable can never
// be replayed once its nonce is forgotten.
const NonceWindow = 2 * MaxSkew

// What an Error's Field names.
const (
	FieldSignature     = "signature"
	FieldContentDigest = "content-digest"
	FieldCreated       = "created"
	FieldNonce         = "nonce"
	FieldKeyID         = "keyid"
)

// Error is a refused signature: Field names what is wrong (one of the
// Field constants) and Detail says how.
type Error struct {
	Field  string
	Detail string
}

func (e *Error) Error() string { return e.Field + ": " + e.Detail }

func fail(field, format string, args ...any) *Error {
	return &Error{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Required are the components every signature must cover; a request with
// a body must cover "content-digest" as well.
var Required = []string{"@method", "@target-uri"}

// Statement is a verified signed request reduced to what an offline
// verifier needs: the covered component values and the signature. It holds
// no body: the signature covers the body's digest, and the digest is here.
type Statement struct {
	Method    string `json:"method"`
	TargetURI string `json:"target_uri"`
	// ContentDigest is the Content-Digest field value as sent ("" when the
	// signature does not cover it).
	ContentDigest string `json:"content_digest,omitempty"`
	// Fields are the other covered header fields, by lowercase name.
	Fields map[string]string `json:"fields,omitempty"`
	// SignatureInput is the value of "@signature-params": the covered
	// components and the parameters, as serialized in the signature base.
	SignatureInput string `json:"signature_input"`
	// Signature is the standard base64 of the 64 signature bytes.
	Signature string `json:"signature"`
	KeyID     string `json:"keyid"`
	Created   int64  `json:"created"`
	Nonce     string `json:"nonce"`
}

// ContentDigest is the Content-Digest field value of body with sha-256.
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// CheckContentDigest checks a Content-Digest field (its values as
// received) against body: it must name sha-256 or sha-512, and every
// digest of those algorithms it holds must match. Other algorithms are
// ignored (RFC 9530 lets a sender offer several).
func CheckContentDigest(values []string, body []byte) error {
	if len(values) == 0 {
		return fail(FieldContentDigest, "missing: a request with a body carries Content-Digest (RFC 9530, sha-256 or sha-512)")
	}
	d, err := httpsfv.UnmarshalDictionary(values)
	if err != nil {
		return fail(FieldContentDigest, "not a structured dictionary: %v", err)
	}
	checked := 0
	for _, alg := range d.Names() {
		var sum []byte
		switch alg {
		case "sha-256":
			s := sha256.Sum256(body)
			sum = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			sum = s[:]
		default:
			continue
		}
		m, _ := d.Get(alg)
		it, ok := m.(httpsfv.Item)
		got, isBytes := it.Value.([]byte)
		if !ok || !isBytes {
			return fail(FieldContentDigest, "%s is not a byte sequence (:base64:)", alg)
		}
		if subtle.ConstantTimeCompare(got, sum) != 1 {
			return fail(FieldContentDigest, "%s does not match the body (the body was altered, or the digest is of another body)", alg)
		}
		checked++
	}
	if checked == 0 {
		return fail(FieldContentDigest, "names neither sha-256 nor sha-512 (has %q)", d.Names())
	}
	return nil
}

// Sign signs req, whose body is body (nil for none), with key under keyID at
// time now: it sets Content-Digest (sha-256) when there is a body, and
// Signature-Input and Signature labelled Label, covering "@method",
// "@target-uri", with a body "content-digest", and "idempotency-key" when
// the request carries one (draft-ietf-httpapi-idempotency-key-header),
// with the parameters created, keyid and a fresh random nonce. req.URL must be absolute: it is
// the target URI the server checks.
func Sign(req *http.Request, body []byte, key ed25519.PrivateKey, keyID string, now time.Time) error {
	if !req.URL.IsAbs() {
		return fmt.Errorf("httpsig: the request URL %q is not absolute", req.URL)
	}
	components := slices.Clone(Required)
	if len(body) > 0 {
		req.Header.Set("Content-Digest", ContentDigest(body))
		components = append(components, "content-digest")
	}
	if len(req.Header.Values("Idempotency-Key")) > 0 {
		// The key decides whether a retry writes anything: the
		// signature covers it (the server requires so).
		components = append(components, "idempotency-key")
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	params := httpsfv.NewParams()
	params.Add("created", now.Unix())
	params.Add("keyid", keyID)
	params.Add("nonce", base64.RawURLEncoding.EncodeToString(nonce[:]))
	il := httpsfv.InnerList{Params: params}
	for _, c := range components {
		il.Items = append(il.Items, httpsfv.NewItem(c))
	}
	input, err := httpsfv.Marshal(il)
	if err != nil {
		return err
	}
	values, err := componentValues(components, req.Method, targetURI(req.URL), req.Header)
	if err != nil {
		return err
	}
	base := signatureBase(components, values, input)
	sig := ed25519.Sign(key, base)
	req.Header.Set("Signature-Input", Label+"="+input)
	req.Header.Set("Signature", Label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
	return nil
}

// targetURI is the absolute URI a request is sent to.
func targetURI(u *url.URL) string { return u.String() }

// signatureBase is RFC 9421 section 2.5: one line per covered component,
// `"name": value`, then the "@signature-params" line, joined by LF with no
// final LF.
func signatureBase(components, values []string, input string) []byte {
	var b strings.Builder
	for i, c := range components {
		// A component name is an sf-string: the names accepted here
		// (lowercase field names and derived components) need no escaping.
		b.WriteString(`"` + c + `": ` + values[i] + "\n")
	}
	b.WriteString(`"@signature-params": ` + input)
	return []byte(b.String())
}

// componentValues derives each covered component's value from the
// request's method, target URI and header.
func componentValues(components []string, method, target string, h http.Header) ([]string, error) {
	u, err := url.Parse(target)
	if err != nil || !u.IsAbs() {
		return nil, fail(FieldSignature, "the target URI %q is not absolute", target)
	}
	out := make([]string, len(components))
	for i, c := range components {
		switch c {
		case "@method":
			out[i] = method
		case "@target-uri":
			out[i] = target
		case "@authority":
			// Lowercase, without the scheme's default port (RFC 9421
			// section 2.2.3, RFC 9110 section 4.2).
			out[i] = strings.ToLower(u.Host)
			if p := u.Port(); (p == "80" && u.Scheme == "http") || (p == "443" && u.Scheme == "https") {
				out[i] = strings.ToLower(u.Hostname())
			}
		case "@scheme":
			out[i] = strings.ToLower(u.Scheme)
		case "@path":
			out[i] = u.EscapedPath()
			if out[i] == "" {
				out[i] = "/"
			}
		case "@query":
			out[i] = "?" + u.RawQuery
		default:
			if strings.HasPrefix(c, "@") {
				return nil, fail(FieldSignature, "covered component %q is not supported", c)
			}
			vs := h.Values(c)
			if len(vs) == 0 {
				return nil, fail(FieldSignature, "covered field %q is not in the request", c)
			}
			trimmed := make([]string, len(vs))
			for j, v := range vs {
				trimmed[j] = strings.TrimSpace(v)
			}
			out[i] = strings.Join(trimmed, ", ")
		}
	}
	return out, nil
}

// validComponent reports whether name is a lowercase field name (an HTTP
// token) or a derived component ("@" and a token): the names that appear
// in a signature base without escaping.
func validComponent(name string) bool {
	t := strings.TrimPrefix(name, "@")
	if t == "" {
		return false
	}
	for _, c := range t {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', strings.ContainsRune("!#$%&'*+-.^_`|~", c):
		default:
			return false
		}
	}
	return true
}

// Keys finds the public key a keyid names; it returns an error saying why
// when it names none (unknown, retired, another party's).
type Keys func(keyID string) (ed25519.PublicKey, error)

// Verifier checks signed requests.
type Verifier struct {
	Keys   Keys
	Nonces *NonceCache
	// BaseURL, when set, is the scheme and authority clients reach the
	// server at (behind a proxy); otherwise the target URI is rebuilt from
	// the request (http or https, Host, request URI).
	BaseURL string
}

// Verify checks the signature on req, whose body has been read into body,
// at time now, and returns the Statement it makes. A failure is *Error.
// Nothing is remembered unless the signature verifies: then its nonce is
// recorded, and a second use of it fails.
func (v *Verifier) Verify(req *http.Request, body []byte, now time.Time) (Statement, error) {
	target := v.BaseURL
	if target == "" {
		scheme := "http"
		if req.TLS != nil {
			scheme = "https"
		}
		target = scheme + "://" + req.Host
	}
	target = strings.TrimSuffix(target, "/") + req.URL.RequestURI()
	st, err := parseSignature(req.Header.Values("Signature-Input"), req.Header.Values("Signature"))
	if err != nil {
		return Statement{}, err
	}
	components := st.components
	if len(body) > 0 && !slices.Contains(components, "content-digest") {
		return Statement{}, fail(FieldSignature, `the request has a body but the signature does not cover "content-digest"`)
	}
	if slices.Contains(components, "content-digest") || len(body) > 0 {
		if err := CheckContentDigest(req.Header.Values("Content-Digest"), body); err != nil {
			return Statement{}, err
		}
	}
	values, err := componentValues(components, req.Method, target, req.Header)
	if err != nil {
		return Statement{}, err
	}
	s := Statement{Method: req.Method, TargetURI: target, SignatureInput: st.input,
		Signature: base64.StdEncoding.EncodeToString(st.signature), KeyID: st.keyID, Created: st.created, Nonce: st.nonce}
	for i, c := range components {
		switch {
		case c == "content-digest":
			s.ContentDigest = values[i]
		case !strings.HasPrefix(c, "@"):
			if s.Fields == nil {
				s.Fields = map[string]string{}
			}
			s.Fields[c] = values[i]
		}
	}
	if d := now.Sub(time.Unix(st.created, 0)); d > MaxSkew || d < -MaxSkew {
		return Statement{}, fail(FieldCreated, "created %d is %s from the server's clock (%d); at most %s either way", st.created, d.Round(time.Second), now.Unix(), MaxSkew)
	}
	if st.expires != 0 && now.Unix() > st.expires {
		return Statement{}, fail(FieldCreated, "the signature expired at %d (now %d)", st.expires, now.Unix())
	}
	pub, err := v.Keys(st.keyID)
	if err != nil {
		return Statement{}, fail(FieldKeyID, "%q: %v", st.keyID, err)
	}
	if !ed25519.Verify(pub, signatureBase(components, values, st.input), st.signature) {
		return Statement{}, fail(FieldSignature, "does not verify with key %q (the request was altered in transit, or signed for another method or URI than %s %s)", st.keyID, req.Method, target)
	}
	if v.Nonces != nil && !v.Nonces.Use(st.keyID, st.nonce, now) {
		return Statement{}, fail(FieldNonce, "%q was already used with key %q in the last %s: a replayed request", st.nonce, st.keyID, NonceWindow)
	}
	return s, nil
}

// parsed is one signature read from the Signature-Input and Signature
// fields.
type parsed struct {
	components []string
	input      string // the serialized inner list with its parameters
	signature  []byte
	keyID      string
	created    int64
	expires    int64
	nonce      string
}

// parseSignature reads the first signature of Signature-Input that has a
// value in Signature, and checks its covered components and parameters.
func parseSignature(inputs, sigs []string) (parsed, error) {
	if len(inputs) == 0 || len(sigs) == 0 {
		return parsed{}, fail(FieldSignature, "missing: this party's writes must carry Signature-Input and Signature (RFC 9421, ed25519)")
	}
	in, err := httpsfv.UnmarshalDictionary(inputs)
	if err != nil {
		return parsed{}, fail(FieldSignature, "Signature-Input is not a structured dictionary: %v", err)
	}
	sd, err := httpsfv.UnmarshalDictionary(sigs)
	if err != nil {
		return parsed{}, fail(FieldSignature, "Signature is not a structured dictionary: %v", err)
	}
	var label string
	for _, name := range in.Names() {
		if _, ok := sd.Get(name); ok {
			label = name
			break
		}
	}
	if label == "" {
		return parsed{}, fail(FieldSignature, "no label of Signature-Input %q has a value in Signature %q", in.Names(), sd.Names())
	}
	m, _ := in.Get(label)
	il, ok := m.(httpsfv.InnerList)
	if !ok {
		return parsed{}, fail(FieldSignature, "Signature-Input %s is not an inner list of components", label)
	}
	var p parsed
	for _, it := range il.Items {
		name, ok := it.Value.(string)
		if !ok {
			return parsed{}, fail(FieldSignature, "Signature-Input %s: a covered component is not a string", label)
		}
		if len(it.Params.Names()) > 0 {
			return parsed{}, fail(FieldSignature, "Signature-Input %s: component parameters (on %q) are not supported", label, name)
		}
		if !validComponent(name) {
			return parsed{}, fail(FieldSignature, "Signature-Input %s: component %q is not a lowercase field name or derived component", label, name)
		}
		if slices.Contains(p.components, name) {
			return parsed{}, fail(FieldSignature, "Signature-Input %s: component %q is covered twice", label, name)
		}
		p.components = append(p.components, name)
	}
	for _, req := range Required {
		if !slices.Contains(p.components, req) {
			return parsed{}, fail(FieldSignature, "Signature-Input %s does not cover %q (it must cover %q)", label, req, Required)
		}
	}
	if p.input, err = httpsfv.Marshal(il); err != nil {
		return parsed{}, fail(FieldSignature, "Signature-Input %s: %v", label, err)
	}
	hasCreated := false
	for _, name := range il.Params.Names() {
		val, _ := il.Params.Get(name)
		switch name {
		case "alg":
			if val != Algorithm {
				return parsed{}, fail(FieldSignature, "algorithm %v is not accepted (only %s)", val, Algorithm)
			}
		case "keyid":
			s, ok := val.(string)
			if !ok || s == "" {
				return parsed{}, fail(FieldKeyID, "keyid is not a non-empty string")
			}
			p.keyID = s
		case "created":
			n, ok := val.(int64)
			if !ok {
				return parsed{}, fail(FieldCreated, "created is not an integer (Unix seconds)")
			}
			p.created, hasCreated = n, true
		case "expires":
			n, ok := val.(int64)
			if !ok {
				return parsed{}, fail(FieldCreated, "expires is not an integer (Unix seconds)")
			}
			p.expires = n
		case "nonce":
			s, ok := val.(string)
			if !ok || s == "" {
				return parsed{}, fail(FieldNonce, "nonce is not a non-empty string")
			}
			p.nonce = s
		}
	}
	switch {
	case p.keyID == "":
		return parsed{}, fail(FieldKeyID, "missing: the signature names no keyid")
	case !hasCreated:
		return parsed{}, fail(FieldCreated, "missing: the signature has no created time")
	case p.nonce == "":
		return parsed{}, fail(FieldNonce, "missing: the signature has no nonce")
	}
	sm, _ := sd.Get(label)
	sit, ok := sm.(httpsfv.Item)
	sig, isBytes := sit.Value.([]byte)
	if !ok || !isBytes {
		return parsed{}, fail(FieldSignature, "Signature %s is not a byte sequence (:base64:)", label)
	}
	if len(sig) != ed25519.SignatureSize {
		return parsed{}, fail(FieldSignature, "Signature %s has %d bytes, an ed25519 signature has %d", label, len(sig), ed25519.SignatureSize)
	}
	p.signature = sig
	return p, nil
}

// Verify checks s offline with pub: the signature base is rebuilt from the
// recorded component values and signature parameters. It does not check
// the time or the nonce (they were checked when the request arrived) nor
// the digest against a body (the statement holds none); it checks that the
// recorded keyid, created and nonce are those the signature covers.
func (s Statement) Verify(pub ed25519.PublicKey) error {
	p, err := parseSignature([]string{Label + "=" + s.SignatureInput}, []string{Label + "=:" + s.Signature + ":"})
	if err != nil {
		return err
	}
	if p.keyID != s.KeyID || p.created != s.Created || p.nonce != s.Nonce {
		return fail(FieldSignature, "the recorded keyid, created or nonce differ from those signed")
	}
	h := http.Header{}
	for k, v := range s.Fields {
		h.Set(k, v)
	}
	if s.ContentDigest != "" {
		h.Set("Content-Digest", s.ContentDigest)
	}
	for _, c := range p.components {
		if c == "content-digest" && s.ContentDigest == "" {
			return fail(FieldContentDigest, "covered but not recorded")
		}
	}
	values, err := componentValues(p.components, s.Method, s.TargetURI, h)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, signatureBase(p.components, values, p.input), p.signature) {
		return fail(FieldSignature, "does not verify with key %q", s.KeyID)
	}
	return nil
}

// ErrDigestMismatch reports a body that is not the one a statement signed.
var ErrDigestMismatch = errors.New("httpsig: the body does not match the signed content digest")

// CheckBody checks that body is the one s signed (by its content digest);
// a statement without a body checks only an empty body.
func (s Statement) CheckBody(body []byte) error {
	if s.ContentDigest == "" {
		if len(body) == 0 {
			return nil
		}
		return ErrDigestMismatch
	}
	if err := CheckContentDigest([]string{s.ContentDigest}, body); err != nil {
		return fmt.Errorf("%w: %v", ErrDigestMismatch, err)
	}
	return nil
}
