package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/translog"
)

// testLog is a log: a tree and its key.
type testLog struct {
	key  *translog.LogKey
	tree *translog.Tree
}

func newTestLog(t testing.TB, priv ed25519.PrivateKey) *testLog {
	t.Helper()
	k, err := translog.NewLogKey("deconflict.example/log", priv)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := translog.NewTree(&translog.MemHashes{})
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{key: k, tree: tree}
}

// grow appends n leaves whose data starts with prefix, and signs.
func (l *testLog) grow(t testing.TB, prefix string, n int) ([]byte, int64) {
	t.Helper()
	var leaves [][]byte
	for i := range n {
		leaves = append(leaves, []byte(fmt.Sprintf("%s %d", prefix, l.tree.Size()+int64(i))))
	}
	size, err := l.tree.Append(leaves...)
	if err != nil {
		t.Fatal(err)
	}
	root, err := l.tree.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := l.key.Sign(size, root)
	if err != nil {
		t.Fatal(err)
	}
	return signed, size
}

func newWitnessServer(t *testing.T, name string, logVKey string) (*Server, *httptest.Server) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	s, err := NewServer(name, priv, t.TempDir(), []string{logVKey})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs
}

func TestPushAndCosign(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	lg := newTestLog(t, priv)
	coalition, hc := newWitnessServer(t, "coalition.example/witness", lg.key.VerifierKey())
	russia, hr := newWitnessServer(t, "russia.example/witness", lg.key.VerifierKey())
	p, err := NewPusher(lg.key.Verifier(), lg.tree.ConsistencyProof, []Endpoint{
		{Party: "coalition", URL: hc.URL, VKey: coalition.VerifierKey()},
		{Party: "russia", URL: hr.URL, VKey: russia.VerifierKey()},
	}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for round, n := range []int{1, 7, 1, 30} {
		signed, size := lg.grow(t, "leaf", n)
		lines := p.Push(context.Background(), signed, size)
		if len(lines) != 2 {
			t.Fatalf("round %d: %d cosignatures, want 2; status %+v", round, len(lines), p.Status())
		}
		published := translog.AddSignatures(signed, lines...)
		_, cosigs, err := translog.Open(published, lg.key.Origin(), lg.key.Verifier(), p.Verifiers()...)
		if err != nil || len(cosigs) != 2 {
			t.Fatalf("round %d: published checkpoint: %v %v", round, cosigs, err)
		}
		for _, st := range p.Status() {
			if st.Failing != "" || st.Size != size {
				t.Fatalf("round %d: status %+v", round, st)
			}
		}
		_, held, ok, err := coalition.Latest(lg.key.Origin())
		if err != nil || !ok || held.Size != size {
			t.Fatalf("round %d: witness holds %+v %v %v", round, held, ok, err)
		}
	}
	// A pusher that restarted knows nothing: the witness tells it its size
	// (409) and the push is retried from there.
	p2, _ := NewPusher(lg.key.Verifier(), lg.tree.ConsistencyProof, []Endpoint{{Party: "coalition", URL: hc.URL, VKey: coalition.VerifierKey()}}, 5*time.Second)
	signed, size := lg.grow(t, "leaf", 3)
	if lines := p2.Push(context.Background(), signed, size); len(lines) != 1 {
		t.Fatalf("after restart: %v %+v", lines, p2.Status())
	}
}

func TestWitnessRefusesFork(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	lg := newTestLog(t, priv)
	w, hs := newWitnessServer(t, "coalition.example/witness", lg.key.VerifierKey())
	p, _ := NewPusher(lg.key.Verifier(), lg.tree.ConsistencyProof, []Endpoint{{Party: "coalition", URL: hs.URL, VKey: w.VerifierKey()}}, 5*time.Second)
	signed, size := lg.grow(t, "leaf", 10)
	if lines := p.Push(context.Background(), signed, size); len(lines) != 1 {
		t.Fatal(p.Status())
	}
	// The operator restores an older copy (5 leaves) and continues with
	// other records, signing with the same key: a fork.
	fork := newTestLog(t, priv)
	fork.grow(t, "leaf", 5)
	forked, forkSize := fork.grow(t, "other", 8)
	fp, _ := NewPusher(fork.key.Verifier(), fork.tree.ConsistencyProof, []Endpoint{{Party: "coalition", URL: hs.URL, VKey: w.VerifierKey()}}, 5*time.Second)
	if lines := fp.Push(context.Background(), forked, forkSize); len(lines) != 0 {
		t.Fatal("the witness cosigned a fork")
	}
	st := fp.Status()[0]
	if st.Failing == "" {
		t.Fatal("the fork's push is not reported failing")
	}
	_, held, _, _ := w.Latest(lg.key.Origin())
	if held.Size != size {
		t.Fatalf("the witness now holds size %d, want %d", held.Size, size)
	}
	ev, _ := os.ReadDir(filepath.Join(w.dir, "evidence"))
	if len(ev) == 0 {
		t.Fatal("no evidence kept of the forked checkpoint")
	}
	// The same size with another root: 409.
	fork = newTestLog(t, priv)
	fork.grow(t, "leaf", 5)
	forked, forkSize = fork.grow(t, "other", 5)
	if forkSize != size {
		t.Fatalf("fork size %d", forkSize)
	}
	c, _ := NewClient(Endpoint{URL: hs.URL, VKey: w.VerifierKey()}, nil)
	proof, _ := fork.tree.ConsistencyProof(size, size)
	_, err := c.AddCheckpoint(context.Background(), fork.key.Verifier(), size, proof, forked)
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.Size != size {
		t.Fatalf("same size, other root: %v", err)
	}
}

func TestWitnessProtocolErrors(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	lg := newTestLog(t, priv)
	w, hs := newWitnessServer(t, "coalition.example/witness", lg.key.VerifierKey())
	signed, size := lg.grow(t, "leaf", 4)
	post := func(body string) (int, string, string) {
		resp, err := http.Post(hs.URL+"/add-checkpoint", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Content-Type")
	}
	other := newTestLog(t, newKey(t))
	otherKey, _ := translog.NewLogKey("unknown.example/log", newKey(t))
	unknownSigned, _ := otherKey.Sign(1, translog.Hash{})
	otherSigned, _ := other.grow(t, "x", 1)
	cases := []struct {
		name, body string
		status     int
	}{
		{"garbage", "hello", 400},
		{"leading zero", "old 00\n\n" + string(signed), 400},
		{"bad proof line", "old 0\nnot-base64\n\n" + string(signed), 400},
		{"unknown origin", "old 0\n\n" + string(unknownSigned), 404},
		{"not the log's key", "old 0\n\n" + string(otherSigned), 403},
		{"old larger", fmt.Sprintf("old %d\n\n%s", size+1, signed), 400},
		{"old not held", "old 2\n\n" + string(signed), 409},
		{"proof from zero", "old 0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" + string(signed), 422},
	}
	for _, c := range cases {
		status, body, ctype := post(c.body)
		if status != c.status {
			t.Errorf("%s: %d %q, want %d", c.name, status, body, c.status)
		}
		if status == 409 && (body != "0\n" || ctype != SizeContentType) {
			t.Errorf("%s: 409 body %q type %q", c.name, body, ctype)
		}
	}
	// Nothing above changed the witness.
	if _, _, ok, _ := w.Latest(lg.key.Origin()); ok {
		t.Fatal("a refused request left a checkpoint")
	}
	// A wrong consistency proof: 422.
	status, _, _ := post("old 0\n\n" + string(signed))
	if status != 200 {
		t.Fatalf("first checkpoint: %d", status)
	}
	signed2, size2 := lg.grow(t, "leaf", 3)
	proof, _ := lg.tree.ConsistencyProof(size, size2)
	proof[0][0] ^= 1
	status, body, _ := post(string(Request{OldSize: size, Proof: proof, Checkpoint: signed2}.Body()))
	if status != 422 {
		t.Fatalf("bad proof: %d %s", status, body)
	}
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestPushSurvivesBadWitnesses(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	lg := newTestLog(t, priv)
	good, hg := newWitnessServer(t, "good.example/witness", lg.key.VerifierKey())
	_, garbageKey, _ := CosignerKeys("garbage.example/witness", newKey(t))
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "— garbage.example/witness AAAAAAAAAAAAAAAAAAAA\nnot a signature\n")
	}))
	defer garbage.Close()
	_, slowKey, _ := CosignerKeys("slow.example/witness", newKey(t))
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	_, downKey, _ := CosignerKeys("down.example/witness", newKey(t))
	p, err := NewPusher(lg.key.Verifier(), lg.tree.ConsistencyProof, []Endpoint{
		{Party: "a", URL: garbage.URL, VKey: garbageKey},
		{Party: "b", URL: slow.URL, VKey: slowKey},
		{Party: "c", URL: "http://127.0.0.1:1", VKey: downKey},
		{Party: "d", URL: hg.URL, VKey: good.VerifierKey()},
	}, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	signed, size := lg.grow(t, "leaf", 5)
	start := time.Now()
	lines := p.Push(context.Background(), signed, size)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("push took %s: a slow witness blocked it", took)
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "— good.example/witness ") {
		t.Fatalf("lines %q", lines)
	}
	for _, st := range p.Status() {
		if (st.Party == "d") != (st.Failing == "") {
			t.Errorf("status %+v", st)
		}
	}
}

// TestWitnessWithholdsWhileTheCheckFindsFault: while the party's check
// has left a finding (WithheldFile), the witness cosigns nothing and says
// why (403); once the finding is gone it cosigns the log again from where
// it was.
func TestWitnessWithholdsWhileTheCheckFindsFault(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	lg := newTestLog(t, priv)
	w, hs := newWitnessServer(t, "coalition.example/witness", lg.key.VerifierKey())
	p, _ := NewPusher(lg.key.Verifier(), lg.tree.ConsistencyProof, []Endpoint{{Party: "coalition", URL: hs.URL, VKey: w.VerifierKey()}}, 5*time.Second)
	signed, size := lg.grow(t, "leaf", 4)
	if lines := p.Push(context.Background(), signed, size); len(lines) != 1 {
		t.Fatal(p.Status())
	}
	finding := "INCONSISTENT: record 3 as exported is not the record the cosigned checkpoint of size 4 commits to"
	if err := os.WriteFile(filepath.Join(w.dir, WithheldFile), []byte(finding+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signed, grown := lg.grow(t, "leaf", 3)
	if lines := p.Push(context.Background(), signed, grown); len(lines) != 0 {
		t.Fatal("the witness cosigned while its party's check found the record bent")
	}
	if st := p.Status()[0]; !strings.Contains(st.Failing, "403") || !strings.Contains(st.Failing, finding) {
		t.Fatalf("status while withheld: %+v", st)
	}
	if _, held, _, _ := w.Latest(lg.key.Origin()); held.Size != size {
		t.Fatalf("the witness moved on to size %d while withholding", held.Size)
	}
	if err := os.Remove(filepath.Join(w.dir, WithheldFile)); err != nil {
		t.Fatal(err)
	}
	if lines := p.Push(context.Background(), signed, grown); len(lines) != 1 {
		t.Fatalf("after the finding was cleared: %+v", p.Status())
	}
}

// TestPushBoundsWhatAWitnessSends: a witness that accepts the connection
// and says nothing, one that answers a byte at a time for ever, and one
// whose answer never ends hold the push no longer than its timeout, cost
// no more than maxBody each, and are reported failing; the good witness's
// cosignature is collected all the same.
func TestPushBoundsWhatAWitnessSends(t *testing.T) {
	lg := newTestLog(t, newKey(t))
	good, hg := newWitnessServer(t, "good.example/witness", lg.key.VerifierKey())
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	defer func() {
		silent.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	go func() {
		defer close(accepted)
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	drip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for r.Context().Err() == nil {
			if _, err := w.Write([]byte("—")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	}))
	defer drip.Close()
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		line := []byte(strings.Repeat("— endless.example/witness AAAA\n", 1000))
		for {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	var endpoints []Endpoint
	for _, w := range []struct{ party, url string }{{"a", "http://" + silent.Addr().String()}, {"b", drip.URL}, {"c", endless.URL}} {
		_, vkey, _ := CosignerKeys(w.party+".example/witness", newKey(t))
		endpoints = append(endpoints, Endpoint{Party: w.party, URL: w.url, VKey: vkey})
	}
	endpoints = append(endpoints, Endpoint{Party: "d", URL: hg.URL, VKey: good.VerifierKey()})
	p, err := NewPusher(lg.key.Verifier(), lg.tree.ConsistencyProof, endpoints, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		signed, size := lg.grow(t, "leaf", 3)
		lines := p.Push(context.Background(), signed, size)
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "— good.example/witness ") {
			t.Fatalf("round %d: lines %q", round, lines)
		}
		for _, st := range p.Status() {
			if (st.Party == "d") != (st.Failing == "") || len(st.Failing) > 400 {
				t.Errorf("round %d: status %+v", round, st)
			}
		}
	}
}

// Anyone who can reach a witness can post the log's checkpoints (every
// party reads them) with a bad consistency proof: the witness refuses
// them and keeps the checkpoint as evidence. Posted again and again, each
// time with other junk signature lines and another bad proof, it must not
// keep a file each time (it kept the whole body under a name of the time
// and the body's hash: 200 posts of 62 KB filled 13 MB), nor keep lines
// that are not the log's.
func TestWitnessEvidenceIsBoundedByWhatTheLogSigned(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	lg := newTestLog(t, priv)
	w, hs := newWitnessServer(t, "coalition.example/witness", lg.key.VerifierKey())
	signed, size := lg.grow(t, "leaf", 4)
	post := func(body []byte) int {
		resp, err := http.Post(hs.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := post(Request{Checkpoint: signed}.Body()); status != 200 {
		t.Fatalf("first checkpoint: %d", status)
	}
	signed2, _ := lg.grow(t, "leaf", 3)
	for i := range 20 {
		junk := bytes.Clone(signed2)
		for j := range 10 {
			sig := make([]byte, 68)
			sig[0], sig[1], sig[2] = byte(i), byte(j), 0xee
			junk = append(junk, fmt.Sprintf("— attacker%d %s\n", j, base64.StdEncoding.EncodeToString(sig))...)
		}
		proof := []translog.Hash{{byte(i), 1}}
		if status := post(Request{OldSize: size, Proof: proof, Checkpoint: junk}.Body()); status != 422 {
			t.Fatalf("post %d: %d, want 422", i, status)
		}
	}
	ev, err := os.ReadDir(filepath.Join(w.dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 1 {
		t.Fatalf("%d evidence files for one checkpoint the log signed, want 1", len(ev))
	}
	kept, err := os.ReadFile(filepath.Join(w.dir, "evidence", ev[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kept, signed2) {
		t.Fatalf("evidence kept %q, want the log's checkpoint alone %q", kept, signed2)
	}
}

// TestPushStatusShowsNoControlCharacters: a witness is another party's,
// and what it answers to a refused push is shown to every party (GET
// /v1/log/witnesses, the console) and in the log's own log. A witness
// answering with a terminal escape, a carriage return and a bidi override
// must not make that read otherwise than it is.
func TestPushStatusShowsNoControlCharacters(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	lg := newTestLog(t, priv)
	_, hostileKey, _ := CosignerKeys("hostile.example/witness", newKey(t))
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "\x1b[32m\rall cosigned \u202egnihton\u202c\xff", http.StatusForbidden)
	}))
	defer hostile.Close()
	p, err := NewPusher(lg.key.Verifier(), lg.tree.ConsistencyProof, []Endpoint{{Party: "a", URL: hostile.URL, VKey: hostileKey}}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	signed, size := lg.grow(t, "leaf", 2)
	p.Push(context.Background(), signed, size)
	st := p.Status()[0]
	if !strings.Contains(st.Failing, "all cosigned") {
		t.Fatalf("the status %q does not show what the witness answered", st.Failing)
	}
	if err := printable.Check(st.Failing); err != nil {
		t.Errorf("the status %q %v", st.Failing, err)
	}
}
