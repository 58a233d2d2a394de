//go:build !linux

package bench

// threadCPU is not available here: callers fall back to wall time.
func threadCPU() (ns int64, ok bool) { return 0, false }
