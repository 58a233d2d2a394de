package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/audit"
)

// audit verify says how many acceptances of the rules named the content
// they accept, checked against the rules recorded, and how many were
// recorded before acceptances named it (verified by their version only).
func TestAuditVerifyReportsTheAcceptancesOfTheRules(t *testing.T) {
	var out bytes.Buffer
	printVerifyReport(&out, audit.Summary{Records: 9, RulesAcceptancesBound: 2, RulesAcceptancesUnbound: 1}, false)
	for _, want := range []string{
		"OK: 2 acceptances of the rules name the digest of the rules they accept",
		"note: 1 acceptances of the rules were recorded before acceptances named the content accepted",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	printVerifyReport(&out, audit.Summary{Records: 9}, false)
	if strings.Contains(out.String(), "acceptances") {
		t.Errorf("a report of an export without acceptances speaks of them:\n%s", out.String())
	}
}
