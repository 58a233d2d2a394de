package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/track"
)

// LoadOptions sizes the load of the HTTP measurements (HTTP and
// Replicas).
type LoadOptions struct {
	Aircraft int           // tracks in the airspace
	Batch    int           // reports per request
	Clients  int           // concurrent ingest clients, spread over the replicas
	Duration time.Duration // length of an ingest measurement
	Samples  int           // conflicts created for a latency measurement under load
}

// HTTPOptions sizes the HTTP ingest and latency measurement.
type HTTPOptions struct {
	Scenario string // traffic, one of traffic.Scenarios()
	LoadOptions
	// CPUProfile, when set, receives a CPU profile of the whole run.
	CPUProfile string
}

// HTTPResult is the JSON of `deconflict bench --http --json`.
type HTTPResult struct {
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
	LoadAverage           string  `json:"load_average"`
}

// HTTP measures position ingest through the real server in process
// (embedded SQLite, JSON, auth, validation, detection, commit) against the
// same batches fed straight into the engine, and the time from a report to
// the alert_raised event at both parties' event streams, first with no
// other load, then under half the ingest rate just measured.
func HTTP(ctx context.Context, o HTTPOptions, progress Progress) (HTTPResult, error) {
	stopProfile, err := StartCPUProfile(o.CPUProfile)
	if err != nil {
		return HTTPResult{}, err
	}
	defer stopProfile()
	res := HTTPResult{Scenario: o.Scenario, Aircraft: o.Aircraft, Batch: o.Batch, Clients: o.Clients, LatencyUnderLoad: true}
	// The latency encounters are numbered across both measurements, so
	// that each is a new pair with a new alert.
	var encounter int

	// Baseline: the same batches straight into the engine, no HTTP, no JSON.
	progress("baseline: in-process engine ingest of %d aircraft", o.Aircraft)
	base, err := fleet(o.Scenario, o.Aircraft, 1)
	if err != nil {
		return res, err
	}
	res.BaselineReportsPerS = baselineIngest(base, o.Batch, o.Duration/2)

	dir, st, closeStore, err := tempSQLite("deconflict-bench-http-")
	if err != nil {
		return res, err
	}
	defer closeStore()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d, err := startDeployment(ctx, []store.Store{st}, dir)
	if err != nil {
		cancel()
		_ = d.wait()
		return res, err
	}

	aircraft, err := fleet(o.Scenario, o.Aircraft, 1)
	if err != nil {
		return res, err
	}
	byParty := groupByParty(aircraft)
	// Warm up: every aircraft reported once, so that the ingest phase runs
	// with all tracks live.
	progress("loading %d tracks", o.Aircraft)
	if err := loadTracks(ctx, d, byParty, o.Batch); err != nil {
		return res, err
	}

	progress("latency with %d tracks and no other load", o.Aircraft)
	idle, err := measureLatency(ctx, d, max(o.Samples/2, 1), &encounter)
	if err != nil {
		return res, err
	}
	res.IdleP50Ms, res.IdleP99Ms = ms(percentile(idle, 50)), ms(percentile(idle, 99))

	// Ingest: each client owns a slice of one party's aircraft and reports
	// it over and over, dead-reckoned to the wall clock.
	progress("ingest for %v with %d clients", o.Duration, o.Clients)
	load := startIngest(ctx, d, byParty, o.Clients, o.Batch)
	defer load.cancel()
	time.Sleep(o.Duration)
	elapsed := time.Since(load.start)
	res.DurationS = elapsed.Seconds()
	res.HTTPReportsPerS = float64(load.sent.Load()) / elapsed.Seconds()
	if err := load.err(); err != nil {
		return res, err
	}
	// Latency is measured under a sustained load the server keeps up with
	// (half the rate just measured), not under saturation, where it only
	// measures the length of the queue.
	res.LoadDuringLatencyPerS = res.HTTPReportsPerS / 2
	load.pace(res.LoadDuringLatencyPerS)
	progress("ingest: %.0f reports/s; measuring latency under a load of %.0f reports/s", res.HTTPReportsPerS, res.LoadDuringLatencyPerS)

	lat, err := measureLatency(ctx, d, o.Samples, &encounter)
	load.stop()
	if err != nil {
		return res, err
	}
	res.LatencySamples = len(lat)
	res.LatencyP50Ms = ms(percentile(lat, 50))
	res.LatencyP99Ms = ms(percentile(lat, 99))
	res.LatencyMaxMs = ms(lat[len(lat)-1])
	if res.BaselineReportsPerS > 0 {
		res.HTTPOverBaseline = res.HTTPReportsPerS / res.BaselineReportsPerS
	}
	if alerts, err := d.replica("coalition", 0).Alerts(ctx); err == nil {
		res.AlertsAtEnd = len(alerts)
	}
	res.LoadAverage = LoadAverage()
	cancel()
	if err := d.wait(); err != nil {
		return res, err
	}
	return res, nil
}

// WriteText writes the result for a person.
func (res HTTPResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "HTTP ingest, scenario %s, %d tracks, batches of %d, %d clients, %.1f s, load %s\n", res.Scenario, res.Aircraft, res.Batch, res.Clients, res.DurationS, res.LoadAverage)
	fmt.Fprintf(w, "  over HTTP (JSON, auth, validation, detection, commit): %10.0f reports/s\n", res.HTTPReportsPerS)
	fmt.Fprintf(w, "  baseline (engine in process, no HTTP):                %10.0f reports/s\n", res.BaselineReportsPerS)
	fmt.Fprintf(w, "  ratio HTTP / baseline:                                %10.2f\n", res.HTTPOverBaseline)
	fmt.Fprintf(w, "report -> alert_raised at both parties' SSE clients:\n")
	fmt.Fprintf(w, "  no other load:        p50 %7.2f ms   p99 %7.2f ms\n", res.IdleP50Ms, res.IdleP99Ms)
	_, err := fmt.Fprintf(w, "  under %.0f reports/s:  p50 %7.2f ms   p99 %7.2f ms   max %.2f ms (%d conflicts)\n", res.LoadDuringLatencyPerS, res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs, res.LatencySamples)
	return err
}

// baselineIngest feeds the engine the same kind of batches in process for
// about d and returns reports/s.
func baselineIngest(traffic []aircraft, batch int, d time.Duration) float64 {
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
