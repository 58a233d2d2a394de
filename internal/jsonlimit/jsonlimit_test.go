package jsonlimit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/deconflict/deconflict/internal/fielderr"
)

func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func TestCheck(t *testing.T) {
	cases := []struct {
		body, field string
	}{
		{`{"details":` + nested(MaxDepth-1) + `}`, ""},
		{`{"details":` + nested(MaxDepth) + `}`, "details"},
		{`{"a":1,"details":{"x":` + nested(10_000) + `}}`, "details"},
		{`{"a":"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"}`, ""},
		{`{"a\"":` + nested(MaxDepth) + `}`, `a\"`},
		{nested(MaxDepth + 1), "body"},
		{nested(MaxDepth), ""},
		// Not UTF-8: encoding/json would read U+FFFD for the byte.
		{"{\"to\":[\"russia\"],\"text\":\"climb\xff now\"}", "text"},
		{"{\"text\":\"ok\",\"ref\":{\"volume_id\":\"v\xc3\"}}", "ref"},
		{"{\"text\":\"ok\",\"te\xffxt\":\"x\"}", "body"},
		{"[\"\xe2\x80\"]", "body"},
		{"\"\xed\xa0\x80\"", "body"}, // a surrogate half
		{"{\"text\":\"caf\xc3\xa9 \u00e9 \xf0\x9f\x9b\xa9\"}", ""},
	}
	for _, c := range cases {
		err := Check([]byte(c.body))
		var fe *fielderr.Error
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%.40s...: refused: %v", c.body, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%.40s...: %v, want field %q", c.body, err, c.field)
		}
	}
}

// FuzzCheck: Check agrees with the depth of what encoding/json decodes,
// and refuses what is not UTF-8.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"]"}]}`))
	f.Add([]byte(nested(MaxDepth + 1)))
	f.Add([]byte(`"\\"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		if json.Unmarshal(b, &v) != nil {
			_ = Check(b) // never panics on anything
			return
		}
		if got, want := Check(b) == nil, depthOf(v) <= MaxDepth && utf8.Valid(b); got != want {
			t.Fatalf("Check accepts %v, depth %d, UTF-8 %v", got, depthOf(v), utf8.Valid(b))
		}
	})
}

func depthOf(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	}
	return 0
}
