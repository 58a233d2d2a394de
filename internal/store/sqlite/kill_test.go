package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/testutil/childproc"
)

// killChildEnv, when set to a directory, turns the test binary into the
// writer that TestKillDurability kills.
const killChildEnv = "DECONFLICT_STORE_KILL_CHILD"

// TestKillDurability re-executes the test binary as a writer that appends
// events from several goroutines and prints each id once its Update has
// returned nil, then SIGKILLs it at a random point. After each kill, every
// printed id must be in the store, and ids must run 1..last without a gap
// and continue from there.
func TestKillDurability(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	printed := map[int64]string{}
	for round := range 5 {
		// Kill after a random number of acknowledged commits, plus a
		// random short delay so that the kill lands anywhere in a commit.
		after := 20 + rng.IntN(300)
		delay := time.Duration(rng.IntN(3000)) * time.Microsecond
		cmd, out := childproc.Start(t, "TestKillDurability", killChildEnv+"="+dir)
		sc := bufio.NewScanner(out)
		n := 0
		killed := false
		for sc.Scan() {
			// Only the child's "committed" lines count; the test
			// framework may print others.
			rest, ok := strings.CutPrefix(sc.Text(), "committed ")
			if !ok {
				continue
			}
			id, body, _ := strings.Cut(rest, " ")
			v, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			printed[v] = body
			n++
			if n == after && !killed {
				time.Sleep(delay)
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err := cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child ended before being killed (%v)", round, err)
		}
		checkAfterKill(t, dir, printed)
		t.Logf("round %d: SIGKILL after %d acknowledged commits (+%v); %d read in the round, %d acknowledged in all", round, after, delay, n, len(printed))
	}
}

func checkAfterKill(t *testing.T, dir string, printed map[int64]string) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	var last int64
	err = s.View(ctx, func(tx store.Tx) error {
		events, err := tx.EventsAfter(0, 1<<30)
		if err != nil {
			return err
		}
		stored := map[int64]string{}
		for i, e := range events {
			if e.ID != int64(i+1) {
				t.Fatalf("after kill, event %d has id %d: a gap", i, e.ID)
			}
			stored[e.ID] = string(e.Body)
		}
		for id, body := range printed {
			if got, ok := stored[id]; !ok || got != body {
				t.Fatalf("acknowledged event %d (%s) lost after kill -9 (stored: %q, %v)", id, body, got, ok)
			}
		}
		last, err = tx.LastEventID()
		if err != nil {
			return err
		}
		if last != int64(len(events)) {
			t.Fatalf("LastEventID = %d with %d events stored", last, len(events))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		id, err := tx.AppendEvent(store.Event{Kind: "reopened", Body: []byte(`{}`)})
		if err == nil && id != last+1 {
			t.Fatalf("first id after kill = %d, want %d", id, last+1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	printed[last+1] = "{}"
}

// killChild writes until it is killed (or for at most a minute, should the
// parent be gone).
func killChild(dir string) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kill child:", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(time.Minute)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				body := fmt.Sprintf(`{"w":%d,"i":%d,"pid":%d}`, w, i, os.Getpid())
				var id int64
				err := s.Update(ctx, func(tx store.Tx) error {
					var err error
					id, err = tx.AppendEvent(store.Event{Kind: "kill", Audience: []string{"*"}, Body: []byte(body)})
					return err
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, "kill child:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "committed %d %s\n", id, body)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}
