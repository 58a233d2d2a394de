package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
)

var visibilityT0 = time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)

// visibilityParties are the parties of the visibility tests.
var visibilityParties = []string{"alpha", "bravo", "charlie"}

// newVisibilityService opens a service on a new store in dir, at
// visibilityT0, with visibilityParties. closeAll closes the service, then
// its store, which Service.Close leaves to its owner: a property test
// opens one per check, and left open they ran the process out of file
// descriptors.
func newVisibilityService(tb testing.TB, dir string) (s *Service, closeAll func()) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		tb.Fatal(err)
	}
	s, err = New(ctx, Config{Store: st, Now: func() time.Time { return visibilityT0 }})
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	closeAll = func() {
		if err := s.Close(ctx); err != nil {
			tb.Error(err)
		}
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	}
	for _, p := range visibilityParties {
		if _, err := s.CreateParty(ctx, p); err != nil {
			closeAll()
			tb.Fatal(err)
		}
	}
	return s, closeAll
}

// declareWithKey writes in for p, completing its awareness key with whatever the
// write names missing, as a party that read the 409 would.
func declareWithKey(s *Service, p string, in volume.Input) (volume.Volume, error) {
	for range 3 {
		v, err := s.CreateVolume(context.Background(), party.Principal{Party: p}, in)
		var mk *volume.MissingKeyError
		if !errors.As(err, &mk) {
			return v, err
		}
		for _, m := range mk.Missing {
			in.Key = append(in.Key, volume.KeyEntry{ID: m.ID, Version: m.Version})
		}
	}
	return volume.Volume{}, fmt.Errorf("the key is still incomplete")
}

func drawVisibilityInput(t *rapid.T, name string) volume.Input {
	lower := rapid.Float64Range(0, 3000).Draw(t, name+"_lower")
	start := visibilityT0.Add(time.Duration(rapid.IntRange(0, 6).Draw(t, name+"_start")) * 30 * time.Minute)
	return volume.Input{
		Footprint: volume.Footprint{Type: "Circle", RadiusM: rapid.Float64Range(1000, 8000).Draw(t, name+"_radius"),
			Center: []float64{36 + rapid.Float64Range(0, 0.3).Draw(t, name+"_lon"), 35 + rapid.Float64Range(0, 0.3).Draw(t, name+"_lat")}},
		AltLowerM: lower, AltUpperM: lower + rapid.Float64Range(10, 1500).Draw(t, name+"_thick"),
		Start: start, End: start.Add(time.Duration(rapid.IntRange(1, 4).Draw(t, name+"_len")) * 30 * time.Minute),
		State: volume.Accepted,
	}
}

// TestVisibilityIsVolumeVisible: under need to know, the visibility the
// search of alternatives and the listings use (one set of the volumes in
// conflict with the party's, found once) says of every live volume what
// volumeVisible, a query of the index per volume, says; and the
// alternatives of a write searched with either are the same.
func TestVisibilityIsVolumeVisible(t *testing.T) {
	root := t.TempDir()
	checks, seen, hidden, searched := 0, 0, 0, 0
	rapid.Check(t, func(rt *rapid.T) {
		checks++
		dir := fmt.Sprintf("%s/%d", root, checks)
		if err := os.Mkdir(dir, 0o700); err != nil {
			rt.Fatal(err)
		}
		s, closeAll := newVisibilityService(t, dir)
		defer closeAll()
		for i := range rapid.IntRange(2, 14).Draw(rt, "volumes") {
			p := rapid.SampledFrom(visibilityParties).Draw(rt, fmt.Sprint("v", i, "_party"))
			if _, err := declareWithKey(s, p, drawVisibilityInput(rt, fmt.Sprint("v", i))); err != nil {
				var pe *volume.PriorityError
				if !errors.As(err, &pe) {
					rt.Fatalf("declaring v%d: %v", i, err)
				}
			}
		}
		rl := s.Rules()
		rl.VolumeVisibility = rules.VolumesNeedToKnow
		now := s.now()
		var live []*volume.Volume
		s.volumes().EachLive(func(v *volume.Volume) { c := *v; live = append(live, &c) })
		probe := drawVisibilityInput(rt, "probe")
		for _, name := range visibilityParties {
			p := party.Principal{Party: name}
			visible := s.visibility(p, rl, now)
			for _, v := range live {
				got, want := visible(v), s.volumeVisible(p, *v, rl, now)
				if got != want {
					rt.Fatalf("%s sees volume %s of %s: %v, volumeVisible says %v", name, v.ID, v.Party, got, want)
				}
				switch {
				case v.Party == name:
				case got:
					seen++
				default:
					hidden++
				}
			}
			got, _, gerr := s.volumes().Alternatives(name, "", probe, rl, now, s.visibility(p, rl, now))
			want, _, werr := s.volumes().Alternatives(name, "", probe, rl, now, func(v *volume.Volume) bool { return s.volumeVisible(p, *v, rl, now) })
			if !reflect.DeepEqual(got, want) || (gerr == nil) != (werr == nil) {
				rt.Fatalf("alternatives for %s: %+v (%v), with volumeVisible %+v (%v)", name, got, gerr, want, werr)
			}
			if len(got) > 0 {
				searched++
			}
		}
	})
	// The draws must test both answers, and searches that found something.
	if seen == 0 || hidden == 0 || searched == 0 {
		t.Fatalf("over the draws, %d volumes of another party seen, %d hidden, %d searches with alternatives", seen, hidden, searched)
	}
	t.Logf("%d volumes of another party seen, %d hidden, %d searches with alternatives", seen, hidden, searched)
}
