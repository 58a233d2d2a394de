package storetest

import (
	"context"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

// MigrationFrom is the schema version a backend's migration test starts
// at: the last one without the event audience index, so that its backfill
// is checked along with every later migration.
const MigrationFrom = 1

// MigrationAudiences are the audiences of the events 1, 2 and 3 that a
// backend's migration test writes, with the SQL of schema version
// MigrationFrom, before it opens (and so migrates) the store;
// CheckMigrated then checks the outcome.
var MigrationAudiences = []string{`["blue"]`, `["red"]`, `["*"]`}

// CheckSchemaVersions fails unless versions, the rows of a backend's
// schema_migrations in order, are the migrations 1..latest once each.
func CheckSchemaVersions(t testing.TB, versions []int64, latest int) {
	t.Helper()
	if len(versions) != latest {
		t.Fatalf("schema_migrations holds %v, want 1..%d once each", versions, latest)
	}
	for i, v := range versions {
		if v != int64(i+1) {
			t.Fatalf("schema_migrations holds %v, want 1..%d", versions, latest)
		}
	}
}

// CheckMigrated checks a store opened on the events of MigrationAudiences
// written at schema version MigrationFrom: its schema_migrations (versions)
// reach latest, and the audience of the old events is backfilled, so that
// blue reads events 1 and 3.
func CheckMigrated(t testing.TB, s store.Store, versions []int64, latest int) {
	t.Helper()
	CheckSchemaVersions(t, versions, latest)
	err := s.View(context.Background(), func(tx store.Tx) error {
		got, err := store.EventsAfterFor(tx, "blue", 0, 10)
		if err != nil {
			return err
		}
		if len(got) != 2 || got[0].ID != 1 || got[1].ID != 3 {
			t.Errorf("EventsAfterFor(blue) after migration = %+v, want events 1 and 3", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
