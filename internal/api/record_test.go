package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/store"
)

// TestAuditExportPerViewer: every party gets an export of the whole chain
// that verifies with the served key, with its own details in clear and the
// others' only as a hash.
func TestAuditExportPerViewer(t *testing.T) {
	e := newEnv(t, Options{})
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35.4, 36.0, "coalition-secret", nil), 201, nil)
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(10, 10, "russia-secret", nil), 201, nil)

	var key audit.KeyInfo
	e.mustDo("GET", "/v1/audit/key", e.tokens["russia"], nil, 200, &key)
	pub, err := audit.ParsePublicKey(key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		viewer      string
		token       string
		see, notSee []string
	}{
		{"coalition", e.tokens["coalition"], []string{"coalition-secret"}, []string{"russia-secret"}},
		{"russia", e.tokens["russia"], []string{"russia-secret"}, []string{"coalition-secret"}},
		{"operator", e.operator, []string{"coalition-secret", "russia-secret"}, nil},
	}
	var records int64
	for _, c := range cases {
		code, body, hdr := e.do("GET", "/v1/audit", c.token, nil)
		if code != 200 || hdr.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%s: %d %s", c.viewer, code, body)
		}
		for _, s := range c.see {
			if !bytes.Contains(body, []byte(s)) {
				t.Errorf("%s does not see %s", c.viewer, s)
			}
		}
		for _, s := range c.notSee {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("%s sees %s", c.viewer, s)
			}
		}
		sum, err := audit.Verify(bytes.NewReader(body), pub)
		if err != nil {
			t.Fatalf("%s: export does not verify: %v", c.viewer, err)
		}
		if records == 0 {
			records = sum.Records
		} else if sum.Records != records {
			t.Fatalf("%s sees %d records, others %d", c.viewer, sum.Records, records)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			if !json.Valid([]byte(line)) {
				t.Fatalf("%s: line is not JSON: %s", c.viewer, line)
			}
		}
	}
	// parties added, rules v1 and two volumes at least.
	if records < 5 {
		t.Fatalf("only %d audit records", records)
	}
	if code, _, _ := e.do("GET", "/v1/audit?from=0", e.operator, nil); code != 400 {
		t.Fatalf("from=0: %d", code)
	}
}

// A party's export shows only what the party may see through the API:
// the hotline traffic between two other parties (thread, message id, kind,
// times, readers, acknowledgment) and the registration of another party
// appear only as commitments, and the chain still verifies.
func TestAuditExportHidesOtherPartiesMetadata(t *testing.T) {
	e := newEnv(t, Options{})
	var out struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "syria"}, 201, &out)
	var m struct{ ID string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"syria"}, "kind": "request", "thread": "russia/khmeimim-corridor", "text": "x"}, 201, &m)
	e.mustDo("POST", "/v1/hotline/messages/"+m.ID+"/ack", out.Token, map[string]any{"reply": "y"}, 200, nil)

	var key audit.KeyInfo
	e.mustDo("GET", "/v1/audit/key", e.tokens["coalition"], nil, 200, &key)
	pub, err := audit.ParsePublicKey(key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := e.do("GET", "/v1/audit", e.tokens["coalition"], nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	for _, s := range []string{"khmeimim-corridor", m.ID, "syria", "message_posted", "message_acked"} {
		if bytes.Contains(body, []byte(s)) {
			t.Errorf("coalition's export shows %q", s)
		}
	}
	if _, err := audit.Verify(bytes.NewReader(body), pub); err != nil {
		t.Fatalf("coalition's export does not verify: %v", err)
	}
	// The parties of the thread see it.
	for _, tok := range []string{e.tokens["russia"], out.Token, e.operator} {
		_, body, _ := e.do("GET", "/v1/audit", tok, nil)
		if !bytes.Contains(body, []byte("khmeimim-corridor")) || !bytes.Contains(body, []byte("message_acked")) {
			t.Errorf("a party of the thread does not see it:\n%s", body)
		}
		if _, err := audit.Verify(bytes.NewReader(body), pub); err != nil {
			t.Fatal(err)
		}
	}
}

// Under volume_visibility need_to_know, a party's export shows another
// party's volume records only when the volume conflicts with one of its
// own (it was told); the chain still verifies.
func TestAuditExportNeedToKnowVolumes(t *testing.T) {
	e := newEnv(t, Options{})
	e.agreeRules(map[string]any{"volume_visibility": "need_to_know"})
	var far, near wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(10, 10, "far-away", nil), 201, &far)
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35, 36, "over-syria", nil), 201, &near)
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35, 36.02, "coalition", []map[string]string{{"id": near.ID, "version": near.Version}}), 201, nil)

	var key audit.KeyInfo
	e.mustDo("GET", "/v1/audit/key", e.tokens["coalition"], nil, 200, &key)
	pub, err := audit.ParsePublicKey(key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := e.do("GET", "/v1/audit", e.tokens["coalition"], nil)
	if bytes.Contains(body, []byte(far.ID)) {
		t.Error("coalition's export shows russia's volume it may not see")
	}
	if !bytes.Contains(body, []byte(near.ID)) {
		t.Error("coalition's export lacks russia's volume that conflicts with its own")
	}
	if _, err := audit.Verify(bytes.NewReader(body), pub); err != nil {
		t.Fatal(err)
	}
}

// TestAuditExportNotTakenHoldsNoReader: a party that asks for exports of
// a long record and takes nothing of them (as many at once as the
// embedded store has read connections, 4) must not stall the other
// parties: russia posts to the hotline, lists it and replays its event
// stream meanwhile. (Each export read the whole chain in one transaction
// while writing it to the client, so that the four held every read
// connection for as long as their clients waited: for ever here, up to
// the server's write timeout of 60 s in serve; every request needing a
// read waited, a hotline post included.)
func TestAuditExportNotTakenHoldsNoReader(t *testing.T) {
	e := newEnv(t, Options{})
	pad := strings.Repeat("p", 2000)
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		for i := range 8000 {
			if _, err := audit.Append(tx, "coalition", "note", audit.Everyone, map[string]any{"i": i, "pad": pad}, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "GET /v1/audit HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n\r\n", e.tokens["coalition"])
		// The export has begun once its first bytes arrive.
		line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
		if err != nil || !strings.Contains(line, " 200 ") {
			t.Fatalf("export: %q %v", line, err)
		}
	}
	// The guard against a hang only.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, rq := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/v1/hotline/messages", `{"to":["coalition"],"kind":"notice","text":"still there?"}`, 201},
		{"GET", "/v1/hotline/messages", "", 200},
		{"GET", "/v1/events?after=0", "", 200},
	} {
		req, _ := http.NewRequestWithContext(ctx, rq.method, e.srv.URL+rq.path, strings.NewReader(rq.body))
		req.Header.Set("Authorization", "Bearer "+e.tokens["russia"])
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s while coalition's exports wait: %v", rq.method, rq.path, err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		resp.Body.Close()
		if resp.StatusCode != rq.want || err != nil {
			t.Fatalf("%s %s: %d %q %v", rq.method, rq.path, resp.StatusCode, line, err)
		}
	}
}

// smallBuffers gives every accepted connection a small send buffer, so that
// what the server writes waits on its client at once.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// TestAuditExportOutlastsTheWriteTimeout: an export is a long-lived
// request: one that its client takes at its own steady pace, longer in
// all than the server's write timeout (60 s in serve), arrives whole. Each
// write has the stream's deadline instead. (The export was cut at the
// server's write timeout, however steadily its client read.)
func TestAuditExportOutlastsTheWriteTimeout(t *testing.T) {
	e := newEnv(t, Options{StreamWriteTimeout: 10 * time.Second})
	pad := strings.Repeat("p", 400)
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		for i := range 1000 {
			if _, err := audit.Append(tx, "coalition", "note", audit.Everyone, map[string]any{"i": i, "pad": pad}, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(NewHandler(e.svc, Options{StreamWriteTimeout: 10 * time.Second}))
	srv.Listener = smallBuffers{srv.Listener}
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/audit HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", e.tokens["russia"])
	// 16 KiB every 20 ms: about a second in all.
	var got bytes.Buffer
	start := time.Now()
	for {
		n, err := io.CopyN(&got, c, 16<<10)
		if err != nil || n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	resp, err := http.ReadResponse(bufio.NewReader(&got), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the export was cut after %s (%d bytes): %v", took, len(body), err)
	}
	pub, _ := audit.ParsePublicKey(e.svc.AuditKey().PublicKey)
	sum, err := audit.Verify(bytes.NewReader(body), pub)
	if err != nil || sum.Records < 1000 {
		t.Fatalf("export of %d bytes taken in %s: %+v %v", len(body), took, sum, err)
	}
}
