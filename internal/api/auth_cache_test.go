package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
)

// TestAuthenticatorCache: a revocation made behind the cache's back (by
// another process) takes effect when the entry expires; Forget makes it
// take effect at once.
func TestAuthenticatorCache(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	var tok string
	if err := st.Update(ctx, func(tx store.Tx) error {
		var err error
		tok, err = party.Add(tx, "coalition", false, t0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	a := party.NewAuthenticator(st, 5*time.Second)
	p, err := a.Authenticate(ctx, tok, t0)
	if err != nil || p.Party != "coalition" || p.Operator {
		t.Fatalf("%+v %v", p, err)
	}
	revoke := func() {
		if err := st.Update(ctx, func(tx store.Tx) error { return party.Revoke(tx, "coalition", t0) }); err != nil {
			t.Fatal(err)
		}
	}
	revoke()
	if _, err := a.Authenticate(ctx, tok, t0.Add(4*time.Second)); err != nil {
		t.Fatalf("within the cache time the entry stands: %v", err)
	}
	if _, err := a.Authenticate(ctx, tok, t0.Add(6*time.Second)); !errors.Is(err, party.ErrUnauthenticated) {
		t.Fatalf("after the cache time: %v", err)
	}

	// Rotate (re-enables), cache, revoke, Forget: refused at once.
	if err := st.Update(ctx, func(tx store.Tx) error {
		var err error
		tok, err = party.Rotate(tx, "coalition", t0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, tok, t0); err != nil {
		t.Fatal(err)
	}
	revoke()
	a.Forget("coalition")
	if _, err := a.Authenticate(ctx, tok, t0); !errors.Is(err, party.ErrUnauthenticated) {
		t.Fatalf("after Forget: %v", err)
	}
	for _, bad := range []string{"", "short", tok + "x"} {
		if _, err := a.Authenticate(ctx, bad, t0); !errors.Is(err, party.ErrUnauthenticated) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}
