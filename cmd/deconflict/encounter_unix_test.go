//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deconflict/deconflict/internal/encounter"
)

// TestEncounterOutToAPipe: an --out that is a device or a pipe
// (/dev/stdout, /dev/null, a FIFO) is written as standard output is; the
// results were written to a temporary file renamed over it, which
// replaced the pipe with a file (and, as root, /dev/null with one).
func TestEncounterOutToAPipe(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "results.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	// Held open for reading and writing: the command's open does not wait
	// for a reader, and its few lines fit in the pipe's buffer.
	pipe, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	in := filepath.Join(dir, "in.csv")
	input := "id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n" +
		"1,0,0,1000,100,0,0,20000,0,1000,-100,0,0,9260,304.8,300\n"
	if err := os.WriteFile(in, []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"encounter", "--in", in, "--out", fifo}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO is now %v (%v)", st.Mode(), err)
	}
	buf := make([]byte, 4096)
	n, err := pipe.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), encounter.Header+"\n1,1,") || strings.Count(string(buf[:n]), "\n") != 2 {
		t.Fatalf("read %q from the pipe (%v)", buf[:n], err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("left in the folder: %v", entries)
	}
}
