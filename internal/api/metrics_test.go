package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t, Options{})
	e.mustDo("GET", "/v1/me", e.tokens["coalition"], nil, 200, nil)
	e.do("GET", "/v1/me", "", nil)
	s := e.openStream(e.tokens["russia"], "")
	_ = s
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
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
