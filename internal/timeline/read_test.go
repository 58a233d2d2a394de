package timeline

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

type failAfter struct{ err error }

func (f failAfter) Read([]byte) (int, error) { return 0, f.err }

// TestReadNamesTheLineItCouldNotRead: an export whose reading fails (a
// line longer than any record, a read error) is refused naming the line,
// as a malformed record is; the error said only "token too long".
func TestReadNamesTheLineItCouldNotRead(t *testing.T) {
	long := append([]byte("\n\n"), bytes.Repeat([]byte("a"), maxLineBytes+1)...)
	if _, err := Read(bytes.NewReader(long)); err == nil || !strings.HasPrefix(err.Error(), "line 3: longer than") {
		t.Errorf("a line too long: %v", err)
	}
	broken := errors.New("disk on fire")
	_, err := Read(io.MultiReader(strings.NewReader("\n\n"), failAfter{broken}))
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("a read error: %v", err)
	}
}

// TestReadSaysTheLineEndingsAreCROnly: an export saved with old Mac line
// endings read as one line, refused as altered or too long with no hint
// why; it is refused saying what its line endings are.
func TestReadSaysTheLineEndingsAreCROnly(t *testing.T) {
	rec := runScenario(t)
	if _, err := Read(bytes.NewReader(rec.exportAll)); err != nil {
		t.Fatal(err)
	}
	cr := bytes.ReplaceAll(rec.exportAll, []byte("\n"), []byte("\r"))
	if _, err := Read(bytes.NewReader(cr)); err == nil || !strings.HasPrefix(err.Error(), "line 1: the line endings are CR only") {
		t.Errorf("with CR-only line endings: %v", err)
	}

}
