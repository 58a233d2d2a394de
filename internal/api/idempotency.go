package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/dunglas/httpsfv"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
)

// Idempotent retries (draft-ietf-httpapi-idempotency-key-header; the
// service keeps the answers, see service/idempotency.go): the writes that
// make something new (a hotline message, a volume, a rules proposal) and
// the writes whose repeat is refused once the first succeeded (a volume's
// change or state, a rules answer) take an Idempotency-Key header, an
// sf-string of 1 to MaxIdempotencyKeyLen visible ASCII characters (not '"'
// or '\'). Sent
// again with the same key (signed again with a fresh nonce), the write is
// answered what it was answered the first time, with the header
// Idempotent-Replayed: true, and writes nothing. The key is the calling
// party's own: another party's key of the same string is another key.
// The writes that issue a token (a party's creation, a rotation) take a
// key too, but their answer, which holds the token, is not kept: a retry
// is answered a new token instead (writeToken, service.issueToken).
//
// The fingerprint that tells a retry from another request with the same
// key is SHA-256 over the method, the request target (path and query) and
// the SHA-256 of the body. A signed request (RFC 9421) carrying the key
// must cover the idempotency-key field, so that the key that makes a
// retry do nothing is the party's statement too, and is in the record
// with it (the statement's fields).

// IdempotencyKeyHeader is the request header field of the key.
const IdempotencyKeyHeader = "Idempotency-Key"

// ReplayedHeader marks an answer kept from an earlier request with the
// same idempotency key.
const ReplayedHeader = "Idempotent-Replayed"

// MaxIdempotencyKeyLen bounds a key's length in characters.
const MaxIdempotencyKeyLen = 255

// parseIdempotencyKey reads the Idempotency-Key field values of a request:
// "" and nil when there is none; otherwise exactly one sf-string without
// parameters, 1 to MaxIdempotencyKeyLen visible ASCII characters other
// than '"' and '\'.
func parseIdempotencyKey(values []string) (string, error) {
	if len(values) == 0 {
		return "", nil
	}
	if len(values) > 1 {
		return "", fmt.Errorf("sent %d times; at most once", len(values))
	}
	item, err := httpsfv.UnmarshalItem(values)
	if err != nil {
		return "", fmt.Errorf("not a structured field string (a quoted string such as \"8e03978e-40d5-43e8-bc93-6894a57f9324\"): %v", err)
	}
	key, ok := item.Value.(string)
	if !ok {
		return "", fmt.Errorf("not a string but %T: quote it (\"...\")", item.Value)
	}
	if len(item.Params.Names()) > 0 {
		return "", fmt.Errorf("has parameters %q; a key has none", item.Params.Names())
	}
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return "", fmt.Errorf("is %d characters long; 1 to %d", len(key), MaxIdempotencyKeyLen)
	}
	for i := range len(key) {
		// An sf-string holds printable ASCII alone (0x20 to 0x7E); a
		// space, and the '"' and '\' that need escaping, are refused
		// too, so that a key is written one way only.
		if c := key[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return "", fmt.Errorf("character %d (%q) is not visible ASCII other than '\"' and '\\'", i, c)
		}
	}
	return key, nil
}

func idempotencyKeyProblem(detail string) *Problem {
	return badRequest(IdempotencyKeyHeader, IdempotencyKeyHeader+": "+detail)
}

// idempotencyFingerprint is the fingerprint of a request: its method,
// target (path and query) and body digest.
func idempotencyFingerprint(r *http.Request, body []byte) []byte {
	digest := sha256.Sum256(body)
	h := sha256.New()
	for _, part := range [][]byte{[]byte(r.Method), []byte(r.URL.RequestURI()), digest[:]} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return h.Sum(nil)
}

// withIdempotency reads the request's Idempotency-Key (a route that takes
// one) and marks its context with it and the request's fingerprint; a
// request without the header is returned as it is.
func withIdempotency(r *http.Request, p party.Principal) (*http.Request, error) {
	key, err := parseIdempotencyKey(r.Header.Values(IdempotencyKeyHeader))
	if err != nil {
		return nil, idempotencyKeyProblem(err.Error())
	}
	if key == "" {
		return r, nil
	}
	var body []byte
	if r.Body != nil {
		if body, err = readBody(r.Body); err != nil {
			return nil, jsonProblem(err)
		}
		r.Body = &readBodyCloser{Reader: bytes.NewReader(body), body: body}
	}
	k := service.Idempotency{Party: p.Party, Key: key, Fingerprint: idempotencyFingerprint(r, body)}
	return r.WithContext(service.WithIdempotency(r.Context(), k, nil)), nil
}

// jsonAnswer renders a result as writeJSON answers it.
func jsonAnswer(status int) service.Render {
	return func(v any) (int, []byte, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return 0, nil, err
		}
		return status, append(b, '\n'), nil
	}
}

// writeAnswer answers a write that succeeded: with the answer kept with
// it when the request carried an idempotency key (the same bytes a retry
// is answered), else with v as JSON.
func writeAnswer(w http.ResponseWriter, ctx context.Context, status int, v any) error {
	if st, body, ok := service.Answered(ctx); ok {
		return writeRaw(w, st, body)
	}
	return writeJSON(w, status, v)
}

// writeRaw answers with a JSON body as it is.
func writeRaw(w http.ResponseWriter, status int, body []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// writeReplayed answers a request sent again with its idempotency key
// with the answer kept from the first; false when err is not that.
func writeReplayed(w http.ResponseWriter, err error) bool {
	var rep *service.Replayed
	if !errors.As(err, &rep) {
		return false
	}
	w.Header().Set(ReplayedHeader, "true")
	_ = writeRaw(w, rep.Status, rep.Body)
	return true
}

// idempotencyProblem maps the refusals of a request's idempotency key.
func idempotencyProblem(err error) *Problem {
	var p *Problem
	switch {
	case errors.Is(err, service.ErrIdempotencyKeyReused):
		p = problem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key already used",
			"this party used the Idempotency-Key for another request (another method, path or body); a key names one request: send this one with a new key")
	case errors.Is(err, service.ErrIdempotencyInProgress):
		p = problem(http.StatusConflict, "idempotency-in-progress", "A request with this Idempotency-Key is outstanding",
			"a request of this party with the same Idempotency-Key is still being served; send it again once that one is answered")
	case errors.Is(err, service.ErrIdempotencyKeysExhausted):
		p = problem(http.StatusTooManyRequests, "idempotency-keys-exhausted", "Too many Idempotency-Keys kept",
			err.Error()+"; send the write without an Idempotency-Key, or once older keys expire")
	default:
		return nil
	}
	p.Field = IdempotencyKeyHeader
	return p
}
