package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// auditDataDir makes a data directory with a signing key and a log of n
// hotline messages among alpha, bravo and charlie, checkpointed every 4.
func auditDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	key, err := audit.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lg := audit.NewLog(key, 4)
	now := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	err = st.Update(context.Background(), func(tx store.Tx) error {
		for _, p := range []string{"alpha", "bravo", "charlie"} {
			if err := tx.CreateParty(store.Party{Name: p, Created: now}); err != nil {
				return err
			}
			if _, err := lg.Append(tx, "operator", "party_added", audit.For(p), map[string]any{"party": p}, now); err != nil {
				return err
			}
		}
		for i := range n {
			from, to := "alpha", "bravo"
			if i%2 == 1 {
				to = "charlie"
			}
			in := hotline.NewMessage{To: []string{to}, Kind: hotline.KindNotice, Text: fmt.Sprintf("text %s-%s %d", from, to, i)}
			if _, _, err := hotline.Post(tx, lg, rules.Default(), from, in, now.Add(time.Duration(i)*time.Second)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = runMain(args, &o, &e)
	return code, o.String(), e.String()
}

func TestAuditExportAndVerify(t *testing.T) {
	const n = 9
	dir := auditDataDir(t, n)
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	if code, _, stderr := runCmd("audit", "export", "--data", dir, "--out", out); code != 0 {
		t.Fatalf("export: %d %s", code, stderr)
	}
	code, keyJSON, stderr := runCmd("audit", "key", "--data", dir)
	if code != 0 {
		t.Fatalf("key: %d %s", code, stderr)
	}
	var info audit.KeyInfo
	if err := json.Unmarshal([]byte(keyJSON), &info); err != nil || info.Alg != "Ed25519" {
		t.Fatalf("key output %q (%v)", keyJSON, err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(keyFile, []byte(keyJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	records := 3 + n
	for _, key := range []string{keyFile, info.PublicKey, filepath.Join(dir, audit.KeyFile)} {
		code, stdout, stderr := runCmd("audit", "verify", out, "--key", key)
		if code != 0 || !strings.Contains(stdout, fmt.Sprintf("OK: %d records (seq 1 to %d), %d checkpoints", records, records, records/4)) {
			t.Fatalf("verify with key %s: %d\n%s%s", key, code, stdout, stderr)
		}
	}

	// One altered byte: exit 1, the record named.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("text alpha-charlie 3"))
	bad := bytes.Clone(b)
	bad[i+len("text alpha-charlie ")] = '4'
	badFile := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(badFile, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	var altered int64
	for _, l := range bytes.Split(b[:i], []byte("\n")) {
		var r struct{ Seq int64 }
		if json.Unmarshal(l, &r) == nil && r.Seq > 0 {
			altered = r.Seq
		}
	}
	code, _, stderr = runCmd("audit", "verify", badFile, "--key", keyFile)
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("record %d ", altered+1)) || !strings.Contains(stderr, "details do not match their sha256") {
		t.Fatalf("altered export: exit %d, %s (want record %d)", code, stderr, altered+1)
	}
	// Another key: exit 1, the signature named.
	other := auditDataDir(t, 1)
	code, _, stderr = runCmd("audit", "verify", out, "--key", filepath.Join(other, audit.KeyFile))
	if code != 1 || !strings.Contains(stderr, "signature does not verify") {
		t.Fatalf("wrong key: exit %d, %s", code, stderr)
	}
}

func TestAuditExportForAParty(t *testing.T) {
	dir := auditDataDir(t, 6)
	code, stdout, stderr := runCmd("audit", "export", "--data", dir, "--party", "bravo", "--from", "2")
	if code != 0 {
		t.Fatalf("export: %d %s", code, stderr)
	}
	// Nothing of what bravo may not see through the API: not the texts,
	// and not the messages between alpha and charlie at all (ids, thread,
	// kind, times, readers), nor charlie's registration.
	if strings.Contains(stdout, "charlie") || !strings.Contains(stdout, "text alpha-bravo 0") {
		t.Fatalf("bravo's export shows the wrong records:\n%s", stdout)
	}
	_, keyJSON, _ := runCmd("audit", "key", "--data", dir)
	var info audit.KeyInfo
	if err := json.Unmarshal([]byte(keyJSON), &info); err != nil {
		t.Fatal(err)
	}
	sum, err := audit.Verify(strings.NewReader(stdout), mustPub(t, info.PublicKey))
	if err != nil || sum.Viewer != "bravo" || sum.FirstSeq != 2 || sum.Hidden != 4 || sum.Redacted != 0 {
		t.Fatalf("bravo's export: %+v %v", sum, err)
	}
	file := filepath.Join(t.TempDir(), "bravo.jsonl")
	if err := os.WriteFile(file, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runCmd("audit", "verify", file, "--key", info.PublicKey); code != 0 || !strings.Contains(out, "4 records shown by their commitment only") {
		t.Fatalf("audit verify of bravo's export: %d %s%s", code, out, stderr)
	}
}

func mustPub(t *testing.T, s string) []byte {
	pub, err := audit.ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestAuditArguments(t *testing.T) {
	dir := auditDataDir(t, 1)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"audit", "export", "--data", dir, "--party", "nobody"}, 2, "no party"},
		{[]string{"audit", "export", "--data", dir, "--from", "0"}, 2, "--from"},
		{[]string{"audit", "export", "--data", t.TempDir()}, 1, "no audit signing key"},
		{[]string{"audit", "verify", "--key", "AAAA"}, 2, "exactly one FILE"},
		{[]string{"audit", "verify", "x.jsonl"}, 2, "--key"},
		{[]string{"audit", "verify", "x.jsonl", "--key", "not-a-key"}, 2, "key"},
		{[]string{"audit", "frobnicate"}, 2, "unknown verb"},
	}
	for _, c := range cases {
		code, _, stderr := runCmd(c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, code, stderr, c.code, c.msg)
		}
	}
}
