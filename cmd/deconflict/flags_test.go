package main

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/store/pgtest"
)

// invocations reach the flag set of every (sub)command: an unknown flag
// makes each parse its flags and stop.
var invocations = [][]string{
	{"asterix", "dump"},
	{"audit", "export"}, {"audit", "verify"}, {"audit", "key"}, {"audit", "timeline"},
	{"bench"}, {"bench", "--asterix-feed"}, {"bench", "--audit"}, {"bench", "--http"}, {"bench", "--replicas"}, {"bench", "--resolution"}, {"bench", "--startup"}, {"bench", "--volumes"},
	{"demo"},
	{"encounter"},
	{"feed", "sbs"}, {"feed", "jsonl"}, {"feed", "asterix"},
	{"key", "new"},
	{"party", "add"}, {"party", "list"}, {"party", "rotate"}, {"party", "revoke"},
	{"replay"},
	{"rules", "show"},
	{"serve"},
	{"sim"},
	{"volumes", "import"}, {"volumes", "export"},
	{"witness"}, {"witness", "check"},
}

// TestEveryFlagFromTheEnvironment walks the flag set of every command and
// checks that each flag can be set as DECONFLICT_<FLAG>, and that the
// command line wins. It also checks that the walk is complete: every
// registered command is invoked, and every flag set the sources create is
// reached.
func TestEveryFlagFromTheEnvironment(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix) {
			t.Setenv(name, "") // restored at the end
			os.Unsetenv(name)
		}
	}
	var sets []*flag.FlagSet
	flagSetParsed = func(fs *flag.FlagSet) { sets = append(sets, fs) }
	defer func() { flagSetParsed = nil }()

	invoked := map[string]bool{}
	for _, inv := range invocations {
		invoked[inv[0]] = true
		before := len(sets)
		var out, errOut bytes.Buffer
		runMain(append(append([]string{}, inv...), "--no-such-flag-at-all"), &out, &errOut)
		if len(sets) == before {
			t.Errorf("%v parses no flags through parseFlags: %s", inv, errOut.String())
		}
	}
	for name := range commands {
		if !invoked[name] {
			t.Errorf("command %s is not in the invocations of this test", name)
		}
	}
	walked := map[string]bool{}
	for _, fs := range sets {
		walked[fs.Name()] = true
	}
	for _, src := range flagSetNamesInSources(t) {
		found := false
		for name := range walked {
			found = found || name == src.name || (src.prefix && strings.HasPrefix(name, src.name))
		}
		if !found {
			t.Errorf("the flag set %q created in %s is not reached by the invocations of this test", src.name, src.at)
		}
	}

	n := 0
	for _, fs := range sets {
		fs.VisitAll(func(f *flag.Flag) {
			n++
			checkFlagFromEnv(t, fs, f)
		})
	}
	if n < 100 {
		t.Fatalf("only %d flags walked", n)
	}
}

// checkFlagFromEnv sets f's environment variable and parses fs again.
func checkFlagFromEnv(t *testing.T, fs *flag.FlagSet, f *flag.Flag) {
	t.Helper()
	env := envName(f.Name)
	val, known := newValue(f)
	if !known {
		// A value of its own kind: a value it refuses must be refused
		// naming the variable, which shows the variable reaches it.
		t.Setenv(env, "☃ not a value")
		err := parseFlags(fs, nil)
		os.Unsetenv(env)
		if err == nil && !strings.Contains(f.Value.String(), "not a value") {
			t.Errorf("%s --%s: %s neither taken nor refused", fs.Name(), f.Name, env)
		} else if err != nil && !strings.Contains(err.Error(), env) {
			t.Errorf("%s --%s: the refusal does not name %s: %v", fs.Name(), f.Name, env, err)
		}
		return
	}
	t.Setenv(env, val)
	defer os.Unsetenv(env)
	if err := parseFlags(fs, nil); err != nil {
		t.Errorf("%s: %s=%s: %v", fs.Name(), env, val, err)
		return
	}
	if got := f.Value.String(); got != val {
		t.Errorf("%s: %s=%s gave --%s %s", fs.Name(), env, val, f.Name, got)
	}
	if _, isString := f.Value.(flag.Getter).Get().(string); isString {
		if err := parseFlags(fs, []string{"--" + f.Name + "=from-the-command-line"}); err != nil || f.Value.String() != "from-the-command-line" {
			t.Errorf("%s --%s: the command line does not win over %s (%v)", fs.Name(), f.Name, env, err)
		}
	}
}

// newValue is a value for f other than its current one, as its flag
// would print it, when f is of a standard kind.
func newValue(f *flag.Flag) (string, bool) {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "", false
	}
	switch v := g.Get().(type) {
	case bool:
		return strconv.FormatBool(!v), true
	case string:
		return "from-the-environment", true
	case int:
		return strconv.Itoa(v + 1), true
	case int64:
		return strconv.FormatInt(v+1, 10), true
	case uint:
		return strconv.FormatUint(uint64(v+1), 10), true
	case uint64:
		return strconv.FormatUint(v+1, 10), true
	case float64:
		return strconv.FormatFloat(v+1.5, 'g', -1, 64), true
	case time.Duration:
		return (v + time.Second).String(), true
	}
	return "", false
}

type flagSetSource struct {
	name   string
	prefix bool // the name is built from this prefix
	at     string
}

// flagSetNamesInSources lists the names given to flag.NewFlagSet in the
// command's sources.
func flagSetNamesInSources(t *testing.T) []flagSetSource {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []flagSetSource
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "NewFlagSet" || len(call.Args) == 0 {
				return true
			}
			src := flagSetSource{at: fset.Position(call.Pos()).String()}
			arg := call.Args[0]
			if bin, ok := arg.(*ast.BinaryExpr); ok {
				arg, src.prefix = bin.X, true
			}
			lit, ok := arg.(*ast.BasicLit)
			if !ok {
				t.Fatalf("%s: flag set named by %T; name it by a string literal", src.at, arg)
			}
			src.name, _ = strconv.Unquote(lit.Value)
			out = append(out, src)
			return true
		})
	}
	if len(out) == 0 {
		t.Fatal("no flag set found in the sources")
	}
	return out
}

// A variable that does not fit its flag is refused naming the variable.
func TestFlagFromTheEnvironmentRefused(t *testing.T) {
	t.Setenv("DECONFLICT_RATE", "fast")
	code, _, stderr := runCmd("serve", "--data", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "DECONFLICT_RATE") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// A bound of no aircraft is refused naming the flag: every party's first
// report would be rejected.
func TestServeRefusesNoAircraftPerParty(t *testing.T) {
	code, _, stderr := runCmd("serve", "--data", t.TempDir(), "--max-aircraft-per-party", "0")
	if code != 2 || !strings.Contains(stderr, "--max-aircraft-per-party") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// A budget of no volume positions is refused naming the flag: every
// volume write would be refused.
func TestServeRefusesNoVolumePositions(t *testing.T) {
	for _, v := range []string{"0", "-1", "NaN"} {
		code, _, stderr := runCmd("serve", "--data", t.TempDir(), "--volume-positions-per-second", v)
		if code != 2 || !strings.Contains(stderr, "--volume-positions-per-second") {
			t.Fatalf("%s: exit %d: %s", v, code, stderr)
		}
	}
}

// A budget of no resolution work is refused naming the flag, by flag or
// by environment: every resolution on demand would be refused.
func TestServeRefusesNoResolutionWork(t *testing.T) {
	wantServeRefuses(t, "--resolution-work-per-second", "DECONFLICT_RESOLUTION_WORK_PER_SECOND", "0", "-1", "NaN")
}

// No work on demand at once is refused naming the flag, by flag or
// by environment: every one would wait for ever.
func TestServeRefusesNoWorkOnDemandAtOnce(t *testing.T) {
	wantServeRefuses(t, "--on-demand-at-once", "DECONFLICT_ON_DEMAND_AT_ONCE", "0", "-1")
}

// A budget of no preview positions is refused naming the flag, by flag or
// by environment: every preview would be refused. Unset, it is the rate
// of volume writes.
func TestServeRefusesNoPreviewPositions(t *testing.T) {
	wantServeRefuses(t, "--preview-positions-per-second", "DECONFLICT_PREVIEW_POSITIONS_PER_SECOND", "0", "-1", "NaN")
}

// Every command creates its data directory, for its owner alone, when it
// is missing, whatever the store (serve on PostgreSQL failed writing its
// signing key into a missing directory).
func TestDataDirectoryCreated(t *testing.T) {
	for _, storeURL := range []string{"", pgtest.NewDatabase(t)} {
		data := filepath.Join(t.TempDir(), "not", "yet")
		args := []string{"party", "add", "alpha", "--data", data}
		if storeURL != "" {
			args = append(args, "--store", storeURL)
		}
		if code, _, stderr := runCmd(args...); code != 0 {
			t.Fatalf("%v: %d %s", args, code, stderr)
		}
		fi, err := os.Stat(data)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("store %q: data directory %v (%v), want mode 0700", storeURL, fi, err)
		}
	}
}

// A new user's first command may be `audit key`: it creates the data
// directory (0700) and the signing key (0600) the server then signs with,
// and prints its public key, the same each time; a signing key file named
// but missing is refused naming it, and so is an export of a directory
// without a key.
func TestAuditKeyCreatesDataDirectory(t *testing.T) {
	data := filepath.Join(t.TempDir(), "not", "yet")
	code, first, stderr := runCmd("audit", "key", "--data", data)
	if code != 0 || !strings.Contains(stderr, "created the audit signing key") {
		t.Fatalf("audit key on a missing directory: %d %q %s", code, first, stderr)
	}
	fi, err := os.Stat(data)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory %v (%v), want mode 0700", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(data, audit.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("signing key %v (%v), want mode 0600", fi, err)
	}
	// The key the server takes from the directory is the one printed.
	key, err := audit.LoadOrCreateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	info := audit.PublicKeyInfo(key.Public().(ed25519.PublicKey))
	if want := fmt.Sprintf("{\"alg\":%q,\"public_key\":%q}\n", info.Alg, info.PublicKey); first != want {
		t.Errorf("printed %q, the directory's key is %q", first, want)
	}
	if code, again, stderr := runCmd("audit", "key", "--data", data); code != 0 || again != first || stderr != "" {
		t.Errorf("second audit key: %d %q %q", code, again, stderr)
	}
	// An export must be signed by the server's own key: on a directory
	// without one it fails, naming the file, and creates nothing.
	empty := filepath.Join(t.TempDir(), "empty")
	if code, _, stderr := runCmd("audit", "export", "--data", empty); code == 0 || !strings.Contains(stderr, filepath.Join(empty, audit.KeyFile)) {
		t.Errorf("audit export on a directory without a key: %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(empty, audit.KeyFile)); err == nil {
		t.Error("audit export created a signing key")
	}
	missing := filepath.Join(t.TempDir(), "none.pem")
	if code, _, stderr := runCmd("audit", "key", "--signing-key", missing); code == 0 || !strings.Contains(stderr, missing) {
		t.Errorf("audit key --signing-key %s: %d %s", missing, code, stderr)
	}
}

// wantServeRefuses checks that serve refuses each of values for flag, and
// 0 in the environment variable env, with exit status 2 naming the flag.
func wantServeRefuses(t *testing.T, flag, env string, values ...string) {
	t.Helper()
	for _, v := range values {
		code, _, stderr := runCmd("serve", "--data", t.TempDir(), flag, v)
		if code != 2 || !strings.Contains(stderr, flag) {
			t.Fatalf("%s %s: exit %d: %s", flag, v, code, stderr)
		}
	}
	t.Setenv(env, "0")
	code, _, stderr := runCmd("serve", "--data", t.TempDir())
	if code != 2 || !strings.Contains(stderr, flag) {
		t.Fatalf("%s=0: exit %d: %s", env, code, stderr)
	}
}
