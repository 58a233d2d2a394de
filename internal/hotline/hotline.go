// Package hotline owns the acknowledged messages between parties: the
// messages themselves, their acknowledgments, their deadlines and their
// escalation. Alerts raised by detection and conflicts found by the
// strategic check are hotline items too, sent by System.
//
// Every function that changes something runs inside the caller's store
// transaction and, in that same transaction, appends the change's audit
// record (through package audit) and its events (through tx.AppendEvent).
// The events are returned with their ids set; the caller publishes them
// after the commit and must not append them again. Delivery to each
// recipient, in order and exactly once, is the event stream's: events have
// global gap-free ids, and a recipient resumes after the last id it saw.
//
// Lifecycle of an item:
//
//	open --(every recipient acknowledged)--> acknowledged
//	open --(ack deadline passed)--> escalated --(every recipient acknowledged)--> acknowledged
//	escalated --(escalation deadline passed)--> escalated again, with a new escalation deadline
//	open, escalated --(the proposal of the rules it asks about closed: rejected, superseded, in force)--> acknowledged (settled)
//
// A proposal's item is settled when the proposal closes (SettleProposal):
// there is nothing left to answer, so it escalates no more, and it says
// why (Message.Settled, an audit record message_settled naming the
// recipients that never answered it); an acknowledgment of it after is
// refused (*SettledError), so that no plain acknowledgment reads as an
// answer to a proposal that no longer exists. Every other item waits for
// a revoked recipient too, escalating: it may be given access again, and
// must find what it did not acknowledge.
//
// The acknowledgment deadline comes from the rules (rules.AckDeadline of
// the item's alert level; plain messages use the default). Each escalation
// emits an `escalated` event to every party of the item and starts a new
// escalation deadline (rules.EscalationDeadline) counted from the deadline
// that passed: an item nobody acknowledges keeps escalating, once per
// escalation deadline, because a safety message nobody answers must keep
// being brought to attention. Escalations counts them.
//
// Threads: "volume:<id>" for items about a volume, "alert:<id>" for items
// about an alert, otherwise the name the sender gives (or a fresh
// "t-<random>" one when empty). A party posts only into a thread it is a
// member of (it sent or received a message there), or starts a new one;
// the alert threads are started by the service alone, a volume's thread by
// the service or the volume's owner. What a message refers to must exist
// and concern the sender (its own volume, or a volume or alert the service
// told it about). A party reads exactly the messages it sent or received,
// in any thread, and nothing else.
package hotline

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// Kinds of items. Parties send notices, requests and replies; System sends
// alerts and volume conflicts.
const (
	KindNotice         = "notice"
	KindRequest        = "request"
	KindReply          = "reply"
	KindAlert          = "alert"
	KindVolumeConflict = "volume_conflict"
	// KindRulesProposal asks a party to answer a proposed change of the
	// rules (its acknowledgment comes with the answer).
	KindRulesProposal = "rules_proposal"
)

// States of an item.
const (
	StateOpen         = "open"
	StateAcknowledged = "acknowledged"
	StateEscalated    = "escalated"
)

// Event kinds appended to the store's event stream (data: the Message).
const (
	EventMessage   = "message"
	EventAck       = "ack"
	EventEscalated = "escalated"
)

// System is the sender of the items the service raises itself.
const System = "deconflict"

// Limits on what a party sends.
const (
	MaxTextBytes   = 4096
	MaxRecipients  = 32
	MaxThreadBytes = 128
	// DefaultListLimit and MaxListLimit bound one List.
	DefaultListLimit = 500
	MaxListLimit     = 5000
	// MaxOpenPerRecipient bounds the messages of one party that another
	// has still to acknowledge (open or escalated): each escalates every
	// escalation deadline until it is acknowledged, in the job that
	// escalates the alerts too, and waits in the recipient's list of
	// what needs its action, so that without a bound a party could bury
	// another's alerts under its messages.
	MaxOpenPerRecipient = 500
)

// Errors for the API to map onto statuses.
var (
	// ErrNotFound: no such message, or one the party may not read (the two
	// are not distinguished, so that ids do not leak).
	ErrNotFound = errors.New("hotline: message not found")
	// ErrNotRecipient: the party may read the message but is not one of
	// its recipients, so it has nothing to acknowledge (e.g. its sender).
	ErrNotRecipient = errors.New("hotline: only a recipient acknowledges a message")
	// ErrNotMember: the thread has begun without the party; it may post
	// only into threads it sent or received a message in.
	ErrNotMember = errors.New("hotline: the thread is not one of this party's")
)

// TooManyOpenError refuses a message to a recipient that has
// MaxOpenPerRecipient of the sender's messages still to acknowledge.
type TooManyOpenError struct {
	Field     string // to[i]
	Recipient string
	Limit     int
}

func (e *TooManyOpenError) Error() string {
	return fmt.Sprintf("%s: %s has %d of this party's messages still to acknowledge, the most a party may have open with another; wait for its acknowledgments", e.Field, e.Recipient, e.Limit)
}

// Ref ties an item to a volume (at a version) and/or an alert.
type Ref struct {
	VolumeID      string `json:"volume_id,omitempty"`
	VolumeVersion string `json:"volume_version,omitempty"`
	AlertID       string `json:"alert_id,omitempty"`
	// RulesVersion names a proposed version of the rules.
	RulesVersion int64 `json:"rules_version,omitempty"`
}

// Subject names what a system item is about in the words of the people
// who read it: the callsigns of an alert's aircraft, or the parties,
// altitude bands and windows of the volumes in a strategic conflict. It
// holds nothing its recipients are not already shown (the alert, or the
// volume_conflict event with both reduced volumes), so that a console can
// name a thread for people after the alert or the volume is gone.
type Subject struct {
	Aircraft []SubjectAircraft `json:"aircraft,omitempty"`
	// Volumes: the volume the thread is about first, then the one it
	// conflicts with.
	Volumes []SubjectVolume `json:"volumes,omitempty"`
}

// SubjectAircraft is one aircraft of an alert, as its party reports it.
type SubjectAircraft struct {
	Party    string `json:"party"`
	Aircraft string `json:"aircraft"`
	Callsign string `json:"callsign,omitempty"`
}

// SubjectVolume is one volume of a strategic conflict: whose, at which
// version, its altitude band and its window.
type SubjectVolume struct {
	ID        string    `json:"id"`
	Party     string    `json:"party"`
	Version   string    `json:"version"`
	AltLowerM float64   `json:"alt_lower_m"`
	AltUpperM float64   `json:"alt_upper_m"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// NewMessage is what a party sends (body of POST /v1/hotline/messages).
type NewMessage struct {
	To     []string `json:"to"`
	Kind   string   `json:"kind"`
	Thread string   `json:"thread,omitempty"`
	Text   string   `json:"text"`
	Ref    *Ref     `json:"ref,omitempty"`
}

// Acknowledgment is one recipient's acknowledgment of an item.
type Acknowledgment struct {
	Party string    `json:"party"`
	Time  time.Time `json:"time"`
	Reply string    `json:"reply,omitempty"`
}

// Message is a hotline item as shown on the wire (docs/WIRE.md "Hotline").
// Deadline is the acknowledgment deadline; EscalationDeadline is the
// deadline of the next escalation once Deadline has passed.
type Message struct {
	ID                 string           `json:"id"`
	From               string           `json:"from"`
	To                 []string         `json:"to"`
	Thread             string           `json:"thread"`
	Kind               string           `json:"kind"`
	Text               string           `json:"text"`
	Ref                *Ref             `json:"ref,omitempty"`
	Subject            *Subject         `json:"subject,omitempty"`
	Level              string           `json:"level,omitempty"`
	Created            time.Time        `json:"created"`
	Deadline           time.Time        `json:"deadline"`
	EscalationDeadline time.Time        `json:"escalation_deadline"`
	State              string           `json:"state"`
	Escalations        int              `json:"escalations"`
	Acks               []Acknowledgment `json:"acks"`
	// Settled says why an item is acknowledged without every recipient's
	// acknowledgment (nil for any other item).
	Settled *Settlement `json:"settled,omitempty"`
}

// Settlement is why an item became acknowledged without the
// acknowledgments of some recipients: the proposal of the rules it asked
// them to answer closed (rejected, superseded, in force), and nothing is
// left to answer.
type Settlement struct {
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
	// Unanswered are the recipients that had not acknowledged it, and
	// Revoked those of them revoked by then.
	Unanswered []string `json:"unanswered"`
	Revoked    []string `json:"revoked,omitempty"`
}

// SettledError refuses the acknowledgment of an item that was settled
// (Settlement) without the party's: there is nothing left to acknowledge,
// and an acknowledgment recorded after would read as the party's answer
// to a proposal that no longer exists.
type SettledError struct {
	ID      string
	State   string
	Settled *Settlement // nil for an item settled before the reason was kept
}

func (e *SettledError) Error() string {
	if e.Settled == nil {
		return fmt.Sprintf("message %s is %s: it was settled without this party's acknowledgment, and there is nothing left to acknowledge", e.ID, e.State)
	}
	return fmt.Sprintf("message %s is %s: it was settled at %s without the acknowledgment of %s, because %s; there is nothing left to acknowledge",
		e.ID, e.State, e.Settled.Time.Format(time.RFC3339), strings.Join(e.Settled.Unanswered, ", "), e.Settled.Reason)
}

// Parties returns the sender (unless System) and the recipients.
func (m Message) Parties() []string {
	var out []string
	if m.From != System {
		out = append(out, m.From)
	}
	for _, p := range m.To {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// involves reports whether party sent or received m.
func (m Message) involves(party string) bool {
	return party == m.From || slices.Contains(m.To, party)
}

// AckedBy reports whether party has acknowledged m.
func (m Message) AckedBy(party string) bool {
	return slices.ContainsFunc(m.Acks, func(a Acknowledgment) bool { return a.Party == party })
}

// body is the stored JSON of a message beside the store's columns.
type body struct {
	Text               string      `json:"text"`
	Ref                *Ref        `json:"ref,omitempty"`
	Subject            *Subject    `json:"subject,omitempty"`
	Level              string      `json:"level,omitempty"`
	AckDeadline        time.Time   `json:"ack_deadline"`
	EscalationDeadline time.Time   `json:"escalation_deadline"`
	Escalations        int         `json:"escalations"`
	Settled            *Settlement `json:"settled,omitempty"`
}

type ackBody struct {
	Reply string `json:"reply,omitempty"`
}

func (m *Message) record() (store.Message, error) {
	b, err := json.Marshal(body{Text: m.Text, Ref: m.Ref, Subject: m.Subject, Level: m.Level, AckDeadline: m.Deadline,
		EscalationDeadline: m.EscalationDeadline, Escalations: m.Escalations, Settled: m.Settled})
	if err != nil {
		return store.Message{}, err
	}
	current := m.Deadline
	if m.State == StateEscalated {
		current = m.EscalationDeadline
	}
	return store.Message{ID: m.ID, From: m.From, To: m.To, Thread: m.Thread, Kind: m.Kind, State: m.State,
		Created: m.Created, Deadline: current, Body: b}, nil
}

// Tx is what a hotline write needs of a store transaction: the messages
// themselves, the events and audit records a change writes, and the parties
// and volumes a new message is checked against. Reads need only
// store.Messages.
type Tx interface {
	store.Messages
	store.Events
	store.Audit
	store.Parties
	store.Volumes
	store.Rules
}

// UnreadableError is a stored message whose body or acknowledgments do not
// decode (a fault of the store, or a row written by another version). A
// read of one message by id fails with it; the lists and the escalation
// pass over it (PassOver) rather than fail, so that one bad row hides no
// other item: a list that failed on it would fail every time, and every
// snapshot of its parties' event streams with it.
type UnreadableError struct {
	ID  string
	Err error
}

func (e *UnreadableError) Error() string {
	return fmt.Sprintf("hotline: stored message %s cannot be read: %v", e.ID, e.Err)
}

func (e *UnreadableError) Unwrap() error { return e.Err }

// PassOver is told of each stored message a list or the escalation passes
// over because it cannot be read; nil tells no one. The caller logs it and
// counts it: the item is neither listed nor escalated while it stays so.
type PassOver func(*UnreadableError)

// readable loads rec, telling passOver and returning ok false when it
// cannot be read; an error is the store's.
func readable(tx store.Messages, rec store.Message, passOver PassOver) (m Message, ok bool, err error) {
	m, err = load(tx, rec)
	var ue *UnreadableError
	if errors.As(err, &ue) {
		if passOver != nil {
			passOver(ue)
		}
		return Message{}, false, nil
	}
	return m, err == nil, err
}

// load reads a stored message and its acknowledgments: an
// *UnreadableError when they do not decode.
func load(tx store.Messages, rec store.Message) (Message, error) {
	var b body
	if err := json.Unmarshal(rec.Body, &b); err != nil {
		return Message{}, &UnreadableError{ID: rec.ID, Err: err}
	}
	m := Message{ID: rec.ID, From: rec.From, To: rec.To, Thread: rec.Thread, Kind: rec.Kind, Text: b.Text, Ref: b.Ref,
		Subject: b.Subject, Level: b.Level, Created: rec.Created, Deadline: b.AckDeadline, EscalationDeadline: b.EscalationDeadline,
		State: rec.State, Escalations: b.Escalations, Acks: []Acknowledgment{}, Settled: b.Settled}
	acks, err := tx.AcksFor(rec.ID)
	if err != nil {
		return Message{}, err
	}
	for _, a := range acks {
		var ab ackBody
		if len(a.Body) > 0 {
			if err := json.Unmarshal(a.Body, &ab); err != nil {
				return Message{}, &UnreadableError{ID: rec.ID, Err: fmt.Errorf("acknowledgment by %s: %w", a.Party, err)}
			}
		}
		m.Acks = append(m.Acks, Acknowledgment{Party: a.Party, Time: a.Time.UTC(), Reply: ab.Reply})
	}
	return m, nil
}

func newID(prefix string) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// Post sends a party's message in tx: validated, stored with its deadline,
// audited, and announced by a `message` event to the sender and the
// recipients. Bad input returns a *fielderr.Error and writes nothing.
func Post(tx Tx, log *audit.Log, r rules.Rules, from string, in NewMessage, now time.Time) (Message, []store.Event, error) {
	if from == "" || from == System {
		return Message{}, nil, fielderr.New("from", "a party sends messages")
	}
	switch in.Kind {
	case KindNotice, KindRequest, KindReply:
	case KindAlert, KindVolumeConflict:
		return Message{}, nil, fielderr.Errorf("kind", "%q items are raised by the service, not sent", in.Kind)
	default:
		return Message{}, nil, fielderr.Errorf("kind", "%q is not one of notice, request, reply", in.Kind)
	}
	if err := checkText("text", in.Text, true); err != nil {
		return Message{}, nil, err
	}
	to, err := checkRecipients(tx, from, in.To)
	if err != nil {
		return Message{}, nil, err
	}
	ref, err := checkRef(tx, from, in.Ref)
	if err != nil {
		return Message{}, nil, err
	}
	thread, err := threadFor(in.Thread, ref)
	if err != nil {
		return Message{}, nil, err
	}
	if err := checkThreadAccess(tx, from, thread, in.Thread != ""); err != nil {
		return Message{}, nil, err
	}
	for i, p := range to {
		n, err := tx.OpenMessagesFromTo(from, p)
		if err != nil {
			return Message{}, nil, err
		}
		if n >= MaxOpenPerRecipient {
			return Message{}, nil, &TooManyOpenError{Field: fmt.Sprintf("to[%d]", i), Recipient: p, Limit: MaxOpenPerRecipient}
		}
	}
	m := Message{From: from, To: to, Thread: thread, Kind: in.Kind, Text: in.Text, Ref: ref}
	return post(tx, log, r, m, now)
}

// SystemItem is an item the service raises itself: an alert or a
// strategic volume conflict, to be acknowledged by every party concerned.
type SystemItem struct {
	Kind  string   // KindAlert or KindVolumeConflict
	To    []string // the parties concerned
	Text  string
	Ref   Ref
	Level string // the alert level; it sets the deadline ("" = default)
	// Subject names the item for people; only what every recipient is
	// shown already (see Subject).
	Subject *Subject
}

// PostVolumeConflict raises the item of a strategic conflict found when
// written (the volume just written) was checked against other: to both
// owners, on thread "volume:<written.ID>", with the default deadline. Its
// subject is both volumes, which the volume_conflict event shows both
// owners anyway.
func PostVolumeConflict(tx Tx, log *audit.Log, r rules.Rules, written, other SubjectVolume, now time.Time) (Message, []store.Event, error) {
	return PostSystem(tx, log, r, SystemItem{Kind: KindVolumeConflict, To: []string{written.Party, other.Party}, Text: conflictsText(written, []SubjectVolume{other}, ""),
		Ref: Ref{VolumeID: written.ID, VolumeVersion: written.Version}, Subject: &Subject{Volumes: []SubjectVolume{written, other}}}, now)
}

// MaxVolumeConflictsPerWrite bounds the other parties' volumes one volume
// write may be accepted in conflict with: each is told to its owner on
// the hotline (PostVolumeConflicts), and the items that tell them are
// written in the write's transaction, under the writers' lock.
const MaxVolumeConflictsPerWrite = 2000

// TooManyConflictsError refuses a volume write that would be accepted in
// conflict with more than MaxVolumeConflictsPerWrite volumes of other
// parties; nothing is written.
type TooManyConflictsError struct {
	Conflicts int
	Limit     int
}

func (e *TooManyConflictsError) Error() string {
	return fmt.Sprintf("the write conflicts with %d volumes of other parties, more than the %d a volume write may conflict with (each is told to its owner on the hotline, to acknowledge); declare the volume in smaller parts", e.Conflicts, e.Limit)
}

// openConflictItemsCompared is how many of the open volume-conflict items
// of a volume's thread with a party PostVolumeConflicts compares a write
// with, newest first.
const openConflictItemsCompared = 16

// PostVolumeConflicts raises the items of the strategic conflicts found
// when written (the volume just written) was checked against conflicts
// (the other parties' volumes): one item per other party, to the writer
// and that party, on thread "volume:<written.ID>", naming the count of
// its volumes in conflict and each of them (the text as many as fit, the
// subject every one: written first, then them), rather than one item per
// pair, which a write in conflict with thousands of one party's volumes
// posted by the thousand, each for its staff to acknowledge. No item is
// posted to a party that has an item of this thread still open (open or
// escalated) telling it of the same conflicts: the same volumes at the
// same versions, of a volume of the same band and window (a volume sent
// again unchanged, or changed elsewhere than where it conflicts); what
// changed is told by the write's volume_conflict events and audit record
// all the same. More than MaxVolumeConflictsPerWrite conflicts is a
// *TooManyConflictsError, and nothing is posted.
func PostVolumeConflicts(tx Tx, log *audit.Log, r rules.Rules, written SubjectVolume, conflicts []SubjectVolume, now time.Time) ([]Message, []store.Event, error) {
	if len(conflicts) > MaxVolumeConflictsPerWrite {
		return nil, nil, &TooManyConflictsError{Conflicts: len(conflicts), Limit: MaxVolumeConflictsPerWrite}
	}
	return postVolumeConflicts(tx, log, r, written, conflicts, "", now)
}

// MaxVolumeConflictsPerItem bounds the volumes one volume-conflict item
// names besides its thread's: the most a write may conflict with, so that
// a write's conflicts with one party are always one item.
const MaxVolumeConflictsPerItem = MaxVolumeConflictsPerWrite

// GroupVolumeConflicts groups one volume's conflicts (other parties'
// volumes) as PostVolumeConflicts and PostVolumeConflictsUnderRules tell
// them, one item per group: by party, in the order each party first
// appears, each party's volumes in their order, a party with more than
// MaxVolumeConflictsPerItem in as many groups of at most that many.
func GroupVolumeConflicts(conflicts []SubjectVolume) [][]SubjectVolume {
	var parties []string
	byParty := map[string][]SubjectVolume{}
	for _, c := range conflicts {
		if _, ok := byParty[c.Party]; !ok {
			parties = append(parties, c.Party)
		}
		byParty[c.Party] = append(byParty[c.Party], c)
	}
	var groups [][]SubjectVolume
	for _, p := range parties {
		for vs := byParty[p]; len(vs) > 0; {
			n := min(len(vs), MaxVolumeConflictsPerItem)
			groups = append(groups, vs[:n:n])
			vs = vs[n:]
		}
	}
	return groups
}

// PostVolumeConflictsUnderRules raises the items of the strategic
// conflicts that the rules r, just come into force, make between the
// stored volume first and others (a separation or time buffer raised), as
// PostVolumeConflicts does for those found at a write: one item per group
// of GroupVolumeConflicts (per other party, of at most
// MaxVolumeConflictsPerItem of its volumes), on thread "volume:<first.ID>",
// its text saying under which rules, and none to a party still to
// acknowledge an item of the same conflicts. An activation that makes a
// volume conflict with thousands is told in a few items, not thousands;
// there is no bound on the conflicts, which the rules made, not a write.
func PostVolumeConflictsUnderRules(tx Tx, log *audit.Log, r rules.Rules, first SubjectVolume, conflicts []SubjectVolume, now time.Time) ([]Message, []store.Event, error) {
	return postVolumeConflicts(tx, log, r, first, conflicts, fmt.Sprintf(" under the rules of version %d", r.Version), now)
}

// postVolumeConflicts posts the items of written's conflicts, one per
// group of GroupVolumeConflicts not told already; cause, when not empty,
// says in the text why they conflict (" under the rules of version 4").
func postVolumeConflicts(tx Tx, log *audit.Log, r rules.Rules, written SubjectVolume, conflicts []SubjectVolume, cause string, now time.Time) ([]Message, []store.Event, error) {
	var msgs []Message
	var evs []store.Event
	for _, others := range GroupVolumeConflicts(conflicts) {
		told, err := toldAlready(tx, written, others)
		if err != nil {
			return nil, nil, err
		}
		if told {
			continue
		}
		m, e, err := PostSystem(tx, log, r, SystemItem{Kind: KindVolumeConflict, To: []string{written.Party, others[0].Party}, Text: conflictsText(written, others, cause),
			Ref: Ref{VolumeID: written.ID, VolumeVersion: written.Version}, Subject: &Subject{Volumes: append([]SubjectVolume{written}, others...)}}, now)
		if err != nil {
			return nil, nil, err
		}
		msgs, evs = append(msgs, m), append(evs, e...)
	}
	return msgs, evs, nil
}

// toldAlready reports whether an item of written's thread still open
// tells the owner of others (all one party's) of exactly these conflicts
// of a volume of written's id, band and window (PostVolumeConflicts).
func toldAlready(tx Tx, written SubjectVolume, others []SubjectVolume) (bool, error) {
	open, err := tx.OpenMessagesInThreadFor(others[0].Party, volumeThreadPrefix+written.ID, KindVolumeConflict, openConflictItemsCompared)
	if err != nil {
		return false, err
	}
	want := make(map[[2]string]bool, len(others))
	for _, o := range others {
		want[[2]string{o.ID, o.Version}] = true
	}
	for _, rec := range open {
		var b body
		if rec.From != System || !slices.Contains(rec.To, written.Party) || json.Unmarshal(rec.Body, &b) != nil || b.Subject == nil {
			continue
		}
		vs := b.Subject.Volumes
		if len(vs) != len(others)+1 || !sameConflictSide(vs[0], written) {
			continue
		}
		same := true
		for _, v := range vs[1:] {
			if v.Party != others[0].Party || !want[[2]string{v.ID, v.Version}] {
				same = false
				break
			}
		}
		if same {
			return true, nil
		}
	}
	return false, nil
}

// sameConflictSide reports whether a and b are the same volume (of
// whatever version) with the same band and window.
func sameConflictSide(a, b SubjectVolume) bool {
	return a.ID == b.ID && a.Party == b.Party && a.AltLowerM == b.AltLowerM && a.AltUpperM == b.AltUpperM &&
		a.Start.Equal(b.Start) && a.End.Equal(b.End)
}

// conflictsText is the text of the item telling the owner of others (all
// one party's) of their conflicts with written: as many of them as fit a
// hotline text, and how many more the subject names; cause (may be
// empty) says why they conflict.
func conflictsText(written SubjectVolume, others []SubjectVolume, cause string) string {
	if len(others) == 1 {
		o := others[0]
		return fmt.Sprintf("volume %s of %s (version %s) conflicts with volume %s of %s (version %s)%s",
			written.ID, written.Party, written.Version, o.ID, o.Party, o.Version, cause)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "volume %s of %s (version %s) conflicts with %d volumes of %s%s:", written.ID, written.Party, written.Version, len(others), others[0].Party, cause)
	for i, o := range others {
		entry := fmt.Sprintf(" %s (version %s)", o.ID, o.Version)
		if i < len(others)-1 {
			entry += ","
		}
		// Room left for the tail naming the ones not listed.
		if b.Len()+len(entry)+80 > MaxTextBytes {
			fmt.Fprintf(&b, " and %d more, every one named in the item's subject", len(others)-i)
			break
		}
		b.WriteString(entry)
	}
	return b.String()
}

// PostRulesProposal asks parties to answer the proposal of the rules'
// version: on thread "rules:<version>", with the default deadline.
func PostRulesProposal(tx Tx, log *audit.Log, r rules.Rules, version int64, to []string, text string, now time.Time) (Message, []store.Event, error) {
	return PostSystem(tx, log, r, SystemItem{Kind: KindRulesProposal, To: to, Text: text, Ref: Ref{RulesVersion: version}}, now)
}

// RulesThread is the thread of the items about the proposal of a version
// of the rules.
func RulesThread(version int64) string { return rulesThreadPrefix + strconv.FormatInt(version, 10) }

// PostSystem raises a system item, from System to the parties concerned.
// An alert's item (Ref.AlertID required) goes on thread "alert:<id>" with
// the deadline of its level (30 s at the highest level by default): post
// one per alert raised, and one when an open alert goes up a level, so that
// the new level is acknowledged too. A volume conflict's item is posted by
// PostVolumeConflict.
func PostSystem(tx Tx, log *audit.Log, r rules.Rules, it SystemItem, now time.Time) (Message, []store.Event, error) {
	switch {
	case it.Kind != KindAlert && it.Kind != KindVolumeConflict && it.Kind != KindRulesProposal:
		return Message{}, nil, fielderr.Errorf("kind", "%q is not a system item kind", it.Kind)
	case it.Kind == KindRulesProposal && it.Ref.RulesVersion < 1:
		return Message{}, nil, fielderr.New("ref.rules_version", "required")
	case it.Kind == KindAlert && it.Ref.AlertID == "":
		return Message{}, nil, fielderr.New("ref.alert_id", "required")
	}
	var to []string
	for _, p := range it.To {
		if p != "" && p != System && !slices.Contains(to, p) {
			to = append(to, p)
		}
	}
	if len(to) == 0 {
		return Message{}, nil, fielderr.New("to", "no party to notify")
	}
	if it.Text == "" {
		it.Text = fmt.Sprintf("%s %s %s", it.Level, it.Kind, it.Ref.AlertID+it.Ref.VolumeID)
	}
	if err := checkText("text", it.Text, true); err != nil {
		return Message{}, nil, err
	}
	ref := it.Ref
	thread, err := threadFor("", &ref)
	if err != nil {
		return Message{}, nil, err
	}
	m := Message{From: System, To: to, Thread: thread, Kind: it.Kind, Text: it.Text, Ref: &ref, Subject: it.Subject, Level: it.Level}
	return post(tx, log, r, m, now)
}

func post(tx Tx, log *audit.Log, r rules.Rules, m Message, now time.Time) (Message, []store.Event, error) {
	var err error
	if m.ID, err = newID("m-"); err != nil {
		return Message{}, nil, err
	}
	m.Created = now.UTC()
	m.Deadline = m.Created.Add(r.AckDeadline(m.Level))
	m.EscalationDeadline = m.Deadline.Add(r.EscalationDeadline())
	m.State = StateOpen
	m.Acks = []Acknowledgment{}
	rec, err := m.record()
	if err != nil {
		return Message{}, nil, err
	}
	if err := tx.PutMessage(rec); err != nil {
		return Message{}, nil, err
	}
	content := map[string]any{
		"id": m.ID, "from": m.From, "to": m.To, "thread": m.Thread, "kind": m.Kind, "ref": m.Ref, "level": m.Level,
		"created": m.Created, "deadline": m.Deadline, "escalation_deadline": m.EscalationDeadline,
		"text": audit.Seal(m.Text, m.Parties()...),
	}
	if _, err := log.Append(tx, m.From, "message_posted", audit.For(m.Parties()...), content, now); err != nil {
		return Message{}, nil, err
	}
	evs, err := appendEvents(tx, &m, EventMessage, now)
	return m, evs, err
}

// appendEvents appends one event about m for every party of m.
func appendEvents(tx store.Events, m *Message, kind string, now time.Time) ([]store.Event, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	e := store.Event{Time: now.UTC(), Kind: kind, Audience: m.Parties(), Body: data}
	if e.ID, err = tx.AppendEvent(e); err != nil {
		return nil, err
	}
	return []store.Event{e}, nil
}

// Ack records party's acknowledgment of message id, with an optional reply.
// Acknowledging twice is harmless: the second call returns the message as
// it is, records nothing and appends no event. When the last recipient
// acknowledges, the item becomes acknowledged (and stops escalating). An
// item acknowledged without party's acknowledgment was settled (the
// proposal it asked about closed): its acknowledgment is refused with a
// *SettledError and records nothing.
func Ack(tx Tx, log *audit.Log, id, party, reply string, now time.Time) (Message, []store.Event, error) {
	if err := checkText("reply", reply, false); err != nil {
		return Message{}, nil, err
	}
	m, err := Get(tx, party, id)
	if err != nil {
		return Message{}, nil, err
	}
	if !slices.Contains(m.To, party) {
		return Message{}, nil, ErrNotRecipient
	}
	if m.AckedBy(party) {
		return m, nil, nil
	}
	if m.State == StateAcknowledged {
		// Acknowledged without this party's acknowledgment: settled.
		return Message{}, nil, &SettledError{ID: m.ID, State: m.State, Settled: m.Settled}
	}
	ab, err := json.Marshal(ackBody{Reply: reply})
	if err != nil {
		return Message{}, nil, err
	}
	inserted, err := tx.PutAck(store.Ack{MessageID: id, Party: party, Time: now.UTC(), Body: ab})
	if err != nil {
		return Message{}, nil, err
	}
	if !inserted {
		return m, nil, nil
	}
	m.Acks = append(m.Acks, Acknowledgment{Party: party, Time: now.UTC(), Reply: reply})
	if allAcked(&m) {
		m.State = StateAcknowledged
	}
	rec, err := m.record()
	if err != nil {
		return Message{}, nil, err
	}
	if err := tx.PutMessage(rec); err != nil {
		return Message{}, nil, err
	}
	// Late at the deadline itself, as Escalate has it: the deadline is the
	// first instant the item escalates, not the last one it is on time.
	content := map[string]any{"id": id, "party": party, "state": m.State, "late": !now.Before(m.Deadline)}
	if reply != "" {
		content["reply"] = audit.Seal(reply, m.Parties()...)
	}
	if _, err := log.Append(tx, party, "message_acked", audit.For(m.Parties()...), content, now); err != nil {
		return Message{}, nil, err
	}
	evs, err := appendEvents(tx, &m, EventAck, now)
	return m, evs, err
}

func allAcked(m *Message) bool {
	for _, p := range m.To {
		if !m.AckedBy(p) {
			return false
		}
	}
	return true
}

// proposalClosed returns why the proposal of the rules of version is no
// longer open, in the words of the items that asked about it (rejected by
// whom, superseded by which version, in force); "" while it is open or
// when there is no such proposal.
func proposalClosed(tx Tx, version int64) (string, error) {
	rec, err := tx.GetRulesProposal(version)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if rec.State == rules.ProposalOpen {
		return "", nil
	}
	var p rules.Proposal
	if err := json.Unmarshal(rec.Body, &p); err != nil {
		// The state is the store's column: it is closed all the same.
		return fmt.Sprintf("the proposal of the rules version %d is %s: nothing is left to answer", version, rec.State), nil
	}
	switch rec.State {
	case rules.ProposalRejected:
		var by []string
		for _, a := range p.Answers {
			if !a.Accepted {
				by = append(by, a.Party)
			}
		}
		return fmt.Sprintf("the proposal of the rules version %d was rejected by %s: nothing is left to answer", version, strings.Join(by, ", ")), nil
	case rules.ProposalSuperseded:
		history, err := tx.RulesHistory()
		if err != nil {
			return "", err
		}
		// The first version in force after the one it was made against.
		for _, h := range history {
			if h.Version > p.Base {
				return fmt.Sprintf("the proposal of the rules version %d was superseded by version %d, which came into force first (it was made against version %d): nothing is left to answer",
					version, h.Version, p.Base), nil
			}
		}
		return fmt.Sprintf("the proposal of the rules version %d was superseded (version %d, which it was made against, is no longer in force): nothing is left to answer", version, p.Base), nil
	case rules.ProposalActive:
		return fmt.Sprintf("the proposal of the rules version %d came into force, accepted by %s: nothing is left to answer", version, strings.Join(p.AcceptedBy, ", ")), nil
	}
	return fmt.Sprintf("the proposal of the rules version %d is %s: nothing is left to answer", version, rec.State), nil
}

// settle makes m acknowledged in tx without the acknowledgments still
// missing, for reason (the proposal it asked about closed): stored with
// its Settlement, an audit record message_settled naming the recipients
// that had not acknowledged it (and those of them revoked) and why, and
// a message event, the item as it now stands, to its parties.
func settle(tx Tx, log *audit.Log, m *Message, reason string, now time.Time) ([]store.Event, error) {
	unanswered, revoked := []string{}, []string{}
	for _, p := range m.To {
		if m.AckedBy(p) {
			continue
		}
		unanswered = append(unanswered, p)
		pt, err := tx.PartyByName(p)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil && pt.Disabled {
			revoked = append(revoked, p)
		}
	}
	m.State = StateAcknowledged
	m.Settled = &Settlement{Time: now.UTC(), Reason: reason, Unanswered: unanswered}
	if len(revoked) > 0 {
		m.Settled.Revoked = revoked
	}
	stored, err := m.record()
	if err != nil {
		return nil, err
	}
	if err := tx.PutMessage(stored); err != nil {
		return nil, err
	}
	content := map[string]any{"id": m.ID, "state": m.State, "unanswered": unanswered, "revoked": revoked, "reason": reason}
	if _, err := log.Append(tx, System, "message_settled", audit.For(m.Parties()...), content, now); err != nil {
		return nil, err
	}
	return appendEvents(tx, m, EventMessage, now)
}

// SettleProposal settles in tx, once the proposal of the rules of version
// is closed (rejected, superseded, in force: call it in the transaction
// that closed it), every item asking about it that still waits for a
// recipient (settle), so that none escalates about a question that no
// longer exists nor takes an acknowledgment that would read as an answer
// to it. While the proposal is open it does nothing. An item that cannot
// be read is passed over (told to passOver); the escalation settles it
// at its deadline once it reads again.
func SettleProposal(tx Tx, log *audit.Log, version int64, now time.Time, passOver PassOver) ([]store.Event, error) {
	reason, err := proposalClosed(tx, version)
	if err != nil || reason == "" {
		return nil, err
	}
	parties, err := tx.ListParties()
	if err != nil {
		return nil, err
	}
	thread := RulesThread(version)
	seen := map[string]bool{}
	var evs []store.Event
	// The items of a proposal: the one to every party asked when it was
	// made, and one to each party created while it was open.
	for _, pt := range parties {
		if pt.Operator {
			continue
		}
		recs, err := tx.MessagesFor(pt.Name, thread, time.Time{}, MaxListLimit)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if seen[rec.ID] || rec.From != System || rec.Kind != KindRulesProposal || rec.State == StateAcknowledged {
				continue
			}
			seen[rec.ID] = true
			m, ok, err := readable(tx, rec, passOver)
			if err != nil {
				return nil, err
			}
			if !ok || allAcked(&m) {
				continue
			}
			e, err := settle(tx, log, &m, reason, now)
			if err != nil {
				return nil, err
			}
			evs = append(evs, e...)
		}
	}
	return evs, nil
}

// Escalate escalates every item whose running deadline is at or before now
// without every recipient's acknowledgment (at most limit of them, most
// overdue first; run it again while it returns limit items): state
// escalated, Escalations+1, a new escalation deadline, an audit record and
// an `escalated` event to every party of the item. The new deadline is the
// one that passed plus the escalation deadline of the rules, so that the
// schedule does not drift with the job's period, but at least now plus it
// (after the service was down, say).
//
// Count the escalations in a metric only after the transaction committed
// (see NewEscalationsCounter): the store may run fn more than once.
//
// An item that cannot be read is passed over (told to passOver), and the
// items due behind it are escalated all the same: it stays due, the most
// overdue, and a job that failed on it, or took it for one of its limit,
// would escalate nothing else for ever.
//
// The item of a proposal of the rules that is no longer open is settled
// instead of escalated (settle): one the transaction that closed the
// proposal did not settle (SettleProposal), stored before items were
// settled so, or whose proposal closed when its last waiting party was
// revoked under a program that did not. Any other item waits on for a
// revoked recipient, escalating.
func Escalate(tx Tx, log *audit.Log, r rules.Rules, now time.Time, limit int, passOver PassOver) ([]Message, []store.Event, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []Message
	var evs []store.Event
	read := func(n int) ([]store.Message, error) { return tx.OpenMessagesDue(now, n) }
	err := eachDue(tx, read, limit, passOver, func(rec store.Message, m Message) (bool, error) {
		if allAcked(&m) {
			// Defensive: an item whose acks are all in is acknowledged.
			return false, nil
		}
		if m.Kind == KindRulesProposal && m.Ref != nil {
			reason, err := proposalClosed(tx, m.Ref.RulesVersion)
			if err != nil {
				return false, err
			}
			if reason != "" {
				// Not escalated, and not counted: it leaves what is due.
				e, err := settle(tx, log, &m, reason, now)
				evs = append(evs, e...)
				return false, err
			}
		}
		passed := rec.Deadline
		next := passed.Add(r.EscalationDeadline())
		if !next.After(now) {
			next = now.UTC().Add(r.EscalationDeadline())
		}
		m.State = StateEscalated
		m.Escalations++
		m.EscalationDeadline = next
		stored, err := m.record()
		if err != nil {
			return false, err
		}
		if err := tx.PutMessage(stored); err != nil {
			return false, err
		}
		var missing []string
		for _, p := range m.To {
			if !m.AckedBy(p) {
				missing = append(missing, p)
			}
		}
		content := map[string]any{"id": m.ID, "escalations": m.Escalations, "deadline_passed": passed.UTC(),
			"escalation_deadline": m.EscalationDeadline, "unacknowledged": missing}
		if _, err := log.Append(tx, System, "message_escalated", audit.For(m.Parties()...), content, now); err != nil {
			return false, err
		}
		e, err := appendEvents(tx, &m, EventEscalated, now)
		if err != nil {
			return false, err
		}
		out = append(out, m)
		evs = append(evs, e...)
		return true, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, evs, nil
}

// eachDue calls take on the readable messages read lists until take has
// taken limit of them or none are left; read(n) lists at most n, in the
// order they are due, and no longer lists a message take took (it moved
// its deadline). The messages passed over (unreadable, told to passOver,
// or not taken) stay in read's answer, so it reads again with n grown past
// them: those behind them are reached in this call, not never.
func eachDue(tx store.Messages, read func(n int) ([]store.Message, error), limit int, passOver PassOver, take func(store.Message, Message) (bool, error)) error {
	seen := map[string]bool{}
	taken, passed := 0, 0
	for taken < limit {
		want := limit - taken + passed
		recs, err := read(want)
		if err != nil {
			return err
		}
		fresh := false
		for _, rec := range recs {
			if seen[rec.ID] || taken == limit {
				continue
			}
			seen[rec.ID], fresh = true, true
			m, ok, err := readable(tx, rec, passOver)
			if err != nil {
				return err
			}
			took := false
			if ok {
				if took, err = take(rec, m); err != nil {
					return err
				}
			}
			if took {
				taken++
			} else {
				passed++
			}
		}
		if !fresh || len(recs) < want {
			return nil
		}
	}
	return nil
}

// ClockStepTolerance is how far a stored deadline may lie beyond the
// longest interval of the rules before Reschedule takes it for the mark of
// a clock that went back: above the disagreement of the replicas' clocks
// (each set to the database's, replica.Clock), so that one replica does
// not move back what another, a few milliseconds ahead, has just set; and
// the most a step back of the clock delays an escalation beyond its
// interval.
const ClockStepTolerance = 5 * time.Second

// Reschedule brings back the items whose running deadline lies further
// ahead of now than the rules ever set one (rules.LongestDeadline, give or take
// ClockStepTolerance): a deadline counted from a clock that was ahead, a
// step forward since corrected (a bad NTP step). Left as it is, such an
// item would neither escalate nor be brought to anyone's attention until
// the wall clock caught up with it, a day later after a clock a day ahead.
// Each one's deadline becomes now plus its interval (the acknowledgment
// deadline of its level while open, the escalation deadline once
// escalated), stored with an audit record naming both deadlines and a
// `message` event, the item as it now stands, to its parties (their
// consoles showed the old deadline until the next event about it); at
// most limit items, run it again while it returns limit. The event is not
// `escalated`, which clients count as an escalation: nothing escalated. A deadline that only
// lies ahead because the rules have since shortened their deadlines is
// brought back alike, which is what the new rules ask.
//
// Run it in the transaction of the escalation, before Escalate: replicas
// that run it at once serialise on the audit chain as they do for
// Escalate, and the second finds the deadline already within the bound.
//
// An item that cannot be read is passed over (told to passOver), as
// Escalate does.
func Reschedule(tx Tx, log *audit.Log, r rules.Rules, now time.Time, limit int, passOver PassOver) ([]Message, []store.Event, error) {
	if limit <= 0 {
		limit = 1000
	}
	now = now.UTC()
	var out []Message
	var evs []store.Event
	read := func(n int) ([]store.Message, error) {
		return tx.OpenMessagesAfter(now.Add(r.LongestDeadline()+ClockStepTolerance), n)
	}
	err := eachDue(tx, read, limit, passOver, func(rec store.Message, m Message) (bool, error) {
		ackDeadlineWas := m.Deadline
		if m.State == StateEscalated {
			m.EscalationDeadline = now.Add(r.EscalationDeadline())
			// Its acknowledgment deadline passed (it escalated): one
			// set ahead by the same clock is brought back to now, so
			// that an acknowledgment after it is late, as it is.
			if m.Deadline.After(now) {
				m.Deadline = now
			}
		} else {
			m.Deadline = now.Add(r.AckDeadline(m.Level))
			m.EscalationDeadline = m.Deadline.Add(r.EscalationDeadline())
		}
		stored, err := m.record()
		if err != nil {
			return false, err
		}
		if err := tx.PutMessage(stored); err != nil {
			return false, err
		}
		content := map[string]any{"id": m.ID, "state": m.State, "deadline_was": rec.Deadline.UTC(), "deadline": stored.Deadline.UTC(),
			"reason": fmt.Sprintf("the deadline lay more than %s ahead of the server's clock, further than the rules set one: the clock went back, or the rules shortened their deadlines", r.LongestDeadline()+ClockStepTolerance)}
		if m.State == StateEscalated && !m.Deadline.Equal(ackDeadlineWas) {
			content["ack_deadline_was"], content["ack_deadline"] = ackDeadlineWas.UTC(), m.Deadline.UTC()
		}
		if _, err := log.Append(tx, System, "message_rescheduled", audit.For(m.Parties()...), content, now); err != nil {
			return false, err
		}
		e, err := appendEvents(tx, &m, EventMessage, now)
		if err != nil {
			return false, err
		}
		out = append(out, m)
		evs = append(evs, e...)
		return true, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, evs, nil
}

// Get returns message id as party may read it: ErrNotFound unless party
// sent or received it. The operator ("" here) reads every message. A
// message party may read that cannot be read is an *UnreadableError
// naming it; to any other party it is not found, as another's message is.
func Get(tx store.Messages, party, id string) (Message, error) {
	rec, err := tx.GetMessage(id)
	if errors.Is(err, store.ErrNotFound) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, err
	}
	// Judged on the store's columns, before the body is decoded: whether
	// another's message is readable is none of party's business.
	if party != "" && !(Message{From: rec.From, To: rec.To}).involves(party) {
		return Message{}, ErrNotFound
	}
	m, err := load(tx, rec)
	if err != nil {
		return Message{}, err
	}
	if party != "" && !m.involves(party) {
		return Message{}, ErrNotFound
	}
	return m, nil
}

// List returns the messages party sent or received, optionally in one
// thread ("" = all), created at or after since (zero = all), oldest first,
// at most limit (DefaultListLimit when <= 0, capped at MaxListLimit).
// A party never sees a message it is not part of, whatever the thread. A
// message that cannot be read is passed over (told to passOver): the
// others are listed.
func List(tx store.Messages, party, thread string, since time.Time, limit int, passOver PassOver) ([]Message, error) {
	if party == "" {
		return nil, fielderr.New("party", "required (the store lists messages per party)")
	}
	if thread != "" {
		if err := checkThread(thread); err != nil {
			return nil, err
		}
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	recs, err := tx.MessagesFor(party, thread, since, limit)
	if err != nil {
		return nil, err
	}
	return involving(tx, party, slices.All(recs), len(recs), passOver)
}

// involving reads the messages of recs that involve party, in the order of
// recs: the index a store lists them by is never trusted with a
// permission. A message that cannot be read is passed over (passOver).
func involving(tx store.Messages, party string, recs iter.Seq2[int, store.Message], n int, passOver PassOver) ([]Message, error) {
	out := make([]Message, 0, n)
	for _, rec := range recs {
		m, ok, err := readable(tx, rec, passOver)
		if err != nil {
			return nil, err
		}
		if ok && m.involves(party) {
			out = append(out, m)
		}
	}
	return out, nil
}

// ListNewest returns the newest messages party sent or received created at
// or after since, at most limit (capped at MaxListLimit), oldest first as
// List does: List of a window that holds more than limit gives its
// oldest, this its newest. It reads those it returns, newest first, in
// one read of the party's own messages. A message that cannot be read is
// passed over (told to passOver), as List does.
func ListNewest(tx store.Messages, party string, since time.Time, limit int, passOver PassOver) ([]Message, error) {
	if party == "" {
		return nil, fielderr.New("party", "required (the store lists messages per party)")
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	recs, err := tx.NewestMessagesFor(party, since, min(limit, MaxListLimit))
	if err != nil {
		return nil, err
	}
	return involving(tx, party, slices.Backward(recs), len(recs), passOver)
}

// ListOpen returns the messages party sent or received that are still
// open or escalated (some recipient has yet to acknowledge them), however
// long ago they were created, earliest deadline first, at most limit (at
// least 1); truncated reports that the party has more. It reads the
// party's own open messages, limit+1 at most, not every party's. The
// operator ("" here) lists every party's. A message that cannot be read is
// passed over (told to passOver), as List does.
func ListOpen(tx store.Messages, party string, limit int, passOver PassOver) (out []Message, truncated bool, err error) {
	limit = max(limit, 1)
	var recs []store.Message
	if party == "" {
		recs, err = tx.OpenMessagesDue(openDeadlineBound, limit+1)
	} else {
		recs, err = tx.OpenMessagesFor(party, limit+1)
	}
	if err != nil {
		return nil, false, err
	}
	if len(recs) > limit {
		recs, truncated = recs[:limit], true
	}
	out = make([]Message, 0, len(recs))
	for _, rec := range recs {
		m, ok, err := readable(tx, rec, passOver)
		if err != nil {
			return nil, false, err
		}
		if !ok || party != "" && !m.involves(party) {
			continue // never trust the index with a permission
		}
		out = append(out, m)
	}
	return out, truncated, nil
}

// openDeadlineBound lies beyond every deadline the service sets.
var openDeadlineBound = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// checkText refuses texts that are too long, blank when required, or hold
// a control or invisible formatting character (printable.CheckText: line
// feeds are allowed).
// CheckReply checks a text a party adds to an answer (an acknowledgment's
// reply, a reason) as the hotline checks replies: at most MaxTextBytes,
// printable.
func CheckReply(field, s string) error { return checkText(field, s, false) }

func checkText(field, s string, required bool) error {
	if err := printable.CheckText(s); err != nil {
		return fielderr.New(field, err.Error())
	}
	switch {
	case len(s) > MaxTextBytes:
		return fielderr.Errorf(field, "%d bytes, at most %d", len(s), MaxTextBytes)
	case required && strings.TrimSpace(s) == "":
		return fielderr.New(field, "required")
	}
	return nil
}

func checkRecipients(tx store.Parties, from string, to []string) ([]string, error) {
	if len(to) == 0 {
		return nil, fielderr.New("to", "at least one recipient")
	}
	if len(to) > MaxRecipients {
		return nil, fielderr.Errorf("to", "%d recipients, at most %d", len(to), MaxRecipients)
	}
	out := make([]string, 0, len(to))
	for i, p := range to {
		field := fmt.Sprintf("to[%d]", i)
		switch {
		case p == from:
			return nil, fielderr.New(field, "a party does not message itself")
		case slices.Contains(out, p):
			return nil, fielderr.Errorf(field, "%q is listed twice", p)
		case p == System:
			return nil, fielderr.New(field, "the service itself takes no messages")
		}
		pt, err := tx.PartyByName(p)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fielderr.Errorf(field, "no party %q", p)
		}
		if err != nil {
			return nil, err
		}
		if pt.Operator || pt.Disabled {
			return nil, fielderr.Errorf(field, "%q takes no messages", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// checkRef checks what a party's message refers to: the volume, alert or
// proposal of the rules must exist and concern the sender, which is the
// case when the sender owns the volume or the service told it about the
// volume, alert or proposal (an item in its thread). Whether something exists that does not concern the
// sender is not revealed.
func checkRef(tx Tx, from string, ref *Ref) (*Ref, error) {
	if ref == nil || *ref == (Ref{}) {
		return nil, nil
	}
	r := *ref
	if r.VolumeVersion != "" && r.VolumeID == "" {
		return nil, fielderr.New("ref.volume_id", "required with ref.volume_version")
	}
	if r.VolumeID != "" {
		if err := checkName("ref.volume_id", r.VolumeID); err != nil {
			return nil, err
		}
		v, err := tx.GetVolume(r.VolumeID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		concerns := err == nil && v.Party == from
		if err == nil && !concerns {
			if concerns, err = member(tx, from, volumeThread(r.VolumeID)); err != nil {
				return nil, err
			}
		}
		if !concerns {
			return nil, fielderr.Errorf("ref.volume_id", "no volume %q of this party or that it was told about", r.VolumeID)
		}
	}
	if r.VolumeVersion != "" {
		if err := checkName("ref.volume_version", r.VolumeVersion); err != nil {
			return nil, err
		}
	}
	if r.AlertID != "" {
		if err := checkName("ref.alert_id", r.AlertID); err != nil {
			return nil, err
		}
		concerns, err := member(tx, from, alertThread(r.AlertID))
		if err != nil {
			return nil, err
		}
		if !concerns {
			return nil, fielderr.Errorf("ref.alert_id", "no alert %q concerning this party", r.AlertID)
		}
	}
	if r.RulesVersion != 0 {
		// A proposal concerns the parties it asked: they got its item.
		concerns := false
		if r.RulesVersion > 0 {
			var err error
			if concerns, err = member(tx, from, RulesThread(r.RulesVersion)); err != nil {
				return nil, err
			}
		}
		if !concerns {
			return nil, fielderr.Errorf("ref.rules_version", "no proposal of the rules %d asked of this party", r.RulesVersion)
		}
	}
	return &r, nil
}

// The threads of the service's items.
const (
	alertThreadPrefix  = "alert:"
	volumeThreadPrefix = "volume:"
	rulesThreadPrefix  = "rules:"
)

func alertThread(alertID string) string   { return alertThreadPrefix + alertID }
func volumeThread(volumeID string) string { return volumeThreadPrefix + volumeID }

// member reports whether party sent or received a message in thread.
func member(tx store.Messages, party, thread string) (bool, error) {
	ms, err := tx.MessagesFor(party, thread, time.Time{}, 1)
	return len(ms) > 0, err
}

// checkThreadAccess lets a party post into a thread it is a member of, or
// start a new one; the alert and volume threads are the service's: only
// the owner of a volume may start its thread, and nobody an alert's. A
// reserved thread the party may not start is refused alike whether or not
// it has begun, so that the refusal does not tell a party that another's
// volume is in conflict, or that an alert or a proposal has items.
//
// A thread the party names (named) and is not on must be named in its own
// space, "<party>/<name>": otherwise a party could try names ("strike-
// tomorrow") and learn from a refusal which threads the others have
// begun. Outside its space a name it is not on is refused alike whether
// or not the thread has begun; in its space only a thread another party
// began before names were spaced can exist without it (ErrNotMember). A
// thread named by the service (t-<random>, for a message naming none) is
// new, and no other party could guess it.
func checkThreadAccess(tx Tx, from, thread string, named bool) error {
	reason, err := reserved(tx, from, thread)
	if err != nil {
		return err
	}
	ok, err := member(tx, from, thread)
	if err != nil || ok {
		return err
	}
	if reason != "" {
		return fielderr.Errorf("thread", "%q is reserved for %s", thread, reason)
	}
	if named && !serviceThread(thread) && !strings.HasPrefix(thread, from+"/") {
		return fielderr.Errorf("thread", "%q is not a thread of yours: a thread you start is named %s/<name>", thread, from)
	}
	begun, err := tx.ThreadExists(thread)
	if err != nil || !begun {
		return err
	}
	return ErrNotMember
}

// reserved names whom thread is reserved for when from may not start it
// ("" when it may).
func reserved(tx Tx, from, thread string) (string, error) {
	switch {
	case strings.HasPrefix(thread, alertThreadPrefix):
		return "the service's alert items", nil
	case strings.HasPrefix(thread, rulesThreadPrefix):
		return "the service's items about the rules", nil
	case strings.HasPrefix(thread, volumeThreadPrefix):
		v, err := tx.GetVolume(strings.TrimPrefix(thread, volumeThreadPrefix))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		if err != nil || v.Party != from {
			return "the service's items and the volume's owner", nil
		}
	}
	return "", nil
}

// serviceThread reports whether thread is named as the service names the
// threads of alerts, volumes and proposals of the rules.
func serviceThread(thread string) bool {
	return strings.HasPrefix(thread, alertThreadPrefix) || strings.HasPrefix(thread, volumeThreadPrefix) || strings.HasPrefix(thread, rulesThreadPrefix)
}

// threadFor is the thread of a message: the one given, else the thread of
// what it refers to (the alert before the volume), else a new one.
func threadFor(thread string, ref *Ref) (string, error) {
	if thread != "" {
		return thread, checkThread(thread)
	}
	switch {
	case ref != nil && ref.AlertID != "":
		return alertThread(ref.AlertID), nil
	case ref != nil && ref.VolumeID != "":
		return volumeThread(ref.VolumeID), nil
	case ref != nil && ref.RulesVersion > 0:
		return RulesThread(ref.RulesVersion), nil
	}
	return newID("t-")
}

func checkThread(s string) error {
	if len(s) > MaxThreadBytes {
		return fielderr.Errorf("thread", "%d bytes, at most %d", len(s), MaxThreadBytes)
	}
	for _, c := range s {
		if !nameChar(c) && c != ':' && c != '/' {
			return fielderr.Errorf("thread", "character %q not allowed (letters, digits, . _ - : /)", c)
		}
	}
	return nil
}

func checkName(field, s string) error {
	if len(s) > MaxThreadBytes {
		return fielderr.Errorf(field, "%d bytes, at most %d", len(s), MaxThreadBytes)
	}
	for _, c := range s {
		if !nameChar(c) {
			return fielderr.Errorf(field, "character %q not allowed", c)
		}
	}
	return nil
}

func nameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}
