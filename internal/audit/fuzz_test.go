package audit

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// exportSeeds builds the same export in every process of a fuzzing run
// (the salts come from a fixed stream), so that "only this export
// verifies" holds in the workers too.
func exportSeeds(f *testing.F) ([]byte, *Log) {
	saved := randRead
	f.Cleanup(func() { randRead = saved })
	stream := sha256.Sum256([]byte("fuzz salts"))
	randRead = func(b []byte) (int, error) {
		for i := range b {
			b[i] = stream[i%len(stream)]
			stream = sha256.Sum256(stream[:])
		}
		return len(b), nil
	}
	st := openStore(f)
	l := NewLog(testKey(f, 9), 2)
	fill(f, st, l, 5)
	return export(f, st, l, "alpha", 1), l
}

// FuzzParseLine: a line that parses re-encodes to exactly itself (the
// canonical form is the only accepted spelling), and nothing panics.
func FuzzParseLine(f *testing.F) {
	good, _ := exportSeeds(f)
	for _, l := range lines(good) {
		f.Add(bytes.TrimSuffix(l, []byte("\n")))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"checkpoint":{}}`))
	f.Add([]byte(`{"head":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ln, err := ParseLine(b)
		if err != nil {
			return
		}
		var again []byte
		switch {
		case ln.Record != nil:
			again, err = marshal(exportLine(*ln.Record, ""))
		case ln.Checkpoint != nil, ln.Head != nil:
			return
		}
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted a non-canonical line:\n%s\n%s", b, again)
		}
	})
}

// FuzzVerify: arbitrary input never panics, and only the untouched export
// verifies under its key.
func FuzzVerify(f *testing.F) {
	good, l := exportSeeds(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("\n"))
	f.Add([]byte{})
	pub := l.PublicKey()
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Verify(bytes.NewReader(b), pub)
		if err == nil && !bytes.Equal(b, good) {
			t.Fatalf("an export the key never signed verified:\n%s", b)
		}
	})
}
