package translog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func newLogKey(t *testing.T, origin string) *LogKey {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	k, err := NewLogKey(origin, priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newWitness(t *testing.T, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(nil, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, cvkey
}

func TestCheckpointNoteFormat(t *testing.T) {
	k := newLogKey(t, "deconflict.example/log")
	root := mth([][]byte{leafData(0), leafData(1)})
	signed, err := k.Sign(2, root)
	if err != nil {
		t.Fatal(err)
	}
	// C2SP tlog-checkpoint: origin, size, base64 root, then the signed-note
	// blank line and the log's signature line named by the origin.
	want := "deconflict.example/log\n2\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n\n— deconflict.example/log "
	if !strings.HasPrefix(string(signed), want) {
		t.Fatalf("checkpoint note:\n%s\nwant prefix:\n%s", signed, want)
	}
	// The verifier key reads with x/mod's note and verifies the note.
	v, err := note.NewVerifier(k.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
		t.Fatal(err)
	}
	cp, cosigs, err := Open(signed, k.Origin(), v)
	if err != nil || cp.Size != 2 || cp.Root != root || cp.Origin != k.Origin() || len(cosigs) != 0 {
		t.Fatalf("Open = %+v %v %v", cp, cosigs, err)
	}
	if _, _, err := Open(signed, "other.example/log", v); err == nil {
		t.Fatal("a checkpoint of another origin opened")
	}
	other := newLogKey(t, "deconflict.example/log")
	if _, _, err := Open(signed, k.Origin(), other.Verifier()); err == nil {
		t.Fatal("a checkpoint opened with another log key")
	}
	altered := strings.Replace(string(signed), "\n2\n", "\n3\n", 1)
	if _, _, err := Open([]byte(altered), k.Origin(), v); err == nil {
		t.Fatal("an altered checkpoint opened")
	}
}

func TestCosignatures(t *testing.T) {
	k := newLogKey(t, "deconflict.example/log")
	root := mth([][]byte{leafData(0)})
	signed, err := k.Sign(1, root)
	if err != nil {
		t.Fatal(err)
	}
	coalition, coalitionVKey := newWitness(t, "coalition.example/witness")
	russia, russiaVKey := newWitness(t, "russia.example/witness")
	stranger, _ := newWitness(t, "stranger.example/witness")
	var lines []string
	for _, w := range []note.Signer{coalition, russia, stranger} {
		n, err := note.Open(signed, note.VerifierList(k.Verifier()))
		if err != nil {
			t.Fatal(err)
		}
		cosigned, err := note.Sign(&note.Note{Text: n.Text}, w)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, SignatureLines(cosigned)...)
	}
	published := AddSignatures(signed, lines...)
	published = AddSignatures(published, lines...) // no duplicates
	if got := len(SignatureLines(published)); got != 4 {
		t.Fatalf("%d signature lines, want 4:\n%s", got, published)
	}
	wc, err := WitnessVerifier(coalitionVKey)
	if err != nil {
		t.Fatal(err)
	}
	wr, err := WitnessVerifier(russiaVKey)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	_, cosigs, err := Open(published, k.Origin(), k.Verifier(), wc, wr)
	if err != nil {
		t.Fatal(err)
	}
	if len(cosigs) != 2 {
		t.Fatalf("cosignatures %v: want coalition's and russia's (the stranger's is ignored)", cosigs)
	}
	for _, name := range []string{"coalition.example/witness", "russia.example/witness"} {
		c, ok := cosigs[name]
		if !ok || c.Time.Before(start) || !strings.HasPrefix(c.Line, "— "+name+" ") {
			t.Errorf("cosignature of %s: %+v", name, c)
		}
	}
	// Cosigned names the stranger's signature, unknown to a verifier who
	// knows every witness, and a cosignature that does not verify.
	if _, _, err := Cosigned(published, k.Origin(), k.Verifier(), wc, wr); err == nil || !strings.Contains(err.Error(), "stranger.example/witness") || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("Cosigned with a stranger's signature: %v", err)
	}
	both := AddSignatures(signed, cosigs["coalition.example/witness"].Line, cosigs["russia.example/witness"].Line)
	if _, cs, err := Cosigned(both, k.Origin(), k.Verifier(), wc, wr); err != nil || len(cs) != 2 {
		t.Errorf("Cosigned with both witnesses' cosignatures: %v, %v", cs, err)
	}
	line := cosigs["russia.example/witness"].Line
	forged := []byte(strings.Replace(string(both), line, line[:len(line)-6]+"AAAA=\n", 1))
	if _, _, err := Cosigned(forged, k.Origin(), k.Verifier(), wc, wr); err == nil || !strings.Contains(err.Error(), "russia.example/witness does not verify") {
		t.Errorf("Cosigned with a bad cosignature of russia's witness: %v", err)
	}
	// A cosignature line moved onto another checkpoint does not verify.
	signed2, _ := k.Sign(2, mth([][]byte{leafData(0), leafData(1)}))
	moved := AddSignatures(signed2, cosigs["coalition.example/witness"].Line)
	if _, cs, err := Open(moved, k.Origin(), k.Verifier(), wc); err == nil && len(cs) != 0 {
		t.Fatal("a cosignature of size 1 verifies on size 2")
	}
	// A witness key that is not a key is refused.
	if _, err := WitnessVerifier("coalition+00000000+AAAA"); err == nil {
		t.Fatal("a malformed witness key was accepted")
	}
}

func TestDefaultOriginStable(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	a, b := DefaultOrigin(pub), DefaultOrigin(pub)
	if a != b || strings.ContainsAny(a, " +") {
		t.Fatalf("%q %q", a, b)
	}
	pub2, _, _ := ed25519.GenerateKey(nil)
	if DefaultOrigin(pub2) == a {
		t.Fatal("two keys, one origin")
	}
}

// smallOrderVKey is the verifier key of the identity point named name, of
// the signed-note key type alg (0x01 Ed25519, 0x04 cosignature/v1).
func smallOrderVKey(name string, alg byte) string {
	key := append([]byte{alg, 1}, make([]byte, 31)...)
	h := sha256.Sum256(append([]byte(name+"\n"), key...))
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(h[:4]), base64.StdEncoding.EncodeToString(key))
}

// TestVerifierKeysOfSmallOrderRefused: a witness's or a log's key under
// which anyone can sign anything (the identity point) is refused, saying
// why: a witness's cosignatures under it could be made by the log's
// operator itself.
func TestVerifierKeysOfSmallOrderRefused(t *testing.T) {
	if _, err := note.NewVerifier(smallOrderVKey("log.example", 1)); err != nil {
		t.Fatalf("the note package refuses the key itself (%v): the case is moot", err)
	}
	if _, err := WitnessVerifier(smallOrderVKey("w.example", 4)); err == nil || !strings.Contains(err.Error(), "small order") {
		t.Errorf("a small-order witness key: %v", err)
	}
	if _, err := WitnessVerifier(smallOrderVKey("w.example", 1)); err == nil || !strings.Contains(err.Error(), "small order") {
		t.Errorf("a small-order plain witness key: %v", err)
	}
	if _, err := LogVerifier(smallOrderVKey("log.example", 1)); err == nil || !strings.Contains(err.Error(), "small order") {
		t.Errorf("a small-order log key: %v", err)
	}
	_, good := newWitness(t, "w.example")
	if _, err := WitnessVerifier(good); err != nil {
		t.Errorf("a witness's key: %v", err)
	}
}
