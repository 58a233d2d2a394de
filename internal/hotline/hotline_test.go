package hotline

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

var t0 = time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)

type env struct {
	t   testing.TB
	st  store.Store
	log *audit.Log
	r   rules.Rules
}

// newEnv opens a store with parties alpha, bravo, charlie and delta, the
// operator and a disabled party, and rules whose deadlines differ from the
// defaults so that the tests read them from the rules.
func newEnv(t testing.TB, dir string) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnvOn(t, st)
}

// newEnvOn is newEnv on a given store.
func newEnvOn(t testing.TB, st store.Store) *env {
	t.Helper()
	r := rules.Default()
	r.AckDeadlineS, r.AckDeadlineHighestS, r.EscalationDeadlineS = 90, 20, 45
	e := &env{t: t, st: st, log: audit.NewLog(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)), 10), r: r}
	e.update(func(tx store.Tx) error {
		if _, err := tx.PartyByName("alpha"); err == nil {
			return nil
		}
		for _, p := range []store.Party{{Name: "alpha"}, {Name: "bravo"}, {Name: "charlie"}, {Name: "delta"},
			{Name: "operator", Operator: true}, {Name: "gone", Disabled: true}} {
			p.Created = t0
			if err := tx.CreateParty(p); err != nil {
				return err
			}
		}
		return nil
	})
	return e
}

func (e *env) update(fn func(tx store.Tx) error) {
	e.t.Helper()
	if err := e.st.Update(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) view(fn func(tx store.Tx) error) {
	e.t.Helper()
	if err := e.st.View(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) post(from string, in NewMessage, now time.Time) (Message, []store.Event) {
	e.t.Helper()
	var m Message
	var evs []store.Event
	e.update(func(tx store.Tx) error {
		var err error
		m, evs, err = Post(tx, e.log, e.r, from, in, now)
		return err
	})
	return m, evs
}

func (e *env) ack(id, party, reply string, now time.Time) (Message, []store.Event, error) {
	var m Message
	var evs []store.Event
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		var err error
		m, evs, err = Ack(tx, e.log, id, party, reply, now)
		return err
	})
	return m, evs, err
}

func (e *env) escalate(now time.Time) ([]Message, []store.Event) {
	e.t.Helper()
	var ms []Message
	var evs []store.Event
	e.update(func(tx store.Tx) error {
		var err error
		ms, evs, err = Escalate(tx, e.log, e.r, now, 0, nil)
		return err
	})
	return ms, evs
}

// auditKinds counts the audit records by kind.
func (e *env) auditKinds() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	e.view(func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 1<<20)
		for _, r := range recs {
			out[r.Kind]++
		}
		return err
	})
	return out
}

func (e *env) lastEventID() int64 {
	e.t.Helper()
	var id int64
	e.view(func(tx store.Tx) error {
		var err error
		id, err = tx.LastEventID()
		return err
	})
	return id
}

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestPostRefusesBadInput(t *testing.T) {
	e := newEnv(t, "")
	ok := NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "hello"}
	with := func(f func(*NewMessage)) NewMessage {
		m := ok
		m.To = slices.Clone(ok.To)
		f(&m)
		return m
	}
	cases := []struct {
		from  string
		in    NewMessage
		field string
	}{
		{"alpha", with(func(m *NewMessage) { m.Kind = "shout" }), "kind"},
		{"alpha", with(func(m *NewMessage) { m.Kind = KindAlert }), "kind"},
		{"alpha", with(func(m *NewMessage) { m.Text = "  " }), "text"},
		{"alpha", with(func(m *NewMessage) { m.Text = "bad \xff utf-8" }), "text"},
		{"alpha", with(func(m *NewMessage) { m.Text = strings.Repeat("é", MaxTextBytes/2+1) }), "text"},
		{"alpha", with(func(m *NewMessage) { m.To = nil }), "to"},
		{"alpha", with(func(m *NewMessage) { m.To = []string{"bravo", "bravo"} }), "to[1]"},
		{"alpha", with(func(m *NewMessage) { m.To = []string{"bravo", "alpha"} }), "to[1]"},
		{"alpha", with(func(m *NewMessage) { m.To = []string{"nobody"} }), "to[0]"},
		{"alpha", with(func(m *NewMessage) { m.To = []string{"operator"} }), "to[0]"},
		{"alpha", with(func(m *NewMessage) { m.To = []string{"gone"} }), "to[0]"},
		{"alpha", with(func(m *NewMessage) { m.To = []string{System} }), "to[0]"},
		{"alpha", with(func(m *NewMessage) { m.Thread = "has space" }), "thread"},
		{"alpha", with(func(m *NewMessage) { m.Thread = strings.Repeat("x", MaxThreadBytes+1) }), "thread"},
		{"alpha", with(func(m *NewMessage) { m.Ref = &Ref{VolumeVersion: "3"} }), "ref.volume_id"},
		{"alpha", with(func(m *NewMessage) { m.Ref = &Ref{VolumeID: "no-such-volume"} }), "ref.volume_id"},
		{"alpha", with(func(m *NewMessage) { m.Ref = &Ref{AlertID: "a b"} }), "ref.alert_id"},
		{System, ok, "from"},
	}
	before := e.lastEventID()
	for _, c := range cases {
		err := e.st.Update(context.Background(), func(tx store.Tx) error {
			_, _, err := Post(tx, e.log, e.r, c.from, c.in, t0)
			return err
		})
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: got %v, want an error on %s", c.in, err, c.field)
		}
	}
	if got := e.lastEventID(); got != before {
		t.Fatalf("refused posts appended events (%d -> %d)", before, got)
	}
	if n := len(e.auditKinds()); n != 0 {
		t.Fatalf("refused posts wrote audit records: %v", e.auditKinds())
	}
	var ms []Message
	e.view(func(tx store.Tx) error {
		var err error
		ms, err = List(tx, "alpha", "", time.Time{}, 0, nil)
		return err
	})
	if len(ms) != 0 {
		t.Fatalf("refused posts stored messages: %+v", ms)
	}
}

func TestDeadlinesComeFromTheRules(t *testing.T) {
	e := newEnv(t, "")
	m, evs := e.post("alpha", NewMessage{To: []string{"bravo", "charlie"}, Kind: KindRequest, Text: "climb to FL300?"}, t0)
	if !m.Deadline.Equal(t0.Add(sec(e.r.AckDeadlineS))) || !m.EscalationDeadline.Equal(m.Deadline.Add(sec(e.r.EscalationDeadlineS))) {
		t.Fatalf("deadlines %v / %v", m.Deadline, m.EscalationDeadline)
	}
	if m.State != StateOpen || !strings.HasPrefix(m.Thread, "t-") || m.From != "alpha" {
		t.Fatalf("message %+v", m)
	}
	if len(evs) != 1 || evs[0].Kind != EventMessage || evs[0].ID == 0 || !sameSet(evs[0].Audience, []string{"alpha", "bravo", "charlie"}) {
		t.Fatalf("events %+v", evs)
	}
	var sent Message
	if err := json.Unmarshal(evs[0].Body, &sent); err != nil || sent.ID != m.ID || sent.Text != m.Text {
		t.Fatalf("event data %s (%v)", evs[0].Body, err)
	}
	highest := e.r.Highest().Name
	for _, level := range []string{e.r.Levels[0].Name, highest} {
		var a Message
		e.update(func(tx store.Tx) error {
			var err error
			a, _, err = PostSystem(tx, e.log, e.r, SystemItem{Kind: KindAlert, To: []string{"alpha", "bravo", "alpha"}, Ref: Ref{AlertID: "al-" + level}, Level: level}, t0)
			return err
		})
		want := sec(e.r.AckDeadlineS)
		if level == highest {
			want = sec(e.r.AckDeadlineHighestS)
		}
		if got := a.Deadline.Sub(a.Created); got != want {
			t.Errorf("alert at %s: deadline after %v, want %v", level, got, want)
		}
		if a.From != System || a.Kind != KindAlert || a.Thread != "alert:al-"+level || a.Ref.AlertID != "al-"+level || !sameSet(a.To, []string{"alpha", "bravo"}) {
			t.Errorf("alert item %+v", a)
		}
	}
	written := SubjectVolume{ID: "v1", Party: "alpha", Version: "3", AltLowerM: 6705.6, AltUpperM: 7315.2, Start: t0, End: t0.Add(2 * time.Hour)}
	other := SubjectVolume{ID: "v9", Party: "charlie", Version: "1", AltLowerM: 7000, AltUpperM: 7600, Start: t0.Add(time.Hour), End: t0.Add(3 * time.Hour)}
	var vc Message
	var vcEvs []store.Event
	e.update(func(tx store.Tx) error {
		var err error
		vc, vcEvs, err = PostVolumeConflict(tx, e.log, e.r, written, other, t0)
		return err
	})
	if vc.Kind != KindVolumeConflict || vc.Thread != "volume:v1" || vc.Ref.VolumeID != "v1" || !sameSet(vc.To, []string{"alpha", "charlie"}) ||
		!sameSet(vcEvs[0].Audience, []string{"alpha", "charlie"}) || vc.Deadline.Sub(vc.Created) != sec(e.r.AckDeadlineS) {
		t.Fatalf("volume conflict item %+v, events %+v", vc, vcEvs)
	}
	// The subject names both volumes for people, on the item, in its event
	// and when read back.
	want := Subject{Volumes: []SubjectVolume{written, other}}
	var evMsg Message
	if err := json.Unmarshal(vcEvs[0].Body, &evMsg); err != nil {
		t.Fatal(err)
	}
	var stored Message
	e.view(func(tx store.Tx) error {
		var err error
		stored, err = Get(tx, "charlie", vc.ID)
		return err
	})
	for name, got := range map[string]*Subject{"item": vc.Subject, "event": evMsg.Subject, "stored": stored.Subject} {
		if got == nil || !reflect.DeepEqual(*got, want) {
			t.Errorf("%s: subject %+v, want %+v", name, got, want)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestEscalationAndSecondDeadline(t *testing.T) {
	e := newEnv(t, "")
	m, _ := e.post("alpha", NewMessage{To: []string{"bravo", "charlie"}, Kind: KindNotice, Text: "tanker on station"}, t0)
	acked, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "acked in time"}, t0)
	if _, _, err := e.ack(acked.ID, "bravo", "", m.Deadline.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}

	if ms, evs := e.escalate(m.Deadline.Add(-time.Nanosecond)); len(ms)+len(evs) != 0 {
		t.Fatalf("escalated before the deadline: %+v", ms)
	}
	ms, evs := e.escalate(m.Deadline)
	if len(ms) != 1 || ms[0].ID != m.ID || ms[0].State != StateEscalated || ms[0].Escalations != 1 {
		t.Fatalf("at the deadline: %+v", ms)
	}
	second := m.Deadline.Add(sec(e.r.EscalationDeadlineS))
	if !ms[0].EscalationDeadline.Equal(second) {
		t.Fatalf("second deadline %v, want %v", ms[0].EscalationDeadline, second)
	}
	if len(evs) != 1 || evs[0].Kind != EventEscalated || !sameSet(evs[0].Audience, []string{"alpha", "bravo", "charlie"}) {
		t.Fatalf("escalation events %+v", evs)
	}
	// Running the job again before the second deadline does nothing more.
	if ms, _ := e.escalate(second.Add(-time.Nanosecond)); len(ms) != 0 {
		t.Fatalf("escalated twice for one deadline: %+v", ms)
	}
	// One of two recipients acknowledges: still escalated.
	got, _, err := e.ack(m.ID, "bravo", "copied", second.Add(-2*time.Second))
	if err != nil || got.State != StateEscalated {
		t.Fatalf("after one ack of two: %+v (%v)", got, err)
	}
	ms, _ = e.escalate(second)
	if len(ms) != 1 || ms[0].Escalations != 2 || !ms[0].EscalationDeadline.Equal(second.Add(sec(e.r.EscalationDeadlineS))) {
		t.Fatalf("past the second deadline: %+v", ms)
	}
	got, _, err = e.ack(m.ID, "charlie", "", second.Add(time.Second))
	if err != nil || got.State != StateAcknowledged {
		t.Fatalf("after every ack: %+v (%v)", got, err)
	}
	if ms, _ := e.escalate(second.Add(24 * time.Hour)); len(ms) != 0 {
		t.Fatalf("acknowledged items escalated: %+v", ms)
	}
	if k := e.auditKinds(); k["message_escalated"] != 2 || k["message_acked"] != 3 || k["message_posted"] != 2 {
		t.Fatalf("audit records %v", k)
	}
}

// A service that was down past several deadlines escalates each item once
// when it comes back, with a second deadline in the future.
func TestEscalationAfterDowntime(t *testing.T) {
	e := newEnv(t, "")
	m, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "x"}, t0)
	back := m.Deadline.Add(10 * sec(e.r.EscalationDeadlineS))
	ms, _ := e.escalate(back)
	if len(ms) != 1 || ms[0].Escalations != 1 || !ms[0].EscalationDeadline.Equal(back.Add(sec(e.r.EscalationDeadlineS))) {
		t.Fatalf("after downtime: %+v", ms)
	}
	if ms, _ := e.escalate(back); len(ms) != 0 {
		t.Fatalf("escalated again at once: %+v", ms)
	}
}

func TestAckIsIdempotentAndRecordedOnce(t *testing.T) {
	e := newEnv(t, "")
	m, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindRequest, Text: "confirm"}, t0)
	first, evs, err := e.ack(m.ID, "bravo", "confirmed", t0.Add(time.Second))
	if err != nil || first.State != StateAcknowledged || len(first.Acks) != 1 || first.Acks[0].Reply != "confirmed" || len(evs) != 1 {
		t.Fatalf("first ack: %+v %+v (%v)", first, evs, err)
	}
	if !sameSet(evs[0].Audience, []string{"alpha", "bravo"}) || evs[0].Kind != EventAck {
		t.Fatalf("ack event %+v", evs[0])
	}
	before, kinds := e.lastEventID(), e.auditKinds()
	again, evs, err := e.ack(m.ID, "bravo", "a different reply", t0.Add(time.Minute))
	if err != nil || len(evs) != 0 {
		t.Fatalf("second ack: %v, events %+v", err, evs)
	}
	if a, b := mustJSON(t, first), mustJSON(t, again); a != b {
		t.Fatalf("second ack changed the message:\n%s\n%s", a, b)
	}
	if e.lastEventID() != before || fmt.Sprint(e.auditKinds()) != fmt.Sprint(kinds) || kinds["message_acked"] != 1 {
		t.Fatalf("second ack recorded something: events %d -> %d, audit %v -> %v", before, e.lastEventID(), kinds, e.auditKinds())
	}

	if _, _, err := e.ack(m.ID, "alpha", "", t0); !errors.Is(err, ErrNotRecipient) {
		t.Errorf("sender acking: %v", err)
	}
	if _, _, err := e.ack(m.ID, "charlie", "", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("outsider acking: %v", err)
	}
	if _, _, err := e.ack("m-nope", "bravo", "", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	var fe *fielderr.Error
	if _, _, err := e.ack(m.ID, "bravo", "\xff", t0); !errors.As(err, &fe) || fe.Field != "reply" {
		t.Errorf("bad reply: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAPartyReadsOnlyItsMessages(t *testing.T) {
	e := newEnv(t, "")
	ab, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Thread: "alpha/outage", Text: "a to b"}, t0)
	ca, _ := e.post("alpha", NewMessage{To: []string{"charlie"}, Kind: KindNotice, Thread: "alpha/outage", Text: "a to c"}, t0.Add(time.Second))
	bc, _ := e.post("bravo", NewMessage{To: []string{"charlie", "alpha"}, Kind: KindNotice, Thread: "bravo/other", Text: "b to c, a"}, t0.Add(2*time.Second))
	ids := func(ms []Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	list := func(party, thread string, since time.Time) []string {
		var ms []Message
		e.view(func(tx store.Tx) error {
			var err error
			ms, err = List(tx, party, thread, since, 0, nil)
			return err
		})
		return ids(ms)
	}
	cases := []struct {
		party, thread string
		since         time.Time
		want          []string
	}{
		{"alpha", "alpha/outage", time.Time{}, []string{ab.ID, ca.ID}},
		{"bravo", "alpha/outage", time.Time{}, []string{ab.ID}},
		{"charlie", "alpha/outage", time.Time{}, []string{ca.ID}},
		{"delta", "alpha/outage", time.Time{}, nil},
		{"alpha", "", time.Time{}, []string{ab.ID, ca.ID, bc.ID}},
		{"alpha", "", t0.Add(time.Second), []string{ca.ID, bc.ID}},
		{"charlie", "", time.Time{}, []string{ca.ID, bc.ID}},
		{"delta", "", time.Time{}, nil},
	}
	for _, c := range cases {
		if got := list(c.party, c.thread, c.since); !slices.Equal(got, c.want) {
			t.Errorf("%s reads thread %q since %v: %v, want %v", c.party, c.thread, c.since, got, c.want)
		}
	}
	e.view(func(tx store.Tx) error {
		if _, err := Get(tx, "delta", ab.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("delta reads a message between alpha and bravo: %v", err)
		}
		if m, err := Get(tx, "bravo", ab.ID); err != nil || m.Text != "a to b" {
			t.Errorf("bravo reads its own message: %v", err)
		}
		if _, err := Get(tx, "", ab.ID); err != nil {
			t.Errorf("the operator reads any message: %v", err)
		}
		return nil
	})
	// The audit export for delta proves the messages exist without showing
	// their text; bravo's shows the text of its own messages only.
	for _, c := range []struct {
		viewer string
		shown  []string
		hidden []string
	}{
		{"delta", nil, []string{"a to b", "a to c", "b to c, a"}},
		{"bravo", []string{"a to b", "b to c, a"}, []string{"a to c"}},
	} {
		var out bytes.Buffer
		e.view(func(tx store.Tx) error { return e.log.Export(tx, &out, c.viewer, 1, t0.Add(time.Hour)) })
		if _, err := audit.Verify(bytes.NewReader(out.Bytes()), e.log.PublicKey()); err != nil {
			t.Fatalf("%s's export: %v", c.viewer, err)
		}
		for _, s := range c.shown {
			if !bytes.Contains(out.Bytes(), []byte(s)) {
				t.Errorf("%s's export lacks %q", c.viewer, s)
			}
		}
		for _, s := range c.hidden {
			if bytes.Contains(out.Bytes(), []byte(s)) {
				t.Errorf("%s's export shows %q", c.viewer, s)
			}
		}
	}
}

// Acknowledgments arriving at once, including the same party's twice (a
// client retrying on another connection), are each recorded exactly once.
func TestConcurrentAcks(t *testing.T) {
	e := newEnv(t, "")
	m, _ := e.post("alpha", NewMessage{To: []string{"bravo", "charlie", "delta"}, Kind: KindRequest, Text: "all confirm"}, t0)
	before := e.lastEventID()
	parties := []string{"bravo", "charlie", "delta", "bravo", "charlie", "delta"}
	errs := make(chan error, len(parties))
	for _, p := range parties {
		go func() {
			_, _, err := e.ack(m.ID, p, "", t0.Add(time.Second))
			errs <- err
		}()
	}
	for range parties {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var got Message
	e.view(func(tx store.Tx) error {
		var err error
		got, err = Get(tx, "alpha", m.ID)
		return err
	})
	if got.State != StateAcknowledged || len(got.Acks) != 3 {
		t.Fatalf("after concurrent acks: %+v", got)
	}
	if n := e.lastEventID() - before; n != 3 || e.auditKinds()["message_acked"] != 3 {
		t.Fatalf("%d ack events and %d ack records, want 3 each", n, e.auditKinds()["message_acked"])
	}
}

// A system item is refused, naming the field, when its kind is not a
// system kind, an alert's item names no alert, or no party is left to
// notify; nothing is stored.
func TestPostSystemRefusesBadItems(t *testing.T) {
	e := newEnv(t, t.TempDir())
	for _, c := range []struct {
		it    SystemItem
		field string
	}{
		{SystemItem{Kind: KindNotice, To: []string{"alpha"}, Ref: Ref{AlertID: "al-1"}}, "kind"},
		{SystemItem{Kind: KindAlert, To: []string{"alpha"}}, "ref.alert_id"},
		{SystemItem{Kind: KindAlert, To: []string{System, ""}, Ref: Ref{AlertID: "al-1"}}, "to"},
	} {
		err := e.st.Update(context.Background(), func(tx store.Tx) error {
			_, _, err := PostSystem(tx, e.log, e.r, c.it, t0)
			return err
		})
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: err %v, want a refusal of %s", c.it, err, c.field)
		}
	}
	e.view(func(tx store.Tx) error {
		if ms, err := tx.MessagesFor("alpha", "", time.Time{}, 10); err != nil || len(ms) != 0 {
			t.Errorf("stored %d messages (%v), want none", len(ms), err)
		}
		return nil
	})
}

// ackLate is the "late" of the audit record of party's acknowledgment of
// message id.
func (e *env) ackLate(id, party string) bool {
	e.t.Helper()
	var late *bool
	e.view(func(tx store.Tx) error {
		recs, err := tx.AuditFrom(1, 1<<20)
		for _, r := range recs {
			var c struct {
				ID    string `json:"id"`
				Party string `json:"party"`
				Late  *bool  `json:"late"`
			}
			if r.Kind != "message_acked" {
				continue
			}
			d, err := audit.Decode(r)
			if err != nil {
				return err
			}
			if json.Unmarshal(d.Content, &c) == nil && c.ID == id && c.Party == party {
				late = c.Late
			}
		}
		return err
	})
	if late == nil {
		e.t.Fatalf("no message_acked record of %s by %s with late", id, party)
	}
	return *late
}

// TestAckAtTheDeadlineIsLate: the deadline is the first instant an item
// escalates (Escalate at the deadline escalates it), so an acknowledgment
// at that very instant is late too, whether the escalation came first or
// not; a nanosecond before, it is on time. (It was recorded "late": false
// at the deadline, beside the escalation of the same instant.)
func TestAckAtTheDeadlineIsLate(t *testing.T) {
	e := newEnv(t, "")
	early, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "a"}, t0)
	before, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "b"}, t0)
	after, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "c"}, t0)
	deadline := early.Deadline
	if _, _, err := e.ack(early.ID, "bravo", "", deadline.Add(-time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	// Acknowledged at the deadline before the job ran: late, and never
	// escalated.
	if _, _, err := e.ack(before.ID, "bravo", "", deadline); err != nil {
		t.Fatal(err)
	}
	ms, _ := e.escalate(deadline)
	if len(ms) != 1 || ms[0].ID != after.ID {
		t.Fatalf("escalated at the deadline: %+v, want %s alone", ms, after.ID)
	}
	// Acknowledged at the deadline after the job escalated it: late.
	got, _, err := e.ack(after.ID, "bravo", "", deadline)
	if err != nil || got.State != StateAcknowledged || got.Escalations != 1 {
		t.Fatalf("ack after the escalation: %+v %v", got, err)
	}
	for _, c := range []struct {
		id   string
		late bool
	}{{early.ID, false}, {before.ID, true}, {after.ID, true}} {
		if got := e.ackLate(c.id, "bravo"); got != c.late {
			t.Errorf("%s: late %v, want %v", c.id, got, c.late)
		}
	}
}

// An item posted and escalated while the clock was a day ahead, brought
// back once the clock is corrected, is late when acknowledged after: its
// acknowledgment deadline passed (it escalated), and Reschedule left it a
// day ahead, so that the acknowledgment of an escalated item was recorded
// "late": false and the item showed an acknowledgment deadline to come.
func TestRescheduledEscalatedItemIsLate(t *testing.T) {
	e := newEnv(t, "")
	ahead := t0.Add(24 * time.Hour)
	m, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "during the step"}, ahead)
	if ms, _ := e.escalate(m.Deadline); len(ms) != 1 {
		t.Fatalf("escalated during the step: %+v", ms)
	}
	corrected := t0.Add(time.Minute)
	var back []Message
	e.update(func(tx store.Tx) error {
		var err error
		back, _, err = Reschedule(tx, e.log, e.r, corrected, 0, nil)
		return err
	})
	if len(back) != 1 || back[0].State != StateEscalated {
		t.Fatalf("rescheduled %+v, want the escalated item", back)
	}
	if back[0].Deadline.After(corrected) {
		t.Errorf("the escalated item's acknowledgment deadline %v lies ahead of the clock %v", back[0].Deadline, corrected)
	}
	if _, _, err := e.ack(m.ID, "bravo", "", corrected.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if !e.ackLate(m.ID, "bravo") {
		t.Error("the acknowledgment of the escalated item is recorded on time")
	}
}
