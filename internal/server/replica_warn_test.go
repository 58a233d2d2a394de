package server

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

// TestFencedReplicaWarnsOnce: once a newer version upgraded the shared
// store, the lease's renewal and the record of the service's time are
// refused every 2 s for as long as the old replica runs; each refusal was
// a WARN. The first is logged, the others not; other failures still are.
func TestFencedReplicaWarnsOnce(t *testing.T) {
	var logs syncBuffer
	r := &replication{log: slog.New(slog.NewTextHandler(&logs, nil))}
	upgraded := &store.UpgradedError{Stored: 12, Known: 11}
	for range 5 {
		r.warn("detection lease", upgraded)
		r.warn("recording the service's time for the replicas that start", upgraded)
	}
	r.warn("detection lease", errors.New("connection refused"))
	r.warn("detection lease", errors.New("connection refused"))
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var fenced, other int
	for _, l := range lines {
		switch {
		case strings.Contains(l, "beyond this program's"):
			fenced++
		case strings.Contains(l, "connection refused"):
			other++
		}
	}
	if fenced != 1 || other != 2 {
		t.Errorf("%d warnings of the upgrade (want 1) and %d of other failures (want 2):\n%s", fenced, other, logs.String())
	}
}
