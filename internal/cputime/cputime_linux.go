package cputime

import "golang.org/x/sys/unix"

// Thread returns the CPU time, in nanoseconds, the calling OS thread has
// used (user and system); ok is false when the system does not tell.
func Thread() (ns int64, ok bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return ts.Nano(), true
}
