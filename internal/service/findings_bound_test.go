package service

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/volume/synth"
)

// findingsScene is a service whose next rules (returned) find many
// volumes breaking them and many pairs conflicting only under them, one
// finding a batch: coalition and russia alternate 20 km apart, each pair
// of neighbours conflicts under 30 km only, and russia's windows of 3
// hours break a 2-hour maximum. It returns the rules and how many
// findings they make.
func findingsScene(t *testing.T) (*Service, rules.Rules, int) {
	t.Helper()
	return findingsSceneLogged(t, nil)
}

// findingsSceneLogged is findingsScene with the service logging to log
// (nil: nowhere).
func findingsSceneLogged(t *testing.T, log *slog.Logger) (*Service, rules.Rules, int) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(ctx, Config{Store: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s.findingsBatchSize = 1
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	start := s.now().UTC().Truncate(time.Second).Add(time.Hour)
	const volumes = 12
	for i := range volumes {
		owner, hours := "coalition", 1
		if i%2 == 1 {
			owner, hours = "russia", 3
		}
		lat, lon := synth.Destination(35, 36, 90, float64(i)*20_000)
		declare(t, s, owner, volume.Input{Footprint: synth.Circle(lat, lon, 2000), AltLowerM: 1000, AltUpperM: 2000,
			Start: start, End: start.Add(time.Duration(hours) * time.Hour), State: volume.Accepted})
	}
	next := s.Rules()
	next.HorizontalSepM = 30_000
	next.MaxWindowS = 2 * 3600
	return s, next, volumes/2 + volumes - 1
}

// TestActivatingRequestAnnouncesABoundedShareOfTheFindings: the request
// whose answer brought rules into force announced every batch of what
// they found before it answered (256 findings a transaction, up to the
// request's 30 s), and a client with a shorter timeout took the
// activation it had brought about for lost. It announces the first
// batches, within a bound, and leaves the rest, counted, to the periodic
// job.
func TestActivatingRequestAnnouncesABoundedShareOfTheFindings(t *testing.T) {
	ctx := context.Background()
	s, next, findings := findingsScene(t)
	if findings <= findingsBatchesPerTick {
		t.Fatalf("%d findings of a batch each, want more than the %d batches a request announces", findings, findingsBatchesPerTick)
	}
	version := bringIntoForce(t, s, next, "coalition", "russia")
	announced := len(findingEvents(t, s.st, version))
	pending, err := s.FindingsPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if announced < 1 || announced > findingsBatchesPerTick {
		t.Fatalf("the activating request announced %d findings of %d, want 1 to %d batches of one", announced, findings, findingsBatchesPerTick)
	}
	if announced+int(pending) != findings {
		t.Fatalf("%d findings announced and %d counted pending, want %d in all", announced, pending, findings)
	}
	// The periodic job announces the rest, the count going down to none.
	for range findings {
		if pending, err = s.FindingsPending(ctx); err != nil || pending == 0 {
			break
		}
		if err := s.announceFindingsJob(ctx, s.now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(findingEvents(t, s.st, version)); got != findings || pending != 0 {
		t.Fatalf("after the periodic job %d findings announced and %d pending (%v), want %d and none", got, pending, err, findings)
	}
}

// TestFindingsPendingCountsAQueueStoredWithoutItsCount: a queue stored
// before the count was kept is counted a whole batch a batch, not as
// empty.
func TestFindingsPendingCountsAQueueStoredWithoutItsCount(t *testing.T) {
	ctx := context.Background()
	s, _ := newEmbedded(t)
	if err := s.st.Update(ctx, func(tx store.Tx) error {
		return tx.PutMeta(findingsQueueKey, []byte(`{"head":3,"tail":5}`))
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.FindingsPending(ctx); err != nil || n != 2*findingsBatchSize {
		t.Fatalf("FindingsPending = %d, %v; want %d", n, err, 2*findingsBatchSize)
	}
}

// TestFindingsPendingForCountsAPartysOwn: a party is told how many of the
// findings that concern it wait (its volumes that break the rules, the
// pairs with a volume of its), down to none as they are announced; the
// operator every one.
func TestFindingsPendingForCountsAPartysOwn(t *testing.T) {
	ctx := context.Background()
	s, next, findings := findingsScene(t)
	bringIntoForce(t, s, next, "coalition", "russia")
	pendingOf := func(p party.Principal) int64 {
		t.Helper()
		n, err := s.FindingsPendingFor(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	op := party.Principal{Party: party.OperatorName, Operator: true}
	coalition, russia := party.Principal{Party: "coalition"}, party.Principal{Party: "russia"}
	// Russia's six volumes break the rules, and each of the eleven pairs
	// holds a volume of each: the request announced the first flags.
	announced := int64(len(findingEvents(t, s.st, 0)))
	if got := pendingOf(op); got != int64(findings)-announced {
		t.Fatalf("the operator is told %d pending, want %d", got, int64(findings)-announced)
	}
	if got := pendingOf(coalition); got != 11 {
		t.Fatalf("coalition is told %d pending, want its 11 pairs", got)
	}
	if got := pendingOf(russia); got != 17-announced {
		t.Fatalf("russia is told %d pending, want %d", got, 17-announced)
	}
	for range findings {
		if pendingOf(op) == 0 {
			break
		}
		if err := s.announceFindingsJob(ctx, s.now()); err != nil {
			t.Fatal(err)
		}
		wantRussia := int64(findings) - int64(len(findingEvents(t, s.st, 0)))
		if got := pendingOf(russia); got != wantRussia {
			t.Fatalf("russia is told %d pending, want %d", got, wantRussia)
		}
	}
	if c, r := pendingOf(coalition), pendingOf(russia); c != 0 || r != 0 {
		t.Fatalf("once every finding is announced coalition is told %d, russia %d, want none", c, r)
	}
}

// TestSetAsideBatchLowersItsPartiesCounts: a batch set aside is taken off
// the counts of the parties its content still names.
func TestSetAsideBatchLowersItsPartiesCounts(t *testing.T) {
	ctx := context.Background()
	s, _ := newEmbedded(t)
	row := `{"rules_version":999,"flags":[{"volume":{"id":"v","party":"coalition","version":"1"},"field":"max_window_s","reason":"r"}],` +
		`"pairs":[{"a":{"party":"coalition"},"b":{"party":"russia"}}]}`
	if err := s.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutMeta(findingsBatchKey(0), []byte(row)); err != nil {
			return err
		}
		return putJSONMeta(tx, findingsQueueKey, findingsQueue{Head: 0, Tail: 2, Findings: 5, ByParty: map[string]int64{"coalition": 4, "russia": 2}})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.write(ctx, func(tx store.Tx) error {
		rec, err := s.setAsideBatch(tx, 0)
		if err == nil && rec == nil {
			t.Error("the batch was not set aside")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]int64{"coalition": 2, "russia": 1} {
		if n, err := s.FindingsPendingFor(ctx, party.Principal{Party: p}); err != nil || n != want {
			t.Errorf("%s is told %d pending (%v), want %d", p, n, err, want)
		}
	}
}

// TestAnnouncingRequestGoneIsNoFailureOfTheBatch: the activating request
// announces the first batches in its own context; a client that hung up
// meanwhile (its context cancelled, the batch's transaction with it) was
// counted as a failure of the batch (deconflict_findings_batch_failures,
// and from three in a row an ERROR saying every later batch waits), an
// alarm for the operator where nothing is wrong: the periodic job
// announces the batch.
func TestAnnouncingRequestGoneIsNoFailureOfTheBatch(t *testing.T) {
	ctx := context.Background()
	s, next, _ := findingsScene(t)
	reqCtx, hangUp := context.WithCancel(ctx)
	s.onFindingsBatch = func(int64) error {
		// The client hangs up as the batch is written: the store's
		// transaction fails with the request's context.
		hangUp()
		return reqCtx.Err()
	}
	version, err := s.ProposeRules(ctx, party.Principal{Party: party.OperatorName, Operator: true}, next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AnswerRules(ctx, party.Principal{Party: "coalition"}, version.Version, true, "", version.RulesSHA256); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AnswerRules(reqCtx, party.Principal{Party: "russia"}, version.Version, true, "", version.RulesSHA256); err != nil {
		t.Fatal(err)
	}
	if n := counterValue(t, s.m.FindingsBatchFailures); n != 0 {
		t.Errorf("%v failures of a batch counted for a request whose client hung up, want none", n)
	}
	if n := s.findingsFailures.inARow(); n != 0 {
		t.Errorf("%d failures in a row counted, want none", n)
	}
	s.onFindingsBatch = nil
	if err := s.announceFindingsJob(ctx, s.now()); err != nil {
		t.Fatal(err)
	}
	if got := len(findingEvents(t, s.st, version.Version)); got == 0 {
		t.Fatal("the periodic job announced nothing after the request's client hung up")
	}
}
