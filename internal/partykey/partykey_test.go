package partykey

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/testutil/nodejs"
)

func TestWriteReadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	key, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, key); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %#o, want 0600", fi.Mode().Perm())
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(key) {
		t.Fatal("read back a different key")
	}
	if err := WriteFile(path, key); err == nil {
		t.Fatal("WriteFile overwrote an existing key file")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a world-readable key was accepted: %v", err)
	}
}

func TestParseFormat(t *testing.T) {
	key, _ := Generate()
	pub := Public(key)
	s := Format(pub)
	got, err := Parse(s)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("Parse(Format) = %v, %v", got, err)
	}
	for _, bad := range []string{
		strings.TrimPrefix(s, Prefix),            // no prefix
		"ed448:" + strings.TrimPrefix(s, Prefix), // another algorithm
		strings.TrimRight(s, "="),                // unpadded
		Prefix + "AAAA",                          // 3 bytes
		s + " ",                                  // trailing space
		strings.Replace(s, "ed25519", "ED25519", 1),
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestAgainstNode checks the PEM file, the public key text and the key id
// against node's own crypto (OpenSSL), an implementation we did not write:
// node reads our PKCS#8 file, derives the public key and hashes it.
func TestAgainstNode(t *testing.T) {
	key, _ := Generate()
	pemBytes, err := EncodePEM(key)
	if err != nil {
		t.Fatal(err)
	}
	out := nodejs.Run(t, `
const crypto = require('crypto');
const pem = require('fs').readFileSync(0, 'utf8');
const priv = crypto.createPrivateKey(pem);
if (priv.asymmetricKeyType !== 'ed25519') throw new Error('type ' + priv.asymmetricKeyType);
const raw = Buffer.from(crypto.createPublicKey(priv).export({format: 'jwk'}).x, 'base64url');
console.log('ed25519:' + raw.toString('base64'));
console.log(crypto.createHash('sha256').update(raw).digest('base64url'));
`, pemBytes)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("node printed %q", out)
	}
	pub := Public(key)
	if lines[0] != Format(pub) {
		t.Errorf("node derives %s, we format %s", lines[0], Format(pub))
	}
	if lines[1] != ID(pub) {
		t.Errorf("node's key id %s, ours %s", lines[1], ID(pub))
	}
	if strings.ContainsAny(ID(pub), "=+/") || len(ID(pub)) != 43 {
		t.Errorf("key id %q is not unpadded base64url of 32 bytes", ID(pub))
	}
	// And the other way: a key node generates reads as the same key here.
	out = nodejs.Run(t, `
const crypto = require('crypto');
const {privateKey, publicKey} = crypto.generateKeyPairSync('ed25519');
console.log(JSON.stringify({pem: privateKey.export({type: 'pkcs8', format: 'pem'}), x: publicKey.export({format: 'jwk'}).x}));
`, nil)
	var theirs struct{ PEM, X string }
	if err := json.Unmarshal(out, &theirs); err != nil {
		t.Fatal(err)
	}
	k, err := DecodePEM([]byte(theirs.PEM))
	if err != nil {
		t.Fatal(err)
	}
	x, err := base64.RawURLEncoding.DecodeString(theirs.X)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Public(k), x) || len(k) != ed25519.PrivateKeySize {
		t.Fatal("node's PKCS#8 key decodes to another public key")
	}
}

// weakKeys are 32-byte texts Parse refuses as keys no one holds: the
// small-order points (the identity; y = -1, of order 2; y = 0, of order
// 4), a non-canonical encoding of the identity (y = p + 1), and a y with
// no point of the curve.
var weakKeys = map[string][]byte{
	"identity":      append([]byte{1}, make([]byte, 31)...),
	"order 2":       append(append([]byte{0xec}, bytes.Repeat([]byte{0xff}, 30)...), 0x7f),
	"order 4":       make([]byte, 32),
	"non-canonical": append(append([]byte{0xee}, bytes.Repeat([]byte{0xff}, 30)...), 0x7f),
	"not a point":   append([]byte{2}, make([]byte, 31)...),
}

// TestParseRefusesWeakKeys: a key under which anyone can sign anything
// (the identity verifies one fixed signature on every message) is refused,
// saying why; ParseText still reads its text, as a stored key's.
func TestParseRefusesWeakKeys(t *testing.T) {
	forged := append([]byte{1}, make([]byte, 63)...) // R = identity, S = 0
	for _, msg := range []string{"a", "a statement the party never made"} {
		if !ed25519.Verify(weakKeys["identity"], []byte(msg), forged) {
			t.Fatalf("the identity key does not verify the forged signature on %q: the case is moot", msg)
		}
	}
	for name, b := range weakKeys {
		text := Format(b)
		_, err := Parse(text)
		if err == nil || !strings.Contains(err.Error(), "public key") ||
			!strings.Contains(err.Error(), "small order") && !strings.Contains(err.Error(), "canonical encoding") {
			t.Errorf("%s %s: %v, want a refusal saying why", name, text, err)
		}
		if pub, err := ParseText(text); err != nil || !bytes.Equal(pub, b) {
			t.Errorf("%s: ParseText %x, %v", name, pub, err)
		}
	}
	key, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(Format(Public(key))); err != nil {
		t.Fatalf("a generated key: %v", err)
	}
}
