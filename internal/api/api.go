// Package api owns the HTTP interface of the service under /v1: routing,
// authentication of bearer tokens, RFC 9457 problem+json errors, body and
// time limits, per-party rate limits, request metrics, the server-sent
// event stream with resume, and the OpenAPI 3.1 document that describes it
// all (served at /v1/openapi.json and checked against the routes and the
// responses by the tests).
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/jsonlimit"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/volume"
)

// Options tune the handler; zero values take the defaults.
type Options struct {
	// RequestTimeout bounds every request except event streams (default 30 s).
	RequestTimeout time.Duration
	// RatePerSecond and RateBurst size each party's token bucket (default
	// 1000/s, burst 2000: an ingest client at 200,000 reports/s in batches
	// of 1,000 needs 200/s).
	RatePerSecond float64
	RateBurst     float64
	// ReportsPerSecond and ReportsBurst size each party's budget of
	// position reports, which counts what a batch costs, its reports, not
	// the request (default DefaultReportsPerSecond, burst twice that and
	// at least MaxReportsPerRequest; budget.go), on this replica: a
	// floor, raised for a party whose fleet (service.MaxAircraftFor) at
	// ReportsPerAircraftPerSecond each is more, in a burst of twice
	// that.
	ReportsPerSecond float64
	ReportsBurst     float64
	// ReportsPerAircraftPerSecond is the report rate of each aircraft of
	// a party's fleet its budget of reports holds (default
	// DefaultReportsPerAircraftPerSecond); below 0, none: the budget is
	// ReportsPerSecond whatever the fleet.
	ReportsPerAircraftPerSecond float64
	// PreviewItemsPerSecond and PreviewItemsBurst size each party's budget
	// of airspace preview items (default DefaultPreviewItemsPerSecond,
	// burst twice that and at least two previews of MaxPreviewItems).
	PreviewItemsPerSecond float64
	PreviewItemsBurst     float64
	// AlternativesChecksPerSecond and AlternativesChecksBurst size each
	// party's budget of searches of alternatives, counted in checks
	// (volume.MaxAlternativesChecks; default
	// DefaultAlternativesChecksPerSecond, burst twice that and at least
	// DefaultAlternativesSearchesInBurst whole searches). A burst set
	// below a whole search (service.MaxAlternativesSearchChecks) never
	// holds the search among the most volumes (108 or more): it is never
	// made. The burst is at least the largest body's reading (1 MiB, a
	// check a byte).
	AlternativesChecksPerSecond float64
	AlternativesChecksBurst     float64
	// VolumePositionsPerSecond and VolumePositionsBurst size each party's
	// budget of volume writes (POST and PUT /v1/volumes, a volume's state
	// changes), counted by the positions of the footprint each compiles
	// and checks, plus VolumeWriteBasePositions a write (default
	// DefaultVolumePositionsPerSecond, burst twice that and at least the
	// largest write).
	VolumePositionsPerSecond float64
	VolumePositionsBurst     float64
	// PreviewPositionsPerSecond and PreviewPositionsBurst size each
	// party's budget of planning: the footprints airspace previews and
	// the alternatives endpoint compile and check, counted by their
	// positions as volume writes are, in a bucket of its own (default:
	// VolumePositionsPerSecond and VolumePositionsBurst; a rate set
	// without a burst, burst twice the rate; at least the largest
	// footprint): they write nothing, and paid from the budget of volume
	// writes, a preview beyond the burst, or a party asking alternatives
	// as fast as the budget refilled, kept its party from declaring or
	// ending a volume until the rate had paid it back. The alternatives a
	// write answers with are the write's, paid with it.
	PreviewPositionsPerSecond float64
	PreviewPositionsBurst     float64
	// VolumeRevealsPerSecond and VolumeRevealsBurst size each party's
	// budget of revealed volumes: under volume_visibility need_to_know,
	// each volume of another party that the party may not see otherwise
	// and that the answer to one of its probes shows (a preview item, a
	// request for alternatives, a volume write refused for a conflict;
	// service.RecordProbes) counts one (default
	// DefaultVolumeRevealsPerSecond, burst DefaultVolumeRevealsBurst).
	// A probe beyond it is refused whole with 429 too-many-volume-reveals,
	// showing nothing.
	VolumeRevealsPerSecond float64
	VolumeRevealsBurst     float64
	// ResolutionWorkPerSecond and ResolutionWorkBurst size each party's
	// budget of resolutions on demand (GET /v1/alerts/{id}/resolution),
	// counted in units of work (resolutionCost: ResolutionBaseWork a
	// resolution, a unit a track its search lists,
	// ResolutionWorkPerTested a track its bands or suggestion are
	// computed against; default DefaultResolutionWorkPerSecond, burst
	// twice the rate and at least ResolutionBaseWork). The
	// resolutions of alerts' events are charged to no party.
	ResolutionWorkPerSecond float64
	ResolutionWorkBurst     float64
	// resolutionWaitHook, for tests only, is called when a resolution on
	// demand waits for its party's previous one (resolutionSlots).
	resolutionWaitHook func(party string)
	// resolutionTurnWaitHook, for tests only, is called when a
	// resolution on demand waits for a turn of the service's work on
	// demand (service.OnDemandTurn).
	resolutionTurnWaitHook func(party string)
	// refusedBodyGrace, for tests only, replaces refusedBodyGrace (0:
	// that).
	refusedBodyGrace time.Duration
	// HeartbeatEvery is the period of SSE comment lines (default 15 s).
	HeartbeatEvery time.Duration
	// StreamWriteTimeout is how long an event stream waits for its client
	// to take what it writes before cutting it off (default 30 s, twice
	// the heartbeat's default period); the client resumes with
	// Last-Event-ID.
	StreamWriteTimeout time.Duration
	// MaxStreamsPerParty caps the long-lived requests (event streams and
	// audit exports) one party, the operator included, may have open at
	// once (default DefaultMaxStreamsPerParty); beyond it one more is
	// refused with 429 and Retry-After.
	MaxStreamsPerParty int
	// SnapshotsPerSecond and SnapshotsBurst size each party's budget of
	// event streams that open with a snapshot (default
	// DefaultSnapshotsPerSecond, burst MaxStreamsPerParty and at least
	// twice the rate): a snapshot reads up to thousands of the party's
	// hotline items, and a stream may be opened and closed at the
	// request rate, which MaxStreamsPerParty does not bound. Beyond it
	// a stream that would open with one is refused with 429 and
	// Retry-After (a resumed one that replays its backlog is not).
	SnapshotsPerSecond float64
	SnapshotsBurst     float64
	// StreamStartHook, for tests only, is called at the steps of the start
	// of an event stream that opens with a snapshot: "subscribed" before
	// the snapshot is read, "snapshot" after it, before the backlog is,
	// so that a test can commit an event in between.
	StreamStartHook func(step string)
	// previewAnswerBytes, for tests only, bounds the answer of a preview
	// (0: MaxPreviewAnswerBytes), so that a test cuts one short without
	// 32 MiB of answer.
	previewAnswerBytes int
	// Console is mounted at "/" when not nil.
	Console http.Handler
	Logger  *slog.Logger
	// PublicURL is the scheme and authority parties reach the API at
	// ("https://deconflict.example"), when a proxy stands between: signed
	// requests cover the target URI the party sent to. Empty: rebuilt from
	// each request.
	PublicURL string
}

// Handler is the http.Handler of the whole API.
type Handler struct {
	svc  *service.Service
	opt  Options
	mux  *http.ServeMux
	rate *rateLimiter
	// reports and previews are the budgets of position reports and of
	// preview items (Options.ReportsPerSecond, PreviewItemsPerSecond).
	reports, previews *costBudget
	// volumeWrites is the budget of volume writes, counted by the
	// positions of their footprints (Options.VolumePositionsPerSecond).
	volumeWrites *costBudget
	// previewPositions is the budget of the footprints previews and the
	// alternatives endpoint compile and check, counted by their positions
	// (Options.PreviewPositionsPerSecond): apart from volumeWrites, so
	// that planning never holds back a write. alternativesPositions is
	// the same budget (its bucket, its type, its name in the refusals
	// metric) as the alternatives endpoint's refusal names it: a client
	// asking alternatives, told "Airspace preview positions budget
	// spent", previewed nothing.
	previewPositions, alternativesPositions *costBudget
	// reveals is the budget of the other parties' volumes hidden from a
	// party that its probes show (Options.VolumeRevealsPerSecond).
	reveals *costBudget
	// alternatives is the budget of searches of alternatives
	// (Options.AlternativesChecksPerSecond): the alternatives endpoint's,
	// and that of the alternatives of volume writes and preview items.
	alternatives *costBudget
	// resolutions is the budget of resolutions on demand, counted in
	// units of work (Options.ResolutionWorkPerSecond), and
	// resolutionSlots has each party's computed one at a time, in turns
	// of the service's work on demand.
	resolutions     *costBudget
	resolutionSlots *resolutionSlots
	live            *live
	// snapshots is the budget of streams opening with a snapshot
	// (Options.SnapshotsPerSecond).
	snapshots *rateLimiter
	// refusals counts and logs the refusals by every budget above.
	refusals *refusals
	log      *slog.Logger
	start    time.Time
	// nonces refuses replayed signatures (signed.go).
	nonces *httpsig.NonceCache
	// startHook is Options.StreamStartHook.
	startHook func(step string)
}

// DefaultMaxStreamsPerParty is the default cap on a party's open event
// streams: a console per operator position and a few programs fit well
// within it.
const DefaultMaxStreamsPerParty = 32

// DefaultReportsPerSecond is the default of Options.ReportsPerSecond, the
// floor of each party's budget of reports: a report a second
// (DefaultReportsPerAircraftPerSecond) of each of the live aircraft a
// party may have by default (service.DefaultMaxAircraftPerParty). The
// request rate alone let one party post 10,000 reports a request 1,000
// times a second, all the service's CPU, so that the others' alerts
// waited behind its batches.
const DefaultReportsPerSecond = service.DefaultMaxAircraftPerParty * DefaultReportsPerAircraftPerSecond

// DefaultReportsPerAircraftPerSecond is the default of
// Options.ReportsPerAircraftPerSecond: a party's budget of reports holds
// a report a second of each aircraft of the fleet it may fly (the lower
// of the rules' max_aircraft for it and serve --max-aircraft-per-party),
// when that is above the floor: a fleet the parties agree beyond 50,000
// then reports at 1 Hz unthrottled (a budget fixed at 50,000 a second held
// back half of an agreed fleet of 100,000). 1 Hz is the rate of the
// fastest of the usual sources, ADS-B as ASTERIX CAT021 and drones'
// Remote ID (radar plots come every 4 to 12 s); a source that reports
// faster for a while has the burst, twice the rate. The budget still
// bounds a party: what it may send is what its agreed fleet sends, which
// the other parties agreed to.
const DefaultReportsPerAircraftPerSecond = 1

// DefaultPreviewItemsPerSecond is the default of
// Options.PreviewItemsPerSecond: an item (a conflict check, and the
// alternatives of a conflicting one) took about 1 ms of a core, and a
// preview of 3,000 polygons 2.6 s; four at once took the others' report
// latency from 0.5 ms to 89 ms (p50). At 100 items a second a party
// previews a whole file of 5,000 items every 50 s, with about a tenth of
// a core.
const DefaultPreviewItemsPerSecond = 100

// DefaultVolumeRevealsPerSecond and DefaultVolumeRevealsBurst are the
// defaults of Options.VolumeRevealsPerSecond and VolumeRevealsBurst: 360
// volumes an hour, 100 at once. A party planning near another's hidden
// volumes reveals a few with each plan (one request for alternatives
// answers the nearest conflict-free variants at once); a party sweeping
// probes over another's airspace to map it reveals one a probe, and is
// held to a few hundred an hour, each recorded and told to the owner.
const (
	DefaultVolumeRevealsPerSecond = 0.1
	DefaultVolumeRevealsBurst     = 100
)

// DefaultAlternativesChecksPerSecond is the default of
// Options.AlternativesChecksPerSecond: a search of alternatives at its
// bound, volume.MaxAlternativesChecks, took 71 to 86 ms of a core (about
// 4 ns a check), and one a second is less than a tenth of a core a party.
// A search in real airspace makes a few hundred checks and costs
// service.AlternativesSearchOverheadChecks more (about 40 µs in all): the
// budget holds some 2,000 of them a second, more than the request rate
// lets a party write volumes that conflict.
const DefaultAlternativesChecksPerSecond = volume.MaxAlternativesChecks

// DefaultVolumePositionsPerSecond is the default of
// Options.VolumePositionsPerSecond. Counted by request, one volume write
// could cost thousands of another: compiling and checking a footprint took
// 2 µs for a circle, 3.8 ms for a polygon of 1,000 vertices 300 km across
// and 13.4 ms for a corridor of 1,000 positions, in empty airspace, and 39
// to 90 ms among another party's volumes stacked at its limits (500
// polygons of 1,000 vertices, or 50,000 circles); at the request rate one
// party writing corridors kept 13 cores busy. 50,000 positions a second is
// 50 writes of 1,000 positions (under a core in empty airspace) and more
// than 1,000 small writes (the request rate binds them first).
const DefaultVolumePositionsPerSecond = 50_000

// VolumeWriteBasePositions is charged for every volume write on top of its
// footprint's positions: what a write costs besides, its commit and its
// record, 0.42 ms (BENCHMARKS.md, store), what some 40 positions take to
// compile and check.
const VolumeWriteBasePositions = 40

// maxVolumeWritePositions is the most a volume write costs: the largest
// footprint the rules can allow, and the base.
const maxVolumeWritePositions = rules.MaxVerticesBound + 1 + VolumeWriteBasePositions

// DefaultAlternativesSearchesInBurst is how many searches at their bound
// the default burst holds: a search among many volumes reserves the bound
// before it runs, so this many of them may run at once (a console's write
// and its alternatives, an import's writes in flight) before the next
// finds the budget short; searches among few volumes reserve little.
const DefaultAlternativesSearchesInBurst = 8

// DefaultSnapshotsPerSecond is the default of Options.SnapshotsPerSecond:
// every console of a party reconnecting once a few seconds, well above
// what consoles that stay connected take.
const DefaultSnapshotsPerSecond = 5

// streamRetryAfterS is the Retry-After of a stream refused at the cap.
const streamRetryAfterS = 10

// auth levels of a route.
type authLevel int

const (
	public   authLevel = iota // no token
	anyParty                  // any valid token, operator included
	operator                  // the operator's token only
)

// route is one endpoint. The table of routes is the single source for the
// mux and for the test that checks the OpenAPI document.
type route struct {
	method  string
	path    string // ServeMux pattern path, e.g. /v1/volumes/{id}
	auth    authLevel
	maxBody int64
	stream  bool // long-lived: no request time limit, no latency metric
	// budget, when not nil, is the party's budget the request is counted
	// against by what it costs (budget.go).
	budget *costBudget
	// idempotent: the write takes an Idempotency-Key (idempotency.go).
	idempotent bool
	h          func(w http.ResponseWriter, r *http.Request, p party.Principal) error
}

const (
	smallBody     = 64 << 10
	volumeBody    = 1 << 20
	positionsBody = 4 << 20
)

func (h *Handler) routes() []route {
	return []route{
		{method: "GET", path: "/healthz", auth: public, h: h.healthz},
		{method: "GET", path: "/readyz", auth: public, h: h.readyz},
		{method: "GET", path: "/v1/openapi.json", auth: public, h: h.openapi},
		{method: "GET", path: "/v1/me", auth: anyParty, h: h.me},
		{method: "GET", path: "/v1/rules", auth: anyParty, h: h.getRules},
		{method: "PUT", path: "/v1/rules", auth: operator, maxBody: smallBody, idempotent: true, h: h.putRules},
		{method: "GET", path: "/v1/rules/proposals", auth: anyParty, h: h.listRulesProposals},
		{method: "POST", path: "/v1/rules/{version}/accept", auth: anyParty, maxBody: smallBody, idempotent: true, h: h.acceptRules},
		{method: "POST", path: "/v1/rules/{version}/reject", auth: anyParty, maxBody: smallBody, idempotent: true, h: h.rejectRules},
		{method: "GET", path: "/v1/parties", auth: operator, h: h.listParties},
		{method: "POST", path: "/v1/parties", auth: operator, maxBody: smallBody, idempotent: true, h: h.addParty},
		{method: "POST", path: "/v1/parties/{name}/rotate", auth: operator, maxBody: smallBody, idempotent: true, h: h.rotateParty},
		{method: "GET", path: "/v1/parties/{name}/keys", auth: anyParty, h: h.listKeys},
		{method: "POST", path: "/v1/parties/{name}/keys", auth: anyParty, maxBody: smallBody, h: h.addKey},
		{method: "POST", path: "/v1/parties/{name}/keys/{keyid}/retire", auth: anyParty, maxBody: smallBody, h: h.retireKey},
		{method: "POST", path: "/v1/parties/{name}/revoke", auth: operator, maxBody: smallBody, h: h.revokeParty},
		{method: "POST", path: "/v1/positions", auth: anyParty, maxBody: positionsBody, budget: h.reports, h: h.postPositions},
		{method: "GET", path: "/v1/tracks", auth: anyParty, h: h.getTracks},
		{method: "GET", path: "/v1/alerts", auth: anyParty, h: h.getAlerts},
		{method: "GET", path: "/v1/alerts/{id}/resolution", auth: anyParty, h: h.getResolution},
		{method: "POST", path: "/v1/volumes", auth: anyParty, maxBody: volumeBody, budget: h.volumeWrites, idempotent: true, h: h.postVolume},
		{method: "GET", path: "/v1/volumes", auth: anyParty, h: h.listVolumes},
		{method: "POST", path: "/v1/volumes/preview", auth: anyParty, maxBody: importBody, budget: h.previews, h: h.previewVolumes},
		{method: "POST", path: "/v1/volumes/alternatives", auth: anyParty, maxBody: volumeBody, budget: h.alternatives, h: h.postAlternatives},
		{method: "GET", path: "/v1/volumes/{id}", auth: anyParty, h: h.getVolume},
		{method: "PUT", path: "/v1/volumes/{id}", auth: anyParty, maxBody: volumeBody, budget: h.volumeWrites, idempotent: true, h: h.putVolume},
		{method: "POST", path: "/v1/volumes/{id}/state", auth: anyParty, maxBody: smallBody, budget: h.volumeWrites, idempotent: true, h: h.postVolumeState},
		{method: "POST", path: "/v1/hotline/messages", auth: anyParty, maxBody: smallBody, idempotent: true, h: h.postMessage},
		{method: "GET", path: "/v1/hotline/messages", auth: anyParty, h: h.listMessages},
		{method: "POST", path: "/v1/hotline/messages/{id}/ack", auth: anyParty, maxBody: smallBody, h: h.ackMessage},
		// An export of millions of records takes longer than a request.
		{method: "GET", path: "/v1/audit", auth: anyParty, stream: true, h: h.getAudit},
		{method: "GET", path: "/v1/audit/key", auth: anyParty, h: h.getAuditKey},
		{method: "GET", path: "/v1/log/key", auth: anyParty, h: h.getLogKey},
		{method: "GET", path: "/v1/log/checkpoint", auth: anyParty, h: h.getLogCheckpoint},
		{method: "GET", path: "/v1/log/witnesses", auth: anyParty, h: h.getLogStatus},
		{method: "GET", path: "/v1/log/proof/inclusion", auth: anyParty, h: h.getInclusionProof},
		{method: "GET", path: "/v1/log/proof/consistency", auth: anyParty, h: h.getConsistencyProof},
		{method: "GET", path: "/v1/events", auth: anyParty, stream: true, h: h.events},
	}
}

// NewHandler returns the API over svc, with /metrics (operator token),
// /healthz, /readyz, /v1/... and, when opt.Console is set, the console at /.
func NewHandler(svc *service.Service, opt Options) *Handler {
	if opt.RequestTimeout <= 0 {
		opt.RequestTimeout = 30 * time.Second
	}
	if opt.RatePerSecond <= 0 {
		opt.RatePerSecond = 1000
	}
	if opt.RateBurst <= 0 {
		opt.RateBurst = 2 * opt.RatePerSecond
	}
	// A request takes one from the bucket: one that never holds one
	// refuses every request with 429 for ever.
	opt.RateBurst = max(opt.RateBurst, 1)
	if opt.ReportsPerSecond <= 0 {
		opt.ReportsPerSecond = DefaultReportsPerSecond
	}
	if opt.ReportsBurst <= 0 {
		opt.ReportsBurst = 2 * opt.ReportsPerSecond
	}
	if opt.ReportsPerAircraftPerSecond == 0 {
		opt.ReportsPerAircraftPerSecond = DefaultReportsPerAircraftPerSecond
	}
	if opt.PreviewItemsPerSecond <= 0 {
		opt.PreviewItemsPerSecond = DefaultPreviewItemsPerSecond
	}
	if opt.PreviewItemsBurst <= 0 {
		opt.PreviewItemsBurst = max(2*opt.PreviewItemsPerSecond, 2*MaxPreviewItems)
	}
	if opt.AlternativesChecksPerSecond <= 0 {
		opt.AlternativesChecksPerSecond = DefaultAlternativesChecksPerSecond
	}
	if opt.AlternativesChecksBurst <= 0 {
		opt.AlternativesChecksBurst = max(2*opt.AlternativesChecksPerSecond, DefaultAlternativesSearchesInBurst*volume.MaxAlternativesChecks)
	}
	if opt.VolumePositionsPerSecond <= 0 {
		opt.VolumePositionsPerSecond = DefaultVolumePositionsPerSecond
	}
	if opt.VolumePositionsBurst <= 0 {
		opt.VolumePositionsBurst = 2 * opt.VolumePositionsPerSecond
	}
	switch {
	case opt.PreviewPositionsPerSecond <= 0:
		opt.PreviewPositionsPerSecond = opt.VolumePositionsPerSecond
		if opt.PreviewPositionsBurst <= 0 {
			opt.PreviewPositionsBurst = opt.VolumePositionsBurst
		}
	case opt.PreviewPositionsBurst <= 0:
		opt.PreviewPositionsBurst = 2 * opt.PreviewPositionsPerSecond
	}
	if opt.VolumeRevealsPerSecond <= 0 {
		opt.VolumeRevealsPerSecond = DefaultVolumeRevealsPerSecond
	}
	if opt.VolumeRevealsBurst <= 0 {
		opt.VolumeRevealsBurst = DefaultVolumeRevealsBurst
	}
	if opt.ResolutionWorkPerSecond <= 0 {
		opt.ResolutionWorkPerSecond = DefaultResolutionWorkPerSecond
	}
	if opt.ResolutionWorkBurst <= 0 {
		opt.ResolutionWorkBurst = 2 * opt.ResolutionWorkPerSecond
	}
	if opt.previewAnswerBytes <= 0 {
		opt.previewAnswerBytes = MaxPreviewAnswerBytes
	}
	if opt.HeartbeatEvery <= 0 {
		opt.HeartbeatEvery = 15 * time.Second
	}
	if opt.StreamWriteTimeout <= 0 {
		opt.StreamWriteTimeout = 30 * time.Second
	}
	if opt.MaxStreamsPerParty <= 0 {
		opt.MaxStreamsPerParty = DefaultMaxStreamsPerParty
	}
	if opt.SnapshotsPerSecond <= 0 {
		opt.SnapshotsPerSecond = DefaultSnapshotsPerSecond
	}
	if opt.SnapshotsBurst <= 0 {
		opt.SnapshotsBurst = max(float64(opt.MaxStreamsPerParty), 2*opt.SnapshotsPerSecond)
	}
	opt.SnapshotsBurst = max(opt.SnapshotsBurst, 1)
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		svc:       svc,
		opt:       opt,
		mux:       http.NewServeMux(),
		rate:      newRateLimiter(opt.RatePerSecond, opt.RateBurst),
		snapshots: newRateLimiter(opt.SnapshotsPerSecond, opt.SnapshotsBurst),
		// A malformed batch costs a report per 100 bytes read, about
		// the least a report takes, and decoding is most of the work
		// of a report refused at the edge.
		// A report is an object of at least two bytes, "{}", and a
		// separator: a body of n bytes holds n/3+1 at most.
		reports: newCostBudget(opt.ReportsPerSecond, opt.ReportsBurst, MaxReportsPerRequest, 3, 100,
			"too-many-reports", "Position report budget spent", "position reports", "--reports-per-second"),
		// A file refused unread costs an item per 100 KB: a 10 MB
		// file was parsed in 20 ms, what 20 items take to check.
		previews: newCostBudget(opt.PreviewItemsPerSecond, opt.PreviewItemsBurst, MaxPreviewItems, 0, 100_000,
			"too-many-preview-items", "Airspace preview budget spent", "preview items", "--preview-items-per-second"),
		// A search reserves what it may cost among the volumes near it
		// (alternativesPayer). Reading the request to the alternatives
		// endpoint costs a check per byte read, reserved by its
		// Content-Length before it is read (a volume's body, 1 MiB, at
		// most): decoding a volume takes about what a few checks take a
		// byte.
		alternatives: newCostBudget(opt.AlternativesChecksPerSecond, opt.AlternativesChecksBurst, volumeBody, 1, 1,
			"too-many-alternatives-checks", "Alternatives search budget spent", "checks of alternatives", "--alternatives-checks-per-second"),
		// A position of a footprint is at least "[0,0]" and a comma, 6
		// bytes. A write refused before its footprint was counted
		// (malformed, or for its signature) costs a position per 100
		// bytes read: decoding is cheap beside compiling.
		volumeWrites: newCostBudgetBase(opt.VolumePositionsPerSecond, opt.VolumePositionsBurst, maxVolumeWritePositions, VolumeWriteBasePositions, 6, 100,
			"too-many-volume-positions", "Volume write budget spent", "positions of volume footprints", "--volume-positions-per-second"),
		// Paid once a preview's file is read (payPreviewFootprints), or
		// the volume of a request for alternatives (postAlternatives):
		// the burst holds the largest footprint at least.
		previewPositions: newCostBudget(opt.PreviewPositionsPerSecond, opt.PreviewPositionsBurst, rules.MaxVerticesBound+1, 0, 100,
			"too-many-preview-positions", "Airspace preview positions budget spent", "positions of previewed footprints", "--preview-positions-per-second"),
		// Charged before a probe's answer shows the hidden volumes it
		// counts (revealPayer): nothing is read on credit.
		reveals: newCostBudget(opt.VolumeRevealsPerSecond, opt.VolumeRevealsBurst, 1, 0, 1,
			"too-many-volume-reveals", "Volume reveal budget spent", "volumes of other parties hidden from this party that its probes (previews, requests for alternatives, writes refused for a conflict) may show", "--volume-reveals-per-second"),
		// Charged once computed (resolutionOnDemand): what it takes
		// before is ResolutionBaseWork, which the burst holds at least.
		resolutions: newCostBudget(opt.ResolutionWorkPerSecond, opt.ResolutionWorkBurst, ResolutionBaseWork, 0, 1,
			"too-many-resolutions", "Resolution budget spent", "units of work of resolutions on demand", "--resolution-work-per-second"),
		resolutionSlots: &resolutionSlots{turn: svc.OnDemandTurn, waiting: opt.resolutionWaitHook, waitingTurn: opt.resolutionTurnWaitHook},
		live:            newLive(opt.MaxStreamsPerParty),
		log:             opt.Logger,
		start:           time.Now(),
		nonces:          httpsig.NewNonceCache(),

		startHook: opt.StreamStartHook,
	}
	h.refusals = newRefusals(svc.Metrics().BudgetRefusals, h.log)
	for b, name := range map[*costBudget]string{h.reports: budgetReports, h.previews: budgetPreviews,
		h.alternatives: budgetAlternatives, h.volumeWrites: budgetVolumes, h.previewPositions: budgetPreviewPositions,
		h.resolutions: budgetResolutions, h.reveals: budgetReveals} {
		b.name, b.refusals = name, h.refusals
	}
	h.alternativesPositions = h.previewPositions.sharedAs("Alternatives request positions budget spent",
		"positions of footprints planned")
	if opt.ReportsPerAircraftPerSecond > 0 {
		h.reports.limiter.limitsOf = h.reportLimits
		h.reports.rateSource = h.reportRateSource
	}
	for _, rt := range h.routes() {
		h.mux.Handle(rt.method+" "+rt.path, h.wrap(rt))
	}
	h.mux.Handle("GET /metrics", h.operatorOnly(MetricsHandler(svc)))
	// A revoked or rotated token ends its streams and requests at once.
	svc.OnCredentialsChanged(func(partyName string) { go h.credentialsChanged(partyName) })
	// Anything else under /v1 is a problem+json 404 or 405, not the console.
	h.mux.HandleFunc("/v1/", h.noRoute)
	if opt.Console != nil {
		h.mux.Handle("/", opt.Console)
	}
	return h
}

// noRoute answers a /v1 request no route takes: 405 with Allow when the
// path exists with other methods, else 404.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT"} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := h.mux.Handler(r2); pat != "" && pat != "/v1/" && pat != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, problem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
			r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", ")))
		return
	}
	writeProblem(w, problem(http.StatusNotFound, "not-found", "Not found", "no route "+r.Method+" "+r.URL.Path))
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// statusWriter remembers the status code for the request metric.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (h *Handler) wrap(rt route) http.Handler {
	m := h.svc.Metrics()
	pattern := rt.method + " " + rt.path
	latency := m.RequestSeconds.WithLabelValues(rt.path)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var body *finishedBody
		if r.Body != nil && r.Body != http.NoBody {
			// The server looks at the request's Body once the handler
			// has returned (this r is its request): its own, it closes
			// the connection of a client still waiting for 100
			// Continue, or with more left than it reads after a
			// handler, rather than read a body it would not use. Any
			// other, it reads up to 256 KiB of it before it answers.
			// So the body it gave is given back, whatever this
			// handler (finishedBody) and serve (countedBody,
			// watchedBody) put in its place.
			defer func(given io.ReadCloser) { r.Body = given }(r.Body)
			body = &finishedBody{ReadCloser: r.Body}
			r.Body = body
		}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			m.Requests.WithLabelValues(rt.path, rt.method, strconv.Itoa(code)).Inc()
			if !rt.stream {
				latency.Observe(time.Since(start).Seconds())
			}
		}()
		if err := h.serve(sw, r, rt); err != nil {
			p := toProblem(err)
			if p.Status >= 500 {
				h.log.Error("request failed", "route", pattern, "err", err)
			}
			if sw.code == 0 {
				if body != nil && !body.finished.Load() {
					// Refused before the body was read to its end: the
					// server reads the rest (up to 256 KiB) before it
					// answers, so that a client sending it whole reads
					// the refusal instead of a reset. A client that sends
					// no more (slow, stalled, or its token just rotated
					// out) is answered after refusedBodyGrace all the
					// same, and its connection closed.
					grace := refusedBodyGrace
					if h.opt.refusedBodyGrace > 0 {
						grace = h.opt.refusedBodyGrace
					}
					_ = http.NewResponseController(sw).SetReadDeadline(time.Now().Add(grace))
				}
				writeProblem(sw, p)
			}
		}
	})
}

// refusedBodyGrace bounds how long a refusal waits for the rest of a
// request body its handler did not read.
const refusedBodyGrace = 2 * time.Second

// finishedBody tells whether the request body was read to its end.
type finishedBody struct {
	io.ReadCloser
	finished atomic.Bool
}

func (b *finishedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.finished.Store(true)
	}
	return n, err
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt route) error {
	if rt.auth == public {
		return h.serveAs(w, r, rt, party.Principal{})
	}
	// Tokens and what a party may see must not stay in any cache.
	w.Header().Set("Cache-Control", "no-store")
	tok, ok := party.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		return errUnauthenticated
	}
	changes := h.live.changesSeen()
	p, err := h.svc.Authenticate(r.Context(), tok)
	if err != nil {
		return err
	}
	if rt.auth == operator && !p.Operator {
		return errForbidden
	}
	if wait, ok := h.rate.allow(p.Party, time.Now()); !ok {
		h.refusals.refused(budgetRequests, p.Party, "a request", time.Now())
		pr := problem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
			"this party's request rate is above its limit; retry after the delay in Retry-After")
		pr.retryAfterS = retryAfterSeconds(wait)
		return pr
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	// The alternatives of a write or a preview item are searched only
	// when the party's budget holds a search (else omitted); those of the
	// alternatives endpoint are paid by its reservation (postAlternatives).
	ctx = service.WithAlternativesBudget(ctx, alternativesPayer{h.alternatives})
	// The hidden volumes a probe shows are paid before it answers.
	ctx = service.WithRevealBudget(ctx, revealPayer{h.reveals})
	if rt.budget != nil {
		res, err := rt.budget.reserve(p.Party, r.ContentLength, time.Now())
		if err != nil {
			return err
		}
		// Not settled by the handler (refused before it counted what
		// the request holds): it costs what was read of it.
		defer res.settleRead()
		ctx = withReservation(ctx, res)
		if r.Body != nil {
			r.Body = countedBody{ReadCloser: r.Body, read: &res.read}
		}
	}
	rc := http.NewResponseController(w)
	body := &watchedBody{ReadCloser: r.Body}
	if r.Body != nil {
		r.Body = body
	}
	lr, ok := h.live.begin(p.Party, tok, rt.stream, func(cause error) {
		cancel(cause)
		// A handler blocked reading the body does not watch its context.
		// (Only then: a read deadline that hits the server's own read
		// between requests would cancel the connection's later requests.)
		body.end(cause, func() { _ = rc.SetReadDeadline(time.Now()) })
	})
	if !ok {
		h.refusals.refused(budgetStreams, p.Party, "a long-lived request", time.Now())
		pr := problem(http.StatusTooManyRequests, "too-many-streams", "Too many event streams",
			fmt.Sprintf("this party has %d long-lived requests open (event streams and audit exports), its limit; close one or retry after the delay in Retry-After", h.opt.MaxStreamsPerParty))
		pr.retryAfterS = streamRetryAfterS
		return pr
	}
	defer h.live.finish(p.Party, lr, rt.stream)
	if h.live.changesSeen() != changes {
		// Credentials changed while this request authenticated: it may
		// have been let in by a token just revoked.
		if _, err := h.svc.Authenticate(ctx, tok); err != nil {
			return err
		}
	}
	err = h.serveAs(w, r.WithContext(ctx), rt, p)
	if errors.Is(context.Cause(ctx), errCredentialsChanged) {
		// The connection may have lost its read: it is not reused.
		w.Header().Set("Connection", "close")
		return errUnauthenticated
	}
	return err
}

// watchedBody tells whether a handler is blocked reading the request body,
// and fails its reads once the request is ended (end).
type watchedBody struct {
	io.ReadCloser
	reading atomic.Bool
	ended   atomic.Pointer[error]
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.reading.Store(true)
	defer b.reading.Store(false)
	if err := b.ended.Load(); err != nil {
		return 0, *err
	}
	return b.ReadCloser.Read(p)
}

// end fails the body's reads with cause: the next one at once, and one
// already blocked through unblock (the connection's read deadline). Either
// Read sees the end before it blocks, or end sees it reading: a request
// ended before its handler began to read (the handler slow to start, on a
// loaded machine) no longer blocks in Read for as long as its client sends
// nothing.
func (b *watchedBody) end(cause error, unblock func()) {
	b.ended.Store(&cause)
	if b.reading.Load() {
		unblock()
	}
}

// serveAs runs the route's handler as p, within the body and time limits.
func (h *Handler) serveAs(w http.ResponseWriter, r *http.Request, rt route, p party.Principal) error {
	if r.Body != nil {
		limit := rt.maxBody
		if limit == 0 {
			limit = smallBody
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	if !rt.stream {
		ctx, cancel := context.WithTimeout(r.Context(), h.opt.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	if rt.auth != public {
		var err error
		if r, err = h.checkSignature(r, p); err != nil {
			return err
		}
	}
	if rt.idempotent {
		var err error
		if r, err = withIdempotency(r, p); err != nil {
			return err
		}
	}
	err := rt.h(w, r, p)
	if writeReplayed(w, err) {
		return nil
	}
	return err
}

// MetricsHandler serves the Prometheus metrics of svc without
// authentication, for a listener of its own (serve --metrics-listen); the
// API serves them at /metrics to the operator only.
func MetricsHandler(svc *service.Service) http.Handler {
	return promhttp.HandlerFor(svc.Metrics().Registry, promhttp.HandlerOpts{})
}

// operatorOnly lets the operator's token through to next, and answers
// everyone else with a problem.
func (h *Handler) operatorOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		tok, ok := party.BearerToken(r.Header.Get("Authorization"))
		if !ok {
			writeProblem(w, errUnauthenticated)
			return
		}
		p, err := h.svc.Authenticate(r.Context(), tok)
		if err != nil {
			writeProblem(w, toProblem(err))
			return
		}
		if !p.Operator {
			writeProblem(w, problem(http.StatusForbidden, "forbidden", "Forbidden", "the metrics are the operator's"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// decode reads one JSON object from the body into v, refusing unknown
// fields and trailing data, and naming the field at fault.
func decode(r *http.Request, v any) error {
	return decodeFrom(r.Body, v)
}

// decodeFrom reads exactly one JSON object, without unknown fields, into v.
func decodeFrom(rd io.Reader, v any) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return jsonProblem(err)
	}
	if err := jsonlimit.Check(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return badRequest("", "trailing data after the JSON object")
	}
	return nil
}

func jsonProblem(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return badRequest(te.Field, "wrong type: expected "+te.Type.String())
	}
	// encoding/json names an unknown field only in its message.
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		if name = strings.TrimSuffix(name, `"`); name == "" {
			return badRequest("body", `unknown field ""`) // a member named ""
		}
		return badRequest(name, "unknown field")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return badRequest("", "malformed JSON at byte "+strconv.FormatInt(se.Offset, 10)+": "+se.Error())
	}
	return badRequest("", "malformed JSON: "+err.Error())
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request, _ party.Principal) error {
	return writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request, _ party.Principal) error {
	if err := h.svc.Ready(r.Context()); err != nil {
		return problem(http.StatusServiceUnavailable, "not-ready", "Not ready", "the store does not answer")
	}
	return writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	return writeJSON(w, http.StatusOK, map[string]any{"party": p.Party, "operator": p.Operator})
}

func (h *Handler) getRules(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	agreed, clamped := h.svc.AgreedRules()
	return writeJSON(w, http.StatusOK, rulesView{Rules: agreed, Clamped: clamped})
}

// rulesView is the rules in force as agreed and, for rules agreed under an
// older version whose bounds were wider, the figures the service runs
// with clamped into this version's bounds (rules.InUse).
type rulesView struct {
	rules.Rules
	Clamped []rules.Clamped `json:"clamped,omitempty"`
}
