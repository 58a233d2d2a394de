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
	wdb    *sql.DB // exactly one connection, used only by the writer
	rdb    *sql.DB
	rstmts stmtCache
	group  *sqlcore.Group
	wconn  *sql.Conn
	wstmts stmtCache

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

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
	if dir == "" {
		return nil, errors.New("sqlite: the data directory is not set")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
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
		wconn:  conn,
		wstmts: stmtCache{prep: conn.PrepareContext},
	}
	s.group = sqlcore.NewGroup(maxBatch, s.run)
	return s, nil
}

// MigrateTo brings the database in dir to schema version v (for tests of
// the migrations: a store at version N-1 must migrate to N when opened).
func MigrateTo(ctx context.Context, dir string, v int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), false))
	if err != nil {
		return err
	}
	defer db.Close()
	return migrate(ctx, db, v)
}

// migrate applies the migrations up to upTo in one transaction. db's
// transactions begin IMMEDIATE (dsn's _txlock): the migration holds the
// database's write lock from before its first read, so it is serialized
// with every write transaction, of this process or another, which waits
// for it (busy_timeout) and runs after it. (A process of an older version
// still writing the migrated file is not fenced: the fence,
// store.SchemaFence, is the shared PostgreSQL store's.)
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
// concurrent Updates share a commit). fn must not call Update of the same
// store: the writer is busy running it. (A View from fn works, but does not
// see fn's uncommitted writes.)
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.group.Update(ctx, fn)
}

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
// queued, and closes the database. It may be called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.group.Close()
		s.wstmts.close()
		s.rstmts.close()
		s.closeErr = errors.Join(s.wconn.Close(), s.rdb.Close(), s.wdb.Close())
	})
	return s.closeErr
}

// run executes one batch in one transaction and answers every request.
func (s *Store) run(batch []*sqlcore.Request) {
	ctx := context.Background()
	if _, err := s.wconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		for _, r := range batch {
			r.Answer(sqlcore.Result{Err: fmt.Errorf("sqlite: begin: %w", err)})
		}
		return
	}
	results := make([]sqlcore.Result, len(batch))
	ok := 0
	for i, r := range batch {
		res, fatal := s.one(r)
		if fatal != nil {
			// The savepoint could not be rolled back: the transaction
			// is in an unknown state, so none of the batch commits.
			_, _ = s.wconn.ExecContext(ctx, "ROLLBACK")
			for j, r := range batch {
				if j == i {
					r.Answer(res)
					continue
				}
				r.Answer(sqlcore.Result{Err: fmt.Errorf("sqlite: batch aborted: %w", fatal)})
			}
			return
		}
		results[i] = res
		if res.OK() {
			ok++
		}
	}
	var commitErr error
	if ok == 0 {
		_, commitErr = s.wconn.ExecContext(ctx, "ROLLBACK")
	} else if _, commitErr = s.wconn.ExecContext(ctx, "COMMIT"); commitErr != nil {
		_, _ = s.wconn.ExecContext(ctx, "ROLLBACK")
	}
	for i, r := range batch {
		res := results[i]
		if commitErr != nil && res.OK() {
			res.Err = fmt.Errorf("sqlite: commit: %w", commitErr)
		}
		r.Answer(res)
	}
}

// one runs a request's fn inside a savepoint. fatal is set when the
// savepoint could not be undone after a failure.
func (s *Store) one(r *sqlcore.Request) (res sqlcore.Result, fatal error) {
	ctx := context.Background()
	if err := r.Ctx.Err(); err != nil {
		return sqlcore.Result{Err: err}, nil
	}
	if _, err := s.wconn.ExecContext(ctx, "SAVEPOINT u"); err != nil {
		return sqlcore.Result{Err: fmt.Errorf("sqlite: savepoint: %w", err)}, err
	}
	// Statements ignore the caller's cancellation: an interrupted write
	// would roll back the transaction the whole batch shares.
	q := connQuerier{conn: s.wconn, stmts: &s.wstmts}
	res = r.Call(sqlcore.NewTx(context.WithoutCancel(r.Ctx), q, sqlcore.SQLite, false))
	if res.OK() {
		// The caller gave up while fn ran: undo fn rather than commit
		// what the caller will be told failed.
		res.Err = r.Ctx.Err()
	}
	if !res.OK() {
		if _, err := s.wconn.ExecContext(ctx, "ROLLBACK TO u"); err != nil {
			return res, err
		}
	}
	if _, err := s.wconn.ExecContext(ctx, "RELEASE u"); err != nil {
		return res, err
	}
	return res, nil
}
