package sqlite

import (
	"context"
	"database/sql"
	"sync"

	"github.com/deconflict/deconflict/internal/store/internal/sqlcore"
)

// stmtCache keeps one prepared statement per query text, so that the
// statements of the hot paths are compiled once per connection.
type stmtCache struct {
	prep func(ctx context.Context, query string) (*sql.Stmt, error)
	mu   sync.Mutex
	m    map[string]*sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	st, err := c.prep(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = make(map[string]*sql.Stmt)
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// connQuerier runs statements on the writer's connection, inside the
// transaction the writer opened with plain BEGIN.
type connQuerier struct {
	conn  *sql.Conn
	stmts *stmtCache
}

func (q connQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	st, err := q.stmts.get(ctx, query)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q connQuerier) Query(ctx context.Context, query string, args ...any) (sqlcore.Rows, error) {
	st, err := q.stmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// txQuerier runs statements in a database/sql transaction, through the
// pool's prepared statements when stmts is set.
type txQuerier struct {
	tx    *sql.Tx
	stmts *stmtCache
}

func (q txQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if q.stmts != nil {
		var st *sql.Stmt
		if st, err = q.stmts.get(ctx, query); err != nil {
			return 0, err
		}
		res, err = q.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	} else {
		res, err = q.tx.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q txQuerier) Query(ctx context.Context, query string, args ...any) (sqlcore.Rows, error) {
	var rows *sql.Rows
	var err error
	if q.stmts != nil {
		var st *sql.Stmt
		if st, err = q.stmts.get(ctx, query); err != nil {
			return nil, err
		}
		rows, err = q.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	} else {
		rows, err = q.tx.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

type sqlRows struct{ r *sql.Rows }

func (r sqlRows) Next() bool             { return r.r.Next() }
func (r sqlRows) Scan(dest ...any) error { return r.r.Scan(dest...) }
func (r sqlRows) Err() error             { return r.r.Err() }
func (r sqlRows) Close()                 { _ = r.r.Close() }
