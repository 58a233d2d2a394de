package api

import (
	"bytes"
	"strings"

	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/translog"
	"github.com/deconflict/deconflict/internal/witness"
)

func unhex(t *testing.T, s string) translog.Hash {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("hash %q", s)
	}
	return translog.Hash(b)
}

// TestLogEndpoints checks the transparency log over HTTP: a party's
// witness named in the rules cosigns the published checkpoint, and the
// inclusion and consistency proofs served verify against checkpoints.
func TestLogEndpoints(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var key struct{ Origin, VKey string }
	e.mustDo("GET", "/v1/log/key", e.tokens["coalition"], nil, 200, &key)
	logV, err := translog.LogVerifier(key.VKey)
	if err != nil || logV.Name() != key.Origin {
		t.Fatalf("log key %+v: %v", key, err)
	}
	_, wpriv, _ := ed25519.GenerateKey(nil)
	ws, err := witness.NewServer("coalition.test/witness", wpriv, t.TempDir(), []string{key.VKey})
	if err != nil {
		t.Fatal(err)
	}
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	r := e.svc.Rules()
	r.Witnesses = []rules.Witness{{Party: "coalition", URL: wsrv.URL, VKey: ws.VerifierKey()}}
	e.agreeRules(r)
	if err := e.svc.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	wv, _ := translog.WitnessVerifier(ws.VerifierKey())
	checkpoint := func() translog.Checkpoint {
		t.Helper()
		code, body, hdr := e.do("GET", "/v1/log/checkpoint", e.tokens["russia"], nil)
		if code != 200 || hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("checkpoint: %d %s", code, body)
		}
		cp, cosigs, err := translog.Open(body, key.Origin, logV, wv)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cosigs["coalition.test/witness"]; !ok {
			t.Fatalf("the checkpoint lacks the coalition witness's cosignature:\n%s", body)
		}
		return cp
	}
	first := checkpoint()
	for i := range 5 {
		e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "msg", "thread": "coalition/t" + string(rune('a'+i))}, 201, nil)
	}
	if err := e.svc.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	second := checkpoint()
	if second.Size <= first.Size {
		t.Fatalf("sizes %d then %d", first.Size, second.Size)
	}
	var cons struct {
		From, Size int64
		Proof      []string
	}
	e.mustDo("GET", "/v1/log/proof/consistency?from="+strconv.FormatInt(first.Size, 10)+"&size="+strconv.FormatInt(second.Size, 10), e.tokens["russia"], nil, 200, &cons)
	var proof []translog.Hash
	for _, p := range cons.Proof {
		proof = append(proof, unhex(t, p))
	}
	if err := translog.VerifyConsistency(first.Size, first.Root, second.Size, second.Root, proof); err != nil {
		t.Fatalf("consistency proof: %v", err)
	}
	for index := range second.Size {
		var inc struct {
			Index, Size int64
			LeafHash    string `json:"leaf_hash"`
			Proof       []string
		}
		e.mustDo("GET", "/v1/log/proof/inclusion?index="+strconv.FormatInt(index, 10)+"&size="+strconv.FormatInt(second.Size, 10), e.tokens["coalition"], nil, 200, &inc)
		var p []translog.Hash
		for _, h := range inc.Proof {
			p = append(p, unhex(t, h))
		}
		if err := translog.VerifyInclusion(unhex(t, inc.LeafHash), index, second.Size, second.Root, p); err != nil {
			t.Fatalf("inclusion of %d: %v", index, err)
		}
	}
	// The export ends with the checkpoint, cosigned, and its records
	// rebuild the checkpoint's root.
	export := e.mustDo("GET", "/v1/audit", e.tokens["russia"], nil, 200, nil)
	lines := strings.Split(strings.TrimSpace(string(export)), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], `{"log_checkpoint":`) || !strings.Contains(lines[1], `"leaf_index":1,`) {
		t.Fatalf("export lines: first %s, last %s", lines[1], lines[len(lines)-1])
	}
	pub, _ := audit.ParsePublicKey(e.svc.AuditKey().PublicKey)
	sum, err := audit.Verify(bytes.NewReader(export), pub)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.LogVerified || sum.LogSize < second.Size || sum.LogSignatures != 1 {
		t.Fatalf("summary %+v", sum)
	}
	var st struct {
		Size       int64
		CosignedBy []string `json:"cosigned_by"`
	}
	e.mustDo("GET", "/v1/log/witnesses", e.tokens["russia"], nil, 200, &st)
	if st.Size != second.Size || len(st.CosignedBy) != 1 || st.CosignedBy[0] != "coalition" {
		t.Fatalf("status %+v", st)
	}
	for _, bad := range []string{
		"/v1/log/proof/inclusion?index=-1&size=2",
		"/v1/log/proof/inclusion?index=2&size=2",
		"/v1/log/proof/inclusion?size=2",
		"/v1/log/proof/consistency?from=3&size=2",
		"/v1/log/proof/consistency?from=x&size=2",
	} {
		if code, body, _ := e.do("GET", bad, e.tokens["russia"], nil); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
	if code, _, _ := e.do("GET", "/v1/log/proof/inclusion?index=0&size="+strconv.FormatInt(second.Size+100000, 10), e.tokens["russia"], nil); code != http.StatusNotFound {
		t.Errorf("a proof beyond the tree: %d, want 404", code)
	}
}

// TestAWitnessThatDoesNotAnswerHoldsNothingUp: while coalition's witness
// holds the push of a checkpoint without answering, the parties post,
// acknowledge, report positions and get their alerts as ever; the
// checkpoint is then published with russia's cosignature, and the log's
// status names coalition's witness as failing, and says why.
func TestAWitnessThatDoesNotAnswerHoldsNothingUp(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var key struct{ Origin, VKey string }
	e.mustDo("GET", "/v1/log/key", e.tokens["coalition"], nil, 200, &key)
	_, wpriv, _ := ed25519.GenerateKey(nil)
	ws, err := witness.NewServer("russia.test/witness", wpriv, t.TempDir(), []string{key.VKey})
	if err != nil {
		t.Fatal(err)
	}
	good := httptest.NewServer(ws)
	defer good.Close()
	_, hungKey, _ := witness.CosignerKeys("coalition.test/witness", wpriv)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "not now", http.StatusServiceUnavailable)
	}))
	defer hung.Close()
	r := e.svc.Rules()
	r.Witnesses = []rules.Witness{{Party: "coalition", URL: hung.URL, VKey: hungKey}, {Party: "russia", URL: good.URL, VKey: ws.VerifierKey()}}
	e.agreeRules(r)

	stream := e.openStreamPath(e.tokens["russia"], "/v1/events?live=1", "")
	published := make(chan error, 1)
	go func() { published <- e.svc.PublishLog(ctx) }()
	<-arrived
	// The push waits on coalition's witness: everything else goes on.
	var m struct{ ID string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "request", "text": "still there?"}, 201, &m)
	e.mustDo("POST", "/v1/hotline/messages/"+m.ID+"/ack", e.tokens["russia"], nil, 200, nil)
	now := time.Now()
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RF-1", 35.0, 36.1, 6000, -200, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-1", 35.0, 35.88, 6000, 200, now)}}, 202, nil)
	for _, want := range []string{"message", "ack", "alert_raised"} {
		if ev := stream.next(t); ev.Kind != want {
			t.Fatalf("russia's stream: %s, want %s", ev.Kind, want)
		}
	}
	select {
	case err := <-published:
		t.Fatalf("the push ended before coalition's witness answered: %v", err)
	default:
	}
	close(release)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	var st struct {
		CosignedBy []string `json:"cosigned_by"`
		Witnesses  []struct {
			Party, Failing string
		}
	}
	e.mustDo("GET", "/v1/log/witnesses", e.tokens["coalition"], nil, 200, &st)
	if len(st.CosignedBy) != 1 || st.CosignedBy[0] != "russia" || len(st.Witnesses) != 2 ||
		st.Witnesses[0].Party != "coalition" || !strings.Contains(st.Witnesses[0].Failing, "503") || st.Witnesses[1].Failing != "" {
		t.Fatalf("log status %+v", st)
	}
}
