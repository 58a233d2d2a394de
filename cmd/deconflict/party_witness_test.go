package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// witnessVKey makes the cosignature verifier key of a new witness.
func witnessVKey(t *testing.T, name string) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(nil, name)
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return cvkey
}

// TestPartyAddWitness: `party add --witness-url --witness-vkey` names the
// party's witness in the rules: in the initial rules on a store without
// any, as a proposal afterwards, which every party (the new one included)
// accepts before it is in force; bad witness flags are usage errors that
// create nothing.
func TestPartyAddWitness(t *testing.T) {
	dir := t.TempDir()
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := runMain(args, &out, &errOut); code != want {
			t.Fatalf("%v exited %d, want %d: %s%s", args, code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	coalitionVKey, russiaVKey := witnessVKey(t, "coalition.test/witness"), witnessVKey(t, "russia.test/witness")
	out := run(0, "party", "add", "coalition", "--data", dir, "--witness-url", "http://coalition.test:7380", "--witness-vkey", coalitionVKey)
	if !strings.Contains(out, "initial rules (version 1), in force") {
		t.Fatalf("first party with a witness:\n%s", out)
	}
	coalition := lastLine(out)
	out = run(0, "party", "add", "russia", "--data", dir, "--witness-url", "http://russia.test:7380", "--witness-vkey", russiaVKey)
	if !strings.Contains(out, "proposed as rules version 2") {
		t.Fatalf("second party with a witness:\n%s", out)
	}
	russia := lastLine(out)
	if out := run(2, "party", "add", "other", "--data", dir, "--witness-url", "http://other.test"); !strings.Contains(out, "go together") {
		t.Errorf("--witness-url alone:\n%s", out)
	}
	if out := run(2, "party", "add", "other", "--data", dir, "--witness-url", "http://other.test", "--witness-vkey", "nonsense"); !strings.Contains(out, "vkey") {
		t.Errorf("a bad --witness-vkey:\n%s", out)
	}
	if out := run(2, "party", "add", "other", "--data", dir, "--witness-url", "ftp://other.test", "--witness-vkey", russiaVKey); !strings.Contains(out, "url") {
		t.Errorf("a bad --witness-url:\n%s", out)
	}
	if out := run(0, "party", "list", "--data", dir); strings.Contains(out, "other") {
		t.Errorf("a refused party add created the party:\n%s", out)
	}

	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0", Ready: func(base string, _ *service.Service) { ready <- base }})
	}()
	base := <-ready
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	witnesses := func() []string {
		t.Helper()
		r, err := client.New(base, coalition).Rules(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range r.Witnesses {
			out = append(out, w.Party+" "+w.URL+" "+w.VKey)
		}
		return out
	}
	if got := witnesses(); len(got) != 1 || got[0] != "coalition http://coalition.test:7380 "+coalitionVKey {
		t.Fatalf("witnesses in force before the proposal is accepted: %v", got)
	}
	tokFile := filepath.Join(dir, "tokens.txt")
	if err := os.WriteFile(tokFile, []byte("coalition "+coalition+"\nrussia "+russia+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = run(0, "rules", "show", "--server", base, "--token-file", tokFile, "--party", "russia")
	if !strings.Contains(out, "proposal of version 2") || !strings.Contains(out, "waiting for coalition, russia") || !strings.Contains(out, "russia.test:7380") {
		t.Fatalf("the witness's proposal:\n%s", out)
	}
	run(0, "rules", "accept", "2", "--server", base, "--token-file", tokFile, "--party", "russia")
	run(0, "rules", "accept", "2", "--server", base, "--token-file", tokFile, "--party", "coalition")
	if got := witnesses(); len(got) != 2 || got[1] != "russia http://russia.test:7380 "+russiaVKey {
		t.Fatalf("witnesses in force once both accepted: %v", got)
	}
}
