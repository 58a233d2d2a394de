package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/party"
)

// TestSignedBatchAppliedOnlyOnceCommitted: a signed position batch whose
// statement was committed ahead (CommitBatchStatement) or is committed by
// IngestPositions itself is applied once its nonce and statement are
// committed, and not at all when the nonce was already used (a replay to
// this or another replica: the store holds the nonces) or the commit
// fails.
func TestSignedBatchAppliedOnlyOnceCommitted(t *testing.T) {
	s, f := newFaultyService(t)
	ctx := context.Background()
	coalition := party.Principal{Party: "coalition"}
	tracks := func() int { return s.tac.eng.Load().Stats().Tracks }
	statement := func(nonce string) context.Context {
		st := httpsig.Statement{Method: "POST", TargetURI: "http://deconflict.test/v1/positions", ContentDigest: "sha-256=:AAAA:",
			SignatureInput: `("@method" "@target-uri" "content-digest");created=1;keyid="k1";nonce="` + nonce + `"`,
			Signature:      "c2ln", KeyID: "k1", Created: time.Now().Unix(), Nonce: nonce}
		return WithStatement(ctx, "coalition", st, nil)
	}
	report := func(aircraft string) []PositionReport {
		return []PositionReport{{Aircraft: aircraft, Class: "manned", Time: time.Now(), LatDeg: 35, LonDeg: 36, AltM: 3000}}
	}
	refusedNonce := func(what string, err error) {
		t.Helper()
		var se *httpsig.Error
		if !errors.As(err, &se) || se.Field != httpsig.FieldNonce {
			t.Fatalf("%s: %v, want a refusal naming the nonce", what, err)
		}
	}
	applied := func(what string, want int) {
		t.Helper()
		if got := tracks(); got != want {
			t.Fatalf("%s: %d tracks, want %d", what, got, want)
		}
	}

	// Committed ahead, then applied.
	committed, err := s.CommitBatchStatement(statement("n1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IngestPositions(committed, coalition, report("a1")); err != nil {
		t.Fatal(err)
	}
	applied("a batch committed ahead", 1)
	// Committed by IngestPositions.
	if _, _, err := s.IngestPositions(statement("n2"), coalition, report("a2")); err != nil {
		t.Fatal(err)
	}
	applied("a batch committed inline", 2)

	// Replays of either nonce on other reports: refused ahead and inline,
	// nothing applied.
	for _, nonce := range []string{"n1", "n2"} {
		_, err := s.CommitBatchStatement(statement(nonce))
		refusedNonce("replayed nonce "+nonce+" committed ahead", err)
		_, _, err = s.IngestPositions(statement(nonce), coalition, report("b-"+nonce))
		refusedNonce("replayed nonce "+nonce+" committed inline", err)
	}
	applied("after replays", 2)

	// The commit fails: nothing applied.
	f.down.Store(true)
	_, errAhead := s.CommitBatchStatement(statement("n3"))
	_, _, errInline := s.IngestPositions(statement("n3"), coalition, report("c"))
	f.down.Store(false)
	if !errors.Is(errAhead, errInjected) || !errors.Is(errInline, errInjected) {
		t.Fatalf("failed commit: %v and %v, want the store's failure", errAhead, errInline)
	}
	applied("after a failed commit", 2)
}
