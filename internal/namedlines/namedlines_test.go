package namedlines

import (
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
	err := Each(strings.NewReader(strings.Repeat("x", 1<<17)), func([]string) error { return nil })
	if err == nil {
		t.Fatal("a line past the scanner's limit was accepted")
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
