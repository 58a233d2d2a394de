package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/web"
)

func init() {
	register(command{
		name:    "serve",
		summary: "run the server: HTTP API, event streams and console over the embedded store or PostgreSQL",
		run:     runServe,
	})
}

// envOr returns the environment variable name, or def when unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, ok := os.LookupEnv(name); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return def
}

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	listen := fs.String("listen", envOr("DECONFLICT_LISTEN", "127.0.0.1:8080"), "address to listen on (env DECONFLICT_LISTEN)")
	rate := fs.Float64("rate", envFloat("DECONFLICT_RATE", 1000), "requests per second allowed to each party on this replica (env DECONFLICT_RATE)")
	reportsPerS := fs.Float64("reports-per-second", envFloat("DECONFLICT_REPORTS_PER_SECOND", api.DefaultReportsPerSecond), "position reports per second allowed to each party on this replica (each replica keeps its own budgets: behind a load balancer a party may send this to each), counted by report (a batch of 1,000 costs 1,000), in a burst of twice that; a floor: a party whose fleet (the lower of the rules' max_aircraft for it and --max-aircraft-per-party) at a report a second each is more has that; a batch is served once the budget holds the most its body can hold (a report per 3 bytes of its Content-Length, at most 10,000; 10,000 when chunked), then charged its reports, else refused unread with 429 (env DECONFLICT_REPORTS_PER_SECOND)")
	volumePositionsPerS := fs.Float64("volume-positions-per-second", envFloat("DECONFLICT_VOLUME_POSITIONS_PER_SECOND", api.DefaultVolumePositionsPerSecond), "positions of volume footprints per second allowed to each party on this replica, counted by what a write compiles and checks: POST and PUT /v1/volumes their footprint's positions, a state change its volume's, each 40 more (a circle costs 41, a polygon of 1,000 vertices 1,041), in a burst of twice that (previews and POST /v1/volumes/alternatives, which write nothing, pay their footprints from a budget of their own, --preview-positions-per-second); a write is served once the budget holds the most its body can hold (a position per 6 bytes of its Content-Length, at most 2,041), then charged, else refused unread with 429 (env DECONFLICT_VOLUME_POSITIONS_PER_SECOND)")
	volumeRevealsPerS := fs.Float64("volume-reveals-per-second", api.DefaultVolumeRevealsPerSecond, "under volume_visibility need_to_know, volumes of other parties hidden from a party that the answers to its probes (airspace preview items, POST /v1/volumes/alternatives, volume writes refused for a conflict) may show per second, each on this replica, in a burst of 100 (default 0.1, 360 an hour): each is shown clipped to the probe and recorded for its owner (audit record and event volumes_probed); a probe beyond the budget is refused whole with 429 too-many-volume-reveals, showing nothing (env DECONFLICT_VOLUME_REVEALS_PER_SECOND)")
	previewPositionsPerS := fs.Float64("preview-positions-per-second", 0, "positions of the footprints of airspace preview items and of requests for alternatives per second allowed to each party on this replica (default: --volume-positions-per-second's), in a budget of planning apart from that of volume writes, so that planning never holds back a write or a state change: POST /v1/volumes/preview costs its items' footprints' positions (a circle 1, a polygon of 1,000 vertices 1,001), reserved once its file is read, before any item is checked, POST /v1/volumes/alternatives its volume's footprint's, reserved once it is read, before it is checked (its search is paid from --alternatives-checks-per-second), else refused with 429 (a file beyond the burst, twice the rate, is previewed once the budget is full, and the next preview waits for the rest); a preview cut short is charged for the items it checked (env DECONFLICT_PREVIEW_POSITIONS_PER_SECOND)")
	previewItemsPerS := fs.Float64("preview-items-per-second", envFloat("DECONFLICT_PREVIEW_ITEMS_PER_SECOND", api.DefaultPreviewItemsPerSecond), "airspace preview items per second allowed to each party on this replica, counted by item, in a burst of two whole previews; a preview is served once the budget holds a whole one, else refused with 429 (env DECONFLICT_PREVIEW_ITEMS_PER_SECOND)")
	alternativesChecksPerS := fs.Float64("alternatives-checks-per-second", envFloat("DECONFLICT_ALTERNATIVES_CHECKS_PER_SECOND", api.DefaultAlternativesChecksPerSecond), "checks of alternatives per second allowed to each party on this replica (a search of the alternatives of a conflicting volume makes at most 20 million, a tenth of a second of a core, among 108 volumes or more; an ordinary one a few hundred, counted 10,000 more), in a burst of twice that and at least 8 whole searches; a search is made once the budget holds the most it can cost among the volumes near it (10,048 checks near one volume, 27,760 near ten, 20,010,000 near 108 or more), and first 3 checks for each listing of a volume around it over a week either side: else POST /v1/volumes/alternatives is refused with 429 and Retry-After until it does, and a volume write or preview item is answered without its alternatives, \"alternatives_omitted\":\"budget\" (env DECONFLICT_ALTERNATIVES_CHECKS_PER_SECOND)")
	resolutionWorkPerS := fs.Float64("resolution-work-per-second", envFloat("DECONFLICT_RESOLUTION_WORK_PER_SECOND", api.DefaultResolutionWorkPerSecond), "units of work of resolutions on demand (GET /v1/alerts/{id}/resolution) per second allowed to each party on this replica, the operator included, in a burst of twice that: a resolution costs 1,000, plus a unit a track its search lists near the alert's aircraft and 8 a track its bands or suggestion are computed against (in a city of 25,000 aircraft some 10,000 for two drones' alert, 57,000 for a manned aircraft's; a unit is 140-190 ns of a core, so the default 1.5 million is a quarter of a core); a party's resolutions are computed one at a time, each once the budget holds 1,000, then charged what it cost (which may take the budget below 0), else refused with 429 and Retry-After; the resolutions of alerts' events are charged to no party (env DECONFLICT_RESOLUTION_WORK_PER_SECOND)")
	onDemandAtOnce := fs.Int("on-demand-at-once", envInt("DECONFLICT_ON_DEMAND_AT_ONCE", service.DefaultOnDemandAtOnce()), "resolutions on demand and searches of alternatives computed at once on this replica, all parties together (default half the cores, at least 1), so that however many parties ask, each within its budgets (--resolution-work-per-second, --alternatives-checks-per-second), ingest and alerts keep the other cores; the others wait their turn in the order they came, a party's resolutions one at a time (env DECONFLICT_ON_DEMAND_AT_ONCE)")
	logLevel := fs.String("log-level", envOr("DECONFLICT_LOG_LEVEL", "info"), "debug, info, warn or error (env DECONFLICT_LOG_LEVEL)")
	noConsole := fs.Bool("no-console", false, "do not serve the web console at /")
	maxAircraft := fs.Int("max-aircraft-per-party", envInt("DECONFLICT_MAX_AIRCRAFT_PER_PARTY", service.DefaultMaxAircraftPerParty), "live aircraft each party may have at once; a report that would start one more is refused (env DECONFLICT_MAX_AIRCRAFT_PER_PARTY)")
	maxStreams := fs.Int("max-streams", envInt("DECONFLICT_MAX_STREAMS", api.DefaultMaxStreamsPerParty), "event streams each party may have open at once on this replica; more are refused with 429 (env DECONFLICT_MAX_STREAMS)")
	metricsListen := fs.String("metrics-listen", envOr("DECONFLICT_METRICS_LISTEN", ""), "also serve /metrics without a token on this address (on --listen it needs the operator's token; env DECONFLICT_METRICS_LISTEN)")
	publicURL := fs.String("public-url", "", "scheme and authority parties reach the API at, when not this listener's (a proxy or a load balancer in front of replicas): the target URI their signatures cover")
	logOrigin := fs.String("log-origin", envOr("DECONFLICT_LOG_ORIGIN", ""), "name of the transparency log, first line of its checkpoints (default: derived from the data directory's signing key; env DECONFLICT_LOG_ORIGIN)")
	if err := parseFlags(fs, args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *publicURL != "" {
		u, err := url.Parse(*publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			return usagef("--public-url: %q is not a scheme and authority (https://deconflict.example)", *publicURL)
		}
	}
	if *maxAircraft < 1 {
		return usagef("--max-aircraft-per-party: must be at least 1, got %d", *maxAircraft)
	}
	if !(*previewItemsPerS > 0) {
		return usagef("--preview-items-per-second: must be above 0, got %g", *previewItemsPerS)
	}
	if !(*alternativesChecksPerS > 0) {
		return usagef("--alternatives-checks-per-second: must be above 0, got %g", *alternativesChecksPerS)
	}
	if !(*resolutionWorkPerS > 0) {
		return usagef("--resolution-work-per-second: must be above 0, got %g", *resolutionWorkPerS)
	}
	if *onDemandAtOnce < 1 {
		return usagef("--on-demand-at-once: must be 1 or more, got %d", *onDemandAtOnce)
	}
	if !(*volumePositionsPerS > 0) {
		return usagef("--volume-positions-per-second: must be above 0, got %g", *volumePositionsPerS)
	}
	// Unset, previews have the rate of volume writes (in a bucket of
	// their own); set, it must be a rate.
	previewPositionsSet := false
	fs.Visit(func(f *flag.Flag) {
		previewPositionsSet = previewPositionsSet || f.Name == "preview-positions-per-second"
	})
	if previewPositionsSet && !(*previewPositionsPerS > 0) {
		return usagef("--preview-positions-per-second: must be above 0, got %g", *previewPositionsPerS)
	}
	if !(*volumeRevealsPerS > 0) {
		return usagef("--volume-reveals-per-second: must be above 0, got %g", *volumeRevealsPerS)
	}
	if !(*reportsPerS > 0) {
		return usagef("--reports-per-second: must be above 0, got %g", *reportsPerS)
	}
	if *maxStreams < 1 {
		return usagef("--max-streams: must be at least 1, got %d", *maxStreams)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	st, err := sf.open()
	if err != nil {
		return err
	}
	defer st.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := server.Config{
		Store:               st,
		DataDir:             sf.data,
		LogOrigin:           *logOrigin,
		Listen:              *listen,
		MetricsListen:       *metricsListen,
		API:                 api.Options{RatePerSecond: *rate, ReportsPerSecond: *reportsPerS, PreviewItemsPerSecond: *previewItemsPerS, AlternativesChecksPerSecond: *alternativesChecksPerS, VolumePositionsPerSecond: *volumePositionsPerS, PreviewPositionsPerSecond: *previewPositionsPerS, VolumeRevealsPerSecond: *volumeRevealsPerS, ResolutionWorkPerSecond: *resolutionWorkPerS, MaxStreamsPerParty: *maxStreams, PublicURL: *publicURL},
		Logger:              log,
		MaxAircraftPerParty: *maxAircraft,
		OnDemandAtOnce:      *onDemandAtOnce,
		Ready: func(base string, _ *service.Service) {
			fmt.Fprintf(stdout, "deconflict serving on %s\n", base)
		},
	}
	if !*noConsole {
		cfg.Console = web.Handler()
	}
	return server.Run(ctx, cfg)
}
