package client

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// TestRulesAnswerCarriesFindingsPending: against a real server, the
// acceptance that brings rules into force returns the server's
// Findings-Pending count; the proposal and an acceptance that leaves it
// open return 0.
func TestRulesAnswerCarriesFindingsPending(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := service.New(ctx, service.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(svc, api.Options{}))
	t.Cleanup(func() {
		svc.EndStreams()
		srv.Close()
		_ = svc.Close(context.Background())
	})
	operator := party.Principal{Party: party.OperatorName, Operator: true}
	tokens := map[string]string{}
	for _, name := range []string{"coalition", "russia"} {
		if tokens[name], err = svc.AddParty(ctx, operator, name); err != nil {
			t.Fatal(err)
		}
	}
	// Findings queued that cannot be announced (their batch unreadable):
	// they wait, counted, whatever the request that brings the rules
	// into force announces (as in internal/api's test of the header).
	if err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutMeta("rules/findings/0", []byte("{not json")); err != nil {
			return err
		}
		return tx.PutMeta("rules/findings", []byte(`{"head":0,"tail":1,"findings":9,"by_party":{"russia":7,"coalition":2}}`))
	}); err != nil {
		t.Fatal(err)
	}

	prop, err := New(srv.URL, svc.OperatorToken).ProposeRules(ctx, []byte(`{"ack_deadline_s":100}`))
	if err != nil || prop.State != rules.ProposalOpen || prop.FindingsPending != 0 {
		t.Fatalf("ProposeRules = %+v, %v; want proposed, 0 findings pending", prop, err)
	}
	// An acceptance names the content it accepts: the rules the caller
	// read. Of other rules under the same version, the server refuses it
	// and the proposal waits as it did; a proposal whose stated digest is
	// not that of its rules is sent nowhere.
	other := prop.Proposal
	other.Rules.AckDeadlineS = 101
	other.RulesSHA256 = ""
	var pr *Problem
	if _, err := New(srv.URL, tokens["coalition"]).AcceptProposal(ctx, other); !errors.As(err, &pr) || pr.Status != 409 || pr.Field != "rules_sha256" {
		t.Fatalf("accepting other rules under version %d: %v, want 409 naming rules_sha256", prop.Version, err)
	}
	stated := prop.Proposal
	stated.Rules.AckDeadlineS = 101
	if _, err := New(srv.URL, tokens["coalition"]).AcceptProposal(ctx, stated); !errors.Is(err, ErrProposalDigest) {
		t.Fatalf("accepting rules that are not those of the digest stated: %v, want ErrProposalDigest", err)
	}
	if open, err := New(srv.URL, tokens["coalition"]).RulesProposals(ctx); err != nil || len(open) != 1 || len(open[0].Answers) != 0 {
		t.Fatalf("after the refused acceptances: %+v, %v", open, err)
	}
	first, err := New(srv.URL, tokens["coalition"]).AcceptRules(ctx, prop.Version)
	if err != nil || first.State != rules.ProposalOpen || first.FindingsPending != 0 {
		t.Fatalf("the first acceptance = %+v, %v; want still proposed, 0 findings pending", first, err)
	}
	last, err := New(srv.URL, tokens["russia"]).AcceptRules(ctx, prop.Version)
	if err != nil || last.State != rules.ProposalActive || last.FindingsPending != 7 {
		t.Fatalf("the acceptance that brought the rules into force = state %q, %d findings pending, %v; want active, 7", last.State, last.FindingsPending, err)
	}
}
