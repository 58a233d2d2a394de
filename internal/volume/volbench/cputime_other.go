//go:build !linux

package volbench

// threadCPU is unavailable here; reports then carry wall-clock times only.
func threadCPU() (ns int64, ok bool) { return 0, false }
