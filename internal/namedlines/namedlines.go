// Package namedlines reads the small text files operators keep beside the
// service: one entry per line, whitespace-separated fields (for example
// "PARTY ed25519:<base64>" or "PARTY TOKEN"), with blank lines and lines
// starting with # skipped; a byte order mark before the first line is
// not part of it. It owns only that layout; what a field means is
// the caller's.
package namedlines

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Each calls fn with the fields of every entry of r, in order, and the
// entry's 1-based line number. An error of fn stops the reading and is
// returned prefixed with "line N: ", so that the operator can find the
// entry at fault.
// A line the scanner cannot read (longer than its 64 KiB) is an error
// naming that line too.
func Each(r io.Reader, fn func(fields []string) error) error {
	sc := bufio.NewScanner(r)
	line := 1
	for ; sc.Scan(); line++ {
		text := sc.Text()
		if line == 1 {
			// An editor's byte order mark is not part of the first
			// entry's name.
			text = strings.TrimPrefix(text, "\ufeff")
		}
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := fn(strings.Fields(text)); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line, err)
	}
	return nil
}
