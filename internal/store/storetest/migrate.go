package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// MigrationFrom is the schema version a backend's migration test starts
// at: the last one without the event audience index, so that its backfill
// is checked along with every later migration (the alerts' among them).
const MigrationFrom = 1

// MigrationEvent is one event that a backend's migration test writes, with
// the SQL of schema version MigrationFrom, before it opens (and so
// migrates) the store; its id is its place in MigrationEvents, from 1.
type MigrationEvent struct {
	TimeNs   int64
	Kind     string
	Audience string // JSON
	Body     string
}

// migrationBase is the time of the alerts of MigrationEvents.
var migrationBase = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// MigrationEvents are the events of a store written before the migrations
// that CheckMigrated checks: audiences for the event audience index, and
// alerts for the alerts' fill and that of their spans — one cleared two
// days before the rest (too old to be kept), one raised and cleared, one
// raised and updated, one updated whose raise is not in the store, and an
// event of another kind whose body has an id too. The times in the alerts'
// bodies are half a minute before their events'.
var MigrationEvents = []MigrationEvent{
	{migrationBase.Add(-48 * time.Hour).UnixNano(), "alert_cleared", `["*"]`, `{"id":"old"}`},
	{migrationBase.UnixNano(), "alert_raised", `["blue"]`, `{"id":"a1","kind":"nonconforming","time":"2026-03-14T08:59:30Z","aircraft":[{"party":"blue","aircraft":"b1"}],"n":1}`},
	{migrationBase.Add(time.Second).UnixNano(), "alert_raised", `["red"]`, `{"id":"a2","kind":"conflict","time":"2026-03-14T08:59:31Z","aircraft":[{"party":"red","aircraft":"r1"},{"party":"blue","aircraft":"b1"}],"n":1}`},
	{migrationBase.Add(2 * time.Second).UnixNano(), "alert_cleared", `["blue"]`, `{"id":"a1","kind":"nonconforming","time":"2026-03-14T08:59:32Z","aircraft":[{"party":"blue","aircraft":"b1"}],"n":2}`},
	{migrationBase.Add(3 * time.Second).UnixNano(), "message", `["red"]`, `{"id":"a3"}`},
	{migrationBase.Add(4 * time.Second).UnixNano(), "alert_updated", `["red"]`, `{"id":"a2","kind":"conflict","time":"2026-03-14T08:59:34Z","aircraft":[{"party":"red","aircraft":"r1"},{"party":"blue","aircraft":"b1"}],"n":2}`},
	{migrationBase.Add(5 * time.Second).UnixNano(), "alert_updated", `["red"]`, `{"id":"a4","kind":"nonconforming","time":"2026-03-14T08:59:35Z","aircraft":[{"party":"red","aircraft":"r2"}]}`},
	{migrationBase.Add(6 * time.Second).UnixNano(), "message", `["blue","red"]`, `{"id":"m8"}`},
	{migrationBase.Add(7 * time.Second).UnixNano(), "rules_changed", `["*"]`, `{}`},
	{migrationBase.Add(8 * time.Second).UnixNano(), "message", `["red"]`, `{"id":"m10"}`},
}

// MigrationMessage is one hotline message that a backend's migration test
// writes with the SQL of schema version MigrationFrom (a row of messages,
// and one of message_parties for each of Parties), before it opens the
// store.
type MigrationMessage struct {
	ID, Sender, Recipients, Thread, State string // Recipients: JSON
	CreatedNs, DeadlineNs                 int64
	Parties                               []string
}

// MigrationMessages are the messages of a store written before the state
// and the thread were kept with each party of a message: blue's open m1
// and escalated m2, its acknowledged m3; m1 and m3 in one thread, m2 in
// another.
var MigrationMessages = []MigrationMessage{
	{"m1", "red", `["blue"]`, "red/t", "open", migrationBase.UnixNano(), migrationBase.Add(time.Minute).UnixNano(), []string{"blue", "red"}},
	{"m2", "deconflict", `["blue","green"]`, "alert:a2", "escalated", migrationBase.UnixNano(), migrationBase.Add(time.Second).UnixNano(), []string{"blue", "deconflict", "green"}},
	{"m3", "blue", `["red"]`, "red/t", "acknowledged", migrationBase.UnixNano(), migrationBase.UnixNano(), []string{"blue", "red"}},
}

// CheckSchemaVersions fails unless versions, the rows of a backend's
// schema_migrations in order, are the migrations 1..latest once each.
func CheckSchemaVersions(t testing.TB, versions []int64, latest int) {
	t.Helper()
	if len(versions) != latest {
		t.Fatalf("schema_migrations holds %v, want 1..%d once each", versions, latest)
	}
	for i, v := range versions {
		if v != int64(i+1) {
			t.Fatalf("schema_migrations holds %v, want 1..%d", versions, latest)
		}
	}
}

// CheckMigrated checks a store opened on MigrationEvents written at schema
// version MigrationFrom, and MigrationMessages: its schema_migrations
// (versions) reach latest, the audience of the old events is backfilled,
// so that blue reads events 1, 2, 4, 8 and 9, each party's events are
// numbered in its own sequence, and the alerts are filled: a2 open
// as event 6 left it, a4 as event 7 did, a1 cleared by event 4, the clear
// of two days before not kept; with the pairs and the times their bodies
// say; and each party's open messages are found by its own, and its
// messages in a thread by the thread.
func CheckMigrated(t testing.TB, s store.Store, versions []int64, latest int) {
	t.Helper()
	CheckSchemaVersions(t, versions, latest)
	err := s.View(context.Background(), func(tx store.Tx) error {
		got, err := store.EventsAfterFor(tx, "blue", 0, 10)
		if err != nil {
			return err
		}
		if len(got) != 5 || got[0].ID != 1 || got[1].ID != 2 || got[2].ID != 4 || got[3].ID != 8 || got[4].ID != 9 {
			t.Errorf("EventsAfterFor(blue) after migration = %+v, want events 1, 2, 4, 8 and 9", got)
		}
		// Each party's numbers, filled in id order: blue's five events
		// 1 to 5 though red had twice as many; the ids shown above a
		// base above every global id.
		for _, c := range []struct {
			party string
			ids   []int64
		}{{"blue", []int64{1, 2, 4, 8, 9}}, {"red", []int64{1, 3, 5, 6, 7, 8, 9, 10}}, {"green", []int64{1, 9}}} {
			for i, id := range c.ids {
				if got, err := store.PartyEventAt(tx, c.party, int64(i+1)); err != nil || got != id {
					t.Errorf("PartyEventAt(%s, %d) after migration = %d, %v; want %d", c.party, i+1, got, err, id)
				}
				if got, err := store.PartySeqAt(tx, c.party, id); err != nil || got != int64(i+1) {
					t.Errorf("PartySeqAt(%s, %d) after migration = %d, %v; want %d", c.party, id, got, err, i+1)
				}
			}
		}
		if b, err := store.PartySeqBase(tx); err != nil || b != store.UpgradedSeqBase {
			t.Errorf("PartySeqBase after migration = %d, %v; want %d", b, err, store.UpgradedSeqBase)
		}
		// The last cursor of before is the store's last id at the
		// migration, none of the events appended since.
		last, err := tx.LastEventID()
		if err != nil {
			return err
		}
		if m, err := store.LegacyCursorMax(tx); err != nil || m != last || last == 0 {
			t.Errorf("LegacyCursorMax after migration = %d, %v; want the last id %d", m, err, last)
		}
		open, err := tx.OpenAlerts()
		if err != nil {
			return err
		}
		// The pairs and the times of the alerts are those of their
		// bodies; a4's raise is not in the store.
		bodyTime := func(s int) time.Time { return migrationBase.Add(time.Duration(s)*time.Second - 30*time.Second) }
		wantOpen := []store.StoredAlert{
			{ID: "a2", EventID: 6, Time: migrationBase.Add(4 * time.Second), Body: []byte(MigrationEvents[5].Body),
				Pair: store.AlertPair("conflict", []store.AlertAircraft{{Party: "blue", Aircraft: "b1"}, {Party: "red", Aircraft: "r1"}}), RaisedAt: bodyTime(1)},
			{ID: "a4", EventID: 7, Time: migrationBase.Add(5 * time.Second), Body: []byte(MigrationEvents[6].Body),
				Pair: store.AlertPair("nonconforming", []store.AlertAircraft{{Party: "red", Aircraft: "r2"}})},
		}
		if !sameStoredAlerts(open, wantOpen) {
			t.Errorf("OpenAlerts after migration = %s, want %s", showAlerts(open), showAlerts(wantOpen))
		}
		cleared, err := tx.ClearedAlerts()
		if err != nil {
			return err
		}
		wantCleared := []store.StoredAlert{{ID: "a1", EventID: 4, Time: migrationBase.Add(2 * time.Second),
			Pair: store.AlertPair("nonconforming", []store.AlertAircraft{{Party: "blue", Aircraft: "b1"}}), RaisedAt: bodyTime(0), ClearedAt: bodyTime(2)}}
		if !sameStoredAlerts(cleared, wantCleared) {
			t.Errorf("ClearedAlerts after migration = %s, want %s", showAlerts(cleared), showAlerts(wantCleared))
		}
		for party, want := range map[string][]string{"blue": {"m2", "m1"}, "red": {"m1"}, "green": {"m2"}} {
			got, err := tx.OpenMessagesFor(party, 10)
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("OpenMessagesFor(%s) after migration = %v, want %v", party, ids, want)
			}
		}
		for _, c := range []struct {
			party, thread string
			want          []string
		}{
			{"blue", "red/t", []string{"m1", "m3"}}, {"red", "red/t", []string{"m1", "m3"}}, {"blue", "alert:a2", []string{"m2"}},
			{"green", "alert:a2", []string{"m2"}}, {"green", "red/t", nil}, {"red", "alert:a2", nil},
		} {
			got, err := tx.MessagesFor(c.party, c.thread, time.Time{}, 10)
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			if !slices.Equal(ids, c.want) {
				t.Errorf("MessagesFor(%s, %s) after migration = %v, want %v", c.party, c.thread, ids, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// CheckNumbersGoOn appends events to a store CheckMigrated checked and
// checks that each party's numbers go on from those the migration filled,
// without gaps.
func CheckNumbersGoOn(t testing.TB, s store.Store) {
	t.Helper()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for _, aud := range [][]string{{"blue"}, {"*"}, {"blue", "red"}, {"green"}, {"blue"}} {
			if _, err := tx.AppendEvent(store.Event{Time: migrationBase, Kind: "after", Audience: aud}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	CheckPartySeqs(t, s, "blue", "red", "green", "nobody")
}
