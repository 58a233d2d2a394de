package rules

// This file holds the rules by agreement: a change of the rules is a
// proposal that becomes the rules in force only when every party has
// accepted it.
//
//	proposed --(every party that is not revoked accepted)--> active
//	proposed --(one party rejected)--> rejected
//	proposed --(another proposal became active first)--> superseded
//
// The parties that must answer are those of the airspace at the moment of
// asking (not the operator, not revoked): a party revoked while the
// proposal waits no longer counts, a party created later must answer too
// (its creation accepted the rules then in force, not the proposal). A
// proposal replaces the rules it was made against (its base): once another
// version is in force, activating it would silently undo that version's
// change, so it is superseded instead. Nothing here depends on which fields
// the rules have: the changes are compared field by field on their JSON.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/fielderr"
)

// States of a proposal.
const (
	ProposalOpen       = "proposed"
	ProposalActive     = "active"
	ProposalRejected   = "rejected"
	ProposalSuperseded = "superseded"
)

// Change is one field of the rules that a proposal changes, with the
// value in force when it was proposed and the proposed one (as JSON).
type Change struct {
	Field string          `json:"field"`
	Old   json.RawMessage `json:"old"`
	New   json.RawMessage `json:"new"`
}

// Answer is one party's answer to a proposal.
type Answer struct {
	Party    string    `json:"party"`
	Accepted bool      `json:"accepted"`
	Reason   string    `json:"reason,omitempty"`
	Time     time.Time `json:"time"`
}

// Proposal is a proposed version of the rules and its answers.
type Proposal struct {
	Version    int64     `json:"version"`
	State      string    `json:"state"`
	ProposedBy string    `json:"proposed_by"`
	Created    time.Time `json:"created"`
	// Base is the version in force when it was proposed.
	Base  int64 `json:"base_version"`
	Rules Rules `json:"rules"`
	// RulesSHA256 is ContentSHA256 of Rules (derived: Propose, and the
	// service on every read): what a party's acceptance names, so that
	// its signed acceptance binds the content it accepted, not only the
	// version number.
	RulesSHA256 string   `json:"rules_sha256,omitempty"`
	Changes     []Change `json:"changes"`
	Answers     []Answer `json:"answers"`
	// AcceptedBy and WaitingFor are derived (Settle): the parties that
	// accepted, and those that still must answer, each sorted.
	AcceptedBy []string `json:"accepted_by"`
	WaitingFor []string `json:"waiting_for"`
	// Closed is when it left the proposed state.
	Closed *time.Time `json:"closed,omitempty"`
}

// Errors of answering.
var (
	// ErrProposalClosed: the proposal is no longer open.
	ErrProposalClosed = errors.New("rules: the proposal is no longer open")
	// ErrNotAsked: the party is not one that must answer (the operator,
	// or a revoked party).
	ErrNotAsked = errors.New("rules: the party is not asked to answer this proposal")
	// ErrAnswered: the party accepted already and now rejects; an answer
	// stands.
	ErrAnswered = errors.New("rules: the party has already accepted this proposal")
)

// Diff lists the fields whose JSON differs between old and new, in the
// order of the JSON of new (the declaration order of Rules), the version
// aside.
func Diff(old, new Rules) ([]Change, error) {
	ob, err := json.Marshal(old)
	if err != nil {
		return nil, err
	}
	nb, err := json.Marshal(new)
	if err != nil {
		return nil, err
	}
	var om map[string]json.RawMessage
	if err := json.Unmarshal(ob, &om); err != nil {
		return nil, err
	}
	keys, nm, err := orderedFields(nb)
	if err != nil {
		return nil, err
	}
	out := []Change{}
	for _, k := range keys {
		if k == "version" {
			continue
		}
		o, ok := om[k]
		if !ok {
			o = json.RawMessage("null")
		}
		if !bytes.Equal(o, nm[k]) {
			out = append(out, Change{Field: k, Old: o, New: nm[k]})
		}
	}
	// A field that the new rules leave out (omitempty) but the old had.
	for k, o := range om {
		if _, ok := nm[k]; !ok && k != "version" {
			out = append(out, Change{Field: k, Old: o, New: json.RawMessage("null")})
		}
	}
	return out, nil
}

// orderedFields returns the keys of a JSON object in their order, and the
// values by key.
func orderedFields(b []byte) ([]string, map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	var keys []string
	m := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		m[k] = v
	}
	return keys, m, nil
}

// ContentSHA256 is the content digest of rules r that an acceptance names:
// the lowercase hex SHA-256 of the canonical JSON of r (audit.Canonical:
// compact, object keys sorted, no HTML escaping), version included. The
// same digest of the "rules" of a rules_proposed or rules_changed record
// of the audit log is computed from the record's JSON alone (audit
// verify), without this package.
func ContentSHA256(r Rules) (string, error) {
	canon, err := audit.Canonical(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// Propose makes the proposal of r as version, against base (the rules in
// force), by proposer at now. r must be valid (Validate).
func Propose(version int64, base, r Rules, proposer string, now time.Time) (Proposal, error) {
	r.Version = version
	changes, err := Diff(base, r)
	if err != nil {
		return Proposal{}, err
	}
	digest, err := ContentSHA256(r)
	if err != nil {
		return Proposal{}, err
	}
	return Proposal{
		Version: version, State: ProposalOpen, ProposedBy: proposer, Created: now.UTC(),
		Base: base.Version, Rules: r, RulesSHA256: digest, Changes: changes, Answers: []Answer{},
		AcceptedBy: []string{}, WaitingFor: []string{},
	}, nil
}

// Answer records party's answer at now; asked lists the parties that must
// answer now. Accepting twice changes nothing (changed is false); any
// answer to a closed proposal is ErrProposalClosed, and a party that
// already answered cannot change its answer (ErrProposalClosed after a
// rejection, which closes it; an acceptance stands).
func (p *Proposal) Answer(party string, accept bool, reason string, asked []string, now time.Time) (changed bool, err error) {
	if p.State != ProposalOpen {
		return false, ErrProposalClosed
	}
	if !slices.Contains(asked, party) {
		return false, ErrNotAsked
	}
	for _, a := range p.Answers {
		if a.Party == party {
			if a.Accepted && accept {
				return false, nil
			}
			return false, ErrAnswered
		}
	}
	p.Answers = append(p.Answers, Answer{Party: party, Accepted: accept, Reason: reason, Time: now.UTC()})
	return true, nil
}

// Settle derives AcceptedBy and WaitingFor for the parties asked now and
// moves an open proposal to rejected (a rejection) or active (every asked
// party accepted, and base is still the version in force; else
// superseded). It reports whether the state changed.
func (p *Proposal) Settle(asked []string, inForce int64, now time.Time) bool {
	p.AcceptedBy, p.WaitingFor = []string{}, []string{}
	rejected := false
	answered := map[string]bool{}
	for _, a := range p.Answers {
		answered[a.Party] = true
		if a.Accepted {
			p.AcceptedBy = append(p.AcceptedBy, a.Party)
		} else {
			rejected = true
		}
	}
	if p.State == ProposalOpen {
		for _, q := range asked {
			if !answered[q] {
				p.WaitingFor = append(p.WaitingFor, q)
			}
		}
	}
	slices.Sort(p.AcceptedBy)
	slices.Sort(p.WaitingFor)
	if p.State != ProposalOpen {
		return false
	}
	switch {
	case p.Base != inForce:
		p.State = ProposalSuperseded
	case rejected:
		p.State = ProposalRejected
	case len(p.WaitingFor) == 0:
		p.State = ProposalActive
	default:
		return false
	}
	t := now.UTC()
	p.Closed = &t
	p.WaitingFor = []string{}
	return true
}

// Amend returns base with the given fields (JSON values by JSON name)
// replacing its own, each as a whole: how a proposal names only what it
// changes. An unknown field or a value of the wrong type is a
// *fielderr.Error naming it. A "version" may be given only as base's: the
// rules of GET /v1/rules sent back as they are, which name the version in
// force; the service numbers the proposals, and any other was ignored, so
// that a proposal sent as version 7, or meant against a version since
// replaced, was answered as made against the one in force. The result is
// not validated.
func Amend(base Rules, fields map[string]json.RawMessage) (Rules, error) {
	if v, ok := fields["version"]; ok {
		var n int64
		if err := json.Unmarshal(v, &n); err != nil || v == nil || bytes.Equal(bytes.TrimSpace(v), []byte("null")) || n != base.Version {
			return Rules{}, fielderr.Errorf("version", "%s is not the version in force (%d): the service numbers the proposals, and a proposal is made against the rules in force; leave version out, or send the one in force", v, base.Version)
		}
	}
	b, err := json.Marshal(base)
	if err != nil {
		return Rules{}, err
	}
	var merged map[string]json.RawMessage
	if err := json.Unmarshal(b, &merged); err != nil {
		return Rules{}, err
	}
	for k, v := range fields {
		merged[k] = v
	}
	if b, err = json.Marshal(merged); err != nil {
		return Rules{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var out Rules
	if err := dec.Decode(&out); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// A number refused as a number's type (1e309, beyond
			// float64; 1.5 or 1e20 for an integer) is out of range,
			// not of the wrong type: say which.
			if number, ok := strings.CutPrefix(te.Value, "number "); ok {
				if kind := te.Type.Kind(); kind == reflect.Float64 || kind == reflect.Float32 {
					return Rules{}, fielderr.Errorf(te.Field, "%s is beyond the largest number (about 1.8e308); the bounds of the field are far smaller", number)
				}
				return Rules{}, fielderr.Errorf(te.Field, "%s is not a whole number within the range of the field", number)
			}
			return Rules{}, fielderr.Errorf(te.Field, "wrong type: expected %s", te.Type)
		}
		if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
			return Rules{}, fielderr.New(strings.TrimSuffix(name, `"`), "unknown field")
		}
		return Rules{}, fielderr.New("", err.Error())
	}
	return out, nil
}
