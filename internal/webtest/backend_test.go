package webtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/web"
)

// startBackend runs the API and the console in this process: the real
// server on the embedded store in a temporary directory, with the parties
// named (coalition and airgroup when none is).
func startBackend(t testing.TB, parties ...string) *backend {
	t.Helper()
	return startBackendWith(t, api.Options{}, parties...)
}

// startBackendWith is startBackend with the API's options (budgets, limits)
// as opt has them.
func startBackendWith(t testing.TB, opt api.Options, parties ...string) *backend {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	type ready struct {
		url string
		svc *service.Service
	}
	readyCh := make(chan ready, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			Store:   st,
			DataDir: dir,
			Listen:  "127.0.0.1:0",
			Console: web.Handler(),
			API:     opt,
			Ready:   func(url string, svc *service.Service) { readyCh <- ready{url, svc} },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		st.Close()
	})
	var r ready
	select {
	case r = <-readyCh:
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30 s")
	}
	be := &backend{url: r.url, tokens: map[string]string{}, operator: r.svc.OperatorToken, svc: r.svc, st: st}
	if len(parties) == 0 {
		parties = []string{coalition, airgroup}
	}
	for _, name := range parties {
		tok, err := r.svc.CreateParty(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		be.tokens[name] = tok
	}
	return be
}

func httptestServer(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
