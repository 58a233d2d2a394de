//go:build linux

package service

// A throwaway probe (do not commit): resolution CPU by the classes of an
// alert's pair in metro 5,000 traffic. Copy to internal/service/zz_probe_test.go,
// run `go test -count=1 -v -run ZZProbe ./internal/service/`.

import (
	"fmt"
	"runtime"
	"sort"
	"testing"

	"github.com/deconflict/deconflict/internal/alert"
)

func TestZZProbe(t *testing.T) {
	s, open, now := trafficAlerts(t, "metro", 5000)
	rv := s.resolverFor(s.Rules())
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	type agg struct {
		n, near int
		cpu     int64
		cpus    []int64
	}
	by := map[string]*agg{}
	for i := range open {
		a := &open[i]
		c0 := threadCPUNs()
		near := s.nearAlerts(rv, []*alert.Alert{a}, now)[0]
		c1 := threadCPUNs()
		s.resolveAmong(rv, a, now, near)
		c2 := threadCPUNs()
		k := ""
		for _, st := range near {
			for _, ac := range a.Aircraft {
				if st.Party == ac.Party && st.Aircraft == ac.Aircraft {
					k += st.Class + "/"
				}
			}
		}
		g := by[k]
		if g == nil {
			g = &agg{}
			by[k] = g
		}
		g.n++
		g.near += len(near)
		g.cpu += c2 - c0
		g.cpus = append(g.cpus, c2-c1)
	}
	for k, g := range by {
		sort.Slice(g.cpus, func(i, j int) bool { return g.cpus[i] < g.cpus[j] })
		fmt.Printf("%-16s n=%5d near=%6d cpu/res=%.2f ms  resolveAmong p50 %.2f p99 %.2f ms\n", k, g.n, g.near/g.n, float64(g.cpu)/float64(g.n)/1e6, float64(g.cpus[len(g.cpus)/2])/1e6, float64(g.cpus[len(g.cpus)*99/100])/1e6)
	}
}
