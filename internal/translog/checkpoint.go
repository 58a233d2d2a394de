package translog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is the statement a checkpoint note makes: the log named
// Origin had Size leaves with root hash Root.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   Hash
}

// DefaultOrigin is the origin of a log whose operator named none: stable
// for one signing key, distinct between installs.
func DefaultOrigin(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "deconflict.local/log/" + hex.EncodeToString(sum[:8])
}

// LogKey signs the checkpoints of one log.
type LogKey struct {
	origin   string
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

// NewLogKey makes the signed-note signer of the log named origin from its
// Ed25519 key. The note key's name is the origin (C2SP tlog-checkpoint).
func NewLogKey(origin string, key ed25519.PrivateKey) (*LogKey, error) {
	vkey, err := note.NewEd25519VerifierKey(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("translog: origin %q: %w", origin, err)
	}
	// The signer key is the verifier key's name and key hash with the
	// private seed: "PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed)".
	name, rest, _ := strings.Cut(vkey, "+")
	hash, _, _ := strings.Cut(rest, "+")
	skey := "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, key.Seed()...))
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	return &LogKey{origin: origin, signer: signer, verifier: verifier, vkey: vkey}, nil
}

// Origin is the log's name, the first line of its checkpoints.
func (k *LogKey) Origin() string { return k.origin }

// VerifierKey is the signed-note verifier key of the log
// ("<origin>+<hash>+<base64>"), what GET /v1/log/key serves.
func (k *LogKey) VerifierKey() string { return k.vkey }

// Verifier verifies the log's signatures.
func (k *LogKey) Verifier() note.Verifier { return k.verifier }

// Sign makes the signed checkpoint note for a tree of size leaves with
// root hash root.
func (k *LogKey) Sign(size int64, root Hash) ([]byte, error) {
	text := log.Checkpoint{Origin: k.origin, Size: uint64(size), Hash: root[:]}.Marshal()
	return note.Sign(&note.Note{Text: string(text)}, k.signer)
}

// Open verifies a signed checkpoint note: it must carry the log's
// signature (logVerifier, whose name is origin). Cosignatures of the
// given witnesses that verify are returned by witness name; signatures of
// unknown keys are ignored, as the signed-note spec says.
func Open(signed []byte, origin string, logVerifier note.Verifier, witnesses ...note.Verifier) (Checkpoint, map[string]Cosignature, error) {
	cp, _, n, err := log.ParseCheckpoint(signed, origin, logVerifier, witnesses...)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("translog: checkpoint: %w", err)
	}
	if cp.Size > 1<<62 {
		return Checkpoint{}, nil, errors.New("translog: checkpoint: size out of range")
	}
	out := Checkpoint{Origin: cp.Origin, Size: int64(cp.Size)}
	if len(cp.Hash) != len(out.Root) {
		return Checkpoint{}, nil, fmt.Errorf("translog: checkpoint: root hash of %d bytes", len(cp.Hash))
	}
	copy(out.Root[:], cp.Hash)
	cosigs := map[string]Cosignature{}
	for _, s := range n.Sigs {
		if s.Name == logVerifier.Name() && s.Hash == logVerifier.KeyHash() {
			continue
		}
		t, err := fnote.CoSigV1Timestamp(s)
		if err != nil {
			continue
		}
		cosigs[s.Name] = Cosignature{Name: s.Name, Time: t.UTC(), Line: sigLine(s)}
	}
	return out, cosigs, nil
}

// Cosignature is one witness's C2SP tlog-cosignature on a checkpoint.
type Cosignature struct {
	Name string
	Time time.Time // when the witness signed (the cosignature's timestamp)
	Line string    // the signature line, "— <name> <base64>\n"
}

func sigLine(s note.Signature) string { return "— " + s.Name + " " + s.Base64 + "\n" }

// WitnessVerifier reads a witness's verifier key: a cosignature/v1 key
// (type 0x04), or a plain Ed25519 note key used for cosignatures. A key
// no one holds (partykey.CheckPoint) is refused: under a small-order key
// anyone, the log's operator too, could make the witness's cosignatures.
func WitnessVerifier(vkey string) (note.Verifier, error) {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err == nil {
		err = checkVKeyPoint(vkey)
	}
	if err != nil {
		return nil, fmt.Errorf("translog: witness key %q: %w", clip(vkey), err)
	}
	return v, nil
}

// LogVerifier reads a log's signed-note verifier key; a key no one holds
// is refused, as WitnessVerifier refuses one.
func LogVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err == nil {
		err = checkVKeyPoint(vkey)
	}
	if err != nil {
		return nil, fmt.Errorf("translog: log key %q: %w", clip(vkey), err)
	}
	return v, nil
}

// checkVKeyPoint checks the Ed25519 key of a verifier key the note
// package read ("<name>+<hash>+<base64 of the type byte and the key>").
func checkVKeyPoint(vkey string) error {
	fields := strings.SplitN(vkey, "+", 3) // the name has no '+', the base64 may
	if len(fields) != 3 {
		return errors.New("not a verifier key")
	}
	b, err := base64.StdEncoding.DecodeString(fields[2])
	if err != nil || len(b) != 1+ed25519.PublicKeySize {
		return errors.New("not an Ed25519 verifier key")
	}
	return partykey.CheckPoint(b[1:])
}

// SignatureLines are the signature lines of a signed note (each ending in
// a newline), in order.
func SignatureLines(signed []byte) []string {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	var out []string
	for _, l := range strings.SplitAfter(string(signed[i+2:]), "\n") {
		if strings.HasPrefix(l, "— ") && strings.HasSuffix(l, "\n") {
			out = append(out, l)
		}
	}
	return out
}

// AddSignatures appends signature lines to a signed note, skipping lines
// it already has.
func AddSignatures(signed []byte, lines ...string) []byte {
	have := map[string]bool{}
	for _, l := range SignatureLines(signed) {
		have[l] = true
	}
	out := bytes.Clone(signed)
	for _, l := range lines {
		if !have[l] {
			out = append(out, l...)
			have[l] = true
		}
	}
	return out
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Cosigned is Open for a verifier who knows every witness the checkpoint
// should carry: besides the log's signature, every other signature on it
// must be a cosignature of one of the witnesses that verifies. The error
// names the first that is not: a signature by a key none of the witnesses
// holds (unknown), or one of a witness's key that does not verify (bad).
func Cosigned(signed []byte, origin string, logVerifier note.Verifier, witnesses ...note.Verifier) (Checkpoint, map[string]Cosignature, error) {
	n, err := note.Open(signed, note.VerifierList(append([]note.Verifier{logVerifier}, witnesses...)...))
	var bad *note.InvalidSignatureError
	if errors.As(err, &bad) {
		if bad.Name == logVerifier.Name() {
			return Checkpoint{}, nil, fmt.Errorf("translog: checkpoint: the log's signature does not verify")
		}
		return Checkpoint{}, nil, fmt.Errorf("translog: checkpoint: the cosignature of %s does not verify with its key (a bad cosignature)", bad.Name)
	}
	if err == nil && len(n.UnverifiedSigs) > 0 {
		s := n.UnverifiedSigs[0]
		return Checkpoint{}, nil, fmt.Errorf("translog: checkpoint: a signature by %s (key hash %08x) is of no known witness (an unknown cosignature)", s.Name, s.Hash)
	}
	return Open(signed, origin, logVerifier, witnesses...)
}
