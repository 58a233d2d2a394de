package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume/volbench"
)

func init() {
	registerBenchMode(benchMode{
		flag:    "--volumes",
		summary: "strategic volume checks (--volumes N): index against a scan of N volumes, and dense-area writes on SQLite",
		run:     runBenchVolumes,
	})
}

// volumesResult is the one JSON object `deconflict bench --volumes N --json`
// prints.
type volumesResult struct {
	GOMAXPROCS  int                   `json:"gomaxprocs"`
	LoadAverage string                `json:"load_average"`
	Check       volbench.CheckReport  `json:"check"`
	Dense       *volbench.DenseReport `json:"dense,omitempty"`
}

func runBenchVolumes(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --volumes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("volumes", 100_000, "number of stored volumes for the check benchmark")
	queries := fs.Int("queries", 5000, "conflict checks timed through the index")
	scans := fs.Int("scan-queries", 200, "conflict checks timed by scanning every volume (the baseline)")
	writers := fs.Int("writers", 16, "concurrent writers of the dense-area benchmark (0 skips it)")
	parties := fs.Int("parties", 4, "parties of the dense-area writers (at least 2)")
	seconds := fs.Float64("seconds", 10, "duration of the dense-area benchmark")
	sideM := fs.Float64("side-m", 1000, "side of the busy square every dense-area volume overlaps")
	dir := fs.String("dir", "", "directory of the SQLite store of the dense-area benchmark (default: a fresh temporary one)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	switch {
	case *n < 1:
		return usagef("--volumes must be at least 1")
	case *queries < 1 || *scans < 1:
		return usagef("--queries and --scan-queries must be at least 1")
	case *writers < 0:
		return usagef("--writers must not be negative")
	case *parties < 2:
		return usagef("--parties must be at least 2")
	case *seconds <= 0 || *sideM <= 0:
		return usagef("--seconds and --side-m must be above zero")
	}
	res := volumesResult{GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAverage: loadAverage()}
	fmt.Fprintf(stderr, "bench --volumes: indexing %d synthetic volumes (load %s)\n", *n, res.LoadAverage)
	check, err := volbench.Check(*n, *queries, *scans, stderr)
	if err != nil {
		return err
	}
	res.Check = check
	if check.Mismatches > 0 {
		return fmt.Errorf("the index disagrees with the scan on %d of %d checks", check.Mismatches, check.ScanQueries)
	}
	if *writers > 0 {
		d, err := denseOnSQLite(*dir, *writers, *parties, time.Duration(*seconds*float64(time.Second)), *sideM, stderr)
		if err != nil {
			return err
		}
		res.Dense = &d
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	c := res.Check
	fmt.Fprintf(stdout, "conflict check, %d volumes (GOMAXPROCS %d, load %s):\n", c.Volumes, res.GOMAXPROCS, res.LoadAverage)
	fmt.Fprintf(stdout, "  index: p50 %.1f us  p99 %.1f us  (%d checks, %.1f conflicts each on average)\n", c.IndexP50Us, c.IndexP99Us, c.Queries, c.MeanConflicts)
	fmt.Fprintf(stdout, "  scan:  p50 %.1f us  p99 %.1f us  (%d checks, same answers)\n", c.ScanP50Us, c.ScanP99Us, c.ScanQueries)
	if c.IndexCPUP50Us > 0 {
		fmt.Fprintf(stdout, "  thread CPU time: index p50 %.1f us  p99 %.1f us; scan p50 %.1f us  p99 %.1f us\n",
			c.IndexCPUP50Us, c.IndexCPUP99Us, c.ScanCPUP50Us, c.ScanCPUP99Us)
	}
	fmt.Fprintf(stdout, "  speed-up at p50: %.0fx\n", c.SpeedupP50)
	if d := res.Dense; d != nil {
		fmt.Fprintf(stdout, "dense area, %d writers of %d parties on SQLite for %.1f s:\n", d.Writers, d.Parties, d.Seconds)
		fmt.Fprintf(stdout, "  %.0f writes/s (%d writes: %d accepted, %d refused: %d missing key, %d priority, %d other)\n",
			d.WritesPerSecond, d.Writes, d.Accepted, d.Refused, d.RefusedKey, d.RefusedPriority, d.RefusedOther)
		fmt.Fprintf(stdout, "  afterwards: %d live volumes, %d conflicting pairs, %d unannounced\n", d.LiveVolumes, d.ConflictPairs, d.Unannounced)
	}
	if res.Dense != nil && res.Dense.Unannounced > 0 {
		return fmt.Errorf("%d conflicting pairs were committed without a volume_conflict event", res.Dense.Unannounced)
	}
	return nil
}

func denseOnSQLite(dir string, writers, parties int, d time.Duration, sideM float64, stderr io.Writer) (volbench.DenseReport, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "deconflict-bench-volumes-")
		if err != nil {
			return volbench.DenseReport{}, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		return volbench.DenseReport{}, err
	}
	defer st.Close()
	names := make([]string, parties)
	for i := range names {
		names[i] = fmt.Sprintf("party%d", i+1)
	}
	fmt.Fprintf(stderr, "bench --volumes: %d writers over one %.0f m square for %s on SQLite in %s\n", writers, sideM, d, dir)
	rep, err := volbench.Dense(ctx, st, names, writers, d, 0, sideM)
	if err != nil {
		return volbench.DenseReport{}, err
	}
	return rep, nil
}

// loadAverage is the one-minute load of the machine, for the record of a
// noisy measurement ("" where unknown).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
