package volume

import (
	"context"
	"os"
	"testing"

	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Two replicas, each with its own connection pool and registry, on one
// PostgreSQL database: the store's lock and the catch-up keep them from
// committing conflicts unannounced.
func TestOnPostgresReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	url := pgtest.NewDatabase(t)
	open := func() txStore {
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return realStore{st}
	}
	st1, st2 := open(), open()
	t.Run("replicas", func(t *testing.T) {
		r1, r2 := newEnv(t, st1), newEnv(t, st2)
		a := r1.mustCreate("a", area(0))
		_, err := r2.create("b", area(0))
		if got := missingIDs(t, err); len(got) != 1 || got[0] != a.ID+"@"+a.Version {
			t.Errorf("replica 2 missing %v, want %s", got, a.ID)
		}
	})
	t.Run("64 concurrent writers on two replicas", func(t *testing.T) {
		e1, e2 := newEnv(t, st1), newEnv(t, st2)
		ok, refused := hammer(t, []*env{e1, e2}, 64, 6)
		pairs := checkNoHiddenConflict(t, e1)
		t.Logf("%d writes committed, %d refused, %d conflicting pairs, all announced", ok, refused, pairs)
		if ok == 0 || pairs == 0 {
			t.Fatalf("the test exercised nothing: %d committed, %d conflicting pairs", ok, pairs)
		}
	})
}
