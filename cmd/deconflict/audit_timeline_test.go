package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/audit"
)

// TestAuditTimeline: the timeline of a thread of an export, verified with
// the key when given one (and refused when the export does not verify),
// the list of what an export holds, and the flags' refusals.
func TestAuditTimeline(t *testing.T) {
	const n = 5
	dir := auditDataDir(t, n)
	tmp := t.TempDir()
	export := filepath.Join(tmp, "audit.jsonl")
	if code, _, stderr := runCmd("audit", "export", "--data", dir, "--out", export); code != 0 {
		t.Fatalf("export: %d %s", code, stderr)
	}
	key := filepath.Join(dir, audit.KeyFile)

	// Every message of the log is a thread of its own.
	code, list, stderr := runCmd("audit", "timeline", "--file", export, "--list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if code != 0 || len(lines) != n {
		t.Fatalf("--list: exit %d, %d lines, want %d\n%s%s", code, len(lines), n, list, stderr)
	}
	fields := strings.Split(lines[2], "\t")
	if fields[0] != "thread" || !strings.HasPrefix(fields[1], "t-") || !strings.Contains(fields[2], "notice from alpha: text alpha-bravo 2") {
		t.Fatalf("--list line %q", lines[2])
	}

	page := filepath.Join(tmp, "thread.html")
	code, stdout, stderr := runCmd("audit", "timeline", "--file", export, "--thread", fields[1], "--html", page, "--key", key)
	if code != 0 || !strings.Contains(stdout, page+": the timeline of thread "+fields[1]) {
		t.Fatalf("timeline: exit %d\n%s%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<title>Timeline: notice from alpha: text alpha-bravo 2</title>", "Verified: every hash link and signature", "alpha", "Notice from alpha to bravo"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Without a key the page says it is not verified; with nothing chosen
	// it is about one of the threads.
	code, stdout, stderr = runCmd("audit", "timeline", "--file", export, "--html", page)
	if b, _ := os.ReadFile(page); code != 0 || !bytes.Contains(b, []byte("Not verified")) {
		t.Fatalf("timeline without a key: exit %d\n%s%s", code, stdout, stderr)
	}

	// An altered export does not verify: no page.
	raw, _ := os.ReadFile(export)
	i := bytes.Index(raw, []byte("text alpha-bravo 2"))
	bad := bytes.Clone(raw)
	bad[i+len("text alpha-bravo ")] = '4'
	badFile := filepath.Join(tmp, "bad.jsonl")
	if err := os.WriteFile(badFile, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(tmp, "other.html")
	if code, _, stderr := runCmd("audit", "timeline", "--file", badFile, "--html", other, "--key", key); code != 1 || !strings.Contains(stderr, "BAD") {
		t.Errorf("an altered export: exit %d %s", code, stderr)
	}
	if _, err := os.Stat(other); err == nil {
		t.Errorf("a page was written from an export that does not verify")
	}

	for _, args := range [][]string{
		{"--html", page},
		{"--file", export},
		{"--file", export, "--html", page, "--alert", "a", "--thread", "b"},
		{"--file", export, "--html", page, "--alert", "no-such-alert"},
		{"--file", export, "--html", page, "--thread", "no-such-thread"},
		{"--file", filepath.Join(tmp, "missing.jsonl"), "--html", page},
		{"--file", export, "--html", page, "extra"},
	} {
		if code, _, stderr := runCmd(append([]string{"audit", "timeline"}, args...)...); code != 2 || stderr == "" {
			t.Errorf("audit timeline %q: exit %d, %q; want a usage error", args, code, stderr)
		}
	}
}
