package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// schemaChecker validates every response the tests receive against the
// OpenAPI document, with a small JSON-schema subset: $ref, type (also a
// list of types), required, properties, additionalProperties=false, items,
// enum, maxItems.
type schemaChecker struct {
	t   testing.TB
	doc map[string]any

	mu      sync.Mutex
	checked map[string]bool // "METHOD template status" seen
}

func newSchemaChecker(t testing.TB) *schemaChecker {
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return &schemaChecker{t: t, doc: doc, checked: map[string]bool{}}
}

// template finds the document path matching a concrete path.
func (c *schemaChecker) template(path string) (string, bool) {
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(path, "/")
	paths := c.doc["paths"].(map[string]any)
	// The most specific template wins, as in the mux: /v1/volumes/preview
	// over /v1/volumes/{id}.
	best, bestLiterals := "", -1
	for tpl := range paths {
		ts := strings.Split(tpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		match, literals := true, 0
		for i := range ts {
			if ts[i] == segs[i] {
				literals++
			} else if !(strings.HasPrefix(ts[i], "{") && segs[i] != "") {
				match = false
				break
			}
		}
		if match && literals > bestLiterals {
			best, bestLiterals = tpl, literals
		}
	}
	return best, bestLiterals >= 0
}

func (c *schemaChecker) check(method, path string, resp *http.Response, body []byte) {
	c.t.Helper()
	tpl, ok := c.template(path)
	if !ok {
		if resp.StatusCode == http.StatusNotFound {
			return // a probe of a route that does not exist
		}
		c.t.Errorf("%s %s: path not in the OpenAPI document", method, path)
		return
	}
	opAny, ok := c.doc["paths"].(map[string]any)[tpl].(map[string]any)[strings.ToLower(method)]
	if !ok {
		if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotFound {
			return
		}
		c.t.Errorf("%s %s: method not in the OpenAPI document", method, tpl)
		return
	}
	responses := opAny.(map[string]any)["responses"].(map[string]any)
	r, ok := responses[strconv.Itoa(resp.StatusCode)]
	if !ok {
		r, ok = responses["default"]
	}
	if !ok {
		c.t.Errorf("%s %s: status %d not documented", method, tpl, resp.StatusCode)
		return
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	content, _ := r.(map[string]any)["content"].(map[string]any)
	media, ok := content[ct].(map[string]any)
	if !ok {
		c.t.Errorf("%s %s: status %d content type %q not documented", method, tpl, resp.StatusCode, ct)
		return
	}
	c.mu.Lock()
	c.checked[fmt.Sprintf("%s %s %d", method, tpl, resp.StatusCode)] = true
	c.mu.Unlock()
	if ct != "application/json" && ct != "application/problem+json" {
		return
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		c.t.Errorf("%s %s: body is not JSON: %v", method, tpl, err)
		return
	}
	if err := c.validate(media["schema"], v, "$"); err != nil {
		c.t.Errorf("%s %s -> %d: %v\nbody: %.500s", method, tpl, resp.StatusCode, err, body)
	}
}

// checkValue validates a JSON value against a named component schema.
func (c *schemaChecker) checkValue(name string, b []byte) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		c.t.Errorf("%s: not JSON: %v", name, err)
		return
	}
	if err := c.validate(map[string]any{"$ref": "#/components/schemas/" + name}, v, "$"); err != nil {
		c.t.Errorf("%s: %v\n%.500s", name, err, b)
	}
}

func (c *schemaChecker) resolve(s any) map[string]any {
	m, _ := s.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		m, _ = c.doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
		if m == nil {
			return map[string]any{"not": "unresolved " + ref}
		}
	}
	return m
}

func typeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func (c *schemaChecker) validate(schema any, v any, at string) error {
	s := c.resolve(schema)
	if s == nil {
		return nil
	}
	if n, ok := s["not"].(string); ok {
		return fmt.Errorf("%s: schema %s", at, n)
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch x := t.(type) {
		case string:
			types = []string{x}
		case []any:
			for _, y := range x {
				types = append(types, y.(string))
			}
		}
		got := typeOf(v)
		okType := slices.Contains(types, got) || (got == "integer" && slices.Contains(types, "number"))
		if !okType {
			return fmt.Errorf("%s: type %s, want %v", at, got, types)
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		if !slices.Contains(enum, v) {
			return fmt.Errorf("%s: %v not in %v", at, v, enum)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asSlice(s["required"]) {
			if _, ok := x[r.(string)]; !ok {
				return fmt.Errorf("%s: required property %q missing", at, r)
			}
		}
		for k, val := range x {
			if ps, ok := props[k]; ok {
				if err := c.validate(ps, val, at+"."+k); err != nil {
					return err
				}
			} else if ap, ok := s["additionalProperties"].(bool); ok && !ap {
				return fmt.Errorf("%s: property %q not allowed", at, k)
			}
		}
	case []any:
		if mx, ok := s["maxItems"].(float64); ok && float64(len(x)) > mx {
			return fmt.Errorf("%s: %d items, at most %v", at, len(x), mx)
		}
		if items, ok := s["items"]; ok {
			for i, it := range x {
				if err := c.validate(items, it, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestSchemaValidatorRefuses keeps the validator honest: a checker that
// accepts everything would make the document tests pass vacuously.
func TestSchemaValidatorRefuses(t *testing.T) {
	c := newSchemaChecker(t)
	bad := []struct {
		schema string
		body   string
	}{
		{"Me", `{"party":"a"}`},
		{"Me", `{"party":1,"operator":false}`},
		{"Alert", `{"id":"a","kind":"bogus","level":"x","state":"raised","aircraft":[]}`},
		{"PositionsAnswer", `{"accepted":1,"rejected":[{"index":"0","error":"x"}]}`},
		{"Problem", `{"type":"t","title":"x"}`},
	}
	for _, b := range bad {
		var v any
		dec := json.NewDecoder(strings.NewReader(b.body))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if err := c.validate(map[string]any{"$ref": "#/components/schemas/" + b.schema}, v, "$"); err == nil {
			t.Errorf("%s accepted %s", b.schema, b.body)
		}
	}
}
