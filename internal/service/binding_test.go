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
