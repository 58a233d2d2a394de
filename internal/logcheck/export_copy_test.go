package logcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordLine finds the line of a record in the copy of an export kept in
// a file, wherever it lies (the first, the last without a newline), and
// no line for a record the export does not hold (seq 1 is not seq 10).
func TestRecordLineInTheCopyOfAnExport(t *testing.T) {
	lines := []string{
		`{"seq":1,"leaf_index":0,"hash":"a"}`,
		`{"checkpoint":{"seq":1}}`,
		`{"seq":10,"leaf_index":9,"hash":"` + strings.Repeat("b", 100_000) + `"}`,
		`{"seq":11,"leaf_index":10,"hash":"c"}`,
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		seq  int64
		want string
	}{{1, lines[0]}, {10, lines[2]}, {11, lines[3]}, {2, ""}, {12, ""}} {
		got, err := recordLine(f, c.seq)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("record %d: %.80q, want %.80q", c.seq, got, c.want)
		}
	}
}
