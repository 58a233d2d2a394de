package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
)

// An answer larger than the client's bound ends the request with
// ErrAnswerTooLarge, after reading no more than the bound, and is not
// retried; an answer of exactly the bound reads whole.
func TestAnswersAreBounded(t *testing.T) {
	const bound = 4096
	var calls atomic.Int64
	var answer func(w http.ResponseWriter)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		answer(w)
	}))
	defer srv.Close()
	c := New(srv.URL, "t").WithMaxAnswerBytes(bound)
	ctx := context.Background()

	// A JSON answer sixteen times the bound, a string never closed (one
	// without end would take a client without the bound forever).
	answer = func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"proposals":[{"version":1,"why":"`))
		_, _ = w.Write(bytes.Repeat([]byte("x"), 16*bound))
	}
	_, err := c.RulesProposals(ctx)
	var tl *AnswerTooLargeError
	if !errors.As(err, &tl) || tl.MaxBytes != bound || !errors.Is(err, ErrAnswerTooLarge) || Retryable(err) {
		t.Fatalf("a JSON answer over the bound: %v (retryable %v)", err, Retryable(err))
	}

	// A write's answer over the bound is not taken for a lost answer and
	// sent again.
	calls.Store(0)
	if _, err := c.AcceptProposal(ctx, rules.Proposal{Version: 1, Rules: rules.Default()}); !errors.Is(err, ErrAnswerTooLarge) || calls.Load() != 1 {
		t.Fatalf("a write's answer over the bound: %v after %d sends", err, calls.Load())
	}

	// Raw exports, exactly at the bound and one byte over.
	for _, size := range []int{bound, bound + 1} {
		answer = func(w http.ResponseWriter) { _, _ = w.Write(bytes.Repeat([]byte("v"), size)) }
		got, err := c.VolumesAs(ctx, "geojson")
		switch {
		case size == bound && (err != nil || len(got) != bound):
			t.Fatalf("an export of exactly the bound: %d bytes, %v", len(got), err)
		case size > bound && !errors.Is(err, ErrAnswerTooLarge):
			t.Fatalf("an export one byte over the bound: %d bytes, %v", len(got), err)
		}
		got, err = c.TracksJSON(ctx, "")
		if size > bound && !errors.Is(err, ErrAnswerTooLarge) || size == bound && len(got) != bound {
			t.Fatalf("tracks of %d bytes: %d read, %v", size, len(got), err)
		}
	}

	// The default bound is the documented one.
	if New(srv.URL, "t").answerBound() != DefaultMaxAnswerBytes {
		t.Fatal("the default bound is not DefaultMaxAnswerBytes")
	}
}

// An event of the stream whose data lines never end is refused at
// maxEventBytes instead of taking the client's memory, and Events says
// so rather than reconnecting to the same event for ever.
func TestEventsOfTheStreamAreBounded(t *testing.T) {
	var ok strings.Builder
	fmt.Fprintf(&ok, "id: 1\nevent: alert_raised\ndata: {}\n\n")
	err := readSSE(strings.NewReader(ok.String()), func(Event) error { return nil })
	if err != nil {
		t.Fatalf("a small event: %v", err)
	}
	line := "data: " + strings.Repeat("y", 1<<20) + "\n"
	var streams atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streams.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("id: 1\nevent: alert_raised\n"))
		for range maxEventBytes/len(line) + 2 {
			if _, err := w.Write([]byte(line)); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	// Without the bound the client would read the event whole and
	// reconnect to it for ever: the deadline ends the test there.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = New(srv.URL, "t").Events(ctx, 0, func(Event) error { return nil })
	if !errors.Is(err, ErrAnswerTooLarge) || streams.Load() != 1 {
		t.Fatalf("an event without end: %v after %d streams", err, streams.Load())
	}
}

// A single line of the stream longer than maxEventBytes (no line end) is
// the same event too large: Events says so rather than reconnecting to it
// again and again (the scanner's own "token too long" was retried).
func TestEventsOfTheStreamBoundedOnOneLine(t *testing.T) {
	var streams atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if streams.Add(1) > 1 {
			// The client came back to the same event: end it there.
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"type":"https://deconflict.dev/problems/forbidden","title":"reconnected","status":403}`))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("id: 1\nevent: alert_raised\ndata: "))
		chunk := []byte(strings.Repeat("y", 1<<20))
		for range maxEventBytes/len(chunk) + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	err := New(srv.URL, "t").Events(context.Background(), 0, func(Event) error { return nil })
	if !errors.Is(err, ErrAnswerTooLarge) || streams.Load() != 1 {
		t.Fatalf("an event on one line without end: %v after %d streams", err, streams.Load())
	}
}
