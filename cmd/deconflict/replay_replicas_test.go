package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/store/pgtest"
)

// TestReplayRefusedOnEveryReplica: the nonces of signed requests are shared
// through the store, so a signed write replayed to the other replica within
// the nonce window is refused there (401, field nonce) and changes
// nothing: a hotline message, a position batch, and a write that failed
// (its nonce is used all the same); of one signed request sent to both
// replicas at once, exactly one is taken.
func TestReplayRefusedOnEveryReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary on PostgreSQL")
	}
	dburl := pgtest.NewDatabase(t)
	bin := buildBinary(t)
	data := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "coalition.pem")
	pub := lastLine(runCLI(t, bin, "key", "new", "--out", keyFile))
	key, err := partykey.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	token := lastLine(runCLI(t, bin, "party", "add", "coalition", "--public-key", pub, "--store", dburl, "--data", data))
	runCLI(t, bin, "party", "add", "russia", "--store", dburl, "--data", data)
	// Behind one load balancer: both replicas take the signatures' target
	// URI to be the public one.
	const public = "http://deconflict.test"
	replica := func() *serverProc {
		return startServe(t, bin, 60*time.Second, "--store", dburl, "--data", data, "--log-level", "warn", "--public-url", public)
	}
	a, b := replica(), replica()
	hc := &http.Client{Timeout: 20 * time.Second}

	// sign makes a signed request to the public URL; send delivers a copy
	// of it to one replica.
	type signed struct {
		method, path string
		body         []byte
		header       http.Header
	}
	sign := func(method, path string, body any) signed {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req, err := http.NewRequest(method, public+path, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		if err := httpsig.Sign(req, b, key, partykey.ID(partykey.Public(key)), time.Now()); err != nil {
			t.Fatal(err)
		}
		return signed{method, path, b, req.Header}
	}
	send := func(to *serverProc, s signed) (int, string) {
		t.Helper()
		req, err := http.NewRequest(s.method, to.base+s.path, bytes.NewReader(s.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = s.header.Clone()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var p struct{ Field string }
		_ = json.Unmarshal(out, &p)
		if resp.StatusCode == http.StatusUnauthorized {
			return resp.StatusCode, p.Field
		}
		return resp.StatusCode, string(out)
	}
	wantReplayed := func(what string, code int, field string) {
		t.Helper()
		if code != http.StatusUnauthorized || field != "nonce" {
			t.Fatalf("%s: %d %s, want 401 naming the nonce", what, code, field)
		}
	}
	messages := func() int {
		t.Helper()
		var out struct{ Messages []json.RawMessage }
		code, body, err := do(hc, "GET", a.base+"/v1/hotline/messages", token, nil)
		if err != nil || code != 200 || json.Unmarshal(body, &out) != nil {
			t.Fatalf("messages: %d %s %v", code, body, err)
		}
		return len(out.Messages)
	}

	// A message: taken by a, refused on b and again on a.
	msg := sign("POST", "/v1/hotline/messages", map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "once"})
	if code, out := send(a, msg); code != http.StatusCreated {
		t.Fatalf("signed message to a: %d %s", code, out)
	}
	code, field := send(b, msg)
	wantReplayed("the message replayed to b", code, field)
	code, field = send(a, msg)
	wantReplayed("the message replayed to a", code, field)
	if n := messages(); n != 1 {
		t.Fatalf("%d messages after one message and two replays", n)
	}

	// A position batch, the same.
	batch := sign("POST", "/v1/positions", map[string]any{"reports": []map[string]any{
		{"aircraft": "C-1", "time": time.Now().UTC().Format(time.RFC3339Nano), "lat": 35, "lon": 36, "alt_m": 9000}}})
	if code, out := send(a, batch); code != http.StatusAccepted {
		t.Fatalf("signed batch to a: %d %s", code, out)
	}
	code, field = send(b, batch)
	wantReplayed("the batch replayed to b", code, field)

	// A write refused for another reason uses its nonce all the same: it
	// cannot be replayed later where it would succeed.
	ack := sign("POST", "/v1/hotline/messages/m-nonexistent/ack", map[string]any{"reply": "x"})
	if code, out := send(a, ack); code != http.StatusNotFound {
		t.Fatalf("ack of an unknown message on a: %d %s", code, out)
	}
	code, field = send(b, ack)
	wantReplayed("the refused write replayed to b", code, field)

	// One request to both replicas at once: one takes it.
	for i := range 6 {
		s := sign("POST", "/v1/hotline/messages", map[string]any{"to": []string{"russia"}, "kind": "notice", "text": fmt.Sprintf("race %d", i)})
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for j, r := range []*serverProc{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[j], _ = send(r, s)
			}()
		}
		wg.Wait()
		created := 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusUnauthorized:
			default:
				t.Fatalf("race %d: answers %v", i, codes)
			}
		}
		if created != 1 {
			t.Fatalf("race %d: %d of the two replicas took one signed request (answers %v)", i, created, codes)
		}
	}
	if n := messages(); n != 7 {
		t.Fatalf("%d messages, want 7 (one per signed request)", n)
	}
}
