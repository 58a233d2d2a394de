package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
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
	// NeedToKnowRounds is how many turns of ingest without and with need
	// to know are measured (each Duration/2, after a warm-up).
	NeedToKnowRounds int
	// ObserverAircraft is the fleet of the party whose GET /v1/tracks is
	// timed TracksSamples times.
	ObserverAircraft int
	TracksSamples    int
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

	// Need to know: HTTPReportsPerS is ingest with it (the service as it
	// runs); IngestWithoutNeedToKnowPerS the same load on a server without
	// it, the two measured alternately in the same run.
	IngestWithoutNeedToKnowPerS float64 `json:"ingest_without_need_to_know_reports_per_s"`
	NeedToKnowOverWithout       float64 `json:"need_to_know_over_without"`
	// The same per CPU second of the process (server and load clients).
	IngestPerCPUS                  float64 `json:"ingest_reports_per_cpu_s"`
	IngestWithoutNeedToKnowPerCPUS float64 `json:"ingest_without_need_to_know_reports_per_cpu_s"`
	NeedToKnowOverWithoutCPU       float64 `json:"need_to_know_over_without_cpu"`
	// Each round is one turn without and one with; the medians of the
	// rounds' ratios next to the pooled ones above.
	NeedToKnowRounds         int     `json:"need_to_know_rounds"`
	NeedToKnowRatioMedian    float64 `json:"need_to_know_ratio_median"`
	NeedToKnowRatioCPUMedian float64 `json:"need_to_know_ratio_cpu_median"`
	// GET /v1/tracks of the observer party (ObserverAircraft of its own
	// among the Aircraft of the others): the tracks it was answered and
	// the time per request, with need to know and, for comparison,
	// without (where it gets every track).
	ObserverAircraft int     `json:"observer_aircraft"`
	TracksAnswered   int     `json:"tracks_answered"`
	TracksP50Ms      float64 `json:"tracks_p50_ms"`
	TracksP99Ms      float64 `json:"tracks_p99_ms"`
	// TracksCPUMs is the process's CPU time per request (server and
	// client), which the machine's load does not inflate.
	TracksCPUMs                  float64 `json:"tracks_cpu_ms_per_request"`
	TracksWithoutNeedToKnow      int     `json:"tracks_answered_without_need_to_know"`
	TracksWithoutNeedToKnowP99Ms float64 `json:"tracks_p99_ms_without_need_to_know"`
	// The same for coalition, which flies half the traffic itself.
	LargePartyTracksAnswered int     `json:"large_party_tracks_answered"`
	LargePartyTracksP99Ms    float64 `json:"large_party_tracks_p99_ms"`
	TracksSamples            int     `json:"tracks_samples"`

	LoadAverage string `json:"load_average"`
}

// HTTP measures position ingest through the real server in process
// (embedded SQLite, JSON, auth, validation, detection, need to know,
// commit) against the same batches fed straight into the engine and
// against a server without need to know (by turns, in the same run), GET
// /v1/tracks of one party among all the tracks, and the time from a report
// to the alert_raised event at both parties' event streams, first with no
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

	traffic, err := fleet(o.Scenario, o.Aircraft, 1)
	if err != nil {
		return res, err
	}
	byParty := groupByParty(traffic)
	observers := observerFleet(o.ObserverAircraft)
	res.ObserverAircraft, res.TracksSamples = len(observers), o.TracksSamples
	withObserver := map[string][]aircraft{observerParty: observers}

	// Ingest: each client owns a slice of one party's aircraft and reports
	// it over and over, dead-reckoned to the wall clock. Without and with
	// need to know by turns, twice, each turn on a server of its own in
	// this process (started, loaded with every track, warmed up, measured,
	// stopped),
	// so that a change of the machine's load weighs on both alike and
	// neither server's housekeeping runs in the other's turn.
	rounds := max(o.NeedToKnowRounds, 1)
	progress("ingest for %d x %v without and with need to know, by turns, %d clients", rounds, o.Duration/2, o.Clients)
	var phases [2]phase
	var ratios, cpuRatios []float64
	for round := range rounds {
		var turn [2]phase
		for i, without := range []bool{true, false} {
			d, done, err := startWarm(ctx, deploymentOptions{withoutNeedToKnow: without}, byParty, o.Clients, o.Batch, o.Duration/2)
			if err != nil {
				return res, err
			}
			ph, err := ingestPhase(ctx, d, byParty, o.Clients, o.Batch, o.Duration/2)
			done()
			if err != nil {
				return res, err
			}
			turn[i] = ph
			phases[i].add(ph)
		}
		ratios = append(ratios, turn[1].rate()/turn[0].rate())
		cpuRatios = append(cpuRatios, turn[1].perCPU()/turn[0].perCPU())
		progress("round %d: %.0f reports/s without, %.0f with need to know (ratio %.2f; per CPU second %.2f)",
			round+1, turn[0].rate(), turn[1].rate(), ratios[round], cpuRatios[round])
	}
	res.NeedToKnowRounds = rounds
	res.NeedToKnowRatioMedian = medianOf(ratios)
	res.NeedToKnowRatioCPUMedian = medianOf(cpuRatios)
	res.DurationS = phases[1].wall.Seconds()
	res.IngestWithoutNeedToKnowPerS = phases[0].rate()
	res.HTTPReportsPerS = phases[1].rate()
	res.NeedToKnowOverWithout = res.HTTPReportsPerS / res.IngestWithoutNeedToKnowPerS
	res.IngestPerCPUS = phases[1].perCPU()
	res.IngestWithoutNeedToKnowPerCPUS = phases[0].perCPU()
	res.NeedToKnowOverWithoutCPU = res.IngestPerCPUS / res.IngestWithoutNeedToKnowPerCPUS

	// GET /v1/tracks of the observer among every track, without need to
	// know (it gets everything) and with it, then the latencies, on the
	// server with need to know.
	off, doneOff, err := startOne(ctx, deploymentOptions{withoutNeedToKnow: true, parties: []string{observerParty}})
	if err != nil {
		return res, err
	}
	err = loadTracks(ctx, off, byParty, o.Batch)
	if err == nil {
		err = loadTracks(ctx, off, withObserver, o.Batch)
	}
	if err != nil {
		doneOff()
		return res, err
	}
	// Without need to know the answer holds every track: fewer requests,
	// each slow, keep the tracks live while they run.
	progress("without need to know: GET /v1/tracks of the observer, %d times", max(o.TracksSamples/10, 10))
	v, err := measureTracks(ctx, off.replica(observerParty, 0), max(o.TracksSamples/10, 10))
	doneOff()
	if err != nil {
		return res, err
	}
	res.TracksWithoutNeedToKnow, res.TracksWithoutNeedToKnowP99Ms = v.tracks, ms(percentile(v.times, 99))

	d, doneOn, err := startOne(ctx, deploymentOptions{parties: []string{observerParty}})
	if err != nil {
		return res, err
	}
	defer doneOn()
	// Twice, so that every aircraft's last report found the others there
	// (an aircraft's disclosure is decided at its own reports).
	for range 2 {
		if err := loadTracks(ctx, d, byParty, o.Batch); err != nil {
			return res, err
		}
		if err := loadTracks(ctx, d, withObserver, o.Batch); err != nil {
			return res, err
		}
	}
	progress("with need to know: GET /v1/tracks of the observer, %d times", o.TracksSamples)
	if v, err = measureTracks(ctx, d.replica(observerParty, 0), o.TracksSamples); err != nil {
		return res, err
	}
	res.TracksAnswered, res.TracksP50Ms, res.TracksP99Ms = v.tracks, ms(percentile(v.times, 50)), ms(percentile(v.times, 99))
	res.TracksCPUMs = ms(v.cpu)
	large, err := measureTracks(ctx, d.replica("coalition", 0), max(o.TracksSamples/10, 10))
	if err != nil {
		return res, err
	}
	res.LargePartyTracksAnswered, res.LargePartyTracksP99Ms = large.tracks, ms(percentile(large.times, 99))

	progress("latency with %d tracks and no other load", o.Aircraft)
	idle, err := measureLatency(ctx, d, max(o.Samples/2, 1), &encounter)
	if err != nil {
		return res, err
	}
	res.IdleP50Ms, res.IdleP99Ms = ms(percentile(idle, 50)), ms(percentile(idle, 99))

	load := startIngest(ctx, d, byParty, o.Clients, o.Batch)
	defer load.cancel()
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
	return res, doneOn()
}

// startOne starts a deployment of one server on a fresh embedded store;
// done stops it, removes the store and returns the server's error (once).
func startOne(ctx context.Context, opt deploymentOptions) (*deployment, func() error, error) {
	dir, st, closeStore, err := tempSQLite("deconflict-bench-http-")
	if err != nil {
		return nil, nil, err
	}
	dctx, stop := context.WithCancel(ctx)
	d, err := startDeployment(dctx, []store.Store{st}, dir, opt)
	var once sync.Once
	var werr error
	done := func() error {
		once.Do(func() {
			stop()
			werr = d.wait()
			closeStore()
		})
		return werr
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return d, done, nil
}

// WriteText writes the result for a person.
func (res HTTPResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "HTTP ingest, scenario %s, %d tracks, batches of %d, %d clients, %.1f s, load %s\n", res.Scenario, res.Aircraft, res.Batch, res.Clients, res.DurationS, res.LoadAverage)
	fmt.Fprintf(w, "  over HTTP (JSON, auth, validation, detection, commit): %10.0f reports/s\n", res.HTTPReportsPerS)
	fmt.Fprintf(w, "  baseline (engine in process, no HTTP):                %10.0f reports/s\n", res.BaselineReportsPerS)
	fmt.Fprintf(w, "  ratio HTTP / baseline:                                %10.2f\n", res.HTTPOverBaseline)
	fmt.Fprintf(w, "need to know (the same load by turns, one run):\n")
	fmt.Fprintf(w, "  without need to know:                                 %10.0f reports/s\n", res.IngestWithoutNeedToKnowPerS)
	fmt.Fprintf(w, "  ratio with / without:                                 %10.2f\n", res.NeedToKnowOverWithout)
	fmt.Fprintf(w, "  per CPU second: with %.0f, without %.0f reports, ratio %.2f\n", res.IngestPerCPUS, res.IngestWithoutNeedToKnowPerCPUS, res.NeedToKnowOverWithoutCPU)
	fmt.Fprintf(w, "  median of %d rounds: ratio %.2f, per CPU second %.2f\n", res.NeedToKnowRounds, res.NeedToKnowRatioMedian, res.NeedToKnowRatioCPUMedian)
	fmt.Fprintf(w, "GET /v1/tracks of a party flying %d of the %d tracks (%d requests):\n", res.ObserverAircraft, res.Aircraft+res.ObserverAircraft, res.TracksSamples)
	fmt.Fprintf(w, "  need to know:          %6d tracks   p50 %7.2f ms   p99 %7.2f ms   CPU %.2f ms per request\n", res.TracksAnswered, res.TracksP50Ms, res.TracksP99Ms, res.TracksCPUMs)
	fmt.Fprintf(w, "  without need to know:  %6d tracks                  p99 %7.2f ms\n", res.TracksWithoutNeedToKnow, res.TracksWithoutNeedToKnowP99Ms)
	fmt.Fprintf(w, "  coalition (flies half the traffic): %d tracks, p99 %.2f ms\n", res.LargePartyTracksAnswered, res.LargePartyTracksP99Ms)
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
	advanceTo(traffic, now)
	fill(now)
	for i := 0; i < len(reports); i += batch {
		_, _ = eng.Ingest(reports[i:min(i+batch, len(reports))], now)
	}
	var n int
	start := time.Now()
	for time.Since(start) < d {
		now := time.Now()
		advanceTo(traffic, now)
		fill(now)
		for i := 0; i < len(reports); i += batch {
			_, _ = eng.Ingest(reports[i:min(i+batch, len(reports))], now)
			n += min(batch, len(reports)-i)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}
