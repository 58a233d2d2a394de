package service

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
)

// A signed answer that brings rules into force runs its transaction again
// after the volumes were checked ahead: its nonce, used in the attempt
// rolled back, is not taken for a replay at the rerun, the statement is
// recorded once, and the nonce is spent afterwards.
func TestSignedActivationAfterTheScanAhead(t *testing.T) {
	ctx := context.Background()
	s, st := newEmbedded(t)
	if _, err := s.CreateParty(ctx, "coalition"); err != nil {
		t.Fatal(err)
	}
	raised := s.Rules()
	raised.HorizontalSepM *= 2
	op := party.Principal{Party: party.OperatorName, Operator: true}
	prop, err := s.ProposeRules(ctx, op, raised)
	if err != nil {
		t.Fatal(err)
	}
	var scansAhead int
	s.volumes().ObserveScans(func() {
		if s.wmu.TryLock() {
			s.wmu.Unlock()
			scansAhead++
		}
	})
	sig := httpsig.Statement{Method: "POST", TargetURI: "http://deconflict.test/v1/rules/proposals/2/answer", ContentDigest: "sha-256=:AAAA:",
		SignatureInput: `("@method" "@target-uri" "content-digest");created=1;keyid="k1";nonce="n1"`,
		Signature:      "c2ln", KeyID: "k1", Created: time.Now().Unix(), Nonce: "n1"}
	signed := WithStatement(ctx, "coalition", sig, []byte(`{"accept":true}`))
	if _, err := s.AnswerRules(signed, party.Principal{Party: "coalition"}, prop.Version, true, "", prop.RulesSHA256); err != nil {
		t.Fatalf("signed answer: %v", err)
	}
	if scansAhead == 0 {
		t.Fatal("the volumes were not checked ahead")
	}
	if got := s.Rules().Version; got != prop.Version {
		t.Fatalf("rules version %d in force, want %d", got, prop.Version)
	}
	var statements int
	err = st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(0, 10000)
		for _, r := range recs {
			if r.Kind == KindStatement && bytes.Contains(r.Content, []byte(`"n1"`)) {
				statements++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if statements != 1 {
		t.Errorf("%d statement records of the nonce, want 1", statements)
	}
	_, err = s.AnswerRules(signed, party.Principal{Party: "coalition"}, prop.Version, true, "", prop.RulesSHA256)
	var se *httpsig.Error
	if !errors.As(err, &se) || se.Field != httpsig.FieldNonce {
		t.Errorf("the same signed answer again: %v, want a refusal naming the nonce", err)
	}
}
