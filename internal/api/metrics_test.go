package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t, Options{})
	e.mustDo("GET", "/v1/me", e.tokens["coalition"], nil, 200, nil)
	e.do("GET", "/v1/me", "", nil)
	s := e.openStream(e.tokens["russia"], "")
	_ = s
	text := e.metrics()
	for _, want := range []string{
		`deconflict_http_requests_total{code="200",method="GET",route="/v1/me"} 1`,
		`deconflict_http_requests_total{code="401",method="GET",route="/v1/me"} 1`,
		`deconflict_http_request_duration_seconds_count{route="/v1/me"} 2`,
		"deconflict_sse_clients 1",
		"deconflict_tracks ",
		"deconflict_position_reports_accepted_total ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestMetricsAreTheOperators: /metrics answers the operator's token only;
// MetricsHandler, for a listener of its own, needs none.
func TestMetricsAreTheOperators(t *testing.T) {
	e := newEnv(t, Options{})
	for _, c := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {e.tokens["coalition"], http.StatusForbidden}, {e.operator, http.StatusOK}} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("/metrics with token %.8q: %d (Cache-Control %q), want %d", c.token, resp.StatusCode, resp.Header.Get("Cache-Control"), c.want)
		}
		if c.want == http.StatusOK && !strings.Contains(string(b), "deconflict_position_reports_accepted_total") {
			t.Errorf("the operator's /metrics lacks the metrics: %.200s", b)
		}
	}
	separate := httptest.NewServer(MetricsHandler(e.svc))
	defer separate.Close()
	resp, err := http.Get(separate.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "deconflict_sse_clients") {
		t.Fatalf("the metrics listener: %d %.200s", resp.StatusCode, b)
	}
}
