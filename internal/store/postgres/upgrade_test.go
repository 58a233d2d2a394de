package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/internal/sqlcore"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/jackc/pgx/v5"
)

// migrateBeyond records in the database at url a migration past the last
// this program knows, as a newer version migrating it would.
func migrateBeyond(t *testing.T, st *postgres.Store) int {
	t.Helper()
	v := sqlcore.Latest() + 1
	if _, err := st.Pool().Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_ns) VALUES ($1, 'of a newer version', 0)`, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// wantUpgraded checks that err is an *store.UpgradedError naming both
// versions.
func wantUpgraded(t *testing.T, what string, err error, stored int) {
	t.Helper()
	var up *store.UpgradedError
	if !errors.As(err, &up) || up.Stored != stored || up.Known != sqlcore.Latest() {
		t.Fatalf("%s: %v, want the store's schema %d beyond the program's %d", what, err, stored, sqlcore.Latest())
	}
	if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(stored)) || !strings.Contains(msg, strconv.Itoa(sqlcore.Latest())) {
		t.Errorf("%s: %q does not name both versions", what, msg)
	}
}

// TestStoreMigratedBeyondTheProgram: during a rolling upgrade a newer
// version migrates the shared store while replicas of the older one still
// run; they wrote alert events and messages without keeping what the new
// migrations keep. A program opening a store migrated beyond it refuses
// to, naming both versions; one that has it open already finds out at its
// next CheckSchema, and every Update from then on is refused without
// running, while reads go on.
func TestStoreMigratedBeyondTheProgram(t *testing.T) {
	url := pgtest.NewDatabase(t)
	old, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema of a store at this program's version: %v", err)
	}
	beyond := migrateBeyond(t, old)

	_, err = postgres.Open(ctx, url)
	wantUpgraded(t, "opening the store", err, beyond)

	ran := false
	wantUpgraded(t, "CheckSchema", old.CheckSchema(ctx), beyond)
	err = old.Update(ctx, func(tx store.Tx) error {
		ran = true
		return tx.PutMeta("written", []byte("in the old way"))
	})
	wantUpgraded(t, "an Update after the check", err, beyond)
	if ran {
		t.Error("the refused Update ran its transaction")
	}
	err = old.View(ctx, func(tx store.Tx) error {
		_, err := tx.GetMeta("written")
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the refused write is in the store: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("a read after the fence: %v", err)
	}
}

// TestWriteAfterAMigrationBeforeTheCheck: a write of the old program that
// takes the writers' lock after a newer version's migration committed, and
// before the old program's next CheckSchema (its tick, or its lease's
// renewal, up to seconds later), is refused and raises the fence: written,
// it would be missing from what the newer migrations keep (the open
// alerts, each party's state of its messages).
func TestWriteAfterAMigrationBeforeTheCheck(t *testing.T) {
	url := pgtest.NewDatabase(t)
	old, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Update(ctx, func(tx store.Tx) error { return tx.PutMeta("before", []byte("the migration")) }); err != nil {
		t.Fatalf("a write before the migration: %v", err)
	}
	beyond := migrateBeyond(t, old)
	err = old.Update(ctx, func(tx store.Tx) error {
		return tx.PutMeta("written", []byte("in the old way"))
	})
	wantUpgraded(t, "a write after the migration, before any CheckSchema", err, beyond)
	err = old.View(ctx, func(tx store.Tx) error {
		if _, err := tx.GetMeta("written"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the write after the migration is in the store: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The fence is up: CheckSchema says so without a read, and the next
	// write is refused before it runs.
	wantUpgraded(t, "CheckSchema after the refused write", old.CheckSchema(ctx), beyond)
	ran := false
	err = old.Update(ctx, func(store.Tx) error { ran = true; return nil })
	wantUpgraded(t, "the next write", err, beyond)
	if ran {
		t.Error("the next write ran its transaction")
	}
}

// newerSteps is the history of a newer version of the program: this one's
// migrations and one more that, like the migrations that brought the kept
// alerts and each party's state of its messages, fills what it keeps from
// the rows written before it (here the names of the meta rows, in
// newer_kept_meta). pause, when not nil, runs inside the migration's
// transaction once it has filled it, before it records itself.
func newerSteps(pause func()) []sqlcore.Migration {
	newer := sqlcore.Migration{
		Version:    sqlcore.Latest() + 1,
		Name:       "of a newer version: the meta rows kept",
		Statements: []string{`CREATE TABLE newer_kept_meta AS SELECT name FROM meta`},
	}
	if pause != nil {
		newer.Go = func(context.Context, sqlcore.Querier) error { pause(); return nil }
	}
	return append(slices.Clone(sqlcore.Migrations), newer)
}

// wantAllKept checks that the newer migration kept every meta row in the
// store: one written in the old way after it would be missing.
func wantAllKept(t *testing.T, url string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT name FROM meta WHERE name NOT IN (SELECT name FROM newer_kept_meta) ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("meta rows written in the old way after the newer migration, missing from what it keeps: %q", missing)
	}
}

// untilLockWaitOr polls the database at url until one of its sessions
// waits for a lock (true), or done is closed (false).
func untilLockWaitOr(t *testing.T, url string, done <-chan struct{}) bool {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Error(err)
		return false
	}
	defer conn.Close(ctx)
	for {
		var waiting int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Error(err)
			return false
		}
		if waiting > 0 {
			return true
		}
		select {
		case <-done:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestMigrationWaitsForAWriteThatReadTheOldVersion: a write of the old
// program reads the schema's version, and a newer version's migration
// starts before the write commits. The migration waits for the write's
// commit, and then keeps it; it did not wait, committed first, and the
// write committed in the old way after it, missing from what it keeps.
func TestMigrationWaitsForAWriteThatReadTheOldVersion(t *testing.T) {
	url := pgtest.NewDatabase(t)
	old, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	migrated := make(chan struct{})
	var migrateErr error
	var once sync.Once
	waited := false
	err = old.Update(ctx, func(tx store.Tx) error {
		// The writers' lock is held and the version read (below this
		// program's): a newer version migrates now.
		once.Do(func() {
			go func() {
				defer close(migrated)
				migrateErr = postgres.MigrateSteps(ctx, url, newerSteps(nil))
			}()
			waited = untilLockWaitOr(t, url, migrated)
		})
		return tx.PutMeta("written", []byte("after the version's read"))
	})
	if err != nil {
		t.Fatalf("the write that read the version before the migration: %v", err)
	}
	<-migrated
	if migrateErr != nil {
		t.Fatalf("the newer migration: %v", migrateErr)
	}
	if !waited {
		t.Error("the migration did not wait for the write that holds the writers' lock")
	}
	wantAllKept(t, url)
}

// TestWriteWaitsForAMigration: a write of the old program starts while a
// newer version's migration runs, before it commits. The write waits for
// the migration, then reads the new version and is refused; it did not
// wait, read the old version and committed in the old way, missing from
// what the migration keeps.
func TestWriteWaitsForAMigration(t *testing.T) {
	url := pgtest.NewDatabase(t)
	old, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	migrating, release := make(chan struct{}), make(chan struct{})
	migrated := make(chan error, 1)
	go func() {
		migrated <- postgres.MigrateSteps(ctx, url, newerSteps(func() {
			close(migrating)
			<-release
		}))
	}()
	<-migrating
	written := make(chan struct{})
	var writeErr error
	go func() {
		defer close(written)
		writeErr = old.Update(ctx, func(tx store.Tx) error {
			return tx.PutMeta("written", []byte("during the migration"))
		})
	}()
	waited := untilLockWaitOr(t, url, written)
	close(release)
	if err := <-migrated; err != nil {
		t.Fatalf("the newer migration: %v", err)
	}
	<-written
	if !waited {
		t.Errorf("the write did not wait for the migration (it returned %v)", writeErr)
	}
	wantUpgraded(t, "a write during the migration", writeErr, sqlcore.Latest()+1)
	wantAllKept(t, url)
}

// TestMigrationWhileAReplicaWritesOn: a newer version migrates the store
// while a replica of the older one writes without a pause (a leader
// committing alerts): the migration waits its turn, neither failing nor
// waiting for ever, and every write of the old replica either commits
// before it, and is kept, or is refused.
func TestMigrationWhileAReplicaWritesOn(t *testing.T) {
	url := pgtest.NewDatabase(t)
	old, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	var wg sync.WaitGroup
	var committed, stopped atomic.Int64
	writerErrs := make([]error, 2)
	for w := range writerErrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := old.Update(ctx, func(tx store.Tx) error {
					return tx.PutMeta(fmt.Sprintf("writer %d: %d", w, i), []byte("x"))
				})
				if err != nil {
					writerErrs[w] = err
					stopped.Add(1)
					return
				}
				committed.Add(1)
			}
		}()
	}
	// The writers are under way before the migration starts.
	for committed.Load() < 20 && stopped.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := postgres.MigrateSteps(ctx, url, newerSteps(nil)); err != nil {
		t.Errorf("the migration while a replica writes: %v", err)
	}
	wg.Wait()
	for w, err := range writerErrs {
		wantUpgraded(t, fmt.Sprintf("writer %d after the migration", w), err, sqlcore.Latest()+1)
	}
	wantAllKept(t, url)
}

// TestFrozenMigrationLetsTheWritersGo: a newer version's migration stops
// in the middle of its transaction (its process frozen or paused) while
// it holds the writers out. The server ends it once idle for
// migrationIdleTimeout, and the old replica's write, waiting for it, goes
// on; it waited for as long as the connection lived, every replica's
// alerts uncommitted.
func TestFrozenMigrationLetsTheWritersGo(t *testing.T) {
	postgres.SetMigrationIdleTimeout(t, 300*time.Millisecond)
	url := pgtest.NewDatabase(t)
	old, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	frozen, thaw := make(chan struct{}), make(chan struct{})
	migrated := make(chan error, 1)
	var once sync.Once
	go func() {
		migrated <- postgres.MigrateSteps(ctx, url, newerSteps(func() {
			once.Do(func() { close(frozen) })
			<-thaw
		}))
	}()
	<-frozen
	written := make(chan error, 1)
	go func() {
		written <- old.Update(ctx, func(tx store.Tx) error {
			return tx.PutMeta("written", []byte("while the migration was frozen"))
		})
	}()
	// Far beyond the idle bound and a write's own wait for its lock
	// (10 s, then a retry): a liveness bound, not a measure of time.
	select {
	case err := <-written:
		if err != nil {
			t.Errorf("the write behind a frozen migration: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("the write still waits for a migration frozen a minute ago")
	}
	close(thaw)
	<-migrated // it failed, its session ended, or was retried: either way no writer waits
	var got []byte
	if err := old.View(ctx, func(tx store.Tx) error {
		got, err = tx.GetMeta("written")
		return err
	}); err != nil || string(got) != "while the migration was frozen" {
		t.Errorf("the write: %q, %v", got, err)
	}
}
