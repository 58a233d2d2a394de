package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// started runs a server on st until the test ends and returns its base
// URL; ready is called with its service once it listens.
func started(t *testing.T, st store.Store, dir string, ready func(*service.Service)) string {
	t.Helper()
	return startedWith(t, Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0"}, ready)
}

// openPostgres opens the PostgreSQL store at url (one of pgtest's
// databases), closed when the test ends (after the servers started on it
// have stopped).
func openPostgres(t *testing.T, url string) store.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startedWith is started with the configuration cfg (its API options and
// Ready replaced).
func startedWith(t *testing.T, cfg Config, ready func(*service.Service)) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	base := make(chan string, 1)
	done := make(chan error, 1)
	// Idle streams: no heartbeat comes within the test.
	cfg.API = api.Options{HeartbeatEvery: time.Hour}
	cfg.Ready = func(b string, svc *service.Service) {
		if ready != nil {
			ready(svc)
		}
		base <- b
	}
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case b := <-base:
		return b
	case err := <-done:
		t.Fatalf("Run returned before Ready: %v", err)
	}
	return ""
}

// openEvents opens an event stream and returns a channel closed when the
// stream ends.
func openEvents(t *testing.T, base, token string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events?live=1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
	}()
	return ended
}

// waitEnded waits for a stream to end and returns how long it took; the
// limit only guards against a hang.
func waitEnded(t *testing.T, ended <-chan struct{}, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-ended:
		return time.Since(start)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: the stream is still open", what)
	}
	return 0
}

// TestRevocationByTheCLIEndsStreams: the CLI revokes a party on the
// embedded store a server has open (another handle on the same file); the
// server ends the party's open stream at its next tick, and other
// parties' streams go on.
func TestRevocationByTheCLIEndsStreams(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the server has stopped
	tokens := map[string]string{}
	base := started(t, st, dir, func(svc *service.Service) {
		for _, p := range []string{"coalition", "russia"} {
			tok, err := svc.CreateParty(context.Background(), p)
			if err != nil {
				t.Error(err)
			}
			tokens[p] = tok
		}
	})
	revoked := openEvents(t, base, tokens["coalition"])
	other := openEvents(t, base, tokens["russia"])

	cli, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := service.RevokeParty(context.Background(), cli, "operator", "coalition", time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Logf("the stream of the revoked party ended %v after the CLI's revocation", waitEnded(t, revoked, "revoked by the CLI"))
	select {
	case <-other:
		t.Fatal("another party's stream ended too")
	default:
	}
}

// TestRevocationEndsStreamsOnEveryReplica: two replicas on one
// PostgreSQL; the operator rotates a party's token through one, and the
// party's stream on the other ends.
func TestRevocationEndsStreamsOnEveryReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two replicas on PostgreSQL")
	}
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	dir := t.TempDir()
	stA, stB := openPostgres(t, url), openPostgres(t, url)
	baseA := started(t, stA, dir, nil)
	baseB := started(t, stB, dir, nil)
	token, err := service.AddParty(ctx, stA, "operator", "coalition", false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	operator, err := os.ReadFile(filepath.Join(dir, "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	onB := openEvents(t, baseB, token)
	req, _ := http.NewRequest("POST", baseA+"/v1/parties/coalition/rotate", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(operator)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate through replica a: %d", resp.StatusCode)
	}
	t.Logf("the stream on replica b ended %v after the rotation through replica a", waitEnded(t, onB, "rotated through the other replica"))
	req, _ = http.NewRequest("GET", baseB+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old token on replica b: %d", resp.StatusCode)
	}
}

// TestReplicasKeepTheDatabasesTime runs two replicas on PostgreSQL whose
// hosts' clocks are 30 s ahead and 30 s behind: each keeps the database's
// time, so that a report timed now is accepted by both (the one behind
// refused it as from the future), and a hotline item's deadline counts
// from now whichever replica posted it (the one ahead set it 30 s late,
// and the other escalated items 30 s early).
func TestReplicasKeepTheDatabasesTime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two replicas on PostgreSQL")
	}
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	dir := t.TempDir()
	type replicaRun struct {
		skew time.Duration
		base string
		svc  *service.Service
	}
	runs := []*replicaRun{{skew: 30 * time.Second}, {skew: -30 * time.Second}}
	for _, r := range runs {
		st := openPostgres(t, url)
		cfg := Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0", Now: func() time.Time { return time.Now().Add(r.skew) }}
		r.base = startedWith(t, cfg, func(svc *service.Service) { r.svc = svc })
	}
	const tolerance = 5 * time.Second // against a skew of 30 s
	st := openPostgres(t, url)
	coalition, err := service.AddParty(ctx, st, "operator", "coalition", false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.AddParty(ctx, st, "operator", "russia", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	post := func(base, path string, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+coalition)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, r := range runs {
		if off := time.Until(r.svc.Now()); off.Abs() > tolerance {
			t.Errorf("the replica whose host is %v off tells the time %v off", r.skew, off)
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		code, b := post(r.base, "/v1/positions", `{"reports":[{"aircraft":"C1","time":"`+now+`","lat":35,"lon":36,"alt_m":6000}]}`)
		var out struct{ Rejected []struct{ Error string } }
		if code != http.StatusAccepted || json.Unmarshal(b, &out) != nil || len(out.Rejected) != 0 {
			t.Errorf("a report timed now to the replica whose host is %v off: %d %s", r.skew, code, b)
		}
		code, b = post(r.base, "/v1/hotline/messages", `{"to":["russia"],"kind":"request","text":"call me"}`)
		var m struct {
			Deadline time.Time `json:"deadline"`
		}
		if code != http.StatusCreated || json.Unmarshal(b, &m) != nil {
			t.Fatalf("posting through the replica whose host is %v off: %d %s", r.skew, code, b)
		}
		if off := m.Deadline.Sub(time.Now().Add(r.svc.Rules().AckDeadline(""))); off.Abs() > tolerance {
			t.Errorf("an item posted through the replica whose host is %v off is due %v off (%s)", r.skew, off, b)
		}
	}
}
