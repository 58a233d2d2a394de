package audit

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// TestAcceptanceDigestsAreCheckedAgainstTheRecordedRules: an acceptance
// named only its version, so that a record rewritten to hold other rules
// under that version (other witness keys among them) still read as every
// party's acceptance of them. Each acceptance's rules_sha256 must be the
// digest of the rules the export records for its version, proposed and
// brought into force; acceptances recorded before the digest existed
// verify as before, and are counted.
func TestAcceptanceDigestsAreCheckedAgainstTheRecordedRules(t *testing.T) {
	agreed := map[string]any{"version": 2, "lookahead_s": 240, "witnesses": []any{map[string]any{"party": "alpha", "url": "https://w.alpha.test", "vkey": "alpha+1+AAAA"}}}
	forged := map[string]any{"version": 2, "lookahead_s": 240, "witnesses": []any{map[string]any{"party": "alpha", "url": "https://w.alpha.test", "vkey": "alpha+1+BBBB"}}}
	// The same rules as a newer program holds them, with a field more.
	grown := map[string]any{"version": 2, "lookahead_s": 240, "witnesses": agreed["witnesses"], "new_field": 0}
	digest := func(r any) string {
		b, _ := json.Marshal(r)
		d, err := rulesDigest(b)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	type rec struct {
		kind    string
		content any
	}
	proposed := func(r any) rec {
		return rec{"rules_proposed", map[string]any{"version": 2, "state": "proposed", "rules": r}}
	}
	accepted := func(party, d string) rec {
		c := map[string]any{"version": 2, "party": party}
		if d != "" {
			c["rules_sha256"] = d
		}
		return rec{"rules_accepted", c}
	}
	changed := func(r any, by ...string) rec {
		if by == nil {
			by = []string{"alpha", "bravo"}
		}
		return rec{"rules_changed", map[string]any{"rules": r, "accepted_by": by}}
	}
	for _, c := range []struct {
		name           string
		records        []rec
		fault          string // "" when it verifies
		faultSeq       int64
		bound, unbound int
	}{
		{name: "every acceptance names the rules proposed and brought into force",
			records: []rec{proposed(agreed), accepted("alpha", digest(agreed)), accepted("bravo", digest(agreed)), changed(agreed)}, bound: 2},
		{name: "an acceptance of other rules than those proposed",
			records: []rec{proposed(forged), accepted("alpha", digest(agreed))}, fault: "the party accepted other content", faultSeq: 2},
		{name: "rules brought into force that are not those accepted",
			records: []rec{proposed(agreed), accepted("alpha", digest(agreed)), accepted("bravo", digest(agreed)), changed(forged)}, fault: "accepted other content", faultSeq: 2},
		{name: "rules proposed and brought into force alike, accepted as other",
			records: []rec{proposed(forged), accepted("alpha", digest(forged)), accepted("bravo", digest(agreed)), changed(forged)}, fault: "bravo", faultSeq: 3},
		{name: "a proposal recorded by an older program, brought into force as accepted",
			records: []rec{proposed(agreed), accepted("alpha", digest(grown)), changed(grown, "alpha")}, bound: 1},
		{name: "rules brought into force as accepted by a party that did not accept them",
			records: []rec{proposed(agreed), accepted("alpha", digest(agreed)), changed(agreed)}, fault: "no acceptance of that version by bravo", faultSeq: 3},
		{name: "acceptances recorded before the digest existed",
			records: []rec{proposed(agreed), accepted("alpha", ""), accepted("bravo", ""), changed(forged)}, unbound: 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t)
			l := NewLog(testKey(t, 1), 100)
			for i, r := range c.records {
				if err := st.Update(context.Background(), func(tx store.Tx) error {
					_, err := l.Append(tx, "deconflict", r.kind, Everyone, r.content, t0.Add(time.Duration(i)*time.Second))
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			sum, err := Verify(strings.NewReader(string(export(t, st, l, "", 1))), l.PublicKey())
			if c.fault == "" {
				if err != nil || sum.RulesAcceptancesBound != c.bound || sum.RulesAcceptancesUnbound != c.unbound {
					t.Fatalf("Verify: %v, %d bound and %d unbound acceptances; want none, %d and %d", err, sum.RulesAcceptancesBound, sum.RulesAcceptancesUnbound, c.bound, c.unbound)
				}
				return
			}
			var ve *Error
			if !errors.As(err, &ve) || ve.Seq != c.faultSeq || !strings.Contains(ve.Problem, c.fault) {
				t.Fatalf("Verify: %v; want a fault at record %d naming %q", err, c.faultSeq, c.fault)
			}
		})
	}
}
