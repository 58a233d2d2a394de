//go:build unix

package translog

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestFileHashesLockedToOneOpener: a second opener of a hash file (another
// replica sharing the data directory) is refused with ErrInUse instead of
// truncating what the first has mapped, and gets it once the first closed.
func TestFileHashesLockedToOneOpener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tree.hashes")
	first, err := OpenFileHashes(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Append([]Hash{{1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileHashes(path); !errors.Is(err, ErrInUse) {
		t.Fatalf("second open while the first holds the file: %v, want ErrInUse", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := OpenFileHashes(path)
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	defer second.Close()
}
