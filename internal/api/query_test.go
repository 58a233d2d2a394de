package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// queryParamCase is one query parameter of a route: a value it is served
// with, and the other parameters the route needs (base).
type queryParamCase struct {
	name, value, base, body string
}

// queryParamsOfRoutes lists every query parameter each route reads; a
// route that reads none is listed with none, so that a route added
// without its parameters here fails TestQueryParameterGivenTwiceRefused.
func queryParamsOfRoutes(ts, later string) map[string][]queryParamCase {
	emptyCollection := `{"type":"FeatureCollection","features":[]}`
	return map[string][]queryParamCase{
		"GET /v1/tracks": {{name: "format", value: "geojson"}, {name: "bbox", value: "35,35,37,36"}},
		"GET /v1/volumes": {
			{name: "format", value: "kml"}, {name: "bbox", value: "35,35,37,36"}, {name: "alt", value: "0,10000"},
			{name: "from", value: ts}, {name: "to", value: later},
		},
		"POST /v1/volumes/preview": {
			{name: "format", value: "geojson", body: emptyCollection},
			{name: "start", value: ts, base: "format=geojson", body: emptyCollection},
			{name: "end", value: later, base: "format=geojson", body: emptyCollection},
			{name: "ground_m", value: "100", base: "format=geojson", body: emptyCollection},
			{name: "unlimited_m", value: "20000", base: "format=geojson", body: emptyCollection},
		},
		"GET /v1/hotline/messages": {{name: "thread", value: "t"}, {name: "since", value: ts}, {name: "limit", value: "5"}},
		"GET /v1/audit":            {{name: "from", value: "1"}},
		"GET /v1/log/proof/inclusion": {
			{name: "index", value: "0", base: "size=1"}, {name: "size", value: "1", base: "index=0"},
		},
		"GET /v1/log/proof/consistency": {
			{name: "from", value: "0", base: "size=1"}, {name: "size", value: "1", base: "from=0"},
		},
		"GET /v1/events": {{name: "after", value: "0"}, {name: "snapshot", value: "1"}, {name: "live", value: "1"}},

		"GET /healthz": nil, "GET /readyz": nil, "GET /v1/openapi.json": nil, "GET /v1/me": nil,
		"GET /v1/rules": nil, "PUT /v1/rules": nil, "GET /v1/rules/proposals": nil,
		"POST /v1/rules/{version}/accept": nil, "POST /v1/rules/{version}/reject": nil,
		"GET /v1/parties": nil, "POST /v1/parties": nil, "POST /v1/parties/{name}/rotate": nil,
		"GET /v1/parties/{name}/keys": nil, "POST /v1/parties/{name}/keys": nil,
		"POST /v1/parties/{name}/keys/{keyid}/retire": nil, "POST /v1/parties/{name}/revoke": nil,
		"POST /v1/positions": nil, "GET /v1/alerts": nil, "GET /v1/alerts/{id}/resolution": nil,
		"POST /v1/volumes": nil, "POST /v1/volumes/alternatives": nil, "GET /v1/volumes/{id}": nil,
		"PUT /v1/volumes/{id}": nil, "POST /v1/volumes/{id}/state": nil, "POST /v1/hotline/messages": nil,
		"POST /v1/hotline/messages/{id}/ack": nil, "GET /v1/audit/key": nil, "GET /v1/log/key": nil,
		"GET /v1/log/checkpoint": nil, "GET /v1/log/witnesses": nil,
	}
}

// TestQueryParameterGivenTwiceRefused: every route took the first of a
// query parameter given twice (?after=5&after=9 resumed after 5, the 9
// dropped in silence). Each parameter of each route, served given once,
// is refused given twice, with the same value or another, with a 400
// problem naming it and saying it was given twice.
func TestQueryParameterGivenTwiceRefused(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC().Truncate(time.Second)
	ts, later := now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	table := queryParamsOfRoutes(ts, later)
	documented := documentedQueryParams(t)
	for _, rt := range e.routesOf() {
		key := rt.method + " " + rt.path
		cases, ok := table[key]
		if !ok {
			t.Errorf("%s: not in queryParamsOfRoutes; list the query parameters it reads", key)
			continue
		}
		var names []string
		for _, c := range cases {
			names = append(names, c.name)
		}
		slices.Sort(names)
		if doc := documented[key]; !slices.Equal(names, doc) {
			t.Errorf("%s: reads %v, the OpenAPI document describes %v", key, names, doc)
		}
		token := e.tokens["coalition"]
		for _, c := range cases {
			once := c.name + "=" + url.QueryEscape(c.value)
			if c.base != "" {
				once = c.base + "&" + once
			}
			var body any
			if c.body != "" {
				body = c.body
			}
			if rt.stream && rt.path == "/v1/events" {
				s, code := e.tryStreamPath(token, rt.path+"?"+once, "")
				if s == nil {
					t.Fatalf("%s?%s: %d, want a stream", rt.path, once, code)
				}
				s.close()
			} else if code, b, _ := e.do(rt.method, rt.path+"?"+once, token, body); code != http.StatusOK {
				t.Fatalf("%s %s?%s: %d %s, want 200", rt.method, rt.path, once, code, b)
			}
			for _, second := range []string{c.value, c.value + "0"} {
				twice := once + "&" + c.name + "=" + url.QueryEscape(second)
				code, b, hdr := e.doUnlessStream(rt.method, rt.path+"?"+twice, token, c.body)
				var p Problem
				if code != http.StatusBadRequest || hdr.Get("Content-Type") != "application/problem+json" ||
					json.Unmarshal(b, &p) != nil || p.Field != c.name || !strings.Contains(p.Detail, "given twice") {
					t.Errorf("%s %s?%s: %d %s; want 400 problem+json naming %s, given twice", rt.method, rt.path, twice, code, b, c.name)
				}
			}
		}
	}
}

// doUnlessStream is do for a request that may open an event stream,
// which never ends: its answer is read unless it is a stream.
func (e *env) doUnlessStream(method, path, token, body string) (int, []byte, http.Header) {
	e.t.Helper()
	if method != "GET" || !strings.HasPrefix(path, "/v1/events") {
		var b any
		if body != "" {
			b = body
		}
		return e.do(method, path, token, b)
	}
	s, code := e.tryStreamPath(token, path, "")
	if s != nil {
		s.close()
		return code, nil, http.Header{"Content-Type": {"text/event-stream"}}
	}
	return e.do(method, path, token, nil)
}

// documentedQueryParams returns the query parameters the OpenAPI document
// describes, sorted, by "METHOD path".
func documentedQueryParams(t *testing.T) map[string][]string {
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In string }
		}
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for _, p := range op.Parameters {
				if p.In == "query" {
					key := strings.ToUpper(method) + " " + path
					out[key] = append(out[key], p.Name)
				}
			}
		}
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out
}

// TestQueryIntegersAreCanonical: ?from= of the audit export, ?limit= of
// the hotline and ?after= of the events read "01" and "+1" as 1 (and
// after, " 1"): one request spelled several ways. Each is refused with a
// 400 naming the parameter; live read any value, "0" too, as set. A pair
// that does not parse (a ';', a bad escape) was dropped, the parameter
// read as absent: ?after=5;after=9 streamed from the first event.
func TestQueryIntegersAreCanonical(t *testing.T) {
	e := newEnv(t, Options{})
	for _, c := range []struct{ path, field string }{
		{"/v1/audit?from=01", "from"},
		{"/v1/audit?from=%2B1", "from"},
		{"/v1/audit?from=0", "from"},
		{"/v1/hotline/messages?limit=05", "limit"},
		{"/v1/hotline/messages?limit=%2B5", "limit"},
		{"/v1/hotline/messages?limit=0", "limit"},
		{"/v1/events?after=00", "after"},
		{"/v1/events?after=%2B0", "after"},
		{"/v1/events?after=%200", "after"},
		{"/v1/events?after=-0", "after"},
		{"/v1/events?after=5;after=9", "after"},
		{"/v1/events?snapshot=1&after=%zz", "after"},
		{"/v1/audit?from=2;x=1", "from"},
		{"/v1/hotline/messages?thread=%", "thread"},
		{"/v1/events?live=0", "live"},
		{"/v1/events?live=yes", "live"},
	} {
		code, b, hdr := e.doUnlessStream("GET", c.path, e.tokens["coalition"], "")
		var p Problem
		if code != http.StatusBadRequest || hdr.Get("Content-Type") != "application/problem+json" || json.Unmarshal(b, &p) != nil || p.Field != c.field {
			t.Errorf("%s: %d %s; want 400 problem+json naming %s", c.path, code, b, c.field)
		}
	}
	// Given empty, an optional parameter is absent, as it was.
	for _, path := range []string{"/v1/audit?from=", "/v1/hotline/messages?limit=&since=&thread="} {
		if code, b, _ := e.do("GET", path, e.tokens["coalition"], nil); code != http.StatusOK {
			t.Errorf("%s: %d %s, want 200", path, code, b)
		}
	}
}

// TestLastEventIDGivenOnceAndCanonical: the header that stands for ?after=
// was read as its first value when given twice, and "00" or "+0" as 0.
// It is held to the parameter's rules: 400 naming it.
func TestLastEventIDGivenOnceAndCanonical(t *testing.T) {
	e := newEnv(t, Options{})
	for _, values := range [][]string{{"00"}, {"+0"}, {" 0x"}, {"0", "0"}, {"0", "1"}} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["coalition"])
		req.Header["Last-Event-Id"] = values
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		var p Problem
		if resp.StatusCode == http.StatusBadRequest {
			_ = json.NewDecoder(resp.Body).Decode(&p)
		}
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusBadRequest || p.Field != "Last-Event-ID" {
			t.Errorf("Last-Event-ID %q: %d %+v; want 400 naming Last-Event-ID", values, resp.StatusCode, p)
		}
	}
	// Given once, canonically, it resumes as ever.
	if s, code := e.tryStreamPath(e.tokens["coalition"], "/v1/events", "0"); s == nil {
		t.Fatalf("Last-Event-ID 0: %d", code)
	}
}
