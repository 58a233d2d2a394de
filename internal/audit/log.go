package audit

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// Log appends records and signs checkpoints with the server's key, and
// makes the transparency log's tree follow the records (SyncTree). A nil
// *Log appends without ever checkpointing (a tool working on a bare store).
type Log struct {
	key   ed25519.PrivateKey
	every int64
	// leaves are the leaf hashes of the records this Log appended that
	// the tree may not hold yet, so that its catch-up need not decode them.
	leaves recentLeaves
}

// NewLog returns a log signing with key, checkpointing every `every`
// records (DefaultEvery when every <= 0).
func NewLog(key ed25519.PrivateKey, every int64) *Log {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Log{key: key, every: every}
}

// PublicKey is the key that verifies this log's signatures.
func (l *Log) PublicKey() ed25519.PublicKey { return l.key.Public().(ed25519.PublicKey) }

// Append appends one record (see the package function Append) and, when its
// seq is a multiple of the checkpoint interval, signs it in the same
// transaction.
func (l *Log) Append(tx store.Audit, actor, kind string, readers Readers, content any, now time.Time) (store.AuditRecord, error) {
	rec, leaf, err := appendRecord(tx, actor, kind, readers, content, now)
	if err != nil || l == nil {
		return rec, err
	}
	l.leaves.remember(rec, leaf)
	if rec.Seq%l.every == 0 {
		if err := tx.PutCheckpoint(l.checkpoint(rec, now)); err != nil {
			return store.AuditRecord{}, err
		}
	}
	return rec, nil
}

// Checkpoint signs the current head of the chain unless it is signed
// already (run it at shutdown). ok is false when the log is empty.
func (l *Log) Checkpoint(tx store.Audit, now time.Time) (cp store.Checkpoint, ok bool, err error) {
	last, err := tx.LastAudit()
	if errors.Is(err, store.ErrNotFound) {
		return store.Checkpoint{}, false, nil
	}
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	cps, err := tx.CheckpointsFrom(last.Seq)
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	if len(cps) > 0 {
		return cps[len(cps)-1], true, nil
	}
	cp = l.checkpoint(last, now)
	return cp, true, tx.PutCheckpoint(cp)
}

func (l *Log) checkpoint(rec store.AuditRecord, now time.Time) store.Checkpoint {
	return store.Checkpoint{Seq: rec.Seq, Hash: rec.Hash, Signature: ed25519.Sign(l.key, checkpointMessage(rec.Seq, rec.Hash)), Time: now}
}

func checkpointMessage(seq int64, hash []byte) []byte {
	b := make([]byte, 0, len(checkpointDomain)+8+len(hash))
	b = append(b, checkpointDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	return append(b, hash...)
}

// headMessage is what the head line of an export signs: the range it
// covers, the hash of its last record, how many checkpoint lines it holds,
// when and for whom it was made.
func headMessage(from, seq int64, hash []byte, checkpoints int64, t time.Time, viewer string) []byte {
	b := []byte(headDomain)
	b = binary.BigEndian.AppendUint64(b, uint64(from))
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = binary.BigEndian.AppendUint64(b, uint64(checkpoints))
	b = binary.BigEndian.AppendUint64(b, uint64(len(hash)))
	b = append(b, hash...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(len(viewer)))
	return append(b, viewer...)
}

// KeyFile is the name of the signing key inside the data directory.
const KeyFile = "audit-ed25519.pem"

// LoadOrCreateKey reads the signing key DIR/KeyFile, creating it (mode
// 0600) on first use. A key file that others may read is refused: whoever
// reads it can forge checkpoints.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := LoadKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	_, key, err = ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	// Write a temporary file, then link it into place: a crash never leaves
	// a half-written key, and of two processes starting at once one wins
	// and the other reads the winner's key.
	tmp, err := os.CreateTemp(dir, KeyFile+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("audit: creating the signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadKey(path)
		}
		return nil, fmt.Errorf("audit: creating the signing key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return key, nil
}

// LoadKey reads a signing key written by LoadOrCreateKey.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit: signing key %s is accessible to others (mode %#o); make it 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: signing key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: signing key %s: not an Ed25519 key", path)
	}
	return key, nil
}

// KeyInfo is the body of GET /v1/audit/key.
type KeyInfo struct {
	Alg       string `json:"alg"`
	PublicKey string `json:"public_key"`
}

// PublicKeyInfo describes pub for GET /v1/audit/key.
func PublicKeyInfo(pub ed25519.PublicKey) KeyInfo {
	return KeyInfo{Alg: "Ed25519", PublicKey: base64.StdEncoding.EncodeToString(pub)}
}

// ParsePublicKey accepts a public key as standard base64, or as the JSON of
// GET /v1/audit/key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	var info KeyInfo
	if err := jsonUnmarshalStrict([]byte(s), &info); err == nil {
		if info.Alg != "Ed25519" {
			return nil, fmt.Errorf("key: alg %q is not Ed25519", info.Alg)
		}
		s = info.PublicKey
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("key: not base64: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key: %d bytes, an Ed25519 public key has %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
