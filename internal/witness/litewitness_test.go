package witness

import (
	"context"
	"crypto/ed25519"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/translog"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/note"
)

// tool finds a helper installed by scripts/install-test-deps.sh: on PATH
// or in the Go bin directory. Missing is a failure, not a skip: CI must
// run this test.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err == nil {
			gobin = filepath.Join(strings.TrimSpace(string(out)), "bin")
		}
	}
	p := filepath.Join(gobin, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not installed: run scripts/install-test-deps.sh (it builds filippo.io/torchwood's litewitness with GOTOOLCHAIN=go1.27.3)", name)
	}
	return p
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// background starts a process that the test ends.
func background(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(t.TempDir(), filepath.Base(name)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s output:\n%s", name, b)
		}
		logf.Close()
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPushToLitewitness pushes the log's checkpoints to litewitness, the
// C2SP tlog-witness of filippo.io/torchwood, a witness we did not write:
// it must cosign a growing log, its cosignatures must verify with its key,
// and it must refuse a fork signed with the same log key.
func TestPushToLitewitness(t *testing.T) {
	litewitness, witnessctl := tool(t, "litewitness"), tool(t, "witnessctl")
	sshAgent, sshKeygen, sshAdd := tool(t, "ssh-agent"), tool(t, "ssh-keygen"), tool(t, "ssh-add")
	dir, err := os.MkdirTemp("", "lw") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	// The witness key lives in an ssh-agent, as litewitness requires.
	keyPath := filepath.Join(dir, "witness")
	run(t, nil, sshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", keyPath)
	sock := filepath.Join(dir, "agent.sock")
	background(t, nil, sshAgent, "-D", "-a", sock)
	waitFor(t, "ssh-agent", func() bool { _, err := os.Stat(sock); return err == nil })
	agentEnv := []string{"SSH_AUTH_SOCK=" + sock}
	run(t, agentEnv, sshAdd, keyPath)
	fp := strings.Fields(run(t, nil, sshKeygen, "-l", "-E", "sha256", "-f", keyPath+".pub"))[1]
	pubLine, err := os.ReadFile(keyPath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		t.Fatal(err)
	}
	witnessPub := sshPub.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
	const witnessName = "witness.example/litewitness"
	plain, err := note.NewEd25519VerifierKey(witnessName, witnessPub)
	if err != nil {
		t.Fatal(err)
	}
	witnessVKey, err := fnote.VKeyToCosignatureV1(plain)
	if err != nil {
		t.Fatal(err)
	}

	_, logPriv, _ := ed25519.GenerateKey(nil)
	lg := newTestLog(t, logPriv)
	db := filepath.Join(dir, "litewitness.db")
	run(t, nil, witnessctl, "add-log", "-db", db, "-origin", lg.key.Origin())
	run(t, nil, witnessctl, "add-key", "-db", db, "-origin", lg.key.Origin(), "-key", lg.key.VerifierKey())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	background(t, nil, litewitness, "-db", db, "-listen", addr, "-ssh-agent", sock, "-name", witnessName, "-key", fp)
	waitFor(t, "litewitness", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	p, err := NewPusher(lg.key.Verifier(), lg.tree.ConsistencyProof, []Endpoint{{Party: "coalition", URL: "http://" + addr, VKey: witnessVKey}}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for round, n := range []int{1, 6, 33, 1} {
		signed, size := lg.grow(t, "record", n)
		lines := p.Push(context.Background(), signed, size)
		if len(lines) != 1 {
			t.Fatalf("round %d: litewitness gave %d cosignatures; status %+v", round, len(lines), p.Status())
		}
		_, cosigs, err := translog.Open(translog.AddSignatures(signed, lines...), lg.key.Origin(), lg.key.Verifier(), p.Verifiers()...)
		if err != nil || cosigs[witnessName].Line == "" {
			t.Fatalf("round %d: the cosignature does not verify: %v %v", round, cosigs, err)
		}
	}
	// The operator restores an older copy and continues differently with
	// the same log key: litewitness refuses it.
	fork := newTestLog(t, logPriv)
	fork.grow(t, "record", 7)
	forked, forkSize := fork.grow(t, "forged", 40)
	fp2, _ := NewPusher(fork.key.Verifier(), fork.tree.ConsistencyProof, []Endpoint{{Party: "coalition", URL: "http://" + addr, VKey: witnessVKey}}, 10*time.Second)
	if lines := fp2.Push(context.Background(), forked, forkSize); len(lines) != 0 {
		t.Fatal("litewitness cosigned a fork")
	}
	if st := fp2.Status()[0]; st.Failing == "" {
		t.Fatal("the fork's push is not reported failing")
	} else {
		t.Logf("fork refused: %s", st.Failing)
	}
}
