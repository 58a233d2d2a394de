package service

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/volume"
)

// A search of alternatives takes a turn of work on demand, as the API's
// resolutions on demand do: while every turn is taken (another party's
// resolution or search), it waits, then searches; a search whose request
// ends while it waits searches nothing.
func TestAlternativesTakeTurnsOfWorkOnDemand(t *testing.T) {
	s, closeAll := newVisibilityService(t, t.TempDir())
	defer closeAll()
	s.onDemand = make(chan struct{}, 1)
	waiting := make(chan struct{}, 4)
	s.onDemandWait = func() { waiting <- struct{}{} }
	circle := func(lon float64) volume.Input {
		return volume.Input{
			Footprint: volume.Footprint{Type: "Circle", RadiusM: 3000, Center: []float64{lon, 35}},
			AltLowerM: 1000, AltUpperM: 2000,
			Start: visibilityT0, End: visibilityT0.Add(time.Hour),
			State: volume.Accepted,
		}
	}
	if _, err := declareWithKey(s, "alpha", circle(36)); err != nil {
		t.Fatal(err)
	}
	bravo := party.Principal{Party: "bravo"}
	release, err := s.OnDemandTurn(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		alts []volume.Alternative
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		alts, err := s.VolumeAlternatives(t.Context(), bravo, "", circle(36.02))
		answered <- answer{alts, err}
	}()
	select {
	case <-waiting:
	case a := <-answered:
		t.Fatalf("searched while another took the only turn: %d alternatives, %v", len(a.alts), a.err)
	}
	release()
	if a := <-answered; a.err != nil || len(a.alts) == 0 {
		t.Fatalf("once the turn was free: %d alternatives, %v", len(a.alts), a.err)
	}

	// A request that ends while it waits searches nothing and gives no
	// turn back that it did not take.
	release, err = s.OnDemandTurn(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	gone := errors.New("client gone")
	s.onDemandWait = func() { cancel(gone) }
	if alts, err := s.VolumeAlternatives(ctx, bravo, "", circle(36.02)); !errors.Is(err, gone) || len(alts) != 0 {
		t.Fatalf("a search whose request ended while it waited: %d alternatives, %v", len(alts), err)
	}
	if len(s.onDemand) != 1 {
		t.Fatalf("%d turns taken, want the one held", len(s.onDemand))
	}
	release()
}

// The alternatives of the answer to a volume write with an idempotency
// key (rendered and kept in the write's transaction) are searched before
// the transaction: a search waiting for its turn of work on demand, or
// searching, holds no writer back. Searched in the transaction, it held
// the process's writers (and on PostgreSQL the writers' lock of every
// replica), the commits of alerts included, for as long as other
// parties' resolutions and searches took the turns.
func TestIdempotentVolumeWriteWaitsForItsTurnOutsideItsTransaction(t *testing.T) {
	s, closeAll := newVisibilityService(t, t.TempDir())
	defer closeAll()
	s.onDemand = make(chan struct{}, 1)
	waiting := make(chan struct{}, 4)
	s.onDemandWait = func() { waiting <- struct{}{} }
	circle := func(lon float64) volume.Input {
		return volume.Input{
			Footprint: volume.Footprint{Type: "Circle", RadiusM: 3000, Center: []float64{lon, 35}},
			AltLowerM: 1000, AltUpperM: 2000,
			Start: visibilityT0, End: visibilityT0.Add(time.Hour),
			State: volume.Accepted,
		}
	}
	alpha, err := declareWithKey(s, "alpha", circle(36))
	if err != nil {
		t.Fatal(err)
	}
	bravo := party.Principal{Party: "bravo"}
	in := circle(36.02)
	in.Key = []volume.KeyEntry{{ID: alpha.ID, Version: alpha.Version}}
	// The answer rendered as the API renders it: the volume and its
	// alternatives.
	withAnswer := func() context.Context {
		ctx := WithIdempotency(context.Background(), Idempotency{Party: "bravo", Key: "k-1", Fingerprint: []byte("post volume")}, nil)
		RenderWith(ctx, func(result any) (int, []byte, error) {
			v := result.(volume.Volume)
			alts, err := s.VolumeAlternatives(ctx, bravo, v.ID, in)
			if err != nil {
				return 0, nil, err
			}
			b, err := json.Marshal(map[string]any{"id": v.ID, "alternatives": alts})
			return 201, b, err
		})
		return ctx
	}
	release, err := s.OnDemandTurn(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := withAnswer()
	written := make(chan error, 1)
	go func() {
		_, err := s.CreateVolume(ctx, bravo, in)
		written <- err
	}()
	select {
	case <-waiting:
	case err := <-written:
		t.Fatalf("the write did not wait for the turn another holds: %v", err)
	}
	if !s.wmu.TryLock() {
		release()
		<-written
		t.Fatal("the volume write holds the process's writers while its alternatives wait for a turn of work on demand")
	}
	s.wmu.Unlock()
	release()
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	status, body, ok := Answered(ctx)
	var first struct {
		ID           string
		Alternatives []volume.Alternative
	}
	if !ok || status != 201 || json.Unmarshal(body, &first) != nil || first.ID == "" || len(first.Alternatives) == 0 {
		t.Fatalf("the answer kept is %d %s (%v), want the volume and its alternatives", status, body, ok)
	}
	// Sent again, it is answered the same bytes, and searches nothing:
	// the turn is taken, and a search would wait for it.
	release, err = s.OnDemandTurn(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	s.onDemandWait = func() { t.Error("the replayed write searched its alternatives again") }
	_, err = s.CreateVolume(withAnswer(), bravo, in)
	var rep *Replayed
	if !errors.As(err, &rep) || rep.Status != status || string(rep.Body) != string(body) {
		t.Errorf("sent again: %v, want the answer kept, %d %s", err, status, body)
	}
}
