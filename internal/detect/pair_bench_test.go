package detect

import (
	"math/rand/v2"
	"testing"
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

var pairSink PairResult

func BenchmarkPair(b *testing.B) {
	ps := benchPairs(1024)
	sep := Cylinder{HorizontalM: 9260, VerticalM: 304.8}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := &ps[i&1023]
		pairSink = Pair(p.op, p.ov, p.ip, p.iv, sep, 300)
		i++
	}
}
