package service

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/volume/synth"
)

// Two activations one after the other, the first changing the separation
// (its volume index rebuilt, seconds with 100,000 volumes, without the
// writers' lock) and the second not: the second commits and is adopted
// while the first still rebuilds. The live engines must end up with the
// rules in force, the second's, not with the first's applied after it.
func TestRulesAppliedInVersionOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := newEmbedded(t)
	op := party.Principal{Party: party.OperatorName, Operator: true}
	first := s.Rules()
	first.HorizontalSepM *= 2
	second := first
	second.SamePartyAlerts = !first.SamePartyAlerts

	secondDone := make(chan error, 1)
	waiting := make(chan struct{}, 1)
	s.onRulesApplyWait = func() { waiting <- struct{}{} }
	var loads int
	s.onLoadVolumes = func() {
		loads++
		if loads > 1 {
			return
		}
		// No party to ask: each proposal comes into force at once.
		go func() {
			_, err := s.ProposeRules(ctx, op, second)
			secondDone <- err
		}()
		// The second is adopted meanwhile, or waits for the first.
		select {
		case err := <-secondDone:
			secondDone <- err
		case <-waiting:
		}
	}
	p1, err := s.ProposeRules(ctx, op, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-secondDone; err != nil {
		t.Fatal(err)
	}
	got := s.Rules()
	if got.Version != p1.Version+1 || got.SamePartyAlerts != second.SamePartyAlerts {
		t.Fatalf("rules version %d (same party alerts %v) in force, want %d (%v)", got.Version, got.SamePartyAlerts, p1.Version+1, second.SamePartyAlerts)
	}
	if engine := s.tac.eng.Load().Params().SameParty; engine != second.SamePartyAlerts {
		t.Errorf("the alert engine runs with same party alerts %v, the rules in force (version %d) say %v: an older version was applied after it", engine, got.Version, second.SamePartyAlerts)
	}
}

// The time of an activation is that of the transaction that brings the
// rules into force, not that of its first attempt before the volumes were
// checked ahead: alerts commit under the old rules meanwhile (seconds
// with 100,000 volumes), and the new conflicts' hotline items would start
// with their acknowledgement deadline partly spent.
func TestActivationTimedAfterTheScanAhead(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var clock atomic.Int64
	clock.Store(time.Now().UTC().Truncate(time.Second).UnixNano())
	s, err := New(ctx, Config{Store: st, Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	start := s.now().Add(time.Hour)
	at := func(eastM float64) volume.Input {
		lat, lon := synth.Destination(35, 36, 90, eastM)
		return volume.Input{Footprint: synth.Circle(lat, lon, 2000), AltLowerM: 1000, AltUpperM: 2000,
			Start: start, End: start.Add(time.Hour), State: volume.Accepted}
	}
	// 16 km between the circles: apart now, in conflict under 30 km.
	declare(t, s, "coalition", at(0))
	declare(t, s, "russia", at(20_000))
	raised := s.Rules()
	raised.HorizontalSepM = 30_000
	op := party.Principal{Party: party.OperatorName, Operator: true}
	prop, err := s.ProposeRules(ctx, op, raised)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AnswerRules(ctx, party.Principal{Party: "coalition"}, prop.Version, true, "", prop.RulesSHA256); err != nil {
		t.Fatal(err)
	}
	const scanTook = 20 * time.Second
	var ahead bool
	s.volumes().ObserveScans(func() {
		if ahead || !s.wmu.TryLock() {
			return
		}
		s.wmu.Unlock()
		ahead = true
		clock.Add(int64(scanTook))
	})
	before := s.now()
	if _, err := s.AnswerRules(ctx, party.Principal{Party: "russia"}, prop.Version, true, "", prop.RulesSHA256); err != nil {
		t.Fatal(err)
	}
	if !ahead {
		t.Fatal("the volumes were not checked ahead")
	}
	committed := before.Add(scanTook)
	var rec store.RulesRecord
	var items []store.Message
	err = st.View(ctx, func(tx store.Tx) error {
		if rec, err = tx.LatestRules(); err != nil {
			return err
		}
		items, err = tx.MessagesFor("coalition", "", time.Time{}, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != prop.Version || !rec.Created.Equal(committed) {
		t.Errorf("rules version %d created at %s, want version %d at %s (after the scan ahead)", rec.Version, rec.Created, prop.Version, committed)
	}
	under := fmt.Sprintf("under the rules of version %d", prop.Version)
	n := 0
	for _, m := range items {
		if !bytes.Contains(m.Body, []byte(under)) {
			continue
		}
		n++
		if !m.Created.Equal(committed) {
			t.Errorf("hotline item of the new conflict created at %s (deadline %s), want %s", m.Created, m.Deadline, committed)
		}
	}
	if n != 1 {
		t.Fatalf("%d hotline items to coalition %s, want 1", n, under)
	}
}
