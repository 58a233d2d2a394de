//go:build linux

package resolve

import (
	"runtime"
	"testing"

	"github.com/deconflict/deconflict/internal/cputime"
)

// BenchmarkSuggestMetro is the coordinated suggestion of each conflict
// of metro traffic of 5,000 aircraft (metro5000) of one pair of classes:
// manned/manned (arrivals in trail, departures, helicopters, each with
// the thousands of drones of the city as others), manned/uas and
// uas/uas; with the others the service handed over at first (reach) and
// since (matter, fewer). An op is one Suggest of every conflict of the
// pair of classes, so that every op weighs the same; it reports the CPU
// time of the benchmark's thread per Suggest (cpu-ns/suggest): on a
// loaded machine the wall time is mostly waiting.
func BenchmarkSuggestMetro(b *testing.B) {
	scenes := metro5000(b)
	for _, near := range []string{"matter", "reach"} {
		for _, classes := range []string{"manned/manned", "manned/uas", "uas/uas"} {
			var group []metroScene
			for _, sc := range scenes {
				if sc.near == near && (sc.classes == classes || sc.classes == reversed(classes)) {
					group = append(group, sc)
				}
			}
			if len(group) > 0 {
				b.Run(near+"/"+classes, func(b *testing.B) { benchmarkSuggests(b, group) })
			}
		}
	}
}

// benchmarkSuggests is BenchmarkSuggestMetro of one group of scenes.
func benchmarkSuggests(b *testing.B, group []metroScene) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	cpu0, n := threadCPUNs(), 0
	for b.Loop() {
		for i := range group {
			sc := &group[i]
			Suggest(&sc.a, &sc.b, sc.sep, sc.ka, sc.kb)
		}
		n += len(group)
	}
	b.ReportMetric(float64(threadCPUNs()-cpu0)/float64(n), "cpu-ns/suggest")
}

// reversed is "b/a" for "a/b".
func reversed(classes string) string {
	for i := range len(classes) {
		if classes[i] == '/' {
			return classes[i+1:] + "/" + classes[:i]
		}
	}
	return classes
}

// threadCPUNs is the CPU time of the calling thread (cputime.Thread).
func threadCPUNs() int64 {
	ns, _ := cputime.Thread()
	return ns
}
