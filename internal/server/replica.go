package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/clock"
	"github.com/deconflict/deconflict/internal/replica"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/track"
)

// DetectionLeaseTTL is how long the detection lease outlives its holder:
// after a replica dies, another one commits alert transitions again within
// about this time (plus one renewal period, TTL/5).
const DetectionLeaseTTL = 10 * time.Second

// replication is what a replica on a shared PostgreSQL runs besides the
// service: the position relay, the event wake-up and the detection lease.
// It is nil on the embedded store.
type replication struct {
	relay *replica.Relay
	lease *replica.Lease
	clock *replica.Clock
	log   *slog.Logger
	st    *postgres.Store

	smu       sync.Mutex
	rulesSeen int64 // the store's rules version at the last sync

	// serviceNow is the service's clock, whose time the replica records
	// for the replicas that start after it (recordTime).
	serviceNow func() time.Time

	// fencedWarned is set once a periodic write was refused because a
	// newer version upgraded the store (warn).
	fencedWarned atomic.Bool
}

// warn logs the failure of a periodic task at WARN; a refusal because a
// newer version upgraded the store only the first time: every write is
// refused from then on, every 2 s, and the service has logged the ERROR
// that says what to do (service's fence.go).
func (r *replication) warn(msg string, err error) {
	if up := (*store.UpgradedError)(nil); errors.As(err, &up) {
		if r.fencedWarned.Swap(true) {
			return
		}
		msg += " (refused for the store's upgrade: logged once)"
	}
	r.log.Warn(msg, "err", err)
}

// newReplication prepares replication when the store is PostgreSQL.
func newReplication(ctx context.Context, cfg Config) (*replication, error) {
	pg, ok := cfg.Store.(*postgres.Store)
	if !ok {
		return nil, nil
	}
	if err := replica.Install(ctx, pg.Pool()); err != nil {
		return nil, err
	}
	name, err := replicaName()
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("replica on a shared store", "replica", name)
	clock, err := replica.NewClock(ctx, pg.Pool(), cfg.Now)
	if err != nil {
		return nil, err
	}
	r := &replication{
		relay: replica.NewRelay(pg.Pool(), name, cfg.Logger),
		clock: clock,
		lease: replica.NewLease(pg, "detect", name, DetectionLeaseTTL, nil),
		log:   cfg.Logger,
		st:    pg,
	}
	r.syncClock(ctx)
	return r, nil
}

// name is this replica's name ("" on the embedded store: the service
// names itself).
func (r *replication) name() string {
	if r == nil {
		return ""
	}
	return r.relay.Origin()
}

// now is the reference of the service's wall clock: the database's on a
// shared store, the host's (local, time.Now when nil) otherwise. The
// service's clock is a clock.Guard over it (Run).
func (r *replication) now(local func() time.Time) func() time.Time {
	if r == nil {
		return local
	}
	return r.clock.Now
}

// clockName names the service's reference clock in the clock guard's
// alarm, as what the operator fixes.
func (r *replication) clockName() string {
	if r == nil {
		return "this host's clock"
	}
	return "the database server's clock (as this replica measures it)"
}

// restartAdvice is the clock alarm's advice for when the database's clock
// is right and the service's time wrong.
func (r *replication) restartAdvice() string {
	if r == nil {
		return ""
	}
	return "stop every replica of the service, then start them again, to take its time (a replica started while others run takes theirs)"
}

// peersTimeWatch bounds how long a starting replica watches the time the
// others record: three of their periods (syncEvery).
const peersTimeWatch = 3 * syncEvery

// peersTime is the offset from the database's clock at which this replica
// starts its service time: that of the live replicas when they agree with
// each other within clock.StepThreshold (replica.WatchPeersTime), zero
// without live replicas or when they disagree.
func (r *replication) peersTime(ctx context.Context) (time.Duration, error) {
	if r == nil {
		return 0, nil
	}
	pt, err := replica.WatchPeersTime(ctx, r.st, r.name(), r.clock.Now, peersTimeWatch)
	if err != nil {
		return 0, err
	}
	if len(pt.Ended) > 0 {
		r.log.Info("deleted the service time recorded by replicas that ended", "replicas", pt.Ended)
	}
	switch {
	case len(pt.Peers) == 0:
		return 0, nil
	case pt.Spread > clock.StepThreshold:
		r.log.Warn("the live replicas disagree on the service's time by more than "+clock.StepThreshold.String()+": this replica takes the database's time",
			"replicas", pt.Peers, "spread", pt.Spread)
		return 0, nil
	}
	r.log.Info("took the service's time from the live replicas", "replicas", pt.Peers, "offset_from_database", pt.Offset)
	return pt.Offset, nil
}

// recordTime records the service's time now, for the replicas that start
// after this one, and keeps now to record it at every sync (run).
func (r *replication) recordTime(ctx context.Context, now func() time.Time) error {
	if r == nil {
		return nil
	}
	r.serviceNow = now
	return replica.PutServiceTime(ctx, r.st, r.name(), now)
}

// clockWarnOffset is the offset from the database's clock past which a
// replica says that its host's clock is off.
const clockWarnOffset = time.Second

// syncClock measures the offset of this host's clock from the database's
// again, and warns when it is large: this replica keeps the database's
// time, but the host's clock is wrong for everything else.
func (r *replication) syncClock(ctx context.Context) {
	offset, err := r.clock.Sync(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("measuring the database's clock", "err", err)
		}
		return
	}
	if offset.Abs() > clockWarnOffset {
		r.log.Warn("this host's clock is off the database's; the replica keeps the database's time", "behind_by", offset)
	}
}

// replicaName is unique among the replicas: host, process and a random
// suffix (a restarted process must not inherit its predecessor's lease).
func replicaName() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "host"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:])), nil
}

// peers is what the service is configured with (nil on the embedded store).
func (r *replication) peers() service.Peers {
	if r == nil {
		return nil
	}
	return r
}

func (r *replication) PublishPositions(reports []track.Report) { r.relay.Publish(reports) }
func (r *replication) LeadsDetection() bool                    { return r.lease.Held() }

// DetectionTenure is the lease's current tenure.
func (r *replication) DetectionTenure() int64 {
	tenure, _ := r.lease.Tenure()
	return tenure
}

// OtherLeaderRenewedWithin is how recently the lease's tries saw another
// replica renew it (replica.Lease.OthersRenewedWithin).
func (r *replication) OtherLeaderRenewedWithin() (time.Duration, bool) {
	return r.lease.OthersRenewedWithin()
}

// FenceDetection is the lease's fence, its ErrLost reported as the
// service's ErrNotLeading.
func (r *replication) FenceDetection() func(store.Meta) error {
	fence := r.lease.Fence()
	if fence == nil {
		return nil
	}
	return func(tx store.Meta) error {
		err := fence(tx)
		if errors.Is(err, replica.ErrLost) {
			return fmt.Errorf("%w: %w", service.ErrNotLeading, err)
		}
		return err
	}
}

// run relays and keeps the lease until ctx is cancelled. The lease is
// still held (until it runs out, or release hands it over): the service's
// shutdown commits what it has queued and pushes the log's last checkpoint
// as the leader.
func (r *replication) run(ctx context.Context, svc *service.Service) {
	if r == nil {
		return
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		// Also without notifications: a quiet store still brings a rules
		// change made elsewhere in at the second look.
		t := time.NewTicker(syncEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.sync(ctx, svc)
				r.syncClock(ctx)
				if err := replica.PutServiceTime(ctx, r.st, r.name(), r.serviceNow); err != nil && ctx.Err() == nil {
					r.warn("recording the service's time for the replicas that start", err)
				}
			}
		}
	}()
	// A replica that cannot read the rules in force (a newer version
	// wrote them) would lead detection under the rules before them: it
	// gives the lease up, for a replica of that version.
	r.lease.StandDown(svc.DetectionStandDown)
	go func() {
		defer wg.Done()
		r.lease.Run(ctx, func(err error) { r.warn("detection lease", err) }, func(held bool) {
			if why := r.lease.StoodDown(); !held && why != nil {
				r.log.Warn("detection lease given up, and not taken while the rules in force are of a newer version", "held", held, "why", why)
			} else {
				r.log.Info("detection lease", "held", held)
			}
			if held {
				// Not in the lease's goroutine: the renewals go on.
				go func() {
					takeOver(ctx, r.lease.Held, func(ctx context.Context) error {
						return svc.ReconcileDetection(ctx, r.openAlerts)
					}, takeOverRetry, func(err error) { r.log.Error("taking over detection", "err", err) })
				}()
			}
		})
	}()
	go func() {
		defer wg.Done()
		err := r.relay.Run(ctx, replica.Handlers{
			Positions: func(ctx context.Context, reports []track.Report) {
				if err := svc.IngestRelayed(ctx, reports); err != nil && ctx.Err() == nil {
					r.log.Warn("relayed positions", "err", err)
				}
			},
			Events: func(ctx context.Context) {
				if err := svc.CatchUpEvents(ctx); err != nil && ctx.Err() == nil {
					r.log.Warn("catching up events", "err", err)
				}
				r.sync(ctx, svc)
			},
		})
		if err != nil {
			r.log.Error("replica relay stopped", "err", err)
		}
	}()
	wg.Wait()
}

// release hands the detection lease over, once the service has closed.
func (r *replication) release() {
	if r == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.lease.Release(rctx); err != nil {
		r.log.Warn("releasing the detection lease", "err", err)
	}
	if err := replica.DeleteServiceTime(rctx, r.st, r.name()); err != nil {
		r.log.Warn("deleting the service's time recorded for the replicas that start", "err", err)
	}
}

// takeOverRetry is how long a replica that gained the detection lease
// waits before it tries again to reconcile the store with its engine.
const takeOverRetry = time.Second

// takeOver reconciles the store with this replica's engine once it leads
// detection (reconcile), and again every retry while that fails and the
// lease is still held (held): the alerts the engine holds and the store
// lacks (those a fenced-off leader left, those raised while nobody led)
// would otherwise stay missing until they changed again, after a single
// failed read (the store restarting under the takeover). Each failure is
// told to logf.
func takeOver(ctx context.Context, held func() bool, reconcile func(context.Context) error, retry time.Duration, logf func(error)) {
	for {
		err := reconcile(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		logf(err)
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !held() {
			return
		}
	}
}

// syncEvery is the period of the sync from the store when no notification
// comes.
const syncEvery = 2 * time.Second

// sync brings the service's volume index and rules up to the store.
func (r *replication) sync(ctx context.Context, svc *service.Service) {
	r.smu.Lock()
	defer r.smu.Unlock()
	v, err := svc.SyncFromStore(ctx, r.rulesSeen)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("syncing from the store", "err", err)
		}
		return
	}
	r.rulesSeen = v
}

// openAlerts returns the alerts open in the store (id -> JSON of the last
// transition) and those it cleared lately, as the store keeps them with
// their events: a takeover reads neither the events since the start nor
// those since the last takeover.
func (r *replication) openAlerts(ctx context.Context) (service.StoredAlerts, error) {
	return service.ReadStoredAlerts(ctx, r.st)
}
