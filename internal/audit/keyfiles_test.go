package audit

import (
	"crypto/ed25519"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/translog"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// witnessVKey is a new cosignature verifier key of a witness named name.
func witnessVKey(t testing.TB, name string) string {
	_, plain, err := note.GenerateKey(nil, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := fnote.VKeyToCosignatureV1(plain)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func partyKeyText(t testing.TB) string {
	k, err := partykey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return partykey.Format(partykey.Public(k))
}

// The names of a keys file are party names: one with a zero-width space
// or an escape sequence looked like a party's name, was accepted, and
// checked nothing of that party; a party's key listed twice, and two
// witness keys of one name, were accepted too (a cosignature names its
// key by name, and the verification reported it as the last such party's,
// whichever witness signed).
func TestKeyFilesNameParties(t *testing.T) {
	k := partyKeyText(t)
	for _, in := range []string{
		"al\u200bpha " + k,
		"alpha\x1b[2J " + k,
		"Alpha " + k,
		"alpha " + k + "\nalpha " + k,
	} {
		if keys, err := ParsePartyKeys(strings.NewReader(in)); err == nil {
			t.Errorf("party keys %q accepted: %v", in, keys)
		} else if printable.Check(err.Error()) != nil {
			t.Errorf("party keys %q: the error %q is not printable", in, err)
		}
	}
	if keys, err := ParsePartyKeys(strings.NewReader("alpha " + k + "\nbravo " + k + "\nalpha " + partyKeyText(t))); err != nil || len(keys["alpha"]) != 2 || len(keys["bravo"]) != 1 {
		t.Errorf("two keys of alpha, one of bravo: %v, %v", keys, err)
	}
	a, b := witnessVKey(t, "w.example/1"), witnessVKey(t, "w.example/1")
	for _, in := range []string{
		"al\u200bpha " + a,
		"alpha " + a + "\nbravo " + b,
		"alpha " + a + "\nbravo " + a,
		"alpha " + witnessVKey(t, "w\u200b.example"),
	} {
		if keys, err := ParseWitnessKeys(strings.NewReader(in)); err == nil {
			t.Errorf("witness keys %q accepted: %v", in, keys)
		} else if printable.Check(err.Error()) != nil {
			t.Errorf("witness keys %q: the error %q is not printable", in, err)
		}
	}
	if keys, err := ParseWitnessKeys(strings.NewReader("alpha " + a + "\nbravo " + witnessVKey(t, "w.example/2"))); err != nil || len(keys) != 2 {
		t.Errorf("two witnesses: %v, %v", keys, err)
	}
}

// keyLines counts the entries of a keys file (namedlines' layout).
func keyLines(in string) int {
	n := 0
	for line := range strings.Lines(in) {
		if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "#") {
			n++
		}
	}
	return n
}

// FuzzParsePartyKeys: a file is accepted only with party names, each key
// of a party once (every entry is one key), and reads the same written
// back one entry per line; a refusal is printable.
func FuzzParsePartyKeys(f *testing.F) {
	k1, k2 := partyKeyText(f), partyKeyText(f)
	for _, s := range []string{
		"alpha " + k1, "# keys\nalpha " + k1 + "\n\nbravo " + k2 + "\nalpha " + k2 + "\n",
		"alpha " + k1 + "\nalpha " + k1, "al\u200bpha " + k1, "alpha\x00 " + k1, "alpha " + k1 + " extra",
		"alpha " + strings.TrimSuffix(k1, "="), "", "# only\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		keys, err := ParsePartyKeys(strings.NewReader(in))
		if err != nil {
			if printable.Check(err.Error()) != nil {
				t.Fatalf("the error %q is not printable", err)
			}
			return
		}
		var b strings.Builder
		total := 0
		for _, name := range slices.Sorted(maps.Keys(keys)) {
			if err := party.ValidateName(name); err != nil {
				t.Fatalf("%q accepted as a party: %v", name, err)
			}
			for _, id := range slices.Sorted(maps.Keys(keys[name])) {
				pub := keys[name][id]
				if partykey.ID(pub) != id {
					t.Fatalf("%s's key %s under the id %s", name, partykey.Format(pub), id)
				}
				b.WriteString(name + " " + partykey.Format(pub) + "\n")
				total++
			}
		}
		if n := keyLines(in); n != total {
			t.Fatalf("%d entries read as %d keys", n, total)
		}
		again, err := ParsePartyKeys(strings.NewReader(b.String()))
		if err != nil || !maps.EqualFunc(keys, again, func(a, b map[string]ed25519.PublicKey) bool {
			return maps.EqualFunc(a, b, func(x, y ed25519.PublicKey) bool { return x.Equal(y) })
		}) {
			t.Fatalf("written back as %q, reads as %v (%v)", b.String(), again, err)
		}
	})
}

// FuzzParseWitnessKeys: a file is accepted only with party names, each
// named once, with witness keys of distinct printable names, and reads
// the same written back; a refusal is printable.
func FuzzParseWitnessKeys(f *testing.F) {
	a, b := witnessVKey(f, "w.example/1"), witnessVKey(f, "w.example/2")
	for _, s := range []string{
		"alpha " + a, "# witnesses\nalpha " + a + "\n\nbravo " + b + "\n", "alpha " + a + "\nbravo " + a,
		"alpha " + a + "\nalpha " + b, "al\u200bpha " + a, "alpha " + witnessVKey(f, "w\x7f"), "alpha " + a + " extra",
		"alpha " + a[:len(a)-2], "", "# only\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		keys, err := ParseWitnessKeys(strings.NewReader(in))
		if err != nil {
			if printable.Check(err.Error()) != nil {
				t.Fatalf("the error %q is not printable", err)
			}
			return
		}
		names := map[string]string{}
		var b strings.Builder
		for _, p := range slices.Sorted(maps.Keys(keys)) {
			if err := party.ValidateName(p); err != nil {
				t.Fatalf("%q accepted as a party: %v", p, err)
			}
			v, err := translog.WitnessVerifier(keys[p])
			if err != nil {
				t.Fatalf("%s's key %q accepted: %v", p, keys[p], err)
			}
			if err := printable.Check(v.Name()); err != nil {
				t.Fatalf("%s's witness named %q: %v", p, v.Name(), err)
			}
			if o, ok := names[v.Name()]; ok {
				t.Fatalf("the witnesses of %s and %s are both named %q", o, p, v.Name())
			}
			names[v.Name()] = p
			b.WriteString(p + " " + keys[p] + "\n")
		}
		if n := keyLines(in); n != len(keys) {
			t.Fatalf("%d entries read as %d keys", n, len(keys))
		}
		if again, err := ParseWitnessKeys(strings.NewReader(b.String())); err != nil || !maps.Equal(keys, again) {
			t.Fatalf("written back as %q, reads as %v (%v)", b.String(), again, err)
		}
	})
}
