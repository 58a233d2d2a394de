// Package childproc runs the running test binary again as a child process,
// for tests that kill a writer with SIGKILL in the middle of its work and
// then check what survived: the writer is one test of the same binary,
// told apart by an environment variable. It is imported by tests only.
package childproc

import (
	"io"
	"os"
	"os/exec"
	"testing"
)

// Start runs the test named test of the running test binary as a child,
// with env (KEY=value) added to its environment. It returns the started
// command and the child's standard output; the child's standard error goes
// to the parent's.
func Start(t testing.TB, test string, env ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}
