//go:build linux

package service

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/traffic"
)

// BenchmarkResolve is the resolution of one open conflict alert of a
// scenario's traffic (two parties), as the service computes it for each
// update of an alert, cycling over the open alerts. It reports the CPU
// time of the benchmark's thread per resolution too (cpu-ns/op): on a
// shared machine the wall time is mostly waiting for a core.
func BenchmarkResolve(b *testing.B) {
	for _, sc := range []struct {
		name     string
		aircraft int
	}{{"global", 25_000}, {"metro", 5_000}} {
		b.Run(fmt.Sprintf("%s-%d", sc.name, sc.aircraft), func(b *testing.B) {
			s, _ := newFaultyService(b)
			// The alerts of the setup raise no resolutions of their own.
			s.cfg.WithoutResolution = true
			now := time.Now()
			reports, err := traffic.Generate(sc.name, traffic.Options{Aircraft: sc.aircraft, Parties: 2, Seed: 1, Time: now})
			if err != nil {
				b.Fatal(err)
			}
			byParty := map[string][]PositionReport{}
			for _, r := range reports {
				p := "coalition"
				if r.Party != "p1" {
					p = "russia"
				}
				byParty[p] = append(byParty[p], PositionReport{Aircraft: r.Aircraft, Callsign: r.Callsign, Class: r.Class, Time: r.Time,
					LatDeg: r.Pos.LatDeg, LonDeg: r.Pos.LonDeg, AltM: r.Pos.AltM, VelEastMps: r.VelEastMps, VelNorthMps: r.VelNorthMps, VelUpMps: r.VelUpMps})
			}
			for p, rs := range byParty {
				for i := 0; i < len(rs); i += 1000 {
					if err := ingest(s, p, time.Minute, rs[i:min(i+1000, len(rs))]...); err != nil {
						b.Fatal(err)
					}
				}
			}
			var open []alert.Alert
			for _, a := range s.tac.eng.Load().Alerts() {
				if a.Kind == alert.KindConflict {
					open = append(open, a)
				}
			}
			if len(open) == 0 {
				b.Fatal("no conflict alert")
			}
			b.ReportMetric(float64(len(open)), "alerts")
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPUNs()
			i := 0
			for b.Loop() {
				s.resolve(&open[i%len(open)], now)
				i++
			}
			b.ReportMetric(float64(threadCPUNs()-cpu0)/float64(i), "cpu-ns/op")
		})
	}
}

// threadCPUNs is the CPU time of the calling thread (user and system).
func threadCPUNs() int64 {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
