package printable

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestRefusedIsTheControlsAndTheListedFormatCharacters compares Refused
// over every code point with the Unicode categories: every control (Cc) is
// refused, and every other refused character is a format character (Cf)
// of the listed ranges.
func TestRefusedIsTheControlsAndTheListedFormatCharacters(t *testing.T) {
	listed := [][2]rune{{0x200b, 0x200f}, {0x202a, 0x202e}, {0x2066, 0x2069}, {0xfeff, 0xfeff},
		{0x061c, 0x061c}, {0x00ad, 0x00ad}, {0x180e, 0x180e}, {0x2060, 0x2064}, {0x206a, 0x206f},
		{0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f}}
	inListed := func(r rune) bool {
		for _, l := range listed {
			if r >= l[0] && r <= l[1] {
				return true
			}
		}
		return false
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		want := unicode.Is(unicode.Cc, r) || inListed(r)
		if got := Refused(r); got != want {
			t.Fatalf("Refused(%U) = %v, want %v", r, got, want)
		}
		if inListed(r) && !unicode.Is(unicode.Cf, r) {
			t.Fatalf("%U is listed but not a format character", r)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		in     string
		offset int
		bad    bool
	}{
		{"SU24-1", 0, false},
		{"Ünïcødé ✈ 東京", 0, false},
		{"", 0, false},
		{"AB\x00C", 2, true},
		{"\tA", 0, true},
		{"A\u0085", 1, true},
		{"A\u200bB", 1, true},
		{"ab\u202eCBA", 2, true},
		{"x\u2067", 1, true},
		{"\ufeffA", 0, true},
		// Invisible too: the Arabic letter mark reorders like a right-to-
		// left mark, the word joiner is the zero-width no-break space's
		// successor, the soft hyphen and tags render as nothing.
		{"SU24\u061c-1", 4, true},
		{"SU\u206024", 2, true},
		{"SU\u00ad24", 2, true},
		{"SU24\U000e0041", 4, true},
		{"\u0600\u06dd", 0, false}, // visible Arabic number signs
		{"A\x7f", 1, true},
		{"A\xffB", 1, true},
	} {
		err := Check(c.in)
		if (err != nil) != c.bad {
			t.Errorf("Check(%q) = %v", c.in, err)
			continue
		}
		var pe *Error
		if c.bad && (!errors.As(err, &pe) || pe.Offset != c.offset) {
			t.Errorf("Check(%q) = %v, want offset %d", c.in, err, c.offset)
		}
	}
	if err := CheckText("line one\nline two"); err != nil {
		t.Errorf("a line feed in a text: %v", err)
	}
	if err := CheckText("line one\r\nline two"); err == nil {
		t.Error("a carriage return in a text is accepted")
	}
	if err := Check("a\nb"); err == nil {
		t.Error("a line feed in a name is accepted")
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"SU24":        "SU24",
		"SU\x0024":    `SU\x0024`,
		"a\u202eb":    `a\u202eb`,
		"a\u0085b":    `a\u0085b`,
		"a\xffb\xfe":  `a\xffb\xfe`,
		"é\nç":        `é\x0aç`,
		"a\U000e0041": `a\U000e0041`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzEscape: whatever a string holds, its escape passes Check, and a
// string that passes Check is its own escape.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"SU24", "\x00", "a\u202eb", "\xff\xfe", "\u2066x\u2069", "é\n", strings.Repeat("\u200b", 3)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if err := Check(e); err != nil {
			t.Fatalf("Escape(%q) = %q fails Check: %v", s, e, err)
		}
		if Check(s) == nil && e != s {
			t.Fatalf("Escape changed a clean string %q into %q", s, e)
		}
		if err := CheckText(s); err == nil && !utf8.ValidString(s) {
			t.Fatalf("CheckText accepted invalid UTF-8 %q", s)
		}
	})
}
