package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// The rules subcommand against a real server: the operator proposes from a
// file, each party accepts from its terminal, show prints the change field
// by field and who is awaited.
func TestRulesCommand(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	tokens := map[string]string{}
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0", Ready: func(base string, svc *service.Service) {
			for _, p := range []string{"coalition", "russia"} {
				tokens[p], _ = svc.CreateParty(context.Background(), p)
			}
			ready <- base
		}})
	}()
	base := <-ready
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	tokFile := filepath.Join(dir, "tokens.txt")
	lines := "operator " + strings.TrimSpace(readFile(t, filepath.Join(dir, "operator.token"))) + "\n"
	for p, tok := range tokens {
		lines += p + " " + tok + "\n"
	}
	if err := os.WriteFile(tokFile, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	change := filepath.Join(dir, "change.json")
	if err := os.WriteFile(change, []byte(`{"volume_visibility":"need_to_know"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append(args, "--server", base, "--token-file", tokFile)
		if code := runMain(args, &out, &errOut); code != want {
			t.Fatalf("%v exited %d, want %d: %s%s", args, code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	out := run(0, "rules", "propose", "--file", change, "--party", "operator")
	if !strings.Contains(out, "proposal of version 2") || !strings.Contains(out, `volume_visibility        "all" -> "need_to_know"`) ||
		!strings.Contains(out, "waiting for coalition, russia") {
		t.Fatalf("propose printed:\n%s", out)
	}
	out = run(0, "rules", "accept", "2", "--party", "coalition")
	if !strings.Contains(out, "coalition accepted") || !strings.Contains(out, "content rules_sha256 ") || !strings.Contains(out, "waiting for russia") {
		t.Fatalf("accept printed:\n%s", out)
	}
	out = run(0, "rules", "show", "--party", "russia")
	if !strings.Contains(out, "rules in force: version 1") || !strings.Contains(out, "proposal of version 2") || !strings.Contains(out, "waiting for russia") {
		t.Fatalf("show printed:\n%s", out)
	}
	run(0, "rules", "accept", "2", "--party", "russia")
	out = run(0, "rules", "show", "--party", "russia")
	if !strings.Contains(out, "rules in force: version 2") || !strings.Contains(out, `"volume_visibility": "need_to_know"`) || !strings.Contains(out, "no open proposal") {
		t.Fatalf("show after both accepted:\n%s", out)
	}
	// A party cannot propose; a bad version is a usage error.
	if out := run(1, "rules", "propose", "--file", change, "--party", "coalition"); !strings.Contains(out, "403") && !strings.Contains(strings.ToLower(out), "forbidden") {
		t.Errorf("a party proposing:\n%s", out)
	}
	run(2, "rules", "accept", "two", "--party", "coalition")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
