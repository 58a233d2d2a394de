// Package jsonlimit owns the limits on the shape of JSON accepted from
// outside, beyond its size: how deeply values nest, and that its text is
// UTF-8. Deep nesting costs every later reader of the value (the audit
// record canonicalises it, the console renders it) and encoding/json
// gives up at 10,000 levels; a body nested beyond MaxDepth is refused at
// the edge, naming its field. JSON exchanged is UTF-8 (RFC 8259), and
// encoding/json replaces each invalid byte of a string with U+FFFD: a
// party's text would be stored, and shown to others, otherwise than it
// was sent and signed; a body that is not UTF-8 is refused at the edge,
// naming its field, as the service's texts promise.
package jsonlimit

import (
	"unicode/utf8"

	"github.com/deconflict/deconflict/internal/fielderr"
)

// MaxDepth is how deeply objects and arrays may nest in a body (the body
// itself is level 1). A volume needs 5 (its footprint's coordinates); the
// rest is for a party's own details.
const MaxDepth = 32

// Check refuses b when its objects and arrays nest deeper than MaxDepth,
// or when it is not valid UTF-8, naming the member of the top-level object
// the nesting or the invalid byte is in (the body when it is not in one,
// or is in a member's name). It only counts brackets outside strings; the
// syntax is the decoder's to check.
func Check(b []byte) error {
	invalidAt := -1
	if !utf8.Valid(b) {
		invalidAt = firstInvalid(b)
	}
	depth := 0
	inString, escaped := false, false
	// inName: the string being read is the name of a top-level member
	// (nameNext: the next string at depth 1 is one).
	inName, nameNext := false, false
	var lastString, member string
	start := 0
	field := func() string {
		if member == "" || inName {
			return "body"
		}
		return member
	}
	for i, c := range b {
		if i == invalidAt {
			return fielderr.Errorf(field(), "not valid UTF-8 at byte %d", i)
		}
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString, inName = false, false
				if depth == 1 {
					lastString = string(b[start:i])
				}
			}
			continue
		}
		switch c {
		case '"':
			inString, start = true, i+1
			inName = depth == 1 && nameNext
		case ':':
			if depth == 1 {
				member, nameNext = lastString, false
			}
		case ',':
			nameNext = depth == 1
		case '{', '[':
			depth++
			nameNext = depth == 1 && c == '{'
			if depth > MaxDepth {
				return fielderr.Errorf(field(), "nested more than %d levels deep", MaxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// firstInvalid is the offset of the first byte of b that is not valid
// UTF-8 (b is not valid UTF-8).
func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}
