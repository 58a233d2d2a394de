// Package server owns the life of one deconflict server process: it wires a
// store into the service and the HTTP API, listens, runs the periodic jobs,
// and on cancellation shuts down gracefully (stop accepting, finish the
// requests in flight, end the event streams, sign the final audit
// checkpoint) before returning. `deconflict serve` and `deconflict demo`
// both run it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/clock"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is one server. Store is opened (and closed) by the caller.
type Config struct {
	Store   store.Store
	DataDir string
	// LogOrigin names the transparency log (service.Config.LogOrigin).
	LogOrigin string
	// Listen is host:port; port 0 picks a free one (see Ready).
	Listen string
	// MetricsListen, when set, is a host:port that serves the Prometheus
	// metrics at /metrics without a token, for a scraper on a network
	// of the operator's; on Listen they need the operator's token.
	MetricsListen string
	// Console is mounted at / when set (web.Handler()).
	Console http.Handler
	API     api.Options
	Logger  *slog.Logger
	// Ready, when set, is called once the server listens, with its base
	// URL (http://host:port) and the service (to create parties).
	Ready func(baseURL string, svc *service.Service)
	// ShutdownTimeout bounds the graceful shutdown of the requests, and
	// then the final checkpoint (default 10 s each).
	ShutdownTimeout time.Duration
	// WithoutNeedToKnow runs the service without need to know (every
	// party sees every track): the baseline of `deconflict bench --http`
	// alone; no command sets it.
	WithoutNeedToKnow bool
	// WithoutResolution leaves the resolutions out of alert events: the
	// baseline of `deconflict bench --resolution` alone; no command sets
	// it.
	WithoutResolution bool
	// MaxAircraftPerParty bounds the live tracks of one party
	// (service.Config.MaxAircraftPerParty; 0: its default).
	MaxAircraftPerParty int
	// OnDemandAtOnce bounds the resolutions on demand and searches of
	// alternatives computed at once, all parties together
	// (service.Config.OnDemandAtOnce; 0: its default).
	OnDemandAtOnce int
	// Now is the host's wall clock (time.Now when nil; tests may set it
	// off, or step it). On a shared PostgreSQL the service keeps the
	// database's time instead, measured against it (replica.Clock).
	// Either way the service's clock is a clock.Guard over it: it starts at
	// its time and follows its drift, not its steps.
	Now func() time.Time
}

// Run serves until ctx is cancelled, then shuts down gracefully and returns
// nil; it returns an error when the server cannot start or fails.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	rep, err := newReplication(ctx, cfg)
	if err != nil {
		return err
	}
	// The service's clock follows the host's (or the database's) but not
	// its steps (package clock): a clock set an hour ahead would otherwise
	// make every track look an hour old and clear its alerts.
	// A replica started while others run takes their time (peersTime):
	// after a step of the database's clock that they kept theirs across,
	// it would otherwise disagree with them by the step.
	start, err := rep.peersTime(ctx)
	if err != nil {
		return err
	}
	guard := clock.New(clock.Config{Reference: rep.now(cfg.Now), ReferenceName: rep.clockName(), Restart: rep.restartAdvice(),
		StartOffset: start, Logger: cfg.Logger})
	if err := rep.recordTime(ctx, guard.Now); err != nil {
		return err
	}
	svc, err := service.New(ctx, service.Config{Store: cfg.Store, DataDir: cfg.DataDir, LogOrigin: cfg.LogOrigin, Logger: cfg.Logger, Peers: rep.peers(), ReplicaName: rep.name(), Now: guard.Now, WithoutNeedToKnow: cfg.WithoutNeedToKnow, WithoutResolution: cfg.WithoutResolution, MaxAircraftPerParty: cfg.MaxAircraftPerParty, OnDemandAtOnce: cfg.OnDemandAtOnce})
	if err != nil {
		return err
	}
	registerClockMetrics(svc.Metrics().Registry, guard, svc.ReportClock)
	if svc.OperatorToken != "" {
		cfg.Logger.Info("created the operator party; its token is in operator.token of the data directory")
	}
	opt := cfg.API
	opt.Console = cfg.Console
	if opt.Logger == nil {
		opt.Logger = cfg.Logger
	}
	handler := api.NewHandler(svc, opt)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	// Event streams would hold Shutdown until its timeout: end them first.
	srv.RegisterOnShutdown(svc.EndStreams)
	var metricsSrv *http.Server
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("server: listen on %s for the metrics: %w", cfg.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", api.MetricsHandler(svc))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
		go func() {
			if err := metricsSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				cfg.Logger.Error("metrics listener stopped", "err", err)
			}
		}()
		cfg.Logger.Info("serving metrics", "url", "http://"+mln.Addr().String()+"/metrics")
	}

	jobsCtx, stopJobs := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		svc.Run(jobsCtx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		rep.run(jobsCtx, svc)
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	cfg.Logger.Info("listening", "url", base)
	if cfg.Ready != nil {
		cfg.Ready(base, svc)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("server: %w", err)
		}
	}
	cfg.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// A request still running at the deadline (a client that stopped
		// sending its body or taking its answer) is cut off: it must not
		// keep the server, nor take the final checkpoint's time.
		cfg.Logger.Warn("requests still running at the shutdown deadline were cut off", "err", err)
		_ = srv.Close()
	}
	if metricsSrv != nil {
		if err := metricsSrv.Shutdown(sctx); err != nil {
			_ = metricsSrv.Close()
		}
	}
	stopJobs()
	wg.Wait()
	// The final checkpoint after the last request has finished, with a
	// time of its own: what the requests' shutdown used up is not its.
	cctx, cancelClose := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelClose()
	if err := svc.Close(cctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("server: closing the service: %w", err)
	}
	// After the service's shutdown, which commits the alert transitions
	// still queued and pushes the log's last checkpoint while this replica
	// still leads (on a shared store).
	rep.release()
	return runErr
}

// registerClockMetrics exposes the clock alarms to the operator's scraper
// beside their log: 1 while the reference clock is stepped away from the
// service's time, or the parties' reports say that time is off
// (clock.ReportCheck), and by how much each.
func registerClockMetrics(reg *prometheus.Registry, guard *clock.Guard, reports func() clock.ReportStatus) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "deconflict_clock_step_alarm",
		Help: "1 while the host's clock (a replica's: the database's) is more than " + clock.StepThreshold.String() + " off the service's time, which does not follow the step: fix the clock (the alarm clears itself) or restart the service to take its time; " +
			"1 also while the position reports of at least two parties have said for " + clock.ReportSustain.String() + " that the service's time is more than " + clock.StepThreshold.String() + " off theirs (deconflict_clock_reports_offset_seconds; the ERROR log says which).",
	}, func() float64 {
		if guard.Status().Stepped || reports().Alarm {
			return 1
		}
		return 0
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "deconflict_clock_reference_offset_seconds",
		Help: "The host's clock (a replica's: the database's) minus the service's time; within " + clock.StepThreshold.String() + " the service slews toward it at 1 % of elapsed time.",
	}, func() float64 { return guard.Status().ReferenceOffset.Seconds() }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "deconflict_clock_reports_offset_seconds",
		Help: "The parties' time minus the service's, as the position reports of at least two parties that agree it is more than " + clock.StepThreshold.String() + " off tell it (the median age of each one's reports, the one nearest the service's time, the second nearest when three or more agree); 0 while fewer agree. The service does not take it.",
	}, func() float64 { return reports().Offset.Seconds() }))
}
