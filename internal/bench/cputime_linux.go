package bench

import "golang.org/x/sys/unix"

// threadCPU is the CPU time the calling OS thread has used: on a shared,
// loaded machine it separates what a computation costs from the time it
// waited to be scheduled.
func threadCPU() (ns int64, ok bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return ts.Nano(), true
}
