package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/namedlines"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/translog"
	"golang.org/x/mod/sumdb/note"
)

// Summary describes an export that verified.
type Summary struct {
	From        int64 // first seq the export covers
	Records     int64
	FirstSeq    int64 // 0 when the export holds no record
	LastSeq     int64
	Checkpoints int
	// LastCheckpointSeq is the last seq signed by a checkpoint (0: none);
	// the records after it (UnsignedTail) are covered by the head alone.
	LastCheckpointSeq int64
	UnsignedTail      int64
	// LogSize is the size of the log checkpoint ending the export (0:
	// none), LogSignatures how many cosignatures it carries, LogVerified
	// whether its root was recomputed from the records and matched (else
	// LogNote says why not).
	LogSize       int64
	LogSignatures int
	LogVerified   bool
	LogNote       string
	// LogCosignedBy are the parties whose witness's cosignature on the
	// log checkpoint verified with the witness keys, which came from
	// WitnessKeysFrom ("given", "rules", or "" when there were none: the
	// cosignatures were not checked).
	LogCosignedBy   []string
	WitnessKeysFrom string
	// Statements counts the signed statements verified (VerifyWithPartyKeys).
	Statements int
	// RulesAcceptancesBound counts the acceptances of the rules that name
	// the digest of the rules they accept, each checked against the rules
	// the export records for its version (rulesdigest.go);
	// RulesAcceptancesUnbound those recorded before acceptances named it,
	// verified by their version alone.
	RulesAcceptancesBound   int
	RulesAcceptancesUnbound int
	// Redacted counts sealed details shown by their hash only.
	Redacted int
	// Hidden counts the records shown by their commitment only: those the
	// viewer may not read.
	Hidden   int64
	Viewer   string
	HeadTime time.Time
	// Anchor is the prev_hash of the first record when the export starts
	// after seq 1: the link to the record before it is not checked here
	// (compare it with that record's hash in an earlier export).
	Anchor []byte
	// Leaves are the records' leaf hashes in the transparency log, in
	// order (leaf FirstSeq-1 first), for a caller that rebuilds the tree.
	Leaves []translog.Hash
}

// Error is the first fault found in an export: the record (Seq) it
// concerns, the line it was found on, and what is wrong. Problem may
// quote what the export holds (a record's fields, through the Binder),
// which whoever made the export chose: it is shown escaped
// (printable.Escape), so that a control or bidi character in a record
// cannot make the report read otherwise than it is.
type Error struct {
	Seq     int64 // 0 when no record can be named
	Line    int
	Problem string
}

func (e *Error) Error() string {
	if e.Seq > 0 {
		return fmt.Sprintf("record %d (line %d): %s", e.Seq, e.Line, printable.Escape(e.Problem))
	}
	return fmt.Sprintf("line %d: %s", e.Line, printable.Escape(e.Problem))
}

// maxLine bounds one line of an export; a volume with the largest
// footprint allowed is far below it.
const maxLine = 16 << 20

// Verify checks an export read from r against the public key pub: every
// line is canonical, sequence numbers follow each other, every prev_hash is
// the hash of the record before, every hash is recomputed, revealed sealed
// details match their hash, every checkpoint signs the record it follows,
// and the export ends with a head line, signed, that states exactly the
// range present. It stops at the first fault and returns it as *Error.
func Verify(r io.Reader, pub ed25519.PublicKey) (Summary, error) {
	return verify(r, pub, nil)
}

// VerifyWithPartyKeys is Verify, and also checks the parties' signed
// statements against their keys (see KindStatement): it names the first
// record of a party with keys that follows no signed statement of the
// party, or whose statement does not verify.
func VerifyWithPartyKeys(r io.Reader, pub ed25519.PublicKey, keys PartyKeys) (Summary, error) {
	return VerifyWith(r, pub, VerifyOptions{PartyKeys: keys})
}

// VerifyOptions are the checks of VerifyWith beyond Verify's.
type VerifyOptions struct {
	// PartyKeys, when set, are the parties' keys: their signed
	// statements are checked (VerifyWithPartyKeys).
	PartyKeys PartyKeys
	// Bind, with PartyKeys, checks that the records each statement
	// covers say what its request asked.
	Bind Binder
	// WitnessKeys are the witnesses' cosignature verifier keys by party;
	// when nil, those the export's latest rules name (if any). Every
	// cosignature on the log checkpoint that ends the export must be one
	// of theirs and verify.
	WitnessKeys map[string]string
}

// ParseWitnessKeys reads lines "PARTY VKEY" (a witness's cosignature
// verifier key, as the rules name it, one per party; blank lines and #
// comments skipped).
// A file without any key is refused: given no keys, a verification would
// check no cosignature (an unknown or a forged one included) and still
// report every one checked. So is a PARTY that no party can have
// (party.ValidateName), and two witness keys of one name: a cosignature
// names its key by name, and the verification reported it as the last
// such party's, whichever witness signed.
func ParseWitnessKeys(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	byName := map[string]string{}
	err := namedlines.Each(r, func(f []string) error {
		if len(f) != 2 {
			return errors.New("want PARTY VKEY")
		}
		if err := checkPartyName(f[0]); err != nil {
			return err
		}
		v, err := translog.WitnessVerifier(f[1])
		if err != nil {
			return err
		}
		if err := printable.Check(v.Name()); err != nil {
			return fmt.Errorf("the witness key of %q: its name %v", f[0], err)
		}
		// Named twice, the first key would silently give way to the
		// second, and its witness's cosignatures be refused as a
		// stranger's.
		if _, twice := out[f[0]]; twice {
			return fmt.Errorf("party %q named twice", f[0])
		}
		if other, ok := byName[v.Name()]; ok {
			return fmt.Errorf("the witness keys of %q and %q are both named %q: their cosignatures cannot be told apart", other, f[0], v.Name())
		}
		byName[v.Name()] = f[0]
		out[f[0]] = f[1]
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no key in it: want lines PARTY VKEY")
	}
	return out, nil
}

// VerifyWith is Verify with the checks opts selects.
func VerifyWith(r io.Reader, pub ed25519.PublicKey, opts VerifyOptions) (Summary, error) {
	var stmts *statements
	if opts.PartyKeys != nil {
		stmts = newStatements(opts.PartyKeys, opts.Bind)
	}
	v := verifier{pub: pub, stmts: stmts, witnessKeys: opts.WitnessKeys, acceptances: newRulesAcceptances()}
	if opts.WitnessKeys != nil {
		v.sum.WitnessKeysFrom = "given"
	}
	return v.run(r)
}

func verify(r io.Reader, pub ed25519.PublicKey, stmts *statements) (Summary, error) {
	v := verifier{pub: pub, stmts: stmts, acceptances: newRulesAcceptances()}
	return v.run(r)
}

func (v *verifier) run(r io.Reader) (Summary, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			var long []byte
			long = append(long, b...)
			for errors.Is(err, bufio.ErrBufferFull) && len(long) <= maxLine {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
			if len(b) > maxLine {
				return Summary{}, v.fail(0, "line longer than %d bytes", maxLine)
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Summary{}, err
		}
		if len(b) == 0 && errors.Is(err, io.EOF) {
			break
		}
		v.line++
		if b[len(b)-1] != '\n' {
			return Summary{}, v.fail(v.lastSeq+1, "the last line is cut short (no newline): the export is truncated")
		}
		if ferr := v.take(b[:len(b)-1]); ferr != nil {
			return Summary{}, ferr
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if v.head == nil {
		if v.line == 0 {
			return Summary{}, &Error{Line: 0, Problem: "empty export: no records and no signed head"}
		}
		return Summary{}, v.fail(v.lastSeq+1, "no signed head line at the end: the export is truncated after record %d (%d records after the last checkpoint at seq %d are signed by nothing)",
			v.lastSeq, v.lastSeq-v.sum.LastCheckpointSeq, v.sum.LastCheckpointSeq)
	}
	if v.stmts != nil {
		if seq, problem := v.stmts.end(); problem != "" {
			return Summary{}, v.fail(seq, "%s", problem)
		}
	}
	if seq, problem := v.acceptances.end(); problem != "" {
		return Summary{}, v.fail(seq, "%s", problem)
	}
	if v.logCheckpoint != nil {
		if ferr := v.checkLog(); ferr != nil {
			return Summary{}, ferr
		}
	}
	s := v.sum
	s.RulesAcceptancesBound, s.RulesAcceptancesUnbound = v.acceptances.bound, v.acceptances.unbound
	s.LastSeq = v.lastSeq
	s.Leaves = v.leaves
	if s.Records > 0 {
		s.UnsignedTail = s.LastSeq - max(s.LastCheckpointSeq, s.FirstSeq-1)
	}
	return s, nil
}

type verifier struct {
	pub      ed25519.PublicKey
	stmts    *statements // nil: statements not checked
	line     int
	lastSeq  int64
	lastHash []byte // nil before the first record
	head     *Head
	sum      Summary
	// leaves are the records' leaf hashes, to check the log checkpoint.
	leaves        []translog.Hash
	logCheckpoint []byte
	// acceptances checks the digests the acceptances of the rules name.
	acceptances *rulesAcceptances
	// witnessKeys are the witnesses' keys by party: given, or from the
	// latest rules in the export.
	witnessKeys map[string]string
}

func (v *verifier) fail(seq int64, format string, args ...any) *Error {
	return &Error{Seq: seq, Line: v.line, Problem: fmt.Sprintf(format, args...)}
}

func (v *verifier) take(b []byte) *Error {
	ln, err := ParseLine(b)
	if err != nil {
		seq := int64(0)
		if v.lastHash != nil {
			seq = v.lastSeq + 1
		}
		return v.fail(seq, "unreadable line (after record %d): %v", v.lastSeq, err)
	}
	if ln.LogCheckpoint != nil {
		if v.head == nil || v.logCheckpoint != nil {
			return v.fail(0, "log_checkpoint line out of place (one, right after the head line)")
		}
		v.logCheckpoint = *ln.LogCheckpoint
		return nil
	}
	if v.head != nil {
		return v.fail(0, "line after the head line (only the log checkpoint may follow it)")
	}
	switch {
	case ln.Record != nil:
		return v.record(ln.Record)
	case ln.Checkpoint != nil:
		return v.checkpoint(ln.Checkpoint.Seq, ln.Checkpoint.Hash, ln.Checkpoint.Signature)
	default:
		return v.endHead(ln.Head)
	}
}

func (v *verifier) record(r *Record) *Error {
	if r.Seq < 1 {
		return v.fail(0, "seq %d: sequence numbers start at 1", r.Seq)
	}
	if v.lastHash == nil {
		v.sum.FirstSeq = r.Seq
		if r.Seq == 1 && !bytes.Equal(r.PrevHash, zeroHash) {
			return v.fail(r.Seq, "prev_hash of the first record is not zero")
		}
		if r.Seq > 1 {
			v.sum.Anchor = r.PrevHash
		}
	} else {
		want := v.lastSeq + 1
		switch {
		case r.Seq < want:
			return v.fail(want, "found record %d where record %d belongs: records out of order or repeated", r.Seq, want)
		case r.Seq > want:
			return v.fail(want, "missing or out of order: record %d follows record %d", r.Seq, v.lastSeq)
		}
		if !bytes.Equal(r.PrevHash, v.lastHash) {
			return v.fail(r.Seq, "prev_hash %s is not the hash of record %d (%s)", short(r.PrevHash), v.lastSeq, short(v.lastHash))
		}
	}
	if r.Hidden() {
		v.sum.Hidden++
	}
	if got := r.computeHash(); !bytes.Equal(got, r.Hash) {
		return v.fail(r.Seq, "hash mismatch: the record hashes to %s, not the stated %s (a field was altered)", short(got), short(r.Hash))
	}
	refs := bytes.Count(r.Content, []byte(`"sealed":{`))
	for i, s := range r.Sealed {
		salt, _ := hex.DecodeString(s.Salt)
		if hex.EncodeToString(sealHash(salt, s.Details)) != s.SHA256 {
			return v.fail(r.Seq, "sealed[%d]: details do not match their sha256 (altered)", i)
		}
		if !bytes.Contains(r.Content, []byte(`"sha256":"`+s.SHA256+`"`)) {
			return v.fail(r.Seq, "sealed[%d]: sha256 %s is not referenced by the content", i, s.SHA256[:12])
		}
	}
	if v.stmts != nil {
		if seq, problem := v.stmts.take(r); problem != "" {
			return v.fail(seq, "%s", problem)
		}
		v.sum.Statements = v.stmts.verified
	}
	if seq, problem := v.acceptances.take(r); problem != "" {
		return v.fail(seq, "%s", problem)
	}
	if r.Kind == "rules_changed" && v.sum.WitnessKeysFrom != "given" {
		v.noteWitnesses(r)
	}
	v.leaves = append(v.leaves, translog.LeafHash(r.Leaf()))
	v.sum.Redacted += max(refs-len(r.Sealed), 0)
	v.sum.Records++
	v.lastSeq, v.lastHash = r.Seq, r.Hash
	return nil
}

func (v *verifier) checkpoint(seq int64, hash, sig []byte) *Error {
	if v.lastHash == nil || seq != v.lastSeq {
		return v.fail(seq, "checkpoint for record %d out of place (after record %d): a record was removed or moved", seq, v.lastSeq)
	}
	if !bytes.Equal(hash, v.lastHash) {
		return v.fail(seq, "checkpoint hash %s is not the hash of record %d (%s)", short(hash), seq, short(v.lastHash))
	}
	if !ed25519.Verify(v.pub, checkpointMessage(seq, hash), sig) {
		return v.fail(seq, "checkpoint signature does not verify with the given key (wrong key, or the checkpoint was altered)")
	}
	v.sum.Checkpoints++
	v.sum.LastCheckpointSeq = seq
	return nil
}

func (v *verifier) endHead(h *Head) *Error {
	if !ed25519.Verify(v.pub, headMessage(h.From, h.Seq, h.Hash, h.Checkpoints, h.Time, h.Viewer), h.Signature) {
		return v.fail(0, "head signature does not verify with the given key (wrong key, or the head was altered)")
	}
	v.head = h
	v.sum.From, v.sum.Viewer, v.sum.HeadTime = h.From, h.Viewer, h.Time
	if v.lastHash == nil {
		// No record: the head must state a range the export could not
		// contain (it starts past the end of the log).
		if h.Seq >= h.From {
			return v.fail(h.From, "missing: the head covers records %d to %d but the export holds none", h.From, h.Seq)
		}
		return nil
	}
	if v.sum.FirstSeq != h.From {
		if v.sum.FirstSeq > h.From {
			return v.fail(h.From, "missing: the export is from record %d but starts at record %d", h.From, v.sum.FirstSeq)
		}
		return v.fail(v.sum.FirstSeq, "the export is from record %d but starts at record %d", h.From, v.sum.FirstSeq)
	}
	if h.Seq > v.lastSeq {
		return v.fail(v.lastSeq+1, "missing: the head covers records up to %d but the export ends at record %d (truncated)", h.Seq, v.lastSeq)
	}
	if h.Seq < v.lastSeq || !bytes.Equal(h.Hash, v.lastHash) {
		return v.fail(v.lastSeq, "the head (record %d, hash %s) does not match the last record (%d, %s)", h.Seq, short(h.Hash), v.lastSeq, short(v.lastHash))
	}
	if h.Checkpoints != int64(v.sum.Checkpoints) {
		return v.fail(0, "the head counts %d checkpoint lines but the export holds %d: checkpoints were removed", h.Checkpoints, v.sum.Checkpoints)
	}
	return nil
}

func short(h []byte) string {
	s := hex.EncodeToString(h)
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// checkLog verifies the log checkpoint that ends an export: signed by the
// same key, and, when the export holds the records from seq 1 up to its
// size, their tree has exactly its root.
func (v *verifier) checkLog() *Error {
	origin, _, _ := strings.Cut(string(v.logCheckpoint), "\n")
	vkey, err := note.NewEd25519VerifierKey(origin, v.pub)
	if err != nil {
		return v.fail(0, "log checkpoint: origin %q: %v", origin, err)
	}
	logV, err := translog.LogVerifier(vkey)
	if err != nil {
		return v.fail(0, "log checkpoint: %v", err)
	}
	cp, _, err := translog.Open(v.logCheckpoint, origin, logV)
	if err != nil {
		return v.fail(0, "log checkpoint does not verify with the given key: %v", err)
	}
	if len(v.witnessKeys) > 0 {
		parties := make([]string, 0, len(v.witnessKeys))
		for p := range v.witnessKeys {
			parties = append(parties, p)
		}
		slices.Sort(parties)
		var ws []note.Verifier
		byName := map[string]string{}
		for _, p := range parties {
			w, err := translog.WitnessVerifier(v.witnessKeys[p])
			if err != nil {
				return v.fail(0, "witness key of %s: %v", p, err)
			}
			ws = append(ws, w)
			byName[w.Name()] = p
		}
		_, cosigs, err := translog.Cosigned(v.logCheckpoint, origin, logV, ws...)
		if err != nil {
			return v.fail(0, "log checkpoint (witness keys from %s): %v", v.sum.WitnessKeysFrom, err)
		}
		for name := range cosigs {
			v.sum.LogCosignedBy = append(v.sum.LogCosignedBy, byName[name])
		}
		slices.Sort(v.sum.LogCosignedBy)
	}
	v.sum.LogSize = cp.Size
	v.sum.LogSignatures = len(translog.SignatureLines(v.logCheckpoint)) - 1
	if v.sum.FirstSeq != 1 || cp.Size > v.lastSeq {
		v.sum.LogNote = fmt.Sprintf("the export holds records %d to %d: the root of the log checkpoint (size %d) is not recomputed", v.sum.FirstSeq, v.lastSeq, cp.Size)
		return nil
	}
	tree, err := translog.NewTree(&translog.MemHashes{})
	if err != nil {
		return v.fail(0, "%v", err)
	}
	if _, err := tree.AppendLeafHashes(v.leaves[:cp.Size]); err != nil {
		return v.fail(0, "%v", err)
	}
	root, err := tree.Root(cp.Size)
	if err != nil {
		return v.fail(0, "%v", err)
	}
	if root != cp.Root {
		return v.fail(0, "the records 1 to %d do not make the tree the log checkpoint commits to (root %x, recomputed %x): a record was altered after it was logged", cp.Size, cp.Root[:8], root[:8])
	}
	v.sum.LogVerified = true
	return nil
}

// noteWitnesses takes the witnesses of the rules a rules_changed record
// puts in force (its content is the rules, or {"rules": ...}).
func (v *verifier) noteWitnesses(r *Record) {
	type witnesses struct {
		Witnesses []struct {
			Party string `json:"party"`
			VKey  string `json:"vkey"`
		} `json:"witnesses"`
	}
	var c struct {
		witnesses
		Rules *witnesses `json:"rules"`
	}
	if json.Unmarshal(r.Content, &c) != nil {
		return
	}
	w := c.witnesses
	if c.Rules != nil {
		w = *c.Rules
	}
	v.witnessKeys = map[string]string{}
	for _, x := range w.Witnesses {
		v.witnessKeys[x.Party] = x.VKey
	}
	v.sum.WitnessKeysFrom = "rules"
	if len(v.witnessKeys) == 0 {
		v.sum.WitnessKeysFrom = ""
	}
}
