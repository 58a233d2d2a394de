package resolve_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/resolve"
)

// crowd is an ownship with n intruders within reach: within 20 km and
// 1,000 m of it, half separated by DO-365 well clear and half by a 5 NM
// by 1,000 ft cylinder with three levels, at airliner and drone speeds.
func crowd(seed uint64, n int) (resolve.Aircraft, []resolve.Intruder) {
	rng := rand.New(rand.NewPCG(seed, 1))
	do365 := resolve.DO365()
	cyl := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: 9260, VerticalM: 304.8}, 300, 300, 120, 60)
	vel := func() detect.Vec3 {
		speed := 20 + rng.Float64()*230
		track := rng.Float64() * 2 * math.Pi
		return detect.Vec3{X: speed * math.Sin(track), Y: speed * math.Cos(track), Z: (rng.Float64() - 0.5) * 20}
	}
	own := resolve.Aircraft{Pos: detect.Vec3{Z: 6000}, Vel: vel()}
	traffic := make([]resolve.Intruder, n)
	for i := range traffic {
		sep := &do365
		if i%2 == 1 {
			sep = &cyl
		}
		traffic[i] = resolve.Intruder{
			Aircraft: resolve.Aircraft{
				Pos: detect.Vec3{X: (rng.Float64() - 0.5) * 40000, Y: (rng.Float64() - 0.5) * 40000, Z: 6000 + (rng.Float64()-0.5)*2000},
				Vel: vel(),
			},
			Sep: sep,
		}
	}
	return own, traffic
}

// BenchmarkCompute20 is the bands of one aircraft with 20 intruders
// within reach (the cost target: 1 ms at the 99th percentile).
func BenchmarkCompute20(b *testing.B) {
	cfg := resolve.DefaultConfig()
	const scenes = 64
	owns := make([]resolve.Aircraft, scenes)
	traffic := make([][]resolve.Intruder, scenes)
	for i := range scenes {
		owns[i], traffic[i] = crowd(uint64(i), 20)
	}
	b.ReportAllocs()
	var took []time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		resolve.Compute(owns[i%scenes], traffic[i%scenes], &cfg)
		took = append(took, time.Since(start))
		i++
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
}
