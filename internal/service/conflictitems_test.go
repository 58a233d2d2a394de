package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
)

// timedStore is a store that keeps how long its last write transaction
// took, fn and commit: on the embedded store, how long it held the
// writers' lock.
type timedStore struct {
	store.Store
	last time.Duration
}

func (s *timedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := s.Store.Update(ctx, fn)
	s.last = time.Since(start)
	return err
}

// conflictItemsScene is a service where bravo holds n volumes, all over
// one circle in one band and window, and alpha none.
func conflictItemsScene(t *testing.T, n int) (*Service, *timedStore, volume.Input) {
	t.Helper()
	ctx := context.Background()
	_, st := storeInDir(t)
	timed := &timedStore{Store: st}
	s, err := New(ctx, Config{Store: timed, Now: func() time.Time { return visibilityT0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(ctx) })
	for _, p := range []string{"alpha", "bravo"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	in := stackedInput(36, 0, 0)
	for range n {
		if _, err := s.CreateVolume(ctx, party.Principal{Party: "bravo"}, in); err != nil {
			t.Fatal(err)
		}
	}
	return s, timed, in
}

// openItemsFromTo lists the volume-conflict items bravo has still to
// acknowledge.
func openConflictItems(t *testing.T, s *Service, p string) []hotline.Message {
	t.Helper()
	ms, err := s.ListMessages(context.Background(), party.Principal{Party: p}, "", time.Time{}, hotline.MaxListLimit)
	if err != nil {
		t.Fatal(err)
	}
	var out []hotline.Message
	for _, m := range ms {
		if m.Kind == hotline.KindVolumeConflict && m.State != hotline.StateAcknowledged {
			out = append(out, m)
		}
	}
	return out
}

// A write accepted in conflict with 2,000 of another party's volumes
// tells that party of them in one hotline item naming every one (it
// posted 2,000 items, each for bravo's staff to acknowledge), and the
// same write sent again while that item is open posts none; the
// volume_conflict events still tell both owners of each pair. The time
// the writes held the writers' lock is logged (go test -v).
func TestVolumeConflictsAreOneItemPerOtherParty(t *testing.T) {
	const n = hotline.MaxVolumeConflictsPerWrite
	ctx := context.Background()
	s, timed, in := conflictItemsScene(t, n)
	eventsBefore := volumeConflictEvents(t, s)
	v, err := declareWithKey(s, "alpha", in)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the write accepted in conflict with %d volumes held the writers' lock %v", len(v.Conflicts), timed.last)
	if len(v.Conflicts) != n {
		t.Fatalf("the write conflicts with %d volumes, want %d", len(v.Conflicts), n)
	}
	items := openConflictItems(t, s, "bravo")
	if len(items) != 1 {
		t.Fatalf("bravo has %d volume-conflict items to acknowledge, want 1 naming its %d volumes", len(items), n)
	}
	it := items[0]
	named := map[string]bool{}
	for _, sv := range it.Subject.Volumes[1:] {
		named[sv.ID+"@"+sv.Version] = sv.Party == "bravo"
	}
	for _, c := range v.Conflicts {
		if !named[c.ID+"@"+c.Version] {
			t.Fatalf("the item does not name bravo's volume %s at version %s", c.ID, c.Version)
		}
	}
	if len(it.Subject.Volumes) != n+1 || it.Subject.Volumes[0].ID != v.ID || len(it.Text) > hotline.MaxTextBytes {
		t.Errorf("the item's subject holds %d volumes (first %s), its text %d bytes; want alpha's then bravo's %d, a text of at most %d",
			len(it.Subject.Volumes), it.Subject.Volumes[0].ID, len(it.Text), n, hotline.MaxTextBytes)
	}
	if got := volumeConflictEvents(t, s) - eventsBefore; got != n {
		t.Errorf("%d volume_conflict events, want one per pair, %d", got, n)
	}

	// Sent again unchanged (its key as before): no second item.
	again := in
	again.Version = v.Version
	for _, c := range v.Conflicts {
		again.Key = append(again.Key, volume.KeyEntry{ID: c.ID, Version: c.Version})
	}
	if _, err := s.UpdateVolume(ctx, party.Principal{Party: "alpha"}, v.ID, again); err != nil {
		t.Fatal(err)
	}
	t.Logf("the same write sent again held the writers' lock %v", timed.last)
	if items := openConflictItems(t, s, "bravo"); len(items) != 1 {
		t.Errorf("after the volume was sent again unchanged bravo has %d items to acknowledge, want still 1", len(items))
	}
}

// A write that would be accepted in conflict with more volumes than the
// bound is refused naming the key, and writes nothing.
func TestVolumeConflictsBeyondTheBoundAreRefused(t *testing.T) {
	const n = hotline.MaxVolumeConflictsPerWrite + 1
	s, timed, in := conflictItemsScene(t, n)
	eventsBefore := volumeConflictEvents(t, s)
	_, err := declareWithKey(s, "alpha", in)
	var tc *hotline.TooManyConflictsError
	if !errors.As(err, &tc) || tc.Conflicts != n || tc.Limit != hotline.MaxVolumeConflictsPerWrite {
		t.Fatalf("a write in conflict with %d volumes returned %v, want a TooManyConflictsError", n, err)
	}
	t.Logf("the write refused for its %d conflicts held the writers' lock %v", n, timed.last)
	if got := volumeConflictEvents(t, s) - eventsBefore; got != 0 {
		t.Errorf("%d volume_conflict events written by a refused write", got)
	}
	if items := openConflictItems(t, s, "bravo"); len(items) != 0 {
		t.Errorf("%d items posted by a refused write", len(items))
	}
	if vs, _ := s.QueryVolumes(party.Principal{Party: "alpha"}, nil, volume.Extent{LowerM: -1000, UpperM: 40_000, From: visibilityT0.Add(-24 * time.Hour), To: visibilityT0.Add(48 * time.Hour)}); len(vs) != n {
		t.Errorf("%d volumes live, want bravo's %d alone", len(vs), n)
	}
}

// volumeConflictEvents counts the volume_conflict events in the store.
func volumeConflictEvents(t *testing.T, s *Service) int {
	t.Helper()
	n := 0
	err := s.st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 1_000_000)
		for _, e := range evs {
			if e.Kind == "volume_conflict" {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
