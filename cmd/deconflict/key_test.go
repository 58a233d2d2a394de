package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/partykey"
)

func TestKeyNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coalition.pem")
	var out, errOut bytes.Buffer
	if code := runMain([]string{"key", "new", "--out", path}, &out, &errOut); code != 0 {
		t.Fatalf("key new exited %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	pub, err := partykey.Parse(last)
	if err != nil {
		t.Fatalf("last line %q: %v", last, err)
	}
	key, err := partykey.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !partykey.Public(key).Equal(pub) {
		t.Fatal("the printed public key is not the written key's")
	}
	if !strings.Contains(out.String(), "keyid "+partykey.ID(pub)) {
		t.Errorf("output does not state the key id:\n%s", out.String())
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %#o", fi.Mode().Perm())
	}
	// A second run never overwrites the key.
	before, _ := os.ReadFile(path)
	if code := runMain([]string{"key", "new", "--out", path}, &out, &errOut); code == 0 {
		t.Fatal("key new overwrote an existing file")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("the key file changed")
	}
	if code := runMain([]string{"key", "new"}, &out, &errOut); code != 2 {
		t.Fatalf("key new without --out exited %d, want 2", code)
	}
}
