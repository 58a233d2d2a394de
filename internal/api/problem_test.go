package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/volume"
)

// Any package's refusal of a field, however deep it is wrapped, answers 400
// naming the field: the API knows one shape, so a new package's field error
// cannot fall through to a 500.
func TestFieldErrorOfAnyPackageIsA400(t *testing.T) {
	err := fmt.Errorf("somepackage: %w", fmt.Errorf("wrapped: %w", fielderr.New("statement.signature", "not base64")))
	p := toProblem(err)
	if p.Status != http.StatusBadRequest || p.Field != "statement.signature" {
		t.Fatalf("got %d field %q, want 400 naming statement.signature", p.Status, p.Field)
	}
	if p.Detail != "statement.signature: not base64" {
		t.Errorf("detail %q", p.Detail)
	}
}

// Sentinel errors keep their statuses after being wrapped.
func TestSentinelsMapToStatuses(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{service.ErrForbidden, http.StatusForbidden},
		{service.ErrNotFound, http.StatusNotFound},
		{volume.ErrStaleVersion, http.StatusConflict},
		// The write may have been applied: not a failure of the server's
		// to hide behind 500, but one to read back after.
		{service.ErrOutcomeUnknown, http.StatusServiceUnavailable},
		{service.ErrIdempotencyKeyReused, http.StatusUnprocessableEntity},
		{service.ErrIdempotencyInProgress, http.StatusConflict},
		{service.ErrIdempotencyKeysExhausted, http.StatusTooManyRequests},
		{service.ErrOvertaken, http.StatusConflict},
		{errors.New("something else"), http.StatusInternalServerError},
	} {
		if got := toProblem(fmt.Errorf("ctx: %w", c.err)).Status; got != c.want {
			t.Errorf("%v: status %d, want %d", c.err, got, c.want)
		}
	}
}
