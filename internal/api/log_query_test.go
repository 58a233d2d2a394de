package api

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestProofParametersAreCanonicalAndGivenOnce: the proof endpoints read
// "01" as 1 and took the first of a repeated parameter, so that two
// spellings asked for one proof and a parameter given twice meant what
// the server chose. Both are refused with a problem naming the parameter;
// the canonical spelling is served.
func TestProofParametersAreCanonicalAndGivenOnce(t *testing.T) {
	e := newEnv(t, Options{})
	for _, ok := range []string{
		"/v1/log/proof/inclusion?index=0&size=1",
		"/v1/log/proof/consistency?from=0&size=1",
		"/v1/log/proof/consistency?from=1&size=1",
	} {
		if code, body, _ := e.do("GET", ok, e.tokens["russia"], nil); code != http.StatusOK {
			t.Fatalf("%s: %d %s", ok, code, body)
		}
	}
	for _, c := range []struct{ path, field string }{
		{"/v1/log/proof/inclusion?index=00&size=1", "index"},
		{"/v1/log/proof/inclusion?index=0&size=01", "size"},
		{"/v1/log/proof/inclusion?index=%2B0&size=1", "index"},
		{"/v1/log/proof/inclusion?index=0&size=1&size=1", "size"},
		{"/v1/log/proof/inclusion?index=0&index=0&size=1", "index"},
		{"/v1/log/proof/consistency?from=01&size=1", "from"},
		{"/v1/log/proof/consistency?from=1&size=%2B1", "size"},
		{"/v1/log/proof/consistency?from=0&from=1&size=1", "from"},
		{"/v1/log/proof/consistency?from=1&size=1&size=", "size"},
	} {
		code, body, hdr := e.do("GET", c.path, e.tokens["russia"], nil)
		var p Problem
		if code != http.StatusBadRequest || hdr.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Field != c.field {
			t.Errorf("%s: %d %s %s; want 400 problem+json naming %s", c.path, code, hdr.Get("Content-Type"), body, c.field)
		}
	}
}
