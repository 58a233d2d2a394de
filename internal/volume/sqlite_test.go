package volume

import (
	"context"
	"testing"

	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// The registry's guarantees on the embedded store the service runs on.
func TestOnSQLite(t *testing.T) {
	open := func(t *testing.T) txStore {
		st, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return realStore{st}
	}
	t.Run("awareness key", func(t *testing.T) { testAwarenessKey(t, open(t)) })
	t.Run("priority", func(t *testing.T) { testPriorityRules(t, open(t)) })
	t.Run("optimistic concurrency", func(t *testing.T) { testOptimisticConcurrency(t, open(t)) })
	t.Run("end expired", func(t *testing.T) { testEndExpired(t, open(t)) })
	t.Run("rollback", func(t *testing.T) { testRollbackLeavesIndexClean(t, open(t)) })
	t.Run("batch mates", func(t *testing.T) { testBatchMatesCountButDoNotStick(t, open(t)) })
	t.Run("replicas", func(t *testing.T) { testReplicasShareTheStore(t, open(t)) })
	t.Run("64 concurrent writers", func(t *testing.T) { testConcurrentWritersNeverHideConflicts(t, open(t)) })
}
