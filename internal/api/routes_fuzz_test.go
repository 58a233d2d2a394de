package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
)

// FuzzRoutes sends any body and any query to every route, as every kind of
// caller, and asserts that nothing the caller sends gets a 5xx or crashes
// the server: bad input is the caller's fault and answers 4xx
// problem+json.
func FuzzRoutes(f *testing.F) {
	e := newEnv(f, Options{})
	h := NewHandler(e.svc, Options{RatePerSecond: 1e9, RateBurst: 1e9, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9, RequestTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}) // a 5xx logs its cause
	routes := e.routesOf()
	tokens := []string{e.tokens["coalition"], e.tokens["russia"], e.operator, "", "not-a-token"}

	// One existing volume and message, so that routes with an id reach
	// past the lookup.
	var vol wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(10, 10, "seed", nil), 201, &vol)
	var msg struct{ ID string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "seed"}, 201, &msg)
	if err := e.svc.PublishLog(context.Background()); err != nil {
		f.Fatal(err)
	}

	now := time.Now().UTC().Truncate(time.Second)
	ts := now.Format(time.RFC3339)
	rulesBody, _ := json.Marshal(rules.Default())
	volumeBody, _ := json.Marshal(circleVolume(20, 20, "x", nil))
	deep := `{"details":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`
	seeds := map[string][]struct{ param, query, body string }{
		"PUT /v1/rules":                  {{"", "", string(rulesBody)}, {"", "", strings.Replace(string(rulesBody), `"time_buffer_s":60`, `"time_buffer_s":1e15`, 1)}, {"", "", `{"performance":[{"class":"uas","max_alt_m":-1}]}`}},
		"POST /v1/parties":               {{"", "", `{"name":"zeta"}`}, {"", "", `{"name":"` + strings.Repeat("z", 300) + `"}`}},
		"POST /v1/parties/{name}/rotate": {{"zeta", "", ``}},
		"POST /v1/parties/{name}/revoke": {{"nobody", "", ``}},
		"POST /v1/positions": {
			{"", "", `{"reports":[{"aircraft":"A1","callsign":"C1","time":"` + ts + `","lat":35,"lon":36,"alt_m":5000,"vel_east_mps":100}]}`},
			{"", "", `{"reports":[{"aircraft":"A1","time":"9999-01-01T00:00:00Z","lat":35,"lon":36,"alt_m":5000}]}`},
			{"", "", `{"reports":[{"aircraft":"A\u0000","time":"` + ts + `","lat":1e308,"lon":36}]}`},
		},
		"GET /v1/tracks": {{"", "bbox=35,35,37,36", ""}, {"", "bbox=1e999,0,0,0", ""}, {"", "format=geojson", ""}},
		"POST /v1/volumes/preview": {
			{"", "format=geojson&start=" + ts + "&end=" + ts, `{"type":"FeatureCollection","features":[]}`},
			{"", "format=openair&start=9999-01-01T00:00:00Z", "AC R\nAN TEST\nAL GND\nAH 5000ft\nDP 35:00:00 N 036:00:00 E\nDP 35:10:00 N 036:00:00 E\nDP 35:10:00 N 036:10:00 E\n"},
		},
		"GET /v1/log/proof/inclusion":   {{"", "index=0&size=1", ""}, {"", "index=9223372036854775807&size=9223372036854775807", ""}},
		"GET /v1/log/proof/consistency": {{"", "from=1&size=2", ""}, {"", "from=0&size=0", ""}},
		"GET /v1/alerts":                {{"", "", ""}},
		"POST /v1/volumes":              {{"", "", string(volumeBody)}, {"", "", deep}, {"", "", strings.Replace(string(volumeBody), `"start":"`, `"start":"9999`, 1)}},
		"GET /v1/volumes": {
			{"", "bbox=35,35,37,36&alt=0,10000&from=" + ts + "&to=" + ts, ""}, {"", "format=openair", ""}, {"", "format=kml", ""},
			{"", "from=9999-01-01T00:00:00Z", ""}, {"", "to=1600-01-01T00:00:00Z", ""}, {"", "bbox=170,-10,-170,10", ""},
		},
		"GET /v1/volumes/{id}":        {{vol.ID, "", ""}, {"x", "", ""}},
		"PUT /v1/volumes/{id}":        {{vol.ID, "", strings.Replace(string(volumeBody), `{`, `{"version":"`+vol.Version+`",`, 1)}},
		"POST /v1/volumes/{id}/state": {{vol.ID, "", `{"state":"activated","version":"` + vol.Version + `"}`}},
		"POST /v1/hotline/messages": {
			{"", "", `{"to":["russia"],"kind":"notice","text":"hello","ref":{"volume_id":"` + vol.ID + `"}}`},
			{"", "", `{"to":["russia"],"kind":"notice","thread":"volume:` + vol.ID + `","text":"x"}`},
		},
		"GET /v1/hotline/messages":                    {{"", "since=" + ts + "&limit=5&thread=t", ""}, {"", "since=9999-01-01T00:00:00Z", ""}, {"", "limit=-1", ""}},
		"POST /v1/hotline/messages/{id}/ack":          {{msg.ID, "", `{"reply":"ok"}`}, {msg.ID, "", ``}},
		"GET /v1/audit":                               {{"", "from=1", ""}, {"", "from=-9223372036854775808", ""}, {"", "from=1&from=2", ""}},
		"GET /v1/audit/key":                           {{"", "", ""}},
		"GET /v1/log/key":                             {{"", "", ""}},
		"GET /v1/log/checkpoint":                      {{"", "", ""}},
		"GET /v1/log/witnesses":                       {{"", "", ""}},
		"GET /v1/parties/{name}/keys":                 {{"coalition", "", ""}},
		"POST /v1/parties/{name}/keys":                {{"coalition", "", `{"public_key":"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}`}, {"coalition", "", `{"public_key":"ed25519:AAAA"}`}},
		"POST /v1/parties/{name}/keys/{keyid}/retire": {{"coalition", "", ``}},
		"GET /v1/events":                              {{"", "after=0", ""}, {"", "after=99999999999", ""}, {"", "after=0&after=1", ""}, {"", "snapshot=1&snapshot=true", ""}},
		"GET /v1/me":                                  {{"", "", ""}},
		"GET /v1/rules":                               {{"", "", ""}},
		"GET /v1/rules/proposals":                     {{"", "", ""}},
		"POST /v1/rules/{version}/accept":             {{"2", "", ""}, {"x", "", "{}"}, {"99999999999999999999", "", ""}},
		"POST /v1/rules/{version}/reject":             {{"2", "", `{"reason":"no"}`}, {"2", "", `{"reason":"` + strings.Repeat("r", 5000) + `"}`}},
		"GET /v1/parties":                             {{"", "", ""}},
		"GET /healthz":                                {{"", "", ""}},
		"GET /readyz":                                 {{"", "", ""}},
		"GET /v1/openapi.json":                        {{"", "", ""}},
	}
	for i, rt := range routes {
		key := rt.method + " " + rt.path
		ss := seeds[key]
		if len(ss) == 0 {
			// A route added without seeds here is fuzzed all the same.
			ss = append(ss, struct{ param, query, body string }{})
		}
		delete(seeds, key)
		for _, s := range ss {
			for tok := range tokens {
				f.Add(uint8(i), uint8(tok), s.param, s.query, []byte(s.body))
			}
		}
	}
	for key := range seeds {
		f.Fatalf("seeds for %s, which is not a route", key)
	}

	f.Fuzz(func(t *testing.T, routeN, tokenN uint8, param, query string, body []byte) {
		rt := routes[int(routeN)%len(routes)]
		switch param {
		case "coalition", "russia", "operator":
			// Revoking or rotating the parties of the fuzzer would turn
			// the rest of the run into 401s.
			param = "other"
		}
		path := rt.path
		for _, name := range []string{"{id}", "{name}", "{keyid}"} {
			path = strings.ReplaceAll(path, name, url.PathEscape(param))
		}
		if path == "/v1/parties/./rotate" || strings.Contains(path, "/../") {
			return // not the route: the mux redirects such paths
		}
		target := path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(rt.method, "http://deconflict.test"+target, bytes.NewReader(body))
		if err != nil {
			return // not an HTTP request a client could send
		}
		if tok := tokens[int(tokenN)%len(tokens)]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		ctx := context.Background()
		if rt.path == "/v1/events" {
			// The event stream runs until the client leaves.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		if rt.path == "/v1/events" && ctx.Err() != nil && rec.Code == http.StatusServiceUnavailable && bytes.Contains(rec.Body.Bytes(), []byte(`/problems/timeout"`)) {
			// The client left before the stream's start (its cursor read
			// from the store) was done: on a loaded machine, under -race,
			// 20 ms is not always enough, and the answer to a client gone
			// is the time limit's.
			return
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", rt.method, target, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			var p Problem
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Type == "" {
				t.Fatalf("%s %s: %d without problem+json: %s %s", rt.method, target, rec.Code, ct, rec.Body.Bytes())
			}
		}
	})
}
