package postgres

import (
	"context"
	"time"

	"github.com/deconflict/deconflict/internal/store/internal/sqlcore"
)

// PausedWriterTimeout is pausedWriterTimeout, for the tests.
const PausedWriterTimeout = pausedWriterTimeout

// MigrateSteps brings the database at url to the last of steps, as a
// version of the program whose history is steps does as it opens it.
func MigrateSteps(ctx context.Context, url string, steps []sqlcore.Migration) error {
	s, err := connect(ctx, url, Options{})
	if err != nil {
		return err
	}
	defer s.pool.Close()
	return s.migrateSteps(ctx, steps, steps[len(steps)-1].Version)
}

// SetMigrationIdleTimeout sets migrationIdleTimeout until the test ends.
func SetMigrationIdleTimeout(t interface{ Cleanup(func()) }, d time.Duration) {
	was := migrationIdleTimeout
	migrationIdleTimeout = d
	t.Cleanup(func() { migrationIdleTimeout = was })
}
