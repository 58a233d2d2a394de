package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/translog"
	"github.com/deconflict/deconflict/internal/witness"
)

// startWitness runs `deconflict witness` and returns its URL and vkey.
func startWitness(t *testing.T, bin string, args ...string) (*exec.Cmd, string, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"witness", "--listen", "127.0.0.1:0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	var url, vkey string
	for (url == "" || vkey == "") && sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "listening on "); i >= 0 {
			url = line[i+len("listening on "):]
		}
		if v, ok := strings.CutPrefix(line, "vkey "); ok {
			vkey = v
		}
	}
	if url == "" || vkey == "" {
		t.Fatal("the witness did not state its address and key")
	}
	return cmd, url, vkey
}

func TestWitnessCommand(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	keyFile, state := filepath.Join(dir, "coalition-witness.pem"), filepath.Join(dir, "state")
	runCLI(t, bin, "key", "new", "--out", keyFile)
	_, logPriv, _ := ed25519.GenerateKey(nil)
	logKey, err := translog.NewLogKey("deconflict.test/log", logPriv)
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := translog.NewTree(&translog.MemHashes{})
	grow := func(n int, prefix string) ([]byte, int64) {
		for i := range n {
			if _, err := tree.Append([]byte(fmt.Sprint(prefix, tree.Size(), i))); err != nil {
				t.Fatal(err)
			}
		}
		root, _ := tree.Root(tree.Size())
		signed, err := logKey.Sign(tree.Size(), root)
		if err != nil {
			t.Fatal(err)
		}
		return signed, tree.Size()
	}
	args := []string{"--key", keyFile, "--state", state, "--log-vkey", logKey.VerifierKey(), "--name", "coalition.test/witness"}
	cmd, url, vkey := startWitness(t, bin, args...)
	push := func(url string) []string {
		p, err := witness.NewPusher(logKey.Verifier(), tree.ConsistencyProof, []witness.Endpoint{{Party: "coalition", URL: url, VKey: vkey}}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		signed, size := grow(5, "r")
		lines := p.Push(context.Background(), signed, size)
		if len(lines) == 0 {
			t.Fatalf("no cosignature: %+v", p.Status())
		}
		return lines
	}
	push(url)
	push(url)
	// Restarted, it still holds what it cosigned: a log that lost it is
	// told the size and continues from there.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("witness exit: %v", err)
	}
	_, url, vkey2 := startWitness(t, bin, args...)
	if vkey2 != vkey {
		t.Fatal("the witness's key changed across a restart")
	}
	push(url)
	// A fork is refused.
	tree, _ = translog.NewTree(&translog.MemHashes{})
	grow(3, "r")
	forked, size := grow(30, "forged")
	p, _ := witness.NewPusher(logKey.Verifier(), tree.ConsistencyProof, []witness.Endpoint{{Party: "coalition", URL: url, VKey: vkey}}, 10*time.Second)
	if lines := p.Push(context.Background(), forked, size); len(lines) != 0 {
		t.Fatal("the witness cosigned a fork")
	}
	// Bad flags exit 2.
	if err := exec.Command(bin, "witness", "--key", keyFile).Run(); err == nil || err.(*exec.ExitError).ExitCode() != 2 {
		t.Fatalf("witness without --state: %v", err)
	}
}
