// Package postgres owns the shared store of several replicas: store.Store on
// PostgreSQL through pgx (pgxpool). The SQL is the one of the SQLite store
// (package sqlcore). Only PostgreSQL is supported and tested: the replicas
// need LISTEN/NOTIFY (package replica), which CockroachDB lacks.
//
// Every write of the store updates a counter row (event ids, volume change
// sequence), so concurrent writers conflict whatever they write. At
// SERIALIZABLE isolation two replicas under load then abort each other's
// transactions over and over (SQLSTATE 40001), and a writer could exhaust
// its retries. So an Update transaction instead begins by locking the
// writers' row (the 'event' counter, SELECT ... FOR UPDATE) at READ
// COMMITTED: writers of all replicas take turns, and since every statement
// after the lock reads what was committed before it, each transaction sees
// every earlier one whole — the same outcome as serial execution, with no
// aborts. Deadlocks (40P01) and serialization failures (40001) are retried:
// Update rolls back and runs fn again, up to Options.MaxAttempts times in
// all, with a jittered exponential backoff.
//
// Within one
// process, Updates are therefore group-committed like on SQLite: one writer
// goroutine runs the Updates waiting at that moment each in a SAVEPOINT of
// one transaction, so they never conflict with each other and share one
// commit; only replicas conflict, and retry. When a batch of several hits a
// serialization failure, each of its Updates is retried alone, so that one
// fn that keeps failing cannot hold the others back.
//
// A replica frozen while it holds the writers' lock (SIGSTOP, a hung host,
// a partition) must not stop the others: each write transaction asks the
// server to end it once idle for pausedWriterTimeout, a keep-alive keeps a
// running replica's transaction from looking idle, and the frozen one's
// attempt, ended before its COMMIT, is run again when it resumes (see
// pausedWriterTimeout). Lock waits end after writersLockWait and are
// retried.
//
// LockVolumes locks the row 'volumes' of the locks table (SELECT ... FOR
// UPDATE); it guarantees
// that of two transactions that lock, read and write volumes, the one that
// commits second has seen the first, even without the writers' lock.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/internal/sqlcore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// writersLockSQL makes the writers of every replica take turns (see the
// package doc).
const writersLockSQL = "SELECT value FROM counters WHERE name = 'event' FOR UPDATE"

// A replica paused while it holds the writers' lock (SIGSTOP, a hung host,
// a partition that leaves its connection open) would hold it, and stall
// the writes of every replica (alerts, statements, hotline), for as long as
// the pause lasts: PostgreSQL waits for the client's next statement
// forever. So every write transaction sets, for itself only (SET LOCAL:
// reads, migrations and other clients are untouched):
//
//   - idle_in_transaction_session_timeout = pausedWriterTimeout: the server
//     ends a session that has sent nothing for that long inside its
//     transaction, which rolls the transaction back and frees its locks;
//     the other replicas wait at most about that long. A live replica's
//     transaction must never be ended so, yet fn may compute for long
//     between two statements: bringing new rules into force with a raised
//     separation checked every pair of live volumes in Go inside its
//     transaction, 0.4 s with 10,000 volumes and 19 s with 100,000 dense
//     ones (measured on 2 loaded cores; the service now checks them ahead,
//     outside the transaction, and inside only the volumes written since:
//     tens of ms with 100,000, BenchmarkActivationLock in package volume);
//     other gaps measured over the replica, volume, hotline, server and
//     two-replica binary tests stayed under 0.2 s.
//     So while the transaction is open a keep-alive goroutine sends an
//     empty statement every keepAliveEvery when no statement runs (see
//     liveTx): a process that runs keeps its transaction, one that is
//     frozen cannot send it and loses it. 2 s is the delay a frozen
//     replica can add to the others' alerts; a running one pings four
//     times within it, so only a stall of its own of over 1.5 s could end
//     its transaction, which is then run again, not lost. When the paused
//     replica resumes,
//     its next statement, its keep-alive or its COMMIT fails with SQLSTATE
//     25P03: the server ended the transaction before COMMIT arrived, so
//     nothing of it was committed, and Update runs fn again as after a
//     serialization failure (on a new connection; a lease fence in fn
//     checks the lease again there).
//   - lock_timeout = writersLockWait: a write that waits that long for a
//     lock (the writers' lock, LockVolumes) fails with 55P03 and is run
//     again, so that a holder stuck in a way the first timeout does not
//     catch (a statement the server cannot finish, such as a result too
//     large for the socket buffers of a paused client) shows as retries
//     and, after MaxAttempts, as errors to the callers and in the logs
//     (the alert commit queue logs and retries each failure) instead of a
//     silent hang. It is above pausedWriterTimeout plus a few ordinary
//     transactions queued ahead; a waiter behind a long activation retries
//     and then proceeds.
//
// maxKeptAlive bounds the keep-alive: a replica that runs but whose fn
// never returns (a bug) loses its transaction too, that much later. It is
// six times the longest transaction measured (the 19 s activation above).
const (
	pausedWriterTimeout = 2 * time.Second
	keepAliveEvery      = pausedWriterTimeout / 4
	maxKeptAlive        = 2 * time.Minute
	writersLockWait     = 10 * time.Second
)

// schemaVersionSQL reads the store's schema version: the last migration
// recorded.
const schemaVersionSQL = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"

// beginWriteSQL starts every write transaction: its timeouts, the
// writers' lock, then the schema's version, in one round trip. The version
// is read once the lock is held (in READ COMMITTED each statement reads
// what was committed before it began), so that a write never commits in
// the old way after a newer version's migration that committed before it
// took the lock: a write checked only by CheckSchema's polling, at a
// tick or a renewal of the lease, went on for up to a tick's or a
// renewal's time after the migration, its rows missing from what the
// newer migrations keep (the open alerts, each party's state of its
// messages). A migration keeps the writers out while it runs
// (migrationLockSQL), so a write that read the version below the newer
// one commits before the migration reads the store, which then keeps it:
// no write commits in the old way after the migration.
var beginWriteSQL = fmt.Sprintf("SET LOCAL idle_in_transaction_session_timeout = %d; SET LOCAL lock_timeout = %d; %s; %s",
	pausedWriterTimeout.Milliseconds(), writersLockWait.Milliseconds(), writersLockSQL, schemaVersionSQL)

// DefaultMaxAttempts bounds how many times Update runs fn.
const DefaultMaxAttempts = 10

// Options tune a Store; the zero value is the default.
type Options struct {
	// MaxAttempts is how many times Update runs fn before it gives up on
	// serialization failures and deadlocks (DefaultMaxAttempts when 0).
	MaxAttempts int
	// MaxConns is the size of the connection pool (pgxpool's default, or
	// pool_max_conns in the URL, when 0).
	MaxConns int32
	// BaseBackoff is the first retry's maximum delay; each further retry
	// doubles it, up to 100 times (2 ms when 0).
	BaseBackoff time.Duration
}

// Store is the PostgreSQL implementation of store.Store.
type Store struct {
	pool      *pgxpool.Pool
	opt       Options
	group     *sqlcore.Group
	closeOnce sync.Once
	retries   atomic.Int64
	// upgraded is set once CheckSchema found the schema beyond this
	// program's migrations: every Update fails with it from then on.
	upgraded atomic.Pointer[store.UpgradedError]
}

// maxBatch bounds how many Updates share one transaction.
const maxBatch = 64

var (
	_ store.Store       = (*Store)(nil)
	_ store.SchemaFence = (*Store)(nil)
)

// Open connects to url (postgres://...), migrates the schema to the latest
// version, and returns the store.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenOptions(ctx, url, Options{})
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, url string, opt Options) (*Store, error) {
	s, err := connect(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx, sqlcore.Latest()); err != nil {
		s.pool.Close()
		return nil, err
	}
	s.group = sqlcore.NewGroup(maxBatch, s.run)
	return s, nil
}

// MigrateTo brings the database at url to schema version v (for tests of
// the migrations: a store at version N-1 must migrate to N when opened).
func MigrateTo(ctx context.Context, url string, v int) error {
	s, err := connect(ctx, url, Options{})
	if err != nil {
		return err
	}
	defer s.pool.Close()
	return s.migrate(ctx, v)
}

func connect(ctx context.Context, url string, opt Options) (*Store, error) {
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = DefaultMaxAttempts
	}
	if opt.BaseBackoff <= 0 {
		opt.BaseBackoff = 2 * time.Millisecond
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: store URL: %w", err)
	}
	if opt.MaxConns > 0 {
		cfg.MaxConns = opt.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return &Store{pool: pool, opt: opt}, nil
}

// migrate applies the migrations up to upTo (migrateSteps).
func (s *Store) migrate(ctx context.Context, upTo int) error {
	return s.migrateSteps(ctx, sqlcore.Migrations, upTo)
}

// migrationLockSQL keeps the writers out of a migration's transaction: it
// takes the writers' table, counters, in a mode that conflicts with the
// locks every write transaction takes on it first (ROW SHARE for its
// writers' lock, SELECT ... FOR UPDATE; ROW EXCLUSIVE for the counters'
// UPDATE) and with itself, while reads (ACCESS SHARE) go on.
//
// Without it a write of an older replica that read the schema's version
// just before the migration committed (beginWriteSQL) went on to commit in
// the old way after it, its rows missing from what the migration filled
// in: the version's read and the migration were not serialized. With it,
// a writer that holds the writers' lock commits before the migration
// takes this one (and the migration, at READ COMMITTED, then reads that
// write), and one that comes later waits here and then reads the new
// version, and refuses to write (store.UpgradedError).
//
// Not the writers' row lock itself: a migration that altered counters
// (ACCESS EXCLUSIVE) would then deadlock with the writers queued on the
// row, who hold the table's ROW SHARE while they wait. The migration takes
// this lock before any other, as the writers take theirs, so no cycle of
// waits forms between them.
//
// A migration started while a replica writes continuously waits, in
// PostgreSQL's queue, for the transactions holding the table to end (each
// a batch of writes; pausedWriterTimeout ends a frozen one), and the
// writes asked for after it wait behind it: it does not starve. Its waits
// are bounded as the writers' are: lock_timeout = writersLockWait, then a
// retry (55P03), up to Options.MaxAttempts attempts.
const migrationLockSQL = "LOCK TABLE counters IN EXCLUSIVE MODE"

// migrationIdleTimeout ends a migration's transaction that waits on its
// process that long between statements (a process frozen or paused in the
// middle of a migration): it holds the writers out (migrationLockSQL), and
// without a bound every replica's writes, the alerts' commits among them,
// would wait for it until the connection dropped, hours later. The
// migration is then rolled back, as if it had not started, and the writers
// go on in the old way. A migration's statements follow each other without
// a pause (a long ALTER is running, not idle), so the bound is the writers'
// own wait for their lock. A variable for the tests.
var migrationIdleTimeout = writersLockWait

// migrationStartSQL bounds every lock wait of a migration's transaction
// (migrationLockSQL, and the tables its steps alter) as the writers' are,
// and its idle time (migrationIdleTimeout).
func migrationStartSQL() string {
	return fmt.Sprintf("SET LOCAL lock_timeout = %d; SET LOCAL idle_in_transaction_session_timeout = %d",
		writersLockWait.Milliseconds(), migrationIdleTimeout.Milliseconds())
}

// migrateSteps applies the migrations of steps up to upTo in one
// transaction that holds the writers out (migrationLockSQL), at READ
// COMMITTED: every statement after the lock reads what was committed
// before it, the last write of every replica included. (It ran at
// SERIALIZABLE, whose snapshot is taken at the first statement, before
// the lock's wait ends: it would miss the very write it waited for, and
// fill what it keeps without it.) Replicas starting together are
// serialized by the same lock; on an empty database, which has no
// writers' table yet, they race to create the same tables: the loser's
// transaction fails with a duplicate error and is retried, and then finds
// the schema already migrated.
func (s *Store) migrateSteps(ctx context.Context, steps []sqlcore.Migration, upTo int) error {
	var err error
	for attempt := 1; attempt <= s.opt.MaxAttempts; attempt++ {
		if _, err = s.pool.Exec(ctx, sqlcore.EnsureMigrationsTable); err == nil {
			err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, migrationStartSQL()); err != nil {
					return err
				}
				// On an empty database the writers' table does not
				// exist yet, and no writer can run.
				var writers bool
				if err := tx.QueryRow(ctx, "SELECT to_regclass('counters') IS NOT NULL").Scan(&writers); err != nil {
					return err
				}
				if writers {
					if _, err := tx.Exec(ctx, migrationLockSQL); err != nil {
						return err
					}
				}
				return sqlcore.MigrateSteps(ctx, &querier{tx: tx}, sqlcore.Postgres, steps, upTo)
			})
		}
		if err == nil || !(retryable(err) || hasCode(err, "42P07", "42710", "23505")) {
			break
		}
		if werr := s.backoff(ctx, attempt); werr != nil {
			return werr
		}
	}
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Retries counts the transactions rerun after a serialization failure or
// deadlock since Open (for metrics).
func (s *Store) Retries() int64 { return s.retries.Load() }

// Pool is the connection pool, for the packages that need PostgreSQL
// beyond the store interface (e.g. LISTEN/NOTIFY between replicas).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close waits for the Updates in progress, fails those still queued, and
// closes the pool. It may be called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.group.Close()
		s.pool.Close()
	})
	return nil
}

// Update runs fn in a serializable transaction, retrying on serialization
// failures and deadlocks (see the package comment). When it gives up, the
// error wraps the last *pgconn.PgError. fn must not call Update of the same
// store: the writer is busy running it.
//
// Once CheckSchema found the store migrated beyond this program, Update
// fails with the *store.UpgradedError without running fn; a write
// transaction that finds the schema beyond it once it holds the writers'
// lock raises the fence as CheckSchema does, and commits nothing.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	if e := s.upgraded.Load(); e != nil {
		return e
	}
	return s.group.Update(ctx, fn)
}

// CheckSchema reads the store's schema version (store.SchemaFence): beyond
// the last migration this program knows, a newer version migrated the
// store while this one ran, and from then on this store refuses every
// write (Update) with the *store.UpgradedError it returns, rather than
// write without keeping what the newer migrations keep. The fence stays
// up: a schema does not go back.
func (s *Store) CheckSchema(ctx context.Context) error {
	if e := s.upgraded.Load(); e != nil {
		return e
	}
	var stored int64
	if err := s.pool.QueryRow(ctx, schemaVersionSQL).Scan(&stored); err != nil {
		return fmt.Errorf("postgres: read the schema version: %w", err)
	}
	if up := s.fenceAt(stored); up != nil {
		return up
	}
	return nil
}

// fenceAt raises the fence when the schema version stored is beyond this
// program's migrations, and returns it (nil below).
func (s *Store) fenceAt(stored int64) *store.UpgradedError {
	if int(stored) <= sqlcore.Latest() {
		return nil
	}
	s.upgraded.CompareAndSwap(nil, &store.UpgradedError{Stored: int(stored), Known: sqlcore.Latest()})
	return s.upgraded.Load()
}

// run answers one batch: first all together, then, if that hits a
// serialization failure, each alone with the attempts left.
func (s *Store) run(batch []*sqlcore.Request) {
	results, err := s.runOnce(batch)
	if err == nil {
		for i, r := range batch {
			r.Answer(results[i])
		}
		return
	}
	for _, r := range batch {
		one := []*sqlcore.Request{r}
		var res []sqlcore.Result
		rerr := err
		for attempt := 2; rerr != nil; attempt++ {
			if attempt > s.opt.MaxAttempts {
				res = []sqlcore.Result{{Err: fmt.Errorf("postgres: gave up after %d attempts: %w", s.opt.MaxAttempts, rerr)}}
				break
			}
			s.retries.Add(1)
			if werr := s.backoff(r.Ctx, attempt-1); werr != nil {
				res = []sqlcore.Result{{Err: werr}}
				break
			}
			res, rerr = s.runOnce(one)
		}
		r.Answer(res[0])
	}
}

// runOnce runs the batch in one transaction. A non-nil error means a
// serialization failure or deadlock: nothing committed and the batch may be
// run again; otherwise results holds each request's outcome.
func (s *Store) runOnce(batch []*sqlcore.Request) (results []sqlcore.Result, retry error) {
	ctx := context.Background()
	results = make([]sqlcore.Result, len(batch))
	fail := func(err error) []sqlcore.Result {
		for i := range results {
			results[i] = sqlcore.Result{Err: err}
		}
		return results
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		if retryable(err) {
			return nil, err
		}
		return fail(fmt.Errorf("postgres: begin: %w", err)), nil
	}
	live := keepAlive(tx)
	committed := false
	defer func() {
		live.end()
		if !committed {
			// A rollback fails only on a broken connection, which the
			// pool then discards.
			_ = tx.Rollback(ctx)
		}
	}()
	version, err := live.execLastInt(ctx, beginWriteSQL)
	if err != nil {
		if retryable(err) {
			return nil, err
		}
		return fail(fmt.Errorf("postgres: writers' lock: %w", err)), nil
	}
	if up := s.fenceAt(version); up != nil {
		return fail(up), nil
	}
	// A batch of one needs no savepoint: its failure rolls back the
	// whole transaction. In a batch, the release of one fn's savepoint
	// travels with the next one's creation (the simple protocol takes
	// several statements), to save a round trip per fn; COMMIT releases
	// the last.
	single := len(batch) == 1
	held := false
	ok := 0
	for i, r := range batch {
		if err := r.Ctx.Err(); err != nil {
			results[i] = sqlcore.Result{Err: err}
			continue
		}
		if !single {
			stmt := "SAVEPOINT u"
			if held {
				stmt = "RELEASE SAVEPOINT u; SAVEPOINT u"
			}
			if err := live.exec(ctx, stmt); err != nil {
				if retryable(err) {
					return nil, err
				}
				return fail(fmt.Errorf("postgres: savepoint: %w", err)), nil
			}
			held = true
		}
		q := &querier{tx: tx, live: live}
		// Statements ignore the caller's cancellation: pgx closes a
		// connection whose query is cancelled, which would spoil the
		// transaction the whole batch shares.
		res := r.Call(sqlcore.NewTx(context.WithoutCancel(r.Ctx), q, sqlcore.Postgres, false))
		if res.OK() {
			res.Err = r.Ctx.Err()
		}
		if !res.OK() && (retryable(res.Err) || q.sawRetryable) {
			// fn saw (and may have swallowed) a serialization failure:
			// the transaction cannot commit.
			if res.Err == nil || !retryable(res.Err) {
				res.Err = q.lastRetryable
			}
			return nil, res.Err
		}
		results[i] = res
		if res.OK() {
			ok++
			continue
		}
		if single {
			return results, nil
		}
		if err := live.exec(ctx, "ROLLBACK TO SAVEPOINT u; RELEASE SAVEPOINT u"); err != nil {
			if retryable(err) {
				return nil, err
			}
			return fail(fmt.Errorf("postgres: batch aborted: %w", err)), nil
		}
		held = false
	}
	if ok == 0 {
		return results, nil
	}
	if err := live.commit(ctx); err != nil {
		if retryable(err) {
			return nil, err
		}
		for i := range results {
			if results[i].OK() {
				results[i].Err = fmt.Errorf("postgres: commit: %w", err)
			}
		}
		return results, nil
	}
	committed = true
	return results, nil
}

// View runs fn in a read-only transaction on one snapshot.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: begin read: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return fn(sqlcore.NewTx(ctx, &querier{tx: tx}, sqlcore.Postgres, true))
}

func (s *Store) backoff(ctx context.Context, attempt int) error {
	limit := s.opt.BaseBackoff << min(attempt-1, 6)
	d := rand.N(limit) + 1
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Retryable reports whether err is a serialization failure (40001), a
// deadlock (40P01), a lock wait past lock_timeout (55P03) or a session
// ended by the server while idle in its transaction (25P03, see
// pausedWriterTimeout): the transaction was rolled back and may be run
// again.
func Retryable(err error) bool { return retryable(err) }

func retryable(err error) bool { return hasCode(err, "40001", "40P01", "55P03", "25P03") }

func hasCode(err error, codes ...string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	for _, c := range codes {
		if pe.Code == c {
			return true
		}
	}
	return false
}

// liveTx is a write transaction and its keep-alive (see
// pausedWriterTimeout), which share its connection: one statement at a
// time, mu held from a statement's start until its rows are read or
// closed. The keep-alive sends an empty statement (pgconn's Ping: "--
// ping", accepted even in a transaction that a failed statement aborted)
// every keepAliveEvery when mu is free, so that the server never sees a
// running replica's transaction idle for pausedWriterTimeout. Its error
// (the transaction ended by the server: 25P03) is the answer to every
// statement after it.
type liveTx struct {
	tx      pgx.Tx
	mu      sync.Mutex
	failed  error // under mu
	stop    chan struct{}
	stopped chan struct{}
	endOnce sync.Once
}

func keepAlive(tx pgx.Tx) *liveTx {
	l := &liveTx{tx: tx, stop: make(chan struct{}), stopped: make(chan struct{})}
	go l.run()
	return l
}

func (l *liveTx) run() {
	defer close(l.stopped)
	tick := time.NewTicker(keepAliveEvery)
	defer tick.Stop()
	until := time.Now().Add(maxKeptAlive)
	for {
		select {
		case <-l.stop:
			return
		case now := <-tick.C:
			if now.After(until) {
				return
			}
		}
		if !l.mu.TryLock() {
			continue // a statement runs: the session is not idle
		}
		if l.failed == nil {
			if err := l.tx.Conn().PgConn().Ping(context.Background()); err != nil {
				l.failed = fmt.Errorf("postgres: write transaction ended: %w", err)
			}
		}
		l.mu.Unlock()
	}
}

// end stops the keep-alive and waits for it; it may be called more than
// once.
func (l *liveTx) end() {
	l.endOnce.Do(func() {
		close(l.stop)
		<-l.stopped
	})
}

// lock takes the connection for a statement, or returns the error that
// ended the transaction.
func (l *liveTx) lock() error {
	l.mu.Lock()
	if l.failed != nil {
		l.mu.Unlock()
		return l.failed
	}
	return nil
}

func (l *liveTx) exec(ctx context.Context, sql string) error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	_, err := l.tx.Exec(ctx, sql)
	return err
}

// execLastInt runs the statements of sql in one round trip and returns
// the integer in the first column of the first row of the last one's
// answer.
func (l *liveTx) execLastInt(ctx context.Context, sql string) (int64, error) {
	if err := l.lock(); err != nil {
		return 0, err
	}
	defer l.mu.Unlock()
	results, err := l.tx.Conn().PgConn().Exec(ctx, sql).ReadAll()
	if err != nil {
		return 0, err
	}
	if len(results) == 0 || len(results[len(results)-1].Rows) == 0 || len(results[len(results)-1].Rows[0]) == 0 {
		return 0, errors.New("postgres: no answer to the last statement of the transaction's start")
	}
	v, err := strconv.ParseInt(string(results[len(results)-1].Rows[0][0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("postgres: the answer to the last statement of the transaction's start: %w", err)
	}
	return v, nil
}

// commit ends the keep-alive and commits, unless the transaction has
// already been ended.
func (l *liveTx) commit(ctx context.Context) error {
	l.end()
	if l.failed != nil {
		return l.failed
	}
	return l.tx.Commit(ctx)
}

// querier adapts a pgx transaction to sqlcore.Querier.
type querier struct {
	tx pgx.Tx
	// live is the write transaction's keep-alive, nil for reads and
	// migrations.
	live          *liveTx
	sawRetryable  bool
	lastRetryable error
}

var rebound sync.Map // "?" query -> "$n" query

func rebind(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	r := sqlcore.Rebind(q)
	rebound.Store(q, r)
	return r
}

func (q *querier) note(err error) error {
	if retryable(err) {
		q.sawRetryable, q.lastRetryable = true, err
	}
	return err
}

func (q *querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if q.live != nil {
		if err := q.live.lock(); err != nil {
			return 0, q.note(err)
		}
		defer q.live.mu.Unlock()
	}
	tag, err := q.tx.Exec(ctx, rebind(query), args...)
	if err != nil {
		return 0, q.note(err)
	}
	return tag.RowsAffected(), nil
}

func (q *querier) Query(ctx context.Context, query string, args ...any) (sqlcore.Rows, error) {
	if q.live != nil {
		if err := q.live.lock(); err != nil {
			return nil, q.note(err)
		}
	}
	rows, err := q.tx.Query(ctx, rebind(query), args...)
	r := &pgRows{rows: rows, q: q, held: q.live != nil}
	if err != nil {
		r.release()
		return nil, q.note(err)
	}
	return r, nil
}

type pgRows struct {
	rows pgx.Rows
	q    *querier
	held bool // q.live.mu, until the rows are read or closed
}

func (r *pgRows) release() {
	if r.held {
		r.held = false
		r.q.live.mu.Unlock()
	}
}

func (r *pgRows) Next() bool {
	if r.rows.Next() {
		return true
	}
	r.release() // pgx has closed the rows: the connection is free
	return false
}

func (r *pgRows) Scan(dest ...any) error { return r.rows.Scan(dest...) }
func (r *pgRows) Err() error             { return r.q.note(r.rows.Err()) }
func (r *pgRows) Close() {
	r.rows.Close()
	r.release()
}
