package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestStoreFlagsEnvironmentAndFlags(t *testing.T) {
	t.Setenv("DECONFLICT_DATA", "/from/env")
	t.Setenv("DECONFLICT_STORE", "")
	parse := func(args ...string) storeFlags {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var sf storeFlags
		sf.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return sf
	}
	if sf := parse(); sf.data != "/from/env" {
		t.Fatalf("environment ignored: %q", sf.data)
	}
	if sf := parse("--data", "/from/flag"); sf.data != "/from/flag" {
		t.Fatalf("the flag must win over the environment: %q", sf.data)
	}
	if _, err := openStore("", "mysql://x"); err == nil {
		t.Fatal("an unsupported store URL was accepted")
	}
	if _, err := openStore("", ""); err == nil {
		t.Fatal("no data directory was accepted")
	}
}

func TestPartyCommand(t *testing.T) {
	dir := t.TempDir()
	run := func(want int, args ...string) string {
		var out, errb bytes.Buffer
		if code := runMain(args, &out, &errb); code != want {
			t.Fatalf("deconflict %s: exit %d, want %d: %s", strings.Join(args, " "), code, want, errb.String())
		}
		return out.String()
	}
	tok := lastLine(run(0, "party", "add", "coalition", "--data", dir))
	if len(tok) < 22 || strings.Contains(tok, " ") {
		t.Fatalf("the last line is not a token alone: %q", tok)
	}
	run(1, "party", "add", "coalition", "--data", dir) // exists
	run(2, "party", "add", "Bad Name", "--data", dir)
	run(2, "party", "add", "Bad_name", "--data", dir)
	run(2, "party", "add", "--data", dir)
	list := run(0, "party", "list", "--data", dir)
	if !strings.Contains(list, "coalition") || strings.Contains(list, tok) {
		t.Fatalf("list: %s", list)
	}
	tok2 := lastLine(run(0, "party", "rotate", "coalition", "--data", dir))
	if tok2 == tok {
		t.Fatal("rotate gave the same token")
	}
	run(0, "party", "revoke", "coalition", "--data", dir)
	if list := run(0, "party", "list", "--data", dir); !strings.Contains(list, "true") {
		t.Fatalf("revoked party not shown disabled: %s", list)
	}
	op := lastLine(run(0, "party", "add", "operator", "--operator", "--data", dir))
	if op == "" {
		t.Fatal("no operator token")
	}
	run(1, "party", "revoke", "nobody", "--data", dir)
}
