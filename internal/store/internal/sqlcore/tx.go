package sqlcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
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

// ---- parties and credentials

const partyCols = `name, operator, created_ns, disabled`

func scanParty(r Rows) (store.Party, error) {
	var p store.Party
	var created int64
	err := r.Scan(&p.Name, &p.Operator, &created, &p.Disabled)
	p.Created = decTime(created)
	return p, err
}

func (t *Tx) CreateParty(p store.Party) error {
	if err := t.writable("CreateParty"); err != nil {
		return err
	}
	if err := checkText("party.Name", p.Name); err != nil {
		return err
	}
	created, err := encTime("party.Created", p.Created)
	if err != nil {
		return err
	}
	n, err := t.q.Exec(t.ctx, `INSERT INTO parties (`+partyCols+`) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		p.Name, p.Operator, created, p.Disabled)
	if err != nil {
		return fmt.Errorf("store: create party %q: %w", p.Name, err)
	}
	if n == 0 {
		return fmt.Errorf("store: party %q exists: %w", p.Name, store.ErrConflict)
	}
	return nil
}

func (t *Tx) UpdateParty(p store.Party) error {
	if err := t.writable("UpdateParty"); err != nil {
		return err
	}
	if !validText(p.Name) {
		return fmt.Errorf("store: party %q: %w", p.Name, store.ErrNotFound)
	}
	created, err := encTime("party.Created", p.Created)
	if err != nil {
		return err
	}
	n, err := t.q.Exec(t.ctx, `UPDATE parties SET operator = ?, created_ns = ?, disabled = ? WHERE name = ?`,
		p.Operator, created, p.Disabled, p.Name)
	if err != nil {
		return fmt.Errorf("store: update party %q: %w", p.Name, err)
	}
	if n == 0 {
		return fmt.Errorf("store: party %q: %w", p.Name, store.ErrNotFound)
	}
	return nil
}

func (t *Tx) PartyByName(name string) (store.Party, error) {
	if !validText(name) {
		return store.Party{}, fmt.Errorf("store: party %q: %w", name, store.ErrNotFound)
	}
	var out store.Party
	found := false
	err := t.queryAll(`SELECT `+partyCols+` FROM parties WHERE name = ?`, []any{name}, func(r Rows) error {
		p, err := scanParty(r)
		out, found = p, true
		return err
	})
	if err != nil {
		return store.Party{}, fmt.Errorf("store: party %q: %w", name, err)
	}
	if !found {
		return store.Party{}, fmt.Errorf("store: party %q: %w", name, store.ErrNotFound)
	}
	return out, nil
}

func (t *Tx) ListParties() ([]store.Party, error) {
	var out []store.Party
	err := t.queryAll(`SELECT `+partyCols+` FROM parties ORDER BY name`, nil, func(r Rows) error {
		p, err := scanParty(r)
		out = append(out, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list parties: %w", err)
	}
	return out, nil
}

const credCols = `token_hash, party, created_ns, revoked, revoked_at_ns`

func scanCred(r Rows) (store.Credential, error) {
	var c store.Credential
	var created, revokedAt int64
	err := r.Scan(&c.TokenHash, &c.Party, &created, &c.Revoked, &revokedAt)
	c.Created, c.RevokedAt = decTime(created), decTime(revokedAt)
	return c, err
}

// PutCredential inserts or replaces the credential with c.TokenHash (a
// revocation is a replace with Revoked set).
func (t *Tx) PutCredential(c store.Credential) error {
	if err := t.writable("PutCredential"); err != nil {
		return err
	}
	if len(c.TokenHash) == 0 {
		return errors.New("store: credential.TokenHash is empty")
	}
	if err := checkText("credential.Party", c.Party); err != nil {
		return err
	}
	created, err := encTime("credential.Created", c.Created)
	if err != nil {
		return err
	}
	revokedAt, err := encTime("credential.RevokedAt", c.RevokedAt)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO credentials (`+credCols+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (token_hash) DO UPDATE SET party = excluded.party, created_ns = excluded.created_ns,
		revoked = excluded.revoked, revoked_at_ns = excluded.revoked_at_ns`,
		c.TokenHash, c.Party, created, c.Revoked, revokedAt)
	if err != nil {
		return fmt.Errorf("store: put credential of %q: %w", c.Party, err)
	}
	return nil
}

func (t *Tx) CredentialByHash(tokenHash []byte) (store.Credential, error) {
	var out store.Credential
	found := false
	err := t.queryAll(`SELECT `+credCols+` FROM credentials WHERE token_hash = ?`, []any{nz(tokenHash)}, func(r Rows) error {
		c, err := scanCred(r)
		out, found = c, true
		return err
	})
	if err != nil {
		return store.Credential{}, fmt.Errorf("store: credential: %w", err)
	}
	if !found {
		return store.Credential{}, fmt.Errorf("store: credential: %w", store.ErrNotFound)
	}
	return out, nil
}

// ListCredentials lists the credentials of party, oldest first.
func (t *Tx) ListCredentials(party string) ([]store.Credential, error) {
	if !validText(party) {
		return nil, nil
	}
	var out []store.Credential
	err := t.queryAll(`SELECT `+credCols+` FROM credentials WHERE party = ? ORDER BY created_ns, token_hash`, []any{party}, func(r Rows) error {
		c, err := scanCred(r)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list credentials of %q: %w", party, err)
	}
	return out, nil
}

// ---- rules

func (t *Tx) PutRules(r store.RulesRecord) error {
	if err := t.writable("PutRules"); err != nil {
		return err
	}
	if err := checkText("rules.Actor", r.Actor); err != nil {
		return err
	}
	created, err := encTime("rules.Created", r.Created)
	if err != nil {
		return err
	}
	var latest int64
	if err := t.queryOne(`SELECT COALESCE(MAX(version), 0) FROM rules`, nil, &latest); err != nil {
		return fmt.Errorf("store: put rules: %w", err)
	}
	if r.Version != latest+1 {
		return fmt.Errorf("store: rules version %d is not %d: %w", r.Version, latest+1, store.ErrConflict)
	}
	n, err := t.q.Exec(t.ctx, `INSERT INTO rules (version, created_ns, actor, body) VALUES (?, ?, ?, ?) ON CONFLICT (version) DO NOTHING`,
		r.Version, created, r.Actor, nz(r.Body))
	if err != nil {
		return fmt.Errorf("store: put rules %d: %w", r.Version, err)
	}
	if n == 0 {
		return fmt.Errorf("store: rules version %d exists: %w", r.Version, store.ErrConflict)
	}
	return nil
}

func (t *Tx) LatestRules() (store.RulesRecord, error) {
	var r store.RulesRecord
	var created int64
	err := t.queryOne(`SELECT version, created_ns, actor, body FROM rules ORDER BY version DESC LIMIT 1`, nil,
		&r.Version, &created, &r.Actor, &r.Body)
	if err != nil {
		return store.RulesRecord{}, fmt.Errorf("store: latest rules: %w", err)
	}
	r.Created = decTime(created)
	return r, nil
}

// ---- volumes

// LockVolumes takes the dialect's lock; on SQLite it does nothing because
// every write transaction there already holds the database's single write
// lock (BEGIN IMMEDIATE) from its first statement to its commit.
func (t *Tx) LockVolumes() error {
	if err := t.writable("LockVolumes"); err != nil {
		return err
	}
	if t.d.LockVolumesSQL == "" {
		return nil
	}
	if err := t.queryAll(t.d.LockVolumesSQL, nil, func(Rows) error { return nil }); err != nil {
		return fmt.Errorf("store: lock volumes: %w", err)
	}
	return nil
}

const volCols = `id, party, version, state, priority, min_lat_deg, min_lon_deg, max_lat_deg, max_lon_deg,
	alt_lower_m, alt_upper_m, start_ns, end_ns, change_seq, body`

func scanVolume(r Rows) (store.Volume, error) {
	var v store.Volume
	var prio, start, end int64
	err := r.Scan(&v.ID, &v.Party, &v.Version, &v.State, &prio, &v.MinLatDeg, &v.MinLonDeg, &v.MaxLatDeg, &v.MaxLonDeg,
		&v.AltLowerM, &v.AltUpperM, &start, &end, &v.ChangeSeq, &v.Body)
	v.Priority = int(prio)
	v.Start, v.End = decTime(start), decTime(end)
	return v, err
}

func (t *Tx) PutVolume(v store.Volume, prevVersion string) (int64, error) {
	if err := t.writable("PutVolume"); err != nil {
		return 0, err
	}
	if v.ID == "" {
		return 0, errors.New("store: volume.ID is empty")
	}
	if err := checkText("volume.ID", v.ID, "volume.Party", v.Party, "volume.Version", v.Version, "volume.State", v.State); err != nil {
		return 0, err
	}
	if !validText(prevVersion) {
		return 0, fmt.Errorf("store: volume %q: expected version %q: %w", v.ID, prevVersion, store.ErrConflict)
	}
	start, err := encTime("volume.Start", v.Start)
	if err != nil {
		return 0, err
	}
	end, err := encTime("volume.End", v.End)
	if err != nil {
		return 0, err
	}
	// Check the precondition before taking a change sequence number, so a
	// refused write leaves the counter alone.
	var stored string
	err = t.queryOne(`SELECT version FROM volumes WHERE id = ?`, []any{v.ID}, &stored)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if prevVersion != "" {
			return 0, fmt.Errorf("store: volume %q does not exist (expected version %q): %w", v.ID, prevVersion, store.ErrConflict)
		}
	case err != nil:
		return 0, fmt.Errorf("store: volume %q: %w", v.ID, err)
	case prevVersion == "":
		return 0, fmt.Errorf("store: volume %q exists: %w", v.ID, store.ErrConflict)
	case stored != prevVersion:
		return 0, fmt.Errorf("store: volume %q is at version %q, not %q: %w", v.ID, stored, prevVersion, store.ErrConflict)
	}
	seq, err := t.bump("volume")
	if err != nil {
		return 0, err
	}
	args := []any{v.ID, v.Party, v.Version, v.State, int64(v.Priority), v.MinLatDeg, v.MinLonDeg, v.MaxLatDeg, v.MaxLonDeg,
		v.AltLowerM, v.AltUpperM, start, end, seq, nz(v.Body)}
	var n int64
	if prevVersion == "" {
		n, err = t.q.Exec(t.ctx, `INSERT INTO volumes (`+volCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, args...)
	} else {
		n, err = t.q.Exec(t.ctx, `UPDATE volumes SET party = ?, version = ?, state = ?, priority = ?,
			min_lat_deg = ?, min_lon_deg = ?, max_lat_deg = ?, max_lon_deg = ?, alt_lower_m = ?, alt_upper_m = ?,
			start_ns = ?, end_ns = ?, change_seq = ?, body = ? WHERE id = ? AND version = ?`,
			append(args[1:], v.ID, prevVersion)...)
	}
	if err != nil {
		return 0, fmt.Errorf("store: put volume %q: %w", v.ID, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("store: volume %q changed concurrently: %w", v.ID, store.ErrConflict)
	}
	return seq, nil
}

func (t *Tx) GetVolume(id string) (store.Volume, error) {
	if !validText(id) {
		return store.Volume{}, fmt.Errorf("store: volume %q: %w", id, store.ErrNotFound)
	}
	var out store.Volume
	found := false
	err := t.queryAll(`SELECT `+volCols+` FROM volumes WHERE id = ?`, []any{id}, func(r Rows) error {
		v, err := scanVolume(r)
		out, found = v, true
		return err
	})
	if err != nil {
		return store.Volume{}, fmt.Errorf("store: volume %q: %w", id, err)
	}
	if !found {
		return store.Volume{}, fmt.Errorf("store: volume %q: %w", id, store.ErrNotFound)
	}
	return out, nil
}

func (t *Tx) VolumesChangedSince(seq int64, limit int) ([]store.Volume, error) {
	if limit <= 0 {
		return nil, nil
	}
	out := make([]store.Volume, 0, min(limit, 1024))
	err := t.queryAll(`SELECT `+volCols+` FROM volumes WHERE change_seq > ? ORDER BY change_seq LIMIT ?`,
		[]any{seq, int64(limit)}, func(r Rows) error {
			v, err := scanVolume(r)
			out = append(out, v)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("store: volumes changed since %d: %w", seq, err)
	}
	return out, nil
}

// ---- events

// audienceKeys is what the audience index holds: "*" alone when the event
// concerns everyone, so a party's query never returns an event twice.
func audienceKeys(aud []string) []string {
	if slices.Contains(aud, "*") {
		return []string{"*"}
	}
	keys := append([]string{}, aud...)
	slices.Sort(keys)
	return slices.Compact(keys)
}

func insertAudience(ctx context.Context, q Querier, id int64, aud []string) error {
	keys := audienceKeys(aud)
	if len(keys) == 0 {
		return nil
	}
	// One statement for all parties: on PostgreSQL each statement is a
	// round trip.
	var b strings.Builder
	b.WriteString(`INSERT INTO event_audience (party, event_id) VALUES `)
	args := make([]any, 0, 2*len(keys))
	for i, p := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
		args = append(args, p, id)
	}
	if _, err := q.Exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("store: event %d audience: %w", id, err)
	}
	return nil
}

func (t *Tx) AppendEvent(e store.Event) (int64, error) {
	if err := t.writable("AppendEvent"); err != nil {
		return 0, err
	}
	if err := checkText("event.Kind", e.Kind); err != nil {
		return 0, err
	}
	if err := checkList("event.Audience", e.Audience); err != nil {
		return 0, err
	}
	ts, err := encTime("event.Time", e.Time)
	if err != nil {
		return 0, err
	}
	if t.d.AppendEventSQL != "" {
		var id int64
		err := t.queryOne(t.d.AppendEventSQL, []any{ts, e.Kind, encList(e.Audience), nz(e.Body), audienceKeys(e.Audience)}, &id)
		if err != nil {
			return 0, fmt.Errorf("store: append event: %w", err)
		}
		return id, nil
	}
	id, err := t.bump("event")
	if err != nil {
		return 0, err
	}
	if _, err := t.q.Exec(t.ctx, `INSERT INTO events (id, time_ns, kind, audience, body) VALUES (?, ?, ?, ?, ?)`,
		id, ts, e.Kind, encList(e.Audience), nz(e.Body)); err != nil {
		return 0, fmt.Errorf("store: append event: %w", err)
	}
	if err := insertAudience(t.ctx, t.q, id, e.Audience); err != nil {
		return 0, err
	}
	return id, nil
}

func scanEvent(r Rows) (store.Event, error) {
	var e store.Event
	var ts int64
	var aud string
	if err := r.Scan(&e.ID, &ts, &e.Kind, &aud, &e.Body); err != nil {
		return e, err
	}
	e.Time = decTime(ts)
	var err error
	e.Audience, err = decList("event audience", aud)
	return e, err
}

func (t *Tx) EventsAfter(afterID int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	out := make([]store.Event, 0, min(limit, 1024))
	err := t.queryAll(`SELECT id, time_ns, kind, audience, body FROM events WHERE id > ? ORDER BY id LIMIT ?`,
		[]any{afterID, int64(limit)}, func(r Rows) error {
			e, err := scanEvent(r)
			out = append(out, e)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("store: events after %d: %w", afterID, err)
	}
	return out, nil
}

func (t *Tx) EventsAfterFor(party string, afterID int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	if !validText(party) {
		return nil, nil
	}
	out := make([]store.Event, 0, min(limit, 1024))
	err := t.queryAll(`SELECT e.id, e.time_ns, e.kind, e.audience, e.body
		FROM event_audience a JOIN events e ON e.id = a.event_id
		WHERE a.party IN (?, '*') AND a.event_id > ? ORDER BY a.event_id LIMIT ?`,
		[]any{party, afterID, int64(limit)}, func(r Rows) error {
			e, err := scanEvent(r)
			out = append(out, e)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("store: events of %q after %d: %w", party, afterID, err)
	}
	return out, nil
}

func (t *Tx) LastEventID() (int64, error) {
	var v int64
	if err := t.queryOne(`SELECT value FROM counters WHERE name = 'event'`, nil, &v); err != nil {
		return 0, fmt.Errorf("store: last event id: %w", err)
	}
	return v, nil
}

// ---- audit

const auditCols = `seq, time_ns, actor, kind, content, prev_hash, hash`

func scanAudit(r Rows) (store.AuditRecord, error) {
	var a store.AuditRecord
	var ts int64
	err := r.Scan(&a.Seq, &ts, &a.Actor, &a.Kind, &a.Content, &a.PrevHash, &a.Hash)
	a.Time = decTime(ts)
	return a, err
}

func (t *Tx) AppendAudit(r store.AuditRecord) error {
	if err := t.writable("AppendAudit"); err != nil {
		return err
	}
	if err := checkText("audit.Actor", r.Actor, "audit.Kind", r.Kind); err != nil {
		return err
	}
	ts, err := encTime("audit.Time", r.Time)
	if err != nil {
		return err
	}
	var last int64
	if err := t.queryOne(`SELECT COALESCE(MAX(seq), 0) FROM audit`, nil, &last); err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	if r.Seq != last+1 {
		return fmt.Errorf("store: audit seq %d is not %d: %w", r.Seq, last+1, store.ErrConflict)
	}
	n, err := t.q.Exec(t.ctx, `INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING`,
		r.Seq, ts, r.Actor, r.Kind, nz(r.Content), nz(r.PrevHash), nz(r.Hash))
	if err != nil {
		return fmt.Errorf("store: append audit %d: %w", r.Seq, err)
	}
	if n == 0 {
		return fmt.Errorf("store: audit seq %d exists: %w", r.Seq, store.ErrConflict)
	}
	return nil
}

func (t *Tx) LastAudit() (store.AuditRecord, error) {
	var out store.AuditRecord
	found := false
	err := t.queryAll(`SELECT `+auditCols+` FROM audit ORDER BY seq DESC LIMIT 1`, nil, func(r Rows) error {
		a, err := scanAudit(r)
		out, found = a, true
		return err
	})
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("store: last audit: %w", err)
	}
	if !found {
		return store.AuditRecord{}, fmt.Errorf("store: audit log is empty: %w", store.ErrNotFound)
	}
	return out, nil
}

// AuditFrom returns records with Seq >= seq in order, at most limit.
func (t *Tx) AuditFrom(seq int64, limit int) ([]store.AuditRecord, error) {
	if limit <= 0 {
		return nil, nil
	}
	out := make([]store.AuditRecord, 0, min(limit, 1024))
	err := t.queryAll(`SELECT `+auditCols+` FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?`, []any{seq, int64(limit)}, func(r Rows) error {
		a, err := scanAudit(r)
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: audit from %d: %w", seq, err)
	}
	return out, nil
}

// PutCheckpoint inserts or replaces the checkpoint at c.Seq.
func (t *Tx) PutCheckpoint(c store.Checkpoint) error {
	if err := t.writable("PutCheckpoint"); err != nil {
		return err
	}
	ts, err := encTime("checkpoint.Time", c.Time)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO checkpoints (seq, hash, signature, time_ns) VALUES (?, ?, ?, ?)
		ON CONFLICT (seq) DO UPDATE SET hash = excluded.hash, signature = excluded.signature, time_ns = excluded.time_ns`,
		c.Seq, nz(c.Hash), nz(c.Signature), ts)
	if err != nil {
		return fmt.Errorf("store: put checkpoint %d: %w", c.Seq, err)
	}
	return nil
}

// CheckpointsFrom returns checkpoints with Seq >= seq in order.
func (t *Tx) CheckpointsFrom(seq int64) ([]store.Checkpoint, error) {
	var out []store.Checkpoint
	err := t.queryAll(`SELECT seq, hash, signature, time_ns FROM checkpoints WHERE seq >= ? ORDER BY seq`, []any{seq}, func(r Rows) error {
		var c store.Checkpoint
		var ts int64
		err := r.Scan(&c.Seq, &c.Hash, &c.Signature, &ts)
		c.Time = decTime(ts)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: checkpoints from %d: %w", seq, err)
	}
	return out, nil
}

// ---- hotline

const msgCols = `m.id, m.sender, m.recipients, m.thread, m.kind, m.state, m.created_ns, m.deadline_ns, m.body`

func scanMessage(r Rows) (store.Message, error) {
	var m store.Message
	var to string
	var created, deadline int64
	if err := r.Scan(&m.ID, &m.From, &to, &m.Thread, &m.Kind, &m.State, &created, &deadline, &m.Body); err != nil {
		return m, err
	}
	m.Created, m.Deadline = decTime(created), decTime(deadline)
	var err error
	m.To, err = decList("message recipients", to)
	return m, err
}

func (t *Tx) PutMessage(m store.Message) error {
	if err := t.writable("PutMessage"); err != nil {
		return err
	}
	if m.ID == "" {
		return errors.New("store: message.ID is empty")
	}
	if err := checkText("message.ID", m.ID, "message.From", m.From, "message.Thread", m.Thread, "message.Kind", m.Kind, "message.State", m.State); err != nil {
		return err
	}
	if err := checkList("message.To", m.To); err != nil {
		return err
	}
	created, err := encTime("message.Created", m.Created)
	if err != nil {
		return err
	}
	deadline, err := encTime("message.Deadline", m.Deadline)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO messages (id, sender, recipients, thread, kind, state, created_ns, deadline_ns, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET sender = excluded.sender, recipients = excluded.recipients,
		thread = excluded.thread, kind = excluded.kind, state = excluded.state, created_ns = excluded.created_ns,
		deadline_ns = excluded.deadline_ns, body = excluded.body`,
		m.ID, m.From, encList(m.To), m.Thread, m.Kind, m.State, created, deadline, nz(m.Body))
	if err != nil {
		return fmt.Errorf("store: put message %q: %w", m.ID, err)
	}
	if _, err := t.q.Exec(t.ctx, `DELETE FROM message_parties WHERE message_id = ?`, m.ID); err != nil {
		return fmt.Errorf("store: put message %q: %w", m.ID, err)
	}
	parties := append([]string{m.From}, m.To...)
	slices.Sort(parties)
	for _, p := range slices.Compact(parties) {
		if _, err := t.q.Exec(t.ctx, `INSERT INTO message_parties (party, message_id, created_ns) VALUES (?, ?, ?)`,
			p, m.ID, created); err != nil {
			return fmt.Errorf("store: put message %q: %w", m.ID, err)
		}
	}
	return nil
}

func (t *Tx) GetMessage(id string) (store.Message, error) {
	if !validText(id) {
		return store.Message{}, fmt.Errorf("store: message %q: %w", id, store.ErrNotFound)
	}
	var out store.Message
	found := false
	err := t.queryAll(`SELECT `+msgCols+` FROM messages m WHERE m.id = ?`, []any{id}, func(r Rows) error {
		m, err := scanMessage(r)
		out, found = m, true
		return err
	})
	if err != nil {
		return store.Message{}, fmt.Errorf("store: message %q: %w", id, err)
	}
	if !found {
		return store.Message{}, fmt.Errorf("store: message %q: %w", id, store.ErrNotFound)
	}
	return out, nil
}

func (t *Tx) messages(op, query string, args []any) ([]store.Message, error) {
	var out []store.Message
	err := t.queryAll(query, args, func(r Rows) error {
		m, err := scanMessage(r)
		out = append(out, m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return out, nil
}

// MessagesFor orders by creation time, then id, so equal times keep a
// stable order.
func (t *Tx) MessagesFor(party, thread string, since time.Time, limit int) ([]store.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	if !validText(party) || !validText(thread) {
		return nil, nil
	}
	from, err := encTime("since", since)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + msgCols + ` FROM message_parties p JOIN messages m ON m.id = p.message_id
		WHERE p.party = ? AND p.created_ns >= ?`
	args := []any{party, from}
	if thread != "" {
		q += ` AND m.thread = ?`
		args = append(args, thread)
	}
	q += ` ORDER BY p.created_ns, m.id LIMIT ?`
	return t.messages("messages for "+party, q, append(args, int64(limit)))
}

// OpenMessagesDue orders by deadline, then id: the most overdue first.
func (t *Tx) OpenMessagesDue(at time.Time, limit int) ([]store.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	ts, err := encTime("at", at)
	if err != nil {
		return nil, err
	}
	return t.messages("open messages due", `SELECT `+msgCols+` FROM messages m
		WHERE m.state IN ('open', 'escalated') AND m.deadline_ns <= ? ORDER BY m.deadline_ns, m.id LIMIT ?`,
		[]any{ts, int64(limit)})
}

func (t *Tx) PutAck(a store.Ack) (bool, error) {
	if err := t.writable("PutAck"); err != nil {
		return false, err
	}
	if err := checkText("ack.MessageID", a.MessageID, "ack.Party", a.Party); err != nil {
		return false, err
	}
	ts, err := encTime("ack.Time", a.Time)
	if err != nil {
		return false, err
	}
	n, err := t.q.Exec(t.ctx, `INSERT INTO acks (message_id, party, time_ns, body) VALUES (?, ?, ?, ?)
		ON CONFLICT (message_id, party) DO NOTHING`, a.MessageID, a.Party, ts, nz(a.Body))
	if err != nil {
		return false, fmt.Errorf("store: ack of %q by %q: %w", a.MessageID, a.Party, err)
	}
	return n == 1, nil
}

// AcksFor lists a message's acknowledgments in the order they were made.
func (t *Tx) AcksFor(messageID string) ([]store.Ack, error) {
	if !validText(messageID) {
		return nil, nil
	}
	var out []store.Ack
	err := t.queryAll(`SELECT message_id, party, time_ns, body FROM acks WHERE message_id = ? ORDER BY time_ns, party`,
		[]any{messageID}, func(r Rows) error {
			var a store.Ack
			var ts int64
			err := r.Scan(&a.MessageID, &a.Party, &ts, &a.Body)
			a.Time = decTime(ts)
			out = append(out, a)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("store: acks of %q: %w", messageID, err)
	}
	return out, nil
}

// ---- meta

func (t *Tx) GetMeta(key string) ([]byte, error) {
	if !validText(key) {
		return nil, fmt.Errorf("store: meta %q: %w", key, store.ErrNotFound)
	}
	var v []byte
	if err := t.queryOne(`SELECT value FROM meta WHERE name = ?`, []any{key}, &v); err != nil {
		return nil, fmt.Errorf("store: meta %q: %w", key, err)
	}
	return v, nil
}

func (t *Tx) PutMeta(key string, value []byte) error {
	if err := t.writable("PutMeta"); err != nil {
		return err
	}
	if err := checkText("meta key", key); err != nil {
		return err
	}
	_, err := t.q.Exec(t.ctx, `INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		key, nz(value))
	if err != nil {
		return fmt.Errorf("store: put meta %q: %w", key, err)
	}
	return nil
}
