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
// statement's commit was started ahead (StartBatchStatement) or not is
// applied once its nonce and statement are committed, and not at all when
// the nonce was already used (a replay to this or another replica: the
// store holds the nonces) or the commit fails.
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
	ahead := func(ctx context.Context) context.Context { return s.StartBatchStatement(ctx) }
	inline := func(ctx context.Context) context.Context { return ctx }
	for _, tc := range []struct {
		name  string
		start func(context.Context) context.Context
	}{{"started ahead", ahead}, {"committed inline", inline}} {
		t.Run(tc.name, func(t *testing.T) {
			n := tracks()
			nonce := "n-" + tc.name
			if _, err := s.IngestPositions(tc.start(statement(nonce)), coalition, report("a-"+tc.name)); err != nil {
				t.Fatal(err)
			}
			if tracks() != n+1 {
				t.Fatalf("%d tracks after a signed batch of a new aircraft, want %d", tracks(), n+1)
			}
			// The same nonce on other reports: refused, naming the nonce,
			// and nothing applied.
			_, err := s.IngestPositions(tc.start(statement(nonce)), coalition, report("b-"+tc.name))
			var se *httpsig.Error
			if !errors.As(err, &se) || se.Field != httpsig.FieldNonce {
				t.Fatalf("replayed nonce: %v, want a refusal naming the nonce", err)
			}
			if tracks() != n+1 {
				t.Fatalf("a replayed batch was applied: %d tracks, want %d", tracks(), n+1)
			}
			// The commit fails: nothing applied.
			f.down.Store(true)
			_, err = s.IngestPositions(tc.start(statement(nonce+"-down")), coalition, report("c-"+tc.name))
			f.down.Store(false)
			if !errors.Is(err, errInjected) {
				t.Fatalf("failed commit: %v, want the store's failure", err)
			}
			if tracks() != n+1 {
				t.Fatalf("a batch whose statement was not committed was applied: %d tracks, want %d", tracks(), n+1)
			}
		})
	}
}
