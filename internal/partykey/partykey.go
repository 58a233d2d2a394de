// Package partykey owns a party's own signing key: an Ed25519 key pair the
// party generates and keeps (the server only ever sees the public half),
// its private file (PKCS#8 PEM, mode 0600), the text form of its public key
// ("ed25519:" followed by the standard base64 of the 32 key bytes) and its
// key id (the unpadded base64url SHA-256 of the 32 public key bytes), which
// is what an HTTP message signature names as keyid.
package partykey

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"filippo.io/edwards25519"
)

// Prefix starts the text form of a public key.
const Prefix = "ed25519:"

// pemType is the PEM block type of a PKCS#8 private key.
const pemType = "PRIVATE KEY"

// Generate returns a new key pair from the system's random source.
func Generate() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	return priv, err
}

// EncodePEM is the PKCS#8 PEM form of key.
func EncodePEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// DecodePEM reads a PKCS#8 PEM Ed25519 private key.
func DecodePEM(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemType {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" (PKCS#8) block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key, not Ed25519", k)
	}
	return key, nil
}

// WriteFile writes key to a new file at path, mode 0600. It never
// overwrites: losing a key that a party registered locks that party out.
func WriteFile(path string, key ed25519.PrivateKey) error {
	b, err := EncodePEM(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// ReadFile reads a private key written by WriteFile (or by any tool writing
// PKCS#8 PEM). A file that others may read is refused: whoever reads it can
// sign as the party.
func ReadFile(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key %s is accessible to others (mode %#o); make it 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := DecodePEM(b)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return key, nil
}

// Public is the public half of key.
func Public(key ed25519.PrivateKey) ed25519.PublicKey {
	return key.Public().(ed25519.PublicKey)
}

// Format is the text form of pub: "ed25519:<standard base64>".
func Format(pub ed25519.PublicKey) string {
	return Prefix + base64.StdEncoding.EncodeToString(pub)
}

// Parse reads the text form written by Format. It accepts only that exact
// spelling, so that one key has one text form, and only a key someone can
// hold: a point of the curve in its canonical encoding, not of small
// order. Under a small-order key anyone signs anything (the identity
// point verifies one fixed signature on every message), so a party that
// registered one could disown every statement it signed.
func Parse(s string) (ed25519.PublicKey, error) {
	pub, err := ParseText(s)
	if err != nil {
		return nil, err
	}
	if err := CheckPoint(pub); err != nil {
		return nil, fmt.Errorf("public key %q: %w", clip(s), err)
	}
	return pub, nil
}

// CheckPoint says whether the 32 bytes of an Ed25519 public key are a key
// someone can hold (see Parse): any signed-note key (a log's, a
// witness's) too.
func CheckPoint(pub []byte) error {
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil || !bytes.Equal(p.Bytes(), pub) {
		return errors.New("not a point of the Ed25519 curve in its canonical encoding")
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errors.New("a point of small order, under which anyone can sign anything")
	}
	return nil
}

// ParseText reads the text form written by Format, in that exact
// spelling, without Parse's check of the point: for a key's text the
// service stored when it was registered (a key registered before the
// check still reads as the 32 bytes it was).
func ParseText(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return nil, fmt.Errorf("public key %q: want %s<base64>", clip(s), Prefix)
	}
	// Strict decoding still skips carriage returns and newlines: the
	// text must also be the one Format writes.
	b, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || base64.StdEncoding.EncodeToString(b) != b64 {
		return nil, fmt.Errorf("public key %q: not standard base64", clip(s))
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q: %d bytes, an Ed25519 public key has %d", clip(s), len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ID is the key id of pub: the unpadded base64url SHA-256 of its 32 bytes.
func ID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
