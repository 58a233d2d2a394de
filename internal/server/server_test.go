package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// TestRunServesAndShutsDownGracefully: the first start writes the operator
// token (0600), the server answers, a party made in Ready can use the API,
// and cancelling the context shuts down cleanly with the chain signed.
func TestRunServesAndShutsDownGracefully(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, done := runWithParty(t, ctx, Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0"})
	fi, err := os.Stat(filepath.Join(dir, "operator.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("operator.token: %v %v", fi, err)
	}
	req, _ := http.NewRequest("GET", r.base+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"coalition"`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	// A second start on the same directory does not make a new operator.
	before, _ := os.ReadFile(filepath.Join(dir, "operator.token"))
	svc, err := service.New(context.Background(), service.Config{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "operator.token"))
	if svc.OperatorToken != "" || string(before) != string(after) {
		t.Fatal("a restart replaced the operator token")
	}
}

// TestMetricsListener: with MetricsListen the metrics are served there
// without a token, and on the API's address only to the operator.
func TestMetricsListener(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	base := make(chan string, 1)
	go func() {
		done <- Run(ctx, Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0", MetricsListen: metricsAddr,
			Ready: func(b string, _ *service.Service) { base <- b }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var apiBase string
	select {
	case apiBase = <-base:
	case err := <-done:
		t.Fatalf("Run returned before Ready: %v", err)
	}
	for url, want := range map[string]int{"http://" + metricsAddr + "/metrics": 200, apiBase + "/metrics": 401} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && !strings.Contains(string(b), "deconflict_sse_clients")) {
			t.Errorf("%s without a token: %d %.100s, want %d", url, resp.StatusCode, b, want)
		}
	}
}

// TestShutdownSignsTheChainDespiteAStalledRequest: a client that stopped
// in the middle of its request's body keeps its request running past the
// shutdown's deadline. The server still shuts down without error, with the
// whole audit chain signed. (Before, the final checkpoint had only what
// the requests' shutdown left of the deadline, nothing, and was lost; Run
// failed with "context deadline exceeded".)
func TestShutdownSignsTheChainDespiteAStalledRequest(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, done := runWithParty(t, ctx, Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0", ShutdownTimeout: time.Second})
	c, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/hotline/messages HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"to\":", r.token)
	// A round trip on another connection, so that the server has read the
	// stalled request's header by then.
	resp, err := http.Get(r.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	err = st.View(context.Background(), func(tx store.Tx) error {
		last, err := tx.LastAudit()
		if err != nil {
			return err
		}
		cps, err := tx.CheckpointsFrom(1)
		if err != nil {
			return err
		}
		if len(cps) == 0 || cps[len(cps)-1].Seq != last.Seq {
			t.Errorf("the audit chain ends at record %d, signed up to %v", last.Seq, cps)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// partyServer is a server Run started, with the token of the party coalition
// made in Ready.
type partyServer struct{ base, token string }

// runWithParty starts Run with cfg (its Ready replaced), making the party
// coalition once it listens; done gets what Run returns.
func runWithParty(t *testing.T, ctx context.Context, cfg Config) (partyServer, chan error) {
	t.Helper()
	type ready struct {
		partyServer
		err error
	}
	readyC := make(chan ready, 1)
	done := make(chan error, 1)
	cfg.Ready = func(base string, svc *service.Service) {
		tok, err := svc.CreateParty(context.Background(), "coalition")
		readyC <- ready{partyServer{base, tok}, err}
	}
	go func() { done <- Run(ctx, cfg) }()
	var r ready
	select {
	case r = <-readyC:
	case err := <-done:
		t.Fatalf("Run returned before Ready: %v", err)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.partyServer, done
}
