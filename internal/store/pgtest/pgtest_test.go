package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestMissingBinariesSayWhatToRun(t *testing.T) {
	empty := t.TempDir()
	_, err := findBinIn(filepath.Join(empty, "*", "bin"), empty)
	if err == nil || !strings.Contains(err.Error(), "scripts/install-test-deps.sh") {
		t.Fatalf("findBinIn on an empty tree: %v, want an error telling to run scripts/install-test-deps.sh", err)
	}
}

func TestFindBinPrefersNewest(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9", "15", "13"} {
		d := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"initdb", "pg_ctl"} {
			if err := os.WriteFile(filepath.Join(d, f), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := findBinIn(filepath.Join(root, "*", "bin"), "")
	if err != nil || got != filepath.Join(root, "15", "bin") {
		t.Fatalf("findBinIn = %q, %v; want version 15", got, err)
	}
}

// TestDatabasesAreFreshAndDropped: each test gets its own empty database,
// and it is gone once the test ends.
func TestDatabasesAreFreshAndDropped(t *testing.T) {
	ctx := context.Background()
	var urls []string
	for i := range 2 {
		t.Run("db", func(t *testing.T) {
			u := NewDatabase(t)
			urls = append(urls, u)
			conn, err := pgx.Connect(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("database %d is not empty: %d tables", i, n)
			}
			if _, err := conn.Exec(ctx, `CREATE TABLE marker (x int)`); err != nil {
				t.Fatal(err)
			}
		})
	}
	if len(urls) != 2 || urls[0] == urls[1] {
		t.Fatalf("databases %v: want two different ones", urls)
	}
	conn, err := pgx.Connect(ctx, Shared(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, u := range urls {
		name := u[strings.LastIndex(u, "/")+1:]
		name, _, _ = strings.Cut(name, "?")
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after its test", name)
		}
	}
}
