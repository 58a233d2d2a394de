package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/jackc/pgx/v5"
)

// fakeDatabaseClock makes the clock of the database at url (as
// clock_timestamp() tells it to the sessions opened afterwards) the
// server's plus a step the test sets: a function of that name in a schema
// searched before pg_catalog's (PostgreSQL lets a search_path name
// pg_catalog last, so that a user's function overrides a built-in one).
func fakeDatabaseClock(t *testing.T, url string) (step func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, q := range []string{
		`CREATE SCHEMA faketime`,
		`CREATE TABLE faketime.step (d interval NOT NULL)`,
		`INSERT INTO faketime.step VALUES ('0')`,
		`CREATE FUNCTION faketime.clock_timestamp() RETURNS timestamptz LANGUAGE sql VOLATILE
			AS $$ SELECT pg_catalog.clock_timestamp() + (SELECT d FROM faketime.step) $$`,
		`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = "$user", public, faketime, pg_catalog', current_database()); END $$`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func(d time.Duration) {
		t.Helper()
		if _, err := conn.Exec(ctx, `UPDATE faketime.step SET d = make_interval(secs => $1)`, d.Seconds()); err != nil {
			t.Fatal(err)
		}
	}
}

// stepAlarm is a service's clock step alarm metric.
func stepAlarm(t *testing.T, svc *service.Service) float64 {
	t.Helper()
	mfs, err := svc.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "deconflict_clock_step_alarm" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no deconflict_clock_step_alarm")
	return 0
}

// waitAlarm waits (bounded) until the service's step alarm is want: a
// replica measures the database's clock every syncEvery.
func waitAlarm(t *testing.T, svc *service.Service, want float64, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * syncEvery); stepAlarm(t, svc) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the step alarm is not %v after %v", what, want, 10*syncEvery)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAReplicaStartedAfterAStepOfTheDatabasesClockTakesTheOthersTime: a
// replica runs on PostgreSQL; the database server's clock is set an hour
// ahead, which the replica does not follow (it raises the alarm); a second
// replica started then takes the first one's time, not the database's,
// and raises the same alarm (the two tell the time alike, and judge
// tracks, deadlines and windows alike whichever leads); once the
// database's clock is set right, both clear it. Before, the second replica
// started at the database's time, an hour ahead of the first.
func TestAReplicaStartedAfterAStepOfTheDatabasesClockTakesTheOthersTime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two replicas on PostgreSQL")
	}
	url := pgtest.NewDatabase(t)
	stepDatabaseClock := fakeDatabaseClock(t, url)
	dir := t.TempDir()
	start := func(logs *syncBuffer) *service.Service {
		st := openPostgres(t, url)
		var svc *service.Service
		startedWith(t, Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logs, nil))},
			func(s *service.Service) { svc = s })
		return svc
	}
	logsA, logsB := &syncBuffer{}, &syncBuffer{}
	a := start(logsA)
	if off := time.Until(a.Now()); off.Abs() > time.Second {
		t.Fatalf("the first replica tells the time %v off the host's", off)
	}

	stepDatabaseClock(time.Hour)
	waitAlarm(t, a, 1, "the first replica, after the database's clock was set an hour ahead")
	b := start(logsB)
	// Read apart by a few microseconds; the figure checked is the hour.
	if diff := b.Now().Sub(a.Now()); diff.Abs() > time.Second {
		t.Errorf("the replica started after the database's clock was set an hour ahead tells the time %v off the other's", diff)
	}
	if got := stepAlarm(t, b); got != 1 {
		t.Errorf("the second replica's step alarm: %v, want 1", got)
	}
	log := logsB.String()
	for _, want := range []string{"took the service's time from the live replicas", "level=ERROR", "CLOCK STEP: the database server's clock", "ahead of the service's time",
		"stop every replica of the service, then start them again"} {
		if !strings.Contains(log, want) {
			t.Errorf("the second replica's log does not say %q:\n%s", want, log)
		}
	}

	stepDatabaseClock(0)
	waitAlarm(t, a, 0, "the first replica, after the database's clock was set right")
	waitAlarm(t, b, 0, "the second replica, after the database's clock was set right")
	if diff := b.Now().Sub(a.Now()); diff.Abs() > time.Second {
		t.Errorf("after the database's clock was set right, the replicas are %v apart", diff)
	}
}
