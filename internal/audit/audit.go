// Package audit owns the record: the append-only, hash-chained log of every
// state change, its Ed25519 checkpoints, its export as JSON lines (with other
// parties' private details reduced to their hash) and the verification of
// such an export.
//
// A record is (seq, time, actor, kind, content, salt, prev_hash, hash).
// Content is canonical JSON (compact, object keys sorted, numbers as written
// by encoding/json). The chain covers time, actor, kind and content through
// their commitment, a SHA-256 salted with the record's own random salt, and
// hash is SHA-256 over seq, the commitment and prev_hash (see the encodings
// below), so a verifier needs no JSON canonicalisation of its own: it hashes
// the content bytes as exported.
//
// Each record names its readers (Readers): the parties who may see it
// through the API (every party for the rules and the volumes, the parties
// of an alert or a hotline thread, the party concerned by a change of its
// credentials). An export for a party shows the records it may read in
// full and every other record as {seq, commitment, prev_hash, hash} only:
// the chain still verifies link by link, and the salt keeps a reader from
// confirming a guess of what a hidden record says. Records written before
// commitments existed (v1, no salt) are shown in full to every viewer.
//
// Private details (a volume's details, the text of a hotline message) are
// put in content as a Sealed value. The chain covers only the salted
// SHA-256 of the details and the list of parties allowed to read them; the
// clear details and the salt are stored beside the content and exported only
// to those readers (and to the operator). A salt is needed because details
// are often guessable ("mission": "strike"): an unsalted hash would let
// another party confirm a guess.
//
// Append must run in the same store transaction as the change it records:
// then a change without its record, or a record without its change, cannot
// commit. Log adds checkpoints: every Every records the head is signed in
// that same transaction, and Checkpoint signs the head on demand (at
// shutdown). An export ends with a signed head line stating the range it
// covers, so that removing records at the end is detected even when they
// follow the last checkpoint.
//
// The exact encodings, for an independent verifier (u64 is 8 bytes big
// endian, lp(x) is u64(len(x)) followed by x):
//
//	commitment = SHA-256("deconflict-audit-commitment-v2\x00" lp(salt) u64(unix ns of time)
//	                     lp(actor) lp(kind) lp(content))
//	leaf       = "deconflict-audit-record-v2\x00" u64(seq) lp(commitment) lp(prev_hash)
//	             (v1 records: "deconflict-audit-record-v1\x00" u64(seq) u64(unix ns of time)
//	             lp(actor) lp(kind) lp(content) lp(prev_hash))
//	hash       = SHA-256(leaf)
//	leaf hash  = SHA-256(0x00 leaf)   (RFC 6962; leaf index seq-1 of the log's Merkle tree)
//	checkpoint = Ed25519("deconflict-audit-checkpoint-v1\x00" u64(seq) hash)
//	head       = Ed25519("deconflict-audit-head-v1\x00" u64(from) u64(seq) u64(checkpoints)
//	                     lp(hash) u64(unix ns of time) lp(viewer))
//	sealed     = SHA-256("deconflict-audit-sealed-v1\x00" salt details)
//
// Integration: the server keeps one Log (NewLog(LoadOrCreateKey(dataDir),
// DefaultEvery)), calls Log.Append inside every write transaction, and
// Log.Checkpoint periodically and at shutdown, and makes the transparency
// log's Merkle tree follow the records with Log.SyncTree; GET /v1/audit runs
// Log.Export in a read transaction with the caller's party as viewer ("" for
// the operator), GET /v1/audit/key returns PublicKeyInfo. Verify checks an
// export offline with the public key only.
package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// DefaultEvery is how many records separate two automatic checkpoints.
const DefaultEvery = 1000

// HashSize is the size of every hash of the chain (SHA-256).
const HashSize = sha256.Size

// Domain-separation prefixes: a signature or hash made for one purpose can
// never be replayed as another.
const (
	recordDomain     = "deconflict-audit-record-v1\x00"
	recordDomainV2   = "deconflict-audit-record-v2\x00"
	commitmentDomain = "deconflict-audit-commitment-v2\x00"
	checkpointDomain = "deconflict-audit-checkpoint-v1\x00"
	headDomain       = "deconflict-audit-head-v1\x00"
	sealDomain       = "deconflict-audit-sealed-v1\x00"
)

// Record is one decoded link of the chain.
type Record struct {
	Seq int64
	// Time, Actor, Kind and Content are zero in a record hidden from the
	// viewer of an export.
	Time    time.Time
	Actor   string
	Kind    string
	Content json.RawMessage // canonical
	// Salt is the random salt of the commitment: nil in a hidden record
	// and in a v1 record.
	Salt []byte
	// Commitment is what the chain covers of time, actor, kind and
	// content (nil in a v1 record).
	Commitment []byte
	PrevHash   []byte
	Hash       []byte
	// Sealed holds the clear private details referenced by Content.
	Sealed []Revealed
	// Readers may read the record in an export (stored, not in an export).
	Readers Readers
}

// Revealed is the clear form of one Sealed value: what its readers see.
type Revealed struct {
	SHA256  string          `json:"sha256"`
	Salt    string          `json:"salt"`
	Readers []string        `json:"readers"`
	Details json.RawMessage `json:"details"`
}

// Sealed marks private details inside audit content. Build it with Seal.
type Sealed struct {
	readers []string
	details any
}

// Seal wraps details that only readers (and the operator) may see in an
// export; everyone else sees their salted hash.
func Seal(details any, readers ...string) Sealed {
	return Sealed{readers: readers, details: details}
}

// randRead supplies salts; tests that need a reproducible export replace it.
var randRead = rand.Read

// sealMarker is the key under which a Sealed value marshals itself, so that
// canonicalisation can find it in content of any shape. No other content
// uses a key starting with '$'.
const sealMarker = "$audit-sealed"

// MarshalJSON emits the marker form that Append replaces by the reference.
func (s Sealed) MarshalJSON() ([]byte, error) {
	readers := s.readers
	if readers == nil {
		readers = []string{}
	}
	return json.Marshal(map[string]any{sealMarker: map[string]any{"readers": readers, "details": s.details}})
}

// zeroHash is the prev_hash of the first record (never written to).
var zeroHash = make([]byte, HashSize)

// envelope is the stored form of a record's content: the hashed content,
// the clear details of its sealed parts, the salt of its commitment (hex;
// empty in v1 records) and its readers.
type envelope struct {
	Content json.RawMessage `json:"content"`
	Sealed  []Revealed      `json:"sealed,omitempty"`
	Salt    string          `json:"salt,omitempty"`
	Readers []string        `json:"readers,omitempty"`
}

// Readers names who may read a record in an export besides the operator:
// parties, or Everyone.
type Readers []string

// everyoneName is the reader that stands for every party.
const everyoneName = "*"

// Everyone is the readers of a record every party may see through the API
// (the rules, the volumes).
var Everyone = Readers{everyoneName}

// For is the readers of a record only the given parties may see.
func For(parties ...string) Readers { return Readers(parties) }

// canRead reports whether viewer ("" for the operator) may read a record
// with these readers.
func (rs Readers) canRead(viewer string) bool {
	return viewer == "" || slices.Contains(rs, everyoneName) || slices.Contains(rs, viewer)
}

// saltSize is the size of a record's salt.
const saltSize = 16

// Append adds one record for a change made in tx, chained to the last one,
// readable in exports by readers (and the operator). It does not
// checkpoint; use Log.Append where a signing key is at hand.
func Append(tx store.Audit, actor, kind string, readers Readers, content any, now time.Time) (store.AuditRecord, error) {
	rec, _, err := appendRecord(tx, actor, kind, readers, content, now)
	return rec, err
}

// appendRecord is Append, also returning the record's leaf data.
func appendRecord(tx store.Audit, actor, kind string, readers Readers, content any, now time.Time) (store.AuditRecord, []byte, error) {
	if actor == "" {
		return store.AuditRecord{}, nil, errors.New("audit: actor is empty")
	}
	if kind == "" {
		return store.AuditRecord{}, nil, errors.New("audit: kind is empty")
	}
	canon, sealed, err := canonicalContent(content)
	if err != nil {
		return store.AuditRecord{}, nil, fmt.Errorf("audit: %s: %w", kind, err)
	}
	prev := zeroHash
	seq := int64(1)
	last, err := tx.LastAudit()
	switch {
	case err == nil:
		prev, seq = last.Hash, last.Seq+1
	case !errors.Is(err, store.ErrNotFound):
		return store.AuditRecord{}, nil, err
	}
	salt := make([]byte, saltSize)
	if _, err := randRead(salt); err != nil {
		return store.AuditRecord{}, nil, err
	}
	if readers == nil {
		readers = Readers{}
	}
	env, err := marshal(envelope{Content: canon, Sealed: sealed, Salt: hex.EncodeToString(salt), Readers: readers})
	if err != nil {
		return store.AuditRecord{}, nil, err
	}
	// The stored time is what the hash covers: round-trip it through the
	// store's precision (nanoseconds, UTC) before hashing.
	t := time.Unix(0, now.UnixNano()).UTC()
	rec := store.AuditRecord{Seq: seq, Time: t, Actor: actor, Kind: kind, Content: env, PrevHash: prev}
	r := Record{Seq: seq, Time: t, Actor: actor, Kind: kind, Content: canon, Salt: salt, PrevHash: prev}
	r.Commitment = r.commit()
	leaf := r.Leaf()
	sum := sha256.Sum256(leaf)
	rec.Hash = sum[:]
	if err := tx.AppendAudit(rec); err != nil {
		return store.AuditRecord{}, nil, err
	}
	return rec, leaf, nil
}

// Decode reads a stored record back.
func Decode(r store.AuditRecord) (Record, error) {
	var env envelope
	if err := json.Unmarshal(r.Content, &env); err != nil {
		return Record{}, fmt.Errorf("audit: record %d: content: %w", r.Seq, err)
	}
	rec := Record{Seq: r.Seq, Time: r.Time.UTC(), Actor: r.Actor, Kind: r.Kind, Content: env.Content,
		PrevHash: r.PrevHash, Hash: r.Hash, Sealed: env.Sealed, Readers: env.Readers}
	if env.Salt != "" {
		salt, err := hex.DecodeString(env.Salt)
		if err != nil || len(salt) != saltSize {
			return Record{}, fmt.Errorf("audit: record %d: salt %q is not %d bytes of hex", r.Seq, env.Salt, saltSize)
		}
		rec.Salt = salt
		rec.Commitment = rec.commit()
	}
	return rec, nil
}

// commit is the commitment of a record with its salt (see the encodings
// in the package doc).
func (r Record) commit() []byte {
	b := make([]byte, 0, len(commitmentDomain)+24+len(r.Salt)+len(r.Actor)+len(r.Kind)+len(r.Content))
	b = append(b, commitmentDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(r.Salt)))
	b = append(b, r.Salt...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	for _, f := range [][]byte{[]byte(r.Actor), []byte(r.Kind), r.Content} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// computeHash is the hash the record's fields give: SHA-256 of its leaf.
func (r Record) computeHash() []byte {
	sum := sha256.Sum256(r.Leaf())
	return sum[:]
}

// Hidden reports whether the record is shown by its commitment only.
func (r Record) Hidden() bool { return r.Commitment != nil && r.Salt == nil }

// LeafData is a v1 record's unambiguous binary encoding: the domain prefix,
// then seq, time (Unix ns), actor, kind, content and prev_hash, the
// variable-length fields prefixed by their length, so no two different
// records encode alike. Its SHA-256 is the record's hash (the chain); it is
// also the record's leaf in the transparency log (leaf index seq-1, leaf
// hash SHA-256(0x00 || LeafData), RFC 6962).
func LeafData(seq int64, t time.Time, actor, kind string, content, prev []byte) []byte {
	b := make([]byte, 0, len(recordDomain)+16+32+len(actor)+len(kind)+len(content)+len(prev))
	b = append(b, recordDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	for _, f := range [][]byte{[]byte(actor), []byte(kind), content, prev} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// Leaf is r's leaf data in the transparency log, and what its hash is the
// SHA-256 of: from its commitment (v2, also when the record is hidden), or
// from its fields (v1, LeafData).
func (r Record) Leaf() []byte {
	if r.Commitment == nil {
		return LeafData(r.Seq, r.Time, r.Actor, r.Kind, r.Content, r.PrevHash)
	}
	b := make([]byte, 0, len(recordDomainV2)+24+len(r.Commitment)+len(r.PrevHash))
	b = append(b, recordDomainV2...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	for _, f := range [][]byte{r.Commitment, r.PrevHash} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// Canonical returns the canonical JSON of v: compact, object keys sorted,
// no HTML escaping. Canonical(Canonical(v)) == Canonical(v).
func Canonical(v any) ([]byte, error) {
	raw, err := marshal(v)
	if err != nil {
		return nil, err
	}
	tree, err := decodeTree(raw)
	if err != nil {
		return nil, err
	}
	return marshal(tree)
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func decodeTree(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return tree, nil
}

// canonicalContent canonicalises content, replacing every Sealed value by
// its reference {"sealed":{"readers":[..],"sha256":".."}} and returning the
// clear details beside it.
func canonicalContent(content any) ([]byte, []Revealed, error) {
	raw, err := marshal(content)
	if err != nil {
		return nil, nil, err
	}
	tree, err := decodeTree(raw)
	if err != nil {
		return nil, nil, err
	}
	var sealed []Revealed
	tree, err = replaceSealed(tree, &sealed)
	if err != nil {
		return nil, nil, err
	}
	canon, err := marshal(tree)
	return canon, sealed, err
}

func replaceSealed(v any, out *[]Revealed) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if inner, ok := x[sealMarker]; ok && len(x) == 1 {
			return seal(inner, out)
		}
		for k, e := range x {
			r, err := replaceSealed(e, out)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	case []any:
		for i, e := range x {
			r, err := replaceSealed(e, out)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	}
	return v, nil
}

func seal(inner any, out *[]Revealed) (any, error) {
	m, ok := inner.(map[string]any)
	if !ok {
		return nil, errors.New("malformed sealed value")
	}
	var readers []string
	rs, _ := m["readers"].([]any)
	for _, r := range rs {
		s, ok := r.(string)
		if !ok {
			return nil, errors.New("sealed readers must be strings")
		}
		readers = append(readers, s)
	}
	details, err := marshal(m["details"])
	if err != nil {
		return nil, err
	}
	var salt [16]byte
	if _, err := randRead(salt[:]); err != nil {
		return nil, err
	}
	sum := sealHash(salt[:], details)
	rv := Revealed{SHA256: hex.EncodeToString(sum), Salt: hex.EncodeToString(salt[:]), Readers: readers, Details: details}
	if rv.Readers == nil {
		rv.Readers = []string{}
	}
	*out = append(*out, rv)
	ref := map[string]any{"sealed": map[string]any{"readers": toAny(rv.Readers), "sha256": rv.SHA256}}
	return ref, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func sealHash(salt, details []byte) []byte {
	h := sha256.New()
	h.Write([]byte(sealDomain))
	h.Write(salt)
	h.Write(details)
	return h.Sum(nil)
}
