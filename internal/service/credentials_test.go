package service

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// heldStore holds the next Update made for a request that carries an
// idempotency key, once armed, before its transaction begins: the request
// waits there as for the writers' lock another replica holds, until the
// test releases it.
type heldStore struct {
	store.Store
	armed   atomic.Bool
	waiting chan struct{}
	release chan struct{}
}

func newHeldStore(st store.Store) *heldStore {
	return &heldStore{Store: st, waiting: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if ctx.Value(idempotencyKey{}) != nil && h.armed.CompareAndSwap(true, false) {
		h.waiting <- struct{}{}
		<-h.release
	}
	return h.Store.Update(ctx, fn)
}

// holds reports whether token is one of the party's current tokens in st.
func holds(t *testing.T, st store.Store, name, token string) bool {
	t.Helper()
	var ok bool
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		ok, err = holdsToken(tx, name, party.HashToken(token))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// auditCount counts the audit records of kind in st.
func auditCount(t *testing.T, st store.Store, kind string) int {
	t.Helper()
	n := 0
	err := st.View(context.Background(), func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 100000)
		for _, r := range recs {
			if r.Kind == kind {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tokenRetryServedBeforeItsFirst: a write that issues a token, sent with
// an idempotency key to replica A, waits there (for the writers' lock);
// its client gives up and sends the retry to replica B, which issues the
// token, keeps the key, and delivers its answer. The first, released,
// must not take the key for that of a write whose answer was lost: it
// changes nothing and is ErrOvertaken, and the token the client holds
// stays the party's. A retry sent after that (its answer lost too) is
// still a reissue.
func tokenRetryServedBeforeItsFirst(t *testing.T, stA, stB store.Store) {
	ctx := context.Background()
	held := newHeldStore(stA)
	a, err := New(ctx, Config{Store: held})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{Store: stB})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateParty(ctx, "russia"); err != nil {
		t.Fatal(err)
	}
	operator := party.Principal{Party: party.OperatorName, Operator: true}
	for _, tc := range []struct {
		name, party, key string
		issue            func(s *Service, ctx context.Context) (string, error)
	}{
		{"rotation", "russia", "rotate-russia", func(s *Service, ctx context.Context) (string, error) {
			return s.RotateParty(ctx, operator, "russia")
		}},
		{"creation", "nato", "add-nato", func(s *Service, ctx context.Context) (string, error) {
			return s.AddParty(ctx, operator, "nato")
		}},
	} {
		send := func(s *Service) (string, bool, error) {
			ctx := withKey(party.OperatorName, tc.key, "POST "+tc.name)
			token, err := tc.issue(s, ctx)
			return token, TokenReissued(ctx), err
		}
		type answer struct {
			token string
			err   error
		}
		first := make(chan answer, 1)
		held.armed.Store(true)
		go func() {
			token, _, err := send(a)
			first <- answer{token, err}
		}()
		<-held.waiting
		delivered, reissued, err := send(b)
		if err != nil || reissued {
			t.Fatalf("%s: the retry served first: reissued %v, %v", tc.name, reissued, err)
		}
		reissuedBefore := auditCount(t, stA, "party_token_reissued")
		held.release <- struct{}{}
		got := <-first
		if !errors.Is(got.err, ErrOvertaken) || got.token != "" {
			t.Errorf("%s: the first, served after its retry: token %q, %v; want ErrOvertaken", tc.name, got.token, got.err)
		}
		if !holds(t, stA, tc.party, delivered) {
			t.Errorf("%s: the token the retry delivered was revoked by its first, served after it: the party is locked out", tc.name)
		}
		if n := auditCount(t, stA, "party_token_reissued"); n != reissuedBefore {
			t.Errorf("%s: %d party_token_reissued records after the first, want %d", tc.name, n, reissuedBefore)
		}

		// The retry's answer lost too: sent again, it is reissued.
		again, reissued, err := send(a)
		if err != nil || !reissued || again == delivered {
			t.Fatalf("%s: sent again after both: reissued %v, new token %v, %v; want a reissue", tc.name, reissued, again != delivered, err)
		}
		if holds(t, stA, tc.party, delivered) || !holds(t, stA, tc.party, again) {
			t.Errorf("%s: after the reissue the lost token holds %v, the new one %v; want only the new one", tc.name,
				holds(t, stA, tc.party, delivered), holds(t, stA, tc.party, again))
		}
	}
}

func TestTokenRetryServedBeforeItsFirst(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Two services on one store in one process: each has its own
	// guard of the keys in flight.
	tokenRetryServedBeforeItsFirst(t, st, st)
}

func TestTokenRetryServedBeforeItsFirstOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	url := pgtest.NewDatabase(t)
	var replicas [2]store.Store
	for i := range replicas {
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		replicas[i] = st
	}
	tokenRetryServedBeforeItsFirst(t, replicas[0], replicas[1])
}

// TestTokenRetryOfAKeyKeptWithoutItsPlace: what a server before the
// audit sequence was kept with the key keeps no place in the chain, so a
// request cannot tell whether it was overtaken: its retry is reissued, as
// it was then (rather than refused for good).
func TestTokenRetryOfAKeyKeptWithoutItsPlace(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	held := newHeldStore(st)
	a, err := New(ctx, Config{Store: held})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateParty(ctx, "russia"); err != nil {
		t.Fatal(err)
	}
	operator := party.Principal{Party: party.OperatorName, Operator: true}
	send := func(s *Service) (string, bool, error) {
		ctx := withKey(party.OperatorName, "rotate-russia", "POST rotate")
		token, err := s.RotateParty(ctx, operator, "russia")
		return token, TokenReissued(ctx), err
	}
	type answer struct {
		token    string
		reissued bool
		err      error
	}
	first := make(chan answer, 1)
	held.armed.Store(true)
	go func() {
		token, reissued, err := send(a)
		first <- answer{token, reissued, err}
	}()
	<-held.waiting
	delivered, _, err := send(b)
	if err != nil {
		t.Fatal(err)
	}
	// Kept as a server before the audit sequence kept it.
	err = st.Update(ctx, func(tx store.Tx) error {
		kept, err := tx.GetIdempotent(party.OperatorName, "rotate-russia", b.now())
		if err != nil {
			return err
		}
		var was tokenIssued
		if err := json.Unmarshal(kept.Body, &was); err != nil || was.AuditSeq == 0 {
			t.Errorf("the key keeps %s (%v), want its place in the audit chain", kept.Body, err)
		}
		kept.Body, err = json.Marshal(map[string]any{"party": "russia", "token_hash": was.TokenHash})
		if err != nil {
			return err
		}
		return tx.PutIdempotent(kept, kept.Expires)
	})
	if err != nil {
		t.Fatal(err)
	}
	held.release <- struct{}{}
	got := <-first
	if got.err != nil || !got.reissued || got.token == delivered {
		t.Errorf("the first, after a key kept without its place: reissued %v, %v; want a reissue", got.reissued, got.err)
	}
	if holds(t, st, "russia", delivered) || !holds(t, st, "russia", got.token) {
		t.Error("the reissue did not replace the token")
	}
}
