package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/traffic"
)

// AirspaceOptions sizes the whole-airspace detection measurement.
type AirspaceOptions struct {
	Scenario string // one of traffic.Scenarios()
	Aircraft int
	Seed     uint64
	Parties  int // parties the aircraft belong to
	Hubs     int // hubs of the global and metro scenarios (0: the scenario's default)
	// CellKM and SliceS set the grid of every entry of the separation
	// table; zero sizes each by its reach (50 km x 60 s between manned
	// aircraft).
	CellKM float64
	SliceS float64
	// Repeats is the number of full cycles timed (the median is reported).
	Repeats int
	// BruteForceRuns is the number of brute-force runs timed; 0 means 3 up
	// to 12,000 aircraft, else 1.
	BruteForceRuns int
	// SkipBruteForce leaves the brute force out (minutes at 100,000
	// aircraft, for runs that measure only the engine): the result then
	// says the conflict sets were not compared.
	SkipBruteForce bool
	// Updates is the number of single-report updates timed.
	Updates int
	// CPUProfile, when set, receives a CPU profile of the run up to the
	// brute force (ingest, updates, full cycles).
	CPUProfile string
}

// AirspaceResult is the one JSON object `deconflict bench --json` prints.
type AirspaceResult struct {
	Scenario string  `json:"scenario"`
	Aircraft int     `json:"aircraft"`
	Seed     uint64  `json:"seed"`
	Parties  int     `json:"-"`
	Hubs     int     `json:"hubs,omitempty"`
	CellKM   float64 `json:"cell_km"`
	SliceS   float64 `json:"slice_s"`
	// Grids are the grids of the entries of the separation table that the
	// traffic's classes use ("manned-uas 16 km x 60 s x 427 m shells").
	Grids []string `json:"grids"`
	// Classes is the class mix: aircraft by class.
	Classes           map[string]int `json:"classes"`
	GOMAXPROCS        int            `json:"gomaxprocs"`
	Reports           int            `json:"reports"`
	IngestReportsPerS float64        `json:"ingest_reports_per_s"`
	SteadyReportsPerS float64        `json:"steady_ingest_reports_per_s"`
	Conflicts         int            `json:"conflicts"`
	FullCycleMs       float64        `json:"full_cycle_ms"`
	FullCycleRuns     int            `json:"full_cycle_runs"`
	FullCycleCPUMs    float64        `json:"full_cycle_cpu_ms"`
	BruteForceMs      float64        `json:"brute_force_ms"`
	BruteForceRuns    int            `json:"brute_force_runs"`
	BruteForceCPUMs   float64        `json:"brute_force_cpu_ms"`
	LoadAverage       string         `json:"load_average,omitempty"`
	Speedup           float64        `json:"speedup"`
	Updates           int            `json:"updates"`
	UpdateP50Us       float64        `json:"update_p50_us"`
	UpdateP99Us       float64        `json:"update_p99_us"`
	Identical         bool           `json:"identical"`
	// Compared is false when the brute force was skipped: Identical then
	// means nothing.
	Compared   bool    `json:"compared_with_brute_force"`
	Difference string  `json:"difference,omitempty"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// Airspace measures whole-airspace detection on generated traffic: a first
// ingest, single-report updates, a steady second round, then full cycles
// against brute force over every pair, whose conflict sets must be
// identical (Identical, else Difference says how they differ).
func Airspace(o AirspaceOptions, progress Progress) (AirspaceResult, error) {
	switch {
	case o.SkipBruteForce:
		o.BruteForceRuns = 0
	case o.BruteForceRuns == 0:
		o.BruteForceRuns = 3
		if o.Aircraft > 12000 {
			o.BruteForceRuns = 1
		}
	}
	say := func(format string, a ...any) {
		progress("%s %d: "+format, append([]any{o.Scenario, o.Aircraft}, a...)...)
	}

	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	reports, err := traffic.Generate(o.Scenario, traffic.Options{Aircraft: o.Aircraft, Parties: o.Parties, Seed: o.Seed, Time: t0, Hubs: o.Hubs})
	if err != nil {
		return AirspaceResult{}, err
	}
	r := rules.Default()
	eng := alert.NewEngineWith(r, alert.DefaultHysteresis(r), detect.Grid{CellM: o.CellKM * 1000, SliceS: o.SliceS}, nil)

	res := AirspaceResult{Scenario: o.Scenario, Aircraft: o.Aircraft, Seed: o.Seed, Parties: o.Parties, Hubs: o.Hubs,
		CellKM: o.CellKM, SliceS: o.SliceS, GOMAXPROCS: runtime.GOMAXPROCS(0), Classes: map[string]int{}}
	if res.Hubs == 0 {
		switch o.Scenario {
		case "global":
			res.Hubs = traffic.DefaultHubs
		case "metro":
			res.Hubs = traffic.MetroHubs
		}
	}
	for _, r := range reports {
		res.Classes[cmp.Or(r.Class, rules.ClassManned)]++
	}
	for i, g := range eng.Grids() {
		s := eng.Params().Table.Entries()[i].Rule
		if res.Classes[s.Classes[0]] > 0 && res.Classes[s.Classes[1]] > 0 {
			desc := fmt.Sprintf("%s-%s %g km x %g s", s.Classes[0], s.Classes[1], g.CellM/1000, g.SliceS)
			if g.ShellM > 0 {
				desc += fmt.Sprintf(" x %g m shells", g.ShellM)
			}
			res.Grids = append(res.Grids, desc)
		}
	}
	stopProfile, err := StartCPUProfile(o.CPUProfile)
	if err != nil {
		return res, err
	}
	stopProfile = sync.OnceFunc(stopProfile)
	defer stopProfile()
	say("ingesting %d reports", len(reports))
	start := time.Now()
	const batch = 1000
	for lo := 0; lo < len(reports); lo += batch {
		if _, err := eng.Ingest(reports[lo:min(lo+batch, len(reports))], t0); err != nil {
			return res, err
		}
	}
	res.IngestReportsPerS = float64(len(reports)) / time.Since(start).Seconds()
	res.Reports = len(reports)

	// One report in, alerts updated: each update moves a random aircraft
	// one second along its velocity.
	say("timing %d single-report updates", o.Updates)
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	latest := slices.Clone(reports)
	lat := make([]time.Duration, o.Updates)
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
			return res, err
		}
		lat[i] = time.Since(s)
	}
	res.Reports += len(lat)
	res.Updates = len(lat)
	res.UpdateP50Us = us(percentile(lat, 50))
	res.UpdateP99Us = us(percentile(lat, 99))

	// Steady state: every aircraft reports again one second on, in
	// batches like the HTTP ingest receives.
	say("ingesting a second round of %d reports", len(latest))
	for k := range latest {
		latest[k] = traffic.Advance(latest[k], time.Second)
		if latest[k].Time.After(now) {
			now = latest[k].Time
		}
	}
	start = time.Now()
	for lo := 0; lo < len(latest); lo += batch {
		if _, err := eng.Ingest(latest[lo:min(lo+batch, len(latest))], now); err != nil {
			return res, err
		}
	}
	res.SteadyReportsPerS = float64(len(latest)) / time.Since(start).Seconds()
	res.Reports += len(latest)

	// Each cycle writes over the previous cycle's result, as a service
	// running cycle after cycle would: a fresh result is 57 MB on metro
	// 100,000, whose allocation and first writes took 0.25 s of the 0.8 s
	// of CPU of a cycle.
	var full []detect.Conflict
	var fullTimes, fullCPU []time.Duration
	for i := 0; i < o.Repeats; i++ {
		s, c := time.Now(), cpuTime()
		full = eng.FullCycleInto(full)
		fullTimes = append(fullTimes, time.Since(s))
		fullCPU = append(fullCPU, cpuTime()-c)
		say("full cycle %d/%d: %v, %d conflicts", i+1, o.Repeats, fullTimes[i].Round(time.Microsecond), len(full))
	}
	stopProfile()
	states := eng.States()
	p := eng.Params()
	var brute []detect.Conflict
	var bruteTimes, bruteCPU []time.Duration
	for i := 0; i < o.BruteForceRuns; i++ {
		say("brute force %d/%d over %d pairs", i+1, o.BruteForceRuns, len(states)*(len(states)-1)/2)
		s, c := time.Now(), cpuTime()
		stop := every(30*time.Second, func(d time.Duration) {
			say("brute force %d/%d still running, %v", i+1, o.BruteForceRuns, d.Round(time.Second))
		})
		brute = detect.BruteForce(states, p)
		stop()
		bruteTimes = append(bruteTimes, time.Since(s))
		bruteCPU = append(bruteCPU, cpuTime()-c)
		say("brute force %d/%d: %v", i+1, o.BruteForceRuns, bruteTimes[i].Round(time.Millisecond))
	}
	incremental := eng.Conflicts()
	res.Conflicts = len(incremental)
	res.FullCycleRuns, res.BruteForceRuns = len(fullTimes), len(bruteTimes)
	res.FullCycleMs = ms(median(fullTimes))
	res.FullCycleCPUMs = ms(median(fullCPU))
	res.LoadAverage = LoadAverage()
	if o.SkipBruteForce {
		res.Difference = "not compared: the brute force was skipped (--skip-brute-force)"
		res.PeakRSSMiB = peakRSSMiB()
		return res, nil
	}
	res.Compared = true
	res.BruteForceMs = ms(median(bruteTimes))
	res.BruteForceCPUMs = ms(median(bruteCPU))
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
	res.PeakRSSMiB = peakRSSMiB()
	return res, nil
}

// WriteText writes the result as a table.
func (res AirspaceResult) WriteText(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "scenario %s, %d aircraft (%d parties, %d hubs, seed %d), GOMAXPROCS %d\n", res.Scenario, res.Aircraft, res.Parties, res.Hubs, res.Seed, res.GOMAXPROCS)
	classes := slices.Sorted(maps.Keys(res.Classes))
	for i, c := range classes {
		classes[i] = fmt.Sprintf("%s %d", c, res.Classes[c])
	}
	fmt.Fprintf(w, "classes: %s; grids: %s\n", strings.Join(classes, ", "), strings.Join(res.Grids, ", "))
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
	if res.Compared {
		row(bruteLabel, fmt.Sprintf("%.1f ms", res.BruteForceMs))
	}
	row("full cycle CPU (both cores)", fmt.Sprintf("%.2f ms", res.FullCycleCPUMs))
	if res.Compared {
		row("brute force CPU", fmt.Sprintf("%.1f ms", res.BruteForceCPUMs))
		row("speedup (brute / full)", fmt.Sprintf("%.1fx", res.Speedup))
	}
	row(fmt.Sprintf("update p50 (%d updates)", res.Updates), fmt.Sprintf("%.1f us", res.UpdateP50Us))
	row("update p99", fmt.Sprintf("%.1f us", res.UpdateP99Us))
	identical := strconv.FormatBool(res.Identical)
	if !res.Compared {
		identical = "not compared"
	}
	row("identical to brute force", identical)
	row("peak RSS", fmt.Sprintf("%.0f MiB", res.PeakRSSMiB))
	row("load average at the end", res.LoadAverage)
	if res.Difference != "" {
		fmt.Fprintln(w, "difference:", res.Difference)
	}
	return w.Flush()
}
