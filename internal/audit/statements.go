package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/namedlines"
	"github.com/deconflict/deconflict/internal/party"
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
// used twice. A statement that covers records also holds the request's
// body ("body": the standard base64 of its bytes, sealed for the parties
// who may read everything the write recorded): where the viewer may read
// it, it must have the signed content digest, and a Binder checks that the
// covered records say what the request asked, so that a genuine signed
// request cannot be attached to records it did not cause. A statement that
// covers nothing (a position batch, whose reports do not enter the record,
// or a repeated acknowledgment) holds no body.

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
// comments skipped; a party may have several lines). A file without any
// key is refused: asked to check the parties' statements with it, a
// verification would check none and still report them checked. So is a
// NAME that no party can have (party.ValidateName: one with a control or
// an invisible character looks like a party's name and checks nothing of
// it), and a party's key listed twice.
func ParsePartyKeys(r io.Reader) (PartyKeys, error) {
	out := PartyKeys{}
	err := namedlines.Each(r, func(f []string) error {
		if len(f) != 2 {
			return errors.New("want NAME ed25519:<base64>")
		}
		if err := checkPartyName(f[0]); err != nil {
			return err
		}
		pub, err := partykey.Parse(f[1])
		if err != nil {
			return err
		}
		id := partykey.ID(pub)
		if out[f[0]] == nil {
			out[f[0]] = map[string]ed25519.PublicKey{}
		}
		if _, twice := out[f[0]][id]; twice {
			return fmt.Errorf("the key %s of %q listed twice", id, f[0])
		}
		out[f[0]][id] = pub
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no key in it: want lines NAME ed25519:<base64>")
	}
	return out, nil
}

// checkPartyName refuses a name of a keys file that no party can have.
func checkPartyName(name string) error {
	if err := party.ValidateName(name); err != nil {
		var fe *fielderr.Error
		if errors.As(err, &fe) {
			return fmt.Errorf("%q is not a party name: %s", name, fe.Msg)
		}
		return err
	}
	return nil
}

// Binder checks that the records a signed statement covers say what its
// request asked (the package that writes them knows how each request is
// recorded): for example, that an acknowledgment record names the message
// whose URI the party signed. It returns why not.
type Binder func(Bound) error

// Bound is a verified statement with what it covers, as the viewer of an
// export sees it.
type Bound struct {
	Party     string
	Statement httpsig.Statement
	// Body is the request's body, checked against the signed content
	// digest; nil when the statement records none or when it is sealed
	// from the viewer (BodySealed).
	Body       []byte
	BodySealed bool
	// Records are the party's records the statement covers that the
	// viewer may read, in order; Hidden counts the records of its range
	// the viewer may not read (whose author it cannot tell).
	Records []Record
	Hidden  int
}

// statementContent is a statement record's content. Its "body" is the
// request's body, standard base64 of its bytes, sealed for the parties who
// may read all of what the write recorded.
type statementContent struct {
	Statement httpsig.Statement `json:"statement"`
	Covers    Covers            `json:"covers"`
	Body      json.RawMessage   `json:"body"`
}

// statements checks records in order against PartyKeys.
type statements struct {
	keys     PartyKeys
	bind     Binder
	enforced map[string]bool // parties with a key registered by now
	started  bool
	// recent are the records of each listed party since its last
	// statement (those recorded before it had a key only the last
	// maxUnenforced), hidden the seqs of hidden records since the
	// last statement (at most maxHidden).
	recent   map[string][]recentRecord
	hidden   []int64
	nonces   map[string]int64
	verified int
	// fromStart is set when the export starts at the first record, so
	// that every key's party_key_added record is in it; added and retired
	// are the records that added and retired each key, by party and key
	// id ("party keyid").
	fromStart bool
	added     map[string]int64
	retired   map[string]keyRetired
}

// keyRetired is the record that retired a key.
type keyRetired struct {
	seq  int64
	time time.Time
}

// maxStatementSkew is how far the time of a statement's record, or of a
// record it covers, may be from the time its signature was created: the
// server accepts a signature only within httpsig.MaxSkew of its clock, and
// records the write at once (a write lasts far less than another MaxSkew).
// A record stamped further was not written when the signature was
// accepted: an operator who holds back a party's signed acknowledgment and
// records it an hour earlier (acknowledged in time) or later.
const maxStatementSkew = httpsig.NonceWindow

type recentRecord struct {
	rec      Record
	enforced bool // must be covered by a statement
}

const (
	maxUnenforced = 64
	maxHidden     = 4096
)

func newStatements(keys PartyKeys, bind Binder) *statements {
	return &statements{keys: keys, bind: bind, enforced: map[string]bool{}, recent: map[string][]recentRecord{}, nonces: map[string]int64{},
		added: map[string]int64{}, retired: map[string]keyRetired{}}
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
		s.fromStart = r.Seq == 1
		if r.Seq > 1 {
			// The export starts after the keys were registered: every
			// listed party signs from its first record on.
			for p := range s.keys {
				s.enforced[p] = true
			}
		}
	}
	if r.Hidden() {
		s.hidden = append(s.hidden, r.Seq)
		if len(s.hidden) > maxHidden {
			s.hidden = s.hidden[len(s.hidden)-maxHidden:]
		}
		return 0, ""
	}
	defer s.noteKeys(r)
	keys, listed := s.keys[r.Actor]
	if !listed {
		return 0, ""
	}
	if r.Kind != KindStatement {
		rs := append(s.recent[r.Actor], recentRecord{rec: *r, enforced: s.enforced[r.Actor]})
		if !s.enforced[r.Actor] && len(rs) > maxUnenforced {
			rs = rs[1:]
		}
		s.recent[r.Actor] = rs
		return 0, ""
	}
	var c statementContent
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
	key := r.Actor + " " + c.Statement.KeyID
	created := time.Unix(c.Statement.Created, 0)
	// Signed after the second its key was retired in. One signed before
	// may be recorded after the retirement: the server checks the
	// signature before the write's transaction, which a retirement's can
	// precede (two requests at once, a replica's cache of the keys), and
	// the statement of the retirement itself may be signed with the key
	// it retires; the stamp check below bounds how much later.
	if ret, ok := s.retired[key]; ok && c.Statement.Created > ret.time.Unix() {
		return 0, fmt.Sprintf("statement of %s signed at %s with its key %s, which record %d retired at %s", r.Actor,
			created.UTC().Format(time.RFC3339), c.Statement.KeyID, ret.seq, ret.time.UTC().Format(time.RFC3339))
	}
	// The keys a party signs with are those the store holds when its
	// request is verified, so a key is added by a record before the
	// first statement it signs.
	if _, ok := s.added[key]; s.fromStart && !ok {
		return 0, fmt.Sprintf("statement of %s signed with its key %s before any record added that key", r.Actor, c.Statement.KeyID)
	}
	if problem := skewed(r, created); problem != "" {
		return 0, problem
	}
	id := c.Statement.KeyID + " " + c.Statement.Nonce
	if first, seen := s.nonces[id]; seen {
		return 0, fmt.Sprintf("statement of %s replays the signature of record %d (same keyid and nonce)", r.Actor, first)
	}
	s.nonces[id] = r.Seq
	if c.Covers.From != 0 && (c.Covers.To != r.Seq-1 || c.Covers.From > c.Covers.To) {
		return 0, fmt.Sprintf("statement of %s covers records %d to %d, which do not end right before it", r.Actor, c.Covers.From, c.Covers.To)
	}
	b := Bound{Party: r.Actor, Statement: c.Statement}
	for _, p := range s.recent[r.Actor] {
		if c.Covers.From == 0 || p.rec.Seq < c.Covers.From {
			if p.enforced {
				return p.rec.Seq, s.unsigned(p.rec.Seq, r.Actor)
			}
			continue
		}
		if problem := skewed(&p.rec, created); problem != "" {
			return p.rec.Seq, problem
		}
		b.Records = append(b.Records, p.rec)
	}
	s.recent[r.Actor] = nil
	for _, seq := range s.hidden {
		if c.Covers.From != 0 && seq >= c.Covers.From && seq <= c.Covers.To {
			b.Hidden++
		}
	}
	s.hidden = s.hidden[:0]
	if problem := s.body(r, &c, &b); problem != "" {
		return 0, problem
	}
	if s.bind != nil {
		if err := s.bind(b); err != nil {
			return 0, fmt.Sprintf("statement of %s (%s %s) does not match the records it covers: %v", r.Actor, c.Statement.Method, c.Statement.TargetURI, err)
		}
	}
	s.verified++
	return 0, ""
}

// body reads the request body a statement records, when the viewer may,
// and checks it against the signed content digest.
func (s *statements) body(r *Record, c *statementContent, b *Bound) string {
	if len(c.Body) == 0 {
		if c.Covers.From != 0 {
			return fmt.Sprintf("statement of %s covers records %d to %d but does not hold the body of the request it signed", r.Actor, c.Covers.From, c.Covers.To)
		}
		return ""
	}
	var ref struct {
		Sealed struct {
			SHA256 string `json:"sha256"`
		} `json:"sealed"`
	}
	if err := json.Unmarshal(c.Body, &ref); err != nil || ref.Sealed.SHA256 == "" {
		return fmt.Sprintf("statement of %s: body is not a sealed value", r.Actor)
	}
	i := slices.IndexFunc(r.Sealed, func(v Revealed) bool { return v.SHA256 == ref.Sealed.SHA256 })
	if i < 0 {
		b.BodySealed = true
		return ""
	}
	var enc string
	if err := json.Unmarshal(r.Sealed[i].Details, &enc); err != nil {
		return fmt.Sprintf("statement of %s: body is not a base64 string", r.Actor)
	}
	body, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return fmt.Sprintf("statement of %s: body is not standard base64", r.Actor)
	}
	if err := c.Statement.CheckBody(body); err != nil {
		return fmt.Sprintf("statement of %s: the recorded body is not the one it signed: %v", r.Actor, err)
	}
	b.Body = body
	return ""
}

// skewed says what is wrong when record r, a statement's or one it covers,
// is stamped further than maxStatementSkew from the time the statement's
// signature was created ("" when it is not).
func skewed(r *Record, created time.Time) string {
	d := r.Time.Sub(created)
	if d <= maxStatementSkew && d >= -maxStatementSkew {
		return ""
	}
	return fmt.Sprintf("record %d of %s is stamped %s, %s from when the statement of %s covering it was signed (%s): the server records a signed write when it accepts it, within %s of the signature",
		r.Seq, r.Actor, r.Time.UTC().Format(time.RFC3339), d.Round(time.Second), r.Actor, created.UTC().Format(time.RFC3339), maxStatementSkew)
}

func (s *statements) unsigned(seq int64, actor string) string {
	return fmt.Sprintf("record %d of %s is covered by no signed statement of %s: it was recorded without %s's signature", seq, actor, actor, actor)
}

// end reports a record still waiting for its statement at the end.
func (s *statements) end() (int64, string) {
	first, who := int64(0), ""
	for actor, rs := range s.recent {
		for _, p := range rs {
			if p.enforced && (first == 0 || p.rec.Seq < first) {
				first, who = p.rec.Seq, actor
			}
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
	if r.Kind != "party_key_added" && r.Kind != "party_key_retired" {
		return
	}
	var c struct {
		Party string `json:"party"`
		KeyID string `json:"keyid"`
	}
	if json.Unmarshal(r.Content, &c) != nil || c.Party == "" {
		return
	}
	key := c.Party + " " + c.KeyID
	if r.Kind == "party_key_retired" {
		if _, ok := s.retired[key]; !ok {
			s.retired[key] = keyRetired{seq: r.Seq, time: r.Time}
		}
		return
	}
	s.enforced[c.Party] = true
	if _, ok := s.added[key]; !ok {
		s.added[key] = r.Seq
	}
}
