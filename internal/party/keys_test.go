package party

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/partykey"
)

// A key given twice is refused naming the second (registering it would
// fail only inside the transaction that creates the party: a 500), and so
// are more keys than a party may have.
func TestParsePublicKeysRefusesDuplicatesAndTooMany(t *testing.T) {
	key := func() string {
		k, err := partykey.Generate()
		if err != nil {
			t.Fatal(err)
		}
		return partykey.Format(partykey.Public(k))
	}
	a, b := key(), key()
	var fe *fielderr.Error
	if _, err := ParsePublicKeys("public_keys", []string{a, b, a}); !errors.As(err, &fe) || fe.Field != "public_keys[2]" {
		t.Errorf("a key given twice: %v", err)
	}
	many := make([]string, MaxKeys+1)
	for i := range many {
		many[i] = key()
	}
	if _, err := ParsePublicKeys("--public-key", many); !errors.As(err, &fe) || fe.Field != "--public-key" {
		t.Errorf("%d keys: %v", len(many), err)
	}
	if got, err := ParsePublicKeys("public_keys", many[:MaxKeys]); err != nil || len(got) != MaxKeys {
		t.Errorf("%d keys: %d, %v", MaxKeys, len(got), err)
	}
}

// FuzzParsePublicKeys (one text per line): what is accepted is at most
// MaxKeys keys, each in its one spelling (partykey.Format) and none twice;
// a refusal names the list or the text at fault, by its index.
func FuzzParsePublicKeys(f *testing.F) {
	k1, _ := partykey.Generate()
	k2, _ := partykey.Generate()
	a, b := partykey.Format(partykey.Public(k1)), partykey.Format(partykey.Public(k2))
	f.Add(a)
	f.Add(a + "\n" + b)
	f.Add(a + "\n" + a)
	f.Add(a + "\n" + strings.TrimSuffix(b, "="))
	f.Add(strings.Repeat(a+"\n", MaxKeys+1))
	f.Add("")
	field := regexp.MustCompile(`^public_keys(\[([0-9]+)\])?$`)
	f.Fuzz(func(t *testing.T, in string) {
		texts := strings.Split(in, "\n")
		got, err := ParsePublicKeys("public_keys", texts)
		if err != nil {
			var fe *fielderr.Error
			if !errors.As(err, &fe) {
				t.Fatalf("refusal %v names no field", err)
			}
			m := field.FindStringSubmatch(fe.Field)
			if m == nil {
				t.Fatalf("refusal %v does not name public_keys or one of them", err)
			}
			if m[2] != "" {
				if i, _ := strconv.Atoi(m[2]); i >= len(texts) {
					t.Fatalf("refusal %v names a key beyond the %d given", err, len(texts))
				}
			}
			return
		}
		if len(got) != len(texts) || len(got) > MaxKeys {
			t.Fatalf("%d texts, %d keys", len(texts), len(got))
		}
		for i, k := range got {
			if partykey.Format(k) != texts[i] {
				t.Fatalf("%q accepted as %q", texts[i], partykey.Format(k))
			}
			for _, o := range got[:i] {
				if o.Equal(k) {
					t.Fatalf("%q accepted twice", texts[i])
				}
			}
		}
	})
}
