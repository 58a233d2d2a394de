// Package pgtest owns the throwaway PostgreSQL of the tests: one cluster per
// test binary, started on first use in a temporary directory on a free
// loopback port, and a fresh database for every test that asks for one.
//
// Use it from a test package like this:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.NewDatabase(t) // postgres://... of an empty database
//		...
//	}
//
// When DECONFLICT_TEST_PG holds a URL, that server is used instead and no
// cluster is started (each test still gets its own database there). Without
// it, the PostgreSQL server binaries must be installed: a test fails, and
// says to run scripts/install-test-deps.sh, when they are missing.
//
// PostgreSQL refuses to run as root, and tests here run as root: the cluster
// then runs as the "postgres" system user, in a directory created with
// os.MkdirTemp (t.TempDir's parent is root-only) and handed to that user.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points the tests at an existing server.
const EnvURL = "DECONFLICT_TEST_PG"

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	// URL reaches the server's "postgres" database as a superuser.
	URL  string
	dir  string // empty for a server given by EnvURL
	bin  string
	cred *syscall.Credential
}

var (
	shared     *Cluster
	sharedErr  error
	sharedOnce sync.Once
	sharedMu   sync.Mutex
	inMain     bool
)

// Main runs the tests of a package and stops the cluster afterwards, if one
// was started. Call it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	sharedMu.Lock()
	inMain = true
	sharedMu.Unlock()
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		shared = nil
	}
	return code
}

// Shared returns the cluster of this test binary, starting it on first use.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedMu.Lock()
	ok := inMain
	sharedMu.Unlock()
	if !ok {
		// Without Main nothing would stop the server after the tests.
		t.Fatal("pgtest: call pgtest.Main from the package's TestMain: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }")
	}
	sharedOnce.Do(func() {
		c, err := Start()
		sharedMu.Lock()
		shared, sharedErr = c, err
		sharedMu.Unlock()
	})
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedErr != nil {
		t.Fatalf("pgtest: %v", sharedErr)
	}
	if shared == nil {
		t.Fatal("pgtest: the shared cluster was already stopped (is pgtest.Main used in TestMain?)")
	}
	return shared
}

// NewDatabase creates an empty database t_<random> on the shared cluster,
// drops it when the test ends, and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	c := Shared(t)
	name, u, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.DropDatabase(context.Background(), name); err != nil {
			t.Logf("pgtest: %v", err)
		}
	})
	return u
}

// CreateDatabase creates an empty database with a random name and returns
// the name and its URL.
func (c *Cluster) CreateDatabase(ctx context.Context) (name, dbURL string, err error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name = "t_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return "", "", fmt.Errorf("connect to %s: %w", redact(c.URL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	return name, withDatabase(c.URL, name), nil
}

// DropDatabase drops a database made by CreateDatabase, closing any
// connection left to it.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(c.URL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func withDatabase(base, db string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + db
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Start starts a cluster, or, when DECONFLICT_TEST_PG is set, returns a
// Cluster for that server.
func Start() (*Cluster, error) {
	if u := os.Getenv(EnvURL); u != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", EnvURL, redact(u), err)
		}
		conn.Close(ctx)
		return &Cluster{URL: u}, nil
	}
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root and there is no \"postgres\" system user to run the server as: run scripts/install-test-deps.sh")
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	}
	c.dir, err = os.MkdirTemp("", "deconflict-pgtest-")
	if err != nil {
		return nil, err
	}
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			os.RemoveAll(c.dir)
			return nil, err
		}
	}
	c.watch()
	data := filepath.Join(c.dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "app", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(c.dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// A port that was free a moment ago may be taken by the time the
	// server binds it: try a few.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", port, c.dir)
		out, err := c.run("pg_ctl", "-D", data, "-l", filepath.Join(c.dir, "server.log"), "-o", opts, "-w", "-t", "60", "start")
		if err == nil {
			c.URL = fmt.Sprintf("postgres://app@127.0.0.1:%d/postgres?sslmode=disable", port)
			return c, nil
		}
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		lastErr = fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	os.RemoveAll(c.dir)
	return nil, lastErr
}

// Stop stops a cluster this package started (immediately: its data is
// thrown away) and removes its directory. It does nothing for a server
// given by DECONFLICT_TEST_PG.
func (c *Cluster) Stop() error {
	if c.dir == "" {
		return nil
	}
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	rmErr := os.RemoveAll(c.dir)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return rmErr
}

// Restart stops the server with pg_ctl's shutdown mode ("fast": the
// connections are ended, their transactions rolled back; "immediate": the
// server is killed, as in a crash, and recovers from its WAL at start) and
// starts it again on the same port. It fails for a server given by
// DECONFLICT_TEST_PG.
func (c *Cluster) Restart(mode string) error {
	if c.dir == "" {
		return fmt.Errorf("pgtest: the server of %s is not this package's to restart", EnvURL)
	}
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-l", filepath.Join(c.dir, "server.log"), "-m", mode, "-w", "-t", "60", "restart")
	if err != nil {
		return fmt.Errorf("pg_ctl restart: %w\n%s", err, out)
	}
	return nil
}

// watchdogScript stops the cluster and removes its directory once the
// test process ($1) is gone, so that a test binary killed by a timeout or a
// panic does not leave a server running on the shared machine. After a
// normal Stop it finds nothing left to do.
const watchdogScript = `while [ -d /proc/$1 ]; do sleep 1; done
"$2/pg_ctl" -D "$3/data" -m immediate -w stop >/dev/null 2>&1
rm -rf "$3"`

func (c *Cluster) watch() {
	if _, err := os.Stat("/proc/self"); err != nil {
		return // no /proc to watch the test process with
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "pgtest-watchdog", strconv.Itoa(os.Getpid()), c.bin, c.dir)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C"}
	// Its own session, so that a ^C to the test's process group does
	// not take the watchdog down before it has done its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: c.cred}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: no watchdog for the test cluster:", err)
		return
	}
	_ = cmd.Process.Release()
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=" + c.bin + ":/usr/bin:/bin", "LANG=C", "LC_ALL=C", "HOME=" + c.dir}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// findBin finds the directory of initdb and pg_ctl: Debian's
// /usr/lib/postgresql/<version>/bin (the newest), else PATH.
func findBin() (string, error) { return findBinIn("/usr/lib/postgresql/*/bin", os.Getenv("PATH")) }

func findBinIn(pattern, path string) (string, error) {
	dirs, _ := filepath.Glob(pattern)
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	dirs = append(dirs, filepath.SplitList(path)...)
	for _, d := range dirs {
		if d != "" && isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, pg_ctl) not found in %s or PATH: "+
		"run scripts/install-test-deps.sh (it installs Debian's postgresql package), or set %s to a server's URL", pattern, EnvURL)
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
