package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// The export is JSON lines, each line one of (docs/WIRE.md "Audit"):
//
//	{"seq","time","actor","kind","content","prev_hash","hash","sealed":[..]}   a record
//	{"checkpoint":{"seq","hash","signature"}}                               right after its record
//	{"head":{"from","seq","hash","checkpoints","time","viewer","signature"}} after the records
//	{"log_checkpoint":"<C2SP signed note>"}                                  optional, last
//
// Hashes are lowercase hex, signatures standard base64, times RFC 3339 with
// nanoseconds in UTC. "sealed" carries the clear details of the record's
// Sealed parts that the viewer may read: {"sha256","salt","details"}.
// Every line is in canonical form (what Export writes), and Verify refuses
// any other spelling, so that no byte of an export can change unnoticed.

// A record the viewer may not read is shown by its commitment alone:
//
//	{"seq","commitment","prev_hash","hash"}
//
// and a record it may read carries its "salt" (v2), from which the
// verifier recomputes the commitment; a v1 record has neither.
type recordLine struct {
	Seq        int64           `json:"seq"`
	LeafIndex  int64           `json:"leaf_index"` // in the transparency log: seq - 1
	Time       string          `json:"time,omitempty"`
	Actor      string          `json:"actor,omitempty"`
	Kind       string          `json:"kind,omitempty"`
	Content    json.RawMessage `json:"content,omitempty"`
	Salt       string          `json:"salt,omitempty"`
	Commitment string          `json:"commitment,omitempty"`
	PrevHash   string          `json:"prev_hash"`
	Hash       string          `json:"hash"`
	Sealed     []sealedLine    `json:"sealed,omitempty"`
}

type sealedLine struct {
	SHA256  string          `json:"sha256"`
	Salt    string          `json:"salt"`
	Details json.RawMessage `json:"details"`
}

type checkpointLine struct {
	Checkpoint checkpointBody `json:"checkpoint"`
}

type checkpointBody struct {
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Signature string `json:"signature"`
}

type headLine struct {
	Head headBody `json:"head"`
}

type headBody struct {
	From        int64  `json:"from"`
	Seq         int64  `json:"seq"`
	Hash        string `json:"hash"`
	Checkpoints int64  `json:"checkpoints"`
	Time        string `json:"time"`
	Viewer      string `json:"viewer"`
	Signature   string `json:"signature"`
}

const timeLayout = time.RFC3339Nano

// exportPage is how many records Export reads at a time.
const exportPage = 1000

// Export writes the records from seq fromSeq (1 when fromSeq < 1) to the
// head as JSON lines, with their checkpoints, and ends with a head line
// signed now. viewer is the party the export is for: sealed details are
// included only where viewer is one of their readers; "" is the operator,
// who sees everything. It reads everything in tx.
func (l *Log) Export(tx store.Audit, w io.Writer, viewer string, fromSeq int64, now time.Time) error {
	_, err := l.ExportPaged(func(fn func(store.Audit) error) error { return fn(tx) }, w, viewer, fromSeq, now)
	return err
}

// View runs fn in one read transaction of a store.
type View func(fn func(tx store.Audit) error) error

// ExportPaged is Export reading the head and then each page of records in
// a transaction of its own (view), none of them open while it writes to w:
// a reader that takes the export slowly, or stops taking it, holds none of
// the store's connections. The export is the chain up to the head it read
// first: records and checkpoints are only ever appended, so the pages read
// later hold exactly what they held then. It returns the head's seq (0 for
// an empty chain).
func (l *Log) ExportPaged(view View, w io.Writer, viewer string, fromSeq int64, now time.Time) (int64, error) {
	if fromSeq < 1 {
		fromSeq = 1
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var (
		cps      []store.Checkpoint
		headSeq  int64
		headHash = zeroHash
	)
	err := view(func(tx store.Audit) error {
		var err error
		if cps, err = tx.CheckpointsFrom(fromSeq); err != nil {
			return err
		}
		switch last, err := tx.LastAudit(); {
		case err == nil:
			headSeq, headHash = last.Seq, last.Hash
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// A checkpoint of a record past the head is of a later snapshot.
	for i, cp := range cps {
		if cp.Seq > headSeq {
			cps = cps[:i]
			break
		}
	}
	// Exported up to the head, or nothing: the head line then states the
	// head (or the empty chain) so that it still anchors.
	lastSeq, lastHash := headSeq, headHash
	var written int64 // checkpoint lines, stated in the head so none can be dropped
	for next := fromSeq; next <= headSeq; {
		var page []store.AuditRecord
		err := view(func(tx store.Audit) error {
			var err error
			page, err = tx.AuditFrom(next, int(min(exportPage, headSeq-next+1)))
			return err
		})
		if err != nil {
			return 0, err
		}
		if len(page) == 0 || page[0].Seq != next {
			return 0, fmt.Errorf("audit: export: record %d of the chain up to %d is not in the store any more", next, headSeq)
		}
		for _, r := range page {
			rec, err := Decode(r)
			if err != nil {
				return 0, err
			}
			if err := writeLine(bw, exportLine(rec, viewer)); err != nil {
				return 0, err
			}
			for len(cps) > 0 && cps[0].Seq <= rec.Seq {
				if cps[0].Seq == rec.Seq {
					cl := checkpointLine{checkpointBody{Seq: rec.Seq, Hash: hex.EncodeToString(cps[0].Hash), Signature: base64.StdEncoding.EncodeToString(cps[0].Signature)}}
					if err := writeLine(bw, cl); err != nil {
						return 0, err
					}
					written++
				}
				cps = cps[1:]
			}
			lastSeq, lastHash = rec.Seq, rec.Hash
		}
		next = page[len(page)-1].Seq + 1
	}
	t := time.Unix(0, now.UnixNano()).UTC()
	hl := headLine{headBody{From: fromSeq, Seq: lastSeq, Hash: hex.EncodeToString(lastHash), Checkpoints: written, Time: t.Format(timeLayout), Viewer: viewer,
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(l.key, headMessage(fromSeq, lastSeq, lastHash, written, t, viewer)))}}
	if err := writeLine(bw, hl); err != nil {
		return 0, err
	}
	return headSeq, bw.Flush()
}

func exportLine(r Record, viewer string) recordLine {
	if r.Hidden() || (r.Salt != nil && !r.Readers.canRead(viewer)) {
		return recordLine{Seq: r.Seq, LeafIndex: r.Seq - 1, Commitment: hex.EncodeToString(r.Commitment),
			PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash)}
	}
	out := recordLine{Seq: r.Seq, LeafIndex: r.Seq - 1, Time: r.Time.UTC().Format(timeLayout), Actor: r.Actor, Kind: r.Kind, Content: r.Content,
		PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash)}
	if r.Salt != nil {
		out.Salt = hex.EncodeToString(r.Salt)
	}
	for _, s := range r.Sealed {
		if Readers(s.Readers).canRead(viewer) {
			out.Sealed = append(out.Sealed, sealedLine{SHA256: s.SHA256, Salt: s.Salt, Details: s.Details})
		}
	}
	return out
}

func writeLine(w io.Writer, v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// Line is one parsed line of an export: exactly one of its fields is set.
type Line struct {
	Record     *Record
	Checkpoint *store.Checkpoint
	Head       *Head
	// LogCheckpoint is the transparency log's checkpoint the export was
	// cut at (a C2SP signed note with its cosignatures).
	LogCheckpoint *[]byte
}

type logCheckpointLine struct {
	LogCheckpoint string `json:"log_checkpoint"`
}

// WriteLogCheckpoint ends an export with the transparency log's signed
// checkpoint (after the head line).
func WriteLogCheckpoint(w io.Writer, signed []byte) error {
	return writeLine(w, logCheckpointLine{LogCheckpoint: string(signed)})
}

// Head is the signed statement that ends an export.
type Head struct {
	From        int64
	Seq         int64
	Hash        []byte
	Checkpoints int64 // checkpoint lines in the export
	Time        time.Time
	Viewer      string
	Signature   []byte
}

// ParseLine parses one line of an export (without its newline). It
// refuses a line that is not in the canonical form Export writes, naming
// the field at fault.
func ParseLine(b []byte) (Line, error) {
	// Only the canonical spelling is accepted (checked at the end), so the
	// kind of line shows in its first bytes; and an unknown or re-cased
	// field, which Unmarshal would ignore or accept, fails that check.
	var (
		out  Line
		want any
		err  error
	)
	switch {
	case bytes.HasPrefix(b, []byte(`{"checkpoint":`)):
		var cl checkpointLine
		if err := json.Unmarshal(b, &cl); err != nil {
			return Line{}, fmt.Errorf("checkpoint: %w", err)
		}
		cp := store.Checkpoint{Seq: cl.Checkpoint.Seq}
		if cp.Hash, err = parseHash("checkpoint.hash", cl.Checkpoint.Hash); err != nil {
			return Line{}, err
		}
		if cp.Signature, err = parseSig("checkpoint.signature", cl.Checkpoint.Signature); err != nil {
			return Line{}, err
		}
		out.Checkpoint, want = &cp, cl
	case bytes.HasPrefix(b, []byte(`{"log_checkpoint":`)):
		var cl logCheckpointLine
		if err := json.Unmarshal(b, &cl); err != nil {
			return Line{}, fmt.Errorf("log_checkpoint: %w", err)
		}
		note := []byte(cl.LogCheckpoint)
		out.LogCheckpoint, want = &note, cl
	case bytes.HasPrefix(b, []byte(`{"head":`)):
		var hl headLine
		if err := json.Unmarshal(b, &hl); err != nil {
			return Line{}, fmt.Errorf("head: %w", err)
		}
		h := Head{From: hl.Head.From, Seq: hl.Head.Seq, Checkpoints: hl.Head.Checkpoints, Viewer: hl.Head.Viewer}
		if h.Hash, err = parseHash("head.hash", hl.Head.Hash); err != nil {
			return Line{}, err
		}
		if h.Time, err = parseTime("head.time", hl.Head.Time); err != nil {
			return Line{}, err
		}
		if h.Signature, err = parseSig("head.signature", hl.Head.Signature); err != nil {
			return Line{}, err
		}
		out.Head, want = &h, hl
	default:
		var rl recordLine
		if err := json.Unmarshal(b, &rl); err != nil {
			return Line{}, fmt.Errorf("record: %w", err)
		}
		r := Record{Seq: rl.Seq, Actor: rl.Actor, Kind: rl.Kind, Content: rl.Content}
		if rl.LeafIndex != rl.Seq-1 {
			return Line{}, fmt.Errorf("leaf_index: %d is not seq-1 (%d)", rl.LeafIndex, rl.Seq-1)
		}
		if r.PrevHash, err = parseHash("prev_hash", rl.PrevHash); err != nil {
			return Line{}, err
		}
		if r.Hash, err = parseHash("hash", rl.Hash); err != nil {
			return Line{}, err
		}
		if rl.Commitment != "" {
			// Hidden from the viewer: the commitment and the links only.
			if rl.Time != "" || rl.Actor != "" || rl.Kind != "" || len(rl.Content) > 0 || rl.Salt != "" || len(rl.Sealed) > 0 {
				return Line{}, errors.New("commitment: a hidden record carries nothing else")
			}
			if r.Commitment, err = parseHash("commitment", rl.Commitment); err != nil {
				return Line{}, err
			}
			out.Record, want = &r, rl
			break
		}
		if r.Time, err = parseTime("time", rl.Time); err != nil {
			return Line{}, err
		}
		if len(r.Content) == 0 {
			return Line{}, errors.New("content: missing")
		}
		if rl.Salt != "" {
			if r.Salt, err = hex.DecodeString(rl.Salt); err != nil || len(r.Salt) != saltSize || hex.EncodeToString(r.Salt) != rl.Salt {
				return Line{}, fmt.Errorf("salt: not %d bytes in lowercase hex", saltSize)
			}
			r.Commitment = r.commit()
		}
		for i, s := range rl.Sealed {
			r.Sealed = append(r.Sealed, Revealed{SHA256: s.SHA256, Salt: s.Salt, Details: s.Details})
			if _, err := parseHash(fmt.Sprintf("sealed[%d].sha256", i), s.SHA256); err != nil {
				return Line{}, err
			}
			if salt, err := hex.DecodeString(s.Salt); err != nil || len(salt) == 0 || hex.EncodeToString(salt) != s.Salt {
				return Line{}, fmt.Errorf("sealed[%d].salt: not hex", i)
			}
			if len(s.Details) == 0 {
				return Line{}, fmt.Errorf("sealed[%d].details: missing", i)
			}
		}
		out.Record, want = &r, rl
	}
	canon, err := marshal(want)
	if err != nil {
		return Line{}, err
	}
	if !bytes.Equal(canon, b) {
		return Line{}, errors.New("not in canonical form (the line was re-spelled or altered)")
	}
	return out, nil
}

func jsonUnmarshalStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func parseHash(field, s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize || hex.EncodeToString(b) != s {
		return nil, fmt.Errorf("%s: not a SHA-256 in lowercase hex", field)
	}
	return b, nil
}

func parseSig(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.SignatureSize || base64.StdEncoding.EncodeToString(b) != s {
		return nil, fmt.Errorf("%s: not an Ed25519 signature in base64", field)
	}
	return b, nil
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil || t.UTC().Format(timeLayout) != s {
		return time.Time{}, fmt.Errorf("%s: not an RFC 3339 time in UTC", field)
	}
	return t.UTC(), nil
}
