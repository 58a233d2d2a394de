// Package nodejs runs independent implementations of the standards the
// project speaks (npm packages pinned in npm/package-lock.json) from Go
// tests: a test hands node a script and reads its output. The same pinned
// packages hold axe-core, the accessibility checker the browser tests
// inject into the console (Modules gives its path). The packages are
// installed by scripts/install-test-deps.sh (npm ci); a test run without
// them installs them itself, and fails, never skips, when node or npm is
// missing.
package nodejs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// dir is the npm project of the pinned packages, beside this file.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "npm")
}

var (
	installOnce sync.Once
	installErr  error
	installOut  []byte
)

// Modules returns the node_modules directory holding the pinned packages,
// running npm ci first when it is missing.
func Modules(t testing.TB) string {
	t.Helper()
	d := dir()
	modules := filepath.Join(d, "node_modules")
	installOnce.Do(func() {
		// Installed, and from the lock file as it is now (a package
		// added since needs npm ci again).
		installed, err := os.Stat(filepath.Join(modules, ".package-lock.json"))
		lock, lerr := os.Stat(filepath.Join(d, "package-lock.json"))
		if err == nil && lerr == nil && !lock.ModTime().After(installed.ModTime()) {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			installErr = err
			return
		}
		cmd := exec.Command(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = d
		installOut, installErr = cmd.CombinedOutput()
	})
	if installErr != nil {
		t.Fatalf("installing the npm packages of %s (scripts/install-test-deps.sh does it; needs npm): %v\n%s", d, installErr, installOut)
	}
	return modules
}

// Run runs script with node, stdin as its standard input, the pinned
// packages resolvable by require, and returns its standard output. A
// non-zero exit fails the test with the script's standard error.
func Run(t testing.TB, script string, stdin []byte) []byte {
	t.Helper()
	modules := Modules(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (scripts/install-test-deps.sh installs it): %v", err)
	}
	cmd := exec.Command(node, "-e", script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.Bytes())
	}
	return stdout.Bytes()
}
