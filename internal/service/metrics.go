package service

import (
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the Prometheus collectors of one Service. Each Service has its
// own registry, so that several can run in one process (tests, demo).
type Metrics struct {
	Registry *prometheus.Registry

	Requests        *prometheus.CounterVec   // route, method, code
	RequestSeconds  *prometheus.HistogramVec // route
	ReportsAccepted prometheus.Counter
	ReportsRejected prometheus.Counter
	// ReportsOverAircraftLimit counts the reports refused because they
	// would start an aircraft beyond the party's MaxAircraftPerParty.
	ReportsOverAircraftLimit prometheus.Counter
	EventsPublished          prometheus.Counter
	Escalations              prometheus.Counter
	// Resolutions counts the resolutions of alert transitions by outcome:
	// computed, or skipped (superseded by a newer transition of the
	// alert, or given up on, before they were started).
	Resolutions *prometheus.CounterVec
	// ResolutionsLate counts the alert transitions committed without
	// their resolution, which was not ready in time: their events tell
	// what the conflict is and not how to get clear.
	ResolutionsLate prometheus.Counter
	// ResolutionCPUSeconds is the CPU time the resolutions of alert
	// transitions took (on systems that tell a thread's CPU time).
	ResolutionCPUSeconds prometheus.Counter
	// FindingsBatchFailures counts the failed attempts to announce a
	// batch of the findings of new rules (findings.go); every later
	// batch waits behind a batch that fails.
	FindingsBatchFailures prometheus.Counter
	// FindingsBatchesSetAside counts the batches of findings set aside
	// because their own content keeps them from ever being announced
	// (each audited, rules_findings_set_aside, and kept in the store).
	FindingsBatchesSetAside prometheus.Counter
	// FindingsQueuesSetAside counts the queues of findings whose own row
	// could not be read, set aside and rebuilt from the batches' rows
	// (each audited, rules_findings_queue_set_aside, and kept in the
	// store).
	FindingsQueuesSetAside prometheus.Counter
	// AlertsRecordedLate counts the alerts raised and cleared while no
	// replica led detection that a takeover recorded late (late.go).
	AlertsRecordedLate prometheus.Counter
	// UnledAlertsDropped counts the alerts a replica dropped from its log
	// of those its engine raised while it did not lead, the log full: a
	// takeover cannot record them late if the leader did not commit them.
	UnledAlertsDropped prometheus.Counter
	// BudgetRefusals counts the work refused by a party's budgets, by
	// budget and party (the API's: requests, reports, previews,
	// alternatives, volumes, snapshots, streams): a 429, a search of
	// alternatives omitted, or a request beyond what its budget ever
	// holds. Parties are few and named by the operator.
	BudgetRefusals *prometheus.CounterVec
	// HotlineUnreadable counts the stored hotline messages this process
	// found it cannot read (each once): passed over by the lists, the
	// snapshots and the escalation (unreadable.go).
	HotlineUnreadable prometheus.Counter
	// DetectionStoodDown is 1 while this replica gives up (and does not
	// take) the detection lease because the rules in force are of a
	// newer version of the program, which it cannot read.
	DetectionStoodDown prometheus.Gauge

	sseClients func() int
	tracks     func() int
	alerts     func() map[string]int
	// alertCommit reads the alert transitions not committed yet (those
	// of a commit in doubt included) and whether a commit is in doubt.
	alertCommit func() (uncommitted int, inDoubt bool)
	// findingsFailuresInARow reads findingsFailures.
	findingsFailuresInARow func() int
}

func newMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deconflict_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		RequestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deconflict_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern (event streams excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		ReportsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deconflict_position_reports_accepted_total",
			Help: "Position reports accepted (the ingest rate is its rate()).",
		}),
		ReportsRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deconflict_position_reports_rejected_total",
			Help: "Position reports rejected by validation.",
		}),
		ReportsOverAircraftLimit: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deconflict_position_reports_over_aircraft_limit_total",
			Help: "Position reports refused because they would start an aircraft beyond the party's limit of live aircraft (serve --max-aircraft-per-party).",
		}),
		EventsPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deconflict_events_total",
			Help: "Events committed to the store and published.",
		}),
	}
	m.Resolutions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deconflict_resolutions_total",
		Help: "Resolutions of raised or updated conflict alerts for their events, by outcome (computed; skipped: superseded or given up on before they started).",
	}, []string{"outcome"})
	m.ResolutionsLate = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deconflict_resolutions_late_total",
		Help: "Alert transitions committed without their resolution, not ready in time.",
	})
	m.ResolutionCPUSeconds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deconflict_resolution_cpu_seconds_total",
		Help: "CPU time of the resolutions of alert transitions (on demand excluded).",
	})
	m.FindingsBatchFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deconflict_findings_batch_failures_total",
		Help: "Failed attempts to announce a batch of the findings of new rules (volumes that break them, pairs that conflict only under them); every later batch waits behind one that fails.",
	})
	m.FindingsBatchesSetAside = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deconflict_findings_batches_set_aside_total",
		Help: "Batches of findings of new rules set aside unannounced because their stored content cannot be read (each audited as rules_findings_set_aside and kept in the store): their findings never reached the parties.",
	})
	m.FindingsQueuesSetAside = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deconflict_findings_queues_set_aside_total",
		Help: "Queues of findings of new rules whose own row could not be read, set aside and rebuilt from the batches queued (each audited as rules_findings_queue_set_aside and kept in the store): no batch was announced meanwhile.",
	})
	m.AlertsRecordedLate = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deconflict_alerts_recorded_late_total",
		Help: "Alerts raised and cleared while no replica led detection, recorded late (recorded_late) by the replica that took over.",
	})
	m.UnledAlertsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deconflict_unled_alerts_dropped_total",
		Help: "Alerts dropped from this replica's log of those its engine raised while it did not lead, the log full: a takeover cannot record them late if the leader did not commit them.",
	})
	m.BudgetRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deconflict_budget_refusals_total",
		Help: "Work refused by a party's budget, by budget (requests, reports, previews, preview_positions, alternatives, volumes, volume_reveals, snapshots, streams) and party: a 429, a search of alternatives omitted for the budget, or a request beyond what the budget ever holds.",
	}, []string{"budget", "party"})
	m.HotlineUnreadable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deconflict_hotline_unreadable_messages_total",
		Help: "Stored hotline messages this process found it cannot read (each counted once): passed over by the lists, the event streams' snapshots and the escalation, each named in an ERROR log.",
	})
	m.DetectionStoodDown = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "deconflict_detection_stood_down",
		Help: "1 while this replica gives up and does not take the detection lease because the rules in force are of a newer version of deconflict, which it cannot read (a replica of that version leads); 0 otherwise.",
	})
	m.Escalations = hotline.NewEscalationsCounter()
	m.Registry.MustRegister(m.Escalations, m.Requests, m.RequestSeconds, m.ReportsAccepted, m.ReportsRejected, m.ReportsOverAircraftLimit, m.EventsPublished,
		m.Resolutions, m.ResolutionsLate, m.ResolutionCPUSeconds, m.FindingsBatchFailures, m.FindingsBatchesSetAside, m.FindingsQueuesSetAside,
		m.AlertsRecordedLate, m.UnledAlertsDropped, m.BudgetRefusals, m.HotlineUnreadable, m.DetectionStoodDown,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "deconflict_sse_clients",
		Help: "Open event streams.",
	}, func() float64 {
		if m.sseClients == nil {
			return 0
		}
		return float64(m.sseClients())
	}))
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "deconflict_tracks",
		Help: "Live tracks of all parties.",
	}, func() float64 {
		if m.tracks == nil {
			return 0
		}
		return float64(m.tracks())
	}))
	// A commit that keeps failing holds every alert after it back from
	// the parties: the operator must see it without reading the logs.
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "deconflict_alert_transitions_uncommitted",
		Help: "Alert transitions waiting for their commit to the store (retried until it succeeds); above 0 for long, the parties are not told of alerts.",
	}, func() float64 {
		if m.alertCommit == nil {
			return 0
		}
		n, _ := m.alertCommit()
		return float64(n)
	}))
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "deconflict_alert_commit_in_doubt",
		Help: "1 while a commit of alert transitions failed and whether it happened is not known yet: every later alert waits until it is settled.",
	}, func() float64 {
		if m.alertCommit == nil {
			return 0
		}
		if _, inDoubt := m.alertCommit(); inDoubt {
			return 1
		}
		return 0
	}))
	// A batch of findings that keeps failing holds every later one back
	// from the parties, as a commit of alerts does.
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "deconflict_findings_batch_failures_in_a_row",
		Help: "Failures in a row of the batch of findings of new rules at the head of the queue (0 once one is announced): above 0 for long, no later finding reaches the parties.",
	}, func() float64 {
		if m.findingsFailuresInARow == nil {
			return 0
		}
		return float64(m.findingsFailuresInARow())
	}))
	m.Registry.MustRegister(alertsCollector{m})
	return m
}

var alertsDesc = prometheus.NewDesc("deconflict_alerts_open", "Open alerts by level.", []string{"level"}, nil)

// alertsCollector reads the open alerts by level at scrape time, so the
// figure is exact without bookkeeping on the ingest path.
type alertsCollector struct{ m *Metrics }

func (c alertsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- alertsDesc }

func (c alertsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m.alerts == nil {
		return
	}
	for level, n := range c.m.alerts() {
		ch <- prometheus.MustNewConstMetric(alertsDesc, prometheus.GaugeValue, float64(n), level)
	}
}
