package volume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// A rules change that raises the separation or the time buffer makes
// stored volumes conflict that did not; NewConflicts lists exactly those
// pairs (each once, by id), against the plain test of every pair under
// both rules, and changes no volume.
func TestNewConflictsAgainstEveryPair(t *testing.T) {
	var found int
	defer func() {
		if found < 20 {
			t.Errorf("only %d new conflicts over all draws: the draws test little", found)
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		old := testRules()
		st := newFakeStore()
		reg := NewRegistry(old)
		ctx := context.Background()
		if err := st.View(ctx, func(tx volumeTx) error { return reg.Load(tx) }); err != nil {
			t.Fatal(err)
		}
		write := func(party string, in Input) Volume {
			var res Result
			for range 2 {
				err := st.Update(ctx, func(tx volumeTx) error {
					var err error
					res, err = reg.Create(tx, party, in, old, now)
					return err
				})
				var mk *MissingKeyError
				if errors.As(err, &mk) {
					for _, m := range mk.Missing {
						in.Key = append(in.Key, KeyEntry{ID: m.ID, Version: m.Version})
					}
					continue
				}
				if err != nil {
					t.Fatalf("create: %v", err)
				}
				reg.Apply(res)
				return res.Volume
			}
			t.Fatalf("create: still missing keys after keying every conflict")
			return Volume{}
		}
		var vs []Volume
		for i := range rapid.IntRange(2, 10).Draw(t, "volumes") {
			name := fmt.Sprint("v", i)
			lat, lon := destination(35, 36, rapid.Float64Range(0, 360).Draw(t, name+"_bearing"), rapid.Float64Range(0, 60000).Draw(t, name+"_dist")/meanEarthRadiusM)
			lower := rapid.Float64Range(0, 6000).Draw(t, name+"_lower")
			start := t0.Add(time.Duration(rapid.Int64Range(0, 4*3600).Draw(t, name+"_start")) * time.Second)
			in := input(circle(lat, lon, rapid.Float64Range(500, 8000).Draw(t, name+"_radius")),
				lower, lower+rapid.Float64Range(0, 1500).Draw(t, name+"_thick"),
				start, start.Add(time.Duration(rapid.Int64Range(60, 2*3600).Draw(t, name+"_len"))*time.Second))
			vs = append(vs, write([]string{"a", "b", "c"}[rapid.IntRange(0, 2).Draw(t, name+"_party")], in))
		}
		raised := old
		raised.HorizontalSepM *= rapid.Float64Range(0.5, 4).Draw(t, "sep")
		raised.VerticalSepM *= rapid.Float64Range(0.5, 4).Draw(t, "vsep")
		raised.TimeBufferS *= rapid.Float64Range(0.5, 60).Draw(t, "buffer")

		var got []Pair
		err := st.Update(ctx, func(tx volumeTx) error {
			var err error
			got, err = reg.NewConflicts(tx, old, raised)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs, want []string
		for _, p := range got {
			if p.A.ID >= p.B.ID {
				t.Errorf("pair %s, %s not in id order", p.A.ID, p.B.ID)
			}
			gotIDs = append(gotIDs, p.A.ID+"+"+p.B.ID)
		}
		slices.SortFunc(vs, func(x, y Volume) int {
			if x.ID < y.ID {
				return -1
			}
			return 1
		})
		for i := range vs {
			for j := i + 1; j < len(vs); j++ {
				if Conflict(vs[i], vs[j], raised) && !Conflict(vs[i], vs[j], old) {
					want = append(want, vs[i].ID+"+"+vs[j].ID)
				}
			}
		}
		if !slices.Equal(gotIDs, want) {
			t.Fatalf("new conflicts %v, want %v", gotIDs, want)
		}
		found += len(got)
		for _, v := range vs {
			if cur, err := reg.Get(v.Party, v.ID); err != nil || cur.Version != v.Version || cur.State != v.State {
				t.Errorf("volume %s changed: %+v (%v)", v.ID, cur, err)
			}
		}
	})
}
