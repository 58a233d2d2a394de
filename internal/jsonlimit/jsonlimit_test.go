package jsonlimit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

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

// FuzzCheck: Check agrees with the depth of what encoding/json decodes.
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
		if got, want := Check(b) == nil, depthOf(v) <= MaxDepth; got != want {
			t.Fatalf("Check accepts %v, depth %d", got, depthOf(v))
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
