//go:build !linux

package clock

import "time"

// readBootClock: no clock that counts suspended time is read on this
// system; the guard keeps Go's monotonic clock.
func readBootClock() (time.Duration, bool) { return 0, false }
