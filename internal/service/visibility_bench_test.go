package service

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
)

// BenchmarkAlternativesNeedToKnow: under volume_visibility need_to_know,
// bravo has n volumes stacked over one circle (bands of 100 m, one every
// 100 m from the ground to 14,000 m, in windows of an hour one after the
// other), alpha one volume beside them, and alpha asks for the alternatives of a write into the
// stack. "set" is the visibility VolumeAlternatives uses (the volumes in
// conflict with alpha's found once); "per_volume" is what it did before,
// a query of the index per volume near the write (volumeVisible).
func BenchmarkAlternativesNeedToKnow(b *testing.B) {
	for _, n := range []int{700, 2800} {
		s := stackedForVisibility(b, n)
		p := party.Principal{Party: "alpha"}
		probe := stackedInput(36, 0, 0)
		probe.AltUpperM = 14_000 // over most of the stack: a shift meets it up, down, later, earlier
		rl, now := s.Rules(), s.now()
		b.Run(fmt.Sprintf("n=%d/set", n), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := s.volumes().Alternatives(p.Party, "", probe, rl, now, s.visibility(p, rl, now)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/per_volume", n), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := s.volumes().Alternatives(p.Party, "", probe, rl, now, func(v *volume.Volume) bool { return s.volumeVisible(p, *v, rl, now) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// stackedInput is a volume over the circle at longitude lon, in band i of
// 100 m (100 m apart), in hour slot.
func stackedInput(lon float64, band, slot int) volume.Input {
	start := visibilityT0.Add(time.Duration(slot) * time.Hour)
	lower := float64(band) * 100
	return volume.Input{Footprint: volume.Footprint{Type: "Circle", Center: []float64{lon, 35}, RadiusM: 5000},
		AltLowerM: lower, AltUpperM: lower + 100, Start: start, End: start.Add(time.Hour), State: volume.Accepted}
}

func stackedForVisibility(b *testing.B, n int) *Service {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	r := rules.Default()
	r.VolumeVisibility = rules.VolumesNeedToKnow
	body, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	err = st.Update(ctx, func(tx store.Tx) error {
		return tx.PutRules(store.RulesRecord{Version: r.Version, Created: visibilityT0, Actor: "deconflict", Body: body})
	})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(ctx, Config{Store: st, Now: func() time.Time { return visibilityT0 }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(ctx) })
	for _, p := range []string{"alpha", "bravo"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		if _, err := s.CreateVolume(ctx, party.Principal{Party: "bravo"}, stackedInput(36, i%140, i/140)); err != nil {
			b.Fatal(err)
		}
	}
	// Beside the stack, conflicting with its lowest band in the first hour.
	if _, err := declareWithKey(s, "alpha", stackedInput(36.1, 0, 0)); err != nil {
		b.Fatal(err)
	}
	if s.Rules().VolumeVisibility != rules.VolumesNeedToKnow {
		b.Fatal("the rules are not need to know")
	}
	return s
}
