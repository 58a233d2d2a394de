package detect

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

type benchPair struct{ op, ov, ip, iv Vec3 }

// benchPairs is a fixed mix of pairs near the cylinder, so that every branch
// of Pair (no horizontal loss, no vertical loss, conflict) is exercised.
func benchPairs(n int) []benchPair {
	rng := rand.New(rand.NewPCG(1, 2))
	u := func(k float64) float64 { return (rng.Float64()*2 - 1) * k }
	ps := make([]benchPair, n)
	for i := range ps {
		ps[i] = benchPair{
			op: Vec3{u(20_000), u(20_000), 9000 + u(600)}, ov: Vec3{u(250), u(250), u(10)},
			ip: Vec3{u(20_000), u(20_000), 9000 + u(600)}, iv: Vec3{u(250), u(250), u(10)},
		}
	}
	return ps
}

// cpuTime is the CPU time used by the process. On the shared 2-core
// machine wall time per op mostly measures the other tenants; CPU time
// per op measures Pair.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var pairSink PairResult

func BenchmarkPair(b *testing.B) {
	ps := benchPairs(1024)
	sep := Cylinder{HorizontalM: 9260, VerticalM: 304.8}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	i := 0
	for b.Loop() {
		p := &ps[i&1023]
		pairSink = Pair(p.op, p.ov, p.ip, p.iv, sep, 300)
		i++
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

var lossSink Loss

// BenchmarkLoss is the call a bands computation makes per candidate
// velocity: the interval alone of a relative motion, for each detector on
// the pairs of BenchmarkPair (DO-365 Phase I corrective well clear for
// do365_wcv).
func BenchmarkLoss(b *testing.B) {
	ps := benchPairs(1024)
	for _, d := range []struct {
		name string
		det  Detector
	}{
		{"cylinder", Cylinder{HorizontalM: 9260, VerticalM: 304.8}},
		{"do365_wcv", DO365PhaseICorrective()},
	} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			i := 0
			for b.Loop() {
				p := &ps[i&1023]
				lossSink = d.det.Loss(p.ip.Sub(p.op), p.iv.Sub(p.ov), 0, 300)
				i++
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
