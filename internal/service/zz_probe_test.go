package service

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/volume"
)

func TestProbeConcurrentPut(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	var svcs [2]*Service
	for i := range svcs {
		st, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svcs[i] = newReplicaService(t, st, &testPeers{})
	}
	if _, err := svcs[0].CreateParty(ctx, "coalition"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	p := party.Principal{Party: "coalition"}
	in := volume.Input{Footprint: volume.Footprint{Type: "Circle", Center: []float64{36, 35}, RadiusM: 50},
		AltLowerM: 1000, AltUpperM: 2000, Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)}
	v, err := svcs[0].CreateVolume(ctx, p, in)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		var wg sync.WaitGroup
		var errs [2]error
		var outs [2]volume.Volume
		for i := range svcs {
			wg.Go(func() {
				u := in
				u.Version = v.Version
				u.AltUpperM = 2000 + float64(i+1+round*2)
				outs[i], errs[i] = svcs[i].UpdateVolume(ctx, p, v.ID, u)
			})
		}
		wg.Wait()
		ok := 0
		for i := range errs {
			if errs[i] == nil {
				ok++
				v = outs[i]
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %v %v", round, errs[0], errs[1])
			return
		}
		// the other replica must know the new version
		g, _ := svcs[round%2].GetVolume(p, v.ID)
		_ = g
	}
	var all []store.Volume
	svcs[0].st.View(ctx, func(tx store.Tx) error { var err error; all, err = tx.VolumesChangedSince(0, 1000); return err })
	t.Logf("%d rows; final version %s upper %v", len(all), v.Version, v.AltUpperM)
}
