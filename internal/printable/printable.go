// Package printable owns the one rule for what text from outside may
// contain: valid UTF-8 without control characters (C0, DEL, C1) and without
// the invisible formatting characters that make two strings look alike or
// reorder what a reader sees (zero-width spaces and joiners, the word
// joiner and the invisible operators, the soft hyphen, the left-to-right,
// right-to-left and Arabic letter marks, embeddings, overrides and
// isolates, the deprecated shaping and swapping controls, the byte order
// mark, tags: every format character Unicode says renders as nothing). Aircraft ids, callsigns, hotline threads
// and texts are checked with it at the edge, so that what one party sends
// can neither break what the service builds from it for another party (a
// hotline item, an audit record) nor show another party something else
// than it is.
package printable

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error says which character of a string is refused and where.
type Error struct {
	// Offset is the byte offset of the character in the string.
	Offset int
	// Rune is the refused character (utf8.RuneError for invalid UTF-8).
	Rune rune
	// Invalid is set when the string is not valid UTF-8 at Offset.
	Invalid bool
}

func (e *Error) Error() string {
	if e.Invalid {
		return fmt.Sprintf("not valid UTF-8 at byte %d", e.Offset)
	}
	return fmt.Sprintf("contains %U (%s) at byte %d", e.Rune, kind(e.Rune), e.Offset)
}

// Refused reports whether r is a control or invisible formatting character.
func Refused(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f: // C0, DEL, C1
		return true
	case r >= 0x200b && r <= 0x200f: // zero-width space, joiners, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // bidirectional embeddings and overrides
		return true
	case r >= 0x2066 && r <= 0x2069: // bidirectional isolates
		return true
	case r == 0xfeff: // byte order mark, zero-width no-break space
		return true
	case r == 0x061c: // Arabic letter mark: an invisible right-to-left mark
		return true
	case r == 0x00ad, r == 0x180e: // soft hyphen, Mongolian vowel separator
		return true
	case r >= 0x2060 && r <= 0x2064: // word joiner, invisible operators
		return true
	case r >= 0x206a && r <= 0x206f: // deprecated swapping and shaping controls
		return true
	case r >= 0x1bca0 && r <= 0x1bca3, r >= 0x1d173 && r <= 0x1d17a: // shorthand and musical format controls
		return true
	case r == 0xe0001, r >= 0xe0020 && r <= 0xe007f: // tags
		return true
	}
	return false
}

func kind(r rune) string {
	switch {
	case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
		return "a control character"
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return "a bidirectional formatting character"
	}
	return "an invisible formatting character"
}

// Check returns an *Error for the first refused character of s, or nil.
func Check(s string) error { return check(s, false) }

// CheckText is Check for free text written by a person: line feeds (U+000A)
// are allowed there, every other refused character is not.
func CheckText(s string) error { return check(s, true) }

func check(s string, lineFeeds bool) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++ // printable ASCII, the common case
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return &Error{Offset: i, Rune: r, Invalid: true}
		}
		if Refused(r) && !(lineFeeds && r == '\n') {
			return &Error{Offset: i, Rune: r}
		}
		i += size
	}
	return nil
}

// Escape returns s with each refused character (and each byte of invalid
// UTF-8) written as a Go-style escape (\x00, \u0085, \u200b), so that a
// text the service builds from stored parts passes Check whatever those
// parts hold. Strings that pass Check are returned unchanged.
func Escape(s string) string {
	if Check(s) == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case Refused(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case Refused(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case Refused(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
