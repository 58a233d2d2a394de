package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/partykey"
)

// TestSignedReplaysChangeNothing: a party's signed writes replayed are
// refused and change nothing: sent again to another replica (or the
// server after a restart: a nonce cache of its own, the same store), by
// another party that has keys of its own, or with the signature of
// another body; and a genuine signed update held back and delivered after
// a later one is refused as stale rather than undoing it.
func TestSignedReplaysChangeNothing(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	delta, _ := partykey.Generate()
	echo, _ := partykey.Generate()
	tokens := map[string]string{}
	for name, key := range map[string]ed25519.PrivateKey{"delta": delta, "echo": echo} {
		var tok struct{ Token string }
		e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": name, "public_keys": []string{partykey.Format(partykey.Public(key))}}, 201, &tok)
		tokens[name] = tok.Token
	}
	replica := httptest.NewServer(NewHandler(e.svc, Options{PublicURL: e.srv.URL}))
	defer replica.Close()
	toReplica := func(req *http.Request, body []byte) *http.Request {
		r := req.Clone(ctx)
		r.URL.Host = strings.TrimPrefix(replica.URL, "http://")
		r.Host = ""
		r.Body = ioNop(body)
		return r
	}

	created := circleVolume(35.4, 36.0, "delta-secret", nil)
	body, _ := json.Marshal(created)
	var v wireVolume
	req := signedRequest(t, e, delta, "POST", "/v1/volumes", tokens["delta"], body)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 201 {
		t.Fatalf("signed volume: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	update := func(upperM float64) []byte {
		u := circleVolume(35.4, 36.0, "delta-secret", nil)
		u["alt_upper_m"], u["version"] = upperM, v.Version
		b, _ := json.Marshal(u)
		return b
	}
	heldBody, sentBody := update(7500), update(8000)
	held := signedRequest(t, e, delta, "PUT", "/v1/volumes/"+v.ID, tokens["delta"], heldBody)
	sent := signedRequest(t, e, delta, "PUT", "/v1/volumes/"+v.ID, tokens["delta"], sentBody)
	replay := toReplica(sent, sentBody)
	if code, p := send(t, e, sent); code != 200 {
		t.Fatalf("signed update: %d %+v", code, p)
	}
	m, err := client.New(e.srv.URL, e.tokens["russia"]).PostMessage(ctx, client.NewMessage{To: []string{"delta"}, Kind: "request", Text: "climb?"})
	if err != nil {
		t.Fatal(err)
	}
	ackBody := []byte(`{"reply":"climbing"}`)
	ack := signedRequest(t, e, delta, "POST", "/v1/hotline/messages/"+m.ID+"/ack", tokens["delta"], ackBody)
	ackReplay := toReplica(ack, ackBody)
	if code, p := send(t, e, ack); code != 200 {
		t.Fatalf("signed ack: %d %+v", code, p)
	}
	before := fingerprint(t, e.st)

	byEcho := sent.Clone(ctx)
	byEcho.Header.Set("Authorization", "Bearer "+tokens["echo"])
	byEcho.Body = ioNop(sentBody)
	olderBody := sent.Clone(ctx)
	olderBody.Body, olderBody.ContentLength = ioNop(heldBody), int64(len(heldBody))
	for _, c := range []struct {
		name  string
		req   *http.Request
		code  int
		field string
	}{
		{"the update to another replica", replay, 401, "nonce"},
		{"the acknowledgment to another replica", ackReplay, 401, "nonce"},
		{"the update by another party", byEcho, 401, "keyid"},
		{"the update's signature on the held body", olderBody, 401, "content-digest"},
		{"the held update after the sent one", held, 409, "version"},
	} {
		resp, err := http.DefaultClient.Do(c.req)
		if err != nil {
			t.Fatal(err)
		}
		var p Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != c.code || p.Field != c.field {
			t.Errorf("%s: %d %+v, want %d naming %q", c.name, resp.StatusCode, p, c.code, c.field)
		}
		if after := fingerprint(t, e.st); after != before {
			t.Fatalf("%s changed the store: %s, was %s", c.name, after, before)
		}
	}
	var got struct {
		AltUpperM float64 `json:"alt_upper_m"`
	}
	e.mustDo("GET", "/v1/volumes/"+v.ID, tokens["delta"], nil, 200, &got)
	if got.AltUpperM != 8000 {
		t.Fatalf("the volume's upper altitude is %v after the replays, want 8000", got.AltUpperM)
	}
}

// TestReplayedPositionsChangeNothing: a position batch sent again, and an
// older one after a newer, change no track, raise or clear no alert and
// append no event.
func TestReplayedPositionsChangeNothing(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now()
	first := map[string]any{"reports": []any{report("RF-1", 35.0, 36.1, 6000, -200, now)}}
	second := map[string]any{"reports": []any{report("RF-1", 35.0, 36.098, 6000, -200, now.Add(time.Second))}}
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], first, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-1", 35.0, 35.88, 6000, 200, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], second, 202, nil)
	picture := func() string {
		var b strings.Builder
		b.WriteString(fingerprint(t, e.st))
		for _, tok := range []string{e.tokens["coalition"], e.tokens["russia"]} {
			b.Write(e.mustDo("GET", "/v1/alerts", tok, nil, 200, nil))
			b.Write(e.mustDo("GET", "/v1/tracks", tok, nil, 200, nil))
		}
		return b.String()
	}
	before := picture()
	if !strings.Contains(before, "RF-1") || !strings.Contains(before, `"conflict"`) {
		t.Fatalf("no conflict to keep: %s", before)
	}
	for _, batch := range []map[string]any{second, first, second} {
		var out positionsAnswer
		e.mustDo("POST", "/v1/positions", e.tokens["russia"], batch, 202, &out)
		if after := picture(); after != before {
			t.Fatalf("a replayed batch changed the picture:\n%s\nwas\n%s", after, before)
		}
	}
}
