// Package service is the composition core of the deconflict server: it owns
// the live tactical engine and the volume index, and runs every write as one
// store transaction that carries the domain change, its audit record and its
// events together. Events are handed to live subscribers only after that
// transaction has committed. It also runs the periodic jobs (track expiry,
// end of volume windows, hotline escalation, audit checkpoints).
//
// The HTTP layer (package api) calls the methods of Service with the
// authenticated party; Service decides what that party may do and see.
package service

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/clock"
	"github.com/deconflict/deconflict/internal/disclose"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
)

// Config is what a Service needs. Store is required; the rest has defaults.
type Config struct {
	Store store.Store
	// DataDir holds files beside the store: operator.token and the audit
	// signing key. Empty means no files are written (tests).
	DataDir string
	// Now is the wall clock; tests may pin it.
	Now    func() time.Time
	Logger *slog.Logger
	// TickEvery is the period of the housekeeping jobs (default 1 s).
	TickEvery time.Duration
	// LogOrigin names the transparency log (its checkpoints' first line);
	// empty: a stable name derived from the signing key.
	LogOrigin string
	// Peers, for replicas on a shared database, relays positions and
	// decides which replica commits alert transitions (see replica.go).
	Peers Peers
	// ReplicaName names this replica to operators (GET /v1/log/witnesses
	// says which replica pushes to the witnesses); empty: this process's
	// random id.
	ReplicaName string
	// WithoutNeedToKnow turns need to know off: every party sees every
	// track, as before the disclosure rules existed. It exists for the
	// baseline of `deconflict bench --http` alone; no command sets it.
	WithoutNeedToKnow bool
	// WithoutResolution leaves the resolution out of the events of
	// raised and updated conflict alerts (one event per transition, for
	// all its parties, as before resolutions existed). It exists for the
	// baseline of `deconflict bench --http` alone; no command sets it.
	WithoutResolution bool
	// MaxAircraftPerParty bounds the live tracks of one party (default
	// DefaultMaxAircraftPerParty): a report that would start one more is
	// refused, and the party's live aircraft report on.
	MaxAircraftPerParty int
	// MaxVolumesPerParty and MaxPositionsPerParty bound the live volumes
	// of one party and the positions of their footprints (defaults
	// DefaultMaxVolumesPerParty and DefaultMaxPositionsPerParty): a
	// write beyond either is refused (volume.PartyLimits).
	MaxVolumesPerParty   int
	MaxPositionsPerParty int
	// SnapshotOpenMessages bounds the hotline items open or escalated
	// that the snapshot of an event stream carries (default
	// DefaultSnapshotOpenMessages); a party with more gets those due
	// first and is told so (EventsSnapshot.MessagesTruncated).
	SnapshotOpenMessages int
	// OnDemandAtOnce is how many resolutions on demand and searches of
	// alternatives, all parties' together, are computed at once (default
	// DefaultOnDemandAtOnce; ondemand.go): the others wait their turn.
	OnDemandAtOnce int
}

// DefaultMaxVolumesPerParty is the default of Config.MaxVolumesPerParty:
// a campaign of 2,000 sorties a day, each in nine volumes (as the
// syria-2015 scenario declares them), planned two days ahead holds 36,000.
const DefaultMaxVolumesPerParty = 50_000

// DefaultMaxPositionsPerParty is the default of
// Config.MaxPositionsPerParty: ten positions a volume at the most volumes
// (circles, orbits and corridors have one to a few, airspace polygons
// tens). A 1,000-vertex polygon costs 175 KB of memory and 40 KB in every
// listing of it: 500,000 positions are about 90 MB and 20 MB.
const DefaultMaxPositionsPerParty = 500_000

// Service is the running server state. It is safe for concurrent use.
type Service struct {
	st   store.Store
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	auth *party.Authenticator
	hub  *hub
	m    *Metrics
	// eventIDBase is the base of the ids a party is shown of its events
	// (eventids.go): the store's, fixed by its migration.
	eventIDBase int64
	// legacyCursorMax is the last global id a party could have been
	// shown before the store numbered each party's events (eventids.go).
	legacyCursorMax int64

	// wmu serialises writes so that events reach the hub in id order.
	wmu sync.Mutex
	// volumeWrites is held shared by the volume writes, taken before wmu,
	// and exclusively while the volume index is rebuilt for new rules
	// (seconds with 100,000 volumes): volume writes wait for the new
	// index, and every other write (alerts above all) goes on.
	volumeWrites sync.RWMutex
	// onLoadVolumes, when set (tests), is called as loadVolumes begins.
	onLoadVolumes func()
	// rulesApply is held from the adoption of rules (s.rules) to the end
	// of their application to the live engines (applyRules): without it
	// rules whose volume index takes seconds to rebuild (volumeWrites,
	// not the writers' lock) would retune the alert engine after a newer
	// version committed and applied meanwhile, which would stay superseded
	// until the next change.
	rulesApply sync.Mutex
	// onRulesApplyWait, when set (tests), is called when new rules wait
	// for the rules applied before them (rulesApply).
	onRulesApplyWait func()
	// onRulesCommitted, when set (tests), is called after a transaction
	// that brought rules into force committed, before they are adopted.
	onRulesCommitted func()
	// findingsBatchSize is how many findings of an activation one
	// transaction announces (findings.go; tests lower it).
	findingsBatchSize int
	// onFindingsBatch, when set (tests), is called in the transaction
	// that announces batch i of the findings, after it wrote them: an
	// error rolls the batch back and stops the announcement.
	onFindingsBatch func(i int64) error
	// findingsFailures counts the failures in a row of the batch of
	// findings at the head of the queue (findings.go).
	findingsFailures findingsFailures

	// rules is the rules in force: as agreed, and as the process runs
	// with them (setRules).
	rules atomic.Pointer[rulesInForce]
	vol   atomic.Pointer[volume.Registry]
	tac   *tactical
	// reconciledTenure is the tenure of the detection lease in which this
	// replica last reconciled the store with its engine (leadsDetection).
	reconciledTenure atomic.Int64
	disc             atomic.Pointer[disclose.Picture]
	// resolvers is the resolution set-up of the rules in force, cleared
	// the alerts that cleared lately (resolution.go).
	resolvers atomic.Pointer[resolver]
	cleared   clearedAlerts
	// started is when New began: this engine has had reports since
	// (ReconcileDetection).
	started time.Time
	// story is the alerts open as the store's events tell them (story.go).
	story     alertStory
	resolving chan struct{} // the pool computing resolutions, one token each
	// onDemand holds a token for each resolution on demand or search of
	// alternatives being computed (OnDemandTurn).
	onDemand chan struct{}
	// onDemandWait, when set (tests), is called when a search of
	// alternatives waits for its turn.
	onDemandWait func()

	alog           *audit.Log
	lastCheckpoint time.Time // touched by the periodic job only
	lastNonceSweep time.Time // touched by the periodic job only
	// lastIdempotencySweep is touched by the periodic job only.
	lastIdempotencySweep time.Time
	// inFlight are the idempotency keys of the writes being served.
	inFlight inFlight
	// idemBounds bound each party's kept answers (tests lower them).
	idemBounds idempotencyBounds
	tlog       *transLog
	keys       keyCache

	// rulesSeen is the store's rules version at the last syncFromStore.
	rulesSeen atomic.Int64
	// newerRules is set while the rules in force in the store are of a
	// newer version of the program (hold a field this one does not
	// know): this replica leads no detection (DetectionStandDown).
	newerRules atomic.Pointer[NewerRulesError]
	// writes recognise a write whose acknowledgement was lost (writeThen).
	writes *writeTokens
	// process is this process's registration (process.go).
	process *process
	// reportClock compares the service's time with the parties' reports'
	// (reportclock.go).
	reportClock *clock.ReportCheck

	// upgraded is set once the store was found migrated beyond this
	// program (fence.go).
	upgraded atomic.Bool

	// unreadable remembers the stored hotline messages passed over
	// because they cannot be read (unreadable.go).
	unreadable unreadableMessages

	credMu        sync.Mutex
	credListeners []func(partyName string)

	// OperatorToken is set when New created the operator (first start).
	OperatorToken string
}

// Errors for the api layer to map onto HTTP statuses.
var (
	ErrForbidden = errors.New("service: forbidden")
	ErrNotFound  = errors.New("service: not found")
)

// New opens the service over cfg.Store: it loads (or creates) the rules, the
// operator party and the live indexes from the store.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("service: no store")
	}
	// A store opened before a newer version migrated it: this program
	// would write it in the old way (fence.go).
	if fence, ok := cfg.Store.(store.SchemaFence); ok {
		if err := fence.CheckSchema(ctx); err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxAircraftPerParty <= 0 {
		cfg.MaxAircraftPerParty = DefaultMaxAircraftPerParty
	}
	if cfg.MaxVolumesPerParty <= 0 {
		cfg.MaxVolumesPerParty = DefaultMaxVolumesPerParty
	}
	if cfg.MaxPositionsPerParty <= 0 {
		cfg.MaxPositionsPerParty = DefaultMaxPositionsPerParty
	}
	if cfg.OnDemandAtOnce <= 0 {
		cfg.OnDemandAtOnce = DefaultOnDemandAtOnce()
	}
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = time.Second
	}
	s := &Service{
		st:   cfg.Store,
		cfg:  cfg,
		now:  cfg.Now,
		log:  cfg.Logger,
		auth: party.NewAuthenticator(cfg.Store, 0),
		m:    newMetrics(),

		idemBounds:        defaultIdempotencyBounds,
		findingsBatchSize: findingsBatchSize,
		resolving:         make(chan struct{}, runtime.GOMAXPROCS(0)),
		onDemand:          make(chan struct{}, cfg.OnDemandAtOnce),
	}
	key, err := signingKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.m.findingsFailuresInARow = s.findingsFailures.inARow
	s.process = newProcess()
	s.reportClock = clock.NewReportCheck(s.log)
	if s.cfg.ReplicaName == "" {
		s.cfg.ReplicaName = s.process.id
	}
	s.writes = newWriteTokens(s.process)
	s.started = s.now()
	s.alog = audit.NewLog(key, audit.DefaultEvery)
	s.lastCheckpoint = s.now()
	var last int64
	err = s.st.View(ctx, func(tx store.Tx) error {
		var err error
		if last, err = tx.LastEventID(); err != nil {
			return err
		}
		if s.eventIDBase, err = store.PartySeqBase(tx); err != nil {
			return err
		}
		s.legacyCursorMax, err = store.LegacyCursorMax(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("service: reading the last event id: %w", err)
	}
	s.hub = newHub(last)
	// Before the first write that puts this process's rows.
	if err := s.register(ctx); err != nil {
		return nil, fmt.Errorf("service: registering the process: %w", err)
	}
	s.m.sseClients = s.hub.count
	if err := s.loadRules(ctx); err != nil {
		return nil, err
	}
	if err := s.ensureOperator(ctx); err != nil {
		return nil, err
	}
	s.newPicture(s.Rules())
	if err := s.openTransLog(ctx, key, cfg.LogOrigin); err != nil {
		return nil, err
	}
	if err := s.loadVolumes(ctx, s.Rules()); err != nil {
		return nil, err
	}
	s.newTactical(s.Rules())
	// A party revoked while the service was down (the command line) may
	// have been the last one a proposal waited for.
	if err := s.settleProposals(ctx); err != nil {
		return nil, fmt.Errorf("service: settling the rules proposals: %w", err)
	}
	// Read once the writes of New are done: they are in it, and every
	// event delivered from now on is applied to it.
	stored, after, err := readStoredAlerts(ctx, s.st, true)
	if err != nil {
		return nil, fmt.Errorf("service: reading the alerts open in the store: %w", err)
	}
	s.story.seed(stored.Open, stored.parts, after)
	if cfg.Peers == nil {
		s.takeUpStoredAlerts(ctx, stored)
	}
	return s, nil
}

// takeUpStoredAlerts takes up, on the embedded store, the alerts a
// previous process left open in the store (it crashed, or stopped with
// alerts open): a start is a takeover from that process, whose engine is
// gone. Without it they stayed open for ever (a console resuming after the
// restart kept showing them, their hotline items waited, nothing cleared
// them), and the same conflict found again was raised a second time under
// a new id. As at a replica's takeover (ReconcileDetection), each is held
// until its aircraft report again, and goes on under its id when the
// engine finds it again, or is cleared as stale when they do not within
// the stale time from the start (a steady alert's last transition may lie
// long before it, its aircraft reporting all along).
// A commit that fails stays queued and is retried by the periodic job.
func (s *Service) takeUpStoredAlerts(ctx context.Context, stored StoredAlerts) {
	if len(stored.Open) == 0 {
		return
	}
	err := s.ReconcileDetection(ctx, func(context.Context) (StoredAlerts, error) { return stored, nil })
	if err != nil {
		s.log.Error("taking up the alerts open in the store: retried by the periodic job", "open", len(stored.Open), "err", err)
	}
}

// signingKey is the audit key of the data directory, or a key of this
// process alone when there is no directory (tests).
func signingKey(dir string) (ed25519.PrivateKey, error) {
	if dir == "" {
		_, key, err := ed25519.GenerateKey(nil)
		return key, err
	}
	key, err := audit.LoadOrCreateKey(dir)
	if err != nil {
		return nil, fmt.Errorf("service: the audit signing key: %w", err)
	}
	return key, nil
}

// AuditKey describes the public key that verifies the audit checkpoints.
func (s *Service) AuditKey() audit.KeyInfo { return audit.PublicKeyInfo(s.alog.PublicKey()) }

// ExportAudit writes the audit log from seq on as JSON lines, as p may see
// it: other parties' private details only as their hash (the operator sees
// everything).
func (s *Service) ExportAudit(ctx context.Context, p party.Principal, w io.Writer, fromSeq int64) error {
	viewer := p.Party
	if p.Operator {
		viewer = ""
	}
	// A page of records per read transaction, none open while w waits
	// for the client: a party that takes its export slowly, or not at
	// all, must not hold the store's readers the others need.
	view := func(fn func(store.Audit) error) error {
		return s.st.View(ctx, func(tx store.Tx) error { return fn(tx) })
	}
	last, err := s.alog.ExportPaged(view, w, viewer, fromSeq, s.now())
	if err != nil {
		return err
	}
	// The export ends with the log's checkpoint it was cut at.
	signed, err := s.logCheckpointAt(ctx, last)
	if err != nil {
		return err
	}
	return audit.WriteLogCheckpoint(w, signed)
}

// Metrics returns the Prometheus collectors of this service.
func (s *Service) Metrics() *Metrics { return s.m }

// Now is the service's wall clock.
func (s *Service) Now() time.Time { return s.now() }

// Ready reports whether the store answers.
func (s *Service) Ready(ctx context.Context) error {
	return s.st.View(ctx, func(tx store.Tx) error {
		_, err := tx.LastEventID()
		return err
	})
}

// Run performs the periodic jobs until ctx is cancelled.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tick(ctx)
		}
	}
}

// Tick runs every periodic job once, now (Run calls it every TickEvery).
func (s *Service) Tick(ctx context.Context) { s.tick(ctx) }

// tick runs each housekeeping job once; a failing job is logged and tried
// again at the next tick.
func (s *Service) tick(ctx context.Context) {
	if err := s.checkSchema(ctx); err != nil {
		var up *store.UpgradedError
		if errors.As(err, &up) {
			// Every job writes, and every write is refused.
			return
		}
		s.log.Warn("periodic job failed", "job", "check the store's schema version", "err", err)
	}
	for _, job := range s.jobs() {
		if err := job.fn(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.Warn("periodic job failed", "job", job.name, "err", err)
		}
	}
}

type job struct {
	name string
	fn   func(context.Context, time.Time) error
}

// EndStreams ends every live event stream (their clients resume later from
// the store), so that a graceful shutdown does not wait for them.
func (s *Service) EndStreams() { s.hub.closeAll() }

// Close ends the live streams and runs the shutdown jobs (the final audit
// checkpoint). Call it once, after the last request. The store is the
// caller's to close.
func (s *Service) Close(ctx context.Context) error {
	s.hub.closeAll()
	err := s.shutdownJobs(ctx)
	err = errors.Join(err, s.tlog.close(ctx))
	// This process's rows are spent once its last write is done.
	if derr := s.deregister(ctx); derr != nil {
		err = errors.Join(err, fmt.Errorf("service: deleting this process's meta rows: %w", derr))
	}
	return err
}

// Authenticate resolves a bearer token.
func (s *Service) Authenticate(ctx context.Context, token string) (party.Principal, error) {
	return s.auth.Authenticate(ctx, token, s.now())
}

// recTx records the events appended through it, whichever package appends
// them, so that they can be published after the commit.
type recTx struct {
	store.Tx
	events []store.Event
	// firstAudit and lastAudit are the seqs of the audit records
	// appended through it (0: none).
	firstAudit, lastAudit int64
}

func (r *recTx) AppendAudit(rec store.AuditRecord) error {
	if err := r.Tx.AppendAudit(rec); err != nil {
		return err
	}
	if r.firstAudit == 0 {
		r.firstAudit = rec.Seq
	}
	r.lastAudit = rec.Seq
	return nil
}

func (r *recTx) AppendEvent(e store.Event) (int64, error) {
	id, err := r.Tx.AppendEvent(e)
	if err != nil {
		return 0, err
	}
	e.ID = id
	r.events = append(r.events, e)
	return id, nil
}

// writeTokens recognise a write whose commit's acknowledgement was lost
// (the connection dropped during COMMIT, the database server restarted
// just after committing): each write of this process (they take turns
// under s.wmu) also puts its own token under the process's key of the
// meta space, and a write whose commit failed reads the key back, in a
// transaction of its own that waits for the writers' lock (on PostgreSQL a
// COMMIT still running on the server ends first). Its token there, it
// committed: it succeeds for its caller, who would otherwise see an error
// and try again, writing it twice (a hotline message with a deadline of
// its own, a second volume, a second rules proposal). Each process start
// leaves one small row, deleted once it ends (process.go).
type writeTokens struct {
	key string // the meta key of this process
	p   *process
	n   atomic.Uint64
}

func newWriteTokens(p *process) *writeTokens { return &writeTokens{key: writeMeta + p.id, p: p} }

// next returns the token of a new write.
func (w *writeTokens) next() string { return strconv.FormatUint(w.n.Add(1), 10) }

// ErrOutcomeUnknown wraps the failure of a write whose commit failed
// after everything was written, when the store could not be asked whether
// it committed all the same: it may have been applied.
var ErrOutcomeUnknown = errors.New("service: the store did not confirm the commit, and could not be asked whether it happened: the change may have been applied")

// settle returns nil when the write of token committed although its
// Update failed with err, and otherwise err (wrapped in ErrOutcomeUnknown
// when the store cannot tell).
func (w *writeTokens) settle(ctx context.Context, st store.Store, token string, err error) error {
	var committed bool
	rerr := st.Update(context.WithoutCancel(ctx), func(tx store.Tx) error {
		b, err := tx.GetMeta(w.key)
		if errors.Is(err, store.ErrNotFound) {
			// Not there because it was deleted, or because it did not
			// commit.
			return w.p.checkRegistered(tx)
		}
		// Another token: the write did not commit (only this process
		// writes the row, and a sweep only deletes it).
		committed = err == nil && string(b) == token
		return err
	})
	switch {
	case rerr != nil:
		return fmt.Errorf("%w (the commit: %w; reading it back: %w)", ErrOutcomeUnknown, err, rerr)
	case committed:
		return nil
	}
	return err
}

// write runs fn in one store transaction and, once it has committed,
// publishes the events fn appended.
func (s *Service) write(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.writeThen(ctx, fn, nil)
}

// writeThen is write with a hook run after the commit and before the
// events are published, to apply the change to in-memory state first (a
// client that reacts to an event must be able to read what it announces).
func (s *Service) writeThen(ctx context.Context, fn func(tx store.Tx) error, after func()) error {
	return s.writeThenKeep(ctx, fn, after, nil, nil)
}

// writeThenKeep is writeThen that, given the request's idempotency (nil:
// none), answers a key kept already from the store, writing nothing, and
// keeps the answer rendered from result() with the write (writeAnswer).
func (s *Service) writeThenKeep(ctx context.Context, fn func(tx store.Tx) error, after func(), idem *idempotent, result func() any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var rec *recTx
	var err error
	for {
		if rec, err = s.writeOnce(ctx, fn, idem, result); err == nil {
			break
		}
		// New rules are coming into force: the volumes are checked for
		// them without the writers' lock, so that alerts commit
		// meanwhile, and the transaction is run again.
		// A volume write checked under older rules than the store's:
		// they are adopted without the writers' lock (the volume index
		// may be rebuilt for them), and the transaction is run again.
		var ahead *scanAheadError
		var behind *rulesBehindError
		var outside func() error
		switch {
		case errors.As(err, &ahead):
			outside = func() error { return s.scanAhead(ctx, ahead) }
		case errors.As(err, &behind):
			outside = func() error { return behind.catchUp(ctx) }
		}
		if outside == nil {
			break
		}
		func() {
			// Locked again even if it panics: the deferred unlock
			// above expects it.
			s.wmu.Unlock()
			defer s.wmu.Lock()
			err = outside()
		}()
		if err != nil {
			break
		}
	}
	if err != nil {
		var se *httpsig.Error
		if sb, signed := statementOf(ctx); signed && !errors.As(err, &se) {
			s.useNonceAlone(ctx, sb)
		}
		return err
	}
	if after != nil {
		after()
	}
	s.publishCommitted(ctx, rec.events)
	return nil
}

// writeOnce is one transaction of writeThenKeep (s.wmu held); a failed
// commit whose write committed all the same succeeds.
func (s *Service) writeOnce(ctx context.Context, fn func(tx store.Tx) error, idem *idempotent, result func() any) (*recTx, error) {
	var rec *recTx
	token := s.writes.next()
	var done bool
	err := s.st.Update(ctx, func(tx store.Tx) error {
		rec = &recTx{Tx: tx}
		done = false
		// A replayed request is refused before anything else.
		if sb, signed := statementOf(ctx); signed {
			if err := s.useNonce(tx, sb.st); err != nil {
				return err
			}
		}
		// A request sent again with its idempotency key is answered
		// from the store and writes nothing (no statement either).
		if idem != nil {
			if err := idem.replay(tx, s.now()); err != nil {
				return err
			}
		}
		if err := fn(rec); err != nil {
			return err
		}
		if err := s.recordStatement(ctx, rec); err != nil {
			return err
		}
		if idem != nil {
			if err := idem.keep(tx, result(), s.now(), s.idemBounds); err != nil {
				return err
			}
		}
		if err := tx.PutMeta(s.writes.key, []byte(token)); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil && done {
		// Everything was written, and the commit failed, or its
		// acknowledgement was lost.
		err = s.writes.settle(ctx, s.st, token, err)
		if err == nil {
			s.log.Warn("a write reported as failed had committed: its acknowledgement was lost", "events", len(rec.events))
		}
	}
	return rec, err
}

// appendEvent adds one event with data as its JSON body.
func appendEvent(tx store.Tx, kind string, audience []string, data any, now time.Time) (int64, error) {
	body, err := json.Marshal(data)
	if err != nil {
		return 0, fmt.Errorf("service: encoding %s event: %w", kind, err)
	}
	return tx.AppendEvent(store.Event{Time: now.UTC(), Kind: kind, Audience: audience, Body: body})
}

// everyone is the audience of events that concern all parties.
var everyone = []string{"*"}

func (s *Service) ensureOperator(ctx context.Context) error {
	var token string
	err := s.write(ctx, func(tx store.Tx) error {
		token = ""
		_, err := tx.PartyByName(party.OperatorName)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		token, err = party.Add(tx, party.OperatorName, true, s.now())
		if err != nil {
			return err
		}
		return appendAudit(tx, "deconflict", "party_added", audit.For(), map[string]any{"party": party.OperatorName, "operator": true}, s.now())
	})
	if err != nil {
		return fmt.Errorf("service: creating the operator: %w", err)
	}
	if token == "" {
		return nil
	}
	s.OperatorToken = token
	if s.cfg.DataDir != "" {
		path := filepath.Join(s.cfg.DataDir, "operator.token")
		if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			return fmt.Errorf("service: writing %s: %w", path, err)
		}
		s.log.Info("operator token written", "path", path)
	}
	return nil
}

// AddParty creates a party and returns its first token (operator only).
// With an idempotency key, see issueToken.
func (s *Service) AddParty(ctx context.Context, actor party.Principal, name string, keys ...ed25519.PublicKey) (string, error) {
	if !actor.Operator {
		return "", ErrForbidden
	}
	return s.issueToken(ctx, actor.Party, name, func(tx store.Tx, now time.Time) (string, error) {
		return addParty(tx, actor.Party, name, false, now, keys...)
	})
}

// ListParties lists the parties (operator only).
func (s *Service) ListParties(ctx context.Context, actor party.Principal) ([]party.Info, error) {
	if !actor.Operator {
		return nil, ErrForbidden
	}
	return ListParties(ctx, s.st)
}

// CreateParty creates a party and returns its token, for programs that run
// the server in-process (demo, tests).
func (s *Service) CreateParty(ctx context.Context, name string, keys ...ed25519.PublicKey) (string, error) {
	return AddParty(ctx, s.st, "deconflict", name, false, s.now(), keys...)
}

// AddParty creates a party (or, with operator, the operator) in st with
// its audit record, and returns its token. The CLI calls it on a store
// that a running server may share; party changes carry no events.
func AddParty(ctx context.Context, st store.Store, actor, name string, operator bool, now time.Time, keys ...ed25519.PublicKey) (string, error) {
	created, err := AddPartyWith(ctx, st, actor, NewParty{Name: name, Operator: operator, Keys: keys}, now)
	return created.Token, err
}

// NewParty is a party to create: its name, whether it is the operator, its
// signing keys and its witness.
type NewParty struct {
	Name     string
	Operator bool
	Keys     []ed25519.PublicKey
	// Witness, when set, names the party's witness (its Party is the
	// party's name): see AddPartyWith.
	Witness *rules.Witness
}

// CreatedParty is what AddPartyWith did: the party's first token and, for
// a witness, the version of the rules naming it and whether it is in force
// (the initial rules) or proposed.
type CreatedParty struct {
	Token          string
	WitnessVersion int64
	WitnessInForce bool
}

// AddPartyWith creates a party (AddParty) and, in the same transaction,
// names its witness in the rules: while the store holds no rules yet (no
// server has started on it) they are the initial rules, the defaults with
// the witness, in force at once (there is nobody to agree with yet);
// otherwise the witness is a proposal of actor, against the rules in
// force, which every party of the airspace answers as any other, the new
// party included (its signed acceptance confirms its own witness).
func AddPartyWith(ctx context.Context, st store.Store, actor string, np NewParty, now time.Time) (CreatedParty, error) {
	var out CreatedParty
	if np.Witness != nil && np.Operator {
		return out, fielderr.New("witness", "the operator has no witness; a party has")
	}
	err := st.Update(ctx, func(tx store.Tx) error {
		out = CreatedParty{}
		var err error
		if out.Token, err = addParty(tx, actor, np.Name, np.Operator, now, np.Keys...); err != nil {
			return err
		}
		if np.Witness == nil {
			return nil
		}
		w := *np.Witness
		w.Party = np.Name
		out.WitnessVersion, out.WitnessInForce, err = nameWitness(tx, actor, w, now)
		return err
	})
	return out, err
}

// addParty is AddParty in tx.
func addParty(tx store.Tx, actor, name string, operator bool, now time.Time, keys ...ed25519.PublicKey) (string, error) {
	token, err := party.Add(tx, name, operator, now)
	if err != nil {
		return "", err
	}
	content := map[string]any{"party": name, "operator": operator}
	if !operator {
		// The party joins under the rules in force (its creation
		// accepts them) and must answer the open proposals.
		cur, err := tx.LatestRules()
		if err == nil {
			content["rules_version"] = cur.Version
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	if err := appendAudit(tx, actor, "party_added", audit.For(name), content, now); err != nil {
		return "", err
	}
	if err := addKeys(tx, actor, name, keys, now); err != nil {
		return "", err
	}
	if !operator {
		if err := askNewParty(tx, nil, name, now); err != nil {
			return "", err
		}
	}
	return token, nil
}

// ListParties lists the parties of st.
func ListParties(ctx context.Context, st store.Store) ([]party.Info, error) {
	var out []party.Info
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = party.List(tx)
		return err
	})
	return out, err
}

func (s *Service) loadRules(ctx context.Context) error {
	var r rules.Rules
	err := s.write(ctx, func(tx store.Tx) error {
		rec, err := tx.LatestRules()
		if errors.Is(err, store.ErrNotFound) {
			r = rules.Default()
			body, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := tx.PutRules(store.RulesRecord{Version: r.Version, Created: s.now().UTC(), Actor: "deconflict", Body: body}); err != nil {
				return err
			}
			return s.audit(tx, "deconflict", "rules_changed", audit.Everyone, r)
		}
		if err != nil {
			return err
		}
		r, err = decodeRules(rec)
		return err
	})
	if err != nil {
		return fmt.Errorf("service: loading the rules: %w", err)
	}
	s.rules.Store(s.prepareRules(r))
	return nil
}

// Rules returns the rules in force as the process runs with them: as
// agreed, but for the figures outside this version's bounds that it
// cannot run with (rules.InUse; AgreedRules lists them).
func (s *Service) Rules() rules.Rules { return s.rules.Load().inUse }

// AgreedRules returns the rules in force as the parties agreed them (as
// stored), and the figures the process runs with clamped into this
// version's bounds (none for rules agreed under this version).
func (s *Service) AgreedRules() (rules.Rules, []rules.Clamped) {
	in := s.rules.Load()
	return in.agreed, slices.Clone(in.clamped)
}

// rulesInForce is one version of the rules in force: as agreed, and as
// the process runs with it.
type rulesInForce struct {
	agreed, inUse rules.Rules
	clamped       []rules.Clamped
}

// prepareRules prepares agreed rules for the process: rules agreed under an
// older version may hold figures outside this version's bounds, which
// stay in the record (nothing agreed changes but by a new agreement) and
// are logged as a warning, with each figure clamped for the process and
// the field a proposal must bring within bounds.
func (s *Service) prepareRules(agreed rules.Rules) *rulesInForce {
	inUse, clamped := agreed.InUse()
	for _, c := range clamped {
		s.log.Warn("rules in force: a figure agreed under an older version is outside this version's bounds; the process runs with it clamped, the record keeps it: propose rules within the bounds",
			"version", agreed.Version, "field", c.Field, "agreed", c.Agreed, "in_use", c.InUse, "why", c.Why)
	}
	if err := inUse.Validate(); err != nil {
		s.log.Warn("rules in force: agreed under an older version, they fail this version's validation and stay in force as agreed; a proposal must bring them within the bounds",
			"version", agreed.Version, "error", err)
	}
	return &rulesInForce{agreed: agreed, inUse: inUse, clamped: clamped}
}

// Subscribe starts a live stream of the events concerning the principal.
// Subscribe before reading the backlog with EventsAfter, and drop live
// events whose id was already sent, so that nothing falls in between.
func (s *Service) Subscribe(p party.Principal) *Subscription {
	return s.hub.subscribe(p.Party, p.Operator)
}

// lockRulesApply takes rulesApply.
func (s *Service) lockRulesApply() {
	if s.rulesApply.TryLock() {
		return
	}
	if s.onRulesApplyWait != nil {
		s.onRulesApplyWait()
	}
	s.rulesApply.Lock()
}

// CatchUpEvents publishes the events that reached the store without passing
// through this process (another replica on a shared database, or a
// command-line tool), in id order. It runs every tick; a replica may also
// call it when the database notifies a new event.
func (s *Service) CatchUpEvents(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for {
		after := s.hub.last()
		var evs []store.Event
		err := s.st.View(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.EventsAfter(after, 1000)
			return err
		})
		if err != nil || len(evs) == 0 {
			return err
		}
		s.deliver(evs)
	}
}

// deliver hands committed events, in id order, to the live streams (s.wmu
// held), and acts on those that change credentials.
func (s *Service) deliver(evs []store.Event) {
	for _, a := range s.story.apply(evs) {
		s.cleared.add(&a)
	}
	if s.cfg.Peers != nil {
		// The alerts the store has: this replica's log of what nobody
		// committed forgets them (late.go).
		s.tac.delivered.note(evs)
	}
	s.hub.publish(evs)
	s.m.EventsPublished.Add(float64(len(evs)))
	s.noticeCredentials(evs)
}

// EventsBacklog counts the stored events concerning p with id > after, up
// to limit (limit when there are more), without reading them: how far
// behind a cursor is, judged at the cost of limit entries of an index at
// most. Event ids have no gaps, so the operator's (every event) is the
// difference of two ids.
func (s *Service) EventsBacklog(ctx context.Context, p party.Principal, after int64, limit int) (int, error) {
	var n int
	err := s.st.View(ctx, func(tx store.Tx) error {
		if !p.Operator {
			var err error
			n, err = store.CountEventsAfterFor(tx, p.Party, after, limit)
			return err
		}
		last, err := tx.LastEventID()
		n = int(min(max(last-after, 0), int64(max(limit, 0))))
		return err
	})
	return n, err
}

// EventsAfter returns up to limit stored events concerning p with id >
// after, in id order.
func (s *Service) EventsAfter(ctx context.Context, p party.Principal, after int64, limit int) ([]store.Event, error) {
	var out []store.Event
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		if p.Operator {
			out, err = tx.EventsAfter(after, limit)
		} else {
			out, err = store.EventsAfterFor(tx, p.Party, after, limit)
		}
		return err
	})
	return out, err
}
