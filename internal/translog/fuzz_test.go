package translog

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// FuzzOpen feeds arbitrary bytes as a checkpoint: Open must refuse what
// the log did not sign, and never panic. What opens is the one checkpoint
// the log signed in the run (size 5, its root), whatever else was sent
// with it; a cosignature it returns is the known witness's, one of the
// note's own signature lines; what Cosigned (the stricter reading)
// accepts, Open accepts as the same; and a refusal says it is one.
func FuzzOpen(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	k, err := NewLogKey("deconflict.example/log", seed)
	if err != nil {
		f.Fatal(err)
	}
	// The witness's key is the same in every worker of the run (a fixed
	// seed), so that the cosigned seeds verify in each.
	wskey, wvkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, ed25519.SeedSize)), "witness.example/w")
	if err != nil {
		f.Fatal(err)
	}
	wsigner, err := fnote.NewSignerForCosignatureV1(wskey)
	if err != nil {
		f.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(wvkey)
	if err != nil {
		f.Fatal(err)
	}
	wverifier, err := WitnessVerifier(cvkey)
	if err != nil {
		f.Fatal(err)
	}
	root := Hash{1, 2, 3}
	good, _ := k.Sign(5, root)
	n, err := note.Open(good, note.VerifierList(k.Verifier()))
	if err != nil {
		f.Fatal(err)
	}
	cosigned, err := note.Sign(n, wsigner)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(cosigned)
	f.Add(append(bytes.Clone(cosigned), "— other.example/w AAAAAAAAAAAA\n"...))
	f.Add([]byte("deconflict.example/log\n5\nAQID\n\n— deconflict.example/log AAAA\n"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, cosigs, err := Open(b, k.Origin(), k.Verifier(), wverifier)
		strictCP, strictCosigs, strictErr := Cosigned(b, k.Origin(), k.Verifier(), wverifier)
		if strictErr == nil && (err != nil || strictCP != cp || len(strictCosigs) != len(cosigs)) {
			t.Fatalf("Cosigned opened %+v %v, Open %+v %v (%v)", strictCP, strictCosigs, cp, cosigs, err)
		}
		for _, e := range []error{err, strictErr} {
			if e != nil && !strings.HasPrefix(e.Error(), "translog: checkpoint: ") {
				t.Fatalf("refusal %q does not say what it refused", e)
			}
		}
		if err != nil {
			return
		}
		if cp != (Checkpoint{Origin: k.Origin(), Size: 5, Root: root}) {
			t.Fatalf("opened %+v, which the log never signed", cp)
		}
		if bytes.Equal(b, cosigned) && len(cosigs) != 1 {
			t.Fatalf("the witness's cosignature was not read: %v", cosigs)
		}
		lines := SignatureLines(b)
		for name, c := range cosigs {
			if name != wverifier.Name() || c.Name != name || c.Time.IsZero() || !slices.Contains(lines, c.Line) {
				t.Fatalf("cosignature %q: %+v, of no known witness or no line of the note %q", name, c, lines)
			}
		}
		// Whatever opened carries the log's valid signature on its text.
		again, _ := k.Sign(cp.Size, cp.Root)
		if _, _, err := Open(again, k.Origin(), k.Verifier()); err != nil {
			t.Fatalf("re-signed checkpoint does not open: %v", err)
		}
	})
}
