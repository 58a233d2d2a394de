package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/traffic"
	"github.com/deconflict/deconflict/internal/volume"
)

func init() {
	registerBenchMode(benchMode{
		flag:    "--startup",
		summary: "server start time on a data directory holding N volumes, against an empty one",
		run:     runBenchStartup,
	})
}

type startupResult struct {
	Volumes       int     `json:"volumes"`
	FillS         float64 `json:"fill_s"`
	EmptyStartMs  float64 `json:"empty_start_ms"`
	FullStartMs   float64 `json:"full_start_ms"`
	Ratio         float64 `json:"full_over_empty"`
	Runs          int     `json:"runs"`
	VolumesServed int     `json:"volumes_served"`
}

func runBenchStartup(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --startup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("startup", true, "select this mode")
	n := fs.Int("volumes", 100_000, "volumes in the data directory")
	runs := fs.Int("runs", 3, "starts measured on each directory (median)")
	keep := fs.String("dir", "", "data directory holding the volumes: filled when it has no store yet, kept afterwards (default: a temp dir)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the starts with volumes to this file")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *n < 0 || *runs < 1 {
		return usagef("--volumes >= 0 and --runs >= 1")
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "bench --startup: "+format+"\n", a...) }
	res := startupResult{Volumes: *n, Runs: *runs}

	empty, err := os.MkdirTemp("", "deconflict-start-empty-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(empty)
	full := *keep
	fill := true
	if full == "" {
		if full, err = os.MkdirTemp("", "deconflict-start-full-"); err != nil {
			return err
		}
		defer os.RemoveAll(full)
	} else if _, err := os.Stat(filepath.Join(full, sqlite.FileName)); err == nil {
		fill = false
	} else if err := os.MkdirAll(full, 0o700); err != nil {
		return err
	}
	if fill {
		progress("filling a data directory with %d volumes", *n)
		t0 := time.Now()
		if err := fillVolumes(full, *n, progress); err != nil {
			return err
		}
		res.FillS = time.Since(t0).Seconds()
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()

	var emptyT, fullT []time.Duration
	for i := 0; i < *runs; i++ {
		d, _, err := timeStart(empty)
		if err != nil {
			return err
		}
		emptyT = append(emptyT, d)
		d, served, err := timeStart(full)
		if err != nil {
			return err
		}
		fullT = append(fullT, d)
		res.VolumesServed = served
		progress("run %d: empty %v, %d volumes %v", i+1, emptyT[i], *n, d)
	}
	slices.Sort(emptyT)
	slices.Sort(fullT)
	res.EmptyStartMs = ms(emptyT[len(emptyT)/2])
	res.FullStartMs = ms(fullT[len(fullT)/2])
	res.Ratio = res.FullStartMs / res.EmptyStartMs
	if res.VolumesServed != *n {
		return fmt.Errorf("the started server holds %d volumes, want %d", res.VolumesServed, *n)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "server start (open store, load rules and volume index, listen), median of %d\n", res.Runs)
	fmt.Fprintf(stdout, "  empty data directory:      %8.1f ms\n", res.EmptyStartMs)
	fmt.Fprintf(stdout, "  with %7d volumes:       %8.1f ms\n", res.Volumes, res.FullStartMs)
	fmt.Fprintf(stdout, "  ratio:                     %8.1f\n", res.Ratio)
	return nil
}

// svcOperator reads every volume (reduced) in the start measurement.
var svcOperator = party.Principal{Party: party.OperatorName, Operator: true}

// timeStart measures from opening the store to the server listening, then
// shuts the server down; it returns how many volumes the server holds.
func timeStart(dir string) (time.Duration, int, error) {
	t0 := time.Now()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var took time.Duration
	var served int
	err = server.Run(ctx, server.Config{
		Store: st, DataDir: dir, Listen: "127.0.0.1:0",
		Ready: func(_ string, svc *service.Service) {
			took = time.Since(t0)
			vs, err := svc.QueryVolumes(svcOperator, nil, -1e9, 1e9, time.Unix(0, 0), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))
			if err == nil {
				served = len(vs)
			}
			cancel()
		},
	})
	return took, served, err
}

// fillPerTx is how many volumes one fill transaction stores.
const fillPerTx = 100

// fillVolumes stores n volumes of four parties through the volume registry,
// fillPerTx per transaction: circles of 2 to 10 km and polygons, spread over the
// world in four longitude bands (one per party, so that none needs a key),
// windows over the next day.
func fillVolumes(dir string, n int, progress func(string, ...any)) error {
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		return err
	}
	defer st.Close()
	rl := rules.Default()
	reg := volume.NewRegistry(rl)
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now().UTC().Truncate(time.Second)
	made := 0
	for made < n {
		var results []volume.Result
		err := st.Update(context.Background(), func(tx store.Tx) error {
			results = results[:0]
			for i := made; i < min(made+fillPerTx, n); i++ {
				p := i % 4
				lon := -180 + float64(p)*90 + 2 + rng.Float64()*86
				lat := -60 + rng.Float64()*120
				start := now.Add(time.Duration(rng.IntN(20*3600)) * time.Second)
				in := volume.Input{
					AltLowerM: float64(rng.IntN(10)) * 1000, Start: start, End: start.Add(time.Duration(1+rng.IntN(3)) * time.Hour),
					State: volume.Accepted, Details: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`),
				}
				in.AltUpperM = in.AltLowerM + 1000
				r := 2000 + rng.Float64()*8000
				if i%3 == 0 {
					d := r / 111_000
					in.Footprint = volume.Footprint{Type: "Polygon", Coordinates: [][][]float64{{
						{lon - d, lat - d}, {lon + d, lat - d}, {lon + d, lat + d}, {lon - d, lat + d}, {lon - d, lat - d}}}}
				} else {
					in.Footprint = volume.Footprint{Type: "Circle", Center: []float64{lon, lat}, RadiusM: r}
				}
				res, err := reg.Create(tx, "party"+strconv.Itoa(p), in, nil, rl, now)
				if err != nil {
					return fmt.Errorf("volume %d: %w", i, err)
				}
				results = append(results, res)
			}
			return nil
		})
		if err != nil {
			return err
		}
		reg.Apply(results...)
		made += len(results)
		if made%20_000 == 0 {
			progress("%d volumes stored", made)
		}
	}
	if made != n {
		return errors.New("fill: count mismatch")
	}
	return nil
}

func init() {
	registerBenchMode(benchMode{
		flag:    "--http",
		summary: "HTTP position ingest (reports/s) and report-to-SSE alert latency against the in-process engine",
		run:     runBenchHTTP,
	})
}

type httpBenchResult struct {
	Scenario            string  `json:"scenario"`
	Aircraft            int     `json:"aircraft"`
	Batch               int     `json:"batch"`
	Clients             int     `json:"clients"`
	DurationS           float64 `json:"duration_s"`
	HTTPReportsPerS     float64 `json:"http_reports_per_s"`
	BaselineReportsPerS float64 `json:"baseline_engine_reports_per_s"`
	HTTPOverBaseline    float64 `json:"http_over_baseline"`
	AlertsAtEnd         int     `json:"open_alerts_at_end"`
	IdleP50Ms           float64 `json:"idle_latency_p50_ms"`
	IdleP99Ms           float64 `json:"idle_latency_p99_ms"`
	LatencySamples      int     `json:"latency_samples"`
	LatencyP50Ms        float64 `json:"latency_p50_ms"`
	LatencyP99Ms        float64 `json:"latency_p99_ms"`
	LatencyMaxMs        float64 `json:"latency_max_ms"`
	LatencyUnderLoad    bool    `json:"latency_under_load"`
	// LoadDuringLatencyPerS is the ingest rate kept up while latency is
	// measured under load.
	LoadDuringLatencyPerS float64 `json:"load_during_latency_reports_per_s"`
}

func runBenchHTTP(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("http", true, "select this mode")
	n := fs.Int("aircraft", 25_000, "tracks in the airspace")
	scenario := fs.String("scenario", "global", "traffic: "+strings.Join(traffic.Scenarios(), " or "))
	batch := fs.Int("batch", 1000, "reports per request")
	clients := fs.Int("clients", 4, "concurrent ingest clients")
	dur := fs.Duration("duration", 10*time.Second, "length of the ingest measurement")
	samples := fs.Int("samples", 200, "conflicts created for the latency measurement")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *n < 2 || *batch < 1 || *clients < 1 || *samples < 1 {
		return usagef("--aircraft >= 2, --batch, --clients and --samples >= 1")
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "bench --http: "+format+"\n", a...) }

	res := httpBenchResult{Scenario: *scenario, Aircraft: *n, Batch: *batch, Clients: *clients, LatencyUnderLoad: true}
	// The latency encounters are numbered across both measurements, so
	// that each is a new pair with a new alert.
	var encounter int

	// Baseline: the same batches straight into the engine, no HTTP, no JSON.
	progress("baseline: in-process engine ingest of %d aircraft", *n)
	base, err := benchTraffic(*scenario, *n, 1)
	if err != nil {
		return usageError{err}
	}
	res.BaselineReportsPerS = baselineIngest(base, *batch, *dur/2)

	dir, st, closeStore, err := tempSQLite("deconflict-bench-http-")
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bases, tokens, waitServer, err := benchServers(ctx, []store.Store{st}, dir)
	if err != nil {
		cancel()
		_ = waitServer()
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	fleet, err := benchTraffic(*scenario, *n, 1)
	if err != nil {
		return err
	}
	byParty := groupByParty(fleet)
	// Warm up: every aircraft reported once, so that the ingest phase runs
	// with all tracks live.
	progress("loading %d tracks", *n)
	if err := loadTracks(client, bases, tokens, byParty, *batch); err != nil {
		return err
	}

	progress("latency with %d tracks and no other load", *n)
	idle, err := measureLatency(ctx, client, bases, tokens, max(*samples/2, 1), &encounter)
	if err != nil {
		return err
	}
	res.IdleP50Ms, res.IdleP99Ms = pct(idle, 50), pct(idle, 99)

	// Ingest: each client owns a slice of one party's aircraft and reports
	// it over and over, dead-reckoned to the wall clock.
	progress("ingest for %v with %d clients", *dur, *clients)
	load := startIngest(ctx, client, bases, tokens, byParty, *clients, *batch)
	defer load.cancel()
	time.Sleep(*dur)
	elapsed := time.Since(load.start)
	res.DurationS = elapsed.Seconds()
	res.HTTPReportsPerS = float64(load.sent.Load()) / elapsed.Seconds()
	if err := load.err(); err != nil {
		return err
	}
	// Latency is measured under a sustained load the server keeps up with
	// (half the rate just measured), not under saturation, where it only
	// measures the length of the queue.
	res.LoadDuringLatencyPerS = res.HTTPReportsPerS / 2
	load.pace(res.LoadDuringLatencyPerS)
	progress("ingest: %.0f reports/s; measuring latency under a load of %.0f reports/s", res.HTTPReportsPerS, res.LoadDuringLatencyPerS)

	lat, err := measureLatency(ctx, client, bases, tokens, *samples, &encounter)
	load.stop()
	if err != nil {
		return err
	}
	res.LatencySamples = len(lat)
	res.LatencyP50Ms = pct(lat, 50)
	res.LatencyP99Ms = pct(lat, 99)
	res.LatencyMaxMs = ms(lat[len(lat)-1])
	if res.BaselineReportsPerS > 0 {
		res.HTTPOverBaseline = res.HTTPReportsPerS / res.BaselineReportsPerS
	}
	var alerts struct{ Alerts []json.RawMessage }
	if b, err := get(client, bases[0]+"/v1/alerts", tokens["coalition"]); err == nil {
		_ = json.Unmarshal(b, &alerts)
		res.AlertsAtEnd = len(alerts.Alerts)
	}
	cancel()
	if err := waitServer(); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "HTTP ingest, scenario %s, %d tracks, batches of %d, %d clients, %.1f s\n", res.Scenario, res.Aircraft, res.Batch, res.Clients, res.DurationS)
	fmt.Fprintf(stdout, "  over HTTP (JSON, auth, validation, detection, commit): %10.0f reports/s\n", res.HTTPReportsPerS)
	fmt.Fprintf(stdout, "  baseline (engine in process, no HTTP):                %10.0f reports/s\n", res.BaselineReportsPerS)
	fmt.Fprintf(stdout, "  ratio HTTP / baseline:                                %10.2f\n", res.HTTPOverBaseline)
	fmt.Fprintf(stdout, "report -> alert_raised at both parties' SSE clients:\n")
	fmt.Fprintf(stdout, "  no other load:        p50 %7.2f ms   p99 %7.2f ms\n", res.IdleP50Ms, res.IdleP99Ms)
	fmt.Fprintf(stdout, "  under %.0f reports/s:  p50 %7.2f ms   p99 %7.2f ms   max %.2f ms (%d conflicts)\n", res.LoadDuringLatencyPerS, res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs, res.LatencySamples)
	return nil
}

// baselineIngest feeds the engine the same kind of batches in process for
// about d and returns reports/s.
func baselineIngest(traffic []benchAircraft, batch int, d time.Duration) float64 {
	eng := alert.NewEngine(rules.Default(), nil)
	reports := make([]track.Report, len(traffic))
	fill := func(now time.Time) {
		for i := range traffic {
			a := &traffic[i]
			reports[i] = track.Report{Party: a.party, Aircraft: a.id, Pos: geo.LLA{LatDeg: a.latDeg, LonDeg: a.lonDeg, AltM: a.altM},
				VelEastMps: a.velEastMps, VelNorthMps: a.velNorthMps, Time: now}
		}
	}
	now := time.Now()
	fill(now)
	for i := 0; i < len(reports); i += batch {
		_, _ = eng.Ingest(reports[i:min(i+batch, len(reports))], now)
	}
	var n int
	start := time.Now()
	for time.Since(start) < d {
		now := time.Now()
		advance(traffic, 1)
		fill(now)
		for i := 0; i < len(reports); i += batch {
			_, _ = eng.Ingest(reports[i:min(i+batch, len(reports))], now)
			n += min(batch, len(reports)-i)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

func get(client *http.Client, url, token string) ([]byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
