package partykey

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse: a public key's text parses only in the one spelling Format
// gives it, so that one key never has two names, and only as a key no
// signature forged without its private half verifies under; an error
// names the text clipped and printable, whatever was sent.
func FuzzParse(f *testing.F) {
	key, err := Generate()
	if err != nil {
		f.Fatal(err)
	}
	good := Format(Public(key))
	f.Add(good)
	f.Add(strings.TrimSuffix(good, "="))
	f.Add(good + "\n")
	f.Add(strings.Replace(good, "ed25519:", "ED25519:", 1))
	f.Add("ed25519:" + strings.Repeat("A", 4000))
	f.Add("ed25519:\x00\x1b[31m")
	for _, b := range weakKeys {
		f.Add(Format(b))
	}
	// R = the identity, S = 0: a signature of every message under the
	// identity key, and of some under the other small-order keys.
	forged := append([]byte{1}, make([]byte, 63)...)
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := Parse(s)
		if err != nil {
			msg := err.Error()
			if len(msg) > 400 || !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x00\x1b\n\r") {
				t.Fatalf("error %q for %q: not short, clipped and printable", msg, s)
			}
			return
		}
		if again := Format(pub); again != s {
			t.Fatalf("%q parses, but its key is spelled %q", s, again)
		}
		// No accepted key verifies what no one signed.
		for _, msg := range []string{"", "a", "statement"} {
			if ed25519.Verify(pub, []byte(msg), forged) {
				t.Fatalf("%q parses, and verifies a forged signature of %q", s, msg)
			}
		}
	})
}

// FuzzDecodePEM: anything that decodes is an Ed25519 private key that
// encodes and decodes again to itself; anything else is an error.
func FuzzDecodePEM(f *testing.F) {
	key, err := Generate()
	if err != nil {
		f.Fatal(err)
	}
	b, err := EncodePEM(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(bytes.Replace(b, []byte("PRIVATE KEY"), []byte("PUBLIC KEY"), 2))
	f.Add(b[:len(b)/2])
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		key, err := DecodePEM(in)
		if err != nil {
			return
		}
		out, err := EncodePEM(key)
		if err != nil {
			t.Fatalf("a decoded key does not encode: %v", err)
		}
		again, err := DecodePEM(out)
		if err != nil || !again.Equal(key) {
			t.Fatalf("a decoded key encodes to a different one: %v", err)
		}
	})
}
