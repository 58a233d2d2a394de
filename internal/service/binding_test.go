package service

import (
	"encoding/json"
	"testing"

	"github.com/deconflict/deconflict/internal/audit"
)

// A signed answer to proposal "02" (or "+2") binds to a record of version
// 2, as the server answered it before it refused such a path: the record
// of a genuine answer so spelled verified nowhere. Another version, or a
// path that is no number, does not bind.
func TestRulesAnswerBindsTheVersionAsTheServerReadIt(t *testing.T) {
	for _, accept := range []bool{true, false} {
		kind := "rules_accepted"
		if !accept {
			kind = "rules_rejected"
		}
		rec := audit.Record{Kind: kind, Content: json.RawMessage(`{"version":2}`)}
		for path, binds := range map[string]bool{"2": true, "02": true, "+2": true, "3": false, "-2": false, "two": false, "": false} {
			err := bindRulesAnswer(accept)(rec, []string{path}, nil)
			if (err == nil) != binds {
				t.Errorf("%s of version 2 signed for path version %q: %v, want binding %v", kind, path, err, binds)
			}
		}
	}
}

// A signed acceptance binds to its record only when the record names the
// digest of the rules the party signed in its body: a record of the
// acceptance of other content (or of none) is not the party's. An
// acceptance recorded before the digest existed (no digest in the body
// nor in the record) binds as before.
func TestRulesAcceptanceBindsTheDigestSigned(t *testing.T) {
	const a, b = "aa11", "bb22"
	for _, c := range []struct {
		record, body string
		binds        bool
	}{
		{`{"version":2,"rules_sha256":"` + a + `"}`, `{"rules_sha256":"` + a + `"}`, true},
		{`{"version":2,"rules_sha256":"` + b + `"}`, `{"rules_sha256":"` + a + `"}`, false},
		{`{"version":2}`, `{"rules_sha256":"` + a + `"}`, false},
		{`{"version":2,"rules_sha256":"` + a + `"}`, `{}`, false},
		{`{"version":2}`, `{}`, true},
		{`{"version":2}`, ``, true},
	} {
		rec := audit.Record{Kind: "rules_accepted", Content: json.RawMessage(c.record)}
		err := bindRulesAnswer(true)(rec, []string{"2"}, []byte(c.body))
		if (err == nil) != c.binds {
			t.Errorf("record %s, signed body %q: %v, want binding %v", c.record, c.body, err, c.binds)
		}
	}
}
