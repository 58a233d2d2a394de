package webtest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/deconflict/deconflict/internal/web"
)

// startBackend runs the API and the console in this process.
func startBackend(t *testing.T) *backend {
	t.Helper()
	return serveFake(t, web.Handler(), map[string]string{coalition: "tok-coalition-51d0", airgroup: "tok-airgroup-8e2b"})
}

func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
