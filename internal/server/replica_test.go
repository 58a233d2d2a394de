package server

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
)

// TestTakeoverReadsTheAlertsTheStoreKeeps: a replica taking the detection
// lease reads the alerts open in the store and those cleared lately from
// what the store keeps of them (store.Alerts), as of one read, not from
// the event stream since the process started (which grew with the
// history): here the store keeps alerts whose events it does not have,
// and the takeover finds them.
func TestTakeoverReadsTheAlertsTheStoreKeeps(t *testing.T) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	err = st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.AppendEvent(store.Event{Time: now, Kind: "message", Audience: []string{"*"}, Body: []byte(`{"id":"m"}`)}); err != nil {
			return err
		}
		for _, id := range []string{"open-1", "open-2"} {
			if err := tx.PutOpenAlert(store.StoredAlert{ID: id, EventID: 1, Time: now, Body: []byte(`{"id":"` + id + `"}`)}); err != nil {
				return err
			}
		}
		return tx.ClearAlert(store.StoredAlert{ID: "ended", EventID: 1, Time: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &replication{st: st}
	got, err := r.openAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if open := slices.Sorted(maps.Keys(got.Open)); !slices.Equal(open, []string{"open-1", "open-2"}) || string(got.Open["open-1"]) != `{"id":"open-1"}` {
		t.Errorf("the takeover reads open %v, want open-1 and open-2 as the store keeps them", got.Open)
	}
	if !got.Cleared["ended"] || len(got.Cleared) != 1 {
		t.Errorf("the takeover reads cleared %v, want ended", got.Cleared)
	}
}
