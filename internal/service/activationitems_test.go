package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/volume/synth"
)

// rulesConflictItems lists the volume-conflict items to owner that tell of
// conflicts under the rules of version.
func rulesConflictItems(t *testing.T, st store.Store, owner string, version int64) []hotline.Message {
	t.Helper()
	under := fmt.Sprintf(" under the rules of version %d", version)
	var out []hotline.Message
	err := st.View(context.Background(), func(tx store.Tx) error {
		ms, err := hotline.List(tx, owner, "", time.Time{}, hotline.MaxListLimit, nil)
		for _, m := range ms {
			if m.Kind == hotline.KindVolumeConflict && strings.Contains(m.Text, under) {
				out = append(out, m)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pairsTold counts, for each pair the items name (the thread's volume and
// each other in the subject), how many items name it, each pair spelled as
// findingEvents spells it: "pair <id>@<version>+<id>@<version>", the
// smaller id first.
func pairsTold(items []hotline.Message) map[string]int {
	told := map[string]int{}
	for _, m := range items {
		if m.Subject == nil || len(m.Subject.Volumes) < 2 {
			continue
		}
		head := m.Subject.Volumes[0]
		for _, o := range m.Subject.Volumes[1:] {
			a, b := head, o
			if b.ID < a.ID {
				a, b = b, a
			}
			told["pair "+a.ID+"@"+a.Version+"+"+b.ID+"@"+b.Version]++
		}
	}
	return told
}

// wantEachPairToldOnce fails t unless the items of the rules' version to
// each owner of a pair of want (findingEvents) name it exactly once, and
// name no other pair.
func wantEachPairToldOnce(t *testing.T, st store.Store, want []string, version int64, owners ...string) {
	t.Helper()
	for _, owner := range owners {
		told := pairsTold(rulesConflictItems(t, st, owner, version))
		pairs := map[string]bool{}
		for _, w := range want {
			if strings.HasPrefix(w, "pair ") {
				pairs[w] = true
				if told[w] != 1 {
					t.Errorf("%s is told of %s in %d items, want 1", owner, w, told[w])
				}
			}
		}
		for p, n := range told {
			if !pairs[p] {
				t.Errorf("%s is told of %s (%d items), not a new conflict of the rules", owner, p, n)
			}
		}
	}
}

// A rules change that makes a stack of one party's volumes conflict with
// a stack of another's posts, to each, one item per volume of the smaller
// stack naming every one of its new conflicts, not one per pair (120
// here, each to acknowledge by both parties' staff); every pair is still
// its own event and audit record, the items carried across the batches
// the pairs are announced in. Brought into force again while those items
// are open, the same conflicts post no item again, but are told again by
// their events.
func TestActivationConflictItemsOnePerVolumeAndOtherParty(t *testing.T) {
	s, st, old, raised := stacksScene(t)
	announceAll := func() { t.Helper(); announceAllFindings(t, s) }

	version := bringIntoForce(t, s, raised, "coalition", "russia")
	announceAll()
	want := findingEvents(t, st, version)
	if len(want) != coalitionVolumes*russiaVolumes {
		t.Fatalf("%d volume_conflict events of the rules, want one per pair, %d", len(want), coalitionVolumes*russiaVolumes)
	}
	if n := auditedConflicts(t, st, version); n != len(want) {
		t.Errorf("%d volume_conflict audit records of the rules, want one per pair, %d", n, len(want))
	}
	for _, owner := range []string{"coalition", "russia"} {
		items := rulesConflictItems(t, st, owner, version)
		if len(items) != coalitionVolumes {
			t.Errorf("%d hotline items to %s of the %d new conflicts, want %d: one per coalition volume, naming its %d", len(items), owner, len(want), coalitionVolumes, russiaVolumes)
		}
		for _, m := range items {
			if head := m.Subject.Volumes[0]; head.Party != "coalition" || len(m.Subject.Volumes) != 1+russiaVolumes {
				t.Errorf("item %s to %s names %s's volume %s and %d others, want a coalition volume and its %d conflicts", m.ID, owner, head.Party, head.ID, len(m.Subject.Volumes)-1, russiaVolumes)
			}
			if m.Thread != "volume:"+m.Subject.Volumes[0].ID {
				t.Errorf("item %s on thread %s, want its volume's, %s", m.ID, m.Thread, m.Subject.Volumes[0].ID)
			}
			if !strings.Contains(m.Text, fmt.Sprintf("conflicts with %d volumes of russia under the rules of version %d:", russiaVolumes, version)) {
				t.Errorf("item %s reads %q", m.ID, m.Text)
			}
		}
	}
	wantEachPairToldOnce(t, st, want, version, "coalition", "russia")

	// Lowered and raised again while the items are open: the pairs are
	// new conflicts again, each an event and an audit record, but the
	// parties have their items to acknowledge still: none again.
	bringIntoForce(t, s, old, "coalition", "russia")
	announceAll()
	again := bringIntoForce(t, s, raised, "coalition", "russia")
	announceAll()
	if got := findingEvents(t, st, again); len(got) != len(want) {
		t.Fatalf("%d volume_conflict events of the rules raised again, want %d", len(got), len(want))
	}
	if n := auditedConflicts(t, st, again); n != len(want) {
		t.Errorf("%d volume_conflict audit records of the rules raised again, want %d", n, len(want))
	}
	for _, owner := range []string{"coalition", "russia"} {
		if items := rulesConflictItems(t, st, owner, again); len(items) != 0 {
			t.Errorf("%d hotline items to %s of conflicts an open item tells already, want none", len(items), owner)
		}
	}
}

// The stacks of stacksScene: coalition's volumes, russia's.
const coalitionVolumes, russiaVolumes = 3, 40

// stacksScene is a service (announcing 16 findings a batch) where
// coalition holds a stack of coalitionVolumes volumes and russia one of
// russiaVolumes 20 km away, in one band and window: each of one's in
// conflict with each of the other's under raised (a separation of 30
// km), none under old, the rules in force.
func stacksScene(t *testing.T) (s *Service, st store.Store, old, raised rules.Rules) {
	t.Helper()
	ctx := context.Background()
	s, st = newEmbedded(t)
	s.findingsBatchSize = 16
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	start := s.now().UTC().Truncate(time.Second).Add(time.Hour)
	at := func(eastM float64) volume.Input {
		lat, lon := synth.Destination(35, 36, 90, eastM)
		return volume.Input{Footprint: synth.Circle(lat, lon, 2000), AltLowerM: 1000, AltUpperM: 2000,
			Start: start, End: start.Add(time.Hour), State: volume.Accepted}
	}
	for range coalitionVolumes {
		declare(t, s, "coalition", at(0))
	}
	for range russiaVolumes {
		declare(t, s, "russia", at(20_000))
	}
	old = s.Rules()
	raised = old
	raised.HorizontalSepM = 30_000
	return s, st, old, raised
}

// announceAllFindings announces every queued finding, as the periodic job
// does.
func announceAllFindings(t *testing.T, s *Service) {
	t.Helper()
	ctx := context.Background()
	for range 100 {
		if pending, err := s.findingsPending(ctx); err != nil || !pending {
			return
		}
		if err := s.announceFindingsJob(ctx, s.now()); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("findings still pending after 100 ticks")
}

// auditedConflicts counts the volume_conflict audit records of the rules'
// version.
func auditedConflicts(t *testing.T, st store.Store, version int64) int {
	t.Helper()
	var recs []store.AuditRecord
	if err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		recs, err = tx.AuditFrom(0, 100000)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rec := range recs {
		if rec.Kind == "volume_conflict" && bytes.Contains(rec.Content, fmt.Appendf(nil, `"rules_version":%d`, version)) {
			n++
		}
	}
	return n
}

// A batch stored before the items were queued with the pairs (no
// "grouped", no "items") still tells its pairs on the hotline, grouped
// within the batch: every pair told once to each owner, in fewer items
// than pairs.
func TestActivationConflictItemsOfBatchesStoredBefore(t *testing.T) {
	ctx := context.Background()
	s, st, _, raised := stacksScene(t)
	// Nothing announced in the activating request: every batch queued.
	s.onFindingsBatch = func(int64) error { return errCrashed }
	version := bringIntoForce(t, s, raised, "coalition", "russia")
	s.onFindingsBatch = nil
	batches := 0
	err := st.Update(ctx, func(tx store.Tx) error {
		rows, err := tx.MetaWithPrefix("rules/findings/")
		for key, raw := range rows {
			var b map[string]json.RawMessage
			if err := json.Unmarshal(raw, &b); err != nil {
				return err
			}
			if _, ok := b["grouped"]; !ok {
				return fmt.Errorf("batch %s stored without \"grouped\": %s", key, raw)
			}
			delete(b, "grouped")
			delete(b, "items")
			if err := putJSONMeta(tx, key, b); err != nil {
				return err
			}
			batches++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if batches < 2 {
		t.Fatalf("%d batches queued, want several", batches)
	}
	announceAllFindings(t, s)
	want := findingEvents(t, st, version)
	if len(want) != coalitionVolumes*russiaVolumes {
		t.Fatalf("%d volume_conflict events of the rules, want %d", len(want), coalitionVolumes*russiaVolumes)
	}
	wantEachPairToldOnce(t, st, want, version, "coalition", "russia")
	for _, owner := range []string{"coalition", "russia"} {
		if n := len(rulesConflictItems(t, st, owner, version)); n > batches*coalitionVolumes {
			t.Errorf("%d items to %s from %d batches of the old form, want at most %d (per batch, one per coalition volume)", n, owner, batches, batches*coalitionVolumes)
		}
	}
}

// The items a batch carries are bounded as its pairs are: one whose items
// name maxItemVolumesPerBatch volumes is closed early. Here each of 3 of
// russia's volumes is the thread of the conflicts of 2,500 of
// coalition's (it conflicts with more), which end together: their
// first items (2,000 each) would all ride in one batch, 6,000 volumes.
// Every pair is still in exactly one item, carried by a batch no earlier
// than the pair's own.
func TestActivationItemsPerBatchBounded(t *testing.T) {
	ctx := context.Background()
	s, st := newEmbedded(t)
	t0 := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	vol := func(party string, i int) *volume.Volume {
		return &volume.Volume{ID: fmt.Sprintf("%s-%05d", party, i), Party: party, Version: "1",
			AltLowerM: 1000, AltUpperM: 2000, Start: t0, End: t0.Add(time.Hour), State: volume.Accepted}
	}
	var coalition, russia []*volume.Volume
	for i := range 2500 {
		coalition = append(coalition, vol("coalition", i))
	}
	for i := range 3 {
		russia = append(russia, vol("russia", i))
	}
	var pairs []volume.Pair // sorted by A's id, then B's, as found
	for _, c := range coalition {
		for _, r := range russia {
			pairs = append(pairs, volume.Pair{A: c, B: r})
		}
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return s.queueFindings(tx, 2, nil, pairs) }); err != nil {
		t.Fatal(err)
	}
	var q findingsQueue
	var batches []findingsBatch
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		if q, err = readFindingsQueue(tx); err != nil {
			return err
		}
		for i := q.Head; i < q.Tail; i++ {
			var b findingsBatch
			raw, err := tx.GetMeta(findingsBatchKey(i))
			if err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &b); err != nil {
				return err
			}
			batches = append(batches, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	batchOf := map[string]int{}
	for i, b := range batches {
		if len(b.Pairs) > findingsBatchSize {
			t.Errorf("batch %d holds %d pairs, more than %d", i, len(b.Pairs), findingsBatchSize)
		}
		for _, p := range b.Pairs {
			batchOf[p.A.ID+"+"+p.B.ID] = i
		}
	}
	told := map[string]int{}
	items := 0
	for i, b := range batches {
		named := 0
		for _, it := range b.Items {
			items++
			named += 1 + len(it.Conflicts)
			for _, c := range it.Conflicts {
				key := c.ID + "+" + it.Volume.ID
				told[key]++
				if batchOf[key] > i {
					t.Errorf("the item of %s in batch %d, before the pair's own batch %d", key, i, batchOf[key])
				}
			}
		}
		if bound := maxItemVolumesPerBatch + hotline.MaxVolumeConflictsPerItem + 1; named > bound {
			t.Errorf("batch %d's items name %d volumes, more than %d", i, named, bound)
		}
	}
	if items != 6 {
		t.Errorf("%d items, want 6: each of russia's 3 volumes' 2,500 conflicts in one of 2,000 and one of 500", items)
	}
	for _, p := range pairs {
		if n := told[p.A.ID+"+"+p.B.ID]; n != 1 {
			t.Errorf("pair %s+%s in %d items, want 1", p.A.ID, p.B.ID, n)
		}
	}
}
