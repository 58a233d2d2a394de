package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// TestAsterixDumpReference: the command prints the rows of the reference
// recording (the package's own test checks every value) and the summary.
func TestAsterixDumpReference(t *testing.T) {
	ref := filepath.Join(reference.ASTERIX(t), "fj_cat062")
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"asterix", "dump", "--file", ref + ".ast"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "rec,block,rec_in_block,cat,") ||
		!strings.HasPrefix(lines[1], "0,0,0,62,6,128,,76810.3984375,I062/070,7733,406ec8,,BCS4907,1000,") {
		t.Fatalf("output:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "framing=raw") || !strings.Contains(stderr.String(), "cat062=7/1") {
		t.Fatalf("summary: %s", stderr.String())
	}
	for _, args := range [][]string{
		{"asterix"},
		{"asterix", "dump"},
		{"asterix", "dump", "--file", ref + ".ast", "--framing", "hdlc"},
		{"asterix", "dump", "--file", ref + ".expected.csv"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := runMain(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, stderr.String())
		}
	}
}
