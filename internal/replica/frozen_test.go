package replica

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/testutil/childproc"
)

// frozenLeaderEnv makes the test binary the leader that
// TestFrozenLeaderHoldingTheWritersLock freezes: frozenLeader on the
// database it names.
const frozenLeaderEnv = "DECONFLICT_TEST_FROZEN_LEADER_URL"

// frozenLeader takes the lease "detect", then writes an alert behind its
// fence: the first time, it says "holding" on stdout once the alert is
// written and waits for a line on stdin before it commits (the test
// freezes the process meanwhile). It prints "committed N" or "refused N"
// (the fence's ErrLost) with the number of runs of the write.
func frozenLeader(url string) int {
	ctx := context.Background()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer st.Close()
	l := NewLease(st, "detect", "frozen", time.Minute, nil)
	if held, err := l.Try(ctx); !held || err != nil {
		fmt.Println("error: lease not taken", err)
		return 1
	}
	fence := l.Fence()
	in := bufio.NewReader(os.Stdin)
	runs := 0
	err = st.Update(ctx, func(tx store.Tx) error {
		runs++
		if err := fence(tx); err != nil {
			return err
		}
		if _, err := tx.AppendEvent(store.Event{Kind: "alert_raised", Audience: []string{"*"}, Body: []byte(`{"id":"frozen"}`)}); err != nil {
			return err
		}
		if runs == 1 {
			fmt.Println("holding")
			_, err := in.ReadString('\n')
			return err
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrLost):
		fmt.Println("refused", runs)
	case err != nil:
		fmt.Println("error", err)
		return 1
	default:
		fmt.Println("committed", runs)
	}
	return 0
}

// TestFrozenLeaderHoldingTheWritersLock freezes (SIGSTOP) the replica that
// leads detection in the middle of a fenced alert write, holding the
// writers' lock of the shared PostgreSQL: another replica still takes the
// lease over (its tries go through once the server has ended the frozen
// transaction), and the frozen leader, let run again, has its write run
// again and refused by the fence: the alert is not written by the replica
// that no longer leads.
func TestFrozenLeaderHoldingTheWritersLock(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	child := childproc.StartFrozen(t, frozenLeaderEnv+"="+url)

	c := &clock{t: time.Unix(1e9, 0)}
	survivor := NewLease(st, "detect", "survivor", time.Second, c.now)
	tried := make(chan error, 1)
	go func() {
		// The first try sees the frozen leader's record, the second,
		// a TTL later on the survivor's clock, takes the lease over.
		held, err := survivor.Try(ctx)
		if err == nil && held {
			err = errors.New("the survivor took a lease it had not seen lapse")
		}
		if err == nil {
			c.t = c.t.Add(2 * time.Second)
			if held, err = survivor.Try(ctx); err == nil && !held {
				err = fmt.Errorf("the survivor did not take the lapsed lease over (holder %q)", survivor.Holder())
			}
		}
		tried <- err
	}()
	// Not the promise (a few seconds): how long the test waits before it
	// calls the stall a stall.
	const stall = 30 * time.Second
	select {
	case err := <-tried:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(stall):
		t.Fatalf("the survivor's lease tries are still blocked after %v behind the frozen leader's transaction", stall)
	}

	if said := child.Resume(t); said != "refused 2" {
		t.Fatalf("the resumed leader said %q, want refused 2: its write ended while it was frozen, then ran again behind the fence", said)
	}
	err = st.View(ctx, func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 100)
		if len(evs) != 0 {
			t.Errorf("the store holds %d events (first %s), want none: the fenced-off leader wrote", len(evs), evs[0].Kind)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
