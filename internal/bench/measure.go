// Package bench owns the measurements of `deconflict bench`. Each one times
// the project's way of doing something and, in the same process and run, a
// plain baseline (brute force, a full scan, raw store writes, the engine
// without HTTP), and reports both with their ratio, so that a figure taken on
// a loaded machine still compares like with like.
//
// A measurement takes its options as a struct and returns a result that
// encodes as the JSON the command prints with --json and writes itself as
// text (WriteText); the command only parses flags. Progress goes to a
// Progress function (the command's stderr). Every result records the load
// average of the machine, which is shared.
package bench

import (
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Progress reports what a long measurement is doing, printf-style.
type Progress func(format string, args ...any)

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// percentile is the q-th percentile of d (sorted in place).
func percentile(d []time.Duration, q int) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, len(d)*q/100)]
}

// median is the median of d, which it leaves unchanged.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// LoadAverage is the 1, 5 and 15-minute load averages of the machine ("" where
// /proc is absent), recorded with every figure since the machine is shared.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// cpuTime is the CPU time the process used so far: on a shared machine it
// shows the work done, which wall time mixes with waiting.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMiB reads the process's high-water resident set (VmHWM), which
// covers what the Go runtime does not account for; 0 where /proc is absent.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// every calls fn with the time elapsed every period until the returned stop
// is called, so that long runs show they are alive.
func every(period time.Duration, fn func(time.Duration)) (stop func()) {
	start := time.Now()
	t := time.NewTicker(period)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-t.C:
				fn(time.Since(start))
			case <-done:
				return
			}
		}
	}()
	return func() {
		t.Stop()
		close(done)
		<-finished
	}
}

// StartCPUProfile writes a CPU profile to path until the returned stop is
// called; an empty path profiles nothing.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
