package witness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/translog"
)

// FuzzParseRequest: an add-checkpoint body that parses is the one
// spelling of what it says (Request.Body gives it back byte for byte), so
// that two witnesses can never read one body two ways; anything else is
// an error, never a panic.
func FuzzParseRequest(f *testing.F) {
	lg := newTestLog(f, newKey(f))
	signed, size := lg.grow(f, "leaf", 4)
	signed2, size2 := lg.grow(f, "leaf", 3)
	proof, err := lg.tree.ConsistencyProof(size, size2)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("old 0\n\n" + string(signed)))
	f.Add(Request{OldSize: size, Proof: proof, Checkpoint: signed2}.Body())
	f.Add([]byte("old 00\n\n"))
	f.Add([]byte("old 1\nnot-base64\n\n"))
	f.Add([]byte("old 1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\n"))
	f.Add([]byte("old 1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAA=\n\n"))
	f.Add([]byte("old -1\n\n"))
	f.Add([]byte("old 9223372036854775808\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseRequest(body)
		if err != nil {
			return
		}
		if len(req.Proof) > MaxProofLines {
			t.Fatalf("%d proof lines accepted, the protocol allows %d", len(req.Proof), MaxProofLines)
		}
		if req.OldSize < 0 {
			t.Fatalf("old size %d accepted", req.OldSize)
		}
		if again := req.Body(); !bytes.Equal(again, body) {
			t.Fatalf("the body %q parses, but its request is spelled %q", body, again)
		}
	})
}

// FuzzAddCheckpoint sends any body to a witness that holds a checkpoint
// of its log: whatever the log's operator (or anyone) sends, the answer
// is a 4xx or a cosignature, never a 5xx, and a refused request leaves
// what the witness holds as it was. A cosigned one moves it to the
// request's checkpoint, which the log signed and which is consistent with
// what it held (the consistency check itself is translog's, tested
// against independent implementations).
func FuzzAddCheckpoint(f *testing.F) {
	key := newKey(f)
	lg := newTestLog(f, key)
	first, size := lg.grow(f, "leaf", 4)
	next, size2 := lg.grow(f, "leaf", 3)
	proof, err := lg.tree.ConsistencyProof(size, size2)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(Request{OldSize: size, Proof: proof, Checkpoint: next}.Body())
	f.Add(Request{OldSize: size, Proof: proof[:len(proof)-1], Checkpoint: next}.Body())
	f.Add(Request{OldSize: 0, Checkpoint: next}.Body())
	f.Add(Request{OldSize: size, Checkpoint: first}.Body())
	f.Add([]byte("old 4\n\nnot a checkpoint\n"))
	f.Add([]byte("hello"))
	// One witness for the run, holding the first checkpoint: each body is
	// tried against that state, put back after a cosignature (without a
	// sync per try, which would make the fuzzing crawl).
	s, err := NewServer("coalition.example/witness", newKey(f), f.TempDir(), []string{lg.key.VerifierKey()})
	if err != nil {
		f.Fatal(err)
	}
	if status, answer := s.add([]byte("old 0\n\n" + string(first))); status != 200 {
		f.Fatalf("the first checkpoint: %d %s", status, answer)
	}
	held, _, _, err := s.Latest(lg.key.Origin())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		status, answer := s.add(body)
		after, cp, ok, err := s.Latest(lg.key.Origin())
		if err != nil || !ok {
			t.Fatalf("after %d %q the witness holds nothing readable: %v", status, answer, err)
		}
		switch {
		case status >= 500:
			t.Fatalf("%d %q for %q", status, answer, body)
		case status != 200:
			if !bytes.Equal(held, after) {
				t.Fatalf("refused with %d %q, yet the witness now holds %q", status, answer, after)
			}
		default:
			req, err := ParseRequest(body)
			if err != nil {
				t.Fatalf("cosigned a body that does not parse: %v", err)
			}
			if _, _, err := translog.Open(req.Checkpoint, lg.key.Origin(), lg.key.Verifier()); err != nil {
				t.Fatalf("cosigned a checkpoint the log's key does not open: %v", err)
			}
			if req.OldSize != size || cp.Size < size {
				t.Fatalf("cosigned from old size %d a checkpoint of size %d, holding %d", req.OldSize, cp.Size, size)
			}
			if err := os.WriteFile(s.statePath(lg.key.Origin()), held, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzClientAnswer: what a witness answers a push is read by the log
// (Client.readAnswer), and a witness is another party's. Whatever it
// answers, reading it never panics; every line returned is a cosignature
// of that witness that verifies on the checkpoint pushed; a
// *ConflictError is an answer 409 of one decimal size and a newline; any
// other error shows no control or invisible character.
func FuzzClientAnswer(f *testing.F) {
	key := newKey(f)
	lg := newTestLog(f, key)
	signed, size := lg.grow(f, "leaf", 3)
	s, err := NewServer("coalition.example/witness", newKey(f), f.TempDir(), []string{lg.key.VerifierKey()})
	if err != nil {
		f.Fatal(err)
	}
	status, good := s.add(Request{Checkpoint: signed}.Body())
	if status != 200 {
		f.Fatalf("cosigning: %d %s", status, good)
	}
	c, err := NewClient(Endpoint{URL: "http://witness.invalid", VKey: s.VerifierKey()}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(200, []byte(good))
	f.Add(200, []byte(good+good))
	f.Add(200, []byte("— coalition.example/witness AAAA\n"))
	f.Add(409, []byte(fmt.Sprintf("%d\n", size)))
	f.Add(409, []byte("007\n"))
	f.Add(403, []byte("\x1b[2Kwithheld\u202e\n"))
	f.Fuzz(func(t *testing.T, status int, answer []byte) {
		lines, err := c.readAnswer(status, answer, lg.key.Verifier(), signed)
		var conflict *ConflictError
		switch {
		case err == nil:
			if status != 200 || len(lines) == 0 {
				t.Fatalf("%d %q read as %q", status, answer, lines)
			}
			for _, l := range lines {
				if _, cosigs, err := translog.Open(translog.AddSignatures(signed, l), lg.key.Origin(), lg.key.Verifier(), c.Verifier()); err != nil || len(cosigs) != 1 {
					t.Fatalf("line %q of %q read as the witness's cosignature: %v", l, answer, err)
				}
			}
		case errors.As(err, &conflict):
			if status != 409 || string(answer) != fmt.Sprintf("%d\n", conflict.Size) {
				t.Fatalf("%d %q read as a conflict at size %d", status, answer, conflict.Size)
			}
		default:
			if lines != nil {
				t.Fatalf("%d %q: lines %q with the error %v", status, answer, lines, err)
			}
			if perr := printable.Check(err.Error()); perr != nil {
				t.Fatalf("%d %q: the error %q %v", status, answer, err, perr)
			}
		}
	})
}
