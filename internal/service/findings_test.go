package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/volume/synth"
)

// The findings of an activation (the volumes that break the new rules, the
// pairs that conflict only under them) are not written in its transaction,
// which holds the writers' lock (16 s for 10,000 pairs on PostgreSQL), but
// queued with it and announced after it, a bounded batch a transaction.
// A crash in the middle leaves the rest queued: the service announces it
// when it runs again, and every finding is announced exactly once.
func TestActivationFindingsAnnouncedInBatchesOnce(t *testing.T) {
	dir := t.TempDir()
	activationFindingsAnnouncedInBatchesOnce(t, func() store.Store {
		st, err := sqlite.Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestActivationFindingsAnnouncedInBatchesOnceOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	url := pgtest.NewDatabase(t)
	activationFindingsAnnouncedInBatchesOnce(t, func() store.Store {
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

var errCrashed = errors.New("test: crashed while announcing")

func activationFindingsAnnouncedInBatchesOnce(t *testing.T, open func() store.Store) {
	ctx := context.Background()
	st := open()
	closed := false
	t.Cleanup(func() {
		if !closed {
			st.Close()
		}
	})
	s, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	const batch = 2
	s.findingsBatchSize = batch
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	start := s.now().UTC().Truncate(time.Second).Add(time.Hour)
	at := func(eastM float64, hours int) volume.Input {
		lat, lon := synth.Destination(35, 36, 90, eastM)
		return volume.Input{Footprint: synth.Circle(lat, lon, 2000), AltLowerM: 1000, AltUpperM: 2000,
			Start: start, End: start.Add(time.Duration(hours) * time.Hour), State: volume.Accepted}
	}
	// Alternating parties 20 km apart: each pair of neighbours conflicts
	// under 30 km only, and russia's windows of 3 hours break a 2-hour
	// maximum.
	for i := range 6 {
		owner, hours := "coalition", 1
		if i%2 == 1 {
			owner, hours = "russia", 3
		}
		declare(t, s, owner, at(float64(i)*20_000, hours))
	}
	old := s.Rules()
	raised := old
	raised.HorizontalSepM = 30_000
	raised.MaxWindowS = 2 * 3600

	var inActivation int
	s.onRulesCommitted = func() { inActivation = len(findingEvents(t, st, 0)) }
	var batches []int64
	s.onFindingsBatch = func(i int64) error {
		if i == 2 {
			return errCrashed
		}
		batches = append(batches, i)
		return nil
	}
	version := bringIntoForce(t, s, raised, "coalition", "russia")
	now := s.Rules()
	if now.Version != version {
		t.Fatalf("rules version %d in force, want %d", now.Version, version)
	}
	if inActivation != 0 {
		t.Fatalf("the activation's transaction wrote %d findings, want none (they are announced after it, in batches)", inActivation)
	}
	if !slices.Equal(batches, []int64{0, 1}) {
		t.Fatalf("batches %v announced before the crash, want [0 1]", batches)
	}
	if got := findingEvents(t, st, version); len(got) != 2*batch {
		t.Fatalf("%d findings announced before the crash, want %d: %v", len(got), 2*batch, got)
	}

	// What the plain test of every pair and every volume gives.
	live := storedLive(t, st)
	var want []string
	for i := range live {
		if live[i].Breaks(now) != nil {
			want = append(want, "flag "+live[i].ID+"@"+live[i].Version)
		}
	}
	for i := range live {
		for j := i + 1; j < len(live); j++ {
			if volume.Conflict(live[i], live[j], now) && !volume.Conflict(live[i], live[j], old) {
				want = append(want, "pair "+live[i].ID+"@"+live[i].Version+"+"+live[j].ID+"@"+live[j].Version)
			}
		}
	}
	if len(want) < 3*batch {
		t.Fatalf("%d findings, want more than %d batches' worth", len(want), 3)
	}

	// The crash: the store reopened, a new service on it.
	st.Close()
	st = open()
	s2, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	// The periodic job announces what is left, a few batches a tick.
	for range 10 {
		if pending, err := s2.findingsPending(ctx); err != nil || !pending {
			break
		}
		if err := s2.announceFindingsJob(ctx, s2.now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := findingEvents(t, st, version); !slices.Equal(got, want) {
		t.Fatalf("findings announced %v, want each once, in order: %v", got, want)
	}
	if pending, err := s2.findingsPending(ctx); err != nil || pending {
		t.Fatalf("findings still queued: %v (%v)", pending, err)
	}
	// Announced batches leave no row behind.
	if err := st.View(ctx, func(tx store.Tx) error {
		left, err := tx.MetaWithPrefix("rules/findings/")
		if err == nil && len(left) > 0 {
			err = fmt.Errorf("%d rows of announced batches left: %v", len(left), slices.Collect(maps.Keys(left)))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Each once in the audit record.
	var recs []store.AuditRecord
	if err := st.View(ctx, func(tx store.Tx) error { recs, err = tx.AuditFrom(0, 100000); return err }); err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, rec := range recs {
		if (rec.Kind == "volume_conflict" || rec.Kind == "volume_flagged") && bytes.Contains(rec.Content, fmt.Appendf(nil, `"rules_version":%d`, version)) {
			audited++
		}
	}
	if audited != len(want) {
		t.Errorf("%d audit records of the findings, want %d", audited, len(want))
	}
	// Each pair told to both owners in exactly one of the items, which
	// group them per volume and other party, carried over the batches.
	wantEachPairToldOnce(t, st, want, version, "coalition", "russia")
	st.Close()
	closed = true
}

// findingEvents lists the volume_flagged and volume_conflict events of the
// rules version (any version when 0) in st, in order.
func findingEvents(t *testing.T, st store.Store, version int64) []string {
	t.Helper()
	var out []string
	err := st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100000)
		for _, ev := range evs {
			switch ev.Kind {
			case "volume_flagged":
				var f VolumeFlag
				if err := json.Unmarshal(ev.Body, &f); err != nil {
					return err
				}
				if version == 0 || f.RulesVersion == version {
					out = append(out, "flag "+f.Volume.ID+"@"+f.Volume.Version)
				}
			case "volume_conflict":
				var c RulesConflict
				if json.Unmarshal(ev.Body, &c) != nil || len(c.Volumes) != 2 || c.RulesVersion == 0 {
					continue // a conflict found at a write
				}
				if version == 0 || c.RulesVersion == version {
					out = append(out, "pair "+c.Volumes[0].ID+"@"+c.Volumes[0].Version+"+"+c.Volumes[1].ID+"@"+c.Volumes[1].Version)
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The activation a signed request brings about (a party's signed answer)
// announces its findings in that request, as an unsigned one does: the
// batches are the service's own transactions, not the party's, so they
// neither use the request's nonce again (refused as a replay, which left
// every finding to the periodic job) nor record its statement.
func TestSignedActivationAnnouncesItsFindings(t *testing.T) {
	ctx := context.Background()
	s, st := newEmbedded(t)
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	a := declare(t, s, "coalition", eastOf(s.now(), 0))
	b := declare(t, s, "russia", eastOf(s.now(), 16_000))
	raised := s.Rules()
	raised.HorizontalSepM = 30_000
	op := party.Principal{Party: party.OperatorName, Operator: true}
	prop, err := s.ProposeRules(ctx, op, raised)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AnswerRules(ctx, party.Principal{Party: "russia"}, prop.Version, true, "", prop.RulesSHA256); err != nil {
		t.Fatal(err)
	}
	sig := httpsig.Statement{Method: "POST", TargetURI: "http://deconflict.test/v1/rules/2/accept", ContentDigest: "sha-256=:AAAA:",
		SignatureInput: `("@method" "@target-uri" "content-digest");created=1;keyid="k1";nonce="n-findings"`,
		Signature:      "c2ln", KeyID: "k1", Created: time.Now().Unix(), Nonce: "n-findings"}
	signed := WithStatement(ctx, "coalition", sig, []byte(`{}`))
	if _, err := s.AnswerRules(signed, party.Principal{Party: "coalition"}, prop.Version, true, "", prop.RulesSHA256); err != nil {
		t.Fatalf("signed answer: %v", err)
	}
	if got := s.Rules().Version; got != prop.Version {
		t.Fatalf("rules version %d in force, want %d", got, prop.Version)
	}
	if pending, err := s.findingsPending(ctx); err != nil || pending {
		t.Fatalf("findings left queued after the signed activation returned: %v (%v)", pending, err)
	}
	want := []string{"pair " + a.ID + "@" + a.Version + "+" + b.ID + "@" + b.Version}
	if got := findingEvents(t, st, prop.Version); !slices.Equal(got, want) && !slices.Equal(got, []string{"pair " + b.ID + "@" + b.Version + "+" + a.ID + "@" + a.Version}) {
		t.Fatalf("findings announced %v, want %v", got, want)
	}
	statements := 0
	if err := st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(0, 100000)
		for _, r := range recs {
			if r.Kind == KindStatement && bytes.Contains(r.Content, []byte(`"n-findings"`)) {
				statements++
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if statements != 1 {
		t.Errorf("%d statement records of the signed answer, want 1", statements)
	}
}
