package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/traffic"
)

func init() {
	registerBenchMode(benchMode{
		flag:    "",
		summary: "whole-airspace detection (--scenario global|theatre --aircraft N): full cycle and updates against brute force",
		run:     runBenchAirspace,
	})
}

// airspaceResult is the one JSON object `deconflict bench --json` prints.
type airspaceResult struct {
	Scenario          string  `json:"scenario"`
	Aircraft          int     `json:"aircraft"`
	Seed              uint64  `json:"seed"`
	Hubs              int     `json:"hubs,omitempty"`
	CellKM            float64 `json:"cell_km"`
	SliceS            float64 `json:"slice_s"`
	GOMAXPROCS        int     `json:"gomaxprocs"`
	Reports           int     `json:"reports"`
	IngestReportsPerS float64 `json:"ingest_reports_per_s"`
	SteadyReportsPerS float64 `json:"steady_ingest_reports_per_s"`
	Conflicts         int     `json:"conflicts"`
	FullCycleMs       float64 `json:"full_cycle_ms"`
	FullCycleRuns     int     `json:"full_cycle_runs"`
	FullCycleCPUMs    float64 `json:"full_cycle_cpu_ms"`
	BruteForceMs      float64 `json:"brute_force_ms"`
	BruteForceRuns    int     `json:"brute_force_runs"`
	BruteForceCPUMs   float64 `json:"brute_force_cpu_ms"`
	LoadAverage       string  `json:"load_average,omitempty"`
	Speedup           float64 `json:"speedup"`
	Updates           int     `json:"updates"`
	UpdateP50Us       float64 `json:"update_p50_us"`
	UpdateP99Us       float64 `json:"update_p99_us"`
	Identical         bool    `json:"identical"`
	Difference        string  `json:"difference,omitempty"`
	PeakRSSMiB        float64 `json:"peak_rss_mib"`
}

func runBenchAirspace(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "global", "traffic scenario: "+strings.Join(traffic.Scenarios(), " or "))
	n := fs.Int("aircraft", 25000, "number of aircraft")
	seed := fs.Uint64("seed", 1, "seed of the traffic generator")
	parties := fs.Int("parties", 4, "number of parties the aircraft belong to")
	hubs := fs.Int("hubs", traffic.DefaultHubs, "hubs of the global scenario")
	cellKM := fs.Float64("cell-km", detect.DefaultCellM/1000, "grid cell edge in km")
	sliceS := fs.Float64("slice-s", detect.DefaultSliceS, "grid time slice in seconds")
	repeats := fs.Int("repeats", 5, "full-cycle runs (the median is reported)")
	bruteRuns := fs.Int("brute-force-samples", 0, "brute-force runs (median reported); 0 = 3 up to 12,000 aircraft, else 1")
	updates := fs.Int("updates", 5000, "single-report updates timed")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	switch {
	case *n < 2:
		return usagef("--aircraft must be at least 2")
	case *hubs < 2:
		return usagef("--hubs must be at least 2")
	case *parties < 1:
		return usagef("--parties must be at least 1")
	case *cellKM <= 0:
		return usagef("--cell-km must be above zero")
	case *sliceS <= 0:
		return usagef("--slice-s must be above zero")
	case *repeats < 1:
		return usagef("--repeats must be at least 1")
	case *bruteRuns < 0:
		return usagef("--brute-force-samples must not be negative")
	case *updates < 1:
		return usagef("--updates must be at least 1")
	}
	if *bruteRuns == 0 {
		*bruteRuns = 3
		if *n > 12000 {
			*bruteRuns = 1
		}
	}
	progress := func(format string, a ...any) {
		fmt.Fprintf(stderr, "bench %s %d: "+format+"\n", append([]any{*scenario, *n}, a...)...)
	}

	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	reports, err := traffic.Generate(*scenario, traffic.Options{Aircraft: *n, Parties: *parties, Seed: *seed, Time: t0, Hubs: *hubs})
	if err != nil {
		return usageError{err}
	}
	r := rules.Default()
	eng := alert.NewEngineWith(r, alert.DefaultHysteresis(r), detect.Grid{CellM: *cellKM * 1000, SliceS: *sliceS}, nil)

	res := airspaceResult{Scenario: *scenario, Aircraft: *n, Seed: *seed, Hubs: *hubs, CellKM: *cellKM, SliceS: *sliceS, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	progress("ingesting %d reports", len(reports))
	start := time.Now()
	const batch = 1000
	for lo := 0; lo < len(reports); lo += batch {
		if _, err := eng.Ingest(reports[lo:min(lo+batch, len(reports))], t0); err != nil {
			return err
		}
	}
	res.IngestReportsPerS = float64(len(reports)) / time.Since(start).Seconds()
	res.Reports = len(reports)

	// One report in, alerts updated: each update moves a random aircraft
	// one second along its velocity.
	progress("timing %d single-report updates", *updates)
	rng := rand.New(rand.NewPCG(*seed, 0x5eed))
	latest := slices.Clone(reports)
	lat := make([]time.Duration, *updates)
	now := t0
	for i := range lat {
		k := rng.IntN(len(latest))
		next := traffic.Advance(latest[k], time.Second)
		latest[k] = next
		if next.Time.After(now) {
			now = next.Time
		}
		one := []track.Report{next}
		s := time.Now()
		if _, err := eng.Ingest(one, now); err != nil {
			return err
		}
		lat[i] = time.Since(s)
	}
	res.Reports += len(lat)
	res.Updates = len(lat)
	slices.Sort(lat)
	res.UpdateP50Us = float64(lat[len(lat)/2].Nanoseconds()) / 1e3
	res.UpdateP99Us = float64(lat[len(lat)*99/100].Nanoseconds()) / 1e3

	// Steady state: every aircraft reports again one second on, in
	// batches like the HTTP ingest receives.
	progress("ingesting a second round of %d reports", len(latest))
	for k := range latest {
		latest[k] = traffic.Advance(latest[k], time.Second)
		if latest[k].Time.After(now) {
			now = latest[k].Time
		}
	}
	start = time.Now()
	for lo := 0; lo < len(latest); lo += batch {
		if _, err := eng.Ingest(latest[lo:min(lo+batch, len(latest))], now); err != nil {
			return err
		}
	}
	res.SteadyReportsPerS = float64(len(latest)) / time.Since(start).Seconds()
	res.Reports += len(latest)

	var full []detect.Conflict
	var fullTimes, fullCPU []time.Duration
	for i := 0; i < *repeats; i++ {
		s, c := time.Now(), airspaceCPU()
		full = eng.FullCycle()
		fullTimes = append(fullTimes, time.Since(s))
		fullCPU = append(fullCPU, airspaceCPU()-c)
		progress("full cycle %d/%d: %v, %d conflicts", i+1, *repeats, fullTimes[i].Round(time.Microsecond), len(full))
	}
	states := eng.States()
	p := detect.ParamsFrom(r)
	var brute []detect.Conflict
	var bruteTimes, bruteCPU []time.Duration
	for i := 0; i < *bruteRuns; i++ {
		progress("brute force %d/%d over %d pairs", i+1, *bruteRuns, len(states)*(len(states)-1)/2)
		s, c := time.Now(), airspaceCPU()
		stop := airspaceTicker(30*time.Second, func(d time.Duration) {
			progress("brute force %d/%d still running, %v", i+1, *bruteRuns, d.Round(time.Second))
		})
		brute = detect.BruteForce(states, p)
		stop()
		bruteTimes = append(bruteTimes, time.Since(s))
		bruteCPU = append(bruteCPU, airspaceCPU()-c)
		progress("brute force %d/%d: %v", i+1, *bruteRuns, bruteTimes[i].Round(time.Millisecond))
	}
	incremental := eng.Conflicts()
	res.Conflicts = len(incremental)
	res.FullCycleRuns, res.BruteForceRuns = len(fullTimes), len(bruteTimes)
	res.FullCycleMs = airspaceMs(airspaceMedian(fullTimes))
	res.BruteForceMs = airspaceMs(airspaceMedian(bruteTimes))
	res.FullCycleCPUMs = airspaceMs(airspaceMedian(fullCPU))
	res.BruteForceCPUMs = airspaceMs(airspaceMedian(bruteCPU))
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAverage = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	res.Speedup = res.BruteForceMs / res.FullCycleMs
	same1, diff1 := detect.SameConflicts(full, brute)
	same2, diff2 := detect.SameConflicts(incremental, brute)
	res.Identical = same1 && same2
	switch {
	case !same1:
		res.Difference = "full cycle vs brute force: " + diff1
	case !same2:
		res.Difference = "incremental vs brute force: " + diff2
	}
	res.PeakRSSMiB = airspacePeakRSSMiB()

	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintf(w, "scenario %s, %d aircraft (%d parties, %d hubs, seed %d), grid %g km x %g s, GOMAXPROCS %d\n", res.Scenario, res.Aircraft, *parties, res.Hubs, res.Seed, res.CellKM, res.SliceS, res.GOMAXPROCS)
	fmt.Fprintf(w, "%-34s %14s\n", "measure", "value")
	row := func(name, v string) { fmt.Fprintf(w, "%-34s %14s\n", name, v) }
	row("reports ingested", strconv.Itoa(res.Reports))
	row("first ingest (batches of 1000), /s", fmt.Sprintf("%.0f", res.IngestReportsPerS))
	row("steady ingest (batches of 1000), /s", fmt.Sprintf("%.0f", res.SteadyReportsPerS))
	row("conflicts", strconv.Itoa(res.Conflicts))
	row(fmt.Sprintf("full cycle, median of %d", res.FullCycleRuns), fmt.Sprintf("%.2f ms", res.FullCycleMs))
	bruteLabel := fmt.Sprintf("brute force, median of %d", res.BruteForceRuns)
	if res.BruteForceRuns == 1 {
		bruteLabel = "brute force, measured once"
	}
	row(bruteLabel, fmt.Sprintf("%.1f ms", res.BruteForceMs))
	row("full cycle CPU (both cores)", fmt.Sprintf("%.2f ms", res.FullCycleCPUMs))
	row("brute force CPU", fmt.Sprintf("%.1f ms", res.BruteForceCPUMs))
	row("speedup (brute / full)", fmt.Sprintf("%.1fx", res.Speedup))
	row(fmt.Sprintf("update p50 (%d updates)", res.Updates), fmt.Sprintf("%.1f us", res.UpdateP50Us))
	row("update p99", fmt.Sprintf("%.1f us", res.UpdateP99Us))
	row("identical to brute force", strconv.FormatBool(res.Identical))
	row("peak RSS", fmt.Sprintf("%.0f MiB", res.PeakRSSMiB))
	row("load average at the end", res.LoadAverage)
	if res.Difference != "" {
		fmt.Fprintln(w, "difference:", res.Difference)
	}
	return w.Flush()
}

// airspaceTicker calls fn with the time elapsed every period until the
// returned stop is called, so that long runs show they are alive.
func airspaceTicker(period time.Duration, fn func(time.Duration)) (stop func()) {
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

// airspaceCPU is the CPU time the process used so far: on a shared
// machine it shows the work done, which wall time mixes with waiting.
func airspaceCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func airspaceMedian(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func airspaceMs(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// peakRSSMiB reads the process's high-water resident set (VmHWM), which
// covers what the Go runtime does not account for; 0 where /proc is absent.
func airspacePeakRSSMiB() float64 {
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
