package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/deconflict/deconflict/internal/track"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgxlisten"
)

// Channels of the notifications.
const (
	PositionsChannel = "deconflict_positions"
	EventsChannel    = "deconflict_events"
)

// Handlers receive what the other replicas share. Positions gets the
// reports of each notification of another replica, one call at a time, in
// the order they were sent; Events is called when events may have been
// committed by another process (and once after each (re)connection, for
// what was missed meanwhile). Neither is called concurrently with itself.
type Handlers struct {
	Positions func(ctx context.Context, reports []track.Report)
	Events    func(ctx context.Context)
}

// Relay sends this replica's accepted position reports to the others and
// delivers theirs, over LISTEN/NOTIFY on the shared PostgreSQL.
type Relay struct {
	pool   *pgxpool.Pool
	origin string
	log    *slog.Logger
	out    chan []track.Report
}

// relayQueue bounds how many batches wait to be sent: beyond it, Publish
// waits (ingest slows down rather than the picture diverging).
const relayQueue = 256

// NewRelay returns the relay of the replica named origin (unique among the
// replicas) over pool.
func NewRelay(pool *pgxpool.Pool, origin string, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{pool: pool, origin: origin, log: log, out: make(chan []track.Report, relayQueue)}
}

// Origin is the name of this replica.
func (r *Relay) Origin() string { return r.origin }

// Publish queues reports accepted here for the other replicas. The caller
// may reuse the slice: it is copied.
func (r *Relay) Publish(reports []track.Report) {
	if len(reports) == 0 {
		return
	}
	r.out <- append([]track.Report(nil), reports...)
}

// Install creates the trigger that notifies EventsChannel when a
// transaction appends events, whoever appends them (a replica, or the CLI
// on the shared store). It is idempotent and safe when replicas start
// together (an advisory lock orders them). CREATE OR REPLACE TRIGGER needs
// PostgreSQL 14 or later.
func Install(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		stmts := []string{
			`SELECT pg_advisory_xact_lock(7346115)`,
			`CREATE OR REPLACE FUNCTION deconflict_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('` + EventsChannel + `', '');
	RETURN NULL;
END
$$`,
			`CREATE OR REPLACE TRIGGER deconflict_events_notify AFTER INSERT ON events
	FOR EACH STATEMENT EXECUTE FUNCTION deconflict_notify_events()`,
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("replica: installing the event trigger: %w", err)
			}
		}
		return nil
	})
}

// Run sends the queued reports and listens for the other replicas until
// ctx is cancelled.
func (r *Relay) Run(ctx context.Context, h Handlers) error {
	positions := make(chan []track.Report, relayQueue)
	wake := make(chan struct{}, 1)
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
		},
		LogError: func(_ context.Context, err error) {
			if ctx.Err() == nil {
				r.log.Warn("replica: listener", "err", err)
			}
		},
		ReconnectDelay: 500 * time.Millisecond,
	}
	l.Handle(PositionsChannel, pgxlisten.HandlerFunc(func(ctx context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
		origin, reports, err := DecodePositions(n.Payload)
		if err != nil {
			return err
		}
		if origin == r.origin || len(reports) == 0 {
			return nil
		}
		select {
		case positions <- reports:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	l.Handle(EventsChannel, backlog{func() { signal() }})

	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case b := <-positions:
				if h.Positions != nil {
					h.Positions(ctx, b)
				}
			}
		}
	}()
	go func() {
		for {
			select {
			case <-done:
				return
			case <-wake:
				if h.Events != nil {
					h.Events(ctx)
				}
			}
		}
	}()
	go r.send(ctx)
	err := l.Listen(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// backlog handles EventsChannel: each notification, and each (re)connection
// (for what was committed while the listener was away), wakes the reader.
type backlog struct{ wake func() }

func (b backlog) HandleNotification(context.Context, *pgconn.Notification, *pgx.Conn) error {
	b.wake()
	return nil
}

func (b backlog) HandleBacklog(context.Context, string, *pgx.Conn) error {
	b.wake()
	return nil
}

// send notifies the queued batches, taking together what is waiting, each
// round one statement whatever the number of payloads.
func (r *Relay) send(ctx context.Context) {
	for {
		var batch []track.Report
		select {
		case <-ctx.Done():
			return
		case b := <-r.out:
			batch = b
		}
	more:
		for len(batch) < 10000 {
			select {
			case b := <-r.out:
				batch = append(batch, b...)
			default:
				break more
			}
		}
		payloads, err := EncodePositions(r.origin, batch)
		if err != nil {
			r.log.Warn("replica: relaying positions", "err", err)
			continue
		}
		_, err = r.pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, PositionsChannel, payloads)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("replica: relaying positions", "reports", len(batch), "err", err)
		}
	}
}
