package api

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
)

// Signed writes (RFC 9421, internal/httpsig): every write of a party that
// registered a public key, and of every party when the rules set
// signatures_required, must carry a valid signature by one of the party's
// current keys. A refusal is 401 problem+json whose field names what is
// wrong (signature, content-digest, created, nonce, keyid); it changes
// nothing. The verified statement goes to the service, which records it.

// idempotencyKeyComponent is the covered component of the Idempotency-Key
// field.
const idempotencyKeyComponent = "idempotency-key"

// isWrite reports whether a request changes something.
func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodDelete || method == http.MethodPatch
}

func signatureProblem(field, detail string) *Problem {
	p := problem(http.StatusUnauthorized, "signature", "Signature refused", detail)
	p.Field = field
	return p
}

// checkSignature verifies the signature of a party's write and returns the
// request to serve (its body re-readable, its context carrying the
// statement).
func (h *Handler) checkSignature(r *http.Request, p party.Principal) (*http.Request, error) {
	if p.Operator || !isWrite(r.Method) {
		return r, nil
	}
	keys, err := h.svc.SigningKeys(r.Context(), p.Party)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		if h.svc.Rules().SignaturesRequired {
			return nil, signatureProblem(httpsig.FieldKeyID, "the agreed rules require every write to be signed, and party "+p.Party+" has no key: register one first")
		}
		return r, nil
	}
	var body []byte
	if r.Body != nil {
		if body, err = readBody(r.Body); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, problem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large", err.Error())
			}
			return nil, err
		}
		r.Body = &readBodyCloser{Reader: bytes.NewReader(body), body: body}
	}
	v := &httpsig.Verifier{Nonces: h.nonces, BaseURL: h.opt.PublicURL, Keys: func(id string) (ed25519.PublicKey, error) {
		if k, ok := keys[id]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("not a current key of party %s", p.Party)
	}}
	st, err := v.Verify(r, body, h.svc.Now())
	var se *httpsig.Error
	if errors.As(err, &se) {
		return nil, signatureProblem(se.Field, se.Error())
	}
	if err != nil {
		return nil, err
	}
	// The key decides whether the write is done or answered from an
	// earlier one: it is part of what the party states.
	if len(r.Header.Values(IdempotencyKeyHeader)) > 0 && st.Fields[idempotencyKeyComponent] == "" {
		return nil, signatureProblem(httpsig.FieldSignature, `the request carries an Idempotency-Key the signature does not cover: cover "`+idempotencyKeyComponent+`"`)
	}
	return r.WithContext(service.WithStatement(r.Context(), p.Party, st, body)), nil
}

// readBodyCloser is a request body already read (to check its digest):
// readBody hands its bytes on instead of copying them again.
type readBodyCloser struct {
	*bytes.Reader
	body []byte
}

func (*readBodyCloser) Close() error { return nil }

// readBody reads a request body whole: the bytes of one already read
// (and not yet consumed) as they are, without a second copy.
func readBody(r io.Reader) ([]byte, error) {
	if rb, ok := r.(*readBodyCloser); ok && rb.Len() == len(rb.body) {
		_, _ = rb.Seek(0, io.SeekEnd)
		return rb.body, nil
	}
	return io.ReadAll(r)
}
