package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpListsEverySubcommand(t *testing.T) {
	var out bytes.Buffer
	if code := runMain([]string{"help"}, &out, &out); code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for name := range commands {
		if !strings.Contains(out.String(), "  "+name) {
			t.Errorf("help does not list %q:\n%s", name, out.String())
		}
	}
}

func TestUnknownSubcommandExits2(t *testing.T) {
	var out bytes.Buffer
	if code := runMain([]string{"no-such-thing"}, &out, &out); code != 2 {
		t.Fatalf("unknown subcommand exited %d, want 2", code)
	}
}
