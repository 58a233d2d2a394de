package resolve_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/cputime"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/resolve"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/traffic"
)

// metroScene is one aircraft of metro traffic and every other aircraft of
// the city, in its east-north-up frame, each pair separated by the default
// rules' entry of its classes, as the service resolves a manned aircraft
// of the city (whose candidates reach every drone of it).
type metroScene struct {
	own     resolve.Aircraft
	cfg     *resolve.Config
	traffic []resolve.Intruder
}

// metroScenes returns the scenes of up to n aircraft of class among
// drones drones of metro traffic.
func metroScenes(tb testing.TB, drones, n int, class string) []metroScene {
	tb.Helper()
	reports, err := traffic.Generate("metro", traffic.Options{Aircraft: drones, Seed: 1, Time: time.Unix(1_800_000_000, 0)})
	if err != nil {
		tb.Fatal(err)
	}
	r := rules.Default()
	table, err := detect.NewTable(r)
	if err != nil {
		tb.Fatal(err)
	}
	seps := make([]resolve.Separation, len(table.Entries()))
	for i, e := range table.Entries() {
		seps[i] = resolve.SeparationOf(e)
	}
	cfg := resolve.ConfigOf(r.PerformanceFor(class))
	var scenes []metroScene
	for oi := range reports {
		own := &reports[oi]
		if own.Class != class {
			continue
		}
		f := geo.NewFrame(geo.LLA{LatDeg: own.Pos.LatDeg, LonDeg: own.Pos.LonDeg})
		local := func(p geo.LLA, ve, vn, vu float64) resolve.Aircraft {
			e := f.ToENU(p)
			v := f.VelocityFrom(p, geo.ENU{EastM: ve, NorthM: vn, UpM: vu})
			return resolve.Aircraft{Pos: detect.Vec3{X: e.EastM, Y: e.NorthM, Z: e.UpM}, Vel: detect.Vec3{X: v.EastM, Y: v.NorthM, Z: v.UpM}}
		}
		s := metroScene{own: local(own.Pos, own.VelEastMps, own.VelNorthMps, own.VelUpMps), cfg: &cfg}
		for i := range reports {
			if i == oi {
				continue
			}
			x := &reports[i]
			s.traffic = append(s.traffic, resolve.Intruder{Aircraft: local(x.Pos, x.VelEastMps, x.VelNorthMps, x.VelUpMps), Sep: &seps[table.ForNames(own.Class, x.Class).Index()]})
		}
		scenes = append(scenes, s)
		if len(scenes) == n {
			break
		}
	}
	if len(scenes) == 0 {
		tb.Fatalf("no %s aircraft among %d", class, len(reports))
	}
	return scenes
}

// threadCPUNs is the CPU time of the calling OS thread (cputime.Thread).
func threadCPUNs(b *testing.B) int64 {
	ns, ok := cputime.Thread()
	if !ok {
		b.Fatal("no thread CPU time here")
	}
	return ns
}

// BenchmarkComputeMannedMetro is the bands of a manned aircraft of metro
// traffic against every other aircraft of the city (5,000 or 25,000
// drones and 200 manned aircraft), as the service computes them for each
// manned aircraft of an alert there; cpu-ns/op is the CPU time of the
// benchmark's thread per computation.
func BenchmarkComputeMannedMetro(b *testing.B) {
	for _, drones := range []int{5000, 25000} {
		for _, matter := range []bool{false, true} {
			name := map[int]string{5000: "5k", 25000: "25k"}[drones]
			if matter {
				name += "/matter"
			}
			b.Run(name, func(b *testing.B) { benchmarkComputeMetro(b, drones, matter) })
		}
	}
}

// benchmarkComputeMetro is BenchmarkComputeMannedMetro's computation with
// every aircraft of the city, or (matter) with those Matter does not rule
// out, as the service hands them over.
func benchmarkComputeMetro(b *testing.B, drones int, matter bool) {
	scenes := metroScenes(b, drones, 16, rules.ClassManned)
	if matter {
		k := resolve.DefaultKinematics()
		for i := range scenes {
			s := &scenes[i]
			kept := s.traffic[:0]
			for _, in := range s.traffic {
				if m := resolve.NewMatter(s.own, in.Sep, s.cfg, &k); m.Bands(in.Aircraft) {
					kept = append(kept, in)
				}
			}
			s.traffic = kept
		}
	}
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPUNs(b)
	i := 0
	for b.Loop() {
		s := &scenes[i%len(scenes)]
		resolve.Compute(s.own, s.traffic, s.cfg)
		i++
	}
	b.ReportMetric(float64(threadCPUNs(b)-cpu0)/float64(i), "cpu-ns/op")
}
