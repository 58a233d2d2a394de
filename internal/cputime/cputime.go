// Package cputime reads the CPU time of the calling OS thread, which the
// benchmarks report beside wall time: on a shared, loaded machine it
// separates what a computation costs from the time it waited to be
// scheduled. Lock the goroutine to its thread (runtime.LockOSThread)
// around what is measured.
package cputime
