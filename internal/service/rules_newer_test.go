package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
)

// withFutureField is body, a JSON object, with a field no version of the
// rules this program knows has, as a newer version of deconflict might
// write it (at the top, or in the proposal's rules).
func withFutureField(t *testing.T, body []byte, path ...string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	at := m
	for _, p := range path {
		at = at[p].(map[string]any)
	}
	at["uas_geofence_margin_m"] = 30
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// putNewerRules stores the next version of the rules in force as a newer
// version of deconflict would write it: with a field this one does not
// know.
func putNewerRules(t *testing.T, st store.Store) int64 {
	t.Helper()
	var version int64
	err := st.Update(context.Background(), func(tx store.Tx) error {
		rec, err := tx.LatestRules()
		if err != nil {
			return err
		}
		version = rec.Version + 1
		return tx.PutRules(store.RulesRecord{Version: version, Created: time.Now().UTC(), Actor: "deconflict",
			Body: withFutureField(t, rec.Body)})
	})
	if err != nil {
		t.Fatal(err)
	}
	return version
}

// coalitionReplica is a replica of a service where coalition is a party,
// on an embedded store in a fresh directory closed when the test ends.
func coalitionReplica(t *testing.T) (*Service, *sqlite.Store) {
	t.Helper()
	_, st := storeInDir(t)
	s := newReplicaService(t, st, &testPeers{})
	if _, err := s.CreateParty(context.Background(), "coalition"); err != nil {
		t.Fatal(err)
	}
	return s, st
}

// An older replica beside a newer one that added a field to the rules
// (without a migration of the store, which alone fences it) neither starts
// on those rules, nor adopts them as they come into force, nor writes a
// volume under the rules before them: read without the field, they are
// rules no party agreed to.
func TestRulesOfANewerVersionAreNotAppliedWithoutTheirFields(t *testing.T) {
	ctx := context.Background()
	s, st := coalitionReplica(t)
	before := s.Rules().Version
	newer := putNewerRules(t, st)

	var ne *NewerRulesError
	for range 2 { // adopted at the second look
		if _, err := s.SyncFromStore(ctx, newer); err != nil && !errors.As(err, &ne) {
			t.Fatal(err)
		}
	}
	if ne == nil || ne.Version != newer || ne.Field != "uas_geofence_margin_m" {
		t.Errorf("syncing with the store gave %v, want the rules version %d named with the field it does not know", ne, newer)
	}
	if got := s.Rules().Version; got != before {
		t.Errorf("the replica runs with rules version %d, want %d: it adopted version %d without its field", got, before, newer)
	}
	now := time.Now().UTC()
	in := volume.Input{Footprint: volume.Footprint{Type: "Circle", Center: []float64{36, 35}, RadiusM: 5000},
		AltLowerM: 1000, AltUpperM: 2000, Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)}
	if _, err := s.CreateVolume(ctx, party.Principal{Party: "coalition"}, in); !errors.As(err, &ne) {
		t.Errorf("a volume write beside rules of a newer version returned %v, want a NewerRulesError", err)
	}
	var declared []store.Volume
	if err := st.View(ctx, func(tx store.Tx) (err error) { declared, err = tx.VolumesChangedSince(0, 10); return err }); err != nil {
		t.Fatal(err)
	}
	if len(declared) != 0 {
		t.Errorf("%d volumes written under rules the store no longer holds in force", len(declared))
	}

	if _, err := New(ctx, Config{Store: st}); !errors.As(err, &ne) {
		t.Errorf("a replica started on rules of a newer version: %v, want a NewerRulesError", err)
	}
}

// A proposal written by a newer version, answered through an older
// replica, is not settled there: stored again without the field it does
// not know, the rules the parties accepted would never come into force.
func TestProposalOfANewerVersionIsNotSettledWithoutItsFields(t *testing.T) {
	ctx := context.Background()
	s, st := coalitionReplica(t)
	r := s.Rules()
	r.HorizontalSepM *= 2
	p, err := s.ProposeRules(ctx, party.Principal{Party: party.OperatorName, Operator: true}, r)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	err = st.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.GetRulesProposal(p.Version)
		if err != nil {
			return err
		}
		rec.Body = withFutureField(t, rec.Body, "rules")
		body = rec.Body
		return tx.PutRulesProposal(rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	var ne *NewerRulesError
	if _, err := s.AnswerRules(ctx, party.Principal{Party: "coalition"}, p.Version, true, "", p.RulesSHA256); !errors.As(err, &ne) || ne.Version != p.Version {
		t.Errorf("accepting a proposal of a newer version: %v, want a NewerRulesError naming version %d", err, p.Version)
	}
	var inForce store.RulesRecord
	var kept store.RulesProposal
	err = st.View(ctx, func(tx store.Tx) error {
		if inForce, err = tx.LatestRules(); err != nil {
			return err
		}
		kept, err = tx.GetRulesProposal(p.Version)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inForce.Version == p.Version {
		t.Errorf("the proposal came into force without its field: %s", inForce.Body)
	}
	if !bytes.Equal(kept.Body, body) {
		t.Errorf("the proposal was stored again as\n%s\nwant it kept as the newer version wrote it\n%s", kept.Body, body)
	}
	if kept.State != rules.ProposalOpen {
		t.Errorf("the proposal is %s, want it open", kept.State)
	}
}

// A batch of findings of rules a newer version proposed is not this
// batch's fault where an older replica cannot read it: that replica
// never sets it aside (its findings untold to every party for good), it
// leaves it for the newer version, failing meanwhile.
func TestFindingsOfANewerVersionAreNotSetAsideByAnOlderOne(t *testing.T) {
	ctx := context.Background()
	_, log := newLogBuffer()
	s, _, _ := findingsSceneLogged(t, log)
	const version = 999
	body, err := json.Marshal(rules.Proposal{Version: version, State: rules.ProposalActive, ProposedBy: party.OperatorName, Rules: rules.Default()})
	if err != nil {
		t.Fatal(err)
	}
	body = withFutureField(t, body, "rules")
	if err := s.st.Update(ctx, func(tx store.Tx) error {
		return tx.PutRulesProposal(store.RulesProposal{Version: version, Created: time.Now().UTC(), Actor: party.OperatorName, State: rules.ProposalActive, Body: body})
	}); err != nil {
		t.Fatal(err)
	}
	queueCorruptBatch(t, s, `{"rules_version":999,"flags":[{"volume":{"id":"v","party":"coalition","version":"1"},"field":"max_window_s","reason":"r"}]}`)
	var ne *NewerRulesError
	for i := range 2 * findingsSetAsideAfter {
		if err := s.announceFindingsJob(ctx, s.now()); !errors.As(err, &ne) {
			t.Fatalf("the job's error at its run %d is %v, want a NewerRulesError", i+1, err)
		}
	}
	if n := counterValue(t, s.m.FindingsBatchesSetAside); n != 0 {
		t.Errorf("%v batches set aside by a replica older than their rules, want none", n)
	}
	if pending, err := s.FindingsPending(ctx); err != nil || pending == 0 {
		t.Errorf("%d findings pending (%v), want the batch kept for the newer version", pending, err)
	}
}
