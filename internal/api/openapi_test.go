package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOpenAPIDocumentsEveryRoute walks the routes of the handler and checks
// that each is in the document, with its path parameters, and that the
// document is OpenAPI 3.1 and names no route that does not exist.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	e := &env{}
	registered := map[string]bool{"GET /metrics": true}
	for _, rt := range e.routesOf() {
		registered[rt.method+" "+rt.path] = true
		op, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s %s is not in the OpenAPI document", rt.method, rt.path)
			continue
		}
		if _, ok := op["responses"].(map[string]any)["default"]; !ok {
			t.Errorf("%s %s: no default (problem+json) response", rt.method, rt.path)
		}
		for _, seg := range strings.Split(rt.path, "/") {
			if !strings.HasPrefix(seg, "{") {
				continue
			}
			name := strings.Trim(seg, "{}")
			found := false
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				pm := p.(map[string]any)
				found = found || (pm["name"] == name && pm["in"] == "path")
			}
			if !found {
				t.Errorf("%s %s: path parameter %s not documented", rt.method, rt.path, name)
			}
		}
		if rt.maxBody > 0 && rt.method != "POST" && rt.method != "PUT" {
			t.Errorf("%s %s: body limit on a method without a body", rt.method, rt.path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !registered[strings.ToUpper(method)+" "+path] {
				t.Errorf("the document describes %s %s, which is not a route", strings.ToUpper(method), path)
			}
		}
	}
}

// TestOpenAPIServed checks the document is served as JSON to anyone.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.mustDo("GET", "/v1/openapi.json", "", nil, 200, nil)
	if string(b) != string(OpenAPI()) {
		t.Fatal("served document differs from the embedded one")
	}
	e.mustDo("GET", "/healthz", "", nil, 200, nil)
	e.mustDo("GET", "/readyz", "", nil, 200, nil)
}
