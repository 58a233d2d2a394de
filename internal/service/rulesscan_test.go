package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/volume/synth"
)

// declare writes party's volume, keying the conflicts it is refused for.
func declare(t *testing.T, s *Service, p string, in volume.Input) volume.Volume {
	t.Helper()
	for range 2 {
		v, err := s.CreateVolume(context.Background(), party.Principal{Party: p}, in)
		var mk *volume.MissingKeyError
		if errors.As(err, &mk) {
			for _, m := range mk.Missing {
				in.Key = append(in.Key, volume.KeyEntry{ID: m.ID, Version: m.Version})
			}
			continue
		}
		if err != nil {
			t.Fatalf("declaring %s's volume: %v", p, err)
		}
		return v
	}
	t.Fatalf("declaring %s's volume: still missing keys", p)
	return volume.Volume{}
}

// storedLive is every live volume in the store, sorted by id.
func storedLive(t *testing.T, st store.Store) []volume.Volume {
	t.Helper()
	latest := map[string]*volume.Volume{}
	err := st.View(context.Background(), func(tx store.Tx) error {
		recs, err := tx.VolumesChangedSince(0, 10000)
		for _, rec := range recs {
			v, err := volume.Decode(rec)
			if err != nil {
				return err
			}
			latest[v.ID] = v
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []volume.Volume
	for _, v := range latest {
		if v.State.Live() {
			out = append(out, *v)
		}
	}
	slices.SortFunc(out, func(a, b volume.Volume) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Bringing rules into force that raise the separation checks the live
// volumes (the pairs that conflict only under them, the volumes that break
// them) without the writers' lock: a write that needs it (an alert commit,
// a volume write) goes through while they are checked. Volumes written
// meanwhile (cancelled, moved, declared) are taken into account by the
// activation: its volume_conflict and volume_flagged events, audit records
// and hotline items are exactly those the plain test of every pair and
// every volume, as they stand when the rules come into force, gives.
func TestActivationChecksVolumesWithoutTheWritersLock(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	activationChecksVolumesWithoutTheWritersLock(t, st)
}

// On PostgreSQL the writes made while the volumes are checked also take
// the writers' row lock of the store, which all replicas share.
func TestActivationChecksVolumesWithoutTheWritersLockOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	activationChecksVolumesWithoutTheWritersLock(t, st)
}

func activationChecksVolumesWithoutTheWritersLock(t *testing.T, st store.Store) {
	ctx := context.Background()
	s, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	start := s.now().UTC().Truncate(time.Second).Add(time.Hour)
	// at is a circle of 2 km, eastM east of (35, 36), for hours.
	at := func(eastM float64, hours int) volume.Input {
		lat, lon := synth.Destination(35, 36, 90, eastM)
		return volume.Input{Footprint: synth.Circle(lat, lon, 2000), AltLowerM: 1000, AltUpperM: 2000,
			Start: start, End: start.Add(time.Duration(hours) * time.Hour), State: volume.Accepted}
	}
	// Alternating parties 20 km apart (16 km between the circles): apart
	// under the 9,260 m in force, each in conflict with its neighbours
	// under 30 km. Two windows of 3 hours break a 2-hour maximum.
	declare(t, s, "coalition", at(0, 1))
	b0 := declare(t, s, "russia", at(20_000, 3))
	a1 := declare(t, s, "coalition", at(40_000, 1))
	b1 := declare(t, s, "russia", at(60_000, 3))
	_ = declare(t, s, "coalition", at(80_000, 1))
	old := s.Rules()
	raised := old
	raised.HorizontalSepM = 30_000
	raised.MaxWindowS = 2 * 3600

	var scans, held int
	var raced bool
	s.volumes().ObserveScans(func() {
		scans++
		if !s.wmu.TryLock() {
			// Writing now would wait for the end of the activation.
			held++
			return
		}
		s.wmu.Unlock()
		if raced {
			return
		}
		raced = true
		// Written while the volumes are checked: b0 cancelled (its
		// pairs with a0 and a1 go), a1 moved far east, next to a new
		// volume of russia there (a pair of two volumes written
		// meanwhile), a new volume of russia west of a0, and b1's
		// window cut to an hour (no longer breaking the rules).
		russia, coalition := party.Principal{Party: "russia"}, party.Principal{Party: "coalition"}
		if _, err := s.SetVolumeState(ctx, russia, b0.ID, b0.Version, volume.Cancelled, nil); err != nil {
			t.Errorf("cancelling b0 during the check: %v", err)
		}
		moved := at(500_000, 1)
		moved.Version = a1.Version
		if _, err := s.UpdateVolume(ctx, coalition, a1.ID, moved); err != nil {
			t.Errorf("moving a1 during the check: %v", err)
		}
		declare(t, s, "russia", at(520_000, 3))
		declare(t, s, "russia", at(-20_000, 1))
		shorter := at(60_000, 1)
		shorter.Version = b1.Version
		if _, err := s.UpdateVolume(ctx, russia, b1.ID, shorter); err != nil {
			t.Errorf("shortening b1 during the check: %v", err)
		}
	})

	op := party.Principal{Party: party.OperatorName, Operator: true}
	prop, err := s.ProposeRules(ctx, op, raised)
	if err != nil {
		t.Fatal(err)
	}
	var before int64
	if err := st.View(ctx, func(tx store.Tx) error { before, err = tx.LastEventID(); return err }); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.AnswerRules(ctx, party.Principal{Party: p}, prop.Version, true, "", prop.RulesSHA256); err != nil {
			t.Fatal(err)
		}
	}
	now := s.Rules()
	if now.Version != prop.Version {
		t.Fatalf("rules version %d in force, want %d", now.Version, prop.Version)
	}
	if scans == 0 || held > 0 {
		t.Fatalf("the volumes were checked %d times, %d of them holding the writers' lock", scans, held)
	}
	if !raced {
		t.Fatal("nothing was written while the volumes were checked")
	}

	// What the plain test of every pair and every volume gives now.
	live := storedLive(t, st)
	var wantPairs, wantFlags []string
	for i := range live {
		if live[i].Breaks(now) != nil {
			wantFlags = append(wantFlags, live[i].ID+"@"+live[i].Version)
		}
		for j := i + 1; j < len(live); j++ {
			if volume.Conflict(live[i], live[j], now) && !volume.Conflict(live[i], live[j], old) {
				wantPairs = append(wantPairs, live[i].ID+"@"+live[i].Version+"+"+live[j].ID+"@"+live[j].Version)
			}
		}
	}
	if len(wantPairs) < 3 || len(wantFlags) < 1 {
		t.Fatalf("the volumes make %d new conflicts and %d flags: the test tests little", len(wantPairs), len(wantFlags))
	}

	var evs []store.Event
	var recs []store.AuditRecord
	err = st.View(ctx, func(tx store.Tx) error {
		if evs, err = tx.EventsAfter(before, 10000); err != nil {
			return err
		}
		recs, err = tx.AuditFrom(0, 10000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var gotPairs, gotFlags []string
	for _, ev := range evs {
		switch ev.Kind {
		case "volume_conflict":
			var c RulesConflict
			if err := json.Unmarshal(ev.Body, &c); err != nil {
				t.Fatal(err)
			}
			if c.RulesVersion != now.Version {
				continue
			}
			gotPairs = append(gotPairs, c.Volumes[0].ID+"@"+c.Volumes[0].Version+"+"+c.Volumes[1].ID+"@"+c.Volumes[1].Version)
		case "volume_flagged":
			var f VolumeFlag
			if err := json.Unmarshal(ev.Body, &f); err != nil {
				t.Fatal(err)
			}
			gotFlags = append(gotFlags, f.Volume.ID+"@"+f.Volume.Version)
		}
	}
	if !slices.Equal(gotPairs, wantPairs) {
		t.Errorf("volume_conflict events %v, want %v", gotPairs, wantPairs)
	}
	if !slices.Equal(gotFlags, wantFlags) {
		t.Errorf("volume_flagged events %v, want %v", gotFlags, wantFlags)
	}
	// The audit records name the same volumes, in the same order.
	var auditPairs, auditFlags []string
	for _, rec := range recs {
		switch {
		case rec.Kind == "volume_conflict" && bytes.Contains(rec.Content, fmt.Appendf(nil, `"rules_version":%d`, now.Version)):
			auditPairs = append(auditPairs, string(rec.Content))
		case rec.Kind == "volume_flagged":
			auditFlags = append(auditFlags, string(rec.Content))
		}
	}
	if len(auditPairs) != len(wantPairs) || len(auditFlags) != len(wantFlags) {
		t.Fatalf("%d volume_conflict and %d volume_flagged audit records, want %d and %d", len(auditPairs), len(auditFlags), len(wantPairs), len(wantFlags))
	}
	for i, p := range wantPairs {
		ids := strings.FieldsFunc(p, func(r rune) bool { return r == '+' || r == '@' })
		if !strings.Contains(auditPairs[i], ids[0]) || !strings.Contains(auditPairs[i], ids[2]) {
			t.Errorf("audit record %d of the new conflicts %s, want %s", i, auditPairs[i], p)
		}
	}
	for i, f := range wantFlags {
		if !strings.Contains(auditFlags[i], strings.Split(f, "@")[0]) {
			t.Errorf("audit record %d of the flags %s, want %s", i, auditFlags[i], f)
		}
	}
	// Each new conflict told to each owner in exactly one hotline item
	// (grouped per volume and other party).
	var told []string
	for _, p := range wantPairs {
		told = append(told, "pair "+p)
	}
	wantEachPairToldOnce(t, st, told, now.Version, "coalition", "russia")
}

// Rules that change the separation rebuild the volume index (seconds with
// 100,000 volumes) without the writers' lock: other writes, alert commits
// above all, go on meanwhile; only volume writes wait for the new index.
func TestVolumeIndexRebuiltWithoutTheWritersLock(t *testing.T) {
	ctx := context.Background()
	s, _ := newEmbedded(t)
	if _, err := s.CreateParty(ctx, "coalition"); err != nil {
		t.Fatal(err)
	}
	var loads, held int
	s.onLoadVolumes = func() {
		loads++
		if !s.wmu.TryLock() {
			held++
			return
		}
		s.wmu.Unlock()
		// A write that needs the writers' lock, as an alert commit does.
		if err := s.write(ctx, func(tx store.Tx) error { return tx.PutMeta("test/during-reload", []byte("1")) }); err != nil {
			t.Errorf("writing while the index is rebuilt: %v", err)
		}
	}
	r := s.Rules()
	r.HorizontalSepM *= 2
	op := party.Principal{Party: party.OperatorName, Operator: true}
	prop, err := s.ProposeRules(ctx, op, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AnswerRules(ctx, party.Principal{Party: "coalition"}, prop.Version, true, "", prop.RulesSHA256); err != nil {
		t.Fatal(err)
	}
	if got := s.Rules(); got.Version != prop.Version {
		t.Fatalf("rules version %d in force, want %d", got.Version, prop.Version)
	}
	if loads != 1 || held != 0 {
		t.Fatalf("the index was rebuilt %d times (want 1), %d of them holding the writers' lock", loads, held)
	}
}
