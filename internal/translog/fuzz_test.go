package translog

import (
	"crypto/ed25519"
	"testing"
)

// FuzzOpen feeds arbitrary bytes as a checkpoint: Open must refuse what
// the log did not sign, and never panic.
func FuzzOpen(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	k, err := NewLogKey("deconflict.example/log", seed)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := k.Sign(5, Hash{1, 2, 3})
	f.Add(good)
	f.Add([]byte("deconflict.example/log\n5\nAQID\n\n— deconflict.example/log AAAA\n"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, _, err := Open(b, k.Origin(), k.Verifier())
		if err != nil {
			return
		}
		// Whatever opened carries the log's valid signature on its text.
		again, _ := k.Sign(cp.Size, cp.Root)
		if _, _, err := Open(again, k.Origin(), k.Verifier()); err != nil {
			t.Fatalf("re-signed checkpoint does not open: %v", err)
		}
	})
}
