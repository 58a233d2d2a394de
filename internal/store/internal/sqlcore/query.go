// Package sqlcore owns what the SQL backends of package store share: the
// versioned schema migrations and the implementation of store.Tx over a
// small query interface, so that SQLite and PostgreSQL run the same
// statements and differ only in their driver, their dialect's column types
// and how they lock.
//
// The SQL is kept to what SQLite, PostgreSQL and CockroachDB all accept:
// plain tables, INSERT ... ON CONFLICT, UPDATE ... RETURNING, no stored
// procedures, no advisory locks, no sequences (counters are rows).
//
// tx.go holds the transaction and the encoding helpers every statement
// shares; each role of store.Tx has its own file (parties.go, rules.go,
// volumes.go, events.go, audit.go, messages.go, meta.go).
package sqlcore

import (
	"context"
	"strconv"
	"strings"
)

// Querier runs statements inside one open transaction. Statements are
// written with "?" placeholders; a PostgreSQL Querier rewrites them with
// Rebind.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Rows is the cursor both database/sql and pgx provide.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Dialect is what differs between the backends.
type Dialect struct {
	Name string
	// BytesType is the column type of byte strings (BLOB, BYTEA).
	BytesType string
	// LockVolumesSQL serialises the writers of volumes for the rest of the
	// transaction; empty when the backend has a single writer anyway.
	LockVolumesSQL string
	// AppendEventSQL, when set, appends an event in one statement (one
	// round trip instead of three): its arguments are time_ns, kind,
	// audience JSON, body and the audience index keys as a text array,
	// and it returns the new id.
	AppendEventSQL string
}

// SQLite and Postgres are the two dialects.
var (
	SQLite = Dialect{Name: "sqlite", BytesType: "BLOB"}
	// Postgres also fits CockroachDB: SELECT ... FOR UPDATE takes a row lock
	// on both.
	Postgres = Dialect{
		Name:           "postgres",
		BytesType:      "BYTEA",
		LockVolumesSQL: "SELECT name FROM locks WHERE name = 'volumes' FOR UPDATE",
		// The numbers of the audience entries as insertNumberedAudience
		// gives them: read from the entries before this statement's.
		AppendEventSQL: `WITH c AS (UPDATE counters SET value = value + 1 WHERE name = 'event' RETURNING value),
			e AS (INSERT INTO events (id, time_ns, kind, audience, body) SELECT value, ?, ?, ?, ? FROM c RETURNING id),
			s AS (SELECT COALESCE((` + lastEveryoneSQL + `), 0) AS everyone),
			a AS (INSERT INTO event_audience (party, event_id, seq, everyone)
				SELECT k.p, e.id,
					CASE WHEN k.p = '*' THEN s.everyone + 1
					ELSE s.everyone + 1 + COALESCE((SELECT x.seq - x.everyone FROM event_audience x WHERE x.party = k.p ORDER BY x.event_id DESC LIMIT 1), 0) END,
					CASE WHEN k.p = '*' THEN s.everyone + 1 ELSE s.everyone END
				FROM e CROSS JOIN s CROSS JOIN unnest(?::TEXT[]) AS k(p))
			SELECT id FROM e`,
	}
)

// Rebind rewrites "?" placeholders as $1, $2, ... for PostgreSQL. The
// statements of this package never contain "?" inside a literal.
func Rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}
