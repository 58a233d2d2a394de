package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
)

// ReplicasOptions sizes the scale-out measurement.
type ReplicasOptions struct {
	// StoreURL is an EMPTY PostgreSQL database (postgres://...); "" starts
	// a throwaway cluster with the PostgreSQL binaries installed here.
	StoreURL string
	LoadOptions
}

// ReplicaSide is the measurement of one deployment; `deconflict bench
// --replicas --json` prints an array of two.
type ReplicaSide struct {
	Deployment      string  `json:"deployment"`
	Replicas        int     `json:"replicas"`
	IngestReportsPS float64 `json:"ingest_reports_per_s"`
	IdleP50Ms       float64 `json:"idle_latency_p50_ms"`
	IdleP99Ms       float64 `json:"idle_latency_p99_ms"`
	LoadReportsPS   float64 `json:"load_during_latency_reports_per_s"`
	LoadP50Ms       float64 `json:"latency_p50_ms"`
	LoadP99Ms       float64 `json:"latency_p99_ms"`
	Samples         int     `json:"latency_samples"`
	LoadAverage     string  `json:"load_average"`
}

// Replicas measures ingest and latency through two replicas on one
// PostgreSQL next to one replica on SQLite (the baseline, in the same
// process).
func Replicas(ctx context.Context, o ReplicasOptions, progress Progress) ([]ReplicaSide, error) {
	dir, lite, closeLite, err := tempSQLite("deconflict-bench-replicas-")
	if err != nil {
		return nil, err
	}
	defer closeLite()
	progress("one replica on SQLite")
	one, err := measureDeployment(ctx, "1 replica, SQLite", []store.Store{lite}, dir, o, progress)
	if err != nil {
		return nil, err
	}

	url := o.StoreURL
	if url == "" {
		progress("starting a throwaway PostgreSQL")
		c, err := pgtest.Start()
		if err != nil {
			return nil, fmt.Errorf("no PostgreSQL database given and none to start: %w", err)
		}
		defer c.Stop()
		if _, url, err = c.CreateDatabase(ctx); err != nil {
			return nil, err
		}
	}
	var stores []store.Store
	for range 2 {
		// One pool each, as two processes would have.
		st, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		stores = append(stores, st)
	}
	progress("two replicas on PostgreSQL")
	two, err := measureDeployment(ctx, "2 replicas, PostgreSQL", stores, dir, o, progress)
	if err != nil {
		return nil, err
	}
	return []ReplicaSide{one, two}, nil
}

// WriteReplicasText writes the two sides of Replicas for a person.
func WriteReplicasText(w io.Writer, o ReplicasOptions, sides []ReplicaSide) error {
	fmt.Fprintf(w, "%d tracks, batches of %d, %d clients spread over the replicas, %v per ingest run\n", o.Aircraft, o.Batch, o.Clients, o.Duration)
	fmt.Fprintf(w, "%-24s %14s %22s %30s\n", "", "ingest", "latency, no load", "latency under half that load")
	for _, s := range sides {
		fmt.Fprintf(w, "%-24s %10.0f r/s   p50 %6.1f p99 %6.1f ms   p50 %6.1f p99 %6.1f ms at %.0f r/s (load %s)\n",
			s.Deployment, s.IngestReportsPS, s.IdleP50Ms, s.IdleP99Ms, s.LoadP50Ms, s.LoadP99Ms, s.LoadReportsPS, s.LoadAverage)
	}
	if len(sides) == 2 && sides[0].IngestReportsPS > 0 {
		fmt.Fprintf(w, "ratio ingest 2 replicas on PostgreSQL / 1 on SQLite: %.2f\n", sides[1].IngestReportsPS/sides[0].IngestReportsPS)
	}
	return nil
}

// measureDeployment runs one in-process server per store (the replicas of
// one deployment), and measures ingest and latency through them: the
// clients are spread over the replicas, and in each encounter the two
// aircraft are reported to different replicas and each party's stream is
// on a different replica.
func measureDeployment(ctx context.Context, name string, stores []store.Store, dataDir string, o ReplicasOptions, progress Progress) (ReplicaSide, error) {
	res := ReplicaSide{Deployment: name, Replicas: len(stores)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d, err := startDeployment(ctx, stores, dataDir, deploymentOptions{})
	defer func() {
		cancel()
		_ = d.wait()
	}()
	if err != nil {
		return res, err
	}
	if len(stores) > 1 {
		// The first replica takes the detection lease at once; give the
		// relays a moment to listen.
		time.Sleep(time.Second)
	}
	aircraft, err := fleet("global", o.Aircraft, 1)
	if err != nil {
		return res, err
	}
	byParty := groupByParty(aircraft)
	progress("%s: loading %d tracks", name, o.Aircraft)
	if err := loadTracks(ctx, d, byParty, o.Batch); err != nil {
		return res, err
	}
	var encounter int
	idle, err := measureLatency(ctx, d, max(o.Samples/2, 1), &encounter)
	if err != nil {
		return res, err
	}
	res.IdleP50Ms, res.IdleP99Ms = ms(percentile(idle, 50)), ms(percentile(idle, 99))

	progress("%s: ingest for %v", name, o.Duration)
	load := startIngest(ctx, d, byParty, o.Clients, o.Batch)
	defer load.cancel()
	time.Sleep(o.Duration)
	res.IngestReportsPS = load.rate()
	if err := load.err(); err != nil {
		return res, err
	}
	res.LoadReportsPS = res.IngestReportsPS / 2
	load.pace(res.LoadReportsPS)
	progress("%s: %.0f reports/s; latency under %.0f reports/s", name, res.IngestReportsPS, res.LoadReportsPS)
	lat, err := measureLatency(ctx, d, o.Samples, &encounter)
	load.stop()
	if err != nil {
		return res, err
	}
	res.LoadP50Ms, res.LoadP99Ms, res.Samples = ms(percentile(lat, 50)), ms(percentile(lat, 99)), len(lat)
	res.LoadAverage = LoadAverage()
	return res, nil
}
