//go:build !linux

package cputime

// Thread is not available here: ok is false, and callers fall back to
// wall time.
func Thread() (ns int64, ok bool) { return 0, false }
