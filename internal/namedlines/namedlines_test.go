package namedlines

import (
	"bufio"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestEachSkipsBlankLinesAndComments(t *testing.T) {
	in := "# keys\n\n  coalition   ed25519:AAAA \nrussia\tX Y\n   # indented comment\n"
	var got [][]string
	if err := Each(strings.NewReader(in), func(f []string) error {
		got = append(got, f)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"coalition", "ed25519:AAAA"}, {"russia", "X", "Y"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %q, want %q", got, want)
	}
}

func TestEachNamesTheLineAtFault(t *testing.T) {
	bad := errors.New("want two fields")
	err := Each(strings.NewReader("a b\n\n# c\nd\n"), func(f []string) error {
		if len(f) != 2 {
			return bad
		}
		return nil
	})
	if !errors.Is(err, bad) || !strings.HasPrefix(err.Error(), "line 4: ") {
		t.Fatalf("error %v, want line 4 wrapping %v", err, bad)
	}
}

func TestEachReportsAnOverlongLine(t *testing.T) {
	err := Each(strings.NewReader("a b\n\n"+strings.Repeat("x", 1<<17)), func([]string) error { return nil })
	if !errors.Is(err, bufio.ErrTooLong) || !strings.HasPrefix(err.Error(), "line 3: ") {
		t.Fatalf("error %v, want line 3 wrapping %v", err, bufio.ErrTooLong)
	}
}

func ExampleEach() {
	tokens := map[string]string{}
	err := Each(strings.NewReader("# PARTY TOKEN\ncoalition s3cret\n\nrussia t0ken\n"), func(f []string) error {
		if len(f) != 2 {
			return errors.New("want PARTY TOKEN")
		}
		tokens[f[0]] = f[1]
		return nil
	})
	fmt.Println(len(tokens), tokens["russia"], err)
	// Output: 2 t0ken <nil>
}

// FuzzEach checks that any input gives entries of non-empty fields without
// white space, none starting a comment, and never more entries than lines.
func FuzzEach(f *testing.F) {
	f.Add("coalition ed25519:AAAA\n# c\n\nrussia t\n")
	f.Add("\x00 \t\r\n#\n a\u00a0b \n")
	f.Fuzz(func(t *testing.T, in string) {
		entries := 0
		err := Each(strings.NewReader(in), func(fields []string) error {
			entries++
			if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
				t.Fatalf("entry %q from %q", fields, in)
			}
			for _, field := range fields {
				if field == "" || strings.ContainsAny(field, " \t\n\r\v\f") {
					t.Fatalf("field %q from %q", field, in)
				}
			}
			return nil
		})
		if lines := strings.Count(in, "\n") + 1; entries > lines {
			t.Fatalf("%d entries from %d lines", entries, lines)
		}
		// fn refuses nothing: the only error is a line too long to read,
		// named, so that the operator finds it.
		if err != nil && (!errors.Is(err, bufio.ErrTooLong) || !strings.HasPrefix(err.Error(), "line ")) {
			t.Fatalf("error %v from %d bytes", err, len(in))
		}
	})
}

// TestEachSkipsAByteOrderMark: a file saved by an editor that starts it
// with a byte order mark names its first party as written; the mark was
// glued to the name, and the entry refused as an unknown party.
func TestEachSkipsAByteOrderMark(t *testing.T) {
	var got [][]string
	if err := Each(strings.NewReader("\ufeffcoalition s3cret\r\nrussia t0ken\r\n"), func(f []string) error {
		got = append(got, f)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"coalition", "s3cret"}, {"russia", "t0ken"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %q, want %q", got, want)
	}
}
