//go:build !unix

package translog

import (
	"errors"
	"os"
)

// mapFile is not available here: FileHashes reads the file.
func mapFile(*os.File, int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapFile([]byte) error { return nil }

// lockFile cannot lock here: two processes opening one hash file are not
// told apart.
func lockFile(*os.File) error { return nil }
