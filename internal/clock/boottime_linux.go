//go:build linux

package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

// readBootClock reads Linux's CLOCK_BOOTTIME: CLOCK_MONOTONIC (Go's
// monotonic clock) and the time the host spent suspended.
func readBootClock() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
