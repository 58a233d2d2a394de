package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/logcheck"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/translog"
	"github.com/deconflict/deconflict/internal/witness"
)

// behindWitness is coalition's witness for two replicas: it notes every
// push of a checkpoint older than the one it holds (what the pushing
// replica reports as "the log lost records or forked").
type behindWitness struct {
	srv    *witness.Server
	origin string
	open   func([]byte) (translog.Checkpoint, error)

	mu     sync.Mutex
	behind []string
}

func (w *behindWitness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if req, err := witness.ParseRequest(body); err == nil {
		_, held, ok, _ := w.srv.Latest(w.origin)
		if cp, err := w.open(req.Checkpoint); err == nil && ok && cp.Size < held.Size {
			w.behind = append(w.behind, fmt.Sprintf("a push of size %d while the witness held %d", cp.Size, held.Size))
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	w.srv.ServeHTTP(rw, r)
}

// TestLogCheckpointsOfTwoReplicasOnPostgres: two replicas on one
// PostgreSQL are one transparency log. Records are written through both;
// coalition's check, run against each replica in turn, never finds the log
// smaller than its witness cosigned or forked; a client reading the
// checkpoint from each replica in turn never sees it go back; no replica
// pushes a checkpoint older than the witness holds. The leader stops: the
// other continues the log, and its witness cosigns every record, the
// last ones when that replica stops too.
func TestLogCheckpointsOfTwoReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary on PostgreSQL")
	}
	p := startReplicaPair(t, pgtest.NewDatabase(t))
	ctx := context.Background()
	hc := &http.Client{Timeout: 30 * time.Second}
	var key struct{ Origin, VKey string }
	if code, body, err := do(hc, "GET", p.a.base+"/v1/log/key", p.tokens["coalition"], nil); err != nil || code != 200 || json.Unmarshal(body, &key) != nil {
		t.Fatalf("log key: %d %s %v", code, body, err)
	}
	logV, err := translog.LogVerifier(key.VKey)
	if err != nil {
		t.Fatal(err)
	}
	_, wpriv, _ := ed25519.GenerateKey(nil)
	wdir := t.TempDir()
	ws, err := witness.NewServer("coalition.test/witness", wpriv, wdir, []string{key.VKey})
	if err != nil {
		t.Fatal(err)
	}
	bw := &behindWitness{srv: ws, origin: key.Origin, open: func(b []byte) (translog.Checkpoint, error) {
		cp, _, err := translog.Open(b, key.Origin, logV)
		return cp, err
	}}
	wsrv := httptest.NewServer(bw)
	defer wsrv.Close()

	// The rules name coalition's witness; both parties agree.
	var r map[string]any
	if code, body, err := do(hc, "GET", p.a.base+"/v1/rules", p.tokens[""], nil); err != nil || code != 200 || json.Unmarshal(body, &r) != nil {
		t.Fatalf("rules: %d %s %v", code, body, err)
	}
	r["witnesses"] = []map[string]string{{"party": "coalition", "url": wsrv.URL, "vkey": ws.VerifierKey()}}
	code, body, err := do(hc, "PUT", p.a.base+"/v1/rules", p.tokens[""], r)
	var proposal struct{ Version int64 }
	if err != nil || code != 202 || json.Unmarshal(body, &proposal) != nil {
		t.Fatalf("PUT /v1/rules: %d %s %v", code, body, err)
	}
	for _, party := range []string{"coalition", "russia"} {
		if _, err := client.New(p.b.base, p.tokens[party]).AcceptRules(ctx, proposal.Version); err != nil {
			t.Fatalf("%s accepting the rules: %v", party, err)
		}
	}
	waitHeld := func(what string, atLeast int64) translog.Checkpoint {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, held, ok, err := ws.Latest(key.Origin)
			if err != nil {
				t.Fatal(err)
			}
			if ok && held.Size >= atLeast {
				return held
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the witness holds size %d, want %d or more", what, held.Size, atLeast)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitHeld("the first cosignature", 1)

	checker := &logcheck.Checker{Token: p.tokens["coalition"], Dir: wdir, HTTP: hc}
	var served int64
	round := func(i int, bases ...string) {
		t.Helper()
		base := bases[i%len(bases)]
		if _, err := client.New(base, p.tokens["coalition"]).PostMessage(ctx, client.NewMessage{To: []string{"russia"}, Kind: "notice", Thread: fmt.Sprintf("coalition/log-%d", i), Text: "round"}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		time.Sleep(300 * time.Millisecond)
		for _, b := range bases {
			checker.Server = b
			_, err := checker.Check(ctx)
			var f *logcheck.Finding
			if errors.As(err, &f) {
				t.Fatalf("round %d, checked on %s: %v", i, b, f)
			}
			if err != nil {
				t.Fatalf("round %d, checked on %s: %v", i, b, err)
			}
			code, body, err := do(hc, "GET", b+"/v1/log/checkpoint", p.tokens["russia"], nil)
			if err != nil || code != 200 {
				t.Fatalf("checkpoint: %d %s %v", code, body, err)
			}
			cp, _, err := translog.Open(body, key.Origin, logV)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Size < served {
				t.Fatalf("round %d: %s serves a checkpoint of size %d after one of size %d was served", i, b, cp.Size, served)
			}
			served = cp.Size
		}
	}
	for i := range 12 {
		round(i, p.a.base, p.b.base)
	}
	leader, other := detectionLeader(t, p.st, p.a, p.b)
	leader.stop(t, 60*time.Second)
	for i := 12; i < 18; i++ {
		round(i, other.base)
	}
	var records int64
	err = p.st.View(ctx, func(tx store.Tx) error {
		last, err := tx.LastAudit()
		records = last.Seq
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitHeld("after the takeover, every record", records)

	// The last replica writes once more and stops at once: its shutdown
	// pushes the last checkpoint while it still leads (nobody else would,
	// until a replica starts again).
	if _, err := client.New(other.base, p.tokens["coalition"]).PostMessage(ctx, client.NewMessage{To: []string{"russia"}, Kind: "notice", Thread: "coalition/log-last", Text: "last"}); err != nil {
		t.Fatal(err)
	}
	other.stop(t, 60*time.Second)
	err = p.st.View(ctx, func(tx store.Tx) error {
		last, err := tx.LastAudit()
		records = last.Seq
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, held, _, err := ws.Latest(key.Origin); err != nil || held.Size < records {
		t.Fatalf("after the last replica stopped the witness holds size %d (%v), want every record, %d", held.Size, err, records)
	}
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if len(bw.behind) > 0 {
		t.Fatalf("replicas pushed checkpoints older than the witness held: %v", bw.behind)
	}
}
