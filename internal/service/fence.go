package service

import (
	"context"
	"errors"

	"github.com/deconflict/deconflict/internal/store"
)

// Replicas share one PostgreSQL store, and a newer version of the program
// migrates it as it starts: a replica of the older version still running
// would go on writing alert events and hotline messages without keeping
// what the newer migrations keep (the open and cleared alerts, each
// party's state of its messages), and a takeover by the new one would read
// stale alerts, its snapshots miss open items. So each process reads the
// store's schema version at its start and at each tick (the lease does at
// each renewal, package replica): beyond the migrations this program
// knows, the store refuses every write from then on (store.SchemaFence),
// the lease is given up, and the ticks run no job; the requests that
// write are answered 503 store-upgraded. Reads go on.

// checkSchema reads the store's schema version when the store is one that
// a newer version may migrate while this one runs (store.SchemaFence): an
// *store.UpgradedError once it has been, logged as an ERROR the first time.
func (s *Service) checkSchema(ctx context.Context) error {
	fence, ok := s.st.(store.SchemaFence)
	if !ok {
		return nil
	}
	err := fence.CheckSchema(ctx)
	var up *store.UpgradedError
	if errors.As(err, &up) && s.upgraded.CompareAndSwap(false, true) {
		s.log.Error("a newer version of deconflict migrated the store: this process writes nothing more (every write is refused with 503 store-upgraded, detection is no longer led here); stop it and run the newer version",
			"store_schema_version", up.Stored, "program_schema_version", up.Known)
	}
	return err
}
