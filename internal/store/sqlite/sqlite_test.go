package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/internal/sqlcore"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/store/storetest"
)

// dirs gives each test its own data directory, the same on every open, so
// that the suite can close and reopen a store.
var dirs sync.Map // *testing.T -> string

func openFor(t *testing.T) store.Store {
	t.Helper()
	d, _ := dirs.LoadOrStore(t, t.TempDir())
	s, err := sqlite.Open(context.Background(), d.(string))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, openFor)
}

func schemaVersions(t *testing.T, path string) []int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestOpenMigratesToLatestOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for range 2 {
		s, err := sqlite.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		path := s.Path()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		got := schemaVersions(t, path)
		storetest.CheckSchemaVersions(t, got, sqlcore.Latest())
	}
}

// TestMigrateFromPrevious checks that a store at an earlier version with
// data in it migrates to the latest at Open, backfill included.
func TestMigrateFromPrevious(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := sqlite.MigrateTo(ctx, dir, storetest.MigrationFrom); err != nil {
		t.Fatal(err)
	}
	// Events written by a binary at that version: no audience index yet.
	db, err := sql.Open("sqlite", "file:"+dir+"/"+sqlite.FileName)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range storetest.MigrationEvents {
		if _, err := db.Exec(`UPDATE counters SET value = value + 1 WHERE name = 'event'`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO events (id, time_ns, kind, audience, body) VALUES (?, ?, ?, ?, ?)`, i+1, e.TimeNs, e.Kind, e.Audience, []byte(e.Body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range storetest.MigrationMessages {
		if _, err := db.Exec(`INSERT INTO messages (id, sender, recipients, thread, kind, state, created_ns, deadline_ns, body) VALUES (?, ?, ?, ?, 'notice', ?, ?, ?, ?)`,
			m.ID, m.Sender, m.Recipients, m.Thread, m.State, m.CreatedNs, m.DeadlineNs, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Parties {
			if _, err := db.Exec(`INSERT INTO message_parties (party, message_id, created_ns) VALUES (?, ?, ?)`, p, m.ID, m.CreatedNs); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Close()

	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckMigrated(t, s, schemaVersions(t, s.Path()), sqlcore.Latest())
	err = s.Update(ctx, func(tx store.Tx) error {
		id, err := tx.AppendEvent(store.Event{Kind: "after", Audience: []string{"red"}})
		if want := int64(len(storetest.MigrationEvents) + 1); id != want {
			t.Errorf("first event id after migration = %d, want %d", id, want)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckNumbersGoOn(t, s)
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := sqlite.Open(context.Background(), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// TestPragmas checks the settings that durability and concurrency rest on.
func TestPragmas(t *testing.T) {
	s := openFor(t).(*sqlite.Store)
	for _, c := range []struct{ name, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
		{"query_only", "0"},
	} {
		got, err := sqlite.WriterPragma(s, c.name)
		if err != nil || got != c.want {
			t.Errorf("writer PRAGMA %s = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	for _, c := range []struct{ name, want string }{
		{"journal_mode", "wal"},
		{"query_only", "1"},
	} {
		got, err := sqlite.ReaderPragma(s, c.name)
		if err != nil || got != c.want {
			t.Errorf("reader PRAGMA %s = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

// FuzzTextRoundTrip feeds arbitrary names and bodies through the store:
// whatever is accepted reads back byte for byte, and what is refused is
// refused with ErrInvalid and leaves nothing behind.
func FuzzTextRoundTrip(f *testing.F) {
	f.Add("blue", []byte(`{"a":1}`))
	f.Add("", []byte{})
	f.Add("*", []byte{0, 1, 2, 255})
	f.Add("nul\x00name", []byte("x"))
	f.Add("bad\xffutf8", []byte(nil))
	f.Add("ünïcødé ✈", []byte("\x00"))
	ctx := context.Background()
	s, err := sqlite.Open(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		valid := utf8.ValidString(name) && !strings.ContainsRune(name, 0)
		key := "fuzz/" + name
		var before int64
		err := s.Update(ctx, func(tx store.Tx) error {
			var err error
			if before, err = tx.LastEventID(); err != nil {
				return err
			}
			if err := tx.PutMeta(key, body); err != nil {
				return err
			}
			_, err = tx.AppendEvent(store.Event{Kind: name, Audience: []string{name}, Body: body})
			return err
		})
		if !valid {
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("name %q: Update returned %v, want ErrInvalid", name, err)
			}
		} else if err != nil {
			t.Fatalf("name %q: %v", name, err)
		}
		err = s.View(ctx, func(tx store.Tx) error {
			got, err := tx.GetMeta(key)
			if !valid {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("refused key %q reads back: %q, %v", key, got, err)
				}
				if last, _ := tx.LastEventID(); last != before {
					t.Errorf("refused Update moved the event counter from %d to %d", before, last)
				}
				return nil
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("GetMeta(%q) = %q, %v; want %q", key, got, err, body)
			}
			events, err := store.EventsAfterFor(tx, name, before, 10)
			if err != nil {
				return err
			}
			if len(events) != 1 || events[0].Kind != name || !bytes.Equal(events[0].Body, body) || len(events[0].Audience) != 1 || events[0].Audience[0] != name {
				t.Errorf("event for %q reads back as %+v", name, events)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestOddDirectoryName: the directory goes into a file: URI, so characters
// that mean something there must still name the directory itself.
func TestOddDirectoryName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b?c#d%20e")
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		t.Fatalf("database not created inside %q: %v", dir, err)
	}
	if _, err := sqlite.Open(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("Open(\"\") = %v, want an error about the data directory", err)
	}
}

// BenchmarkFsyncBaseline is the floor under a durable commit: append 4 KiB
// to a file and fsync it, in the same directory kind as the store. Compare
// UpdateAppendEvent/serial with it; the ratio holds better than absolute
// figures on a shared machine.
func BenchmarkFsyncBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for b.Loop() {
		if _, err := f.Write(page); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// TestPutMessageFindsPartiesByIndex: PutMessage replaces a message's
// parties by its id, once per update of an alert's hotline item; SQLite
// must find them through an index, not by scanning every message's
// parties (which made busy traffic quadratic).
func TestPutMessageFindsPartiesByIndex(t *testing.T) {
	joined := joinedPlan(queryPlan(t, `DELETE FROM message_parties WHERE message_id = ?`, "m1"))
	if !strings.Contains(joined, "message_parties_message") {
		t.Fatalf("query plan %q does not use the index on message_id", joined)
	}
}

// BenchmarkOpenFillsTheAlertsOfAMillionEvents measures the opening of a
// store written before the alerts were kept with their events (schema 8)
// with a million events, one in a hundred of them an alert's: the
// migration fills the alerts from them once. Run with -benchtime=1x.
func BenchmarkOpenFillsTheAlertsOfAMillionEvents(b *testing.B) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		if err := sqlite.MigrateTo(ctx, dir, 8); err != nil {
			b.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+dir+"/"+sqlite.FileName)
		if err != nil {
			b.Fatal(err)
		}
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		const events = 1_000_000
		for id := 1; id <= events; id++ {
			kind, body := "message", fmt.Sprintf(`{"id":"m%d"}`, id)
			if id%100 == 0 {
				// Raised, and cleared a hundred events later.
				kind, body = "alert_raised", fmt.Sprintf(`{"id":"a%d","level":"warning"}`, id/200)
				if id%200 == 0 {
					kind = "alert_cleared"
				}
			}
			if _, err := tx.Exec(`INSERT INTO events (id, time_ns, kind, audience, body) VALUES (?, ?, ?, '["*"]', ?)`,
				id, int64(id)*int64(time.Millisecond), kind, []byte(body)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := tx.Exec(`UPDATE counters SET value = ? WHERE name = 'event'`, events); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		db.Close()
		b.StartTimer()
		s, err := sqlite.Open(ctx, dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
	}
}

// TestOpenMessagesForReadsThePartysOpenOnes: a party's open items (its
// stream's snapshot, opened at the request rate) must be found through the
// index of the state kept with each party, not by the party's whole
// history (the primary key) nor every party's open items (messages_due).
func TestOpenMessagesForReadsThePartysOpenOnes(t *testing.T) {
	joined := joinedPlan(queryPlan(t, `SELECT m.id FROM message_parties p JOIN messages m ON m.id = p.message_id
		WHERE p.party = ? AND p.state IN ('open', 'escalated') ORDER BY m.deadline_ns, m.id LIMIT ?`, "blue", 10))
	if !strings.Contains(joined, "message_parties_state") {
		t.Fatalf("query plan %q does not use the index of the parties' states", joined)
	}
}

// TestNewestMessagesForReadsBackwardsByTheIndex: a party's newest items
// (its stream's snapshot, a list of 5,000 out of its day's) must be read
// backwards through the index of its items' creation times, which stops
// after the limit, not all of its items since sorted (a temporary B-tree
// for the whole ORDER BY): only items created at the same nanosecond are
// sorted among themselves.
func TestNewestMessagesForReadsBackwardsByTheIndex(t *testing.T) {
	joined := joinedPlan(queryPlan(t, `SELECT m.id FROM message_parties p JOIN messages m ON m.id = p.message_id
		WHERE p.party = ? AND p.created_ns >= ? ORDER BY p.created_ns DESC, p.message_id DESC LIMIT ?`, "blue", 0, 10))
	if !strings.Contains(joined, "message_parties_created") || strings.Contains(joined, "TEMP B-TREE FOR ORDER BY") {
		t.Fatalf("query plan %q does not read the party's items in order of creation", joined)
	}
}

// TestMessagesInThreadForReadsThePartysThread: a party's messages in one
// thread (asked at every post, whether the sender is a member of the
// thread) must be read from the index of the party's messages by thread,
// in its order and stopping at the limit, not from the party's whole
// history with each message looked up to test its thread: a post into a
// new thread read all of it.
func TestMessagesInThreadForReadsThePartysThread(t *testing.T) {
	joined := joinedPlan(queryPlan(t, sqlcore.MessagesInThreadForSQL, "blue", "t-1", 0, 1))
	if !strings.Contains(joined, "message_parties_thread (party=? AND thread=?") || strings.Contains(joined, "SCAN") ||
		strings.Contains(joined, "TEMP B-TREE") {
		t.Fatalf("query plan %q does not read the party's messages in the thread by their index, in order", joined)
	}
}

// TestEventsAfterForReadsAPageOfTheBacklog: a party's events after a
// cursor (each page of its stream's backlog) must be read from the
// audience index one key at a time, each range in order and limited (a
// subquery of its own), not by a filter on both keys at once, which is no
// range in event order: SQLite then read the party's whole backlog, every
// event's body with it, and sorted it, for every page.
func TestEventsAfterForReadsAPageOfTheBacklog(t *testing.T) {
	plan := queryPlan(t, sqlcore.EventsAfterForSQL, "blue", 0, 10, 0, 10, 10)
	readsIndex, readsAtTop := false, false
	for _, step := range plan {
		if strings.Contains(step.detail, "event_audience") || strings.HasPrefix(step.detail, "SEARCH a ") || strings.HasPrefix(step.detail, "SCAN a") {
			readsIndex = true
			readsAtTop = readsAtTop || step.parent == 0
		}
	}
	if !readsIndex || readsAtTop {
		t.Fatalf("query plan %q does not read the audience index in limited subqueries only", joinedPlan(plan))
	}
}

// planStep is a step of SQLite's plan of a query (EXPLAIN QUERY PLAN):
// the id of the step it is part of (0: the top) and what it does.
type planStep struct {
	parent int
	detail string
}

// queryPlan is SQLite's plan of query, with args, on the schema of a new
// store.
func queryPlan(t *testing.T, query string, args ...any) []planStep {
	t.Helper()
	s, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []planStep
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, planStep{parent: parent, detail: detail})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// joinedPlan is the plan's steps, one after the other.
func joinedPlan(plan []planStep) string {
	details := make([]string, len(plan))
	for i, step := range plan {
		details[i] = step.detail
	}
	return strings.Join(details, "; ")
}
