// Package childproc runs the running test binary again as a child process,
// for tests that kill a writer with SIGKILL in the middle of its work and
// then check what survived, or freeze one (SIGSTOP) while it holds a lock:
// the writer is one test of the same binary (or its TestMain), told apart
// by an environment variable. It is imported by tests only.
package childproc

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"syscall"
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

// Frozen is a child stopped (SIGSTOP) while it holds something the test
// wants held: a lock, a transaction.
type Frozen struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// StartFrozen runs the running test binary again with no test selected
// and env (KEY=value) added, for its TestMain to play the child; waits for
// the child to say "holding" on its standard output; and stops it
// (SIGSTOP). The child is continued and killed when the test ends.
func StartFrozen(t testing.TB, env ...string) *Frozen {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	f := &Frozen{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	if line, err := f.next(); line != "holding" {
		t.Fatalf("the child said %q (%v), want holding", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	return f
}

// Resume continues the child (SIGCONT), tells it so with a line "resume"
// on its standard input, and returns the next line it says.
func (f *Frozen) Resume(t testing.TB) string {
	t.Helper()
	if err := f.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f.stdin, "resume\n"); err != nil {
		t.Fatal(err)
	}
	line, err := f.next()
	if err != nil {
		t.Fatalf("the resumed child said nothing: %v", err)
	}
	return line
}

func (f *Frozen) next() (string, error) {
	if !f.out.Scan() {
		if err := f.out.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
	return f.out.Text(), nil
}
