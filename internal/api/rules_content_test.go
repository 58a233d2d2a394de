package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/rules"
)

// TestAcceptanceNamesTheContentAccepted: a party's acceptance bound only
// the version number of its path, so that the record could read an
// acceptance given for one content as the acceptance of other rules of the
// same version. An acceptance names the digest of the rules it accepts
// (the proposal's rules_sha256); one without it, or naming other content,
// is refused naming the field and changes nothing: no answer, no record,
// the party's hotline item still open.
func TestAcceptanceNamesTheContentAccepted(t *testing.T) {
	e := newEnv(t, Options{})
	var p rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"lookahead_s": 240, "levels": []any{
		map[string]any{"name": "advisory", "max_time_to_los_s": 240}, map[string]any{"name": "warning", "max_time_to_los_s": 60}}}, 202, &p)
	want, err := rules.ContentSHA256(p.Rules)
	if err != nil || p.RulesSHA256 != want || len(want) != 64 {
		t.Fatalf("the proposal's rules_sha256 %q, want the digest of its rules %q (%v)", p.RulesSHA256, want, err)
	}
	if ps := e.proposals(e.tokens["russia"]); len(ps) != 1 || ps[0].RulesSHA256 != want {
		t.Fatalf("the proposals listed: %+v, want rules_sha256 %s", ps, want)
	}
	other := p.Rules
	other.LookaheadS = 300
	otherDigest, _ := rules.ContentSHA256(other)
	accepted := func() int {
		return strings.Count(string(e.mustDo("GET", "/v1/audit", e.operator, nil, 200, nil)), `"kind":"rules_accepted"`)
	}
	before := accepted()
	for _, c := range []struct {
		name   string
		body   any
		status int
		slug   string
	}{
		{"no body", nil, http.StatusBadRequest, "invalid-field"},
		{"an empty object", map[string]any{}, http.StatusBadRequest, "invalid-field"},
		{"the digest of other rules", map[string]any{"rules_sha256": otherDigest}, http.StatusConflict, "rules-content-differs"},
		{"the digest in capitals", map[string]any{"rules_sha256": strings.ToUpper(want)}, http.StatusConflict, "rules-content-differs"},
	} {
		code, body, _ := e.do("POST", answerPath(p.Version, "accept"), e.tokens["coalition"], c.body)
		var pr Problem
		_ = json.Unmarshal(body, &pr)
		if code != c.status || pr.Field != "rules_sha256" || !strings.HasSuffix(pr.Type, "/"+c.slug) {
			t.Errorf("an acceptance with %s: %d %s, want %d %s naming rules_sha256", c.name, code, body, c.status, c.slug)
		}
	}
	if ps := e.proposals(e.tokens["russia"]); len(ps) != 1 || len(ps[0].Answers) != 0 || len(ps[0].WaitingFor) != 2 {
		t.Fatalf("after the refused acceptances: %+v", ps)
	}
	if n := accepted(); n != before {
		t.Fatalf("the refused acceptances left %d rules_accepted records", n-before)
	}
	if item, _ := e.rulesItem("coalition", p.Version); ackedBy(item, "coalition") {
		t.Fatalf("a refused acceptance acknowledged the party's item: %v", item)
	}

	// The digest of the proposal accepts it, and the record names it.
	e.mustDo("POST", answerPath(p.Version, "accept"), e.tokens["coalition"], map[string]any{"rules_sha256": want}, 200, &p)
	if len(p.AcceptedBy) != 1 || p.AcceptedBy[0] != "coalition" {
		t.Fatalf("after the acceptance: %+v", p)
	}
	if log := string(e.mustDo("GET", "/v1/audit", e.operator, nil, 200, nil)); !strings.Contains(log, `"rules_sha256":"`+want+`"`) {
		t.Errorf("the rules_accepted record does not name the digest accepted")
	}
}
