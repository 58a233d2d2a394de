package audit

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/partykey"
)

// Signed statements in the record: a write signed by a party (RFC 9421,
// internal/httpsig) is recorded, after the records of what it changed and
// in the same transaction, as a record of kind KindStatement, actor the
// party, content {"statement": <httpsig.Statement>, "covers": {"from",
// "to"}}: the seqs of the records the write appended, which end right
// before the statement. Once a party has a key registered (a record of
// kind "party_key_added" naming it), every record of that party must be
// covered by the statement that follows it, and that statement must verify
// with one of the party's keys; a signature (keyid and nonce) is never
// used twice.

// Covers is the range of records a statement is the signed request of.
type Covers struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// KindStatement is the kind of a signed statement's record.
const KindStatement = "statement"

// PartyKeys are the public keys of the parties, by party then key id.
type PartyKeys map[string]map[string]ed25519.PublicKey

// ParsePartyKeys reads lines "NAME ed25519:<base64>" (blank lines and #
// comments skipped; a party may have several lines).
func ParsePartyKeys(r io.Reader) (PartyKeys, error) {
	out := PartyKeys{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want NAME ed25519:<base64>", n)
		}
		pub, err := partykey.Parse(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if out[f[0]] == nil {
			out[f[0]] = map[string]ed25519.PublicKey{}
		}
		out[f[0]][partykey.ID(pub)] = pub
	}
	return out, sc.Err()
}

// statements checks records in order against PartyKeys.
type statements struct {
	keys     PartyKeys
	enforced map[string]bool // parties with a key registered by now
	started  bool
	pending  map[string][]int64 // records of each party awaiting their statement
	nonces   map[string]int64
	verified int
}

func newStatements(keys PartyKeys) *statements {
	return &statements{keys: keys, enforced: map[string]bool{}, pending: map[string][]int64{}, nonces: map[string]int64{}}
}

// take checks one record and returns what is wrong ("" when nothing) and
// the record it concerns.
func (s *statements) take(r *Record) (int64, string) {
	seq, problem := s.check(r)
	if problem != "" && seq == 0 {
		seq = r.Seq
	}
	return seq, problem
}

func (s *statements) check(r *Record) (int64, string) {
	if !s.started {
		s.started = true
		if r.Seq > 1 {
			// The export starts after the keys were registered: every
			// listed party signs from its first record on.
			for p := range s.keys {
				s.enforced[p] = true
			}
		}
	}
	defer s.noteKeys(r)
	keys, listed := s.keys[r.Actor]
	if !listed {
		return 0, ""
	}
	if r.Kind != KindStatement {
		if s.enforced[r.Actor] {
			s.pending[r.Actor] = append(s.pending[r.Actor], r.Seq)
		}
		return 0, ""
	}
	var c struct {
		Statement httpsig.Statement `json:"statement"`
		Covers    Covers            `json:"covers"`
	}
	if err := json.Unmarshal(r.Content, &c); err != nil {
		return 0, "statement: unreadable: " + err.Error()
	}
	pub, ok := keys[c.Statement.KeyID]
	if !ok {
		return 0, fmt.Sprintf("statement of %s signed with key %q, which is not one of its keys", r.Actor, c.Statement.KeyID)
	}
	if err := c.Statement.Verify(pub); err != nil {
		return 0, fmt.Sprintf("statement of %s does not verify with its key %s: %v", r.Actor, c.Statement.KeyID, err)
	}
	id := c.Statement.KeyID + " " + c.Statement.Nonce
	if first, seen := s.nonces[id]; seen {
		return 0, fmt.Sprintf("statement of %s replays the signature of record %d (same keyid and nonce)", r.Actor, first)
	}
	s.nonces[id] = r.Seq
	if c.Covers.From != 0 && (c.Covers.To != r.Seq-1 || c.Covers.From > c.Covers.To) {
		return 0, fmt.Sprintf("statement of %s covers records %d to %d, which do not end right before it", r.Actor, c.Covers.From, c.Covers.To)
	}
	for _, seq := range s.pending[r.Actor] {
		if c.Covers.From == 0 || seq < c.Covers.From {
			return seq, s.unsigned(seq, r.Actor)
		}
	}
	s.pending[r.Actor] = nil
	s.verified++
	return 0, ""
}

func (s *statements) unsigned(seq int64, actor string) string {
	return fmt.Sprintf("record %d of %s is covered by no signed statement of %s: it was recorded without %s's signature", seq, actor, actor, actor)
}

// end reports a record still waiting for its statement at the end.
func (s *statements) end() (int64, string) {
	first, who := int64(0), ""
	for actor, seqs := range s.pending {
		if len(seqs) > 0 && (first == 0 || seqs[0] < first) {
			first, who = seqs[0], actor
		}
	}
	if first == 0 {
		return 0, ""
	}
	return first, s.unsigned(first, who)
}

// noteKeys starts enforcing signatures for a party once a key of it is
// registered.
func (s *statements) noteKeys(r *Record) {
	if r.Kind != "party_key_added" {
		return
	}
	var c struct {
		Party string `json:"party"`
	}
	if json.Unmarshal(r.Content, &c) == nil && c.Party != "" {
		s.enforced[c.Party] = true
	}
}
