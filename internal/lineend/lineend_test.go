package lineend

import (
	"io"
	"strings"
	"testing"
)

func TestCROnly(t *testing.T) {
	for in, want := range map[string]bool{
		"a,b\rc,d\r":                     true,
		"a,b\rc,d":                       true,
		"id\r\r":                         true,
		"a,b\nc,d\n":                     false,
		"a,b\r\nc,d\r\n":                 false,
		"a,b\r":                          false, // one line, ended by CR: read as it is
		"a,b\nc\rd\n":                    false, // a stray CR after the first line is the reader's to refuse
		"":                               false,
		"\r\n":                           false,
		strings.Repeat("x", 100) + "\ry": true,
	} {
		if got := CROnly([]byte(in)); got != want {
			t.Errorf("CROnly(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestPeekKeepsEveryByte: Peek looks ahead without consuming, even when
// the file is longer than it looks at.
func TestPeekKeepsEveryByte(t *testing.T) {
	in := "id,x\r" + strings.Repeat("1,2\r", PeekBytes)
	r, crOnly := Peek(strings.NewReader(in))
	b, err := io.ReadAll(r)
	if !crOnly || err != nil || string(b) != in {
		t.Fatalf("Peek: CR only %v, %d bytes of %d, %v", crOnly, len(b), len(in), err)
	}
	r, crOnly = Peek(strings.NewReader("id\nx\n"))
	if b, _ := io.ReadAll(r); crOnly || string(b) != "id\nx\n" {
		t.Fatalf("Peek of an LF file: CR only %v, %q", crOnly, b)
	}
}
