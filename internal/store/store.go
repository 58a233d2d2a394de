// Package store owns durable state: the storage interface that every other
// package persists through, and its record types. Implementations live in
// sub-packages (sqlite, the embedded default; postgres, for several
// replicas); storetest holds the conformance suite that every implementation
// must pass.
//
// The interface is deliberately plain: records are flat structs with a few
// indexed columns and an opaque JSON body owned by the package that writes
// it. Nothing here knows what a volume's footprint or a message's text
// means, so no domain package has to be imported below the flow, and the
// SQL stays what both PostgreSQL and CockroachDB accept.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors returned by every implementation. Callers test them with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a uniqueness or version precondition failed (the row was
	// changed by someone else); nothing was written.
	ErrConflict = errors.New("store: conflict")
	// ErrInvalid: a value cannot be stored (e.g. a text field that is not
	// valid UTF-8 or holds NUL); the error names the field; nothing was
	// written.
	ErrInvalid = errors.New("store: invalid value")
	// ErrReadOnly: a write method was called inside View.
	ErrReadOnly = errors.New("store: write in a read-only transaction")
)

// UpgradedError: the store's schema is at a migration beyond the last this
// program knows (Stored > Known). A newer version of the program migrated
// it, and its migrations keep what this one does not (the open and
// cleared alerts, each party's state of its messages...): a write in the
// old way would leave them stale for the new version. Opening such a
// store fails with it, and a store shared by replicas (SchemaFence) that
// finds itself upgraded while running refuses every write with it from
// then on.
type UpgradedError struct {
	Stored, Known int
}

func (e *UpgradedError) Error() string {
	return fmt.Sprintf("store: the store's schema is at version %d, beyond this program's %d: a newer version of deconflict migrated it; this one writes nothing more to it (stop it and run the newer version)", e.Stored, e.Known)
}

// SchemaFence is implemented by the stores replicas share (PostgreSQL),
// which a newer version may migrate while an older one still runs.
// CheckSchema reads the store's schema version: beyond the program's, it
// returns an *UpgradedError, and every Update from then on fails with it
// without running. Call it at each renewal of a lease and at each beat of
// the process.
type SchemaFence interface {
	CheckSchema(ctx context.Context) error
}

// Store is one durable store. Update runs fn in one transaction at
// serializable isolation (or with the locks that make it equivalent): either
// all its writes commit, or none. On a serialization failure the
// implementation rolls back and runs fn again, a bounded number of times, so
// fn must not have side effects outside the Tx before it returns. A nil
// return from Update means the writes are durable (committed and synced).
//
// Both implementations group-commit: concurrent Updates may share one
// database transaction, each fn in its own savepoint, run one after the
// other, so the outcome is that of running them one at a time; an fn that
// fails is undone alone. fn must therefore not call Update on the same
// store (it would wait for itself).
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is the set of operations available inside one transaction: every
// role below. In View, write methods return an error.
//
// A package depends only on the roles it uses (party on Parties, audit on
// Audit, the volume registry on Volumes, ...), so its test doubles implement
// those alone, and a method added to one role touches only its users.
type Tx interface {
	Parties
	Rules
	Volumes
	Events
	Alerts
	Audit
	Messages
	Meta
	Nonces
	Idempotency
}

// Parties stores parties and their credentials.
type Parties interface {
	CreateParty(p Party) error // ErrConflict when the name exists
	UpdateParty(p Party) error // ErrNotFound when absent
	PartyByName(name string) (Party, error)
	ListParties() ([]Party, error)
	// Credential lookups: a token is only ever stored as its hash.
	PutCredential(c Credential) error
	CredentialByHash(tokenHash []byte) (Credential, error)
	ListCredentials(party string) ([]Credential, error)
}

// Rules stores the versions of the agreed rules in force and the proposed
// ones. A version number names one proposal and, once every party accepted
// it, the rules in force: PutRules refuses a version that is not above the
// latest in force (ErrConflict); versions of proposals that were rejected
// never come into force, so the versions in force may have gaps.
type Rules interface {
	PutRules(r RulesRecord) error
	LatestRules() (RulesRecord, error) // ErrNotFound before the first version
	// RulesHistory returns every version that came into force, in
	// version order (none before the first).
	RulesHistory() ([]RulesRecord, error)
	// PutRulesProposal inserts or replaces the proposal of its version.
	PutRulesProposal(p RulesProposal) error
	// GetRulesProposal returns one proposal (ErrNotFound when absent).
	GetRulesProposal(version int64) (RulesProposal, error)
	// RulesProposals lists the proposals in a state ("" for all), in
	// version order.
	RulesProposals(state string) ([]RulesProposal, error)
}

// Volumes stores 4D volumes.
type Volumes interface {
	// LockVolumes serialises every writer of volumes, across processes
	// too, for the rest of the transaction: a strategic check runs after
	// it, so two writers never both commit volumes that conflict without
	// one seeing the other.
	LockVolumes() error
	// PutVolume inserts (when prevVersion is "") or replaces the volume
	// whose stored version equals prevVersion; otherwise ErrConflict.
	// It assigns v.ChangeSeq (one sequence over all volume writes) and
	// returns it.
	PutVolume(v Volume, prevVersion string) (changeSeq int64, err error)
	GetVolume(id string) (Volume, error)
	// VolumesChangedSince returns the latest state of every volume written
	// with ChangeSeq > seq, ordered by ChangeSeq, at most limit.
	VolumesChangedSince(seq int64, limit int) ([]Volume, error)
}

// Events stores the event stream: ids are global, start at 1, and have no
// gaps (one counter in the store, incremented inside the transaction).
// Global ids are the store's and the operator's: a party is shown its own
// numbering of the events that concern it (PartySeqReader), since the gaps
// between its events' global ids would tell it how many events the other
// parties get.
type Events interface {
	AppendEvent(e Event) (id int64, err error)
	// EventsAfter returns events with ID > afterID in id order, at most limit.
	EventsAfter(afterID int64, limit int) ([]Event, error)
	LastEventID() (int64, error)
}

// Alerts keeps what the event stream says of the alerts: those open (the
// last event of each) and those cleared lately, so that a start or a
// takeover reads them without reading the stream, at a cost that does not
// grow with its length. The writer of an alert's events puts or clears it
// in the same transaction, so that what is kept is what a scan of the
// events up to LastEventID, read in the same transaction, would find. The
// store does not read the bodies (opaque JSON of the writer); the
// migration that brought this role in filled it once from the events of
// the kinds "alert_raised", "alert_updated" and "alert_cleared", by the
// "id" of their body (and the one that brought Pair, RaisedAt and
// ClearedAt in, by their "kind", "aircraft" and "time").
type Alerts interface {
	// PutOpenAlert records a as open, replacing what was recorded of its
	// ID as open but its RaisedAt; a clear recorded of it stays
	// (ClearedAlerts). a.ClearedAt is not kept.
	PutOpenAlert(a StoredAlert) error
	// ClearAlert records that the alert a.ID ended with the event
	// a.EventID at a.Time: it is open no more, and ClearedAlerts lists it
	// (with its last clear, its Pair, its RaisedAt as it was open, and
	// a.ClearedAt) until ForgetClearedAlerts. a.Body is not kept.
	ClearAlert(a StoredAlert) error
	// OpenAlerts returns the alerts open, in ID order.
	OpenAlerts() ([]StoredAlert, error)
	// ClearedAlerts returns the clears recorded, in ID order, without
	// body.
	ClearedAlerts() ([]StoredAlert, error)
	// ForgetClearedAlerts deletes the clears recorded at a time before
	// before, and returns how many there were.
	ForgetClearedAlerts(before time.Time) (int64, error)
}

// StoredAlert is what Alerts keeps of one alert: its id and its last
// event (for a cleared alert, the clear's, without body), and what it is
// about and when it was open, as its writer says (a takeover matches the
// alerts its engine raised and cleared while no replica led with those of
// the store by them).
type StoredAlert struct {
	ID      string
	EventID int64
	Time    time.Time
	Body    []byte
	// Pair is what the alert is about: AlertPair of its kind and
	// aircraft.
	Pair string
	// RaisedAt is when the alert was raised, and ClearedAt when it was
	// cleared (zero while it is open), as the times of its transitions
	// say, which are not always those of its events (a transition
	// recorded late). PutOpenAlert of an ID open keeps the RaisedAt
	// recorded (an update does not know it), ClearAlert the one recorded
	// while it was open (a.RaisedAt if it was not); zero is unknown.
	RaisedAt, ClearedAt time.Time
}

// AlertAircraft is an aircraft of an alert: its party, and the party's
// name for it.
type AlertAircraft struct{ Party, Aircraft string }

// AlertPair is the StoredAlert.Pair of an alert of kind about aircraft,
// in any order: a text that names them unambiguously, the same whatever
// their order. The migration that brought Pair in filled it from the
// alert events' bodies ("kind", and "party" and "aircraft" of each of
// "aircraft").
func AlertPair(kind string, aircraft []AlertAircraft) string {
	keys := make([]string, len(aircraft))
	for i, ac := range aircraft {
		keys[i] = strconv.Quote(ac.Party) + " " + strconv.Quote(ac.Aircraft)
	}
	slices.Sort(keys)
	return strconv.Quote(kind) + " " + strings.Join(keys, " ")
}

// Audit stores the audit record. The hash chain itself is computed by
// package audit; the store keeps records in sequence order and refuses a Seq
// that is not exactly one past the last (ErrConflict).
type Audit interface {
	AppendAudit(r AuditRecord) error
	LastAudit() (AuditRecord, error) // ErrNotFound when the log is empty
	AuditFrom(seq int64, limit int) ([]AuditRecord, error)
	PutCheckpoint(c Checkpoint) error
	CheckpointsFrom(seq int64) ([]Checkpoint, error)
}

// Messages stores hotline messages and their acknowledgments.
type Messages interface {
	PutMessage(m Message) error // insert or replace by ID
	GetMessage(id string) (Message, error)
	// MessagesFor lists messages whose sender or recipients include party,
	// optionally only one thread ("" = all), created at or after since, in
	// creation order, at most limit.
	MessagesFor(party, thread string, since time.Time, limit int) ([]Message, error)
	// NewestMessagesFor lists the newest messages whose sender or
	// recipients include party created at or after since, newest first
	// (by creation time, then id, the reverse of MessagesFor), at most
	// limit: the party's index of creation times read backwards, which
	// stops after limit, not the party's messages since read whole and
	// sorted (a planner may still do so when they are few).
	NewestMessagesFor(party string, since time.Time, limit int) ([]Message, error)
	// ThreadExists reports whether any message is in the thread.
	ThreadExists(thread string) (bool, error)
	// OpenMessagesDue lists messages in state open or escalated whose
	// current deadline is at or before t.
	OpenMessagesDue(t time.Time, limit int) ([]Message, error)
	// OpenMessagesFor lists the messages whose sender or recipients
	// include party in state open or escalated, earliest deadline first,
	// at most limit; its cost is that of the party's open messages, not
	// of every party's nor of its history.
	OpenMessagesFor(party string, limit int) ([]Message, error)
	// OpenMessagesAfter lists messages in state open or escalated whose
	// current deadline is after t, at most limit: those whose deadline
	// lies further ahead than any the rules set, because the clock that
	// set it was ahead (hotline.Reschedule).
	OpenMessagesAfter(t time.Time, limit int) ([]Message, error)
	// OpenMessagesFromTo counts the messages of sender to recipient in
	// state open or escalated that recipient has not acknowledged.
	OpenMessagesFromTo(sender, recipient string) (int, error)
	// OpenMessagesInThreadFor lists the messages of kind in thread whose
	// sender or recipients include party, in state open or escalated,
	// newest first, at most limit; its cost is that of the party's
	// messages in the thread, not of its history.
	OpenMessagesInThreadFor(party, thread, kind string, limit int) ([]Message, error)
	// PutAck records one party's acknowledgment; inserted is false (and
	// nothing changes) when that party had already acknowledged it.
	PutAck(a Ack) (inserted bool, err error)
	AcksFor(messageID string) ([]Ack, error)
}

// Meta is a small key/value space for implementation-independent
// bookkeeping (e.g. the last event id a replica has applied, the detection
// lease).
type Meta interface {
	GetMeta(key string) ([]byte, error) // ErrNotFound when absent
	PutMeta(key string, value []byte) error
	// DeleteMeta deletes the key; a key that is absent is no error.
	DeleteMeta(key string) error
	// MetaWithPrefix returns every key that begins with prefix (taken
	// literally, no pattern) and its value.
	MetaWithPrefix(prefix string) (map[string][]byte, error)
}

// Nonces remembers the nonces of the parties' signed requests (RFC 9421)
// until they expire, so that a signature replayed to any replica sharing
// the store is refused. Recording a nonce in the transaction of the write
// it signs makes the write and the use of its nonce one: of two replicas
// given the same signed request, one commits and the other finds the
// nonce used.
type Nonces interface {
	// UseNonce records nonce as used with keyID until expires, and
	// reports whether it was fresh: false, and nothing changes, when it
	// is recorded already and has not expired at now.
	UseNonce(keyID, nonce string, now, expires time.Time) (fresh bool, err error)
	// ForgetNonces deletes the nonces expired at now and returns how
	// many there were.
	ForgetNonces(now time.Time) (int64, error)
}

// Idempotency keeps the answers of the parties' writes sent with an
// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) until they
// expire, so that a client that never got its answer can send the write
// again and be answered the same, the write done once. Putting the answer
// in the transaction of the write it answers makes the answer exist if and
// only if the write committed. Keys are scoped per party: one party's key
// is never matched against another's.
type Idempotency interface {
	// GetIdempotent returns the answer kept under party and key, or
	// ErrNotFound when there is none or it expired at now.
	GetIdempotent(party, key string, now time.Time) (IdempotentAnswer, error)
	// PutIdempotent keeps a; ErrConflict (and nothing changes) when a
	// live answer is kept under its party and key at now. An expired one
	// is taken over.
	PutIdempotent(a IdempotentAnswer, now time.Time) error
	// IdempotentUsage counts the answers party keeps (expired ones too,
	// until ForgetIdempotent deletes them) and the bytes of their bodies.
	IdempotentUsage(party string) (count int, bodyBytes int64, err error)
	// ForgetIdempotent deletes the answers expired at now and returns how
	// many there were.
	ForgetIdempotent(now time.Time) (int64, error)
}

// IdempotentAnswer is the answer to a write sent with an idempotency key:
// the fingerprint of the request (so that the key used again for another
// request is told apart) and the status and body answered.
type IdempotentAnswer struct {
	Party       string
	Key         string
	Fingerprint []byte
	Status      int
	Body        []byte
	Created     time.Time
	Expires     time.Time
}

// PartyEventReader is implemented by the Tx of a backend that indexes event
// audiences (both sqlite and postgres do). It is a separate interface so that
// test doubles of Events need not implement it; call EventsAfterFor, which
// falls back to filtering EventsAfter.
type PartyEventReader interface {
	// EventsAfterFor returns the events with ID > afterID whose audience
	// includes party or "*", in id order, at most limit.
	EventsAfterFor(party string, afterID int64, limit int) ([]Event, error)
}

// EventsAfterFor returns up to limit events after afterID that concern party
// (their audience holds party or "*"), using the backend's audience index
// when tx has one. The fallback reads EventsAfter in pages and filters, so it
// may read far more than it returns.
func EventsAfterFor(tx Events, party string, afterID int64, limit int) ([]Event, error) {
	if r, ok := tx.(PartyEventReader); ok {
		return r.EventsAfterFor(party, afterID, limit)
	}
	var out []Event
	for len(out) < limit {
		page, err := tx.EventsAfter(afterID, 1000)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if Concerns(e, party) && len(out) < limit {
				out = append(out, e)
			}
		}
		afterID = page[len(page)-1].ID
	}
	return out, nil
}

// PartyLastEventReader is implemented by the Tx of a backend that indexes
// event audiences (both sqlite and postgres do), for the same reason as
// PartyEventReader; call LastEventIDFor, which falls back to reading
// EventsAfterFor.
type PartyLastEventReader interface {
	// LastEventIDFor returns the id of the last event with ID <=
	// atOrBefore whose audience includes party or "*"; 0 when there is
	// none.
	LastEventIDFor(party string, atOrBefore int64) (int64, error)
}

// LastEventIDFor returns the id of the last event at or before atOrBefore
// that concerns party (0 when none does), using the backend's audience
// index when tx has one. The fallback reads the party's events from the
// first.
func LastEventIDFor(tx Events, party string, atOrBefore int64) (int64, error) {
	if r, ok := tx.(PartyLastEventReader); ok {
		return r.LastEventIDFor(party, atOrBefore)
	}
	var last int64
	for {
		page, err := EventsAfterFor(tx, party, last, 1000)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			if e.ID > atOrBefore {
				return last, nil
			}
			last = e.ID
		}
		if len(page) < 1000 {
			return last, nil
		}
	}
}

// PartyEventCounter is implemented by the Tx of a backend that indexes
// event audiences (both sqlite and postgres do), for the same reason as
// PartyEventReader; call CountEventsAfterFor, which falls back to reading
// EventsAfterFor.
type PartyEventCounter interface {
	// CountEventsAfterFor counts the events with ID > afterID whose
	// audience includes party or "*", up to limit (limit when there are
	// more), from the audience index alone: no event is read.
	CountEventsAfterFor(party string, afterID int64, limit int) (int, error)
}

// CountEventsAfterFor counts the events after afterID that concern party,
// up to limit (limit when there are more): how long a party's backlog is,
// judged without reading it. With the backend's audience index its cost is
// that of limit index entries, not of limit events; the fallback reads the
// events.
func CountEventsAfterFor(tx Events, party string, afterID int64, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	if c, ok := tx.(PartyEventCounter); ok {
		return c.CountEventsAfterFor(party, afterID, limit)
	}
	evs, err := EventsAfterFor(tx, party, afterID, limit)
	return len(evs), err
}

// PartySeqReader is implemented by the Tx of a backend that numbers each
// party's events (both sqlite and postgres do), for the same reason as
// PartyEventReader; call PartySeqAt, PartyEventAt and PartySeqBase, which
// fall back to reading EventsAfterFor.
//
// A party's sequence numbers its events (those whose audience holds the
// party or "*") 1, 2, 3... in id order, without gaps whatever the other
// parties get: what a party sees of the event stream tells it nothing of
// how busy the others are.
type PartySeqReader interface {
	// PartySeqAt returns how many events with ID <= id concern party:
	// the number, in the party's sequence, of its last event at or
	// before id (0 when there is none).
	PartySeqAt(party string, id int64) (int64, error)
	// PartyEventAt returns the ID of the event numbered seq (>= 1) in
	// party's sequence; ErrNotFound when the party has fewer events.
	PartyEventAt(party string, seq int64) (int64, error)
	// PartySeqBase returns the base of the ids a party is shown of its
	// events: UpgradedSeqBase for a store that had events when it began
	// numbering each party's events (the migration that brought the
	// numbers in), 0 for one that had none.
	PartySeqBase() (int64, error)
	// LegacyCursorMax returns the last global id of the store when it
	// began numbering each party's events (0 for a store that had
	// none): the largest cursor from before that a party can hold.
	LegacyCursorMax() (int64, error)
}

// UpgradedSeqBase is the base of the ids a party is shown of its events
// (its event numbered n shown as base + n) on a store that showed global
// ids before: 2^40, above every global id that a store can reach, so that
// a cursor a client holds from before the upgrade (a global id, at most
// LegacyCursorMax) is told from the new ids by its size alone. A constant, not the store's last id at the
// upgrade, which would tell every party how many events the store held.
const UpgradedSeqBase int64 = 1 << 40

// PartySeqAt returns the number, in party's own sequence, of its last
// event at or before id (0 when none), using the backend's numbers when tx
// has them; the fallback counts the party's events from the first.
func PartySeqAt(tx Events, party string, id int64) (int64, error) {
	if r, ok := tx.(PartySeqReader); ok {
		return r.PartySeqAt(party, id)
	}
	var n int64
	err := countPartyEvents(tx, party, func(seq int64, e Event) bool {
		if e.ID > id {
			return false
		}
		n = seq
		return true
	})
	return n, err
}

// PartyEventAt returns the ID of the event numbered seq in party's own
// sequence (ErrNotFound when the party has fewer events), using the
// backend's numbers when tx has them; the fallback reads the party's
// events from the first.
func PartyEventAt(tx Events, party string, seq int64) (int64, error) {
	if seq < 1 {
		return 0, ErrNotFound
	}
	if r, ok := tx.(PartySeqReader); ok {
		return r.PartyEventAt(party, seq)
	}
	var id int64
	err := countPartyEvents(tx, party, func(n int64, e Event) bool {
		if n == seq {
			id = e.ID
			return false
		}
		return true
	})
	if err == nil && id == 0 {
		err = ErrNotFound
	}
	return id, err
}

// countPartyEvents passes the party's events in id order, each with its
// number in the party's sequence, to fn until fn returns false: the
// fallback of a Tx that does not number them (PartySeqReader).
func countPartyEvents(tx Events, party string, fn func(seq int64, e Event) bool) error {
	var n, after int64
	for {
		page, err := EventsAfterFor(tx, party, after, 1000)
		if err != nil {
			return err
		}
		for _, e := range page {
			if n++; !fn(n, e) {
				return nil
			}
		}
		if len(page) < 1000 {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// PartySeqBase returns the base of the ids a party is shown of its events
// (PartySeqReader.PartySeqBase); 0 when tx does not number them.
func PartySeqBase(tx Events) (int64, error) {
	if r, ok := tx.(PartySeqReader); ok {
		return r.PartySeqBase()
	}
	return 0, nil
}

// LegacyCursorMax returns the last global id of the store when it began
// numbering each party's events (PartySeqReader.LegacyCursorMax); 0 when
// tx does not number them.
func LegacyCursorMax(tx Events) (int64, error) {
	if r, ok := tx.(PartySeqReader); ok {
		return r.LegacyCursorMax()
	}
	return 0, nil
}

// Concerns reports whether e's audience includes party or "*".
func Concerns(e Event, party string) bool {
	for _, a := range e.Audience {
		if a == party || a == "*" {
			return true
		}
	}
	return false
}

// Party is one participant in the airspace, or the operator of the service.
type Party struct {
	Name     string
	Operator bool
	Created  time.Time
	Disabled bool
}

// Credential is one bearer token of a party, stored as its SHA-256 hash.
type Credential struct {
	TokenHash []byte
	Party     string
	Created   time.Time
	Revoked   bool
	RevokedAt time.Time
}

// RulesRecord is one version of the agreed rules; Body is the JSON of
// rules.Rules.
type RulesRecord struct {
	Version int64
	Created time.Time
	Actor   string
	Body    []byte
}

// RulesProposal is one proposed version of the rules. State is indexed
// ("proposed", "active", "rejected", "superseded"); Body is JSON owned by
// package rules (the proposal with its answers).
type RulesProposal struct {
	Version int64
	Created time.Time
	Actor   string
	State   string
	Body    []byte
}

// Volume is the stored form of a 4D volume. The bounding box and time
// columns let a backend pre-filter; Body (JSON, owned by package volume)
// carries the footprint, details and everything else.
type Volume struct {
	ID        string
	Party     string
	Version   string
	State     string
	Priority  int
	MinLatDeg float64
	MinLonDeg float64
	MaxLatDeg float64
	MaxLonDeg float64
	AltLowerM float64
	AltUpperM float64
	Start     time.Time
	End       time.Time
	ChangeSeq int64
	Body      []byte
}

// Event is one entry of the event stream. Audience lists the parties it
// concerns; a single "*" means every party.
type Event struct {
	ID       int64
	Time     time.Time
	Kind     string
	Audience []string
	Body     []byte
}

// AuditRecord is one link of the hash chain. Content is canonical JSON
// produced by package audit; PrevHash and Hash are SHA-256.
type AuditRecord struct {
	Seq      int64
	Time     time.Time
	Actor    string
	Kind     string
	Content  []byte
	PrevHash []byte
	Hash     []byte
}

// Checkpoint is a signature over the chain up to and including Seq.
type Checkpoint struct {
	Seq       int64
	Hash      []byte
	Signature []byte
	Time      time.Time
}

// Message is one hotline item. State is "open", "acknowledged" or
// "escalated"; Deadline is the deadline currently running (the
// acknowledgment deadline, then the escalation deadline). Body is the JSON
// owned by package hotline.
type Message struct {
	ID       string
	From     string
	To       []string
	Thread   string
	Kind     string
	State    string
	Created  time.Time
	Deadline time.Time
	Body     []byte
}

// Ack is one recipient's acknowledgment of a message.
type Ack struct {
	MessageID string
	Party     string
	Time      time.Time
	Body      []byte
}
