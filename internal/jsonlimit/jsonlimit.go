// Package jsonlimit owns the limit on the shape of JSON accepted from
// outside, beyond its size: how deeply values nest. Deep nesting costs
// every later reader of the value (the audit record canonicalises it, the
// console renders it) and encoding/json gives up at 10,000 levels; a body
// nested beyond MaxDepth is refused at the edge, naming its field.
package jsonlimit

import "github.com/deconflict/deconflict/internal/fielderr"

// MaxDepth is how deeply objects and arrays may nest in a body (the body
// itself is level 1). A volume needs 5 (its footprint's coordinates); the
// rest is for a party's own details.
const MaxDepth = 32

// Check refuses b when its objects and arrays nest deeper than MaxDepth,
// naming the member of the top-level object the nesting is in (the body
// when it is not in one). It only counts brackets outside strings; the
// syntax is the decoder's to check.
func Check(b []byte) error {
	depth := 0
	inString, escaped := false, false
	var lastString, member string
	start := 0
	for i, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				if depth == 1 {
					lastString = string(b[start:i])
				}
			}
			continue
		}
		switch c {
		case '"':
			inString, start = true, i+1
		case ':':
			if depth == 1 {
				member = lastString
			}
		case '{', '[':
			depth++
			if depth > MaxDepth {
				field := member
				if field == "" {
					field = "body"
				}
				return fielderr.Errorf(field, "nested more than %d levels deep", MaxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
