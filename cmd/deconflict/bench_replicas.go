package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
)

func init() {
	registerBenchMode(benchMode{
		flag:    "--replicas",
		summary: "HTTP ingest and report-to-SSE alert latency: two replicas on PostgreSQL next to one on SQLite",
		run:     runBenchReplicas,
	})
}

// replicaBenchSide is the measurement of one deployment.
type replicaBenchSide struct {
	Deployment      string  `json:"deployment"`
	Replicas        int     `json:"replicas"`
	IngestReportsPS float64 `json:"ingest_reports_per_s"`
	IdleP50Ms       float64 `json:"idle_latency_p50_ms"`
	IdleP99Ms       float64 `json:"idle_latency_p99_ms"`
	LoadReportsPS   float64 `json:"load_during_latency_reports_per_s"`
	LoadP50Ms       float64 `json:"latency_p50_ms"`
	LoadP99Ms       float64 `json:"latency_p99_ms"`
	Samples         int     `json:"latency_samples"`
}

type replicaBenchParams struct {
	aircraft, batch, clients, samples int
	dur                               time.Duration
	progress                          func(string, ...any)
}

func runBenchReplicas(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --replicas", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("replicas", true, "select this mode")
	storeURL := fs.String("store", os.Getenv("DECONFLICT_BENCH_STORE"), "an EMPTY PostgreSQL database (postgres://...); empty starts a throwaway cluster with the PostgreSQL binaries installed here (env DECONFLICT_BENCH_STORE)")
	p := replicaBenchParams{}
	fs.IntVar(&p.aircraft, "aircraft", 10_000, "tracks in the airspace")
	fs.IntVar(&p.batch, "batch", 1000, "reports per request")
	fs.IntVar(&p.clients, "clients", 4, "concurrent ingest clients, spread over the replicas")
	fs.DurationVar(&p.dur, "duration", 10*time.Second, "length of each ingest measurement")
	fs.IntVar(&p.samples, "samples", 100, "conflicts created for each latency measurement")
	asJSON := fs.Bool("json", false, "print one JSON array")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if p.aircraft < 2 || p.batch < 1 || p.clients < 1 || p.samples < 1 {
		return usagef("--aircraft >= 2, --batch, --clients and --samples >= 1")
	}
	p.progress = func(format string, a ...any) { fmt.Fprintf(stderr, "bench --replicas: "+format+"\n", a...) }

	// Baseline, in the same process: one replica on the embedded store.
	dir, lite, closeLite, err := tempSQLite("deconflict-bench-replicas-")
	if err != nil {
		return err
	}
	defer closeLite()
	p.progress("one replica on SQLite")
	one, err := benchDeployment("1 replica, SQLite", []store.Store{lite}, dir, p)
	if err != nil {
		return err
	}

	url := *storeURL
	if url == "" {
		p.progress("starting a throwaway PostgreSQL")
		c, err := pgtest.Start()
		if err != nil {
			return fmt.Errorf("no --store given and no PostgreSQL to start: %w", err)
		}
		defer c.Stop()
		if _, url, err = c.CreateDatabase(context.Background()); err != nil {
			return err
		}
	}
	var stores []store.Store
	for range 2 {
		// One pool each, as two processes would have.
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			return err
		}
		defer st.Close()
		stores = append(stores, st)
	}
	p.progress("two replicas on PostgreSQL")
	two, err := benchDeployment("2 replicas, PostgreSQL", stores, dir, p)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode([]replicaBenchSide{one, two})
	}
	fmt.Fprintf(stdout, "%d tracks, batches of %d, %d clients spread over the replicas, %v per ingest run\n", p.aircraft, p.batch, p.clients, p.dur)
	fmt.Fprintf(stdout, "%-24s %14s %22s %30s\n", "", "ingest", "latency, no load", "latency under half that load")
	for _, s := range []replicaBenchSide{one, two} {
		fmt.Fprintf(stdout, "%-24s %10.0f r/s   p50 %6.1f p99 %6.1f ms   p50 %6.1f p99 %6.1f ms at %.0f r/s\n",
			s.Deployment, s.IngestReportsPS, s.IdleP50Ms, s.IdleP99Ms, s.LoadP50Ms, s.LoadP99Ms, s.LoadReportsPS)
	}
	if one.IngestReportsPS > 0 {
		fmt.Fprintf(stdout, "ratio ingest 2 replicas on PostgreSQL / 1 on SQLite: %.2f\n", two.IngestReportsPS/one.IngestReportsPS)
	}
	return nil
}

// benchDeployment runs one in-process server per store (the replicas of
// one deployment), and measures ingest and latency through them: the
// clients are spread over the replicas, and in each encounter the two
// aircraft are reported to different replicas and each party's stream is
// on a different replica.
func benchDeployment(name string, stores []store.Store, dataDir string, p replicaBenchParams) (replicaBenchSide, error) {
	res := replicaBenchSide{Deployment: name, Replicas: len(stores)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bases, tokens, wait, err := benchServers(ctx, stores, dataDir)
	defer func() {
		cancel()
		_ = wait()
	}()
	if err != nil {
		return res, err
	}
	if len(stores) > 1 {
		// The first replica takes the detection lease at once; give the
		// relays a moment to listen.
		time.Sleep(time.Second)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	fleet, err := benchTraffic("global", p.aircraft, 1)
	if err != nil {
		return res, err
	}
	byParty := groupByParty(fleet)
	p.progress("%s: loading %d tracks", name, p.aircraft)
	if err := loadTracks(client, bases, tokens, byParty, p.batch); err != nil {
		return res, err
	}
	var encounter int
	idle, err := measureLatency(ctx, client, bases, tokens, max(p.samples/2, 1), &encounter)
	if err != nil {
		return res, err
	}
	res.IdleP50Ms, res.IdleP99Ms = pct(idle, 50), pct(idle, 99)

	p.progress("%s: ingest for %v", name, p.dur)
	load := startIngest(ctx, client, bases, tokens, byParty, p.clients, p.batch)
	defer load.cancel()
	time.Sleep(p.dur)
	res.IngestReportsPS = load.rate()
	if err := load.err(); err != nil {
		return res, err
	}
	res.LoadReportsPS = res.IngestReportsPS / 2
	load.pace(res.LoadReportsPS)
	p.progress("%s: %.0f reports/s; latency under %.0f reports/s", name, res.IngestReportsPS, res.LoadReportsPS)
	lat, err := measureLatency(ctx, client, bases, tokens, p.samples, &encounter)
	load.stop()
	if err != nil {
		return res, err
	}
	res.LoadP50Ms, res.LoadP99Ms, res.Samples = pct(lat, 50), pct(lat, 99), len(lat)
	return res, nil
}
