package jsonlimit

import (
	"bytes"
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
		// A member given twice: which one a reader takes depends on the
		// reader (encoding/json the last, others the first, or none).
		{`{"text":"climb","to":["russia"],"text":"descend"}`, "text"},
		{`{"text":"climb","t\u0065xt":"descend"}`, "text"},
		{`{"to":["russia"],"ref":{"alert_id":"a","volume_id":"v","alert_id":"b"}}`, "ref"},
		{`{"details":{"a":[{"x":1,"y":{"x":2}},{"x":3}]},"ref":{"x":1}}`, ""},
		{`[{"a":1},{"a":2}]`, ""},
		{`{"a":"a","b":{"a":"b"},"c":"a"}`, ""},
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
		dup := duplicateNames(b)
		if got, want := Check(b) == nil, depthOf(v) <= MaxDepth && utf8.Valid(b) && !dup; got != want {
			t.Fatalf("Check accepts %v, depth %d, UTF-8 %v, a member twice %v", got, depthOf(v), utf8.Valid(b), dup)
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

// duplicateNames reports whether an object of the JSON b (which decodes)
// names a member twice, read by encoding/json's tokens.
func duplicateNames(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object  bool
		names   map[string]bool
		nameNow bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch x := tok.(type) {
		case json.Delim:
			switch x {
			case '{', '[':
				if top != nil && top.object {
					top.nameNow = true
				}
				stack = append(stack, &frame{object: x == '{', names: map[string]bool{}, nameNow: true})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.object && top.nameNow {
				if top.names[x] {
					return true
				}
				top.names[x] = true
				top.nameNow = false
				continue
			}
		}
		if top != nil && top.object {
			top.nameNow = true
		}
	}
}
