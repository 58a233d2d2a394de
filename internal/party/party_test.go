package party

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewTokenIsRandomAndHashed(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, hash, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw)*8 < 128 {
			t.Fatalf("token %q: %d bits, %v", tok, len(raw)*8, err)
		}
		if !bytes.Equal(hash, HashToken(tok)) || len(hash) != 32 {
			t.Fatalf("hash of %q is not its SHA-256", tok)
		}
		if bytes.Contains(hash, []byte(tok)) {
			t.Fatal("hash contains the token")
		}
		if seen[tok] {
			t.Fatalf("token repeated: %q", tok)
		}
		seen[tok] = true
		if !wellFormed(tok) {
			t.Fatalf("own token %q not well-formed", tok)
		}
	}
}

func TestValidateName(t *testing.T) {
	good := []string{"coalition", "russia", "a", "air-group_2", strings.Repeat("a", 64)}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	bad := []string{"", "Coalition", "2nd", "with space", "a/b", "*", "deconflict", strings.Repeat("a", 65), "é"}
	for _, n := range bad {
		if err := ValidateName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		header, tok string
		ok          bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"Bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		tok, ok := BearerToken(c.header)
		if tok != c.tok || ok != c.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", c.header, tok, ok, c.tok, c.ok)
		}
	}
}

// FuzzBearerToken: whatever the header, the parser neither panics nor
// returns a token with surrounding space, and a header it accepts keeps the
// token it found.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer x y", "Bearer", "Basic Zm9v", "", " Bearer a", "Bearer \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := BearerToken(h)
		if !ok {
			if tok != "" {
				t.Fatalf("refused header returned %q", tok)
			}
			return
		}
		if tok == "" || tok != strings.TrimSpace(tok) || !strings.Contains(h, tok) {
			t.Fatalf("header %q gave token %q", h, tok)
		}
		if wellFormed(tok) {
			if _, err := base64.RawURLEncoding.DecodeString(tok); err != nil {
				t.Fatalf("well-formed %q does not decode", tok)
			}
		}
	})
}
