package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// Migration is one numbered step of the schema. Statements may use the
// token BYTES for the dialect's byte-string type. Go, when set, runs after
// the statements in the same transaction (for backfills that plain SQL
// cannot express portably).
type Migration struct {
	Version    int
	Name       string
	Statements []string
	Go         func(ctx context.Context, q Querier) error
}

// Migrations is the schema's history, in order. Never edit a released step:
// add a new one.
var Migrations = []Migration{
	{
		Version: 1,
		Name:    "core tables",
		Statements: []string{
			`CREATE TABLE parties (
				name TEXT PRIMARY KEY,
				operator BOOLEAN NOT NULL,
				created_ns BIGINT NOT NULL,
				disabled BOOLEAN NOT NULL)`,
			`CREATE TABLE credentials (
				token_hash BYTES PRIMARY KEY,
				party TEXT NOT NULL,
				created_ns BIGINT NOT NULL,
				revoked BOOLEAN NOT NULL,
				revoked_at_ns BIGINT NOT NULL)`,
			`CREATE INDEX credentials_party ON credentials (party)`,
			`CREATE TABLE rules (
				version BIGINT PRIMARY KEY,
				created_ns BIGINT NOT NULL,
				actor TEXT NOT NULL,
				body BYTES NOT NULL)`,
			`CREATE TABLE locks (name TEXT PRIMARY KEY)`,
			`INSERT INTO locks (name) VALUES ('volumes')`,
			`CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
			`INSERT INTO counters (name, value) VALUES ('event', 0), ('volume', 0)`,
			`CREATE TABLE volumes (
				id TEXT PRIMARY KEY,
				party TEXT NOT NULL,
				version TEXT NOT NULL,
				state TEXT NOT NULL,
				priority BIGINT NOT NULL,
				min_lat_deg DOUBLE PRECISION NOT NULL,
				min_lon_deg DOUBLE PRECISION NOT NULL,
				max_lat_deg DOUBLE PRECISION NOT NULL,
				max_lon_deg DOUBLE PRECISION NOT NULL,
				alt_lower_m DOUBLE PRECISION NOT NULL,
				alt_upper_m DOUBLE PRECISION NOT NULL,
				start_ns BIGINT NOT NULL,
				end_ns BIGINT NOT NULL,
				change_seq BIGINT NOT NULL,
				body BYTES NOT NULL)`,
			`CREATE UNIQUE INDEX volumes_change_seq ON volumes (change_seq)`,
			`CREATE TABLE events (
				id BIGINT PRIMARY KEY,
				time_ns BIGINT NOT NULL,
				kind TEXT NOT NULL,
				audience TEXT NOT NULL,
				body BYTES NOT NULL)`,
			`CREATE TABLE audit (
				seq BIGINT PRIMARY KEY,
				time_ns BIGINT NOT NULL,
				actor TEXT NOT NULL,
				kind TEXT NOT NULL,
				content BYTES NOT NULL,
				prev_hash BYTES NOT NULL,
				hash BYTES NOT NULL)`,
			`CREATE TABLE checkpoints (
				seq BIGINT PRIMARY KEY,
				hash BYTES NOT NULL,
				signature BYTES NOT NULL,
				time_ns BIGINT NOT NULL)`,
			`CREATE TABLE messages (
				id TEXT PRIMARY KEY,
				sender TEXT NOT NULL,
				recipients TEXT NOT NULL,
				thread TEXT NOT NULL,
				kind TEXT NOT NULL,
				state TEXT NOT NULL,
				created_ns BIGINT NOT NULL,
				deadline_ns BIGINT NOT NULL,
				body BYTES NOT NULL)`,
			`CREATE INDEX messages_due ON messages (state, deadline_ns)`,
			`CREATE TABLE message_parties (
				party TEXT NOT NULL,
				message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
				created_ns BIGINT NOT NULL,
				PRIMARY KEY (party, message_id))`,
			`CREATE INDEX message_parties_created ON message_parties (party, created_ns)`,
			`CREATE TABLE acks (
				message_id TEXT NOT NULL,
				party TEXT NOT NULL,
				time_ns BIGINT NOT NULL,
				body BYTES NOT NULL,
				PRIMARY KEY (message_id, party))`,
			`CREATE TABLE meta (name TEXT PRIMARY KEY, value BYTES NOT NULL)`,
		},
	},
	{
		// The SSE stream of one party reads only its events: index the
		// audience instead of decoding every event's JSON.
		Version: 2,
		Name:    "event audience index",
		Statements: []string{
			`CREATE TABLE event_audience (
				party TEXT NOT NULL,
				event_id BIGINT NOT NULL REFERENCES events (id),
				PRIMARY KEY (party, event_id))`,
		},
		Go: backfillEventAudience,
	},
	{
		// The hotline asks whether a thread has begun before a party
		// starts one of that name.
		Version: 3,
		Name:    "message thread index",
		Statements: []string{
			`CREATE INDEX messages_thread ON messages (thread)`,
		},
	},
	{
		// Rules by agreement: a change of the rules is a proposal that
		// the parties answer; the open ones are listed by state.
		Version: 4,
		Name:    "rules proposals",
		Statements: []string{
			`CREATE TABLE rules_proposals (
				version BIGINT PRIMARY KEY,
				created_ns BIGINT NOT NULL,
				actor TEXT NOT NULL,
				state TEXT NOT NULL,
				body BYTES NOT NULL)`,
			`CREATE INDEX rules_proposals_state ON rules_proposals (state, version)`,
		},
	},
	{
		// The nonces of signed requests, shared by the replicas so that
		// a signature replayed to another replica is refused; expired
		// ones are deleted by expiry.
		Version: 5,
		Name:    "signature nonces",
		Statements: []string{
			`CREATE TABLE nonces (
				keyid TEXT NOT NULL,
				nonce TEXT NOT NULL,
				expires_ns BIGINT NOT NULL,
				PRIMARY KEY (keyid, nonce))`,
			`CREATE INDEX nonces_expiry ON nonces (expires_ns)`,
		},
	},
	{
		// PutMessage replaces a message's parties by its id, and every
		// update of an alert puts its hotline item again: without this
		// index each put scanned all of message_parties, whose primary
		// key starts with the party.
		Version: 6,
		Name:    "message parties by message",
		Statements: []string{
			`CREATE INDEX message_parties_message ON message_parties (message_id)`,
		},
	},
	{
		// A party's post counts its messages still open to each
		// recipient (OpenMessagesFromTo): its open ones, not its
		// whole history.
		Version: 7,
		Name:    "open messages by sender",
		Statements: []string{
			`CREATE INDEX messages_sender_state ON messages (sender, state)`,
		},
	},
	{
		// The answers of writes sent with an Idempotency-Key, kept with
		// the write so that a client that lost its answer may send the
		// write again; per party, expired ones deleted by a periodic job.
		Version: 8,
		Name:    "idempotency keys",
		Statements: []string{
			`CREATE TABLE idempotency (
				party TEXT NOT NULL,
				idem_key TEXT NOT NULL,
				fingerprint BYTES NOT NULL,
				status BIGINT NOT NULL,
				body BYTES NOT NULL,
				created_ns BIGINT NOT NULL,
				expires_ns BIGINT NOT NULL,
				PRIMARY KEY (party, idem_key))`,
			`CREATE INDEX idempotency_expiry ON idempotency (expires_ns)`,
			// What each party keeps, counted as it is put and
			// forgotten: the bound is checked at every write with a
			// key, without reading the party's answers.
			`CREATE TABLE idempotency_usage (
				party TEXT PRIMARY KEY,
				answers BIGINT NOT NULL,
				body_bytes BIGINT NOT NULL)`,
		},
	},
	{
		// The alerts open and those cleared lately, kept with their
		// events (store.Alerts): a start read them from every event of
		// the store, about 6 s a million. Filled once from the events
		// of an existing store (backfillAlerts).
		Version: 9,
		Name:    "open alerts",
		Statements: []string{
			`CREATE TABLE open_alerts (
				id TEXT PRIMARY KEY,
				event_id BIGINT NOT NULL,
				time_ns BIGINT NOT NULL,
				body BYTES NOT NULL)`,
			`CREATE TABLE cleared_alerts (
				id TEXT PRIMARY KEY,
				event_id BIGINT NOT NULL,
				time_ns BIGINT NOT NULL)`,
			`CREATE INDEX cleared_alerts_time ON cleared_alerts (time_ns)`,
		},
		Go: backfillAlerts,
	},
	{
		// What each alert kept is about and when it was open, as its
		// transitions say (store.StoredAlert.Pair, RaisedAt,
		// ClearedAt): a takeover records late an alert raised and
		// cleared while no replica led unless the store has one of its
		// pair open at the same time, and a clear keeps no body. Filled
		// once from the alerts' events (backfillAlertSpans).
		Version: 10,
		Name:    "alert spans",
		Statements: []string{
			`ALTER TABLE open_alerts ADD COLUMN pair TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE open_alerts ADD COLUMN raised_ns BIGINT NOT NULL DEFAULT -9223372036854775808`,
			`ALTER TABLE cleared_alerts ADD COLUMN pair TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE cleared_alerts ADD COLUMN raised_ns BIGINT NOT NULL DEFAULT -9223372036854775808`,
			`ALTER TABLE cleared_alerts ADD COLUMN cleared_ns BIGINT NOT NULL DEFAULT -9223372036854775808`,
		},
		Go: backfillAlertSpans,
	},
	{
		// A party's open hotline items (the snapshot of its event
		// stream): the item's state kept with each of its parties, so
		// that they are read from the party's own open items, not from
		// the open items of every party (index messages_due) nor from
		// the party's whole history. Filled from the messages of an
		// existing store.
		Version: 11,
		Name:    "open messages by party",
		Statements: []string{
			`ALTER TABLE message_parties ADD COLUMN state TEXT NOT NULL DEFAULT ''`,
			`UPDATE message_parties SET state = (SELECT m.state FROM messages m WHERE m.id = message_parties.message_id)`,
			`CREATE INDEX message_parties_state ON message_parties (party, state)`,
		},
	},
	{
		// A party's messages in one thread (MessagesFor with a thread:
		// whether the sender is a member of the thread, at every post,
		// and the list of a thread): the thread kept with each party of
		// a message, indexed in order of creation, so that they are
		// read from the party's own messages in that thread, not from
		// its whole history, each row looked up in messages to test
		// its thread (a post into a new thread read all of it: 0.4 s
		// with 100k messages). Filled from the messages of an existing
		// store.
		Version: 12,
		Name:    "message threads by party",
		Statements: []string{
			`ALTER TABLE message_parties ADD COLUMN thread TEXT NOT NULL DEFAULT ''`,
			`UPDATE message_parties SET thread = (SELECT m.thread FROM messages m WHERE m.id = message_parties.message_id)`,
			`CREATE INDEX message_parties_thread ON message_parties (party, thread, created_ns, message_id)`,
		},
	},
	{
		// Each party's own numbers of its events (store.PartySeqReader):
		// the global ids a party was sent told it, by their gaps, how
		// many events the others get. Kept with each entry of the
		// audience index (insertNumberedAudience says what seq and
		// everyone are), filled for the events of an existing store in
		// id order. A store that has events keeps store.UpgradedSeqBase
		// as the base of the ids a party is shown, so that a cursor a
		// client holds from before (a global id, below the base, sent
		// before the upgrade or by an old replica still running after
		// it) still says where it stands; a new one keeps 0. An event
		// is indexed under "*" alone or under its parties, never both,
		// so the running count of the entries of "*" in id order is
		// everyone's number at every entry.
		Version: 13,
		Name:    "event numbers per party",
		Statements: []string{
			`ALTER TABLE event_audience ADD COLUMN seq BIGINT NOT NULL DEFAULT 0`,
			`ALTER TABLE event_audience ADD COLUMN everyone BIGINT NOT NULL DEFAULT 0`,
			`UPDATE event_audience SET seq = n.own, everyone = n.everyone FROM (
				SELECT party, event_id,
					ROW_NUMBER() OVER (PARTITION BY party ORDER BY event_id) AS own,
					SUM(CASE WHEN party = '*' THEN 1 ELSE 0 END) OVER (ORDER BY event_id, party ROWS UNBOUNDED PRECEDING) AS everyone
				FROM event_audience) AS n
				WHERE event_audience.party = n.party AND event_audience.event_id = n.event_id`,
			`UPDATE event_audience SET seq = seq + everyone WHERE party <> '*'`,
			`CREATE UNIQUE INDEX event_audience_seq ON event_audience (party, seq)`,
			`INSERT INTO counters (name, value) SELECT 'event_seq_base', CASE WHEN value > 0 THEN ` + upgradedSeqBase + ` ELSE 0 END FROM counters WHERE name = 'event'`,
			// The last global id a party could have been shown: a
			// cursor beyond it, below the base, is no id of before, and
			// answering it would let a party find, by its own events'
			// places in the global order, how many events the others
			// get since.
			`INSERT INTO counters (name, value) SELECT 'event_seq_legacy_last', value FROM counters WHERE name = 'event'`,
		},
	},
}

// upgradedSeqBase is store.UpgradedSeqBase in SQL.
var upgradedSeqBase = strconv.FormatInt(store.UpgradedSeqBase, 10)

// Latest is the version a freshly opened store is at.
func Latest() int { return Migrations[len(Migrations)-1].Version }

// EnsureMigrationsTable creates the bookkeeping table if it is missing. It
// runs in its own transaction before Migrate so that Migrate can read it.
const EnsureMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version BIGINT PRIMARY KEY,
	name TEXT NOT NULL,
	applied_ns BIGINT NOT NULL)`

// CurrentVersion returns the highest applied migration, 0 for none.
func CurrentVersion(ctx context.Context, q Querier) (int, error) {
	rows, err := q.Query(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	defer rows.Close()
	var v int64
	if rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return 0, fmt.Errorf("read schema version: %w", err)
		}
	}
	return int(v), rows.Err()
}

// Migrate applies, inside the caller's transaction, every migration above
// the current version up to and including upTo, and records each in
// schema_migrations. It refuses a database newer than this binary.
func Migrate(ctx context.Context, q Querier, d Dialect, upTo int) error {
	return MigrateSteps(ctx, q, d, Migrations, upTo)
}

// MigrateSteps is Migrate with the history steps (in order) instead of
// Migrations: the tests run a newer version's migration with it.
func MigrateSteps(ctx context.Context, q Querier, d Dialect, steps []Migration, upTo int) error {
	cur, err := CurrentVersion(ctx, q)
	if err != nil {
		return err
	}
	if known := steps[len(steps)-1].Version; cur > known {
		return &store.UpgradedError{Stored: cur, Known: known}
	}
	for _, m := range steps {
		if m.Version <= cur || m.Version > upTo {
			continue
		}
		// One script per migration: one round trip, not one per
		// statement (both drivers run several statements when there are
		// no arguments).
		script := strings.ReplaceAll(strings.Join(m.Statements, ";\n"), "BYTES", d.BytesType)
		if _, err := q.Exec(ctx, script); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		if m.Go != nil {
			if err := m.Go(ctx, q); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
		}
		if _, err := q.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?, ?, ?)`,
			int64(m.Version), m.Name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("record migration %d: %w", m.Version, err)
		}
	}
	return nil
}

func backfillEventAudience(ctx context.Context, q Querier) error {
	type ev struct {
		id       int64
		audience string
	}
	var all []ev
	rows, err := q.Query(ctx, `SELECT id, audience FROM events ORDER BY id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var e ev
		if err := rows.Scan(&e.id, &e.audience); err != nil {
			rows.Close()
			return err
		}
		all = append(all, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range all {
		var aud []string
		if err := json.Unmarshal([]byte(e.audience), &aud); err != nil {
			return fmt.Errorf("event %d: audience: %w", e.id, err)
		}
		if err := insertAudience(ctx, q, e.id, aud); err != nil {
			return err
		}
	}
	return nil
}
