package service

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/volume/synth"
)

// eastOf is a 2 km circle eastM east of (35, 36), from an hour after now
// for an hour, in the band 1,000-2,000 m.
func eastOf(now time.Time, eastM float64) volume.Input {
	start := now.UTC().Truncate(time.Second).Add(time.Hour)
	lat, lon := synth.Destination(35, 36, 90, eastM)
	return volume.Input{Footprint: synth.Circle(lat, lon, 2000), AltLowerM: 1000, AltUpperM: 2000,
		Start: start, End: start.Add(time.Hour), State: volume.Accepted}
}

// bringIntoForce proposes r through s and has every party accept it
// there; it returns the version in force.
func bringIntoForce(t *testing.T, s *Service, r rules.Rules, parties ...string) int64 {
	t.Helper()
	ctx := context.Background()
	op := party.Principal{Party: party.OperatorName, Operator: true}
	prop, err := s.ProposeRules(ctx, op, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parties {
		if _, err := s.AnswerRules(ctx, party.Principal{Party: p}, prop.Version, true, "", prop.RulesSHA256); err != nil {
			t.Fatal(err)
		}
	}
	return prop.Version
}

// wantCheckedUnderNewRules fails t unless the write of russia's volume
// (err), 16 km from coalition's volume a, was refused for a conflict with
// a that only the rules of version newVersion (30 km) make: accepted, it
// was checked under the old rules (9,260 m), and then no volume_conflict
// of the pair under the new rules may be found in st either.
func wantCheckedUnderNewRules(t *testing.T, st store.Store, err error, a volume.Volume, newVersion int64) {
	t.Helper()
	var mk *volume.MissingKeyError
	if errors.As(err, &mk) {
		if len(mk.Missing) != 1 || mk.Missing[0].ID != a.ID {
			t.Fatalf("the write is refused for the missing keys %v, want %s alone", mk.Missing, a.ID)
		}
		return
	}
	if err != nil {
		t.Fatalf("the write failed: %v", err)
	}
	reported := 0
	verr := st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.EventsAfter(0, 10000)
		for _, ev := range evs {
			if ev.Kind != "volume_conflict" {
				continue
			}
			var c RulesConflict
			if json.Unmarshal(ev.Body, &c) == nil && c.RulesVersion == newVersion {
				reported++
			}
		}
		return err
	})
	if verr != nil {
		t.Fatal(verr)
	}
	t.Fatalf("the write was accepted without the key of %s, with which it conflicts under rules version %d in force in the store; volume_conflict events of that version: %d", a.ID, newVersion, reported)
}

// A volume write that comes after an activation committed and before the
// service adopted the new rules is checked under the rules the store
// holds: refused for the conflict the raised separation makes, not
// accepted under the rules that no longer hold (the activation's check of
// the volumes ran before it, and would never report it).
func TestVolumeWriteBetweenActivationCommitAndAdoption(t *testing.T) {
	ctx := context.Background()
	s, st := newEmbedded(t)
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	a := declare(t, s, "coalition", eastOf(s.now(), 0))
	old := s.Rules()
	raised := old
	raised.HorizontalSepM = 30_000

	var wrote bool
	var werr error
	s.onRulesCommitted = func() {
		if wrote {
			return
		}
		wrote = true
		if got := s.Rules().Version; got != old.Version {
			t.Errorf("the service runs with rules version %d as the activation commits, want %d still", got, old.Version)
		}
		_, werr = s.CreateVolume(ctx, party.Principal{Party: "russia"}, eastOf(s.now(), 20_000))
	}
	version := bringIntoForce(t, s, raised, "coalition", "russia")
	if !wrote {
		t.Fatal("no write between the activation's commit and its adoption")
	}
	if got := s.Rules().Version; got != version {
		t.Fatalf("rules version %d in force, want %d", got, version)
	}
	wantCheckedUnderNewRules(t, st, werr, a, version)
}

// A replica that has not adopted the rules another replica brought into
// force checks its volume writes under them all the same: the store's.
func TestReplicaBehindOnRulesChecksVolumesUnderTheStores(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	replicaBehindOnRules(t, st, st)
}

// On PostgreSQL, each replica with its own connection pool.
func TestReplicaBehindOnRulesChecksVolumesUnderTheStoresOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	url := pgtest.NewDatabase(t)
	var sts [2]store.Store
	for i := range sts {
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		sts[i] = st
	}
	replicaBehindOnRules(t, sts[0], sts[1])
}

func replicaBehindOnRules(t *testing.T, stA, stB store.Store) {
	ctx := context.Background()
	clock := &testClock{}
	a := newReplicaServiceAt(t, stA, &testPeers{}, clock)
	b := newReplicaServiceAt(t, stB, &testPeers{}, clock)
	for _, p := range []string{"coalition", "russia"} {
		if _, err := a.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	v := declare(t, a, "coalition", eastOf(clock.now(), 0))
	old := b.Rules()
	raised := old
	raised.HorizontalSepM = 30_000
	version := bringIntoForce(t, a, raised, "coalition", "russia")
	if got := b.Rules().Version; got != old.Version {
		t.Fatalf("replica b runs with rules version %d before any sync, want %d", got, old.Version)
	}
	_, err := b.CreateVolume(ctx, party.Principal{Party: "russia"}, eastOf(clock.now(), 20_000))
	wantCheckedUnderNewRules(t, stA, err, v, version)
	if got := b.Rules(); got.Version != version || got.HorizontalSepM != raised.HorizontalSepM {
		t.Fatalf("replica b runs with rules version %d (%v m) after the write, want %d (%v m)", got.Version, got.HorizontalSepM, version, raised.HorizontalSepM)
	}
}

// The periodic end of expired volumes is a volume write too: run between
// an activation's commit and its adoption, it ends a volume when its
// window plus the time buffer the store holds is over, not the buffer
// before.
func TestExpiryBetweenActivationCommitAndAdoption(t *testing.T) {
	ctx := context.Background()
	s, _ := newEmbedded(t)
	if _, err := s.CreateParty(ctx, "coalition"); err != nil {
		t.Fatal(err)
	}
	v := declare(t, s, "coalition", eastOf(s.now(), 0))
	old := s.Rules()
	longer := old
	longer.TimeBufferS = old.TimeBufferS + 3600
	// Over under the buffer before, not under the new one.
	at := v.End.Add(time.Duration(old.TimeBufferS)*time.Second + time.Minute)
	var ran bool
	s.onRulesCommitted = func() {
		if ran {
			return
		}
		ran = true
		if err := s.endExpiredVolumes(ctx, at); err != nil {
			t.Errorf("ending the expired volumes: %v", err)
		}
	}
	bringIntoForce(t, s, longer, "coalition")
	if !ran {
		t.Fatal("the expiry did not run between the activation's commit and its adoption")
	}
	got, err := s.GetVolume(party.Principal{Party: "coalition"}, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != v.State {
		t.Fatalf("the volume is %s, want %s: its window plus the new buffer of %v s is not over", got.State, v.State, longer.TimeBufferS)
	}
}
