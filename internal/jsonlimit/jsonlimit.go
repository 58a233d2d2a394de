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
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/deconflict/deconflict/internal/fielderr"
)

// MaxDepth is how deeply objects and arrays may nest in a body (the body
// itself is level 1). A volume needs 5 (its footprint's coordinates); the
// rest is for a party's own details.
const MaxDepth = 32

// Check refuses b when its objects and arrays nest deeper than MaxDepth,
// when it is not valid UTF-8, or when an object names a member twice,
// naming the member of the top-level object the nesting, the invalid byte
// or the object is in (the body when it is not in one, or when the byte
// is in a member's name). It only counts brackets and names outside
// strings; the syntax is the decoder's to check.
func Check(b []byte) error {
	invalidAt := -1
	if !utf8.Valid(b) {
		invalidAt = firstInvalid(b)
	}
	// The objects and arrays open around the byte read, the outermost
	// first.
	var open []frame
	inString, escaped := false, false
	// inName: the string being read is the name of a member.
	inName := false
	var member string // of the top-level object
	start := 0
	field := func() string {
		if member == "" || inName && len(open) == 1 {
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
				inString = false
				if inName {
					inName = false
					// Named as written; compared as read.
					raw := b[start:i]
					name := unquote(raw)
					top := &open[len(open)-1]
					if len(open) == 1 {
						member = string(raw)
					}
					if top.names[name] {
						if len(open) == 1 {
							return fielderr.Errorf(name, "given twice in the body: which one counts would depend on who reads it")
						}
						return fielderr.Errorf(member, "an object in it names %q twice: which one counts would depend on who reads it", name)
					}
					if top.names == nil {
						top.names = map[string]bool{}
					}
					top.names[name] = true
				}
			}
			continue
		}
		switch c {
		case '"':
			inString, start = true, i+1
			inName = len(open) > 0 && open[len(open)-1].nameNext
		case ':':
			if len(open) > 0 {
				open[len(open)-1].nameNext = false
			}
		case ',':
			if len(open) > 0 {
				top := &open[len(open)-1]
				top.nameNext = top.object
			}
		case '{', '[':
			open = append(open, frame{object: c == '{', nameNext: c == '{'})
			if len(open) > MaxDepth {
				return fielderr.Errorf(field(), "nested more than %d levels deep", MaxDepth)
			}
		case '}', ']':
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		}
	}
	return nil
}

// frame is an object or array open in a body: for an object, whether a
// member's name comes next and the names it gave.
type frame struct {
	object   bool
	nameNext bool
	names    map[string]bool
}

// unquote is the string a JSON string's contents (between the quotes)
// stand for: raw as it is when it holds no escape.
func unquote(raw []byte) string {
	if !bytes.Contains(raw, []byte{'\\'}) {
		return string(raw)
	}
	var s string
	if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s); err != nil {
		return string(raw) // not JSON: the decoder says so
	}
	return s
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
