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
	prep    func(ctx context.Context, query string) (*sql.Stmt, error)
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool // queries being prepared in the background
	closed  bool
	// background counts the prepares under way, which close cancels and
	// waits for: none may open a connection once the store is closed.
	background sync.WaitGroup
	stop       context.CancelFunc
	stopped    context.Context
}

// get returns the statement for query, preparing it first if needed. It is
// for the writer, whose statements are prepared on its own connection; the
// lock is not held while preparing, so a slow prepare blocks no other query.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := c.prep(ctx, query)
	if err != nil {
		return nil, err
	}
	return c.keep(query, st), nil
}

// cached returns the statement for query, or nil when it is not prepared
// yet; then it starts preparing it in the background. Readers use this:
// preparing on the pool needs a free connection, and a reader that waited
// for one while its own transaction holds a connection would deadlock as
// soon as every reader of the pool did the same. Such a reader runs its
// query unprepared instead, once.
func (c *stmtCache) cached(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok || c.closed {
		return st
	}
	if !c.pending[query] {
		if c.pending == nil {
			c.pending = make(map[string]bool)
		}
		c.pending[query] = true
		if c.stopped == nil {
			c.stopped, c.stop = context.WithCancel(context.Background())
		}
		ctx := c.stopped
		c.background.Add(1)
		go func() {
			defer c.background.Done()
			st, err := c.prep(ctx, query)
			c.mu.Lock()
			delete(c.pending, query)
			c.mu.Unlock()
			if err != nil {
				return
			}
			if kept := c.keep(query, st); kept == st && ctx.Err() != nil {
				st.Close() // prepared as the store closed: nobody will use it
			}
		}()
	}
	return nil
}

// keep caches st for query and returns the cached statement (st, or one
// another caller prepared meanwhile, in which case st is closed).
func (c *stmtCache) keep(query string, st *sql.Stmt) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		st.Close()
		return prev
	}
	if c.closed {
		// The store is closing: the statement serves this one call (a
		// background prepare's is closed at once).
		return st
	}
	if c.m == nil {
		c.m = make(map[string]*sql.Stmt)
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	c.closed = true
	if c.stop != nil {
		c.stop()
	}
	c.mu.Unlock()
	c.background.Wait()
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

// stmt is the pool's prepared statement for query, or nil (run it
// unprepared) when there is no cache or it is not prepared yet.
func (q txQuerier) stmt(query string) *sql.Stmt {
	if q.stmts == nil {
		return nil
	}
	return q.stmts.cached(query)
}

func (q txQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if st := q.stmt(query); st != nil {
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
	if st := q.stmt(query); st != nil {
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
