package party

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// forgetDuringRead is a store whose next View, once its fn has read,
// runs then: a rotation committing while a lookup is under way.
type forgetDuringRead struct {
	store.Store
	then func()
}

func (f *forgetDuringRead) View(ctx context.Context, fn func(store.Tx) error) error {
	err := f.Store.View(ctx, fn)
	if then := f.then; then != nil {
		f.then = nil
		then()
	}
	return err
}

// TestAuthenticateCachesNothingReadBeforeAForget: a token looked up while
// its party's tokens are rotated (the store read before the rotation
// commits, the answer cached after the Forget that follows it) must not
// stay valid from the cache: the next lookup reads the store and refuses
// it.
func TestAuthenticateCachesNothingReadBeforeAForget(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	var old string
	if err := st.Update(ctx, func(tx store.Tx) error {
		old, err = Add(tx, "russia", false, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f := &forgetDuringRead{Store: st}
	a := NewAuthenticator(f, time.Minute)
	f.then = func() {
		if err := st.Update(ctx, func(tx store.Tx) error {
			_, err := Rotate(tx, "russia", now)
			return err
		}); err != nil {
			t.Error(err)
		}
		a.Forget("russia")
	}
	if p, err := a.Authenticate(ctx, old, now); err != nil || p.Party != "russia" {
		t.Fatalf("the lookup under way: %+v, %v; want russia (it read before the rotation)", p, err)
	}
	if p, err := a.Authenticate(ctx, old, now); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the rotated token after the rotation: %+v, %v; want ErrUnauthenticated", p, err)
	}
}
