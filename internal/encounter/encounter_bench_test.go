package encounter

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// benchInput is n synthetic rows in the reference layout (with its kind
// column), about half of them in conflict.
func benchInput(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	u := func(k float64) float64 { return (rng.Float64()*2 - 1) * k }
	var b bytes.Buffer
	b.WriteString("id,kind,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n")
	for i := range n {
		fmt.Fprintf(&b, "%d,random,0.0,0.0,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,9260.0,304.8,300.0\n", i,
			9000+u(300), u(250), u(250), u(5), u(40_000), u(40_000), 9000+u(300), u(250), u(250), u(5))
	}
	return b.Bytes()
}

func BenchmarkRun(b *testing.B) {
	const rows = 10_000
	in := benchInput(rows)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		if _, err := Run(bytes.NewReader(in), io.Discard, Local, Cylinder); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rows*b.N)/(cpuTime(b)-cpu0).Seconds(), "rows/cpu-s")
}

// cpuTime is the CPU time used by the process: on the shared machine wall
// time mostly measures the other tenants.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
