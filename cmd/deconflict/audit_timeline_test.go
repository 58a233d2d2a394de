package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
)

// TestAuditTimeline: the timeline of a thread of an export, verified with
// the key when given one (and refused when the export does not verify),
// the list of what an export holds, and the flags' refusals.
func TestAuditTimeline(t *testing.T) {
	const n = 5
	dir, tmp, export := exportedAuditData(t, n)
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

// TestAuditTimelineEscapesTheExport: an export is a file anyone may have
// edited; what --list and the summary print of it (ids, names) cannot
// drive the terminal or forge a line or a column.
func TestAuditTimelineEscapesTheExport(t *testing.T) {
	const n = 5
	_, tmp, export := exportedAuditData(t, n)
	raw, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(raw, []byte(`text alpha-bravo 2`), []byte(`text alpha\u001b[2J\u0007bravo 2`), 1)
	edited = bytes.Replace(edited, []byte(`"from":"alpha"`), []byte(`"from":"alpha\nforged\tline"`), 1)
	if bytes.Equal(edited, raw) {
		t.Fatal("the export holds no text to edit")
	}
	if err := os.WriteFile(export, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	code, list, stderr := runCmd("audit", "timeline", "--file", export, "--list")
	lines := strings.Split(strings.TrimSuffix(list, "\n"), "\n")
	if code != 0 || len(lines) != n {
		t.Fatalf("--list: exit %d, %d lines, want %d\n%s%s", code, len(lines), n, list, stderr)
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\x1b\x07") || strings.Count(l, "\t") != 6 {
			t.Errorf("--list line %q", l)
		}
	}
	if !strings.Contains(list, `alpha\x1b[2J\x07bravo 2`) || !strings.Contains(list, `alpha\x0aforged\x09line`) {
		t.Errorf("--list does not show the text escaped:\n%s", list)
	}
	fields := strings.Split(lines[2], "\t")
	page := filepath.Join(tmp, "thread.html")
	code, stdout, stderr := runCmd("audit", "timeline", "--file", export, "--thread", fields[1], "--html", page)
	if code != 0 || strings.ContainsAny(stdout, "\x1b\x07\t") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("timeline: exit %d\n%q%s", code, stdout, stderr)
	}
}

// exportedAuditData is a data directory whose audit log holds n threads
// (auditDataDir), a temporary directory, and the export of the log in it.
func exportedAuditData(t *testing.T, n int) (dir, tmp, export string) {
	t.Helper()
	dir, tmp = auditDataDir(t, n), t.TempDir()
	export = filepath.Join(tmp, "audit.jsonl")
	if code, _, stderr := runCmd("audit", "export", "--data", dir, "--out", export); code != 0 {
		t.Fatalf("export: %d %s", code, stderr)
	}
	return dir, tmp, export
}

// TestAuditTimelineStreams: the export is read a line at a time, once per
// pass (verification, index, the subject's records), saying how far it is
// on stderr; standard input is read as a file is; and an export that
// changes between two passes is refused, lest the page show other records
// than those verified.
func TestAuditTimelineStreams(t *testing.T) {
	dir, tmp, export := exportedAuditData(t, 5)
	key := filepath.Join(dir, audit.KeyFile)
	defer func(every time.Duration) { timelineProgressEvery = every }(timelineProgressEvery)
	timelineProgressEvery = 0

	page := filepath.Join(tmp, "file.html")
	code, _, stderr := runCmd("audit", "timeline", "--file", export, "--html", page, "--key", key)
	if code != 0 {
		t.Fatalf("timeline: exit %d %s", code, stderr)
	}
	for _, pass := range []string{"verifying: ", "indexing: ", "reading the records of thread t-"} {
		if !strings.Contains(stderr, "deconflict audit timeline: "+pass) {
			t.Errorf("stderr says nothing of %q:\n%s", pass, stderr)
		}
	}

	in, err := os.Open(export)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	defer func(stdin *os.File) { os.Stdin = stdin }(os.Stdin)
	os.Stdin = in
	fromStdin := filepath.Join(tmp, "stdin.html")
	if code, _, stderr := runCmd("audit", "timeline", "--file", "-", "--html", fromStdin, "--key", key); code != 0 {
		t.Fatalf("timeline of standard input: exit %d %s", code, stderr)
	}
	a, _ := os.ReadFile(page)
	b, _ := os.ReadFile(fromStdin)
	strip := regexp.MustCompile(`(?s)<footer.*</footer>|From the audit export [^,]*,`) // when, and the file's name
	if len(a) == 0 || !bytes.Equal(strip.ReplaceAll(a, nil), strip.ReplaceAll(b, nil)) {
		t.Errorf("the page of standard input differs from the file's")
	}

	ex, err := openTimelineExport(export, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	drain := func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }
	if err := ex.pass("first", drain); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(export, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n")
	f.Close()
	if err := ex.pass("second", drain); err == nil || !strings.Contains(err.Error(), "changed while it was read") {
		t.Fatalf("an export changed between passes: %v", err)
	}
}
