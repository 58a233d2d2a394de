package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

// The on-demand client counts a request refused by the party's budget of
// resolutions (429), not as an answer, and waits as its Retry-After says
// before asking again; before, it dropped the refusal silently and asked
// for the next at once.
func TestOnDemandClientCountsRefusalsAndWaits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var asked []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/alerts" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"alerts":[{"id":"a1","kind":"conflict"}]}`))
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/resolution") {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		asked = append(asked, time.Now())
		n := len(asked)
		mu.Unlock()
		switch n {
		case 2:
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"type":"https://deconflict.dev/problems/too-many-resolutions","title":"Resolution budget spent","status":429}`))
			return
		case 3:
			cancel()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"alert_id":"a1","time":"2026-12-07T00:00:00Z","aircraft":[]}`))
	}))
	defer srv.Close()
	d := &deployment{parties: map[string][]*client.Client{"coalition": {client.New(srv.URL, "token")}}}
	p := pollResolutions(ctx, d, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if p.refused != 1 || len(p.times) < 1 || len(p.times) > 2 {
		t.Fatalf("answered %d, refused %d (want 1), failed %d", len(p.times), p.refused, p.failed)
	}
	if len(asked) < 3 || asked[2].Sub(asked[1]) < time.Second || p.waited < time.Second {
		t.Fatalf("asked again %v after a refusal saying Retry-After 1 (waited %v)", asked[2].Sub(asked[1]), p.waited)
	}
}
