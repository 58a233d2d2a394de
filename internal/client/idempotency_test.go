package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/deconflict/deconflict/internal/partykey"
)

// keyedServer answers the writes it is sent by the script of answers, in
// turn, and records each request's Idempotency-Key and Signature-Input.
type keyedServer struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	keys    []string
	inputs  []string
}

func (s *keyedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
	s.inputs = append(s.inputs, r.Header.Get("Signature-Input"))
	answer := s.answers[0]
	if len(s.answers) > 1 {
		s.answers = s.answers[1:]
	}
	s.mu.Unlock()
	answer(w)
}

// seen returns the keys and signature inputs of the requests served.
func (s *keyedServer) seen() (keys, inputs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.keys...), append([]string(nil), s.inputs...)
}

func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func problemAnswer(status int, slug string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"type":"https://deconflict.dev/problems/%s","title":"t","status":%d}`, slug, status)
	}
}

func messageAnswer(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprint(w, `{"id":"m-1","text":"x"}`)
}

// TestWritesCarryAKeyAndAreSentAgainOnce: a write that makes something
// carries an Idempotency-Key (a quoted string), covered by its signature;
// when its answer is lost (the connection dropped, 503 outcome-unknown) it
// is sent once more with the same key and a fresh signature; any other
// refusal, or a second loss, is the caller's.
func TestWritesCarryAKeyAndAreSentAgainOnce(t *testing.T) {
	key, _ := partykey.Generate()
	for _, tc := range []struct {
		name    string
		answers []func(http.ResponseWriter)
		sends   int
		wantErr bool
	}{
		{"answered", []func(http.ResponseWriter){messageAnswer}, 1, false},
		{"connection dropped", []func(http.ResponseWriter){dropConnection, messageAnswer}, 2, false},
		{"outcome unknown", []func(http.ResponseWriter){problemAnswer(503, "outcome-unknown"), messageAnswer}, 2, false},
		{"lost twice", []func(http.ResponseWriter){dropConnection, dropConnection, messageAnswer}, 2, true},
		{"another 503", []func(http.ResponseWriter){problemAnswer(503, "timeout"), messageAnswer}, 1, true},
		{"refused", []func(http.ResponseWriter){problemAnswer(422, "idempotency-key-reused"), messageAnswer}, 1, true},
		// The first is still being served when the second arrives: the
		// key is the client's alone, so it sends it again (a caller that
		// retried would send a new key, and the write twice).
		{"in progress after a loss", []func(http.ResponseWriter){dropConnection, problemAnswer(409, "idempotency-in-progress"), messageAnswer}, 3, false},
		{"keys exhausted", []func(http.ResponseWriter){problemAnswer(429, "idempotency-keys-exhausted"), messageAnswer}, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := &keyedServer{answers: tc.answers}
			srv := httptest.NewServer(ks)
			defer srv.Close()
			m, err := New(srv.URL, "tok").WithKey(key).PostMessage(context.Background(), NewMessage{To: []string{"russia"}, Kind: "notice", Text: "x"})
			if (err != nil) != tc.wantErr || (err == nil && m.ID != "m-1") {
				t.Fatalf("PostMessage = %+v, %v; want error %v", m, err, tc.wantErr)
			}
			srv.Close() // waits for the handlers
			keys, inputs := ks.seen()
			if len(keys) != tc.sends {
				t.Fatalf("sent %d times, want %d", len(keys), tc.sends)
			}
			k := keys[0]
			if len(k) < 3 || !strings.HasPrefix(k, `"`) || !strings.HasSuffix(k, `"`) {
				t.Errorf("Idempotency-Key %q is not a quoted string", k)
			}
			if tc.name == "keys exhausted" {
				if keys[1] != "" {
					t.Errorf("the write refused for the keys kept was sent again with key %q, want none", keys[1])
				}
				return
			}
			for i := range keys {
				if keys[i] != k {
					t.Errorf("send %d carried key %q, the first %q", i, keys[i], k)
				}
				if !strings.Contains(inputs[i], `"idempotency-key"`) {
					t.Errorf("send %d: the signature does not cover the key: %s", i, inputs[i])
				}
				if i > 0 && inputs[i] == inputs[0] {
					t.Errorf("send %d was not signed again (same Signature-Input, same nonce)", i)
				}
			}
		})
	}
}

// TestIdempotencyKeyOfTheCaller: a key the caller gives is the one sent;
// each write without one gets its own.
func TestIdempotencyKeyOfTheCaller(t *testing.T) {
	ks := &keyedServer{answers: []func(http.ResponseWriter){messageAnswer}}
	srv := httptest.NewServer(ks)
	defer srv.Close()
	c := New(srv.URL, "tok")
	in := NewMessage{To: []string{"russia"}, Kind: "notice", Text: "x"}
	if _, err := c.PostMessage(WithIdempotencyKey(context.Background(), "mine-1"), in); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.PostMessage(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := ks.seen()
	if keys[0] != `"mine-1"` || keys[1] == keys[2] || keys[1] == "" {
		t.Errorf("keys sent: %q; want the caller's, then two of their own", keys)
	}
}

// TestIdempotencyInProgressIsRetryable: 409 idempotency-in-progress says
// the first attempt is still being served: worth sending again.
func TestIdempotencyInProgressIsRetryable(t *testing.T) {
	if !Retryable(&Problem{Status: 409, Type: problemBase + "idempotency-in-progress"}) {
		t.Error("409 idempotency-in-progress is not retryable")
	}
	if Retryable(&Problem{Status: 409, Type: problemBase + "stale-version"}) {
		t.Error("409 stale-version is retryable")
	}
}

// replayedAnswer is the answer kept for a key, replayed by the server.
func replayedAnswer(w http.ResponseWriter) {
	w.Header().Set("Idempotent-Replayed", "true")
	messageAnswer(w)
}

// TestReplayToAFirstSendIsReported: a write whose first send is answered
// from a kept answer (its key was used before this call, perhaps hours
// ago) returns that answer with ErrReplayed, which is not worth sending
// again; a replay to the send made again after a lost answer is the
// expected answer, and no error.
func TestReplayToAFirstSendIsReported(t *testing.T) {
	in := NewMessage{To: []string{"russia"}, Kind: "notice", Text: "x"}
	for _, tc := range []struct {
		name    string
		answers []func(http.ResponseWriter)
		want    error
	}{
		{"first send", []func(http.ResponseWriter){replayedAnswer}, ErrReplayed},
		{"after a loss", []func(http.ResponseWriter){dropConnection, replayedAnswer}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := &keyedServer{answers: tc.answers}
			srv := httptest.NewServer(ks)
			defer srv.Close()
			m, err := New(srv.URL, "tok").PostMessage(WithIdempotencyKey(context.Background(), "used-yesterday"), in)
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("PostMessage: %v, want %v", err, tc.want)
			}
			if m.ID != "m-1" {
				t.Errorf("PostMessage answered %+v, want the kept answer m-1", m)
			}
			if err != nil && Retryable(err) {
				t.Errorf("%v is retryable: the same key would be answered the same", err)
			}
		})
	}
}
