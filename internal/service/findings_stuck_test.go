package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

// logBuffer collects a service's log, safe for its goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// errors lists the lines logged at level ERROR.
func (b *logBuffer) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out
}

func newLogBuffer() (*logBuffer, *slog.Logger) {
	b := &logBuffer{}
	return b, slog.New(slog.NewTextHandler(b, nil))
}

// queueCorruptBatch puts a batch whose row is not a batch at the head of
// the (empty) queue, as the store could hold it after a fault: every
// later batch is queued behind it.
func queueCorruptBatch(t *testing.T, s *Service, row string) {
	t.Helper()
	if err := s.st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.PutMeta(findingsBatchKey(0), []byte(row)); err != nil {
			return err
		}
		return putJSONMeta(tx, findingsQueueKey, findingsQueue{Head: 0, Tail: 1, Findings: 1})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestUnreadableFindingsBatchIsSetAsideAuditedAndTold: a batch of
// findings that could never be announced (its row corrupt) held every
// later one back for good, and only a warning at each tick showed it: the
// volumes breaking new rules and the pairs conflicting under them were
// never told. The failures are counted (metrics), logged as errors
// naming the batch, and after findingsSetAsideAfter in a row the batch
// is set aside: kept in the store, audited to everyone, counted; the
// later batches are announced.
func TestUnreadableFindingsBatchIsSetAsideAuditedAndTold(t *testing.T) {
	t.Run("corrupt row", func(t *testing.T) {
		unreadableFindingsBatchIsSetAside(t, `{"rules_version":`, 0, 0)
	})
	// A batch naming rules whose proposal the store does not hold.
	t.Run("rules gone", func(t *testing.T) {
		unreadableFindingsBatchIsSetAside(t, `{"rules_version":999,"flags":[{"volume":{"id":"v","party":"coalition","version":"1"},"field":"max_window_s","reason":"r"}]}`, 999, 1)
	})
}

func unreadableFindingsBatchIsSetAside(t *testing.T, corrupt string, wantVersion int64, wantFindings int) {
	ctx := context.Background()
	logs, log := newLogBuffer()
	s, next, findings := findingsSceneLogged(t, log)
	queueCorruptBatch(t, s, corrupt)
	version := bringIntoForce(t, s, next, "coalition", "russia")
	if got := len(findingEvents(t, s.st, version)); got != 0 {
		t.Fatalf("%d findings announced behind the unreadable batch, want none yet", got)
	}
	for range findings + findingsSetAsideAfter {
		if pending, err := s.FindingsPending(ctx); err != nil || pending == 0 {
			break
		}
		_ = s.announceFindingsJob(ctx, s.now())
	}
	if got := len(findingEvents(t, s.st, version)); got != findings {
		t.Fatalf("%d findings of %d announced after the unreadable batch, want every one", got, findings)
	}
	if n := counterValue(t, s.m.FindingsBatchFailures); n != findingsSetAsideAfter {
		t.Errorf("%v failures counted, want %d", n, findingsSetAsideAfter)
	}
	if n := counterValue(t, s.m.FindingsBatchesSetAside); n != 1 {
		t.Errorf("%v batches counted as set aside, want 1", n)
	}
	if n := s.findingsFailures.inARow(); n != 0 {
		t.Errorf("%d failures in a row after the later batches were announced, want 0", n)
	}
	var named bool
	for _, line := range logs.errors() {
		named = named || (strings.Contains(line, "set aside") && strings.Contains(line, "batch=0"))
	}
	if !named {
		t.Errorf("no error logged naming batch 0 set aside: %q", logs.errors())
	}
	// Audited to everyone, and kept as it was.
	var rec setAsideBatch
	err := s.st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(0, 100000)
		if err != nil {
			return err
		}
		found := 0
		for _, r := range recs {
			if r.Kind == "rules_findings_set_aside" {
				found++
				var sealed struct {
					Content setAsideBatch `json:"content"`
					Readers []string      `json:"readers"`
				}
				if err := json.Unmarshal(r.Content, &sealed); err != nil {
					return err
				}
				if len(sealed.Readers) != 1 || sealed.Readers[0] != "*" {
					t.Errorf("the record is for %v, want everyone", sealed.Readers)
				}
				rec = sealed.Content
			}
		}
		if found != 1 {
			return errors.New("want one rules_findings_set_aside audit record")
		}
		kept, err := tx.GetMeta(rec.KeptAs)
		if err != nil {
			return err
		}
		if string(kept) != corrupt {
			t.Errorf("kept %q, want %q", kept, corrupt)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Batch != 0 || rec.Error == "" || !strings.HasPrefix(rec.KeptAs, findingsSetAsidePrefix) || rec.RulesVersion != wantVersion {
		t.Errorf("audit record %+v, want batch 0, its error, where it is kept and rules version %d", rec, wantVersion)
	}
	// The count of its findings is the operator's (the record is to
	// every party: TestSetAsideBatchTellsNoPartyHowManyFindingsOfOthers).
	var counted bool
	for _, line := range logs.errors() {
		counted = counted || strings.Contains(line, "set aside") && strings.Contains(line, fmt.Sprintf("findings=%d", wantFindings))
	}
	if !counted {
		t.Errorf("no error logged saying the batch held %d findings: %q", wantFindings, logs.errors())
	}
}

var errAnnouncementRefused = errors.New("test: the announcement's write refused")

// TestFindingsBatchFailingOtherwiseIsNeverSetAside: a batch that can be
// read but whose announcement fails (the store, a write refused) is not
// set aside, however often it fails: its findings are tried again until
// they are announced, every later batch waiting; the failures are
// counted and, from findingsStuckAfter in a row, logged as errors naming
// the batch.
func TestFindingsBatchFailingOtherwiseIsNeverSetAside(t *testing.T) {
	ctx := context.Background()
	logs, log := newLogBuffer()
	s, next, findings := findingsSceneLogged(t, log)
	var refuse sync.Mutex
	refusing := true
	s.onFindingsBatch = func(i int64) error {
		refuse.Lock()
		defer refuse.Unlock()
		if refusing && i == 0 {
			return errAnnouncementRefused
		}
		return nil
	}
	version := bringIntoForce(t, s, next, "coalition", "russia")
	const ticks = 3 * findingsSetAsideAfter
	for range ticks {
		if err := s.announceFindingsJob(ctx, s.now()); !errors.Is(err, errAnnouncementRefused) {
			t.Fatalf("the job's error is %v, want the refusal", err)
		}
	}
	if got := len(findingEvents(t, s.st, version)); got != 0 {
		t.Fatalf("%d findings announced past the failing batch, want none", got)
	}
	if n := counterValue(t, s.m.FindingsBatchesSetAside); n != 0 {
		t.Fatalf("%v batches set aside, want none", n)
	}
	if n := counterValue(t, s.m.FindingsBatchFailures); n != ticks+1 {
		t.Errorf("%v failures counted, want %d (the request's and each tick's)", n, ticks+1)
	}
	if n := s.findingsFailures.inARow(); n != ticks+1 {
		t.Errorf("%d failures in a row, want %d", n, ticks+1)
	}
	var named int
	for _, line := range logs.errors() {
		if strings.Contains(line, "batch=0") && strings.Contains(line, "cannot be announced") {
			named++
		}
	}
	if want := ticks + 1 - (findingsStuckAfter - 1); named != want {
		t.Errorf("%d errors logged naming batch 0, want %d: %q", named, want, logs.errors())
	}
	refuse.Lock()
	refusing = false
	refuse.Unlock()
	for range findings {
		if pending, err := s.FindingsPending(ctx); err != nil || pending == 0 {
			break
		}
		if err := s.announceFindingsJob(ctx, s.now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(findingEvents(t, s.st, version)); got != findings {
		t.Fatalf("%d findings of %d announced once the write went through, want every one", got, findings)
	}
}

// TestUnreadableFindingsQueueIsSetAsideAndRebuilt: the queue's own row
// corrupt (not a queue), every tick failed reading it, with only a
// warning, for ever: no batch queued behind it was ever announced. From
// findingsSetAsideAfter failures in a row the row is set aside (kept in
// the store, audited to everyone, counted, one ERROR) and the queue
// rebuilt from the batches' rows, as it was, and the batches go on.
func TestUnreadableFindingsQueueIsSetAsideAndRebuilt(t *testing.T) {
	ctx := context.Background()
	logs, log := newLogBuffer()
	s, next, findings := findingsSceneLogged(t, log)
	// Every batch of the activation left queued.
	s.onFindingsBatch = func(int64) error { return errAnnouncementRefused }
	version := bringIntoForce(t, s, next, "coalition", "russia")
	s.onFindingsBatch = nil
	var queued findingsQueue
	const corrupt = `{"head":0,"tail":`
	if err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if queued, err = readFindingsQueue(tx); err != nil {
			return err
		}
		return tx.PutMeta(findingsQueueKey, []byte(corrupt))
	}); err != nil {
		t.Fatal(err)
	}
	if queued.Tail-queued.Head != int64(findings) || len(queued.ByParty) == 0 {
		t.Fatalf("queued %+v, want %d batches of one finding, counted by party", queued, findings)
	}
	failuresBefore := counterValue(t, s.m.FindingsBatchFailures)
	for i := range findingsSetAsideAfter - 1 {
		var unreadable *unreadableQueueError
		if err := s.announceFindings(ctx, 1); !errors.As(err, &unreadable) {
			t.Fatalf("tick %d: %v, want the queue unreadable", i, err)
		}
	}
	if len(logs.errors()) != 0 {
		t.Fatalf("errors logged before the queue was set aside: %q", logs.errors())
	}
	if err := s.announceFindings(ctx, 1); err != nil {
		t.Fatalf("the tick that sets the queue aside: %v", err)
	}
	if err := s.st.View(ctx, func(tx store.Tx) error {
		rebuilt, err := readFindingsQueue(tx)
		if err == nil && !reflect.DeepEqual(rebuilt, queued) {
			t.Errorf("the queue rebuilt is %+v, want %+v as it was", rebuilt, queued)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for range findings {
		if pending, err := s.FindingsPending(ctx); err != nil || pending == 0 {
			break
		}
		if err := s.announceFindingsJob(ctx, s.now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := findingEvents(t, s.st, version); len(got) != findings || len(slices.Compact(slices.Sorted(slices.Values(got)))) != findings {
		t.Fatalf("%d findings announced (%d distinct) after the queue was set aside, want each of %d once", len(got), len(slices.Compact(slices.Sorted(slices.Values(got)))), findings)
	}
	if n := counterValue(t, s.m.FindingsBatchFailures) - failuresBefore; n != findingsSetAsideAfter {
		t.Errorf("%v failures counted, want %d", n, findingsSetAsideAfter)
	}
	if n := counterValue(t, s.m.FindingsQueuesSetAside); n != 1 {
		t.Errorf("%v queues counted as set aside, want 1", n)
	}
	if n := counterValue(t, s.m.FindingsBatchesSetAside); n != 0 {
		t.Errorf("%v batches set aside, want none", n)
	}
	if errs := logs.errors(); len(errs) != 1 || !strings.Contains(errs[0], "queue of findings") || !strings.Contains(errs[0], "set aside") {
		t.Errorf("errors logged %q, want one saying the queue was set aside", errs)
	}
	// Audited to everyone, and kept as it was.
	err := s.st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(0, 100000)
		if err != nil {
			return err
		}
		var found []setAsideQueue
		for _, r := range recs {
			if r.Kind != "rules_findings_queue_set_aside" {
				continue
			}
			var sealed struct {
				Content json.RawMessage `json:"content"`
				Readers []string        `json:"readers"`
			}
			if err := json.Unmarshal(r.Content, &sealed); err != nil {
				return err
			}
			if len(sealed.Readers) != 1 || sealed.Readers[0] != "*" {
				t.Errorf("the record is for %v, want everyone", sealed.Readers)
			}
			// To everyone: nothing that counts the findings of
			// other parties' volumes (the queue's head, tail,
			// batches, findings), which the operator's log says.
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(sealed.Content, &fields); err != nil {
				return err
			}
			if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, []string{"error", "kept_as", "sha256"}) {
				t.Errorf("the record to everyone holds %v, want only error, kept_as and sha256", got)
			}
			var rec setAsideQueue
			if err := json.Unmarshal(sealed.Content, &rec); err != nil {
				return err
			}
			found = append(found, rec)
		}
		if len(found) != 1 {
			return fmt.Errorf("%d rules_findings_queue_set_aside audit records, want one", len(found))
		}
		rec := found[0]
		if rec.Error == "" {
			t.Errorf("audit record %+v, want its error", rec)
		}
		if errs := logs.errors(); len(errs) != 1 || !strings.Contains(errs[0], fmt.Sprintf("head=%d tail=%d batches=%d findings=%d", queued.Head, queued.Tail, findings, queued.Findings)) {
			t.Errorf("the ERROR log %q does not say the queue rebuilt (%+v)", errs, queued)
		}
		kept, err := tx.GetMeta(rec.KeptAs)
		if err != nil {
			return err
		}
		if string(kept) != corrupt {
			t.Errorf("kept %q, want %q", kept, corrupt)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSetAsideBatchTellsNoPartyHowManyFindingsOfOthers: the audit record
// of a batch set aside is to everyone (any party may have missed notices
// of its volumes), and it told every party how many findings the batch
// held, of whichever parties' volumes: russia learnt that coalition had
// three volumes breaking the new rules, a number a party is told of
// nobody else's (FindingsPendingFor). The record says which batch, of
// which rules, where it is kept and its hash; the count is the
// operator's (the ERROR log, the queue's count).
func TestSetAsideBatchTellsNoPartyHowManyFindingsOfOthers(t *testing.T) {
	ctx := context.Background()
	logs, log := newLogBuffer()
	s, next, findings := findingsSceneLogged(t, log)
	flag := `{"volume":{"id":"v%d","party":"coalition","version":"1"},"field":"max_window_s","reason":"r"}`
	queueCorruptBatch(t, s, `{"rules_version":999,"flags":[`+fmt.Sprintf(flag, 1)+`,`+fmt.Sprintf(flag, 2)+`,`+fmt.Sprintf(flag, 3)+`]}`)
	bringIntoForce(t, s, next, "coalition", "russia")
	for range findings + findingsSetAsideAfter {
		if pending, err := s.FindingsPending(ctx); err != nil || pending == 0 {
			break
		}
		_ = s.announceFindingsJob(ctx, s.now())
	}
	if n := counterValue(t, s.m.FindingsBatchesSetAside); n != 1 {
		t.Fatalf("%v batches set aside, want 1", n)
	}
	err := s.st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(0, 100000)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Kind != "rules_findings_set_aside" {
				continue
			}
			var sealed struct {
				Content map[string]json.RawMessage `json:"content"`
				Readers []string                   `json:"readers"`
			}
			if err := json.Unmarshal(r.Content, &sealed); err != nil {
				return err
			}
			if _, told := sealed.Content["findings"]; told {
				t.Errorf("the record to %v tells how many findings the batch held: %s", sealed.Readers, r.Content)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var logged bool
	for _, line := range logs.errors() {
		logged = logged || strings.Contains(line, "set aside") && strings.Contains(line, "findings=3")
	}
	if !logged {
		t.Errorf("the operator's log does not say the batch held 3 findings: %q", logs.errors())
	}
}

// TestSetAsideQueueRecordTellsNoCounts: the error in the record to
// everyone of a queue set aside said the row's head and tail, the count
// of every batch of findings ever queued; it says only how the row is
// unreadable, and the operator's log says the rest.
func TestSetAsideQueueRecordTellsNoCounts(t *testing.T) {
	ctx := context.Background()
	logs, log := newLogBuffer()
	s, _, _ := findingsSceneLogged(t, log)
	const head = 7654321
	if err := s.st.Update(ctx, func(tx store.Tx) error {
		return tx.PutMeta(findingsQueueKey, fmt.Appendf(nil, `{"head":%d,"tail":5}`, head))
	}); err != nil {
		t.Fatal(err)
	}
	for range findingsSetAsideAfter {
		_ = s.announceFindings(ctx, 1)
	}
	if n := counterValue(t, s.m.FindingsQueuesSetAside); n != 1 {
		t.Fatalf("%v queues set aside, want 1", n)
	}
	var records []string
	if err := s.st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(0, 100000)
		for _, r := range recs {
			if r.Kind == "rules_findings_queue_set_aside" {
				records = append(records, string(r.Content))
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(records) != 1 || !strings.Contains(records[0], "head and tail out of order") || strings.Contains(records[0], fmt.Sprint(head)) {
		t.Errorf("records to everyone %q, want one saying the head and tail are out of order, not what they are", records)
	}
	if errs := logs.errors(); len(errs) != 1 || !strings.Contains(errs[0], fmt.Sprint(head)) {
		t.Errorf("the operator's log %q does not say the head and tail", errs)
	}
}

// String is all that was logged.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
