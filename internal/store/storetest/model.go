package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
	"pgregory.net/rapid"
)

// testVolumesModel checks PutVolume and VolumesChangedSince against a
// plain map on random sequences of inserts and replaces with right, wrong
// and missing versions. One store serves every run; each run uses its own
// ids and reads only what changed after it started.
func testVolumesModel(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		var startSeq int64
		if err := s.View(ctx, func(tx store.Tx) error {
			vs, err := tx.VolumesChangedSince(0, 1<<30)
			if len(vs) > 0 {
				startSeq = vs[len(vs)-1].ChangeSeq
			}
			return err
		}); err != nil {
			rt.Fatal(err)
		}
		model := map[string]store.Volume{}
		lastSeq := startSeq
		ops := rapid.IntRange(1, 15).Draw(rt, "ops")
		for i := range ops {
			id := fmt.Sprintf("r%d-v%d", run, rapid.IntRange(0, 3).Draw(rt, "id"))
			cur, exists := model[id]
			var prev string
			switch rapid.IntRange(0, 2).Draw(rt, "prev") {
			case 0:
				prev = ""
			case 1:
				prev = cur.Version
				if !exists {
					prev = "never"
				}
			case 2:
				prev = "wrong"
			}
			v := sampleVolume(id, fmt.Sprintf("%d.%d", run, i), i)
			var seq int64
			err := s.Update(ctx, func(tx store.Tx) error {
				var err error
				seq, err = tx.PutVolume(v, prev)
				return err
			})
			ok := (prev == "" && !exists) || (exists && prev == cur.Version && prev != "")
			switch {
			case ok && err != nil:
				rt.Fatalf("PutVolume(%s, prev %q) failed: %v", id, prev, err)
			case !ok && !errors.Is(err, store.ErrConflict):
				rt.Fatalf("PutVolume(%s, prev %q) with stored %q (exists %v): %v, want ErrConflict", id, prev, cur.Version, exists, err)
			case ok:
				if seq <= lastSeq {
					rt.Fatalf("ChangeSeq %d after %d", seq, lastSeq)
				}
				lastSeq = seq
				v.ChangeSeq = seq
				model[id] = v
			}
		}
		limit := rapid.IntRange(1, 6).Draw(rt, "limit")
		if err := s.View(ctx, func(tx store.Tx) error {
			all, err := tx.VolumesChangedSince(startSeq, 1<<30)
			if err != nil {
				return err
			}
			if len(all) != len(model) {
				rt.Fatalf("VolumesChangedSince returned %d volumes, model has %d", len(all), len(model))
			}
			for i, got := range all {
				if !sameVolume(got, model[got.ID]) {
					rt.Fatalf("stored %+v, model %+v", got, model[got.ID])
				}
				if i > 0 && got.ChangeSeq <= all[i-1].ChangeSeq {
					rt.Fatalf("VolumesChangedSince out of order")
				}
			}
			page, err := tx.VolumesChangedSince(startSeq, limit)
			if err != nil {
				return err
			}
			if len(page) != min(limit, len(all)) {
				rt.Fatalf("limit %d returned %d of %d", limit, len(page), len(all))
			}
			for i := range page {
				if page[i].ID != all[i].ID {
					rt.Fatalf("limited page differs from the full list at %d", i)
				}
			}
			return nil
		}); err != nil {
			rt.Fatal(err)
		}
	})
}
