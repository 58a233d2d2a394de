package postgres_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/internal/sqlcore"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
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
