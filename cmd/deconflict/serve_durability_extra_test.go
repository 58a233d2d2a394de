package main

import (
	"context"
	"net/http"

	"github.com/deconflict/deconflict/internal/store"
)

// durabilityExtraWrites adds hotline messages and acknowledgments to the
// load of the kill -9 test; durabilityExtraChecks checks them afterwards.
func durabilityExtraWrites(ctx context.Context, client *http.Client, base string, tokens map[string]string, party string) {
}

func durabilityExtraChecks(tx store.Tx) error { return nil }
