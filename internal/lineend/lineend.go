// Package lineend recognises a text file whose lines end with a carriage
// return alone (CR, as classic Mac OS and some spreadsheets' "Macintosh"
// export write them). A reader that splits lines at line feeds reads such
// a file as one long line, and its faults then point at "line 1" with no
// hint why; the loaders of line-based files ask CROnly first and say so.
package lineend

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrCROnly says what is wrong and what to do about it.
var ErrCROnly = errors.New("the line endings are CR only (a carriage return without a line feed, as classic Mac OS wrote them), so the whole file reads as one line: save it with LF or CRLF line endings")

// PeekBytes is how much of a file Peek looks at: more than any header or
// first line of the files it is used on.
const PeekBytes = 64 << 10

// CROnly reports whether the first line of b (up to its line feed, or all
// of b without one) holds a carriage return that is not the last byte
// before that line feed: a line ended by a CR alone. A CRLF file, an LF
// file and a file of one line ended by CR are not.
func CROnly(b []byte) bool {
	if lf := bytes.IndexByte(b, '\n'); lf >= 0 {
		b = b[:lf]
	}
	cr := bytes.IndexByte(b, '\r')
	return cr >= 0 && cr < len(b)-1
}

// Peek returns a reader of what r holds and whether its first line (the
// first PeekBytes of r at most) is ended by a CR alone. It reads ahead
// without consuming: the reader returned gives every byte of r, and a
// read error is left for its reader to meet.
func Peek(r io.Reader) (io.Reader, bool) {
	br := bufio.NewReaderSize(r, PeekBytes)
	head, _ := br.Peek(PeekBytes)
	return br, CROnly(head)
}
