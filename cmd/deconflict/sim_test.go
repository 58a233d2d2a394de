package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimScenarioFileErrorNamesTheFile: a scenario file that does not load
// is refused (exit 2) naming the file, then where in it: the operator may
// hold several.
func TestSimScenarioFileErrorNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.json")
	if err := os.WriteFile(path, []byte("{\"name\":\"x\",\n  \"report_every_s\": x5}"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"sim", "--scenario", path, "--token-file", os.DevNull}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, stderr.String())
	}
	for _, want := range []string{path, "line 2, column 21"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	}
}
