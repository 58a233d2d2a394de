package service

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/replica"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
)

// TestReplicaOfAnOlderVersionFencesItself: during a rolling upgrade on a
// shared PostgreSQL a newer version migrated the store while a replica of
// this (older) one still ran and led detection: it went on committing
// alert events and writing messages without keeping what the newer
// migrations keep (the open and cleared alerts, each party's state of its
// messages), so that a takeover read stale alerts and snapshots missed
// open items. Once it reads the store's schema version past its own (at
// its lease's renewal and its tick) it gives up the lease at once, logs an
// ERROR naming both versions, and every write of it is refused with the
// versions named; nothing reaches the store. A replica starting on the
// store refuses to start.
func TestReplicaOfAnOlderVersionFencesItself(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock, leaseClock := &testClock{}, &testClock{}
	peers := &leasePeers{lease: replica.NewLease(st, "detect", "old", 10*time.Second, leaseClock.now)}
	s := newReplicaServiceAt(t, st, peers, clock)
	logs, log := newLogBuffer()
	s.log = log
	if _, err := s.CreateParty(ctx, "coalition"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateParty(ctx, "russia"); err != nil {
		t.Fatal(err)
	}
	if held, err := peers.lease.Try(ctx); !held || err != nil {
		t.Fatalf("the replica did not take the lease: %v %v", held, err)
	}
	if err := s.ReconcileDetection(ctx, openInStore(st)); err != nil {
		t.Fatal(err)
	}

	// A store opened before the upgrade by a replica that starts after it.
	late, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { late.Close() })

	known := 0
	if err := st.Pool().QueryRow(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&known); err != nil {
		t.Fatal(err)
	}
	beyond := known + 1
	if _, err := st.Pool().Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_ns) VALUES ($1, 'of a newer version', 0)`, beyond); err != nil {
		t.Fatal(err)
	}
	namesBoth := func(what string, err error) {
		t.Helper()
		var up *store.UpgradedError
		if !errors.As(err, &up) || up.Stored != beyond || up.Known != known {
			t.Errorf("%s: %v, want the store's schema %d beyond the program's %d", what, err, beyond, known)
		}
	}

	s.Tick(ctx)
	s.Tick(ctx)
	var lines []string
	for _, line := range logs.errors() {
		if strings.Contains(line, "store_schema_version="+strconv.Itoa(beyond)) && strings.Contains(line, "program_schema_version="+strconv.Itoa(known)) {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 {
		t.Errorf("ERRORs naming both versions after two ticks: %q, want one", logs.errors())
	}

	_, err = s.PostMessage(ctx, party.Principal{Party: "coalition"}, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: "written in the old way"})
	namesBoth("posting a message", err)
	// Its commits of alerts too: it leads still, until its lease's next
	// renewal. The ingest gives up at the first refusal for the upgrade
	// (no retry can succeed): before, it retried until its request
	// ended, each attempt an ERROR, and the feed's request hung.
	c, r := headOnPair(clock.now())
	_, _, _ = s.IngestPositions(ctx, party.Principal{Party: "coalition"}, []PositionReport{c})
	ingestCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, _, err = s.IngestPositions(ingestCtx, party.Principal{Party: "russia"}, []PositionReport{r})
	cancel()
	var up *store.UpgradedError
	if !errors.As(err, &up) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "beyond this program's") {
		t.Errorf("committing the alert: %v, want it refused for the store's upgrade at once", err)
	}
	err = st.View(ctx, func(tx store.Tx) error {
		ms, err := tx.MessagesFor("coalition", "", time.Time{}, 10)
		if len(ms) != 0 {
			t.Errorf("the store holds %d messages written after the upgrade", len(ms))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := alertEvents(t, st); len(got) != 0 {
		t.Errorf("the store holds alert events written after the upgrade: %v", got)
	}

	held, err := peers.lease.Try(ctx)
	namesBoth("renewing the lease", err)
	if held || peers.LeadsDetection() {
		t.Error("the replica still leads detection after the store was migrated beyond it")
	}
	_, err = New(ctx, Config{Store: late, Now: clock.now})
	namesBoth("starting a service on the store", err)
}
