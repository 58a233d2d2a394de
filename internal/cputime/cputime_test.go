//go:build linux

package cputime

import (
	"runtime"
	"testing"
)

// TestThreadCountsWork: the thread's CPU time grows over a loop of
// twenty million steps, which takes CPU time on any machine.
func TestThreadCountsWork(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok := Thread()
	if !ok {
		t.Fatal("no thread CPU time on linux")
	}
	x := 0.0
	for i := range 20_000_000 {
		x += float64(i % 7)
	}
	t1, _ := Thread()
	if t1 <= t0 || x == 0 {
		t.Fatalf("CPU time %d -> %d ns over 20 million steps", t0, t1)
	}
}
