// Package storetest owns the conformance suite of store.Store: every backend
// runs Run from its own tests, so that all implementations behave the same
// behind the interface.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// Run runs the whole suite, its cases in parallel. open must return a store
// for t that no other test uses, and register its Close with t.Cleanup
// (Close must tolerate being called twice); it is called from several
// goroutines at once. Calling open again with the same t must reopen the
// same data: that is how durability across Close is checked.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"Parties", testParties},
		{"Credentials", testCredentials},
		{"Rules", testRules},
		{"Volumes", testVolumes},
		{"VolumesChangedSince", testVolumesChangedSince},
		{"VolumesModel", testVolumesModel},
		{"Events", testEvents},
		{"EventsAfterFor", testEventsAfterFor},
		{"PartySeqs", testPartySeqs},
		{"Alerts", testAlerts},
		{"RollbackLeavesNothing", testRollback},
		{"PanicRollsBack", testPanic},
		{"ConcurrentEventsGapFree", testConcurrentEvents},
		{"ConcurrentMixedOutcomes", testConcurrentMixed},
		{"Audit", testAudit},
		{"Checkpoints", testCheckpoints},
		{"Messages", testMessages},
		{"OpenMessagesDue", testOpenMessagesDue},
		{"OpenMessagesAfter", testOpenMessagesAfter},
		{"OpenMessagesFor", testOpenMessagesFor},
		{"OpenMessagesInThreadFor", testOpenMessagesInThreadFor},
		{"OpenMessagesFromTo", testOpenMessagesFromTo},
		{"Acks", testAcks},
		{"Meta", testMeta},
		{"Nonces", testNonces},
		{"Idempotency", testIdempotency},
		{"ViewRefusesWrites", testViewRefusesWrites},
		{"CanceledContext", testCanceled},
		{"InvalidValues", testInvalid},
		{"DurableAcrossReopen", testReopen},
	}
	// The cases share nothing (each opens its own store) and run several
	// at a time: on PostgreSQL most of their time is waiting for round
	// trips and for CREATE DATABASE, so more of them than -parallel's
	// default (GOMAXPROCS) overlap usefully.
	sem := make(chan struct{}, 6)
	var wg sync.WaitGroup
	for _, tc := range tests {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
		}()
	}
	wg.Wait()
}

var ctx = context.Background()

// base is an arbitrary instant with nanoseconds, to check that times keep
// their precision.
var base = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

func update(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.View(ctx, fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func appendEvents(t *testing.T, s store.Store, events ...store.Event) []int64 {
	t.Helper()
	var ids []int64
	update(t, s, func(tx store.Tx) error {
		ids = ids[:0]
		for _, e := range events {
			id, err := tx.AppendEvent(e)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids
}

func allEvents(t *testing.T, s store.Store) []store.Event {
	t.Helper()
	var out []store.Event
	view(t, s, func(tx store.Tx) error {
		var err error
		out, err = tx.EventsAfter(0, 1<<30)
		return err
	})
	return out
}

// checkGapFree fails unless events have ids 1..len(events) in order.
func checkGapFree(t *testing.T, events []store.Event) {
	t.Helper()
	for i, e := range events {
		if e.ID != int64(i+1) {
			t.Fatalf("event %d of %d has id %d: ids are not 1..n without gaps", i, len(events), e.ID)
		}
	}
}

func testParties(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	a := store.Party{Name: "blue", Created: base}
	op := store.Party{Name: "ops", Operator: true, Created: base.Add(time.Second)}
	update(t, s, func(tx store.Tx) error {
		if err := tx.CreateParty(a); err != nil {
			return err
		}
		return tx.CreateParty(op)
	})
	var err error
	_ = s.Update(ctx, func(tx store.Tx) error {
		err = tx.CreateParty(store.Party{Name: "blue", Operator: true})
		return nil
	})
	wantErr(t, "CreateParty of an existing name", err, store.ErrConflict)
	err = s.Update(ctx, func(tx store.Tx) error { return tx.UpdateParty(store.Party{Name: "nobody"}) })
	wantErr(t, "UpdateParty of a missing party", err, store.ErrNotFound)

	a.Disabled = true
	update(t, s, func(tx store.Tx) error { return tx.UpdateParty(a) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.PartyByName("blue")
		if err != nil {
			return err
		}
		if got.Name != a.Name || got.Operator != a.Operator || !got.Created.Equal(a.Created) || got.Disabled != a.Disabled {
			t.Errorf("PartyByName = %+v, want %+v", got, a)
		}
		_, err = tx.PartyByName("nobody")
		wantErr(t, "PartyByName of a missing party", err, store.ErrNotFound)
		list, err := tx.ListParties()
		if err != nil {
			return err
		}
		if len(list) != 2 || list[0].Name != "blue" || list[1].Name != "ops" || !list[1].Operator {
			t.Errorf("ListParties = %+v, want blue then ops (operator)", list)
		}
		return nil
	})
}

func testCredentials(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	c1 := store.Credential{TokenHash: []byte{1, 2, 3}, Party: "blue", Created: base}
	c2 := store.Credential{TokenHash: []byte{4, 5, 6}, Party: "blue", Created: base.Add(time.Minute)}
	c3 := store.Credential{TokenHash: []byte{7}, Party: "red", Created: base}
	update(t, s, func(tx store.Tx) error {
		for _, c := range []store.Credential{c1, c2, c3} {
			if err := tx.PutCredential(c); err != nil {
				return err
			}
		}
		return nil
	})
	c1.Revoked, c1.RevokedAt = true, base.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.PutCredential(c1) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.CredentialByHash([]byte{1, 2, 3})
		if err != nil {
			return err
		}
		if !bytes.Equal(got.TokenHash, c1.TokenHash) || got.Party != "blue" || !got.Revoked || !got.RevokedAt.Equal(c1.RevokedAt) || !got.Created.Equal(base) {
			t.Errorf("CredentialByHash = %+v, want %+v", got, c1)
		}
		got, err = tx.CredentialByHash([]byte{4, 5, 6})
		if err != nil {
			return err
		}
		if got.Revoked || !got.RevokedAt.IsZero() {
			t.Errorf("unrevoked credential reads back as %+v", got)
		}
		_, err = tx.CredentialByHash([]byte{9, 9})
		wantErr(t, "CredentialByHash of an unknown hash", err, store.ErrNotFound)
		list, err := tx.ListCredentials("blue")
		if err != nil {
			return err
		}
		if len(list) != 2 || !bytes.Equal(list[0].TokenHash, c1.TokenHash) || !bytes.Equal(list[1].TokenHash, c2.TokenHash) {
			t.Errorf("ListCredentials(blue) = %+v, want c1, c2", list)
		}
		list, err = tx.ListCredentials("nobody")
		if err != nil {
			return err
		}
		if len(list) != 0 {
			t.Errorf("ListCredentials(nobody) = %+v, want none", list)
		}
		return nil
	})
}

func testRules(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	view(t, s, func(tx store.Tx) error {
		_, err := tx.LatestRules()
		wantErr(t, "LatestRules before any", err, store.ErrNotFound)
		if history, err := tx.RulesHistory(); err != nil || len(history) != 0 {
			t.Errorf("RulesHistory before any = %+v, %v, want none", history, err)
		}
		return nil
	})
	// Versions in force rise, with gaps where proposals were rejected.
	for _, v := range []int64{1, 2, 4} {
		update(t, s, func(tx store.Tx) error {
			return tx.PutRules(store.RulesRecord{Version: v, Created: base.Add(time.Duration(v) * time.Hour), Actor: "ops", Body: fmt.Appendf(nil, `{"v":%d}`, v)})
		})
	}
	for _, v := range []int64{1, 3, 4, 0} {
		err := s.Update(ctx, func(tx store.Tx) error { return tx.PutRules(store.RulesRecord{Version: v, Body: []byte("{}")}) })
		wantErr(t, fmt.Sprintf("PutRules version %d after 4", v), err, store.ErrConflict)
	}
	view(t, s, func(tx store.Tx) error {
		r, err := tx.LatestRules()
		if err != nil {
			return err
		}
		if r.Version != 4 || r.Actor != "ops" || string(r.Body) != `{"v":4}` || !r.Created.Equal(base.Add(4*time.Hour)) {
			t.Errorf("LatestRules = %+v, want version 4", r)
		}
		history, err := tx.RulesHistory()
		if err != nil {
			return err
		}
		var versions []int64
		for _, h := range history {
			versions = append(versions, h.Version)
			if h.Actor != "ops" || string(h.Body) != fmt.Sprintf(`{"v":%d}`, h.Version) || !h.Created.Equal(base.Add(time.Duration(h.Version)*time.Hour)) {
				t.Errorf("RulesHistory has %+v, want version %d as put", h, h.Version)
			}
		}
		if !slices.Equal(versions, []int64{1, 2, 4}) {
			t.Errorf("RulesHistory has versions %v, want 1, 2, 4 in order", versions)
		}
		return nil
	})

	// Proposals: inserted, replaced by version, listed by state in
	// version order.
	view(t, s, func(tx store.Tx) error {
		_, err := tx.GetRulesProposal(5)
		wantErr(t, "GetRulesProposal before any", err, store.ErrNotFound)
		ps, err := tx.RulesProposals("")
		if err != nil || len(ps) != 0 {
			t.Errorf("RulesProposals before any = %+v, %v", ps, err)
		}
		return nil
	})
	for _, p := range []store.RulesProposal{
		{Version: 7, Created: base, Actor: "ops", State: "proposed", Body: []byte(`{"n":7}`)},
		{Version: 5, Created: base, Actor: "ops", State: "rejected", Body: []byte(`{"n":5}`)},
		{Version: 6, Created: base, Actor: "ops", State: "proposed", Body: []byte(`{"n":6}`)},
	} {
		update(t, s, func(tx store.Tx) error { return tx.PutRulesProposal(p) })
	}
	update(t, s, func(tx store.Tx) error {
		return tx.PutRulesProposal(store.RulesProposal{Version: 6, Created: base.Add(time.Minute), Actor: "ops", State: "active", Body: []byte(`{"n":6,"done":true}`)})
	})
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.PutRulesProposal(store.RulesProposal{Version: 8, Actor: "ops", State: "bad\x00state"})
	})
	wantErr(t, "PutRulesProposal with a NUL", err, store.ErrInvalid)
	view(t, s, func(tx store.Tx) error {
		p, err := tx.GetRulesProposal(6)
		if err != nil || p.State != "active" || string(p.Body) != `{"n":6,"done":true}` || !p.Created.Equal(base.Add(time.Minute)) || p.Actor != "ops" {
			t.Errorf("GetRulesProposal(6) = %+v, %v", p, err)
		}
		for state, want := range map[string][]int64{"": {5, 6, 7}, "proposed": {7}, "active": {6}, "superseded": nil} {
			ps, err := tx.RulesProposals(state)
			if err != nil {
				return err
			}
			var got []int64
			for _, p := range ps {
				got = append(got, p.Version)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("RulesProposals(%q) = %v, want %v", state, got, want)
			}
		}
		return nil
	})
}

func sampleVolume(id, version string, i int) store.Volume {
	return store.Volume{
		ID: id, Party: "blue", Version: version, State: "accepted", Priority: i % 5,
		MinLatDeg: 35 + float64(i)/1000, MinLonDeg: 36.125, MaxLatDeg: 35.5 + float64(i)/1000, MaxLonDeg: 36.75,
		AltLowerM: 1000.5, AltUpperM: 6000.25,
		Start: base.Add(time.Duration(i) * time.Minute), End: base.Add(time.Duration(i)*time.Minute + time.Hour),
		Body: fmt.Appendf(nil, `{"id":%q,"version":%q}`, id, version),
	}
}

func sameVolume(a, b store.Volume) bool {
	return a.ID == b.ID && a.Party == b.Party && a.Version == b.Version && a.State == b.State && a.Priority == b.Priority &&
		a.MinLatDeg == b.MinLatDeg && a.MinLonDeg == b.MinLonDeg && a.MaxLatDeg == b.MaxLatDeg && a.MaxLonDeg == b.MaxLonDeg &&
		a.AltLowerM == b.AltLowerM && a.AltUpperM == b.AltUpperM && a.Start.Equal(b.Start) && a.End.Equal(b.End) &&
		a.ChangeSeq == b.ChangeSeq && bytes.Equal(a.Body, b.Body)
}

func putVolume(t *testing.T, s store.Store, v store.Volume, prev string) int64 {
	t.Helper()
	var seq int64
	update(t, s, func(tx store.Tx) error {
		if err := tx.LockVolumes(); err != nil {
			return err
		}
		var err error
		seq, err = tx.PutVolume(v, prev)
		return err
	})
	return seq
}

func testVolumes(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	v1 := sampleVolume("v1", "a", 1)
	seq1 := putVolume(t, s, v1, "")
	v1.ChangeSeq = seq1

	refused := []struct {
		what string
		v    store.Volume
		prev string
	}{
		{"insert of an existing id", sampleVolume("v1", "b", 2), ""},
		{"replace with a stale version", sampleVolume("v1", "c", 3), "zzz"},
		{"replace of a missing volume", sampleVolume("v9", "b", 3), "a"},
	}
	for _, r := range refused {
		err := s.Update(ctx, func(tx store.Tx) error {
			_, err := tx.PutVolume(r.v, r.prev)
			return err
		})
		wantErr(t, "PutVolume "+r.what, err, store.ErrConflict)
	}

	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetVolume("v1")
		if err != nil {
			return err
		}
		if !sameVolume(got, v1) {
			t.Errorf("GetVolume after refused writes = %+v, want %+v", got, v1)
		}
		_, err = tx.GetVolume("v9")
		wantErr(t, "GetVolume of a missing id", err, store.ErrNotFound)
		return nil
	})

	v1b := sampleVolume("v1", "b", 7)
	seq2 := putVolume(t, s, v1b, "a")
	if seq2 <= seq1 {
		t.Fatalf("ChangeSeq went from %d to %d: not increasing", seq1, seq2)
	}
	v1b.ChangeSeq = seq2
	seq3 := putVolume(t, s, sampleVolume("v2", "a", 8), "")
	if seq3 <= seq2 {
		t.Fatalf("ChangeSeq went from %d to %d: not increasing", seq2, seq3)
	}
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetVolume("v1")
		if err != nil {
			return err
		}
		if !sameVolume(got, v1b) {
			t.Errorf("GetVolume after replace = %+v, want %+v", got, v1b)
		}
		return nil
	})
}

func testVolumesChangedSince(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	// Write 6 volumes, then rewrite some: each id must appear once, at its
	// latest state, in ChangeSeq order.
	versions := map[string]string{}
	for i := range 6 {
		id := fmt.Sprintf("v%d", i)
		putVolume(t, s, sampleVolume(id, "1", i), "")
		versions[id] = "1"
	}
	for _, i := range []int{3, 0, 3} {
		id := fmt.Sprintf("v%d", i)
		next := versions[id] + "+"
		putVolume(t, s, sampleVolume(id, next, i), versions[id])
		versions[id] = next
	}
	var all []store.Volume
	view(t, s, func(tx store.Tx) error {
		var err error
		all, err = tx.VolumesChangedSince(0, 100)
		return err
	})
	if len(all) != 6 {
		t.Fatalf("VolumesChangedSince(0) returned %d volumes, want 6", len(all))
	}
	seen := map[string]bool{}
	for i, v := range all {
		if i > 0 && v.ChangeSeq <= all[i-1].ChangeSeq {
			t.Fatalf("VolumesChangedSince not in ChangeSeq order: %d after %d", v.ChangeSeq, all[i-1].ChangeSeq)
		}
		if seen[v.ID] {
			t.Fatalf("volume %s returned twice", v.ID)
		}
		seen[v.ID] = true
		if v.Version != versions[v.ID] {
			t.Errorf("volume %s at version %q, want latest %q", v.ID, v.Version, versions[v.ID])
		}
	}
	if got := []string{all[4].ID, all[5].ID}; !slices.Equal(got, []string{"v0", "v3"}) {
		t.Errorf("last two changed volumes are %v, want [v0 v3]", got)
	}
	view(t, s, func(tx store.Tx) error {
		for _, c := range []struct {
			after int64
			limit int
		}{{0, 2}, {all[1].ChangeSeq, 3}, {all[5].ChangeSeq, 10}, {all[2].ChangeSeq, 100}} {
			got, err := tx.VolumesChangedSince(c.after, c.limit)
			if err != nil {
				return err
			}
			var want []store.Volume
			for _, v := range all {
				if v.ChangeSeq > c.after && len(want) < c.limit {
					want = append(want, v)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("VolumesChangedSince(%d, %d) returned %d, want %d", c.after, c.limit, len(got), len(want))
			}
			for i := range got {
				if !sameVolume(got[i], want[i]) {
					t.Errorf("VolumesChangedSince(%d, %d)[%d] = %+v, want %+v", c.after, c.limit, i, got[i], want[i])
				}
			}
		}
		return nil
	})
}

func sameEvent(a, b store.Event) bool {
	return a.ID == b.ID && a.Time.Equal(b.Time) && a.Kind == b.Kind && slices.Equal(a.Audience, b.Audience) && bytes.Equal(a.Body, b.Body)
}

func testEvents(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	view(t, s, func(tx store.Tx) error {
		last, err := tx.LastEventID()
		if err != nil {
			return err
		}
		if last != 0 {
			t.Errorf("LastEventID of an empty store = %d, want 0", last)
		}
		return nil
	})
	var want []store.Event
	for i := range 25 {
		e := store.Event{Time: base.Add(time.Duration(i) * time.Second), Kind: fmt.Sprintf("k%d", i%3),
			Audience: []string{"blue", "red"}[:1+i%2], Body: fmt.Appendf(nil, `{"n":%d}`, i)}
		want = append(want, e)
	}
	ids := appendEvents(t, s, want[:10]...)
	ids = append(ids, appendEvents(t, s, want[10:]...)...)
	for i := range want {
		want[i].ID = ids[i]
	}
	got := allEvents(t, s)
	checkGapFree(t, got)
	if len(got) != len(want) {
		t.Fatalf("EventsAfter(0) returned %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if !sameEvent(got[i], want[i]) {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	view(t, s, func(tx store.Tx) error {
		for _, c := range []struct {
			after int64
			limit int
		}{{0, 1}, {5, 7}, {20, 100}, {25, 10}, {100, 10}} {
			page, err := tx.EventsAfter(c.after, c.limit)
			if err != nil {
				return err
			}
			n := min(c.limit, max(0, 25-int(c.after)))
			if len(page) != n {
				t.Fatalf("EventsAfter(%d, %d) returned %d, want %d", c.after, c.limit, len(page), n)
			}
			for i, e := range page {
				if e.ID != c.after+int64(i)+1 {
					t.Fatalf("EventsAfter(%d, %d)[%d].ID = %d", c.after, c.limit, i, e.ID)
				}
			}
		}
		last, err := tx.LastEventID()
		if err != nil {
			return err
		}
		if last != 25 {
			t.Errorf("LastEventID = %d, want 25", last)
		}
		return nil
	})
}

func testEventsAfterFor(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	audiences := [][]string{{"blue"}, {"red"}, {"*"}, {"blue", "red"}, {"green"}, {"red", "*"}, {}, {"blue", "blue"}}
	var events []store.Event
	for i := range 40 {
		events = append(events, store.Event{Time: base, Kind: "x", Audience: audiences[i%len(audiences)], Body: []byte("{}")})
	}
	appendEvents(t, s, events...)
	all := allEvents(t, s)
	view(t, s, func(tx store.Tx) error {
		for _, party := range []string{"blue", "red", "green", "nobody", "*"} {
			for _, c := range []struct {
				after int64
				limit int
			}{{0, 1000}, {0, 3}, {13, 5}, {39, 5}, {40, 5}, {41, 5}} {
				var want []store.Event
				for _, e := range all {
					if e.ID > c.after && store.Concerns(e, party) && len(want) < c.limit {
						want = append(want, e)
					}
				}
				got, err := store.EventsAfterFor(tx, party, c.after, c.limit)
				if err != nil {
					return err
				}
				var wantLast int64
				for _, e := range all {
					if e.ID <= c.after && store.Concerns(e, party) {
						wantLast = e.ID
					}
				}
				if last, err := store.LastEventIDFor(tx, party, c.after); err != nil || last != wantLast {
					t.Errorf("LastEventIDFor(%s, %d) = %d, %v; want %d", party, c.after, last, err, wantLast)
				}
				// The fallback, on a Tx without the audience index.
				if last, err := store.LastEventIDFor(struct{ store.Events }{tx}, party, c.after); err != nil || last != wantLast {
					t.Errorf("LastEventIDFor(%s, %d) without the index = %d, %v; want %d", party, c.after, last, err, wantLast)
				}
				// The length of the backlog, from the index alone
				// (a stream judging whether to replay it), and
				// by the fallback.
				if _, ok := tx.(store.PartyEventCounter); !ok {
					t.Fatalf("the backend's Tx does not count a party's events from its audience index (store.PartyEventCounter)")
				}
				if n, err := store.CountEventsAfterFor(tx, party, c.after, c.limit); err != nil || n != len(want) {
					t.Errorf("CountEventsAfterFor(%s, %d, %d) = %d, %v; want %d", party, c.after, c.limit, n, err, len(want))
				}
				if n, err := store.CountEventsAfterFor(struct{ store.Events }{tx}, party, c.after, c.limit); err != nil || n != len(want) {
					t.Errorf("CountEventsAfterFor(%s, %d, %d) without the index = %d, %v; want %d", party, c.after, c.limit, n, err, len(want))
				}
				if len(got) != len(want) {
					t.Fatalf("EventsAfterFor(%s, %d, %d) returned %d events, want %d", party, c.after, c.limit, len(got), len(want))
				}
				for i := range got {
					if !sameEvent(got[i], want[i]) {
						t.Errorf("EventsAfterFor(%s, %d, %d)[%d] = %+v, want %+v", party, c.after, c.limit, i, got[i], want[i])
					}
				}
			}
		}
		return nil
	})
}

// testPartySeqs checks each party's own numbering of its events: 1, 2,
// 3... in id order without gaps, however many events the other parties
// get (blue gets most of them here), through writes undone and writes
// sharing a commit, and that each number leads to its event and back.
func testPartySeqs(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	view(t, s, func(tx store.Tx) error {
		if _, ok := tx.(store.PartySeqReader); !ok {
			t.Fatalf("the backend's Tx does not number each party's events (store.PartySeqReader)")
		}
		if b, err := store.PartySeqBase(tx); err != nil || b != 0 {
			t.Errorf("PartySeqBase of a new store = %d, %v; want 0", b, err)
		}
		if m, err := store.LegacyCursorMax(tx); err != nil || m != 0 {
			t.Errorf("LegacyCursorMax of a new store = %d, %v; want 0", m, err)
		}
		return nil
	})
	audiences := [][]string{{"blue"}, {"blue"}, {"blue"}, {"red"}, {"*"}, {"blue"}, {"blue", "red"}, {"blue"}, {"green"}, {"red", "*"}, {}, {"blue", "blue"}, {"blue"}}
	for round := range 3 {
		var events []store.Event
		for i := range 20 {
			events = append(events, store.Event{Time: base, Kind: "x", Audience: audiences[(i+round)%len(audiences)]})
		}
		appendEvents(t, s, events...)
		// Undone: numbers nothing.
		err := s.Update(ctx, func(tx store.Tx) error {
			for _, aud := range audiences {
				if _, err := tx.AppendEvent(store.Event{Time: base, Kind: "undone", Audience: aud}); err != nil {
					return err
				}
			}
			return errBoom
		})
		wantErr(t, "a write undone", err, errBoom)
		// Writes at once, which a backend may commit together.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				err := s.Update(ctx, func(tx store.Tx) error {
					for i := range 3 {
						if _, err := tx.AppendEvent(store.Event{Time: base, Kind: "c", Audience: audiences[(w*3+i)%len(audiences)]}); err != nil {
							return err
						}
					}
					if w == 2 {
						return errBoom
					}
					return nil
				})
				if err != nil && !errors.Is(err, errBoom) {
					t.Errorf("Update: %v", err)
				}
			})
		}
		wg.Wait()
	}
	checkGapFree(t, allEvents(t, s))
	CheckPartySeqs(t, s, "blue", "red", "green", "nobody")
}

// CheckPartySeqs checks the numbers of each of parties' events in s (and
// the fallbacks' on a Tx without them) against the events read whole:
// the party's events numbered 1, 2, 3... in id order, each number leading
// to its event, each id to the number of the party's last event at or
// before it.
func CheckPartySeqs(t testing.TB, s store.Store, parties ...string) {
	t.Helper()
	var all []store.Event
	err := s.View(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.EventsAfter(0, 1<<30)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	if len(all) > 0 {
		last = all[len(all)-1].ID
	}
	err = s.View(ctx, func(tx store.Tx) error {
		for _, party := range parties {
			var ids []int64
			for _, e := range all {
				if store.Concerns(e, party) {
					ids = append(ids, e.ID)
				}
			}
			for _, tx := range []store.Events{tx, struct{ store.Events }{tx}} {
				for i, id := range ids {
					if got, err := store.PartyEventAt(tx, party, int64(i+1)); err != nil || got != id {
						t.Errorf("PartyEventAt(%s, %d) = %d, %v; want %d", party, i+1, got, err, id)
					}
				}
				for _, seq := range []int64{0, -1, int64(len(ids) + 1), int64(len(ids) + 7)} {
					if got, err := store.PartyEventAt(tx, party, seq); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("PartyEventAt(%s, %d) = %d, %v; want ErrNotFound (%s has %d events)", party, seq, got, err, party, len(ids))
					}
				}
				var n int64
				for id := int64(0); id <= last+1; id++ {
					if n < int64(len(ids)) && ids[n] == id {
						n++
					}
					if got, err := store.PartySeqAt(tx, party, id); err != nil || got != n {
						t.Fatalf("PartySeqAt(%s, %d) = %d, %v; want %d", party, id, got, err, n)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var errBoom = errors.New("storetest: fn failed on purpose")

func testRollback(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	appendEvents(t, s, store.Event{Time: base, Kind: "before", Audience: []string{"*"}})
	putVolume(t, s, sampleVolume("keep", "1", 1), "")
	var seqBefore int64
	view(t, s, func(tx store.Tx) error {
		v, err := tx.GetVolume("keep")
		seqBefore = v.ChangeSeq
		return err
	})
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateParty(store.Party{Name: "ghost", Created: base}); err != nil {
			return err
		}
		for range 3 {
			if _, err := tx.AppendEvent(store.Event{Time: base, Kind: "ghost", Audience: []string{"*"}}); err != nil {
				return err
			}
		}
		if _, err := tx.PutVolume(sampleVolume("ghost", "1", 2), ""); err != nil {
			return err
		}
		if _, err := tx.PutVolume(sampleVolume("keep", "2", 2), "1"); err != nil {
			return err
		}
		if err := tx.AppendAudit(store.AuditRecord{Seq: 1, Time: base, Kind: "ghost"}); err != nil {
			return err
		}
		if err := tx.PutMessage(store.Message{ID: "ghost", From: "blue", To: []string{"red"}, State: "open", Created: base, Deadline: base}); err != nil {
			return err
		}
		if _, err := tx.PutAck(store.Ack{MessageID: "ghost", Party: "red", Time: base}); err != nil {
			return err
		}
		if err := tx.PutMeta("ghost", []byte("x")); err != nil {
			return err
		}
		// Reads inside the transaction see its own writes.
		if last, err := tx.LastEventID(); err != nil || last != 4 {
			t.Errorf("LastEventID inside the transaction = %d, %v; want 4", last, err)
		}
		return errBoom
	})
	wantErr(t, "Update whose fn fails", err, errBoom)
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.PartyByName("ghost"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("party of a rolled-back transaction: %v", err)
		}
		if _, err := tx.GetVolume("ghost"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("volume of a rolled-back transaction: %v", err)
		}
		if v, err := tx.GetVolume("keep"); err != nil || v.Version != "1" || v.ChangeSeq != seqBefore {
			t.Errorf("replaced volume of a rolled-back transaction: %+v, %v", v, err)
		}
		if _, err := tx.LastAudit(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("audit of a rolled-back transaction: %v", err)
		}
		if _, err := tx.GetMessage("ghost"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("message of a rolled-back transaction: %v", err)
		}
		if acks, err := tx.AcksFor("ghost"); err != nil || len(acks) != 0 {
			t.Errorf("acks of a rolled-back transaction: %+v, %v", acks, err)
		}
		if _, err := tx.GetMeta("ghost"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("meta of a rolled-back transaction: %v", err)
		}
		if last, err := tx.LastEventID(); err != nil || last != 1 {
			t.Errorf("LastEventID after rollback = %d, %v; want 1", last, err)
		}
		return nil
	})
	// The counter was rolled back too: the next id follows without a gap.
	if ids := appendEvents(t, s, store.Event{Time: base, Kind: "after", Audience: []string{"*"}}); ids[0] != 2 {
		t.Fatalf("first event id after a rolled-back transaction = %d, want 2", ids[0])
	}
	checkGapFree(t, allEvents(t, s))
	if seq := putVolume(t, s, sampleVolume("next", "1", 3), ""); seq <= seqBefore {
		t.Fatalf("ChangeSeq after rollback = %d, not above %d", seq, seqBefore)
	}
}

func testPanic(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	func() {
		defer func() {
			if p := recover(); p != "storetest panic" {
				t.Fatalf("recovered %v, want the fn's panic to reach the caller", p)
			}
		}()
		_ = s.Update(ctx, func(tx store.Tx) error {
			if _, err := tx.AppendEvent(store.Event{Time: base, Kind: "ghost"}); err != nil {
				return err
			}
			panic("storetest panic")
		})
	}()
	if ids := appendEvents(t, s, store.Event{Time: base, Kind: "after"}); ids[0] != 1 {
		t.Fatalf("event id after a panicking Update = %d, want 1", ids[0])
	}
}

func testConcurrentEvents(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	got := make([][]int64, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := s.Update(ctx, func(tx store.Tx) error {
					id, err := tx.AppendEvent(store.Event{Time: base, Kind: "c", Audience: []string{"*"}, Body: fmt.Appendf(nil, `{"w":%d,"i":%d}`, w, i)})
					if err != nil {
						return err
					}
					got[w] = append(got[w][:i], id)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Update: %v", err)
	}
	var ids []int64
	for w := range workers {
		if !slices.IsSorted(got[w]) {
			t.Errorf("worker %d saw ids out of order: %v", w, got[w])
		}
		ids = append(ids, got[w]...)
	}
	slices.Sort(ids)
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("returned ids are not 1..%d: position %d holds %d", workers*each, i, id)
		}
	}
	events := allEvents(t, s)
	checkGapFree(t, events)
	if len(events) != workers*each {
		t.Fatalf("%d events stored, want %d", len(events), workers*each)
	}
}

// testConcurrentMixed runs concurrent Updates of which every third fails
// after writing: only the others' writes remain, still without a gap.
func testConcurrentMixed(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	const workers, each = 6, 30
	var wg sync.WaitGroup
	var mu sync.Mutex
	committed := map[string]bool{}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("%d/%d", w, i)
				fail := (w+i)%3 == 0
				err := s.Update(ctx, func(tx store.Tx) error {
					if _, err := tx.AppendEvent(store.Event{Time: base, Kind: key}); err != nil {
						return err
					}
					if err := tx.PutMeta(key, []byte(key)); err != nil {
						return err
					}
					if fail {
						return errBoom
					}
					return nil
				})
				switch {
				case fail && !errors.Is(err, errBoom):
					t.Errorf("failing Update %s returned %v", key, err)
				case !fail && err != nil:
					t.Errorf("Update %s: %v", key, err)
				case !fail:
					mu.Lock()
					committed[key] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	events := allEvents(t, s)
	checkGapFree(t, events)
	if len(events) != len(committed) {
		t.Fatalf("%d events stored, want %d (one per successful Update)", len(events), len(committed))
	}
	view(t, s, func(tx store.Tx) error {
		for _, e := range events {
			if !committed[e.Kind] {
				t.Errorf("event of failed Update %s was stored", e.Kind)
			}
		}
		for w := range workers {
			for i := range each {
				key := fmt.Sprintf("%d/%d", w, i)
				_, err := tx.GetMeta(key)
				if committed[key] && err != nil {
					t.Errorf("meta of committed Update %s: %v", key, err)
				}
				if !committed[key] && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("meta of failed Update %s: %v, want not found", key, err)
				}
			}
		}
		return nil
	})
}

func auditRecord(seq int64) store.AuditRecord {
	return store.AuditRecord{Seq: seq, Time: base.Add(time.Duration(seq) * time.Millisecond), Actor: "blue", Kind: "volume",
		Content: fmt.Appendf(nil, `{"seq":%d}`, seq), PrevHash: []byte{byte(seq - 1), 1}, Hash: []byte{byte(seq), 2}}
}

func sameAudit(a, b store.AuditRecord) bool {
	return a.Seq == b.Seq && a.Time.Equal(b.Time) && a.Actor == b.Actor && a.Kind == b.Kind &&
		bytes.Equal(a.Content, b.Content) && bytes.Equal(a.PrevHash, b.PrevHash) && bytes.Equal(a.Hash, b.Hash)
}

func testAudit(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	view(t, s, func(tx store.Tx) error {
		_, err := tx.LastAudit()
		wantErr(t, "LastAudit of an empty log", err, store.ErrNotFound)
		return nil
	})
	err := s.Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(auditRecord(2)) })
	wantErr(t, "AppendAudit seq 2 first", err, store.ErrConflict)
	for seq := int64(1); seq <= 10; seq++ {
		update(t, s, func(tx store.Tx) error { return tx.AppendAudit(auditRecord(seq)) })
	}
	for _, seq := range []int64{10, 12, 1, 0} {
		err := s.Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(auditRecord(seq)) })
		wantErr(t, fmt.Sprintf("AppendAudit seq %d after 10", seq), err, store.ErrConflict)
	}
	view(t, s, func(tx store.Tx) error {
		last, err := tx.LastAudit()
		if err != nil {
			return err
		}
		if !sameAudit(last, auditRecord(10)) {
			t.Errorf("LastAudit = %+v, want record 10", last)
		}
		for _, c := range []struct {
			from  int64
			limit int
		}{{1, 100}, {0, 3}, {4, 4}, {10, 5}, {11, 5}} {
			got, err := tx.AuditFrom(c.from, c.limit)
			if err != nil {
				return err
			}
			var want []store.AuditRecord
			for seq := max(c.from, 1); seq <= 10 && len(want) < c.limit; seq++ {
				want = append(want, auditRecord(seq))
			}
			if len(got) != len(want) {
				t.Fatalf("AuditFrom(%d, %d) returned %d records, want %d", c.from, c.limit, len(got), len(want))
			}
			for i := range got {
				if !sameAudit(got[i], want[i]) {
					t.Errorf("AuditFrom(%d, %d)[%d] = %+v, want %+v", c.from, c.limit, i, got[i], want[i])
				}
			}
		}
		return nil
	})
}

func testCheckpoints(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	cp := func(seq int64, sig string) store.Checkpoint {
		return store.Checkpoint{Seq: seq, Hash: []byte{byte(seq)}, Signature: []byte(sig), Time: base.Add(time.Duration(seq) * time.Second)}
	}
	update(t, s, func(tx store.Tx) error {
		for _, c := range []store.Checkpoint{cp(20, "a"), cp(5, "b"), cp(10, "c")} {
			if err := tx.PutCheckpoint(c); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		got, err := tx.CheckpointsFrom(6)
		if err != nil {
			return err
		}
		want := []store.Checkpoint{cp(10, "c"), cp(20, "a")}
		if len(got) != len(want) {
			t.Fatalf("CheckpointsFrom(6) returned %d, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Hash, want[i].Hash) || !bytes.Equal(got[i].Signature, want[i].Signature) || !got[i].Time.Equal(want[i].Time) {
				t.Errorf("CheckpointsFrom(6)[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
		got, err = tx.CheckpointsFrom(21)
		if err != nil {
			return err
		}
		if len(got) != 0 {
			t.Errorf("CheckpointsFrom(21) = %+v, want none", got)
		}
		return nil
	})
}

func message(id, from string, to []string, thread string, created time.Time) store.Message {
	return store.Message{ID: id, From: from, To: to, Thread: thread, Kind: "notice", State: "open",
		Created: created, Deadline: created.Add(time.Minute), Body: fmt.Appendf(nil, `{"text":%q}`, id)}
}

func sameMessage(a, b store.Message) bool {
	return a.ID == b.ID && a.From == b.From && slices.Equal(a.To, b.To) && a.Thread == b.Thread && a.Kind == b.Kind &&
		a.State == b.State && a.Created.Equal(b.Created) && a.Deadline.Equal(b.Deadline) && bytes.Equal(a.Body, b.Body)
}

func testMessages(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	msgs := []store.Message{
		message("m1", "blue", []string{"red"}, "t1", base),
		message("m2", "red", []string{"blue"}, "t1", base.Add(time.Second)),
		message("m3", "red", []string{"green"}, "t2", base.Add(2*time.Second)),
		message("m4", "green", []string{"blue", "red"}, "t2", base.Add(3*time.Second)),
		message("m5", "blue", []string{"blue", "green"}, "", base.Add(4*time.Second)),
		// At the same time as m5: after it by id.
		message("m6", "green", []string{"blue"}, "", base.Add(4*time.Second)),
	}
	update(t, s, func(tx store.Tx) error {
		for _, m := range msgs {
			if err := tx.PutMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	// Replace m3 by ID: now addressed to blue, acknowledged.
	msgs[2].To = []string{"blue"}
	msgs[2].State = "acknowledged"
	update(t, s, func(tx store.Tx) error { return tx.PutMessage(msgs[2]) })

	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetMessage("m3")
		if err != nil {
			return err
		}
		if !sameMessage(got, msgs[2]) {
			t.Errorf("GetMessage after replace = %+v, want %+v", got, msgs[2])
		}
		_, err = tx.GetMessage("m9")
		wantErr(t, "GetMessage of a missing id", err, store.ErrNotFound)
		for _, c := range []struct {
			party, thread string
			since         time.Time
			limit         int
		}{
			{"blue", "", time.Time{}, 100},
			{"blue", "t2", time.Time{}, 100},
			{"red", "", time.Time{}, 100},
			{"green", "", time.Time{}, 100},
			{"blue", "", base.Add(time.Second), 100},
			{"blue", "", base.Add(time.Second), 2},
			{"red", "t1", base.Add(time.Second), 100},
			{"nobody", "", time.Time{}, 100},
			{"blue", "", base.Add(time.Hour), 100},
		} {
			var want []store.Message
			for _, m := range msgs {
				if (m.From == c.party || slices.Contains(m.To, c.party)) && (c.thread == "" || m.Thread == c.thread) &&
					!m.Created.Before(c.since) && len(want) < c.limit {
					want = append(want, m)
				}
			}
			got, err := tx.MessagesFor(c.party, c.thread, c.since, c.limit)
			if err != nil {
				return err
			}
			if len(got) != len(want) {
				t.Fatalf("MessagesFor(%s, %q, %v, %d) returned %d, want %d", c.party, c.thread, c.since, c.limit, len(got), len(want))
			}
			for i := range got {
				if !sameMessage(got[i], want[i]) {
					t.Errorf("MessagesFor(%s, %q, %v, %d)[%d] = %s, want %s", c.party, c.thread, c.since, c.limit, i, got[i].ID, want[i].ID)
				}
			}
			if c.thread != "" {
				continue
			}
			// The newest of the same, newest first.
			var wantNewest []store.Message
			for _, m := range slices.Backward(msgs) {
				if (m.From == c.party || slices.Contains(m.To, c.party)) && !m.Created.Before(c.since) && len(wantNewest) < c.limit {
					wantNewest = append(wantNewest, m)
				}
			}
			newest, err := tx.NewestMessagesFor(c.party, c.since, c.limit)
			if err != nil {
				return err
			}
			if len(newest) != len(wantNewest) {
				t.Fatalf("NewestMessagesFor(%s, %v, %d) returned %d, want %d", c.party, c.since, c.limit, len(newest), len(wantNewest))
			}
			for i := range newest {
				if !sameMessage(newest[i], wantNewest[i]) {
					t.Errorf("NewestMessagesFor(%s, %v, %d)[%d] = %s, want %s", c.party, c.since, c.limit, i, newest[i].ID, wantNewest[i].ID)
				}
			}
		}
		for thread, want := range map[string]bool{"t1": true, "t2": true, "t3": false, "T1": false, "t1\x00": false} {
			got, err := tx.ThreadExists(thread)
			if err != nil {
				return err
			}
			if got != want {
				t.Errorf("ThreadExists(%q) = %v, want %v", thread, got, want)
			}
		}
		return nil
	})
}

// OpenMessagesFromTo counts the open and escalated messages of a sender
// that name the recipient, whoever else they name, and that the recipient
// has not acknowledged: a message stays open until its last recipient
// acknowledges, and one that green acknowledged long ago is not green's
// to acknowledge because red has not.
func testOpenMessagesFromTo(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	mk := func(id, from string, to []string, state string) store.Message {
		m := message(id, from, to, "", base)
		m.State = state
		return m
	}
	update(t, s, func(tx store.Tx) error {
		for _, m := range []store.Message{
			mk("a", "blue", []string{"red"}, "open"),
			mk("b", "blue", []string{"green", "red"}, "escalated"),
			mk("c", "blue", []string{"red"}, "acknowledged"),
			mk("d", "blue", []string{"green"}, "open"),
			mk("e", "red", []string{"blue"}, "open"),
			mk("f", "blue", []string{"green", "red"}, "open"),
		} {
			if err := tx.PutMessage(m); err != nil {
				return err
			}
		}
		_, err := tx.PutAck(store.Ack{MessageID: "f", Party: "green", Time: base, Body: []byte(`{}`)})
		return err
	})
	view(t, s, func(tx store.Tx) error {
		for _, c := range []struct {
			from, to string
			want     int
		}{{"blue", "red", 3}, {"blue", "green", 2}, {"red", "blue", 1}, {"red", "green", 0}, {"green", "blue", 0}} {
			n, err := tx.OpenMessagesFromTo(c.from, c.to)
			if err != nil {
				return err
			}
			if n != c.want {
				t.Errorf("OpenMessagesFromTo(%s, %s) = %d, want %d", c.from, c.to, n, c.want)
			}
		}
		return nil
	})
}

func testOpenMessagesAfter(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	mk := func(id, state string, deadline time.Duration) store.Message {
		m := message(id, "blue", []string{"red"}, "", base)
		m.State, m.Deadline = state, base.Add(deadline)
		return m
	}
	update(t, s, func(tx store.Tx) error {
		for _, m := range []store.Message{
			mk("a", "open", 30*time.Second),
			mk("b", "escalated", 10*time.Second),
			mk("c", "acknowledged", time.Hour),
			mk("d", "open", time.Minute),
			mk("e", "escalated", time.Hour),
		} {
			if err := tx.PutMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		for _, c := range []struct {
			at    time.Duration
			limit int
			want  []string
		}{
			{10 * time.Second, 100, []string{"e", "d", "a"}},
			{30 * time.Second, 100, []string{"e", "d"}},
			{30 * time.Second, 1, []string{"e"}},
			{time.Hour, 100, nil},
		} {
			got, err := tx.OpenMessagesAfter(base.Add(c.at), c.limit)
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			if !slices.Equal(ids, c.want) {
				t.Errorf("OpenMessagesAfter(+%v, %d) = %v, want %v", c.at, c.limit, ids, c.want)
			}
		}
		return nil
	})
}

// testOpenMessagesInThreadFor: a party's open and escalated messages of a
// kind in one thread, newest first, and no others.
func testOpenMessagesInThreadFor(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	mk := func(id string, to []string, thread, kind, state string, created time.Duration) store.Message {
		m := message(id, "deconflict", to, thread, base.Add(created))
		m.Kind, m.State = kind, state
		return m
	}
	msgs := []store.Message{
		mk("a", []string{"blue", "red"}, "volume:v1", "volume_conflict", "open", 1),
		mk("b", []string{"blue", "red"}, "volume:v1", "volume_conflict", "escalated", 2),
		mk("c", []string{"blue", "red"}, "volume:v1", "volume_conflict", "acknowledged", 3),
		mk("d", []string{"blue", "red"}, "volume:v1", "notice", "open", 4),
		mk("e", []string{"blue", "green"}, "volume:v1", "volume_conflict", "open", 5),
		mk("f", []string{"blue", "red"}, "volume:v2", "volume_conflict", "open", 6),
		mk("g", []string{"blue", "red"}, "volume:v1", "volume_conflict", "open", 7),
	}
	update(t, s, func(tx store.Tx) error {
		for _, m := range msgs {
			if err := tx.PutMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(party, thread string, limit int, want []string) {
		t.Helper()
		view(t, s, func(tx store.Tx) error {
			got, err := tx.OpenMessagesInThreadFor(party, thread, "volume_conflict", limit)
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("OpenMessagesInThreadFor(%s, %s, %d) = %v, want %v", party, thread, limit, ids, want)
			}
			return nil
		})
	}
	check("red", "volume:v1", 100, []string{"g", "b", "a"})
	check("red", "volume:v1", 2, []string{"g", "b"})
	check("green", "volume:v1", 100, []string{"e"})
	check("red", "volume:v3", 100, nil)
	check("red", "volume:v1", 0, nil)
}

// testOpenMessagesFor: a party's open and escalated messages, sent or
// received, earliest deadline first, however many other parties have open;
// one acknowledged (put again with its new state) leaves the list.
func testOpenMessagesFor(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	mk := func(id, from string, to []string, state string, deadline time.Duration) store.Message {
		m := message(id, from, to, "", base)
		m.State, m.Deadline = state, base.Add(deadline)
		return m
	}
	msgs := []store.Message{
		mk("a", "blue", []string{"red"}, "open", 30*time.Second),
		mk("b", "red", []string{"green", "blue"}, "escalated", 10*time.Second),
		mk("c", "blue", []string{"red"}, "acknowledged", 0),
		mk("d", "deconflict", []string{"blue", "red"}, "open", time.Minute),
		mk("e", "deconflict", []string{"blue"}, "open", 20*time.Second),
	}
	// Open messages of other parties, due before all of blue's: a scan
	// of every party's open messages by deadline meets them first.
	for i := range 20 {
		msgs = append(msgs, mk(fmt.Sprintf("x%02d", i), "orange", []string{"green"}, "open", time.Duration(i)*time.Millisecond))
	}
	update(t, s, func(tx store.Tx) error {
		for _, m := range msgs {
			if err := tx.PutMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(party string, limit int, want []string) {
		t.Helper()
		view(t, s, func(tx store.Tx) error {
			got, err := tx.OpenMessagesFor(party, limit)
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
				if i := slices.IndexFunc(msgs, func(w store.Message) bool { return w.ID == m.ID }); i < 0 || !sameMessage(m, msgs[i]) {
					t.Errorf("OpenMessagesFor(%s) returned %+v, not as put", party, m)
				}
			}
			if !slices.Equal(ids, want) {
				t.Errorf("OpenMessagesFor(%s, %d) = %v, want %v", party, limit, ids, want)
			}
			return nil
		})
	}
	check("blue", 100, []string{"b", "e", "a", "d"})
	check("blue", 2, []string{"b", "e"})
	check("blue", 0, nil)
	check("red", 100, []string{"b", "a", "d"})
	check("nobody", 100, nil)
	check("", 100, nil)

	// Acknowledged: put again with its new state, it is no longer open
	// for any of its parties; escalated, it stays.
	msgs[0].State = "acknowledged"
	msgs[3].State = "escalated"
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutMessage(msgs[0]); err != nil {
			return err
		}
		return tx.PutMessage(msgs[3])
	})
	check("blue", 100, []string{"b", "e", "d"})
	check("red", 100, []string{"b", "d"})
}

func testOpenMessagesDue(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	mk := func(id, state string, deadline time.Duration) store.Message {
		m := message(id, "blue", []string{"red"}, "", base)
		m.State, m.Deadline = state, base.Add(deadline)
		return m
	}
	msgs := []store.Message{
		mk("a", "open", 30*time.Second),
		mk("b", "escalated", 10*time.Second),
		mk("c", "acknowledged", 0),
		mk("d", "open", time.Minute),
		mk("e", "open", 20*time.Second),
	}
	update(t, s, func(tx store.Tx) error {
		for _, m := range msgs {
			if err := tx.PutMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		for _, c := range []struct {
			at    time.Duration
			limit int
			want  []string
		}{
			{30 * time.Second, 100, []string{"b", "e", "a"}},
			{30 * time.Second, 2, []string{"b", "e"}},
			{5 * time.Second, 100, nil},
			{time.Hour, 100, []string{"b", "e", "a", "d"}},
		} {
			got, err := tx.OpenMessagesDue(base.Add(c.at), c.limit)
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			// Order among due messages is not part of the contract.
			slices.Sort(ids)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if c.limit >= len(msgs) && !slices.Equal(ids, want) {
				t.Errorf("OpenMessagesDue(+%v) = %v, want %v", c.at, ids, want)
			}
			if len(got) != len(c.want) {
				t.Errorf("OpenMessagesDue(+%v, %d) returned %d, want %d", c.at, c.limit, len(got), len(c.want))
			}
			for _, m := range got {
				if !slices.Contains(c.want, m.ID) && c.limit >= len(msgs) {
					t.Errorf("OpenMessagesDue(+%v) returned %s", c.at, m.ID)
				}
				if m.State == "acknowledged" || m.Deadline.After(base.Add(c.at)) {
					t.Errorf("OpenMessagesDue(+%v) returned %s (state %s, deadline %v)", c.at, m.ID, m.State, m.Deadline)
				}
			}
		}
		return nil
	})
}

func testAcks(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	update(t, s, func(tx store.Tx) error {
		return tx.PutMessage(message("m1", "blue", []string{"red", "green"}, "", base))
	})
	put := func(a store.Ack) bool {
		var inserted bool
		update(t, s, func(tx store.Tx) error {
			var err error
			inserted, err = tx.PutAck(a)
			return err
		})
		return inserted
	}
	first := store.Ack{MessageID: "m1", Party: "red", Time: base.Add(time.Second), Body: []byte(`{"n":1}`)}
	if !put(first) {
		t.Fatal("first PutAck: inserted = false")
	}
	if put(store.Ack{MessageID: "m1", Party: "red", Time: base.Add(time.Hour), Body: []byte(`{"n":2}`)}) {
		t.Fatal("second PutAck by the same party: inserted = true")
	}
	if !put(store.Ack{MessageID: "m1", Party: "green", Time: base.Add(2 * time.Second)}) {
		t.Fatal("PutAck by another party: inserted = false")
	}
	view(t, s, func(tx store.Tx) error {
		acks, err := tx.AcksFor("m1")
		if err != nil {
			return err
		}
		if len(acks) != 2 {
			t.Fatalf("AcksFor = %+v, want 2 acks", acks)
		}
		if acks[0].Party != "red" || !acks[0].Time.Equal(first.Time) || string(acks[0].Body) != `{"n":1}` || acks[0].MessageID != "m1" {
			t.Errorf("first ack = %+v, want %+v unchanged by the second PutAck", acks[0], first)
		}
		if acks[1].Party != "green" {
			t.Errorf("second ack = %+v, want green", acks[1])
		}
		acks, err = tx.AcksFor("m9")
		if err != nil {
			return err
		}
		if len(acks) != 0 {
			t.Errorf("AcksFor(m9) = %+v, want none", acks)
		}
		return nil
	})
}

func testMeta(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	view(t, s, func(tx store.Tx) error {
		_, err := tx.GetMeta("k")
		wantErr(t, "GetMeta of a missing key", err, store.ErrNotFound)
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.PutMeta("k", []byte("v1")) })
	update(t, s, func(tx store.Tx) error { return tx.PutMeta("k", []byte("v2")) })
	update(t, s, func(tx store.Tx) error { return tx.PutMeta("empty", nil) })
	view(t, s, func(tx store.Tx) error {
		v, err := tx.GetMeta("k")
		if err != nil || string(v) != "v2" {
			t.Errorf("GetMeta(k) = %q, %v; want v2", v, err)
		}
		v, err = tx.GetMeta("empty")
		if err != nil || len(v) != 0 {
			t.Errorf("GetMeta(empty) = %q, %v; want empty", v, err)
		}
		return nil
	})

	// Keys by prefix: the prefix is literal (its % and _ match only
	// themselves), counted in characters, not bytes.
	for _, k := range []string{"p%/a", "p%/é", "p%", "pX/b", "p_/c", "q"} {
		update(t, s, func(tx store.Tx) error { return tx.PutMeta(k, []byte("v "+k)) })
	}
	view(t, s, func(tx store.Tx) error {
		got, err := tx.MetaWithPrefix("p%/")
		want := map[string][]byte{"p%/a": []byte("v p%/a"), "p%/é": []byte("v p%/é")}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("MetaWithPrefix(p%%/) = %q, %v; want %q", got, err, want)
		}
		got, err = tx.MetaWithPrefix("nothing/")
		if err != nil || len(got) != 0 {
			t.Errorf("MetaWithPrefix(nothing/) = %q, %v; want none", got, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error {
		if err := tx.DeleteMeta("p%/a"); err != nil {
			return err
		}
		return tx.DeleteMeta("absent") // no error
	})
	view(t, s, func(tx store.Tx) error {
		_, err := tx.GetMeta("p%/a")
		wantErr(t, "GetMeta of a deleted key", err, store.ErrNotFound)
		if v, err := tx.GetMeta("p%/é"); err != nil || string(v) != "v p%/é" {
			t.Errorf("GetMeta(p%%/é) after deleting another key = %q, %v", v, err)
		}
		return nil
	})
}

// testIdempotency: an answer is kept per party and key until it expires,
// only by a transaction that commits; a live key is not put twice, an
// expired one is taken over; the usage counts a party's answers until
// they are forgotten or taken over; expired answers are forgotten.
func testIdempotency(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	answer := func(party, key, body string, at time.Time) store.IdempotentAnswer {
		return store.IdempotentAnswer{Party: party, Key: key, Fingerprint: []byte("fp-" + body), Status: 201,
			Body: []byte(body), Created: at, Expires: at.Add(24 * time.Hour)}
	}
	put := func(a store.IdempotentAnswer, now time.Time) error {
		return s.Update(ctx, func(tx store.Tx) error { return tx.PutIdempotent(a, now) })
	}
	get := func(party, key string, now time.Time) (store.IdempotentAnswer, error) {
		var a store.IdempotentAnswer
		err := s.View(ctx, func(tx store.Tx) error {
			var err error
			a, err = tx.GetIdempotent(party, key, now)
			return err
		})
		return a, err
	}
	want := answer("coalition", "k1", `{"id":"m1"}`, base)
	if err := put(want, base); err != nil {
		t.Fatalf("PutIdempotent: %v", err)
	}
	got, err := get("coalition", "k1", base.Add(time.Hour))
	if err != nil {
		t.Fatalf("GetIdempotent: %v", err)
	}
	if !bytes.Equal(got.Fingerprint, want.Fingerprint) || got.Status != want.Status || !bytes.Equal(got.Body, want.Body) ||
		!got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) {
		t.Errorf("GetIdempotent = %+v, want %+v", got, want)
	}
	// Another party's key of the same string is another key.
	if _, err := get("russia", "k1", base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another party's GetIdempotent(k1) = %v, want ErrNotFound", err)
	}
	if err := put(answer("russia", "k1", `{"id":"m2"}`, base), base); err != nil {
		t.Errorf("another party's PutIdempotent(k1): %v", err)
	}
	if got, err := get("coalition", "k1", base); err != nil || string(got.Body) != `{"id":"m1"}` {
		t.Errorf("coalition's k1 after russia's: %q, %v", got.Body, err)
	}
	// A live key is not put again.
	if err := put(answer("coalition", "k1", `{"id":"m3"}`, base), base.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("PutIdempotent of a live key = %v, want ErrConflict", err)
	}
	// A transaction that fails after putting an answer keeps none.
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutIdempotent(answer("coalition", "k2", "x", base), base); err != nil {
			t.Errorf("PutIdempotent(k2): %v", err)
		}
		return errors.New("refused")
	})
	if err == nil {
		t.Fatal("the failing transaction committed")
	}
	if _, err := get("coalition", "k2", base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetIdempotent(k2) put only in a failed transaction = %v, want ErrNotFound", err)
	}
	// Usage counts the live answers of one party.
	if err := put(answer("coalition", "k3", "12345", base.Add(time.Hour)), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	usage := func(party string) (int, int64) {
		var n int
		var b int64
		if err := s.View(ctx, func(tx store.Tx) error {
			var err error
			n, b, err = tx.IdempotentUsage(party)
			return err
		}); err != nil {
			t.Fatalf("IdempotentUsage: %v", err)
		}
		return n, b
	}
	if n, b := usage("coalition"); n != 2 || b != int64(len(`{"id":"m1"}`)+5) {
		t.Errorf("usage of coalition = %d keys, %d bytes; want 2, %d", n, b, len(`{"id":"m1"}`)+5)
	}
	if n, b := usage("nobody"); n != 0 || b != 0 {
		t.Errorf("usage of a party without keys = %d, %d", n, b)
	}
	// Expired: not found, not counted, taken over, and forgotten.
	expired := base.Add(24*time.Hour + time.Minute)
	if _, err := get("coalition", "k1", expired); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetIdempotent of an expired key = %v, want ErrNotFound", err)
	}
	var forgot int64
	update(t, s, func(tx store.Tx) error {
		var err error
		forgot, err = tx.ForgetIdempotent(expired)
		return err
	})
	if forgot != 2 {
		t.Errorf("ForgetIdempotent forgot %d, want 2 (k1 of both parties)", forgot)
	}
	if n, b := usage("coalition"); n != 1 || b != 5 {
		t.Errorf("usage of coalition once k1 is forgotten = %d keys, %d bytes; want 1 (k3), 5", n, b)
	}
	if n, b := usage("russia"); n != 0 || b != 0 {
		t.Errorf("usage of russia once its k1 is forgotten = %d keys, %d bytes; want none", n, b)
	}
	if err := put(answer("coalition", "k3", "new", expired), base.Add(25*time.Hour+time.Minute)); err != nil {
		t.Errorf("PutIdempotent over an expired key: %v", err)
	}
	if got, err := get("coalition", "k3", base.Add(25*time.Hour+time.Minute)); err != nil || string(got.Body) != "new" {
		t.Errorf("k3 taken over after expiry: %q, %v", got.Body, err)
	}
	if n, b := usage("coalition"); n != 1 || b != 3 {
		t.Errorf("usage of coalition once k3 is taken over = %d keys, %d bytes; want 1, 3", n, b)
	}
	// Two transactions at once putting the same key: exactly one keeps it.
	var wg sync.WaitGroup
	var kept atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := put(answer("coalition", "race", fmt.Sprint(i), base), base)
			switch {
			case err == nil:
				kept.Add(1)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("PutIdempotent(race): %v", err)
			}
		}()
	}
	wg.Wait()
	if kept.Load() != 1 {
		t.Errorf("%d concurrent puts of one key kept it, want 1", kept.Load())
	}
}

// testNonces: a nonce is fresh once per key until it expires, whichever
// transaction uses it; a failed transaction uses none; expired nonces are
// forgotten.
func testNonces(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	use := func(key, nonce string, now time.Time) bool {
		t.Helper()
		var fresh bool
		update(t, s, func(tx store.Tx) error {
			var err error
			fresh, err = tx.UseNonce(key, nonce, now, now.Add(10*time.Minute))
			return err
		})
		return fresh
	}
	if !use("k1", "n1", base) {
		t.Fatal("a new nonce is not fresh")
	}
	if use("k1", "n1", base.Add(time.Minute)) {
		t.Error("a nonce used a minute ago is fresh again")
	}
	if !use("k2", "n1", base.Add(time.Minute)) {
		t.Error("the same nonce with another key is not fresh")
	}
	// A transaction that fails after using a nonce leaves it unused.
	err := s.Update(ctx, func(tx store.Tx) error {
		if fresh, err := tx.UseNonce("k1", "n2", base, base.Add(10*time.Minute)); err != nil || !fresh {
			t.Errorf("UseNonce(k1, n2) = %v, %v; want fresh", fresh, err)
		}
		return errors.New("refused")
	})
	if err == nil {
		t.Fatal("the failing transaction committed")
	}
	if !use("k1", "n2", base) {
		t.Error("a nonce used only in a transaction that failed is not fresh")
	}
	// Once expired, a nonce may be used again, and is forgotten.
	if !use("k1", "n1", base.Add(11*time.Minute)) {
		t.Error("an expired nonce is not fresh")
	}
	var forgot int64
	update(t, s, func(tx store.Tx) error {
		var err error
		forgot, err = tx.ForgetNonces(base.Add(10*time.Minute + time.Second))
		return err
	})
	// k1/n2 and k2/n1 expired at base+10m and base+11m: only the first.
	if forgot != 1 {
		t.Errorf("ForgetNonces forgot %d, want 1 (k1/n2)", forgot)
	}
	if !use("k1", "n2", base.Add(12*time.Minute)) {
		t.Error("a forgotten nonce is not fresh")
	}
	if use("k1", "n1", base.Add(12*time.Minute)) {
		t.Error("a nonce taken over after expiry is fresh again before its new expiry")
	}
	// Two transactions at once with the same nonce: exactly one is fresh.
	var wg sync.WaitGroup
	var freshCount atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(ctx, func(tx store.Tx) error {
				fresh, err := tx.UseNonce("k3", "race", base, base.Add(time.Minute))
				if fresh {
					freshCount.Add(1)
				}
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if freshCount.Load() != 1 {
		t.Errorf("%d of 8 concurrent uses of one nonce were fresh, want 1", freshCount.Load())
	}
}

func testViewRefusesWrites(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	update(t, s, func(tx store.Tx) error { return tx.PutMessage(message("m1", "blue", []string{"red"}, "", base)) })
	writes := map[string]func(tx store.Tx) error{
		"CreateParty":   func(tx store.Tx) error { return tx.CreateParty(store.Party{Name: "x"}) },
		"UpdateParty":   func(tx store.Tx) error { return tx.UpdateParty(store.Party{Name: "x"}) },
		"PutCredential": func(tx store.Tx) error { return tx.PutCredential(store.Credential{TokenHash: []byte{1}, Party: "x"}) },
		"PutRules":      func(tx store.Tx) error { return tx.PutRules(store.RulesRecord{Version: 1}) },
		"PutRulesProposal": func(tx store.Tx) error {
			return tx.PutRulesProposal(store.RulesProposal{Version: 1, Actor: "x", State: "proposed"})
		},
		"LockVolumes": func(tx store.Tx) error { return tx.LockVolumes() },
		"PutVolume": func(tx store.Tx) error {
			_, err := tx.PutVolume(sampleVolume("x", "1", 1), "")
			return err
		},
		"AppendEvent": func(tx store.Tx) error {
			_, err := tx.AppendEvent(store.Event{Kind: "x"})
			return err
		},
		"AppendAudit":   func(tx store.Tx) error { return tx.AppendAudit(auditRecord(1)) },
		"PutCheckpoint": func(tx store.Tx) error { return tx.PutCheckpoint(store.Checkpoint{Seq: 1}) },
		"PutMessage":    func(tx store.Tx) error { return tx.PutMessage(message("x", "blue", nil, "", base)) },
		"PutAck": func(tx store.Tx) error {
			_, err := tx.PutAck(store.Ack{MessageID: "m1", Party: "red"})
			return err
		},
		"PutMeta":    func(tx store.Tx) error { return tx.PutMeta("x", []byte("x")) },
		"DeleteMeta": func(tx store.Tx) error { return tx.DeleteMeta("x") },
		"UseNonce": func(tx store.Tx) error {
			_, err := tx.UseNonce("k", "n", base, base.Add(time.Minute))
			return err
		},
		"ForgetNonces": func(tx store.Tx) error {
			_, err := tx.ForgetNonces(base)
			return err
		},
		"PutOpenAlert": func(tx store.Tx) error { return tx.PutOpenAlert(store.StoredAlert{ID: "x", Body: []byte("{}")}) },
		"ClearAlert":   func(tx store.Tx) error { return tx.ClearAlert(store.StoredAlert{ID: "x"}) },
		"ForgetClearedAlerts": func(tx store.Tx) error {
			_, err := tx.ForgetClearedAlerts(base)
			return err
		},
	}
	for name, w := range writes {
		err := s.View(ctx, w)
		wantErr(t, "View "+name, err, store.ErrReadOnly)
	}
	view(t, s, func(tx store.Tx) error {
		if ps, err := tx.ListParties(); err != nil || len(ps) != 0 {
			t.Errorf("parties after refused writes: %+v, %v", ps, err)
		}
		if _, err := tx.LatestRules(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rules after refused writes: %v", err)
		}
		if vs, err := tx.VolumesChangedSince(0, 10); err != nil || len(vs) != 0 {
			t.Errorf("volumes after refused writes: %+v, %v", vs, err)
		}
		if last, err := tx.LastEventID(); err != nil || last != 0 {
			t.Errorf("LastEventID after refused writes: %d, %v", last, err)
		}
		if _, err := tx.LastAudit(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("audit after refused writes: %v", err)
		}
		if cs, err := tx.CheckpointsFrom(0); err != nil || len(cs) != 0 {
			t.Errorf("checkpoints after refused writes: %+v, %v", cs, err)
		}
		if acks, err := tx.AcksFor("m1"); err != nil || len(acks) != 0 {
			t.Errorf("acks after refused writes: %+v, %v", acks, err)
		}
		if _, err := tx.GetMeta("x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("meta after refused writes: %v", err)
		}
		if as, err := tx.OpenAlerts(); err != nil || len(as) != 0 {
			t.Errorf("open alerts after refused writes: %+v, %v", as, err)
		}
		if as, err := tx.ClearedAlerts(); err != nil || len(as) != 0 {
			t.Errorf("cleared alerts after refused writes: %+v, %v", as, err)
		}
		return nil
	})
}

// testInvalid: values that some backend cannot store are refused by all,
// with an error naming the field, and change nothing.
func testInvalid(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	bad := []string{"nul\x00inside", "bad utf-8 \xff\xfe"}
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range bad {
		writes := []struct {
			field string
			fn    func(tx store.Tx) error
		}{
			{"party.Name", func(tx store.Tx) error { return tx.CreateParty(store.Party{Name: b}) }},
			{"volume.ID", func(tx store.Tx) error { _, err := tx.PutVolume(sampleVolume(b, "1", 1), ""); return err }},
			{"volume.Party", func(tx store.Tx) error {
				v := sampleVolume("v", "1", 1)
				v.Party = b
				_, err := tx.PutVolume(v, "")
				return err
			}},
			{"event.Kind", func(tx store.Tx) error { _, err := tx.AppendEvent(store.Event{Kind: b}); return err }},
			{"event.Audience", func(tx store.Tx) error {
				_, err := tx.AppendEvent(store.Event{Kind: "k", Audience: []string{"blue", b}})
				return err
			}},
			{"message.To", func(tx store.Tx) error { return tx.PutMessage(message("m", "blue", []string{b}, "", base)) }},
			{"ack.Party", func(tx store.Tx) error { _, err := tx.PutAck(store.Ack{MessageID: "m", Party: b}); return err }},
			{"meta key", func(tx store.Tx) error { return tx.PutMeta(b, nil) }},
			{"alert.ID", func(tx store.Tx) error { return tx.PutOpenAlert(store.StoredAlert{ID: b}) }},
			{"alert.ID", func(tx store.Tx) error { return tx.ClearAlert(store.StoredAlert{ID: b}) }},
			{"alert.Pair", func(tx store.Tx) error { return tx.PutOpenAlert(store.StoredAlert{ID: "x", Pair: b}) }},
			{"alert.Pair", func(tx store.Tx) error { return tx.ClearAlert(store.StoredAlert{ID: "x", Pair: b}) }},
		}
		for _, w := range writes {
			err := s.Update(ctx, w.fn)
			wantErr(t, fmt.Sprintf("write of %q as %s", b, w.field), err, store.ErrInvalid)
			if !strings.Contains(err.Error(), w.field) {
				t.Errorf("error %q does not name the field %s", err, w.field)
			}
		}
		view(t, s, func(tx store.Tx) error {
			if _, err := tx.PartyByName(b); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("PartyByName(%q): %v, want not found", b, err)
			}
			if _, err := tx.GetVolume(b); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetVolume(%q): %v, want not found", b, err)
			}
			if _, err := tx.GetMeta(b); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetMeta(%q): %v, want not found", b, err)
			}
			if ms, err := tx.MessagesFor(b, "", time.Time{}, 10); err != nil || len(ms) != 0 {
				t.Errorf("MessagesFor(%q): %v, %v", b, ms, err)
			}
			if es, err := store.EventsAfterFor(tx, b, 0, 10); err != nil || len(es) != 0 {
				t.Errorf("EventsAfterFor(%q): %v, %v", b, es, err)
			}
			return nil
		})
	}
	err := s.Update(ctx, func(tx store.Tx) error { _, err := tx.AppendEvent(store.Event{Kind: "k", Time: far}); return err })
	if err == nil || !strings.Contains(err.Error(), "event.Time") {
		t.Errorf("AppendEvent in the year 3000: %v, want an error naming event.Time", err)
	}
	view(t, s, func(tx store.Tx) error {
		if last, err := tx.LastEventID(); err != nil || last != 0 {
			t.Errorf("LastEventID after refused writes = %d, %v; want 0", last, err)
		}
		if vs, err := tx.VolumesChangedSince(0, 10); err != nil || len(vs) != 0 {
			t.Errorf("volumes after refused writes: %+v, %v", vs, err)
		}
		return nil
	})
}

func testCanceled(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	called := false
	err := s.Update(cctx, func(tx store.Tx) error {
		called = true
		_, err := tx.AppendEvent(store.Event{Kind: "x"})
		return err
	})
	if err == nil {
		t.Fatal("Update with a canceled context succeeded")
	}
	if called {
		t.Error("Update ran fn with a context canceled beforehand")
	}
	if events := allEvents(t, s); len(events) != 0 {
		t.Fatalf("Update with a canceled context stored %d events", len(events))
	}
}

func testReopen(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	update(t, s, func(tx store.Tx) error {
		if err := tx.CreateParty(store.Party{Name: "blue", Created: base}); err != nil {
			return err
		}
		if _, err := tx.PutVolume(sampleVolume("v1", "1", 1), ""); err != nil {
			return err
		}
		return tx.AppendAudit(auditRecord(1))
	})
	appendEvents(t, s, store.Event{Time: base, Kind: "a", Audience: []string{"*"}}, store.Event{Time: base, Kind: "b", Audience: []string{"blue"}})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Update(ctx, func(store.Tx) error { return nil }); err == nil {
		t.Error("Update after Close succeeded")
	}
	s = open(t)
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.PartyByName("blue"); err != nil {
			t.Errorf("party after reopen: %v", err)
		}
		if v, err := tx.GetVolume("v1"); err != nil || v.Version != "1" {
			t.Errorf("volume after reopen: %+v, %v", v, err)
		}
		if a, err := tx.LastAudit(); err != nil || !sameAudit(a, auditRecord(1)) {
			t.Errorf("audit after reopen: %+v, %v", a, err)
		}
		return nil
	})
	if ids := appendEvents(t, s, store.Event{Time: base, Kind: "c"}); ids[0] != 3 {
		t.Fatalf("first event id after reopen = %d, want 3", ids[0])
	}
	checkGapFree(t, allEvents(t, s))
}

func sameStoredAlerts(a, b []store.StoredAlert) bool {
	return slices.EqualFunc(a, b, func(x, y store.StoredAlert) bool {
		return x.ID == y.ID && x.EventID == y.EventID && x.Time.Equal(y.Time) && bytes.Equal(x.Body, y.Body) &&
			x.Pair == y.Pair && x.RaisedAt.Equal(y.RaisedAt) && x.ClearedAt.Equal(y.ClearedAt)
	})
}

func showAlerts(as []store.StoredAlert) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "{%s event %d at %s %s pair %s raised %s cleared %s} ", a.ID, a.EventID, a.Time.Format(time.RFC3339Nano), a.Body,
			a.Pair, a.RaisedAt.Format(time.RFC3339Nano), a.ClearedAt.Format(time.RFC3339Nano))
	}
	return "[" + strings.TrimSpace(b.String()) + "]"
}

// testAlerts: an alert put is open with its last event until cleared; a
// clear keeps its last clear until forgotten, also when the id is raised
// again; only a transaction that commits changes them, and a read sees
// them as of the event id it reads.
func testAlerts(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	alerts := func() (openAlerts, cleared []store.StoredAlert, last int64) {
		t.Helper()
		view(t, s, func(tx store.Tx) error {
			var err error
			if openAlerts, err = tx.OpenAlerts(); err != nil {
				return err
			}
			if cleared, err = tx.ClearedAlerts(); err != nil {
				return err
			}
			last, err = tx.LastEventID()
			return err
		})
		return openAlerts, cleared, last
	}
	check := func(what string, wantOpen, wantCleared []store.StoredAlert) {
		t.Helper()
		gotOpen, gotCleared, _ := alerts()
		if !sameStoredAlerts(gotOpen, wantOpen) {
			t.Errorf("%s: OpenAlerts = %s, want %s", what, showAlerts(gotOpen), showAlerts(wantOpen))
		}
		if !sameStoredAlerts(gotCleared, wantCleared) {
			t.Errorf("%s: ClearedAlerts = %s, want %s", what, showAlerts(gotCleared), showAlerts(wantCleared))
		}
	}
	check("empty store", nil, nil)
	// Written as the service does: the event and the alert in one
	// transaction.
	write := func(kind string, a store.StoredAlert) store.StoredAlert {
		t.Helper()
		update(t, s, func(tx store.Tx) error {
			var err error
			if a.EventID, err = tx.AppendEvent(store.Event{Time: a.Time, Kind: kind, Audience: []string{"*"}, Body: a.Body}); err != nil {
				return err
			}
			if kind == "alert_cleared" {
				return tx.ClearAlert(a)
			}
			return tx.PutOpenAlert(a)
		})
		return a
	}
	// The pair and the times of the alerts, as their writer says: the
	// times of the transitions, here a minute before their events'.
	pairA := store.AlertPair("conflict", []store.AlertAircraft{{Party: "red", Aircraft: "r1"}, {Party: "blue", Aircraft: "b1"}})
	pairB := store.AlertPair("nonconforming", []store.AlertAircraft{{Party: "blue", Aircraft: "b1"}})
	at := func(s int) time.Time { return base.Add(time.Duration(s)*time.Second - time.Minute) }
	b1 := write("alert_raised", store.StoredAlert{ID: "b", Time: base, Body: []byte(`{"id":"b","n":1}`), Pair: pairB, RaisedAt: at(0)})
	a1 := write("alert_raised", store.StoredAlert{ID: "a", Time: base.Add(time.Second), Body: []byte(`{"id":"a","n":1}`), Pair: pairA, RaisedAt: at(1)})
	check("two raised", []store.StoredAlert{a1, b1}, nil)
	// An update keeps the time of the raise, whatever it says.
	a2 := write("alert_updated", store.StoredAlert{ID: "a", Time: base.Add(2 * time.Second), Body: []byte(`{"id":"a","n":2}`), Pair: pairA, RaisedAt: at(2)})
	a2.RaisedAt = at(1)
	check("one updated", []store.StoredAlert{a2, b1}, nil)
	// A clear keeps its pair, the raise's time as it was open, and its
	// own time, not its body.
	b2 := write("alert_cleared", store.StoredAlert{ID: "b", Time: base.Add(3 * time.Second), Body: []byte(`{"id":"b","n":2}`), Pair: pairB, RaisedAt: at(3), ClearedAt: at(3)})
	b2.Body, b2.RaisedAt = nil, at(0)
	check("one cleared", []store.StoredAlert{a2}, []store.StoredAlert{b2})
	b3 := write("alert_raised", store.StoredAlert{ID: "b", Time: base.Add(4 * time.Second), Body: []byte(`{"id":"b","n":3}`), Pair: pairB, RaisedAt: at(4), ClearedAt: at(4)})
	b3.ClearedAt = time.Time{} // open: no clear
	check("a cleared id raised again", []store.StoredAlert{a2, b3}, []store.StoredAlert{b2})
	b4 := write("alert_cleared", store.StoredAlert{ID: "b", Time: base.Add(5 * time.Second), Pair: pairB, ClearedAt: at(5)})
	b4.RaisedAt = at(4)
	a3 := write("alert_cleared", store.StoredAlert{ID: "a", Time: base.Add(6 * time.Second), Pair: pairA, ClearedAt: at(6)})
	a3.RaisedAt = at(1)
	check("cleared again", nil, []store.StoredAlert{a3, b4})
	// An alert cleared that was never recorded open (a store written by
	// another program before): its clear is kept all the same, with the
	// raise's time its writer gives.
	c1 := write("alert_cleared", store.StoredAlert{ID: "c", Time: base.Add(7 * time.Second), Pair: pairA, RaisedAt: at(-10), ClearedAt: at(7)})
	check("a clear alone", nil, []store.StoredAlert{a3, b4, c1})

	// A transaction that fails leaves them as they were.
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutOpenAlert(store.StoredAlert{ID: "d", EventID: 99, Time: base, Body: []byte("{}")}); err != nil {
			return err
		}
		if err := tx.ClearAlert(store.StoredAlert{ID: "e", EventID: 99, Time: base}); err != nil {
			return err
		}
		if _, err := tx.ForgetClearedAlerts(base.Add(time.Hour)); err != nil {
			return err
		}
		return errors.New("rolled back")
	})
	if err == nil {
		t.Fatal("the failing Update succeeded")
	}
	check("after a rollback", nil, []store.StoredAlert{a3, b4, c1})

	// Forgetting: the clears before the time given, not those at it.
	update(t, s, func(tx store.Tx) error {
		n, err := tx.ForgetClearedAlerts(base.Add(6 * time.Second))
		if err == nil && n != 1 {
			t.Errorf("ForgetClearedAlerts(base+6s) = %d, want 1 (b's clear at base+5s)", n)
		}
		return err
	})
	check("after forgetting", nil, []store.StoredAlert{a3, c1})

	// Each read sees them as of the event id it reads with them: a raise
	// committed after a read began is not in it, nor its event.
	_, _, lastBefore := alerts()
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.View(ctx, func(tx store.Tx) error {
			if _, err := tx.LastEventID(); err != nil { // the read begins
				return err
			}
			close(started)
			<-release
			got, err := tx.OpenAlerts()
			if err != nil {
				return err
			}
			last, err := tx.LastEventID()
			if err != nil {
				return err
			}
			if len(got) != 0 || last != lastBefore {
				t.Errorf("a read begun before a raise sees %s as of event %d, want none as of %d", showAlerts(got), last, lastBefore)
			}
			return nil
		})
	}()
	<-started
	write("alert_raised", store.StoredAlert{ID: "f", Time: base.Add(8 * time.Second), Body: []byte(`{"id":"f"}`)})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
