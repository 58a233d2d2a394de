package volume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
				lower, lower+rapid.Float64Range(1, 1500).Draw(t, name+"_thick"),
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

// drawInput draws a volume within distM of (35, 36) for the rules tests:
// close enough to many others that a raised separation or buffer makes
// new conflicts.
func drawInput(t *rapid.T, name string, distM float64) Input {
	lat, lon := destination(35, 36, rapid.Float64Range(0, 360).Draw(t, name+"_bearing"), rapid.Float64Range(0, distM).Draw(t, name+"_dist")/meanEarthRadiusM)
	lower := rapid.Float64Range(0, 6000).Draw(t, name+"_lower")
	start := t0.Add(time.Duration(rapid.Int64Range(0, 4*3600).Draw(t, name+"_start")) * time.Second)
	return input(circle(lat, lon, rapid.Float64Range(500, 8000).Draw(t, name+"_radius")),
		lower, lower+rapid.Float64Range(1, 1500).Draw(t, name+"_thick"),
		start, start.Add(time.Duration(rapid.Int64Range(60, 2*3600).Draw(t, name+"_len"))*time.Second))
}

// keyed runs a write again with every conflict it was refused for in its
// key, as an owner that read the conflicts would.
func keyed(t *rapid.T, write func(key []KeyEntry) (Result, error)) Result {
	var key []KeyEntry
	for range 2 {
		res, err := write(key)
		var mk *MissingKeyError
		if errors.As(err, &mk) {
			for _, m := range mk.Missing {
				key = append(key, KeyEntry{ID: m.ID, Version: m.Version})
			}
			continue
		}
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		return res
	}
	t.Fatalf("write: still missing keys after keying every conflict")
	return Result{}
}

// The scan ahead of new rules (ScanRules) is made from the registry, and
// volumes written after it (created, moved, ended; applied to the registry
// or only in the store) are checked again in the write that brings the
// rules in: AfterScan finds exactly what checking
// every volume there finds (Breaking, NewConflicts), and the new conflicts
// are those of the plain test of every pair of the volumes as they are
// then.
func TestScanAheadThenWritesMeanwhile(t *testing.T) {
	var patched, raced int
	// A round of rapid's checks (100 by default) drew fewer than five
	// with new conflicts among the volumes written after the scan in
	// about one run in two hundred: rounds, each of a fresh seed, are
	// checked until the draws have tested enough, so that the count
	// below tells a generator that no longer reaches them, not bad luck.
	for round := 0; round < 10 && (patched < 5 || raced < 20); round++ {
		checkScanAheadThenWritesMeanwhile(t, &patched, &raced)
	}
	if patched < 5 || raced < 20 {
		t.Errorf("only %d draws with new conflicts among volumes written after the scan, %d with a write after it: the draws test little", patched, raced)
	}
}

// checkScanAheadThenWritesMeanwhile is a round of
// TestScanAheadThenWritesMeanwhile, counting the draws with new conflicts
// among the volumes written after the scan (patched) and those with a
// write after it (raced).
func checkScanAheadThenWritesMeanwhile(t *testing.T, patched, raced *int) {
	rapid.Check(t, func(t *rapid.T) {
		old := testRules()
		st := newFakeStore()
		reg := NewRegistry(old)
		ctx := context.Background()
		if err := st.View(ctx, func(tx volumeTx) error { return reg.Load(tx) }); err != nil {
			t.Fatal(err)
		}
		final := map[string]Volume{}
		write := func(apply bool, w func(tx volumeTx, key []KeyEntry) (Result, error)) {
			res := keyed(t, func(key []KeyEntry) (Result, error) {
				var res Result
				err := st.Update(ctx, func(tx volumeTx) error {
					var err error
					res, err = w(tx, key)
					return err
				})
				return res, err
			})
			if apply {
				reg.Apply(res)
			}
			final[res.Volume.ID] = res.Volume
		}
		parties := []string{"a", "b", "c"}
		create := func(name string, apply bool, distM float64) {
			party, in := parties[rapid.IntRange(0, 2).Draw(t, name+"_party")], drawInput(t, name, distM)
			write(apply, func(tx volumeTx, key []KeyEntry) (Result, error) {
				in.Key = key
				return reg.Create(tx, party, in, old, now)
			})
		}
		for i := range rapid.IntRange(2, 10).Draw(t, "volumes") {
			create(fmt.Sprint("v", i), true, 60000)
		}
		raised := old
		raised.HorizontalSepM *= rapid.Float64Range(0.5, 4).Draw(t, "sep")
		raised.VerticalSepM *= rapid.Float64Range(0.5, 4).Draw(t, "vsep")
		raised.TimeBufferS *= rapid.Float64Range(0.5, 60).Draw(t, "buffer")
		raised.MaxWindowS = float64(rapid.IntRange(600, 3*3600).Draw(t, "max_window_s"))
		scan, err := reg.ScanRules(old, raised)
		if err != nil {
			t.Fatal(err)
		}
		meanwhile := rapid.IntRange(0, 6).Draw(t, "meanwhile")
		for i := range meanwhile {
			name := fmt.Sprint("w", i)
			apply := rapid.Bool().Draw(t, name+"_applied")
			var live []Volume
			for _, v := range final {
				if v.State.Live() {
					live = append(live, v)
				}
			}
			slices.SortFunc(live, func(x, y Volume) int { return strings.Compare(x.ID, y.ID) })
			kind := rapid.IntRange(0, 2).Draw(t, name+"_kind")
			if kind == 0 || len(live) == 0 {
				create(name, apply, 20000)
				continue
			}
			v := live[rapid.IntRange(0, len(live)-1).Draw(t, name+"_which")]
			if kind == 1 {
				in := drawInput(t, name, 20000)
				in.Version, in.State = v.Version, v.State
				write(apply, func(tx volumeTx, key []KeyEntry) (Result, error) {
					in.Key = key
					return reg.Update(tx, v.Party, v.ID, in, old, now)
				})
				continue
			}
			write(apply, func(tx volumeTx, key []KeyEntry) (Result, error) {
				return reg.SetState(tx, v.Party, v.ID, v.Version, Cancelled, key, old, now)
			})
		}

		var gotFlags, wantFlags, unscannedFlags []Flag
		var gotPairs, wantPairs, unscannedPairs []Pair
		err = st.Update(ctx, func(tx volumeTx) error {
			var err error
			if gotFlags, gotPairs, err = reg.AfterScan(tx, scan, old, raised); err != nil {
				return err
			}
			// Without a scan, or with one made for other rules, every
			// volume is checked in tx.
			var other *RulesScan
			if !rapid.Bool().Draw(t, "no_scan") {
				if other, err = reg.ScanRules(old, testRules()); err != nil {
					return err
				}
			}
			if unscannedFlags, unscannedPairs, err = reg.AfterScan(tx, other, old, raised); err != nil {
				return err
			}
			if wantFlags, err = reg.Breaking(tx, raised); err != nil {
				return err
			}
			wantPairs, err = reg.NewConflicts(tx, old, raised)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		flagText := func(fs []Flag) (out []string) {
			for _, f := range fs {
				out = append(out, f.Volume.ID+"@"+f.Volume.Version+" "+f.Reason.Error())
			}
			return out
		}
		if got, want := flagText(gotFlags), flagText(wantFlags); !slices.Equal(got, want) {
			t.Fatalf("flags after the scan %v, checking every volume %v", got, want)
		}
		if got, want := flagText(unscannedFlags), flagText(wantFlags); !slices.Equal(got, want) {
			t.Fatalf("flags without a scan for the rules %v, checking every volume %v", got, want)
		}
		pairText := func(ps []Pair) (out []string) {
			for _, p := range ps {
				out = append(out, p.A.ID+"@"+p.A.Version+"+"+p.B.ID+"@"+p.B.Version)
			}
			return out
		}
		var every []string
		var vs []Volume
		for _, v := range final {
			vs = append(vs, v)
		}
		slices.SortFunc(vs, func(x, y Volume) int { return strings.Compare(x.ID, y.ID) })
		for i := range vs {
			for j := i + 1; j < len(vs); j++ {
				if Conflict(vs[i], vs[j], raised) && !Conflict(vs[i], vs[j], old) {
					every = append(every, vs[i].ID+"@"+vs[i].Version+"+"+vs[j].ID+"@"+vs[j].Version)
				}
			}
		}
		got := pairText(gotPairs)
		if want := pairText(wantPairs); !slices.Equal(got, want) {
			t.Fatalf("new conflicts after the scan %v, checking every volume %v", got, want)
		}
		if unscanned := pairText(unscannedPairs); !slices.Equal(unscanned, got) {
			t.Fatalf("new conflicts without a scan for the rules %v, after the scan %v", unscanned, got)
		}
		if !slices.Equal(got, every) {
			t.Fatalf("new conflicts after the scan %v, the plain test of every pair %v", got, every)
		}
		if meanwhile > 0 {
			*raced++
		}
		scanned := map[string]string{}
		for _, v := range scan.live {
			scanned[v.ID] = v.Version
		}
		for _, p := range gotPairs {
			if scanned[p.A.ID] != p.A.Version || scanned[p.B.ID] != p.B.Version {
				*patched++
				break
			}
		}
	})
}
