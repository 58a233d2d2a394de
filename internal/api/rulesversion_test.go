package api

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
)

// TestRulesVersionIsSpelledOneWay: the {version} of an answer's path is
// read as a decimal number, and the record binds a signed answer to its
// proposal by that number as the path spells it. A path that spells the
// version otherwise ("02", "+2") was answered like the canonical one, and
// the record then held a genuine signed acceptance that no longer
// verified (version 2 against "02"): one party could leave the record
// ambiguous at will. Such a path is refused, naming the version, and
// changes nothing; the record verifies.
func TestRulesVersionIsSpelledOneWay(t *testing.T) {
	e := newEnv(t, Options{})
	key, _ := partykey.Generate()
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{partykey.Format(partykey.Public(key))}}, 201, &tok)
	var p rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"time_buffer_s": 45}, 202, &p)
	v := strconv.FormatInt(p.Version, 10)
	for _, spelled := range []string{"0" + v, "+" + v, "00" + v} {
		code, pr := send(t, e, signedRequest(t, e, key, "POST", "/v1/rules/"+spelled+"/accept", tok.Token, nil))
		if code != http.StatusBadRequest || pr.Field != "version" {
			t.Errorf("accepting version %s spelled %q: %d %+v, want 400 naming version", v, spelled, code, pr)
		}
		code, pr = send(t, e, signedRequest(t, e, key, "POST", "/v1/rules/"+spelled+"/reject", tok.Token, []byte(`{"reason":"no"}`)))
		if code != http.StatusBadRequest || pr.Field != "version" {
			t.Errorf("rejecting version %s spelled %q: %d %+v, want 400 naming version", v, spelled, code, pr)
		}
	}
	if ps := e.proposals(e.tokens["russia"]); len(ps) != 1 || !slices.Contains(ps[0].WaitingFor, "delta") || len(ps[0].Answers) != 0 {
		t.Fatalf("after the refused answers: %+v", ps)
	}
	// The canonical spelling answers, and the record verifies.
	if code, pr := send(t, e, signedRequest(t, e, key, "POST", "/v1/rules/"+v+"/accept", tok.Token, []byte(`{"rules_sha256":"`+p.RulesSHA256+`"}`))); code != http.StatusOK {
		t.Fatalf("accepting version %s: %d %+v", v, code, pr)
	}
	var export bytes.Buffer
	if err := e.svc.ExportAudit(context.Background(), operatorPrincipal(), &export, 1); err != nil {
		t.Fatal(err)
	}
	keys := audit.PartyKeys{"delta": {partykey.ID(partykey.Public(key)): partykey.Public(key)}}
	pub, _ := audit.ParsePublicKey(e.svc.AuditKey().PublicKey)
	if _, err := audit.VerifyWith(bytes.NewReader(export.Bytes()), pub, audit.VerifyOptions{PartyKeys: keys, Bind: service.BindStatement}); err != nil {
		t.Fatalf("the record does not verify: %v", err)
	}
}
