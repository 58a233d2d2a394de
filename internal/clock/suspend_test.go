package clock

import (
	"log/slog"
	"sync"
	"testing"
	"time"
)

// TestHostSuspendIsNoStep: a guard made with the default monotonic clock
// (the server's) counts the time its host spent suspended (a laptop's
// sleep, a cloud VM's hibernation), as the host's wall clock does when
// it resumes. Go's monotonic clock (Linux CLOCK_MONOTONIC) stops while
// the host is suspended: after a suspend of ten minutes the guard took the
// host's clock, right, for a step of ten minutes ahead, kept a time ten
// minutes behind until a restart, and refused every position report,
// stamped with true time, as more than 10 s in the future, so that
// nothing was detected. The boot-time clock (Linux CLOCK_BOOTTIME) runs
// on while suspended.
func TestHostSuspendIsNoStep(t *testing.T) {
	if _, ok := bootClock(); !ok {
		t.Skip("no boot-time clock on this system: the guard keeps Go's monotonic clock")
	}
	var mu sync.Mutex
	boot := 3 * time.Hour // since the host booted
	wall := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	advance := func(d time.Duration) {
		mu.Lock()
		boot, wall = boot+d, wall.Add(d)
		mu.Unlock()
	}
	saved := bootClock
	bootClock = func() (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		return boot, true
	}
	t.Cleanup(func() { bootClock = saved })
	logs := &logLines{}
	g := New(Config{Reference: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return wall
	}, Logger: slog.New(slog.NewTextHandler(logs, nil))})

	advance(time.Second)
	g.Now()
	advance(10 * time.Minute) // suspended: no reading meanwhile
	mu.Lock()
	want := wall
	mu.Unlock()
	if got := g.Now(); !got.Equal(want) {
		t.Fatalf("after a suspend of 10 minutes: %v, want the host's %v", got, want)
	}
	if st := g.Status(); st.Stepped {
		t.Fatalf("a suspend raised the step alarm: %+v", st)
	}
	if errs := logs.lines("ERROR"); len(errs) != 0 {
		t.Fatalf("a suspend logged the alarm: %q", errs)
	}
}
