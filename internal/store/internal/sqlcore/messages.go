package sqlcore

// This file implements the store.Messages role: hotline messages and
// acknowledgments.

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

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
		if _, err := t.q.Exec(t.ctx, `INSERT INTO message_parties (party, message_id, created_ns, state, thread) VALUES (?, ?, ?, ?, ?)`,
			p, m.ID, created, m.State, m.Thread); err != nil {
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
// stable order. In a thread it reads the party's messages in that thread
// alone (MessagesInThreadForSQL).
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
	if thread != "" {
		return t.messages("messages for "+party+" in "+thread, MessagesInThreadForSQL, []any{party, thread, from, int64(limit)})
	}
	return t.messages("messages for "+party, `SELECT `+msgCols+` FROM message_parties p JOIN messages m ON m.id = p.message_id
		WHERE p.party = ? AND p.created_ns >= ? ORDER BY p.created_ns, m.id LIMIT ?`, []any{party, from, int64(limit)})
}

// MessagesInThreadForSQL reads a party's messages in one thread created at
// or after a time (arguments: party, thread, created_ns, limit), in order
// of creation, then id: through the index message_parties_thread (party,
// thread, created_ns, message_id), in its order, which stops after limit
// rows. Filtering the party's messages by messages.thread instead read
// its whole history for every post into a new thread.
const MessagesInThreadForSQL = `SELECT ` + msgCols + ` FROM message_parties p JOIN messages m ON m.id = p.message_id
	WHERE p.party = ? AND p.thread = ? AND p.created_ns >= ? ORDER BY p.created_ns, p.message_id LIMIT ?`

// NewestMessagesFor goes backwards through the party's messages by
// creation time (index message_parties_created, party then created_ns):
// one ordered, limited read, which stops after limit rows (the ids of
// items created at the same nanosecond are sorted among themselves).
func (t *Tx) NewestMessagesFor(party string, since time.Time, limit int) ([]store.Message, error) {
	if limit <= 0 || !validText(party) {
		return nil, nil
	}
	from, err := encTime("since", since)
	if err != nil {
		return nil, err
	}
	return t.messages("newest messages for "+party, `SELECT `+msgCols+` FROM message_parties p JOIN messages m ON m.id = p.message_id
		WHERE p.party = ? AND p.created_ns >= ? ORDER BY p.created_ns DESC, p.message_id DESC LIMIT ?`,
		[]any{party, from, int64(limit)})
}

// ThreadExists looks for one message of the thread (index messages_thread).
func (t *Tx) ThreadExists(thread string) (bool, error) {
	if !validText(thread) {
		return false, nil
	}
	var one int64
	err := t.queryOne(`SELECT 1 FROM messages WHERE thread = ? LIMIT 1`, []any{thread}, &one)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: thread %s: %w", thread, err)
	}
	return true, nil
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

// OpenMessagesFor reads the party's open items only (index
// message_parties_state, the state kept with each party of an item),
// ordered by deadline, then id: the most overdue first.
func (t *Tx) OpenMessagesFor(party string, limit int) ([]store.Message, error) {
	if limit <= 0 || !validText(party) {
		return nil, nil
	}
	return t.messages("open messages for "+party, `SELECT `+msgCols+` FROM message_parties p JOIN messages m ON m.id = p.message_id
		WHERE p.party = ? AND p.state IN ('open', 'escalated') ORDER BY m.deadline_ns, m.id LIMIT ?`,
		[]any{party, int64(limit)})
}

// OpenMessagesAfter orders by deadline, latest first, then id (index
// messages_due).
func (t *Tx) OpenMessagesAfter(at time.Time, limit int) ([]store.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	ts, err := encTime("at", at)
	if err != nil {
		return nil, err
	}
	return t.messages("open messages after", `SELECT `+msgCols+` FROM messages m
		WHERE m.state IN ('open', 'escalated') AND m.deadline_ns > ? ORDER BY m.deadline_ns DESC, m.id LIMIT ?`,
		[]any{ts, int64(limit)})
}

// OpenMessagesFromTo goes through the sender's open messages (index
// messages_sender_state), each looked up among the recipient's and its
// acknowledgments (both by primary key).
func (t *Tx) OpenMessagesFromTo(sender, recipient string) (int, error) {
	if !validText(sender) || !validText(recipient) {
		return 0, nil
	}
	var n int64
	err := t.queryOne(`SELECT COUNT(*) FROM messages m JOIN message_parties p ON p.message_id = m.id AND p.party = ?
		WHERE m.sender = ? AND m.state IN ('open', 'escalated')
		AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.message_id = m.id AND a.party = ?)`, []any{recipient, sender, recipient}, &n)
	if err != nil {
		return 0, fmt.Errorf("store: open messages from %s to %s: %w", sender, recipient, err)
	}
	return int(n), nil
}

// OpenMessagesInThreadFor reads the party's messages in the thread by the
// index message_parties_thread (party, thread, ...), keeping the open
// ones of kind.
func (t *Tx) OpenMessagesInThreadFor(party, thread, kind string, limit int) ([]store.Message, error) {
	if limit <= 0 || !validText(party) || !validText(thread) || !validText(kind) {
		return nil, nil
	}
	return t.messages("open messages for "+party+" in "+thread, `SELECT `+msgCols+` FROM message_parties p JOIN messages m ON m.id = p.message_id
		WHERE p.party = ? AND p.thread = ? AND p.state IN ('open', 'escalated') AND m.kind = ?
		ORDER BY p.created_ns DESC, p.message_id DESC LIMIT ?`, []any{party, thread, kind, int64(limit)})
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
