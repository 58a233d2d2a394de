package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// The acceptances of the rules name what they accept. A party's
// acceptance of a proposal of the rules (a rules_accepted record, content
// {"version", "party", "rules_sha256"}) names the digest of the rules it
// accepted: the hex SHA-256 of the canonical JSON (Canonical) of the
// proposal's rules, version included, sent in the signed body of its
// request (the service's Binder checks that the record holds the digest
// the party signed). A verification checks each digest against the rules
// the export records for that version: those of its rules_proposed record
// (content the proposal, {"rules": ..}), and those of the rules_changed
// record that brought it into force (content {"rules": .., "accepted_by"}).
// So an acceptance signed for one content cannot be read, in a rewritten
// or forked record, as the acceptance of other rules of the same version,
// and the rules in force (the witness keys every party agreed to among
// them) are those every acceptance named. In an export from seq 1, each
// party a rules_changed record names in accepted_by must have an
// acceptance of that version recorded before it.
//
// An acceptance that matches no rules_proposed record is held until the
// end: the rules_changed record of its version may still vindicate it (a
// proposal recorded by an older program, whose rules a newer one holds
// with a field more, and brings into force with it). Acceptances recorded
// before the digest existed name none: they are counted
// (Summary.RulesAcceptancesUnbound) and verified as before, by their
// signature and version only.

// rulesDigest is the digest an acceptance names of rules given as JSON.
func rulesDigest(rulesJSON json.RawMessage) (string, error) {
	canon, err := Canonical(rulesJSON)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// acceptance is one rules_accepted record naming a digest.
type acceptance struct {
	seq    int64
	party  string
	digest string
}

// rulesAcceptances checks the digests of acceptances in record order.
type rulesAcceptances struct {
	// proposed is the digest of the rules_proposed record of each
	// version; accepted the acceptances of each version not yet brought
	// into force; unmatched those of them that differ from proposed.
	proposed  map[int64]string
	accepted  map[int64][]acceptance
	unmatched map[int64][]acceptance
	// answered are the parties with an acceptance of each version
	// recorded (naming a digest or not); fromStart is set when the
	// export starts at seq 1, so that every acceptance is in it.
	answered  map[int64]map[string]bool
	started   bool
	fromStart bool
	// bound counts the acceptances naming a digest, unbound those
	// recorded before the digest existed.
	bound   int
	unbound int
}

func newRulesAcceptances() *rulesAcceptances {
	return &rulesAcceptances{proposed: map[int64]string{}, accepted: map[int64][]acceptance{}, unmatched: map[int64][]acceptance{}, answered: map[int64]map[string]bool{}}
}

// take checks one record; it returns the seq of a faulty record and what
// is wrong ("" when nothing).
func (a *rulesAcceptances) take(r *Record) (int64, string) {
	if !a.started {
		a.started, a.fromStart = true, r.Seq == 1
	}
	if r.Hidden() {
		return 0, ""
	}
	switch r.Kind {
	case "rules_proposed":
		var c struct {
			Version int64           `json:"version"`
			Rules   json.RawMessage `json:"rules"`
		}
		if json.Unmarshal(r.Content, &c) != nil || len(c.Rules) == 0 {
			// Not a proposal's shape: nothing to compare with.
			return 0, ""
		}
		d, err := rulesDigest(c.Rules)
		if err != nil {
			return r.Seq, "rules_proposed: rules: " + err.Error()
		}
		a.proposed[c.Version] = d
	case "rules_accepted":
		var c struct {
			Version int64  `json:"version"`
			Party   string `json:"party"`
			Digest  string `json:"rules_sha256"`
		}
		if err := json.Unmarshal(r.Content, &c); err != nil {
			return r.Seq, "rules_accepted: unreadable: " + err.Error()
		}
		if a.answered[c.Version] == nil {
			a.answered[c.Version] = map[string]bool{}
		}
		a.answered[c.Version][c.Party] = true
		if c.Digest == "" {
			a.unbound++
			return 0, ""
		}
		a.bound++
		x := acceptance{seq: r.Seq, party: c.Party, digest: c.Digest}
		a.accepted[c.Version] = append(a.accepted[c.Version], x)
		if p, ok := a.proposed[c.Version]; ok && p != c.Digest {
			a.unmatched[c.Version] = append(a.unmatched[c.Version], x)
		}
	case "rules_changed":
		var c struct {
			Rules      json.RawMessage `json:"rules"`
			AcceptedBy []string        `json:"accepted_by"`
		}
		if json.Unmarshal(r.Content, &c) != nil || len(c.Rules) == 0 {
			// The first shape: the content is the rules, accepted by no
			// party.
			return 0, ""
		}
		var v struct {
			Version int64 `json:"version"`
		}
		if err := json.Unmarshal(c.Rules, &v); err != nil {
			return r.Seq, "rules_changed: rules: " + err.Error()
		}
		d, err := rulesDigest(c.Rules)
		if err != nil {
			return r.Seq, "rules_changed: rules: " + err.Error()
		}
		for _, x := range a.accepted[v.Version] {
			if x.digest != d {
				return x.seq, fmt.Sprintf("the acceptance of rules version %d by %s names rules_sha256 %s, but record %d brought into force rules of that version whose digest is %s: the party accepted other content",
					v.Version, x.party, x.digest, r.Seq, d)
			}
		}
		// Every party the rules came into force as accepted by
		// accepted them in the record (when the export holds it all).
		if a.fromStart {
			for _, p := range c.AcceptedBy {
				if !a.answered[v.Version][p] {
					return r.Seq, fmt.Sprintf("rules_changed brings rules version %d into force as accepted by %s, but no acceptance of that version by %s is recorded before it", v.Version, p, p)
				}
			}
		}
		delete(a.accepted, v.Version)
		delete(a.unmatched, v.Version)
	}
	return 0, ""
}

// end reports an acceptance that names other rules than those proposed
// under its version, which no rules_changed record vindicated.
func (a *rulesAcceptances) end() (int64, string) {
	var first *acceptance
	var version int64
	for _, v := range slices.Sorted(maps.Keys(a.unmatched)) {
		for _, x := range a.unmatched[v] {
			if first == nil || x.seq < first.seq {
				first, version = &x, v
			}
		}
	}
	if first == nil {
		return 0, ""
	}
	return first.seq, fmt.Sprintf("the acceptance of rules version %d by %s names rules_sha256 %s, but the rules proposed as that version have the digest %s: the party accepted other content",
		version, first.party, first.digest, a.proposed[version])
}
