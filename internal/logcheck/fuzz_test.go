package logcheck

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/printable"
)

// FuzzParseProof: the server's answer of a consistency proof is read by a
// party that does not trust it. Whatever it answers, reading it never
// panics; a proof read is the hashes the answer lists, in order; anything
// else is a *notAProofError (an answer that is no proof, which the check
// reports as the log's), whose text is short and printable whatever the
// answer held.
func FuzzParseProof(f *testing.F) {
	f.Add([]byte(`{"from":1,"size":3,"proof":["50906165efbc0ba0d0e12bf1118ce7d74e11def2d2c924b1ef4e1b49ef8b476c"]}`))
	f.Add([]byte(`{"proof":[]}`))
	f.Add([]byte(`{"proof":["not a hash"]}`))
	f.Add([]byte(`{"proof":["` + strings.Repeat("ab", 40) + `"]}`))
	f.Add([]byte(`{"proof":["` + strings.Repeat("z", 4096) + `"]}`))
	f.Add([]byte(`{"proof":"` + "\x1b[2K" + `"}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		proof, err := parseProof(answer)
		if err != nil {
			var np *notAProofError
			if !errors.As(err, &np) {
				t.Fatalf("%q: %v is not a notAProofError", answer, err)
			}
			if msg := printable.Escape(err.Error()); len(msg) > 1024 {
				t.Fatalf("%q: an error of %d bytes", answer, len(msg))
			}
			return
		}
		var out struct {
			Proof []string `json:"proof"`
		}
		if err := json.Unmarshal(answer, &out); err != nil {
			t.Fatalf("%q read as a proof, but it is no JSON: %v", answer, err)
		}
		if len(out.Proof) != len(proof) {
			t.Fatalf("%q read as %d hashes", answer, len(proof))
		}
		for i, h := range proof {
			if hex.EncodeToString(h[:]) != strings.ToLower(out.Proof[i]) {
				t.Fatalf("%q: hash %d read as %x", answer, i, h)
			}
		}
	})
}
