package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite"
)

// The tests of this file run the real binary: a server, the coalition's
// own witness (deconflict witness) and its check (deconflict witness
// check), and play an operator who bends the record. Each bend must be
// caught by the check, naming the evidence.

type trustEnv struct {
	t         *testing.T
	bin, data string
	srv       *serverProc
	tokens    map[string]string
	operator  string
	tokenFile string // the coalition's token
	wstate    string
	wargs     []string
	wcmd      *exec.Cmd
	wurl      string
	wvkey     string
	client    *http.Client
	// coalitionKey signs the coalition's writes (newTrustEnvKeyed), and
	// partyKeys lists its public key for the checks.
	coalitionKey ed25519.PrivateKey
	partyKeys    string
}

func newTrustEnv(t *testing.T) *trustEnv { return newTrustEnvKeyed(t, false) }

// newTrustEnvKeyed, with keyed, gives the coalition its own signing key:
// its writes are signed, and its checks verify its statements.
func newTrustEnvKeyed(t *testing.T, keyed bool) *trustEnv {
	e := &trustEnv{t: t, bin: buildBinary(t), data: t.TempDir(), tokens: map[string]string{}, client: &http.Client{Timeout: 30 * time.Second}}
	addArgs := map[string][]string{}
	if keyed {
		keyFile := filepath.Join(t.TempDir(), "coalition.pem")
		pub := lastLine(runCLI(t, e.bin, "key", "new", "--out", keyFile))
		key, err := partykey.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		e.coalitionKey = key
		addArgs["coalition"] = []string{"--public-key", pub}
		e.partyKeys = filepath.Join(t.TempDir(), "party-keys")
		if err := os.WriteFile(e.partyKeys, []byte("coalition "+pub+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"coalition", "russia"} {
		e.tokens[p] = lastLine(runCLI(t, e.bin, append([]string{"party", "add", p, "--data", e.data}, addArgs[p]...)...))
	}
	e.tokenFile = filepath.Join(t.TempDir(), "coalition.token")
	if err := os.WriteFile(e.tokenFile, []byte(e.tokens["coalition"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	op, err := os.ReadFile(filepath.Join(e.data, "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	e.operator = strings.TrimSpace(string(op))
	var key struct{ VKey string }
	e.getJSON("/v1/log/key", e.tokens["coalition"], &key)
	wkey := filepath.Join(t.TempDir(), "coalition-witness.pem")
	runCLI(t, e.bin, "key", "new", "--out", wkey)
	e.wstate = filepath.Join(t.TempDir(), "witness")
	e.wargs = []string{"--key", wkey, "--state", e.wstate, "--log-vkey", key.VKey, "--name", "coalition.test/witness"}
	e.wcmd, e.wurl, e.wvkey = startWitness(t, e.bin, e.wargs...)
	e.setRules(func(r map[string]any) {
		r["witnesses"] = []map[string]string{{"party": "coalition", "url": e.wurl, "vkey": e.wvkey}}
	})
	return e
}

func (e *trustEnv) start() {
	e.srv = startServe(e.t, e.bin, 60*time.Second, "--data", e.data)
}

func (e *trustEnv) stop() { e.srv.stop(e.t, 60*time.Second) }

func (e *trustEnv) getJSON(path, token string, out any) {
	e.t.Helper()
	code, body, err := do(e.client, "GET", e.srv.base+path, token, nil)
	if err != nil || code != 200 {
		e.t.Fatalf("GET %s: %d %s %v", path, code, body, err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		e.t.Fatal(err)
	}
}

func (e *trustEnv) setRules(edit func(map[string]any)) {
	e.t.Helper()
	var r map[string]any
	e.getJSON("/v1/rules", e.operator, &r)
	edit(r)
	code, body, err := do(e.client, "PUT", e.srv.base+"/v1/rules", e.operator, r)
	if err != nil || code != 202 {
		e.t.Fatalf("PUT /v1/rules: %d %s %v", code, body, err)
	}
	// A proposal: every party accepts it.
	var p struct{ Version int64 }
	if err := json.Unmarshal(body, &p); err != nil {
		e.t.Fatal(err)
	}
	for party, tok := range e.tokens {
		c := client.New(e.srv.base, tok)
		if party == "coalition" && e.coalitionKey != nil {
			c = c.WithKey(e.coalitionKey)
		}
		if _, err := c.AcceptRules(context.Background(), p.Version); err != nil {
			e.t.Fatalf("%s accepting rules %d: %v", party, p.Version, err)
		}
	}
}

// exchange posts a message from coalition (signed when it has a key) and
// russia's acknowledgment.
func (e *trustEnv) exchange(text string) {
	e.t.Helper()
	c := client.New(e.srv.base, e.tokens["coalition"])
	if e.coalitionKey != nil {
		c = c.WithKey(e.coalitionKey)
	}
	m, err := c.PostMessage(context.Background(), client.NewMessage{To: []string{"russia"}, Kind: "request", Thread: "coalition/t-" + text, Text: text})
	if err != nil {
		e.t.Fatalf("post message: %v", err)
	}
	code, body, err := do(e.client, "POST", e.srv.base+"/v1/hotline/messages/"+m.ID+"/ack", e.tokens["russia"], map[string]string{"reply": "roger " + text})
	if err != nil || code != 200 {
		e.t.Fatalf("ack: %d %s %v", code, body, err)
	}
}

// cosigned waits until the published checkpoint covers every record and
// carries the coalition witness's cosignature.
func (e *trustEnv) cosigned() int64 {
	e.t.Helper()
	return e.waitLog(e.tokens["coalition"], "no cosigned checkpoint of all the records", func(st logStatus, records int64) bool {
		return st.Size == records && len(st.CosignedBy) == 1
	})
}

// logStatus is what GET /v1/log/witnesses says.
type logStatus struct {
	Size       int64
	CosignedBy []string `json:"cosigned_by"`
	Witnesses  []struct{ Party, Failing string }
}

// waitLog polls the log's status and counts the audit records auditToken
// may read until done holds for the two, and returns the log's size; after
// 60 s it fails the test with what.
func (e *trustEnv) waitLog(auditToken, what string, done func(st logStatus, records int64) bool) int64 {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var st logStatus
		e.getJSON("/v1/log/witnesses", e.tokens["coalition"], &st)
		code, body, _ := do(e.client, "GET", e.srv.base+"/v1/audit", auditToken, nil)
		records := int64(0)
		if code == 200 {
			for _, l := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(l, `{"seq":`) {
					records++
				}
			}
		}
		if done(st, records) {
			return st.Size
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s (%d records; status %+v)", what, records, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// check runs `deconflict witness check` and returns its exit status and
// output.
func (e *trustEnv) check(extra ...string) (int, string) {
	e.t.Helper()
	args := append([]string{"witness", "check", "--server", e.srv.base, "--token-file", e.tokenFile, "--state", e.wstate}, extra...)
	if e.partyKeys != "" {
		args = append(args, "--party-keys", e.partyKeys)
	}
	cmd := exec.Command(e.bin, args...)
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out) + string(ee.Stderr)
	}
	e.t.Fatal(err)
	return 0, ""
}

func (e *trustEnv) mustCheckOK() {
	e.t.Helper()
	if code, out := e.check(); code != 0 || !strings.HasPrefix(out, "OK: ") {
		e.t.Fatalf("check: exit %d\n%s", code, out)
	}
}

// TestOperatorEditsStoredAck: the operator moves the time of an
// acknowledgment in the database ("acknowledged at 08:35Z"); the check
// names the record.
func TestOperatorEditsStoredAck(t *testing.T) {
	e := newTrustEnv(t)
	e.exchange("one")
	e.cosigned()
	e.mustCheckOK()
	e.exchange("two")
	e.cosigned()
	db, err := sql.Open("sqlite", filepath.Join(e.data, "deconflict.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int64
	if err := db.QueryRow(`SELECT max(seq) FROM audit WHERE kind = 'message_acked'`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit SET time_ns = time_ns - 600000000000 WHERE seq = ?`, seq); err != nil {
		t.Fatal(err)
	}
	code, out := e.check()
	if code != 3 || !strings.HasPrefix(out, "INCONSISTENT: ") || !strings.Contains(out, fmt.Sprintf("record %d", seq)) {
		t.Fatalf("check after the edit of record %d: exit %d\n%s", seq, code, out)
	}
	e.wantEvidence(fmt.Sprintf("\n{\"seq\":%d,", seq))
	// While it lasts, the coalition's witness cosigns nothing: every
	// party sees in the published checkpoint that the coalition does not
	// verify the record.
	// (Putting the record back would not end it: the server has rebuilt
	// its tree over the altered record, a history the witness never
	// cosigned. The witness's own test shows the cosignatures resume when
	// a check passes again.)
	e.exchange("three")
	e.withheld()
}

// withheld waits until the log published a checkpoint of every record
// that the coalition's witness did not cosign, saying why.
func (e *trustEnv) withheld() {
	e.t.Helper()
	e.waitLog(e.operator, "the coalition's witness did not withhold its cosignature of all the records", func(st logStatus, records int64) bool {
		return st.Size == records && len(st.CosignedBy) == 0 && len(st.Witnesses) == 1 && strings.Contains(st.Witnesses[0].Failing, "cosignatures withheld")
	})
}

// TestOperatorRestoresOlderCopy: the operator restores an older copy of
// the data directory and continues with other writes (same log key, two
// histories); the witness refuses the fork and the check names the two
// checkpoints.
func TestOperatorRestoresOlderCopy(t *testing.T) {
	e := newTrustEnv(t)
	e.exchange("one")
	e.cosigned()
	e.mustCheckOK()
	e.stop()
	backup := filepath.Join(t.TempDir(), "backup")
	// cp -a keeps the modes (the signing key must stay 0600).
	if out, err := exec.Command("cp", "-a", e.data, backup).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	e.start()
	e.exchange("two")
	e.exchange("three")
	e.cosigned()
	e.mustCheckOK()
	e.stop()
	if err := os.RemoveAll(e.data); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(backup, e.data); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.exchange("forged")
	e.exchange("history")
	e.exchange("here")
	// The server publishes its fork; the witness refuses to cosign it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out := e.check()
		if code == 3 && strings.HasPrefix(out, "INCONSISTENT: ") && strings.Contains(out, "conflict") {
			t.Logf("%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fork was not caught: exit %d\n%s", code, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// And the server itself reports the witness refusing its checkpoints.
	for {
		var st struct {
			Witnesses []struct{ Failing string }
		}
		e.getJSON("/v1/log/witnesses", e.tokens["russia"], &st)
		if len(st.Witnesses) == 1 && st.Witnesses[0].Failing != "" {
			t.Logf("witness failing: %s", st.Witnesses[0].Failing)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server does not report the witness refusing: %+v", st)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestOperatorStopsPushing: the operator stops pushing to the coalition's
// witness; once its cosignature is older than witness_max_age_s the check
// reports STALE.
func TestOperatorStopsPushing(t *testing.T) {
	e := newTrustEnv(t)
	e.setRules(func(r map[string]any) { r["witness_max_age_s"] = 3 })
	e.exchange("one")
	e.cosigned()
	e.mustCheckOK()
	e.setRules(func(r map[string]any) { r["witnesses"] = []any{} })
	e.exchange("two")
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out := e.check()
		if code == 3 && strings.HasPrefix(out, "STALE: ") {
			t.Logf("%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stop was not caught: exit %d\n%s", code, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestOperatorRecordsUnsignedStatement: the operator writes into the record
// an acknowledgment "by the coalition" that the coalition never signed.
// The chain and the tree are intact (the record was appended properly),
// but no signed statement of the coalition covers it: the coalition's
// check and an offline audit verify with its key both name the record.
func TestOperatorRecordsUnsignedStatement(t *testing.T) {
	e := newTrustEnvKeyed(t, true)
	e.exchange("one")
	e.cosigned()
	e.mustCheckOK()
	// An unsigned write of the coalition is refused by the server.
	code, body, _ := do(e.client, "POST", e.srv.base+"/v1/hotline/messages", e.tokens["coalition"],
		map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "unsigned"})
	if code != http.StatusUnauthorized || !strings.Contains(string(body), `"field":"signature"`) {
		t.Fatalf("unsigned write of a party with a key: %d %s", code, body)
	}
	// The operator appends to the record behind the server's back.
	st, err := sqlite.Open(context.Background(), e.data)
	if err != nil {
		t.Fatal(err)
	}
	var forged int64
	err = st.Update(context.Background(), func(tx store.Tx) error {
		rec, err := audit.Append(tx, "coalition", "message_acked", audit.Everyone, map[string]any{"id": "m-1", "party": "coalition", "reply": "we were warned"}, time.Now())
		forged = rec.Seq
		return err
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.cosigned()
	code2, out := e.check()
	if code2 != 3 || !strings.HasPrefix(out, "INCONSISTENT: ") || !strings.Contains(out, fmt.Sprintf("record %d", forged)) || !strings.Contains(out, "without coalition's signature") {
		t.Fatalf("check after the forged record %d: exit %d\n%s", forged, code2, out)
	}
	// The evidence holds the export, the forged record with it.
	e.wantEvidence(fmt.Sprintf("\n{\"seq\":%d,", forged))
	// From now on the coalition's witness withholds its cosignatures.
	e.exchange("two")
	e.withheld()
	// Offline, from the coalition's export and keys.
	export := filepath.Join(t.TempDir(), "export.jsonl")
	code, body, err = do(e.client, "GET", e.srv.base+"/v1/audit", e.tokens["coalition"], nil)
	if err != nil || code != 200 {
		t.Fatalf("export: %d %v", code, err)
	}
	if err := os.WriteFile(export, body, 0o600); err != nil {
		t.Fatal(err)
	}
	var key struct {
		PublicKey string `json:"public_key"`
	}
	e.getJSON("/v1/audit/key", e.tokens["coalition"], &key)
	cmd := exec.Command(e.bin, "audit", "verify", "--file", export, "--key", key.PublicKey, "--party-keys", e.partyKeys)
	out2, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out2), fmt.Sprintf("record %d", forged)) {
		t.Fatalf("audit verify --party-keys: %v\n%s", err, out2)
	}
	// Without the forged record (an export up to it) the statements verify.
	cmd = exec.Command(e.bin, "audit", "verify", "--file", export, "--key", key.PublicKey)
	if out3, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the chain itself verifies: %v\n%s", err, out3)
	}
}

// TestOperatorReattachesSignedStatement: the operator holds back a genuine
// request the coalition signed (its acknowledgment of one message) and
// records it as the coalition's acknowledgment of another. The signature
// verifies and the chain and tree are intact, but the statement does not
// say what its record says: the coalition's check and an offline audit
// verify name the record.
func TestOperatorReattachesSignedStatement(t *testing.T) {
	e := newTrustEnvKeyed(t, true)
	ctx := context.Background()
	russia := client.New(e.srv.base, e.tokens["russia"])
	first, err := russia.PostMessage(ctx, client.NewMessage{To: []string{"coalition"}, Kind: "request", Text: "hold your altitude"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := russia.PostMessage(ctx, client.NewMessage{To: []string{"coalition"}, Kind: "notice", Text: "we are turning"})
	if err != nil {
		t.Fatal(err)
	}
	e.cosigned()
	e.mustCheckOK()
	// The coalition's signed acknowledgment of the first, held back.
	body := []byte(`{"reply":"holding"}`)
	req, err := http.NewRequest("POST", e.srv.base+"/v1/hotline/messages/"+first.ID+"/ack", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	pub := partykey.Public(e.coalitionKey)
	if err := httpsig.Sign(req, body, e.coalitionKey, partykey.ID(pub), time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := (&httpsig.Verifier{Keys: func(string) (ed25519.PublicKey, error) { return pub, nil }}).Verify(req, body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Recorded as the acknowledgment of the second.
	db, err := sqlite.Open(ctx, e.data)
	if err != nil {
		t.Fatal(err)
	}
	var forged int64
	err = db.Update(ctx, func(tx store.Tx) error {
		rec, err := audit.Append(tx, "coalition", "message_acked", audit.For("coalition", "russia"),
			map[string]any{"id": second.ID, "party": "coalition", "state": "acknowledged", "late": false, "reply": audit.Seal("holding", "coalition", "russia")}, time.Now())
		if err != nil {
			return err
		}
		forged = rec.Seq
		sealed := audit.Seal(base64.StdEncoding.EncodeToString(body), "coalition", "russia")
		_, err = audit.Append(tx, "coalition", audit.KindStatement, audit.For("coalition", "russia"),
			service.StatementContent{Statement: st, Covers: audit.Covers{From: rec.Seq, To: rec.Seq}, Body: &sealed}, time.Now())
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.cosigned()
	code, out := e.check()
	if code != 3 || !strings.HasPrefix(out, "INCONSISTENT: ") || !strings.Contains(out, fmt.Sprintf("record %d", forged+1)) || !strings.Contains(out, "message "+second.ID+" differs from the request") {
		t.Fatalf("check after the re-attached statement (records %d, %d): exit %d\n%s", forged, forged+1, code, out)
	}
	export := filepath.Join(t.TempDir(), "export.jsonl")
	code, got, err := do(e.client, "GET", e.srv.base+"/v1/audit", e.tokens["coalition"], nil)
	if err != nil || code != 200 {
		t.Fatalf("export: %d %v", code, err)
	}
	if err := os.WriteFile(export, got, 0o600); err != nil {
		t.Fatal(err)
	}
	var key struct {
		PublicKey string `json:"public_key"`
	}
	e.getJSON("/v1/audit/key", e.tokens["coalition"], &key)
	out2, err := exec.Command(e.bin, "audit", "verify", "--file", export, "--key", key.PublicKey, "--party-keys", e.partyKeys).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out2), "message "+second.ID+" differs from the request") {
		t.Fatalf("audit verify --party-keys: %v\n%s", err, out2)
	}
}

// TestAuditExportChecksCosignatures: an export cut from the store by the
// CLI ends with the checkpoint the server published, cosigned by the
// coalition's witness; audit verify checks each cosignature against the
// witnesses' keys (from the rules in the export, or --witness-keys) and
// names an unknown or a bad one.
func TestAuditExportChecksCosignatures(t *testing.T) {
	e := newTrustEnv(t)
	e.exchange("one")
	size := e.cosigned()
	// The stored checkpoint follows the published one.
	export := filepath.Join(t.TempDir(), "export.jsonl")
	deadline := time.Now().Add(30 * time.Second)
	for {
		runCLI(t, e.bin, "audit", "export", "--data", e.data, "--out", export)
		b, err := os.ReadFile(export)
		if err != nil {
			t.Fatal(err)
		}
		ls := strings.Split(strings.TrimSpace(string(b)), "\n")
		var cp struct {
			LogCheckpoint string `json:"log_checkpoint"`
		}
		_ = json.Unmarshal([]byte(ls[len(ls)-1]), &cp)
		if f := strings.Split(cp.LogCheckpoint, "\n"); len(f) > 2 && f[1] == fmt.Sprint(size) && strings.Contains(cp.LogCheckpoint, "— coalition.test/witness ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CLI's export does not end with the cosigned checkpoint of size %d:\n%s", size, b[max(0, len(b)-600):])
		}
		time.Sleep(200 * time.Millisecond)
	}
	keyFile := filepath.Join(e.data, audit.KeyFile)
	verify := func(file string, extra ...string) (int, string) {
		t.Helper()
		out, err := exec.Command(e.bin, append([]string{"audit", "verify", "--file", file, "--key", keyFile}, extra...)...).CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &ee):
			return ee.ExitCode(), string(out)
		}
		t.Fatal(err)
		return 0, ""
	}
	if code, out := verify(export); code != 0 || !strings.Contains(out, "export's rules keys name and verifies: cosigned by coalition") {
		t.Fatalf("audit verify of the CLI's export: exit %d\n%s", code, out)
	}
	b, _ := os.ReadFile(export)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last struct {
		LogCheckpoint string `json:"log_checkpoint"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	withCheckpoint := func(name, signed string) string {
		t.Helper()
		l, _ := json.Marshal(map[string]string{"log_checkpoint": signed})
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(strings.Join(append(lines[:len(lines)-1:len(lines)-1], string(l)), "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A cosignature by a witness no rules name.
	skey, _, err := note.GenerateKey(nil, "stranger.test/witness")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	text := last.LogCheckpoint[:strings.Index(last.LogCheckpoint, "\n\n")+1]
	cosigned, err := note.Sign(&note.Note{Text: text}, stranger)
	if err != nil {
		t.Fatal(err)
	}
	unknown := withCheckpoint("unknown.jsonl", last.LogCheckpoint+string(cosigned[len(text)+1:]))
	if code, out := verify(unknown); code != 1 || !strings.Contains(out, "stranger.test/witness") || !strings.Contains(out, "unknown") {
		t.Fatalf("audit verify with an unknown cosignature: exit %d\n%s", code, out)
	}
	// The coalition witness's cosignature altered.
	i := strings.Index(last.LogCheckpoint, "— coalition.test/witness ")
	j := i + strings.Index(last.LogCheckpoint[i:], "\n")
	bad := withCheckpoint("bad.jsonl", last.LogCheckpoint[:j-6]+"AAAA=="+last.LogCheckpoint[j:])
	if code, out := verify(bad); code != 1 || !strings.Contains(out, "coalition.test/witness does not verify") {
		t.Fatalf("audit verify with a bad cosignature: exit %d\n%s", code, out)
	}
	// Keys given in a file win over the rules: another key for the
	// coalition's witness makes its cosignature unknown.
	_, otherVKey, err := note.GenerateKey(nil, "coalition.test/witness")
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(otherVKey)
	if err != nil {
		t.Fatal(err)
	}
	wkeys := filepath.Join(t.TempDir(), "witness-keys")
	if err := os.WriteFile(wkeys, []byte("coalition "+cvkey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := verify(export, "--witness-keys", wkeys); code != 1 || !strings.Contains(out, "coalition.test/witness") {
		t.Fatalf("audit verify --witness-keys with another key: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(wkeys, []byte("coalition "+e.wvkey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := verify(export, "--witness-keys", wkeys); code != 0 || !strings.Contains(out, "--witness-keys keys name and verifies: cosigned by coalition") {
		t.Fatalf("audit verify --witness-keys: exit %d\n%s", code, out)
	}
	// A file of no keys is refused: read as none, it let the stranger's
	// cosignature through as checked.
	if err := os.WriteFile(wkeys, []byte("# no witness yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := verify(unknown, "--witness-keys", wkeys); code != 2 || !strings.Contains(out, "no key") {
		t.Fatalf("audit verify --witness-keys with no key in the file: exit %d\n%s", code, out)
	}
}

// wantEvidence checks that the coalition's check kept one evidence file,
// holding want, and no copy of an export beside it.
func (e *trustEnv) wantEvidence(want string) {
	e.t.Helper()
	ev, _ := filepath.Glob(filepath.Join(e.wstate, "check", "evidence", "*"))
	if len(ev) != 1 {
		e.t.Fatalf("evidence files %v, want one", ev)
	}
	b, err := os.ReadFile(ev[0])
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(string(b), want) {
		e.t.Fatalf("the evidence does not hold %q:\n%.2000s", want, b)
	}
	if left, _ := filepath.Glob(filepath.Join(e.wstate, "check", "export-*")); len(left) != 0 {
		e.t.Fatalf("copies of exports left behind: %v", left)
	}
}
