package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/internal/sqlcore"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/storetest"
	"github.com/deconflict/deconflict/internal/testutil/childproc"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(pausedWriterEnv); url != "" {
		os.Exit(pausedWriter(url, os.Getenv(pausedWriterWhereEnv)))
	}
	os.Exit(pgtest.Main(m))
}

var ctx = context.Background()

// urls gives each test its own database, the same on every open, so that
// the suite can close and reopen a store.
var urls sync.Map // *testing.T -> string

func openFor(t *testing.T) store.Store {
	t.Helper()
	u, ok := urls.Load(t)
	if !ok {
		u, _ = urls.LoadOrStore(t, pgtest.NewDatabase(t))
	}
	s, err := postgres.Open(ctx, u.(string))
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, openFor)
}

func schemaVersions(t *testing.T, url string) []int64 {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenMigratesToLatestOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	for range 2 {
		s, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		got := schemaVersions(t, url)
		storetest.CheckSchemaVersions(t, got, sqlcore.Latest())
	}
}

// TestConcurrentOpen starts several replicas on an empty database at once:
// they race to migrate, and all must end up open on one schema.
func TestConcurrentOpen(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(ctx, url)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Open: %v", i, err)
		}
	}
	if got := schemaVersions(t, url); len(got) != sqlcore.Latest() {
		t.Fatalf("schema_migrations holds %v after concurrent opens", got)
	}
}

func TestMigrateFromPrevious(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if err := postgres.MigrateTo(ctx, url, storetest.MigrationFrom); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range storetest.MigrationEvents {
		if _, err := conn.Exec(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'event'`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO events (id, time_ns, kind, audience, body) VALUES ($1, $2, $3, $4, $5)`, i+1, e.TimeNs, e.Kind, e.Audience, []byte(e.Body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range storetest.MigrationMessages {
		if _, err := conn.Exec(ctx, `INSERT INTO messages (id, sender, recipients, thread, kind, state, created_ns, deadline_ns, body) VALUES ($1, $2, $3, $4, 'notice', $5, $6, $7, $8)`,
			m.ID, m.Sender, m.Recipients, m.Thread, m.State, m.CreatedNs, m.DeadlineNs, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Parties {
			if _, err := conn.Exec(ctx, `INSERT INTO message_parties (party, message_id, created_ns) VALUES ($1, $2, $3)`, p, m.ID, m.CreatedNs); err != nil {
				t.Fatal(err)
			}
		}
	}
	conn.Close(ctx)

	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckMigrated(t, s, schemaVersions(t, url), sqlcore.Latest())
	storetest.CheckNumbersGoOn(t, s)
}

// replicas opens n stores on one database, as n replicas would.
func replicas(t *testing.T, n int) []store.Store {
	t.Helper()
	url := pgtest.NewDatabase(t)
	out := make([]store.Store, n)
	for i := range out {
		s, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out
}

// TestLockVolumesSerialises runs Updates through two replicas at once that
// each lock the volumes, read a volume and write it back extended. If two
// ever interleaved (both read the same version), one write would be lost.
func TestLockVolumesSerialises(t *testing.T) {
	rs := replicas(t, 2)
	err := rs[0].Update(ctx, func(tx store.Tx) error {
		_, err := tx.PutVolume(store.Volume{ID: "counter", Version: "0", Body: []byte("0")}, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	for w := range writers {
		s := rs[w%len(rs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				var read string
				err := s.Update(ctx, func(tx store.Tx) error {
					if err := tx.LockVolumes(); err != nil {
						return err
					}
					v, err := tx.GetVolume("counter")
					if err != nil {
						return err
					}
					read = v.Version
					next := v
					next.Version = v.Version + "+"
					next.Body = append(append([]byte(nil), v.Body...), 'x')
					_, err = tx.PutVolume(next, v.Version)
					return err
				})
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
				mu.Lock()
				if seen[read] {
					t.Errorf("two committed Updates both read version %q: they interleaved", read)
				}
				seen[read] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	err = rs[1].View(ctx, func(tx store.Tx) error {
		v, err := tx.GetVolume("counter")
		if err != nil {
			return err
		}
		if want := 1 + writers*each; len(v.Body) != want {
			t.Errorf("counter volume has %d marks, want %d: an Update was lost", len(v.Body), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEventIDsGapFreeAcrossReplicas appends events through two replicas at
// once: the ids they get back are exactly 1..n.
func TestEventIDsGapFreeAcrossReplicas(t *testing.T) {
	rs := replicas(t, 2)
	const workers, each = 6, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []int64
	for w := range workers {
		s := rs[w%len(rs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				var id int64
				err := s.Update(ctx, func(tx store.Tx) error {
					var err error
					id, err = tx.AppendEvent(store.Event{Kind: "x", Audience: []string{"*"}})
					return err
				})
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("serialization retries: %d and %d", rs[0].(*postgres.Store).Retries(), rs[1].(*postgres.Store).Retries())
	slices.Sort(ids)
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("ids returned by two replicas are not 1..%d: position %d holds %d", workers*each, i, id)
		}
	}
	err := rs[0].View(ctx, func(tx store.Tx) error {
		events, err := tx.EventsAfter(0, 10000)
		if err != nil {
			return err
		}
		if len(events) != workers*each || events[len(events)-1].ID != int64(workers*each) {
			t.Errorf("%d events stored, last id %d; want %d", len(events), events[len(events)-1].ID, workers*each)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRetryBound: an fn that always fails with a serialization error is run
// exactly MaxAttempts times, and that error surfaces.
func TestRetryBound(t *testing.T) {
	url := pgtest.NewDatabase(t)
	for _, max := range []int{0, 1, 3} {
		s, err := postgres.OpenOptions(ctx, url, postgres.Options{MaxAttempts: max})
		if err != nil {
			t.Fatal(err)
		}
		want := max
		if want == 0 {
			want = postgres.DefaultMaxAttempts
		}
		for _, code := range []string{"40001", "40P01"} {
			var calls atomic.Int32
			err = s.Update(ctx, func(tx store.Tx) error {
				calls.Add(1)
				if _, err := tx.AppendEvent(store.Event{Kind: "x"}); err != nil {
					return err
				}
				return &pgconn.PgError{Code: code, Message: "injected"}
			})
			if got := int(calls.Load()); got != want {
				t.Errorf("MaxAttempts %d, code %s: fn called %d times, want %d", max, code, got, want)
			}
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != code || !postgres.Retryable(err) {
				t.Errorf("MaxAttempts %d: Update returned %v, want the %s error", max, err, code)
			}
		}
		// Another error is not retried.
		var calls atomic.Int32
		boom := errors.New("boom")
		err = s.Update(ctx, func(tx store.Tx) error { calls.Add(1); return boom })
		if !errors.Is(err, boom) || calls.Load() != 1 {
			t.Errorf("plain error: Update returned %v after %d calls, want boom after 1", err, calls.Load())
		}
		s.Close()
	}
	// Nothing of the failed attempts remains.
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.View(ctx, func(tx store.Tx) error {
		if last, err := tx.LastEventID(); err != nil || last != 0 {
			t.Errorf("LastEventID after failed attempts = %d, %v; want 0", last, err)
		}
		return nil
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := postgres.Open(ctx, pgtest.NewDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// TestAuditChainAcrossReplicas: replicas that each extend the audit chain
// from the last record they read (as package audit does) build one chain:
// seq 1..n, each record linked to the one before.
func TestAuditChainAcrossReplicas(t *testing.T) {
	rs := replicas(t, 2)
	const workers, each = 4, 15
	var wg sync.WaitGroup
	for w := range workers {
		s := rs[w%len(rs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := s.Update(ctx, func(tx store.Tx) error {
					prev, err := tx.LastAudit()
					switch {
					case errors.Is(err, store.ErrNotFound):
						prev = store.AuditRecord{Hash: []byte("genesis")}
					case err != nil:
						return err
					}
					h := sha256.Sum256(append(append([]byte{}, prev.Hash...), fmt.Sprintf("%d/%d", w, i)...))
					return tx.AppendAudit(store.AuditRecord{Seq: prev.Seq + 1, Actor: fmt.Sprint(w), Kind: "k",
						Content: []byte(fmt.Sprintf("%d/%d", w, i)), PrevHash: prev.Hash, Hash: h[:]})
				})
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	err := rs[1].View(ctx, func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 10000)
		if err != nil {
			return err
		}
		if len(recs) != workers*each {
			t.Fatalf("%d audit records, want %d", len(recs), workers*each)
		}
		prevHash := []byte("genesis")
		for i, r := range recs {
			h := sha256.Sum256(append(append([]byte{}, prevHash...), r.Content...))
			if r.Seq != int64(i+1) || !bytes.Equal(r.PrevHash, prevHash) || !bytes.Equal(r.Hash, h[:]) {
				t.Fatalf("record %d (seq %d) does not extend the chain", i, r.Seq)
			}
			prevHash = r.Hash
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoncesAcrossReplicas: replicas given the same nonces at once each
// count every nonce fresh exactly once between them, whether their
// transactions overlap or not.
func TestNoncesAcrossReplicas(t *testing.T) {
	rs := replicas(t, 2)
	const nonces, tries = 50, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := map[string]int{}
	now := time.Now()
	for w := range 2 * tries {
		s := rs[w%len(rs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range nonces {
				n := fmt.Sprintf("n%d", i)
				var ok bool
				err := s.Update(ctx, func(tx store.Tx) error {
					var err error
					ok, err = tx.UseNonce("key", n, now, now.Add(10*time.Minute))
					return err
				})
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
				if ok {
					mu.Lock()
					fresh[n]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := range nonces {
		if n := fresh[fmt.Sprintf("n%d", i)]; n != 1 {
			t.Errorf("nonce n%d was fresh %d times across %d uses on 2 replicas, want once", i, n, 2*tries)
		}
	}
}

// pausedWriterEnv makes the test binary the replica that
// TestPausedWriterDoesNotStallOthers pauses: pausedWriter on the database
// it names.
const (
	pausedWriterEnv      = "DECONFLICT_TEST_PAUSED_WRITER_URL"
	pausedWriterWhereEnv = "DECONFLICT_TEST_PAUSED_WRITER_WHERE"
)

// pausedWriter runs one Update that appends "paused-1", says "holding" on
// stdout and, the first time only, waits for a line on stdin (the test
// freezes the process meanwhile), then appends "paused-2" unless where is
// "before its commit". It prints the outcome and the number of runs of fn.
func pausedWriter(url, where string) int {
	s, err := postgres.Open(ctx, url)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer s.Close()
	in := bufio.NewReader(os.Stdin)
	attempts := 0
	err = s.Update(ctx, func(tx store.Tx) error {
		attempts++
		if _, err := tx.AppendEvent(store.Event{Kind: "paused-1", Audience: []string{"*"}}); err != nil {
			return err
		}
		if attempts == 1 {
			fmt.Println("holding")
			if _, err := in.ReadString('\n'); err != nil {
				return err
			}
		}
		if where == "before its commit" {
			return nil
		}
		_, err := tx.AppendEvent(store.Event{Kind: "paused-2", Audience: []string{"*"}})
		return err
	})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ok", attempts)
	return 0
}

// TestPausedWriterDoesNotStallOthers: a replica frozen (SIGSTOP; as a hung
// host or a partition that leaves its connection open) in the middle of a
// write transaction holds the writers' lock; the writes of another replica
// must go on all the same, and the frozen one's transaction, once it runs
// again, must fail whole and be run again: nothing of the ended attempt is
// left, nothing is written twice.
func TestPausedWriterDoesNotStallOthers(t *testing.T) {
	for _, where := range []string{"before its commit", "between two statements"} {
		t.Run(where, func(t *testing.T) {
			url := pgtest.NewDatabase(t)
			other, err := postgres.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			child := childproc.StartFrozen(t, pausedWriterEnv+"="+url, pausedWriterWhereEnv+"="+where)
			otherDone := make(chan error, 1)
			go func() {
				otherDone <- other.Update(ctx, func(tx store.Tx) error {
					_, err := tx.AppendEvent(store.Event{Kind: "other", Audience: []string{"*"}})
					return err
				})
			}()
			// Not the promise (that is pausedWriterTimeout, a few seconds):
			// how long the test waits before it calls the stall a stall.
			const stall = 30 * time.Second
			select {
			case err := <-otherDone:
				if err != nil {
					t.Fatalf("the other replica's write failed: %v", err)
				}
			case <-time.After(stall):
				t.Fatalf("the other replica's write is still blocked after %v behind a frozen replica holding the writers' lock", stall)
			}
			if said := child.Resume(t); said != "ok 2" {
				t.Fatalf("the resumed writer said %q, want ok 2: its transaction ended while it was frozen, then ran again", said)
			}
			want := []string{"other", "paused-1", "paused-2"}
			if where == "before its commit" {
				want = want[:2]
			}
			checkEvents(t, other, want)
		})
	}
}

// checkEvents fails unless the store holds exactly the events of kinds
// want, in order, with ids 1..n.
func checkEvents(t *testing.T, s store.Store, want []string) {
	t.Helper()
	err := s.View(ctx, func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100000)
		if err != nil {
			return err
		}
		var got []string
		for i, e := range evs {
			if e.ID != int64(i+1) {
				t.Errorf("event %d has id %d: ids are not gap-free", i+1, e.ID)
			}
			got = append(got, e.Kind)
		}
		if !slices.Equal(got, want) {
			t.Errorf("stored events %v, want %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLongComputationKeepsItsTransaction: an fn that computes between two
// statements for longer than the server lets a frozen replica's
// transaction sit idle (bringing new rules into force over many volumes
// takes that long) keeps its transaction: it runs once and commits. Then
// it runs short statements and reads, with pauses, for as long again: the
// keep-alive shares the connection with them without a clash.
func TestLongComputationKeepsItsTransaction(t *testing.T) {
	s := replicas(t, 1)[0]
	runs := 0
	var want []string
	err := s.Update(ctx, func(tx store.Tx) error {
		runs++
		want = []string{"before"}
		if _, err := tx.AppendEvent(store.Event{Kind: "before", Audience: []string{"*"}}); err != nil {
			return err
		}
		time.Sleep(3 * postgres.PausedWriterTimeout)
		for start := time.Now(); time.Since(start) < 2*postgres.PausedWriterTimeout; {
			if _, err := tx.AppendEvent(store.Event{Kind: "busy", Audience: []string{"*"}}); err != nil {
				return err
			}
			want = append(want, "busy")
			if _, err := tx.EventsAfter(0, 1000); err != nil {
				return err
			}
			time.Sleep(postgres.PausedWriterTimeout / 200)
		}
		want = append(want, "after")
		_, err := tx.AppendEvent(store.Event{Kind: "after", Audience: []string{"*"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 1 {
		t.Errorf("fn ran %d times, want once: its transaction was ended while its replica was computing", runs)
	}
	checkEvents(t, s, want)
}

// TestLockWaitFailsInsteadOfHanging: a write that cannot get the writers'
// lock because its holder never lets go (here another client's open
// transaction, which no timeout of the store's sessions ends) fails with
// a lock timeout, retried and then returned to the caller, instead of
// waiting for as long as the holder lives.
func TestLockWaitFailsInsteadOfHanging(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s, err := postgres.OpenOptions(ctx, url, postgres.Options{MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT value FROM counters WHERE name = 'event' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx store.Tx) error {
			_, err := tx.AppendEvent(store.Event{Kind: "x", Audience: []string{"*"}})
			return err
		})
	}()
	// Not the promise (two waits of writersLockWait): how long the test
	// waits before it calls the wait a hang.
	const hang = 60 * time.Second
	select {
	case err := <-done:
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55P03" || !postgres.Retryable(err) {
			t.Fatalf("Update returned %v, want the lock timeout (55P03) after its attempts", err)
		}
	case <-time.After(hang):
		t.Fatalf("Update still waits for the writers' lock after %v", hang)
	}
	if n := s.Retries(); n != 1 {
		t.Errorf("%d retries, want 1 (MaxAttempts 2)", n)
	}
}
