// Package witness owns the C2SP tlog-witness protocol on both sides: the
// witness a party runs on its own premises (Server: it cosigns a log's
// checkpoint only when it is consistent with the last one it cosigned,
// and keeps that one), and the log's side (Client, Pusher: push every new
// checkpoint with a consistency proof to each witness and collect the
// C2SP tlog-cosignature lines). A witness that fails, answers garbage or
// times out is reported, never waited on by a write.
package witness

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/deconflict/deconflict/internal/translog"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// MaxProofLines is the protocol's bound on consistency proof lines.
const MaxProofLines = 63

// maxBody bounds an add-checkpoint request: 63 proof lines and a
// checkpoint with a few dozen signatures fit many times over.
const maxBody = 64 << 10

// SizeContentType is the content type of a 409 answer's body.
const SizeContentType = "text/x.tlog.size"

// CosignerKeys returns the cosignature/v1 signer of a witness named name
// with Ed25519 key, and its verifier key ("<name>+<hash>+base64(0x04 ||
// public key)"), what a log and the parties configure.
func CosignerKeys(name string, key ed25519.PrivateKey) (note.Signer, string, error) {
	plain, err := note.NewEd25519VerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, "", fmt.Errorf("witness: name %q: %w", name, err)
	}
	vkey, err := fnote.VKeyToCosignatureV1(plain)
	if err != nil {
		return nil, "", err
	}
	_, rest, _ := strings.Cut(vkey, "+")
	hash, _, _ := strings.Cut(rest, "+")
	skey := "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{4}, key.Seed()...))
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, "", err
	}
	return signer, vkey, nil
}

// Server is a C2SP tlog-witness for the logs it is configured with.
type Server struct {
	signer note.Signer
	vkey   string
	logs   map[string]note.Verifier // by origin
	dir    string

	mu sync.Mutex // check-and-persist is atomic, as the spec requires
}

// NewServer returns a witness named name signing with key, keeping its
// state in dir, for the logs whose signed-note verifier keys are logVKeys
// (each key's name is the log's origin).
func NewServer(name string, key ed25519.PrivateKey, dir string, logVKeys []string) (*Server, error) {
	signer, vkey, err := CosignerKeys(name, key)
	if err != nil {
		return nil, err
	}
	s := &Server{signer: signer, vkey: vkey, logs: map[string]note.Verifier{}, dir: dir}
	for _, k := range logVKeys {
		v, err := translog.LogVerifier(k)
		if err != nil {
			return nil, err
		}
		s.logs[v.Name()] = v
	}
	for _, d := range []string{filepath.Join(dir, "logs"), filepath.Join(dir, "evidence")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	// The party's checker, sharing the directory, finds the witness's
	// key here.
	if err := writeFileAtomic(filepath.Join(dir, VKeyFile), []byte(vkey+"\n")); err != nil {
		return nil, err
	}
	return s, nil
}

// VKeyFile holds the witness's verifier key in its state directory.
const VKeyFile = "witness.vkey"

// WithheldFile, in the state directory, holds what the party's own check
// of the record (internal/logcheck, sharing the directory) found wrong with
// it: while it exists the witness cosigns nothing, so that the checkpoints
// the log publishes show every party that this one does not verify the
// record, for as long as the fault lasts (the check removes the file when
// the record verifies again).
const WithheldFile = "withheld"

// ReadState reads what a witness keeps in dir for the log of origin: its
// verifier key and the latest checkpoint it cosigned (ok false: none).
func ReadState(dir, origin string, logVerifier note.Verifier) (vkey string, signed []byte, cp translog.Checkpoint, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, VKeyFile))
	if err != nil {
		return "", nil, cp, false, fmt.Errorf("witness: no witness state in %s: %w", dir, err)
	}
	vkey = strings.TrimSpace(string(b))
	s := &Server{dir: dir, logs: map[string]note.Verifier{origin: logVerifier}}
	signed, cp, ok, err = s.latest(origin)
	return vkey, signed, cp, ok, err
}

// VerifierKey is the witness's cosignature/v1 verifier key.
func (s *Server) VerifierKey() string { return s.vkey }

// Name is the witness's name, as it appears in its cosignature lines.
func (s *Server) Name() string { return s.signer.Name() }

// Latest returns the latest checkpoint the witness cosigned for origin, as
// it stored it (the log's signature and its own cosignature); ok is false
// when it never cosigned one.
func (s *Server) Latest(origin string) (signed []byte, cp translog.Checkpoint, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest(origin)
}

func (s *Server) statePath(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return filepath.Join(s.dir, "logs", hex.EncodeToString(sum[:16])+".checkpoint")
}

func (s *Server) latest(origin string) ([]byte, translog.Checkpoint, bool, error) {
	v, known := s.logs[origin]
	if !known {
		return nil, translog.Checkpoint{}, false, fmt.Errorf("witness: unknown log %q", origin)
	}
	b, err := os.ReadFile(s.statePath(origin))
	if errors.Is(err, os.ErrNotExist) {
		return nil, translog.Checkpoint{}, false, nil
	}
	if err != nil {
		return nil, translog.Checkpoint{}, false, err
	}
	cp, _, err := translog.Open(b, origin, v)
	if err != nil {
		return nil, translog.Checkpoint{}, false, fmt.Errorf("witness: stored state of %q: %w", origin, err)
	}
	return b, cp, true, nil
}

// ServeHTTP serves POST /add-checkpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "C2SP tlog-witness %s\n%s\n", s.Name(), s.vkey)
		return
	}
	if r.URL.Path != "/add-checkpoint" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "add-checkpoint takes POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxBody {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	status, answer := s.add(body)
	switch status {
	case http.StatusOK:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	case http.StatusConflict:
		w.Header().Set("Content-Type", SizeContentType)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

// Request is a parsed add-checkpoint body.
type Request struct {
	OldSize    int64
	Proof      []translog.Hash
	Checkpoint []byte // the signed note
}

// ParseRequest reads an add-checkpoint body.
func ParseRequest(body []byte) (Request, error) {
	var req Request
	br := bufio.NewReader(bytes.NewReader(body))
	line, err := br.ReadString('\n')
	if err != nil {
		return req, errors.New("no old size line")
	}
	num, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "old ")
	if !ok {
		return req, errors.New(`the first line is not "old <size>"`)
	}
	if req.OldSize, err = parseSize(num); err != nil {
		return req, fmt.Errorf("old size: %w", err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return req, errors.New("no empty line before the checkpoint")
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		if len(req.Proof) == MaxProofLines {
			return req, fmt.Errorf("more than %d proof lines", MaxProofLines)
		}
		// Strict decoding still skips carriage returns and newlines:
		// only the one spelling of a hash is taken, so that a body has
		// one reading.
		b, err := base64.StdEncoding.Strict().DecodeString(line)
		if err != nil || len(b) != len(translog.Hash{}) || base64.StdEncoding.EncodeToString(b) != line {
			return req, fmt.Errorf("proof line %d is not a base64 hash", len(req.Proof)+1)
		}
		req.Proof = append(req.Proof, translog.Hash(b))
	}
	req.Checkpoint, _ = io.ReadAll(br)
	return req, nil
}

// Body encodes req as an add-checkpoint body.
func (req Request) Body() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", req.OldSize)
	for _, h := range req.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(req.Checkpoint)
	return b.Bytes()
}

func parseSize(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%q is not a decimal size without leading zeroes", s)
	}
	return n, nil
}

// add runs the checks of the protocol in its order and answers with the
// HTTP status and body.
func (s *Server) add(body []byte) (int, string) {
	req, err := ParseRequest(body)
	if err != nil {
		return http.StatusBadRequest, err.Error() + "\n"
	}
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	v, known := s.logs[origin]
	if !known {
		return http.StatusNotFound, fmt.Sprintf("unknown log %q\n", origin)
	}
	n, err := note.Open(req.Checkpoint, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return http.StatusForbidden, "the checkpoint carries no valid signature of the log's key\n"
		}
		return http.StatusBadRequest, "malformed checkpoint: " + err.Error() + "\n"
	}
	cp, _, err := translog.Open(req.Checkpoint, origin, v)
	if err != nil {
		return http.StatusBadRequest, err.Error() + "\n"
	}
	if req.OldSize > cp.Size {
		return http.StatusBadRequest, fmt.Sprintf("old size %d is larger than the checkpoint's %d\n", req.OldSize, cp.Size)
	}
	if why, err := os.ReadFile(filepath.Join(s.dir, WithheldFile)); err == nil {
		return http.StatusForbidden, "cosignatures withheld: the party's check of the record found: " + strings.TrimSpace(string(why)) + "\n"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, held, ok, err := s.latest(origin)
	if err != nil {
		return http.StatusInternalServerError, err.Error() + "\n"
	}
	if !ok {
		held = translog.Checkpoint{Origin: origin}
	}
	if req.OldSize != held.Size {
		return http.StatusConflict, fmt.Sprintf("%d\n", held.Size)
	}
	if req.OldSize == cp.Size && held.Root != cp.Root {
		s.keepEvidence(origin, "same-size-different-root", n)
		return http.StatusConflict, fmt.Sprintf("%d\n", held.Size)
	}
	if req.OldSize == 0 && len(req.Proof) != 0 {
		return http.StatusUnprocessableEntity, "a consistency proof from size 0 must be empty\n"
	}
	if err := translog.VerifyConsistency(held.Size, held.Root, cp.Size, cp.Root, req.Proof); err != nil {
		s.keepEvidence(origin, "inconsistent", n)
		return http.StatusUnprocessableEntity, fmt.Sprintf("the checkpoint of size %d is not consistent with the one of size %d cosigned before: %v\n", cp.Size, held.Size, err)
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, s.signer)
	if err != nil {
		return http.StatusInternalServerError, err.Error() + "\n"
	}
	ours := translog.SignatureLines(cosigned)
	stored := translog.AddSignatures(logOnly(n), ours...)
	if err := writeFileAtomic(s.statePath(origin), stored); err != nil {
		return http.StatusInternalServerError, "persisting the checkpoint: " + err.Error() + "\n"
	}
	return http.StatusOK, strings.Join(ours, "")
}

// logOnly is the checkpoint with the log's verified signatures only
// (other parties' cosignatures are not the witness's to keep).
func logOnly(n *note.Note) []byte {
	out := []byte(n.Text + "\n")
	for _, sig := range n.Sigs {
		out = append(out, "— "+sig.Name+" "+sig.Base64+"\n"...)
	}
	return out
}

// keepEvidence stores a checkpoint the log signed that the witness
// refused: with the one it holds, it proves the log forked. Only the log's
// own signed checkpoint is kept (other signature lines, which anyone can
// add, are not the log's), under a name given by it alone, once: whoever
// can reach the witness can post the log's checkpoints with a bad proof
// and junk signature lines, and kept whole under a name of the time and
// the body's hash each such request filled the witness's disk with a file
// of up to 64 KiB. So there is at most one file of each kind a checkpoint
// the log signed.
func (s *Server) keepEvidence(origin, why string, n *note.Note) {
	signed := logOnly(n)
	sum := sha256.Sum256(signed)
	path := filepath.Join(s.dir, "evidence", fmt.Sprintf("%s-%s.checkpoint", why, hex.EncodeToString(sum[:12])))
	if _, err := os.Stat(path); err == nil {
		return
	}
	_ = writeFileAtomic(path, signed)
}

// writeFileAtomic writes b to path through a synced temporary file and a
// rename, so a crash leaves the old or the new content, never a mix.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
