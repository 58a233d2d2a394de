package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 11, 24, 7, 0, 0, 123456789, time.UTC)

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testKey(t testing.TB, seed byte) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// volumeContent mimics a volume write: public fields plus details sealed
// for the owner.
type volumeContent struct {
	ID      string  `json:"id"`
	Party   string  `json:"party"`
	AltM    float64 `json:"alt_m"`
	Details Sealed  `json:"details"`
	Note    string  `json:"note"`
}

// fill appends n records, every third one carrying details sealed for
// alternately alpha and bravo, and every third one from the third on
// readable by charlie alone, one record per transaction.
func fill(t testing.TB, st store.Store, l *Log, n int) {
	t.Helper()
	for i := range n {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			now := t0.Add(time.Duration(i) * time.Second)
			var content any = map[string]any{"i": i, "text": fmt.Sprintf("change <%d> & more", i)}
			if i%3 == 0 {
				owner := []string{"alpha", "bravo"}[i/3%2]
				content = volumeContent{ID: fmt.Sprintf("v%d", i), Party: owner, AltM: 1000.5 + float64(i),
					Details: Seal(json.RawMessage(fmt.Sprintf(`{"mission":"secret-%s-%d"}`, owner, i)), owner), Note: "x"}
			}
			readers := Everyone
			if i%3 == 2 {
				readers = For("charlie")
			}
			_, err := l.Append(tx, "alpha", "test_change", readers, content, now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func export(t testing.TB, st store.Store, l *Log, viewer string, from int64) []byte {
	t.Helper()
	var b bytes.Buffer
	err := st.View(context.Background(), func(tx store.Tx) error {
		return l.Export(tx, &b, viewer, from, t0.Add(time.Hour))
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestChainExportVerifies(t *testing.T) {
	st := openStore(t)
	const n, every = 23, 5
	l := NewLog(testKey(t, 1), every)
	fill(t, st, l, n)
	out := export(t, st, l, "", 1)
	sum, err := Verify(bytes.NewReader(out), l.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	wantCps := n / every
	if sum.Records != n || sum.FirstSeq != 1 || sum.LastSeq != n || sum.Checkpoints != wantCps ||
		sum.LastCheckpointSeq != int64(wantCps*every) || sum.UnsignedTail != int64(n-wantCps*every) || sum.Redacted != 0 {
		t.Fatalf("summary %+v", sum)
	}
	// The operator export carries every party's details in clear.
	for _, s := range []string{"secret-alpha-0", "secret-bravo-3"} {
		if !bytes.Contains(out, []byte(s)) {
			t.Errorf("operator export lacks %s", s)
		}
	}
	// Each stored record is chained to the one before.
	err = st.View(context.Background(), func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 100)
		if err != nil {
			return err
		}
		prev := zeroHash
		for _, r := range recs {
			if !bytes.Equal(r.PrevHash, prev) {
				return fmt.Errorf("record %d: prev_hash is not the previous hash", r.Seq)
			}
			prev = r.Hash
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPartyExportRedactsOthersDetails(t *testing.T) {
	st := openStore(t)
	l := NewLog(testKey(t, 2), 4)
	fill(t, st, l, 12) // sealed at 0 (alpha), 3 (bravo), 6 (alpha), 9 (bravo)
	out := export(t, st, l, "alpha", 1)
	if bytes.Contains(out, []byte("secret-bravo")) {
		t.Fatal("alpha's export shows bravo's details")
	}
	if !bytes.Contains(out, []byte("secret-alpha-0")) || !bytes.Contains(out, []byte("secret-alpha-6")) {
		t.Fatal("alpha's export lacks alpha's own details")
	}
	sum, err := Verify(bytes.NewReader(out), l.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Redacted != 2 || sum.Viewer != "alpha" {
		t.Fatalf("summary %+v, want 2 redacted for alpha", sum)
	}
}

func TestExportFromSeq(t *testing.T) {
	st := openStore(t)
	l := NewLog(testKey(t, 3), 4)
	fill(t, st, l, 10)
	for _, from := range []int64{1, 2, 5, 10, 11, 50} {
		out := export(t, st, l, "bravo", from)
		sum, err := Verify(bytes.NewReader(out), l.PublicKey())
		if err != nil {
			t.Fatalf("from %d: %v", from, err)
		}
		want := max(10-from+1, 0)
		if sum.Records != want || sum.From != from {
			t.Fatalf("from %d: summary %+v, want %d records", from, sum, want)
		}
		if anchored := sum.Anchor != nil; anchored != (from > 1 && want > 0) {
			t.Fatalf("from %d: anchor %x", from, sum.Anchor)
		}
	}
}

func TestCheckpointAtShutdown(t *testing.T) {
	st := openStore(t)
	l := NewLog(testKey(t, 4), 1000)
	var first store.Checkpoint
	err := st.Update(context.Background(), func(tx store.Tx) error {
		if _, ok, err := l.Checkpoint(tx, t0); ok || err != nil {
			return fmt.Errorf("checkpoint of an empty log: ok=%v err=%v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, st, l, 3)
	for range 2 {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			cp, ok, err := l.Checkpoint(tx, t0)
			if err != nil || !ok {
				return fmt.Errorf("ok=%v err=%v", ok, err)
			}
			if first.Seq != 0 && !bytes.Equal(first.Signature, cp.Signature) {
				return errors.New("second checkpoint of the same head signed again")
			}
			first = cp
			cps, err := tx.CheckpointsFrom(1)
			if len(cps) != 1 || cps[0].Seq != 3 {
				return fmt.Errorf("checkpoints %+v, want one at seq 3 (err %v)", cps, err)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sum, err := Verify(bytes.NewReader(export(t, st, l, "", 1)), l.PublicKey())
	if err != nil || sum.LastCheckpointSeq != 3 || sum.UnsignedTail != 0 {
		t.Fatalf("summary %+v err %v", sum, err)
	}
}

// lines splits an export into its lines, each with its newline.
func lines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

// recordLineIndex finds the line of record seq.
func recordLineIndex(t *testing.T, ls [][]byte, seq int64) int {
	for i, l := range ls {
		if bytes.HasPrefix(l, []byte(fmt.Sprintf(`{"seq":%d,`, seq))) {
			return i
		}
	}
	t.Fatalf("no line for record %d", seq)
	return 0
}

func TestTamperingIsDetectedAndNamed(t *testing.T) {
	st := openStore(t)
	const n, every = 14, 5
	l := NewLog(testKey(t, 5), every)
	fill(t, st, l, n)
	good := export(t, st, l, "", 1)
	if _, err := Verify(bytes.NewReader(good), l.PublicKey()); err != nil {
		t.Fatal(err)
	}
	ls := lines(good)
	join := func(ls [][]byte) []byte { return bytes.Join(ls, nil) }
	without := func(i int) [][]byte { return append(append([][]byte{}, ls[:i]...), ls[i+1:]...) }
	lastCp := 0
	for i, l := range ls {
		if bytes.HasPrefix(l, []byte(`{"checkpoint"`)) {
			lastCp = i
		}
	}

	cases := []struct {
		name    string
		data    func() []byte
		key     ed25519.PublicKey
		seq     int64
		problem string
	}{
		{"flip a byte of record 8's content", func() []byte {
			ls := lines(bytes.Clone(good))
			i := recordLineIndex(t, ls, 8)
			j := bytes.Index(ls[i], []byte(`change <`)) + 2
			ls[i][j] ^= 0x01
			return join(ls)
		}, nil, 8, "hash mismatch"},
		{"flip a byte of record 4's time", func() []byte {
			ls := lines(bytes.Clone(good))
			i := recordLineIndex(t, ls, 4)
			j := bytes.Index(ls[i], []byte(`"time":"2026`)) + len(`"time":"202`)
			ls[i][j] ^= 0x01
			return join(ls)
		}, nil, 4, "hash mismatch"},
		{"delete record 6", func() []byte {
			return join(without(recordLineIndex(t, ls, 6)))
		}, nil, 6, "missing"},
		{"delete record 1", func() []byte {
			return join(without(recordLineIndex(t, ls, 1)))
		}, nil, 1, "missing"},
		{"reorder records 8 and 9", func() []byte {
			c := append([][]byte{}, ls...)
			i, j := recordLineIndex(t, c, 8), recordLineIndex(t, c, 9)
			c[i], c[j] = c[j], c[i]
			return join(c)
		}, nil, 8, "out of order"},
		{"truncate the tail after the last checkpoint", func() []byte {
			return join(ls[:lastCp+2]) // the checkpoint, one record, no head
		}, nil, every*(n/every) + 2, "truncated"},
		{"truncate records before the head", func() []byte {
			c := append([][]byte{}, ls[:lastCp+1]...)
			return join(append(c, ls[len(ls)-1]))
		}, nil, every*(n/every) + 1, "truncated"},
		{"cut the last line short", func() []byte {
			return good[:len(good)-10]
		}, nil, n + 1, "truncated"},
		{"delete a checkpoint line", func() []byte {
			return join(without(lastCp))
		}, nil, 0, "checkpoints were removed"},
		{"swap the key", func() []byte { return good }, NewLog(testKey(t, 6), 1).PublicKey(), every, "signature does not verify"},
		{"forge a record with its own hashes", func() []byte {
			// Whoever rewrites a record and recomputes its hash breaks the
			// link to the next record.
			c := append([][]byte{}, ls...)
			i := recordLineIndex(t, c, 2)
			ln, err := ParseLine(bytes.TrimSuffix(c[i], []byte("\n")))
			if err != nil {
				t.Fatal(err)
			}
			r := ln.Record
			r.Content = json.RawMessage(`{"i":1,"text":"something else"}`)
			r.Commitment = r.commit()
			r.Hash = r.computeHash()
			b, err := marshal(exportLine(*r, ""))
			if err != nil {
				t.Fatal(err)
			}
			c[i] = append(b, '\n')
			return join(c)
		}, nil, 3, "prev_hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := c.key
			if key == nil {
				key = l.PublicKey()
			}
			_, err := Verify(bytes.NewReader(c.data()), key)
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("not detected: %v", err)
			}
			if ve.Seq != c.seq || !strings.Contains(ve.Problem, c.problem) {
				t.Fatalf("got %v; want record %d and %q", err, c.seq, c.problem)
			}
		})
	}
}

// Every single-byte change anywhere in an export is detected.
func TestAnyByteFlipIsDetected(t *testing.T) {
	st := openStore(t)
	l := NewLog(testKey(t, 7), 3)
	fill(t, st, l, 8)
	good := export(t, st, l, "alpha", 1)
	pub := l.PublicKey()
	rapid.Check(t, func(rt *rapid.T) {
		i := rapid.IntRange(0, len(good)-1).Draw(rt, "pos")
		x := byte(rapid.IntRange(1, 255).Draw(rt, "xor"))
		bad := bytes.Clone(good)
		bad[i] ^= x
		if _, err := Verify(bytes.NewReader(bad), pub); err == nil {
			rt.Fatalf("flipping byte %d (%q -> %q) went unnoticed", i, good[i], bad[i])
		}
	})
}

func TestCanonical(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := rapid.MapOf(rapid.String(), rapid.OneOf(
			rapid.Just[any](nil), rapid.Float64().AsAny(), rapid.String().AsAny(), rapid.Bool().AsAny(),
			rapid.SliceOfN(rapid.Int64(), 0, 3).AsAny(),
		)).Draw(rt, "m")
		c1, err := Canonical(m)
		if err != nil {
			rt.Skip("not representable in JSON:", err)
		}
		c2, err := Canonical(json.RawMessage(c1))
		if err != nil {
			rt.Fatal(err)
		}
		if !bytes.Equal(c1, c2) {
			rt.Fatalf("not idempotent:\n%s\n%s", c1, c2)
		}
		var back map[string]any
		if err := json.Unmarshal(c1, &back); err != nil || len(back) != len(m) {
			rt.Fatalf("canonical form loses keys: %s (%v)", c1, err)
		}
	})
	a, _ := Canonical(json.RawMessage(`{"b":1, "a":{"d":[1,2], "c":"<&>"}}`))
	b, _ := Canonical(map[string]any{"a": map[string]any{"c": "<&>", "d": []int{1, 2}}, "b": 1})
	if !bytes.Equal(a, b) {
		t.Fatalf("same value, different canonical forms: %s vs %s", a, b)
	}
}

func TestSealedHashCoversDetails(t *testing.T) {
	st := openStore(t)
	l := NewLog(testKey(t, 8), 100)
	var recs []Record
	err := st.Update(context.Background(), func(tx store.Tx) error {
		for range 2 {
			r, err := l.Append(tx, "alpha", "volume_created", Everyone, map[string]any{"details": Seal("same details", "alpha")}, t0)
			if err != nil {
				return err
			}
			d, err := Decode(r)
			recs = append(recs, d)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if bytes.Contains(r.Content, []byte("same details")) {
			t.Fatalf("hashed content holds the clear details: %s", r.Content)
		}
		if len(r.Sealed) != 1 || string(r.Sealed[0].Details) != `"same details"` {
			t.Fatalf("sealed %+v", r.Sealed)
		}
	}
	// Salted: the same details do not give the same hash, so a guess cannot
	// be confirmed by hashing it.
	if recs[0].Sealed[0].SHA256 == recs[1].Sealed[0].SHA256 {
		t.Fatal("equal details sealed to equal hashes")
	}
}

func TestAppendRefusesBadInput(t *testing.T) {
	st := openStore(t)
	err := st.Update(context.Background(), func(tx store.Tx) error {
		for _, c := range []struct {
			actor, kind string
			content     any
			field       string
		}{
			{"", "k", 1, "actor"},
			{"a", "", 1, "kind"},
			{"a", "k", func() {}, "k"},
		} {
			_, err := Append(tx, c.actor, c.kind, Everyone, c.content, t0)
			if err == nil || !strings.Contains(err.Error(), c.field) {
				return fmt.Errorf("Append(%q, %q): %v, want an error naming %s", c.actor, c.kind, err, c.field)
			}
		}
		_, err := tx.LastAudit()
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("a refused append wrote a record: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second load gave another key (%v)", err)
	}
	pub, err := ParsePublicKey(PublicKeyInfo(k1.Public().(ed25519.PublicKey)).PublicKey)
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("public key round trip: %v", err)
	}
	info, _ := json.Marshal(PublicKeyInfo(pub))
	if pub2, err := ParsePublicKey(string(info)); err != nil || !pub2.Equal(pub) {
		t.Fatalf("public key from the /v1/audit/key JSON: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a world-readable key was accepted: %v", err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA", `{"alg":"RSA","public_key":"AAAA"}`} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
}

// TestDocumentedEncoding recomputes a record's hash and its checkpoint's
// signature from the formulas of the package comment, as an independent
// verifier would.
func TestDocumentedEncoding(t *testing.T) {
	st := openStore(t)
	l := NewLog(testKey(t, 10), 2)
	fill(t, st, l, 2)
	err := st.View(context.Background(), func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 10)
		if err != nil || len(recs) != 2 {
			t.Fatalf("records %v (%v)", recs, err)
		}
		u64 := func(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
		lp := func(b, x []byte) []byte { return append(u64(b, uint64(len(x))), x...) }
		for _, r := range recs {
			var env struct {
				Content json.RawMessage
				Salt    string
			}
			if err := json.Unmarshal(r.Content, &env); err != nil {
				t.Fatal(err)
			}
			salt, err := hex.DecodeString(env.Salt)
			if err != nil || len(salt) != 16 {
				t.Fatalf("record %d: salt %q", r.Seq, env.Salt)
			}
			c := lp([]byte("deconflict-audit-commitment-v2\x00"), salt)
			c = u64(c, uint64(r.Time.UnixNano()))
			c = lp(c, []byte(r.Actor))
			c = lp(c, []byte(r.Kind))
			c = lp(c, env.Content)
			commitment := sha256.Sum256(c)
			msg := []byte("deconflict-audit-record-v2\x00")
			msg = u64(msg, uint64(r.Seq))
			msg = lp(msg, commitment[:])
			msg = lp(msg, r.PrevHash)
			if h := sha256.Sum256(msg); !bytes.Equal(h[:], r.Hash) {
				t.Fatalf("record %d: the documented hash differs", r.Seq)
			}
		}
		cps, err := tx.CheckpointsFrom(1)
		if err != nil || len(cps) != 1 {
			t.Fatalf("checkpoints %v (%v)", cps, err)
		}
		msg := u64([]byte("deconflict-audit-checkpoint-v1\x00"), uint64(cps[0].Seq))
		if !ed25519.Verify(l.PublicKey(), append(msg, recs[1].Hash...), cps[0].Signature) {
			t.Fatal("the checkpoint does not verify by the documented formula")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A party's export shows the records it may read in full and every other
// one by its commitment alone, and still verifies link by link; the
// operator's export shows everything.
func TestPartyExportHidesWhatItMayNotRead(t *testing.T) {
	st := openStore(t)
	l := NewLog(testKey(t, 11), 3)
	records := []struct {
		readers Readers
		text    string
	}{
		{Everyone, "rules for all"},
		{For("bravo", "charlie"), "thread bravo-charlie"},
		{For("alpha", "bravo"), "thread alpha-bravo"},
		{For("charlie"), "charlie's key rotated"},
		{nil, "for the operator alone"},
		{Everyone, "a volume"},
	}
	for i, r := range records {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			_, err := l.Append(tx, "deconflict", fmt.Sprintf("kind_%d", i), r.readers, map[string]string{"text": r.text}, t0.Add(time.Duration(i)*time.Second))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for viewer, visible := range map[string][]int{"alpha": {0, 2, 5}, "bravo": {0, 1, 2, 5}, "charlie": {0, 1, 3, 5}, "": {0, 1, 2, 3, 4, 5}} {
		out := export(t, st, l, viewer, 1)
		sum, err := Verify(bytes.NewReader(out), l.PublicKey())
		if err != nil {
			t.Fatalf("%q: %v", viewer, err)
		}
		if sum.Records != int64(len(records)) || sum.Hidden != int64(len(records)-len(visible)) {
			t.Errorf("%q: summary %+v", viewer, sum)
		}
		for i, r := range records {
			shown := bytes.Contains(out, []byte(r.text)) || bytes.Contains(out, []byte(fmt.Sprintf("kind_%d", i)))
			if shown != slices.Contains(visible, i) {
				t.Errorf("%q: record %d (%s) shown %v", viewer, i+1, r.text, shown)
			}
		}
		// A hidden line is the commitment and the links, nothing else:
		// neither time nor actor nor kind.
		for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
			ln, err := ParseLine(line)
			if err != nil {
				t.Fatal(err)
			}
			if ln.Record != nil && ln.Record.Hidden() && (!ln.Record.Time.IsZero() || ln.Record.Actor != "" || bytes.Contains(line, []byte("deconflict"))) {
				t.Errorf("%q: hidden line %s", viewer, line)
			}
		}
	}
	// Altering a hidden record's commitment breaks its hash.
	out := export(t, st, l, "alpha", 1)
	lines := bytes.SplitAfter(out, []byte("\n"))
	i := recordLineIndex(t, lines, 2)
	var m map[string]any
	if err := json.Unmarshal(lines[i], &m); err != nil || m["commitment"] == nil {
		t.Fatalf("record 2 of alpha's export: %s", lines[i])
	}
	c := []byte(m["commitment"].(string))
	c[0] ^= 1
	if c[0] > 'f' || (c[0] > '9' && c[0] < 'a') {
		c[0] = '0'
	}
	lines[i] = bytes.Replace(lines[i], []byte(m["commitment"].(string)), c, 1)
	if _, err := Verify(bytes.NewReader(bytes.Join(lines, nil)), l.PublicKey()); err == nil || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("altered commitment: %v", err)
	}
}

// Records written before commitments existed (v1) still verify, shown in
// full, in the same export as the records after them.
func TestV1RecordsStillVerify(t *testing.T) {
	st := openStore(t)
	l := NewLog(testKey(t, 12), 100)
	err := st.Update(context.Background(), func(tx store.Tx) error {
		prev := zeroHash
		for seq := int64(1); seq <= 2; seq++ {
			content := []byte(fmt.Sprintf(`{"old":%d}`, seq))
			at := t0.Add(time.Duration(seq) * time.Second)
			sum := sha256.Sum256(LeafData(seq, at, "deconflict", "rules_changed", content, prev))
			env, _ := json.Marshal(map[string]json.RawMessage{"content": content})
			if err := tx.AppendAudit(store.AuditRecord{Seq: seq, Time: at, Actor: "deconflict", Kind: "rules_changed", Content: env, PrevHash: prev, Hash: sum[:]}); err != nil {
				return err
			}
			prev = sum[:]
		}
		_, err := l.Append(tx, "deconflict", "party_added", For("bravo"), map[string]string{"party": "bravo"}, t0.Add(time.Hour))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := export(t, st, l, "alpha", 1)
	sum, err := Verify(bytes.NewReader(out), l.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 3 || sum.Hidden != 1 || !bytes.Contains(out, []byte(`{"old":2}`)) {
		t.Fatalf("summary %+v\n%s", sum, out)
	}
}

// TestKeyFilesWithoutKeysAreRefused: a --party-keys or --witness-keys file
// without a single key (empty, blank, only comments) is refused, naming
// what it lacks; read as no keys, it made a verification check no
// statement and no cosignature, yet report them checked.
func TestKeyFilesWithoutKeysAreRefused(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# the witnesses\n  \n# none yet\n"} {
		if k, err := ParsePartyKeys(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "no key") {
			t.Errorf("party keys %q: %v, %v; want an error saying it holds no key", in, k, err)
		}
		if k, err := ParseWitnessKeys(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "no key") {
			t.Errorf("witness keys %q: %v, %v; want an error saying it holds no key", in, k, err)
		}
	}
	// One key is enough.
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParsePartyKeys(strings.NewReader("# ours\nalpha ed25519:" + base64.StdEncoding.EncodeToString(pub) + "\n")); err != nil || len(k["alpha"]) != 1 {
		t.Errorf("one party key: %v, %v", k, err)
	}
}

// TestWitnessKeysNamingAPartyTwiceAreRefused: the first key would give
// way to the second without a word, and its witness's cosignatures be
// refused as a stranger's.
func TestWitnessKeysNamingAPartyTwiceAreRefused(t *testing.T) {
	vkey := func(name string) string {
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
	a, b := vkey("alpha.test/witness"), vkey("bravo.test/witness")
	if k, err := ParseWitnessKeys(strings.NewReader("alpha " + a + "\nbravo " + b + "\n")); err != nil || len(k) != 2 {
		t.Fatalf("two parties: %v, %v", k, err)
	}
	if k, err := ParseWitnessKeys(strings.NewReader("alpha " + a + "\nalpha " + b + "\n")); err == nil || !strings.Contains(err.Error(), `"alpha" named twice`) {
		t.Errorf("alpha twice: %v, %v; want an error naming it", k, err)
	}
}

// txFreeWriter fails a write made while a transaction is open.
type txFreeWriter struct {
	bytes.Buffer
	inTx *bool
}

func (w *txFreeWriter) Write(p []byte) (int, error) {
	if *w.inTx {
		return 0, errors.New("written with a transaction open")
	}
	return w.Buffer.Write(p)
}

// TestExportPagedIsTheSnapshotOfItsStart: ExportPaged writes nothing while
// a transaction is open, and exports the chain as it was when it began,
// although records and checkpoints are appended between its pages: the
// very bytes of Export in one transaction at the start, over three pages.
func TestExportPagedIsTheSnapshotOfItsStart(t *testing.T) {
	st := openStore(t)
	l := NewLog(testKey(t, 4), 700)
	ctx := context.Background()
	err := st.Update(ctx, func(tx store.Tx) error {
		for i := range 2*exportPage + 10 {
			if _, err := l.Append(tx, "alpha", "test_change", For("alpha"), map[string]any{"i": i}, t0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, viewer := range []string{"", "alpha", "bravo"} {
		for _, from := range []int64{1, exportPage, 2*exportPage + 50} {
			want := export(t, st, l, viewer, from)
			inTx, views := false, 0
			view := func(fn func(store.Audit) error) error {
				err := st.View(ctx, func(tx store.Tx) error {
					inTx = true
					defer func() { inTx = false }()
					return fn(tx)
				})
				views++
				if err != nil {
					return err
				}
				// The chain grows between the pages.
				return st.Update(ctx, func(tx store.Tx) error {
					if _, err := l.Append(tx, "bravo", "test_change", Everyone, map[string]any{"later": views}, t0); err != nil {
						return err
					}
					_, _, err := l.Checkpoint(tx, t0)
					return err
				})
			}
			w := &txFreeWriter{inTx: &inTx}
			head, err := l.ExportPaged(view, w, viewer, from, t0.Add(time.Hour))
			if err != nil {
				t.Fatalf("viewer %q from %d: %v", viewer, from, err)
			}
			if !bytes.Equal(w.Bytes(), want) {
				t.Fatalf("viewer %q from %d: the paged export differs from the export of its start", viewer, from)
			}
			if head != lastSeq(t, st)-int64(views) {
				t.Fatalf("viewer %q from %d: head %d", viewer, from, head)
			}
		}
	}
}

func lastSeq(t testing.TB, st store.Store) int64 {
	t.Helper()
	var seq int64
	err := st.View(context.Background(), func(tx store.Tx) error {
		last, err := tx.LastAudit()
		seq = last.Seq
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}
