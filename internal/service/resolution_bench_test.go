//go:build linux

package service

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/cputime"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/traffic"
)

// BenchmarkResolve is the resolution of one open conflict alert of a
// scenario's traffic (two parties), as the service computes it on demand
// (its own search for the tracks near it, then its bands and
// suggestions), cycling over the open alerts. It reports the CPU time of
// the benchmark's thread per resolution too (cpu-ns/op): on a shared
// machine the wall time is mostly waiting for a core. In metro 25,000 the
// alerts are taken apart by the classes of their aircraft: two drones
// (drones), or a manned aircraft among them (manned), whose reach covers
// a city of drones; search-cpu-ns/op is the search's part and near/op
// the tracks it keeps; units/op is what it is charged on demand
// (ResolutionWork.Units), cpu-ns/unit the CPU of a unit.
func BenchmarkResolve(b *testing.B) {
	for _, sc := range []struct {
		name     string
		aircraft int
		split    bool
	}{{"global", 25_000, false}, {"metro", 5_000, false}, {"metro", 25_000, true}} {
		b.Run(fmt.Sprintf("%s-%d", sc.name, sc.aircraft), func(b *testing.B) {
			s, open, now := trafficAlerts(b, sc.name, sc.aircraft)
			kinds := map[string][]alert.Alert{"all": open}
			if sc.split {
				kinds = map[string][]alert.Alert{}
				for _, a := range open {
					k := "drones"
					if slices.ContainsFunc(a.Aircraft, func(ac alert.Aircraft) bool { return ac.Class == rules.ClassManned }) {
						k = "manned"
					}
					kinds[k] = append(kinds[k], a)
				}
			}
			for _, kind := range slices.Sorted(maps.Keys(kinds)) {
				b.Run(kind, func(b *testing.B) { benchmarkResolve(b, s, kinds[kind], now) })
			}
		})
	}
}

// benchmarkResolve resolves the alerts of as in turn, as s.resolve does.
func benchmarkResolve(b *testing.B, s *Service, as []alert.Alert, now time.Time) {
	if len(as) == 0 {
		b.Fatal("no alert of this kind")
	}
	b.ReportMetric(float64(len(as)), "alerts")
	rv := s.resolverFor(s.Rules())
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var searchNs, cpuNs int64
	var units float64
	i, near := 0, 0
	for b.Loop() {
		a := &as[i%len(as)]
		var work ResolutionWork
		c0 := threadCPUNs()
		found, matter, release := s.nearAlertsSearchWork(rv, []*alert.Alert{a}, now, s.readNear(now), &work)
		c1 := threadCPUNs()
		s.resolveSharedWork(rv, a, now, found[0], matter[0], nil, &work)
		near += len(found[0])
		release()
		searchNs, cpuNs = searchNs+c1-c0, cpuNs+threadCPUNs()-c0
		units += work.Units()
		i++
	}
	b.ReportMetric(float64(cpuNs)/float64(i), "cpu-ns/op")
	b.ReportMetric(float64(searchNs)/float64(i), "search-cpu-ns/op")
	b.ReportMetric(float64(near)/float64(i), "near/op")
	// What a party's budget of resolutions on demand is charged (the
	// API's), and the CPU of a unit: the same for every kind of alert
	// when the units follow the CPU.
	b.ReportMetric(units/float64(i), "units/op")
	b.ReportMetric(float64(cpuNs)/units, "cpu-ns/unit")
}

// trafficAlerts is a service with a scenario's traffic of two parties
// ingested (its alerts raising no resolutions of their own), its open
// conflict alerts and the time of the traffic.
func trafficAlerts(tb testing.TB, scenario string, aircraft int) (*Service, []alert.Alert, time.Time) {
	s, _ := newFaultyService(tb)
	// The alerts of the setup raise no resolutions of their own.
	s.cfg.WithoutResolution = true
	now := time.Now()
	reports, err := traffic.Generate(scenario, traffic.Options{Aircraft: aircraft, Parties: 2, Seed: 1, Time: now})
	if err != nil {
		tb.Fatal(err)
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
				tb.Fatal(err)
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
		tb.Fatal("no conflict alert")
	}
	return s, open, now
}

// threadCPUNs is the CPU time of the calling thread (cputime.Thread).
func threadCPUNs() int64 {
	ns, _ := cputime.Thread()
	return ns
}

// BenchmarkNearAlerts is the search for the tracks near a group of
// resolveGroup open conflict alerts (what holds the alert engine's lock,
// which ingest takes too, for each group of resolutions), through the
// engine's index (nearAlerts) and by the full pass over every track it
// replaced (nearAlertsFullPass), alternating in one run, the alerts
// resolved as raised and 20 s later. CPU time of the benchmark's thread
// per group in cpu-ns/op; index-locked is index with the part under the
// engine's lock measured too (locked-cpu-ns/op).
func BenchmarkNearAlerts(b *testing.B) {
	for _, sc := range []struct {
		name     string
		aircraft int
	}{{"global", 25_000}, {"metro", 5_000}, {"metro", 25_000}} {
		// The traffic is set up only for the scenarios -bench asks for.
		b.Run(fmt.Sprintf("%s-%d", sc.name, sc.aircraft), func(b *testing.B) { benchmarkNearAlerts(b, sc.name, sc.aircraft) })
	}
}

// benchmarkNearAlerts is BenchmarkNearAlerts in one scenario.
func benchmarkNearAlerts(b *testing.B, scenario string, aircraft int) {
	s, open, now := trafficAlerts(b, scenario, aircraft)
	rv := s.resolverFor(s.Rules())
	ptrs := make([]*alert.Alert, len(open))
	for i := range open {
		ptrs[i] = &open[i]
	}
	// index is the search as the pool and the requests on demand run
	// it, its buffers released for the next; nearLocked the same adding
	// to lockedNs the CPU time of the thread in the engine's NearOf,
	// under its lock.
	index := func(rv *resolver, as []*alert.Alert, now time.Time) ([][]*track.State, func()) {
		near, _, release := s.nearAlertsLent(rv, as, now)
		return near, release
	}
	var lockedNs int64
	nearLocked := func(rv *resolver, as []*alert.Alert, now time.Time) ([][]*track.State, func()) {
		near, _, release := s.nearAlertsSearch(rv, as, now, func(keys []track.Key, centresOf func([]*track.State) ([][3]float64, radiusFunc), keep func(*track.State)) {
			c0 := threadCPUNs()
			defer func() { lockedNs += threadCPUNs() - c0 }()
			s.tac.eng.Load().NearOf(keys, now, centresOf, keep)
		})
		return near, release
	}
	fullPass := func(rv *resolver, as []*alert.Alert, now time.Time) ([][]*track.State, func()) {
		return s.nearAlertsFullPass(rv, as, now), func() {}
	}
	for _, later := range []time.Duration{0, 20 * time.Second} {
		for _, how := range []struct {
			name string
			near func(*resolver, []*alert.Alert, time.Time) ([][]*track.State, func())
		}{{"index", index}, {"full-pass", fullPass}, {"index-locked", nearLocked}} {
			b.Run(fmt.Sprintf("after-%v/%s", later, how.name), func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPUNs()
				i, found := 0, 0
				for b.Loop() {
					start := (i * resolveGroup) % len(ptrs)
					near, release := how.near(rv, ptrs[start:min(start+resolveGroup, len(ptrs))], now.Add(later))
					for _, near := range near {
						found += len(near)
					}
					release()
					i++
				}
				b.ReportMetric(float64(threadCPUNs()-cpu0)/float64(i), "cpu-ns/op")
				b.ReportMetric(float64(found)/float64(i), "tracks/op")
				if how.name == "index-locked" {
					b.ReportMetric(float64(lockedNs)/float64(i), "locked-cpu-ns/op")
					lockedNs = 0
				}
			})
		}
	}
}

// BenchmarkResolveGroups is the pool's work for the events
// (startResolutions): groups of open conflict alerts, each searched in
// one pass (nearAlertsMatter) and resolved with the bands of an aircraft
// shared across the group (resolveShared), cycling over the open alerts
// in the engine's order. The pool's groups hold some three alerts in
// metro 25,000 (a task is the alerts of one chunk of reports;
// BENCHMARKS.md): groups of 1, 3 and resolveGroup. CPU time of the
// benchmark's thread per resolution in cpu-ns/resolution.
func BenchmarkResolveGroups(b *testing.B) {
	for _, sc := range []struct {
		name     string
		aircraft int
	}{{"metro", 5_000}, {"metro", 25_000}} {
		b.Run(fmt.Sprintf("%s-%d", sc.name, sc.aircraft), func(b *testing.B) {
			s, open, now := trafficAlerts(b, sc.name, sc.aircraft)
			rv := s.resolverFor(s.Rules())
			ptrs := make([]*alert.Alert, len(open))
			for i := range open {
				ptrs[i] = &open[i]
			}
			for _, size := range []int{1, 3, resolveGroup} {
				b.Run(fmt.Sprintf("of-%d", size), func(b *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					cpu0 := threadCPUNs()
					i, resolved := 0, 0
					for b.Loop() {
						start := (i * size) % len(ptrs)
						group := ptrs[start:min(start+size, len(ptrs))]
						group, _ = sharingAircraftTogether(group, make([]*pendingResolution, len(group)))
						near, matter, release := s.nearAlertsLent(rv, group, now)
						shared := sharedBands{}
						for n, a := range group {
							s.resolveShared(rv, a, now, near[n], matter[n], shared)
							resolved++
						}
						release()
						i++
					}
					b.ReportMetric(float64(threadCPUNs()-cpu0)/float64(resolved), "cpu-ns/resolution")
				})
			}
		})
	}
}
