// Package sqlite owns the embedded store: store.Store on one SQLite file
// (modernc.org/sqlite, pure Go) in the service's data directory.
//
// Layout: one writer connection, owned by a goroutine, and a small pool of
// read-only connections. The database runs in WAL mode with
// synchronous=FULL, so a commit is durable once it returns, and readers never
// wait for the writer.
//
// Writes are group-committed. SQLite has a single writer and every commit
// costs an fsync, so the writer goroutine takes every Update waiting at that
// moment, runs each fn in its own SAVEPOINT inside one BEGIN IMMEDIATE
// transaction, and commits them with one fsync. An fn that fails is rolled
// back to its savepoint alone (counters included, so event ids stay
// gap-free). The fns of a batch run one after the other, each seeing the
// writes of those before it: the result is exactly that of running the
// Updates one at a time, in that order. Update returns only after the
// commit, so nil still means durable.
//
// LockVolumes does nothing here: the single writer already serialises every
// write transaction, across processes too (BEGIN IMMEDIATE takes the
// database's write lock).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/internal/sqlcore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database file inside the data directory.
const FileName = "deconflict.db"

// maxBatch bounds how many Updates share one commit, so that one commit
// never holds the write lock for long.
const maxBatch = 128

// readers is the size of the read-only connection pool.
const readers = 4

// Store is the SQLite implementation of store.Store.
type Store struct {
	path   string
	wdb    *sql.DB // exactly one connection, used only by the writer goroutine
	rdb    *sql.DB
	rstmts stmtCache

	reqs     chan *request
	quit     chan struct{}
	done     chan struct{}
	closeMu  sync.RWMutex
	closed   bool
	closeErr error
}

var _ store.Store = (*Store)(nil)

// request states: the writer and a caller whose context ends race to move a
// request out of queued.
const (
	queued int32 = iota
	taken
	abandoned
)

type request struct {
	ctx   context.Context
	fn    func(store.Tx) error
	state atomic.Int32
	done  chan result
}

type result struct {
	err   error
	panic any
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating it if needed) DIR/deconflict.db, brings its schema to
// the latest version, and starts the writer.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	wdb, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if err := migrate(ctx, wdb, sqlcore.Latest()); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(readers)
	rdb.SetMaxIdleConns(readers)
	rdb.SetConnMaxIdleTime(0)
	rdb.SetConnMaxLifetime(0)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	s := &Store{
		path:   path,
		wdb:    wdb,
		rdb:    rdb,
		rstmts: stmtCache{prep: rdb.PrepareContext},
		reqs:   make(chan *request, maxBatch),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go s.writer(conn)
	return s, nil
}

// MigrateTo brings the database in dir to schema version v (for tests of
// the migrations: a store at version N-1 must migrate to N when opened).
func MigrateTo(ctx context.Context, dir string, v int) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), false))
	if err != nil {
		return err
	}
	defer db.Close()
	return migrate(ctx, db, v)
}

func migrate(ctx context.Context, db *sql.DB, upTo int) error {
	if _, err := db.ExecContext(ctx, sqlcore.EnsureMigrationsTable); err != nil {
		return fmt.Errorf("schema_migrations: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := sqlcore.Migrate(ctx, txQuerier{tx: tx}, sqlcore.SQLite, upTo); err != nil {
		return err
	}
	return tx.Commit()
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Update runs fn in a write transaction (see the package comment for how
// concurrent Updates share a commit). fn must not call Update or View of
// the same store: the writer is busy running it.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return errClosed
	}
	r := &request{ctx: ctx, fn: fn, done: make(chan result, 1)}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	select {
	case res := <-r.done:
		return res.unwrap()
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		// The writer has fn already: its outcome is what the caller must
		// learn, committed or not.
		res := <-r.done
		return res.unwrap()
	}
}

func (r result) unwrap() error {
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

var errClosed = errors.New("sqlite: store is closed")

// View runs fn in a read-only transaction on a consistent snapshot.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(sqlcore.NewTx(ctx, txQuerier{tx: tx, stmts: &s.rstmts}, sqlcore.SQLite, true))
}

// Close waits for the Updates already taken to commit, fails those still
// queued, and closes the database.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return s.closeErr
	}
	s.closed = true
	s.closeMu.Unlock()
	close(s.quit)
	<-s.done
	s.rstmts.close()
	err := errors.Join(s.rdb.Close(), s.wdb.Close())
	s.closeErr = err
	return err
}

// writer owns the write connection until Close.
func (s *Store) writer(conn *sql.Conn) {
	defer close(s.done)
	w := &batchWriter{conn: conn, stmts: stmtCache{prep: conn.PrepareContext}}
	defer func() {
		w.stmts.close()
		conn.Close()
	}()
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-s.reqs:
			batch = append(batch[:0], r)
		case <-s.quit:
			s.failQueued()
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.run(batch)
	}
}

func (s *Store) failQueued() {
	for {
		select {
		case r := <-s.reqs:
			if r.state.CompareAndSwap(queued, taken) {
				r.done <- result{err: errClosed}
			}
		default:
			return
		}
	}
}

type batchWriter struct {
	conn  *sql.Conn
	stmts stmtCache
}

// run executes one batch in one transaction and answers every request.
func (w *batchWriter) run(batch []*request) {
	ctx := context.Background()
	live := batch[:0:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(queued, taken) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	answer := func(err error) {
		for _, r := range live {
			r.done <- result{err: err}
		}
	}
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		answer(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	results := make([]result, len(live))
	ok := 0
	for i, r := range live {
		res, fatal := w.one(r)
		if fatal != nil {
			// The savepoint could not be rolled back: the transaction
			// is in an unknown state, so none of the batch commits.
			_, _ = w.conn.ExecContext(ctx, "ROLLBACK")
			for j, r := range live {
				if j == i {
					r.done <- res
					continue
				}
				r.done <- result{err: fmt.Errorf("sqlite: batch aborted: %w", fatal)}
			}
			return
		}
		results[i] = res
		if res.err == nil && res.panic == nil {
			ok++
		}
	}
	var commitErr error
	if ok == 0 {
		_, commitErr = w.conn.ExecContext(ctx, "ROLLBACK")
	} else {
		_, commitErr = w.conn.ExecContext(ctx, "COMMIT")
		if commitErr != nil {
			_, _ = w.conn.ExecContext(ctx, "ROLLBACK")
		}
	}
	for i, r := range live {
		res := results[i]
		if commitErr != nil && res.err == nil && res.panic == nil {
			res.err = fmt.Errorf("sqlite: commit: %w", commitErr)
		}
		r.done <- res
	}
}

// one runs a request's fn inside a savepoint. fatal is set when the
// savepoint could not be undone after a failure.
func (w *batchWriter) one(r *request) (res result, fatal error) {
	ctx := context.Background()
	if err := r.ctx.Err(); err != nil {
		return result{err: err}, nil
	}
	if _, err := w.conn.ExecContext(ctx, "SAVEPOINT u"); err != nil {
		return result{err: fmt.Errorf("sqlite: savepoint: %w", err)}, err
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				res = result{panic: p}
			}
		}()
		res.err = r.fn(sqlcore.NewTx(r.ctx, connQuerier{conn: w.conn, stmts: &w.stmts}, sqlcore.SQLite, false))
	}()
	if res.err == nil && res.panic == nil {
		// A context that ended during fn may have cut a statement
		// short: treat it as a failure of fn.
		res.err = r.ctx.Err()
	}
	if res.err != nil || res.panic != nil {
		if _, err := w.conn.ExecContext(ctx, "ROLLBACK TO u"); err != nil {
			return res, err
		}
	}
	if _, err := w.conn.ExecContext(ctx, "RELEASE u"); err != nil {
		return res, err
	}
	return res, nil
}
