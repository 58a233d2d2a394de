package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
)

// ProblemBase prefixes every problem type URI. The slugs after it are
// stable: clients branch on them.
const ProblemBase = "https://deconflict.dev/problems/"

// Problem is an RFC 9457 problem detail, with the field at fault.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Field  string `json:"field,omitempty"`
	// Line is the line at fault of a file sent whole (an OpenAir file).
	Line int `json:"line,omitempty"`
	// Missing lists the awareness-key entries a volume write lacked, in
	// reduced form.
	Missing any `json:"missing,omitempty"`
	// Conflicts lists the higher-priority volumes a write conflicts with.
	Conflicts any `json:"conflicts,omitempty"`
	// Alternatives are the nearest conflict-free variants of a volume
	// write refused for a conflict.
	Alternatives any `json:"alternatives,omitempty"`
	// AlternativesOmitted says why a volume write refused for a conflict
	// has no alternatives: "budget", the party's budget of searches was
	// spent.
	AlternativesOmitted string `json:"alternatives_omitted,omitempty"`
	// ClearedAt is when an alert asked about cleared.
	ClearedAt *time.Time `json:"cleared_at,omitempty"`

	retryAfterS int
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

func problem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemBase + slug, Title: title, Status: status, Detail: detail}
}

func badRequest(field, detail string) *Problem {
	p := problem(http.StatusBadRequest, "invalid-field", "Invalid field", detail)
	p.Field = field
	return p
}

// The problem slugs, one per kind of failure.
var (
	errUnauthenticated = problem(http.StatusUnauthorized, "unauthenticated", "Unauthenticated",
		"a valid bearer token is required (Authorization: Bearer TOKEN)")
	errForbidden = problem(http.StatusForbidden, "forbidden", "Forbidden",
		"this party may not do this")
)

// writeProblem answers with p as application/problem+json.
func writeProblem(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Del("Content-Length")
	if p.retryAfterS > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfterS))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="deconflict"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// toProblem maps an error of the layers below onto its problem.
func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var fe *fielderr.Error
	if errors.As(err, &fe) {
		return badRequest(fe.Field, fe.Error())
	}
	var se *httpsig.Error
	if errors.As(err, &se) {
		// A replay found by the store (the nonce used on another replica).
		return signatureProblem(se.Field, se.Error())
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return problem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
			"the body exceeds "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
	}
	if pp := domainProblem(err); pp != nil {
		return pp
	}
	if pp := idempotencyProblem(err); pp != nil {
		return pp
	}
	var up *store.UpgradedError
	if errors.As(err, &up) {
		// Not retried here: this process stays fenced until it is
		// replaced by the newer version (another replica may serve it).
		return problem(http.StatusServiceUnavailable, "store-upgraded", "Store upgraded by a newer version",
			fmt.Sprintf("the store's schema is at version %d, beyond this server's %d: a newer version of deconflict migrated it, and this server writes nothing more; send the request to a replica of the newer version", up.Stored, up.Known))
	}
	var nr *service.NewerRulesError
	if errors.As(err, &nr) {
		// As store-upgraded: this process stays behind until it is
		// replaced by the newer version.
		return problem(http.StatusServiceUnavailable, "rules-of-newer-version", "Rules written by a newer version",
			nr.Error()+"; send the request to a replica of the newer version")
	}
	var rc *service.RulesContentError
	if errors.As(err, &rc) {
		p := problem(http.StatusConflict, "rules-content-differs", "The acceptance names other rules than those proposed", rc.Error())
		p.Field = "rules_sha256"
		return p
	}
	var tp *service.TooManyProposalsError
	if errors.As(err, &tp) {
		return problem(http.StatusConflict, "too-many-open-proposals", "Too many proposals of the rules open", tp.Error())
	}
	var ce *service.AlertClearedError
	if errors.As(err, &ce) {
		p := problem(http.StatusGone, "alert-cleared", "Alert cleared",
			"the alert cleared at "+ce.ClearedAt.UTC().Format(time.RFC3339Nano)+"; there is nothing left to resolve")
		at := ce.ClearedAt.UTC()
		p.ClearedAt = &at
		return p
	}
	switch {
	case errors.Is(err, service.ErrForbidden):
		return errForbidden
	case errors.Is(err, service.ErrNotFound), errors.Is(err, store.ErrNotFound), errors.Is(err, party.ErrUnknown), errors.Is(err, party.ErrKeyUnknown):
		return problem(http.StatusNotFound, "not-found", "Not found", err.Error())
	case errors.Is(err, service.ErrProposalClosed):
		return problem(http.StatusConflict, "proposal-closed", "Proposal closed or answered", err.Error())
	case errors.Is(err, service.ErrAnswerRequired):
		return problem(http.StatusConflict, "answer-required", "Answer the proposal", err.Error())
	case errors.Is(err, party.ErrExists), errors.Is(err, party.ErrKeyExists):
		return problem(http.StatusConflict, "exists", "Already exists", err.Error())
	case errors.Is(err, service.ErrRevokedSince):
		return problem(http.StatusConflict, "revoked", "Party revoked since", err.Error())
	case errors.Is(err, service.ErrTokenSuperseded):
		p := problem(http.StatusConflict, "superseded", "Rotation superseded by a later one", err.Error())
		p.Field = IdempotencyKeyHeader
		return p
	case errors.Is(err, service.ErrOvertaken):
		p := problem(http.StatusConflict, "overtaken", "Another request under this Idempotency-Key was served first", err.Error())
		p.Field = IdempotencyKeyHeader
		return p
	case errors.Is(err, party.ErrUnauthenticated):
		return errUnauthenticated
	case errors.Is(err, store.ErrConflict):
		return problem(http.StatusConflict, "conflict", "Conflicting change", "the record was changed concurrently; read it again and retry")
	case errors.Is(err, service.ErrOutcomeUnknown):
		return problem(http.StatusServiceUnavailable, "outcome-unknown", "Outcome unknown",
			"the database did not confirm the commit and could not be asked whether it happened: the change may have been applied; send it again with the same Idempotency-Key (signed again) to be answered what was done, or read it back before sending it again without one")
	case errors.Is(err, context.DeadlineExceeded):
		return problem(http.StatusServiceUnavailable, "timeout", "Request took too long", "the request time limit was reached; nothing was committed unless the change is visible")
	case errors.Is(err, context.Canceled):
		return problem(http.StatusServiceUnavailable, "cancelled", "Request cancelled", "the request was cancelled")
	}
	return problem(http.StatusInternalServerError, "internal", "Internal error", "the server failed; the error is logged")
}
