package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deconflict/deconflict/internal/store"
)

// Tx implements store.Tx (and store.PartyEventReader) over a Querier.
type Tx struct {
	ctx      context.Context
	q        Querier
	d        Dialect
	readOnly bool
}

var (
	_ store.Tx               = (*Tx)(nil)
	_ store.PartyEventReader = (*Tx)(nil)
	_ store.PartySeqReader   = (*Tx)(nil)
)

// NewTx wraps q, which must be inside an open transaction. A read-only Tx
// refuses every write with store.ErrReadOnly before touching the database.
func NewTx(ctx context.Context, q Querier, d Dialect, readOnly bool) *Tx {
	return &Tx{ctx: ctx, q: q, d: d, readOnly: readOnly}
}

func (t *Tx) writable(op string) error {
	if t.readOnly {
		return fmt.Errorf("%s: %w", op, store.ErrReadOnly)
	}
	return nil
}

// Times are stored as Unix nanoseconds (UTC) so that every backend keeps
// them exactly. The zero time, which has no nanosecond form, is stored as
// math.MinInt64; other times outside 1678..2262 are refused.
const zeroTimeNs = math.MinInt64

var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

func encTime(field string, t time.Time) (int64, error) {
	if t.IsZero() {
		return zeroTimeNs, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("store: %s: time %s is outside the storable range 1678..2262", field, t.Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

func decTime(ns int64) time.Time {
	if ns == zeroTimeNs {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// nz keeps byte strings NOT NULL: pgx sends a nil slice as NULL.
func nz(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func encList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

func decList(field, s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("store: stored %s is corrupt: %w", field, err)
	}
	return l, nil
}

// validText reports whether s can be stored in a TEXT column of every
// backend: PostgreSQL refuses invalid UTF-8 and NUL, which SQLite would
// keep, and the backends must not differ.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// checkText returns store.ErrInvalid naming the first field (given as
// name, value pairs) that validText refuses.
func checkText(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !validText(pairs[i+1]) {
			return fmt.Errorf("store: %s %q is not valid UTF-8 text without NUL: %w", pairs[i], pairs[i+1], store.ErrInvalid)
		}
	}
	return nil
}

func checkList(field string, l []string) error {
	for _, v := range l {
		if err := checkText(field, v); err != nil {
			return err
		}
	}
	return nil
}

// queryAll runs a query and calls scan for each row.
func (t *Tx) queryAll(query string, args []any, scan func(Rows) error) error {
	rows, err := t.q.Query(t.ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// queryOne scans the first row into dest, or returns store.ErrNotFound.
func (t *Tx) queryOne(query string, args []any, dest ...any) error {
	rows, err := t.q.Query(t.ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return store.ErrNotFound
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Err()
}

// bump increments a counter row inside the transaction and returns its new
// value; a rollback undoes it, which is what keeps event ids gap-free.
func (t *Tx) bump(name string) (int64, error) {
	var v int64
	err := t.queryOne(`UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value`, []any{name}, &v)
	if err != nil {
		return 0, fmt.Errorf("store: counter %s: %w", name, err)
	}
	return v, nil
}
