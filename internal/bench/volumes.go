package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume/volbench"
)

// VolumesOptions sizes the strategic volume measurements.
type VolumesOptions struct {
	Volumes     int // stored volumes of the check measurement
	Queries     int // conflict checks timed through the index
	ScanQueries int // conflict checks timed by scanning every volume (the baseline)
	// Writers is the number of concurrent writers of the dense-area
	// measurement; 0 skips it.
	Writers int
	Parties int // parties of the dense-area writers (at least 2)
	Seconds float64
	SideM   float64 // side of the busy square every dense-area volume overlaps
	// Dir is the directory of the dense-area SQLite store; "" uses a fresh
	// temporary one.
	Dir string
}

// VolumesResult is the JSON of `deconflict bench --volumes N --json`.
type VolumesResult struct {
	GOMAXPROCS  int                   `json:"gomaxprocs"`
	LoadAverage string                `json:"load_average"`
	Check       volbench.CheckReport  `json:"check"`
	Dense       *volbench.DenseReport `json:"dense,omitempty"`
}

// Volumes times conflict checks through the volume index against a scan of
// every volume (the answers must agree), then, with writers, many parties
// writing over one busy square on SQLite, checked afterwards from the store
// alone for a conflict committed unannounced. Either failure is an error
// returned with the result.
func Volumes(o VolumesOptions, log io.Writer) (VolumesResult, error) {
	res := VolumesResult{GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAverage: LoadAverage()}
	fmt.Fprintf(log, "bench --volumes: indexing %d synthetic volumes (load %s)\n", o.Volumes, res.LoadAverage)
	check, err := volbench.Check(o.Volumes, o.Queries, o.ScanQueries, log)
	if err != nil {
		return res, err
	}
	res.Check = check
	if check.Mismatches > 0 {
		return res, fmt.Errorf("the index disagrees with the scan on %d of %d checks", check.Mismatches, check.ScanQueries)
	}
	if o.Writers > 0 {
		d, err := denseOnSQLite(o, log)
		if err != nil {
			return res, err
		}
		res.Dense = &d
	}
	if res.Dense != nil && res.Dense.Unannounced > 0 {
		return res, fmt.Errorf("%d conflicting pairs were committed without a volume_conflict event", res.Dense.Unannounced)
	}
	return res, nil
}

// WriteText writes the result for a person.
func (res VolumesResult) WriteText(w io.Writer) error {
	c := res.Check
	fmt.Fprintf(w, "conflict check, %d volumes (GOMAXPROCS %d, load %s):\n", c.Volumes, res.GOMAXPROCS, res.LoadAverage)
	fmt.Fprintf(w, "  index: p50 %.1f us  p99 %.1f us  (%d checks, %.1f conflicts each on average)\n", c.IndexP50Us, c.IndexP99Us, c.Queries, c.MeanConflicts)
	fmt.Fprintf(w, "  scan:  p50 %.1f us  p99 %.1f us  (%d checks, same answers)\n", c.ScanP50Us, c.ScanP99Us, c.ScanQueries)
	if c.IndexCPUP50Us > 0 {
		fmt.Fprintf(w, "  thread CPU time: index p50 %.1f us  p99 %.1f us; scan p50 %.1f us  p99 %.1f us\n",
			c.IndexCPUP50Us, c.IndexCPUP99Us, c.ScanCPUP50Us, c.ScanCPUP99Us)
	}
	_, err := fmt.Fprintf(w, "  speed-up at p50: %.0fx\n", c.SpeedupP50)
	if d := res.Dense; d != nil {
		fmt.Fprintf(w, "dense area, %d writers of %d parties on SQLite for %.1f s:\n", d.Writers, d.Parties, d.Seconds)
		fmt.Fprintf(w, "  %.0f writes/s (%d writes: %d accepted, %d refused: %d missing key, %d priority, %d other)\n",
			d.WritesPerSecond, d.Writes, d.Accepted, d.Refused, d.RefusedKey, d.RefusedPriority, d.RefusedOther)
		_, err = fmt.Fprintf(w, "  afterwards: %d live volumes, %d conflicting pairs, %d unannounced\n", d.LiveVolumes, d.ConflictPairs, d.Unannounced)
	}
	return err
}

func denseOnSQLite(o VolumesOptions, log io.Writer) (volbench.DenseReport, error) {
	dir := o.Dir
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
	names := make([]string, o.Parties)
	for i := range names {
		names[i] = fmt.Sprintf("party%d", i+1)
	}
	d := time.Duration(o.Seconds * float64(time.Second))
	fmt.Fprintf(log, "bench --volumes: %d writers over one %.0f m square for %s on SQLite in %s\n", o.Writers, o.SideM, d, dir)
	return volbench.Dense(ctx, st, names, o.Writers, d, 0, o.SideM)
}
