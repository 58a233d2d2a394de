package sqlite

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// Every reader connection of the pool in a transaction, each running a
// query whose statement is not prepared yet: preparing it on the pool would
// need a free connection, so waiting for one would never end. Readers run
// such a query unprepared instead.
func TestEveryReaderBusyWithColdStatements(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var arrived sync.WaitGroup
	arrived.Add(readers)
	errs := make(chan error, readers)
	for range readers {
		go func() {
			errs <- s.View(ctx, func(tx store.Tx) error {
				// Hold this connection until every reader holds one.
				arrived.Done()
				arrived.Wait()
				if _, err := tx.LastEventID(); err != nil {
					return err
				}
				_, err := tx.PartyByName("nobody")
				if errors.Is(err, store.ErrNotFound) {
					return nil
				}
				return err
			})
		}()
	}
	for range readers {
		if err := <-errs; err != nil {
			t.Fatalf("a reader failed (a deadlock ends with the context's deadline): %v", err)
		}
	}
}
