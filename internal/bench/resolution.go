package bench

// This file holds what --resolution measures of tactical resolution
// (package resolve and its wiring in the service): the bands of one
// aircraft against the 20 aircraft nearest to it in a traffic scenario,
// against a baseline that tests every DAIDALUS candidate pair by pair;
// and HTTP ingest with resolutions computed for every raised or updated
// alert and asked for on demand, against the same load on a server that
// computes none, by turns in the same run.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/cputime"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/resolve"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/traffic"
)

// ResolutionOptions size the measurement.
type ResolutionOptions struct {
	Scenario string // traffic, one of traffic.Scenarios()
	LoadOptions
	// Scenes is the number of aircraft whose bands are computed, each
	// against its Intruders nearest aircraft.
	Scenes, Intruders int
	// OnDemandEvery is how often the resolution of each open alert is
	// asked for during the ingest with resolutions, as consoles showing
	// them would; 0 leaves them out (events only).
	OnDemandEvery time.Duration
	// ResolutionWorkPerSecond is each party's budget of resolutions on
	// demand on the servers (serve --resolution-work-per-second; 0: its
	// default), which the on-demand client's requests are paid from.
	ResolutionWorkPerSecond float64
	// CPUProfile, when set, receives a CPU profile of the whole run.
	CPUProfile string
}

// ResolutionResult is the JSON of `deconflict bench --resolution --json`.
type ResolutionResult struct {
	Scenario  string `json:"scenario"`
	Aircraft  int    `json:"aircraft"`
	Scenes    int    `json:"scenes"`
	Intruders int    `json:"intruders"`
	// MedianReachKm is the median distance of the farthest of the
	// intruders of a scene.
	MedianReachKm float64 `json:"median_reach_km"`
	// SceneClasses is the number of scenes whose ownship is of each
	// class.
	SceneClasses map[string]int `json:"scene_classes"`
	// Bands: CPU time of the calling thread per computation (the wall
	// time on a loaded machine is mostly waiting), and wall time.
	BandsCPUP50Us  float64 `json:"bands_cpu_p50_us"`
	BandsCPUP99Us  float64 `json:"bands_cpu_p99_us"`
	BandsWallP99Us float64 `json:"bands_wall_p99_us"`
	// Grid: the baseline, every DAIDALUS candidate (1°, 5 kt, 100 fpm,
	// 100 ft) tested against every intruder at every level.
	GridCPUP50Us float64 `json:"grid_cpu_p50_us"`
	GridCPUP99Us float64 `json:"grid_cpu_p99_us"`
	// BandsOverGrid is the ratio of the medians.
	BandsOverGrid float64 `json:"bands_over_grid"`

	Batch   int `json:"batch"`
	Clients int `json:"clients"`
	// Ingest with resolutions (in every raised or updated alert's events,
	// and asked for on demand by a client cycling over the open alerts)
	// and without (neither), by turns on fresh servers.
	IngestWithPerS       float64 `json:"ingest_with_resolution_reports_per_s"`
	IngestWithoutPerS    float64 `json:"ingest_without_resolution_reports_per_s"`
	WithOverWithout      float64 `json:"with_over_without"`
	IngestWithPerCPUS    float64 `json:"ingest_with_resolution_reports_per_cpu_s"`
	IngestWithoutPerCPUS float64 `json:"ingest_without_resolution_reports_per_cpu_s"`
	WithOverWithoutCPU   float64 `json:"with_over_without_cpu"`
	// OnDemandEvery is how often each open alert's resolution was asked.
	OnDemandEvery string `json:"on_demand_every"`
	// OnDemand is the number of GET /v1/alerts/{id}/resolution answered
	// during the measured ingest with resolutions, and their latency.
	OnDemand      int64   `json:"on_demand_requests"`
	OnDemandP50Ms float64 `json:"on_demand_p50_ms"`
	OnDemandP99Ms float64 `json:"on_demand_p99_ms"`
	// OnDemandRounds counts the client's rounds over every open alert
	// (a round cut short by the end of a phase counts only when it had
	// already taken longer than OnDemandEvery), OnDemandBehind those
	// that took longer:
	// a client behind asks as fast as it is answered, not at the rate
	// asked for.
	OnDemandRounds int `json:"on_demand_rounds"`
	OnDemandBehind int `json:"on_demand_rounds_behind"`
	// OnDemandRefused counts the requests refused with 429 (the party's
	// budget of resolutions on demand spent), not among OnDemand, and
	// OnDemandRefusedWaitS the seconds the client waited after them, as
	// their Retry-After said, before asking for the next.
	OnDemandRefused      int64   `json:"on_demand_refused"`
	OnDemandRefusedWaitS float64 `json:"on_demand_refused_wait_s"`
	// OnDemandFailed counts the requests answered otherwise (404 or 410:
	// the alert cleared since the client listed it).
	OnDemandFailed int64 `json:"on_demand_failed"`
	// ResolutionWorkPerSecond is the servers' budget of resolutions on
	// demand a party (0: the default, api.DefaultResolutionWorkPerSecond).
	ResolutionWorkPerSecond float64 `json:"resolution_work_per_s"`
	OpenAlerts              int     `json:"open_alerts_at_end"`
	// What the servers counted of the resolutions of alert transitions
	// (for their events, on demand excluded) during the measured ingest
	// with resolutions: computed, skipped (superseded or given up on
	// before they started), late (committed without), per second of it,
	// and their CPU time.
	ResolutionsPerS      float64 `json:"resolutions_per_s"`
	ResolutionsSkipped   int64   `json:"resolutions_skipped"`
	ResolutionsLate      int64   `json:"resolutions_late"`
	ResolutionCPUMs      float64 `json:"resolution_cpu_ms_each"`
	ResolutionCPUOfCores float64 `json:"resolution_cpu_cores"`
	LoadAverage          string  `json:"load_average"`
}

// Resolution runs the measurement.
func Resolution(ctx context.Context, o ResolutionOptions, progress Progress) (ResolutionResult, error) {
	stopProfile, err := StartCPUProfile(o.CPUProfile)
	if err != nil {
		return ResolutionResult{}, err
	}
	defer stopProfile()
	res := ResolutionResult{Scenario: o.Scenario, Aircraft: o.Aircraft, Scenes: o.Scenes, Intruders: o.Intruders, Batch: o.Batch, Clients: o.Clients, OnDemandEvery: o.OnDemandEvery.String(), ResolutionWorkPerSecond: o.ResolutionWorkPerSecond}
	progress("bands of %d aircraft of %s traffic, each against its %d nearest", o.Scenes, o.Scenario, o.Intruders)
	if err := res.measureBands(o); err != nil {
		return res, err
	}

	traffic, err := fleet(o.Scenario, o.Aircraft, 1)
	if err != nil {
		return res, err
	}
	byParty := groupByParty(traffic)
	progress("ingest for 2 x %v without and with resolutions, by turns, %d clients", o.Duration, o.Clients)
	var phases [2]phase
	var onDemand []time.Duration
	var rounds, behind int
	var work resolutionWork
	for range 2 {
		for i, without := range []bool{true, false} {
			d, done, err := startWarm(ctx, deploymentOptions{withoutResolution: without, resolutionWorkPerSecond: o.ResolutionWorkPerSecond}, byParty, o.Clients, o.Batch, o.Duration/2)
			if err != nil {
				return res, err
			}
			pctx, stopPoll := context.WithCancel(ctx)
			polled := make(chan onDemandPoll, 1)
			if !without && o.OnDemandEvery > 0 {
				go func() { polled <- pollResolutions(pctx, d, o.OnDemandEvery) }()
			} else {
				polled <- onDemandPoll{}
			}
			was := d.resolutionWork()
			ph, err := ingestPhase(ctx, d, byParty, o.Clients, o.Batch, o.Duration/2)
			stopPoll()
			if !without {
				work = work.add(d.resolutionWork().sub(was))
			}
			p := <-polled
			onDemand, rounds, behind = append(onDemand, p.times...), rounds+p.rounds, behind+p.behind
			res.OnDemandRefused, res.OnDemandFailed = res.OnDemandRefused+p.refused, res.OnDemandFailed+p.failed
			res.OnDemandRefusedWaitS += p.waited.Seconds()
			if !without {
				if alerts, aerr := d.replica("coalition", 0).Alerts(ctx); aerr == nil {
					res.OpenAlerts = len(alerts)
				}
			}
			done()
			if err != nil {
				return res, err
			}
			phases[i].add(ph)
		}
	}
	res.IngestWithoutPerS = float64(phases[0].sent) / phases[0].wall.Seconds()
	res.IngestWithPerS = float64(phases[1].sent) / phases[1].wall.Seconds()
	res.WithOverWithout = res.IngestWithPerS / res.IngestWithoutPerS
	res.IngestWithoutPerCPUS = float64(phases[0].sent) / phases[0].cpu.Seconds()
	res.IngestWithPerCPUS = float64(phases[1].sent) / phases[1].cpu.Seconds()
	res.WithOverWithoutCPU = res.IngestWithPerCPUS / res.IngestWithoutPerCPUS
	if wall := phases[1].wall.Seconds(); wall > 0 {
		res.ResolutionsPerS = work.computed / wall
		res.ResolutionCPUOfCores = work.cpuS / wall
	}
	if work.computed > 0 {
		res.ResolutionCPUMs = work.cpuS * 1000 / work.computed
	}
	res.ResolutionsSkipped, res.ResolutionsLate = int64(work.skipped), int64(work.late)
	res.OnDemand = int64(len(onDemand))
	res.OnDemandRounds, res.OnDemandBehind = rounds, behind
	if len(onDemand) > 0 {
		slices.Sort(onDemand)
		res.OnDemandP50Ms, res.OnDemandP99Ms = ms(percentile(onDemand, 50)), ms(percentile(onDemand, 99))
	}
	res.LoadAverage = LoadAverage()
	return res, nil
}

// onDemandPoll is what pollResolutions did: the time of each answer, its
// rounds over every open alert, and how many of them took longer than
// their period (ResolutionResult.OnDemandRounds).
type onDemandPoll struct {
	times          []time.Duration
	rounds, behind int
	// refused counts the requests refused with 429, and waited the time
	// waited after them as their Retry-After said; failed those answered
	// with any other error.
	refused, failed int64
	waited          time.Duration
}

// pollResolutions asks, one request at a time until ctx ends, for the
// resolution of each open conflict alert of coalition, every alert once
// per period.
func pollResolutions(ctx context.Context, d *deployment, period time.Duration) onDemandPoll {
	c := d.replica("coalition", 0)
	var p onDemandPoll
	for ctx.Err() == nil {
		cycle := time.Now()
		alerts, err := c.Alerts(ctx)
		if err != nil {
			return p
		}
		for _, a := range alerts {
			if a.Kind != "conflict" || ctx.Err() != nil {
				continue
			}
			t0 := time.Now()
			_, err := c.AlertResolution(ctx, a.ID)
			var prob *client.Problem
			switch {
			case err == nil:
				p.times = append(p.times, time.Since(t0))
			case errors.As(err, &prob) && prob.Status == http.StatusTooManyRequests:
				// The party's budget of resolutions is spent: asked again
				// at once, the next would be refused too. The client
				// waits as long as the server said (at least a second),
				// then goes on with the next alert.
				p.refused++
				wait := max(prob.RetryAfter, time.Second)
				waitStart := time.Now()
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				p.waited += time.Since(waitStart)
			case ctx.Err() == nil:
				p.failed++
			}
		}
		// A round the end of the phase cut short counts only when it
		// was already late.
		if took := time.Since(cycle); ctx.Err() == nil || took > period {
			p.rounds++
			if took > period {
				p.behind++
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(cycle.Add(period))):
		}
	}
	return p
}

// measureBands computes the bands of o.Scenes aircraft of the scenario,
// each against its o.Intruders nearest, timing each computation and the
// grid baseline on one locked OS thread. What is computed is what the
// service computes: each pair kept apart by the default rules' entry of its
// two classes (resolve.SeparationOf), the bands of each ownship over its
// class's limits (resolve.ConfigOf); the baseline tests the same pairs.
func (res *ResolutionResult) measureBands(o ResolutionOptions) error {
	reports, err := traffic.Generate(o.Scenario, traffic.Options{Aircraft: o.Aircraft, Seed: 1, Time: time.Now()})
	if err != nil {
		return err
	}
	if len(reports) <= o.Intruders {
		return fmt.Errorf("bench: %d aircraft cannot give %d intruders each", len(reports), o.Intruders)
	}
	// Each pair is kept apart by the rules' entry of its two classes and
	// each ownship's bands span its class's limits, as the service
	// resolves its alerts.
	r := rules.Default()
	table, err := detect.NewTable(r)
	if err != nil {
		return err
	}
	seps := make([]resolve.Separation, len(table.Entries()))
	for i, e := range table.Entries() {
		seps[i] = resolve.SeparationOf(e)
	}
	cfgs := map[string]*resolve.Config{}
	configOf := func(class string) *resolve.Config {
		if c, ok := cfgs[class]; ok {
			return c
		}
		c := resolve.ConfigOf(r.PerformanceFor(class))
		cfgs[class] = &c
		return &c
	}
	res.SceneClasses = map[string]int{}
	rng := rand.New(rand.NewPCG(17, 1))

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var bandsCPU, bandsWall, gridCPU []time.Duration
	var reach []float64
	type near struct {
		i int
		d float64
	}
	for range o.Scenes {
		own := reports[rng.IntN(len(reports))]
		ns := make([]near, 0, len(reports))
		for i := range reports {
			if reports[i].Party == own.Party && reports[i].Aircraft == own.Aircraft {
				continue
			}
			ns = append(ns, near{i, geo.GreatCircleM(own.Pos, reports[i].Pos)})
		}
		slices.SortFunc(ns, func(a, b near) int { return int(math.Copysign(1, a.d-b.d)) })
		f := geo.NewFrame(geo.LLA{LatDeg: own.Pos.LatDeg, LonDeg: own.Pos.LonDeg})
		local := func(p geo.LLA, ve, vn, vu float64) resolve.Aircraft {
			e := f.ToENU(p)
			v := f.VelocityFrom(p, geo.ENU{EastM: ve, NorthM: vn, UpM: vu})
			return resolve.Aircraft{Pos: detect.Vec3{X: e.EastM, Y: e.NorthM, Z: e.UpM}, Vel: detect.Vec3{X: v.EastM, Y: v.NorthM, Z: v.UpM}}
		}
		ownAc := local(own.Pos, own.VelEastMps, own.VelNorthMps, own.VelUpMps)
		cfg := configOf(own.Class)
		res.SceneClasses[classOrManned(own.Class)]++
		intruders := make([]resolve.Intruder, o.Intruders)
		for k := range intruders {
			x := &reports[ns[k].i]
			e := table.ForNames(own.Class, x.Class)
			if e == nil {
				return fmt.Errorf("bench: no separation for %q and %q", own.Class, x.Class)
			}
			intruders[k] = resolve.Intruder{Aircraft: local(x.Pos, x.VelEastMps, x.VelNorthMps, x.VelUpMps), Sep: &seps[e.Index()]}
		}
		reach = append(reach, ns[o.Intruders-1].d)

		c0, _ := cputime.Thread()
		w0 := time.Now()
		resolve.Compute(ownAc, intruders, cfg)
		bandsWall = append(bandsWall, time.Since(w0))
		c1, _ := cputime.Thread()
		bandsCPU = append(bandsCPU, time.Duration(c1-c0))
		gridBaseline(ownAc, intruders, cfg)
		c2, _ := cputime.Thread()
		gridCPU = append(gridCPU, time.Duration(c2-c1))
	}
	for _, d := range [][]time.Duration{bandsCPU, bandsWall, gridCPU} {
		slices.Sort(d)
	}
	slices.Sort(reach)
	res.MedianReachKm = reach[len(reach)/2] / 1000
	res.BandsCPUP50Us, res.BandsCPUP99Us = us(percentile(bandsCPU, 50)), us(percentile(bandsCPU, 99))
	res.BandsWallP99Us = us(percentile(bandsWall, 99))
	res.GridCPUP50Us, res.GridCPUP99Us = us(percentile(gridCPU, 50)), us(percentile(gridCPU, 99))
	if res.GridCPUP50Us > 0 {
		res.BandsOverGrid = res.BandsCPUP50Us / res.GridCPUP50Us
	}
	return nil
}

// classOrManned is a report's class, manned when it names none (as the
// rules' table has it).
func classOrManned(class string) string {
	if class == "" {
		return rules.ClassManned
	}
	return class
}

// gridSink keeps the baseline's work from being optimised away.
var gridSink atomic.Int64

// gridBaseline is the plain way to bands: every candidate DAIDALUS tests
// (track every 1°, ground speed every 5 kt, vertical speed every 100
// fpm, altitude every 100 ft over their spans) flown against every
// intruder with every level's detector over the lookahead. It finds the
// conflicting candidates only (no regions, peripheral horizons or
// recovery), so it costs less than the bands it stands for.
func gridBaseline(own resolve.Aircraft, traffic []resolve.Intruder, cfg *resolve.Config) {
	gs := math.Hypot(own.Vel.X, own.Vel.Y)
	var red int64
	try := func(pos, vel detect.Vec3) {
		for i := range traffic {
			in := &traffic[i]
			for _, l := range in.Sep.Alerter.Levels {
				if l.Detector.Loss(in.Pos.Sub(pos), in.Vel.Sub(vel), 0, in.Sep.Alerter.LookaheadS).Conflict {
					red++
					break
				}
			}
		}
	}
	for deg := 0.0; deg < 360; deg++ {
		s, c := math.Sincos(deg * math.Pi / 180)
		g := max(gs, cfg.MinAirspeedMps)
		try(own.Pos, detect.Vec3{X: g * s, Y: g * c, Z: own.Vel.Z})
	}
	ux, uy := 0.0, 1.0
	if gs > 0 {
		ux, uy = own.Vel.X/gs, own.Vel.Y/gs
	}
	for g := cfg.MinGsMps; g <= cfg.MaxGsMps; g += cfg.Steps[1] {
		try(own.Pos, detect.Vec3{X: g * ux, Y: g * uy, Z: own.Vel.Z})
	}
	for vz := cfg.MinVsMps; vz <= cfg.MaxVsMps; vz += cfg.Steps[2] {
		try(own.Pos, detect.Vec3{X: own.Vel.X, Y: own.Vel.Y, Z: vz})
	}
	for z := cfg.MinAltM; z <= cfg.MaxAltM; z += cfg.Steps[3] {
		try(detect.Vec3{X: own.Pos.X, Y: own.Pos.Y, Z: z}, detect.Vec3{X: own.Vel.X, Y: own.Vel.Y})
	}
	gridSink.Add(red)
}

// classMix lists the scenes by ownship class, in the order of the names.
func classMix(n map[string]int) string {
	names := slices.Sorted(maps.Keys(n))
	out := ""
	for i, c := range names {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", c, n[c])
	}
	return out
}

// WriteText writes the result for a person.
func (res ResolutionResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Resolution, scenario %s, %d aircraft, load %s\n", res.Scenario, res.Aircraft, res.LoadAverage)
	fmt.Fprintf(w, "bands of one aircraft against its %d nearest (median reach %.0f km), %d aircraft, CPU time per computation:\n", res.Intruders, res.MedianReachKm, res.Scenes)
	fmt.Fprintf(w, "  ownships by class: %s; each pair separated by its classes' entry of the rules\n", classMix(res.SceneClasses))
	fmt.Fprintf(w, "  exact bands:                 p50 %8.0f us   p99 %8.0f us   (wall p99 %.0f us)\n", res.BandsCPUP50Us, res.BandsCPUP99Us, res.BandsWallP99Us)
	fmt.Fprintf(w, "  baseline, every candidate:   p50 %8.0f us   p99 %8.0f us\n", res.GridCPUP50Us, res.GridCPUP99Us)
	fmt.Fprintf(w, "  ratio bands / baseline (p50): %.2f\n", res.BandsOverGrid)
	fmt.Fprintf(w, "HTTP ingest, batches of %d, %d clients, by turns in one run:\n", res.Batch, res.Clients)
	fmt.Fprintf(w, "  with resolutions (events, on demand):    %10.0f reports/s  (%.0f per CPU s)\n", res.IngestWithPerS, res.IngestWithPerCPUS)
	fmt.Fprintf(w, "  without:                                 %10.0f reports/s  (%.0f per CPU s)\n", res.IngestWithoutPerS, res.IngestWithoutPerCPUS)
	fmt.Fprintf(w, "  ratio with / without: %.2f (per CPU s %.2f)\n", res.WithOverWithout, res.WithOverWithoutCPU)
	fmt.Fprintf(w, "  for the events during ingest: %.0f resolutions/s, CPU %.2f ms each (%.2f of a core); %d skipped, %d late (events without)\n", res.ResolutionsPerS, res.ResolutionCPUMs, res.ResolutionCPUOfCores, res.ResolutionsSkipped, res.ResolutionsLate)
	if res.OnDemand == 0 && res.OnDemandEvery == (time.Duration(0)).String() {
		_, err := fmt.Fprintf(w, "  on demand during ingest: none asked (%d open alerts)\n", res.OpenAlerts)
		return err
	}
	if _, err := fmt.Fprintf(w, "  on demand during ingest (each open alert every %s): %d resolutions, p50 %.1f ms, p99 %.1f ms (%d open alerts)\n", res.OnDemandEvery, res.OnDemand, res.OnDemandP50Ms, res.OnDemandP99Ms, res.OpenAlerts); err != nil {
		return err
	}
	budget := "the default"
	if res.ResolutionWorkPerSecond > 0 {
		budget = fmt.Sprintf("%g units of work/s", res.ResolutionWorkPerSecond)
	}
	if _, err := fmt.Fprintf(w, "    refused by the party's budget of resolutions (%s): %d requests (429), waited %.1f s as Retry-After said; %d answered otherwise (cleared)\n", budget, res.OnDemandRefused, res.OnDemandRefusedWaitS, res.OnDemandFailed); err != nil {
		return err
	}
	if res.OnDemandBehind == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "    the client fell behind: %d of %d rounds over the open alerts took longer than %s, so it asked as fast as it was answered\n", res.OnDemandBehind, res.OnDemandRounds, res.OnDemandEvery)
	return err
}
