package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
)

type wireMessage struct {
	ID     string
	From   string
	To     []string
	Kind   string
	State  string
	Thread string
	Ref    *struct {
		AlertID  string `json:"alert_id"`
		VolumeID string `json:"volume_id"`
	}
	Acks    []struct{ Party, Reply string }
	Subject *struct {
		Aircraft []struct{ Party, Aircraft, Callsign string }
		Volumes  []struct {
			ID, Party, Version string
			AltLowerM          float64   `json:"alt_lower_m"`
			AltUpperM          float64   `json:"alt_upper_m"`
			Start              time.Time `json:"start"`
			End                time.Time `json:"end"`
		}
	}
}

func TestHotlineMessageAckAndEvents(t *testing.T) {
	e := newEnv(t, Options{})
	sc := e.openStream(e.tokens["coalition"], "")
	sr := e.openStream(e.tokens["russia"], "")
	var m wireMessage
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "request", "text": "descend to FL200?"}, 201, &m)
	if m.From != "coalition" || m.State != "open" || m.ID == "" {
		t.Fatalf("%+v", m)
	}
	for _, s := range []*stream{sc, sr} {
		if ev := s.next(t); ev.Kind != "message" || !strings.Contains(string(ev.Data.Data), m.ID) {
			t.Fatalf("event %s %s", ev.Kind, ev.Data.Data)
		}
	}
	// A body with trailing data is refused like any other, and acknowledges
	// nothing (the acknowledgment below is still the first).
	if code, b, _ := e.do("POST", "/v1/hotline/messages/"+m.ID+"/ack", e.tokens["russia"], `{"reply": "roger"} {}`); code != 400 {
		t.Fatalf("ack with trailing data: %d %s", code, b)
	}
	var acked wireMessage
	e.mustDo("POST", "/v1/hotline/messages/"+m.ID+"/ack", e.tokens["russia"], map[string]string{"reply": "wilco"}, 200, &acked)
	if acked.State != "acknowledged" || len(acked.Acks) != 1 || acked.Acks[0].Reply != "wilco" {
		t.Fatalf("%+v", acked)
	}
	for _, s := range []*stream{sc, sr} {
		if ev := s.next(t); ev.Kind != "ack" {
			t.Fatalf("event %s", ev.Kind)
		}
	}
	// A second acknowledgment changes nothing and announces nothing.
	before := fingerprint(t, e.st)
	e.mustDo("POST", "/v1/hotline/messages/"+m.ID+"/ack", e.tokens["russia"], nil, 200, &acked)
	if after := fingerprint(t, e.st); after != before || len(acked.Acks) != 1 {
		t.Fatalf("second ack changed the store:\n%s\n%s", before, after)
	}
	var list struct{ Messages []wireMessage }
	e.mustDo("GET", "/v1/hotline/messages?thread="+m.Thread, e.tokens["russia"], nil, 200, &list)
	if len(list.Messages) != 1 || list.Messages[0].ID != m.ID {
		t.Fatalf("list %+v", list)
	}
	if code, b, _ := e.do("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"nobody"}, "kind": "notice", "text": "x"}); code != 400 || !strings.Contains(string(b), `"field":"to`) {
		t.Fatalf("unknown recipient: %d %s", code, b)
	}
	if code, _, _ := e.do("POST", "/v1/hotline/messages/nope/ack", e.tokens["russia"], nil); code != 404 {
		t.Fatalf("unknown message: %d", code)
	}
}

func TestHotlineEscalation(t *testing.T) {
	e := newEnv(t, Options{})
	sr := e.openStream(e.tokens["russia"], "")
	var m wireMessage
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "request", "text": "confirm"}, 201, &m)
	if ev := sr.next(t); ev.Kind != "message" {
		t.Fatalf("%s", ev.Kind)
	}
	e.advance(time.Duration(rules.Default().AckDeadlineS+1) * time.Second)
	e.svc.Tick(context.Background())
	ev := sr.next(t)
	var got wireMessage
	_ = json.Unmarshal(ev.Data.Data, &got)
	if ev.Kind != "escalated" || got.ID != m.ID || got.State != "escalated" {
		t.Fatalf("event %s %s", ev.Kind, ev.Data.Data)
	}
}

// TestAlertsAndVolumeConflictsAreHotlineItems: a tactical alert and a
// strategic conflict each become an item that both parties must
// acknowledge.
func TestAlertsAndVolumeConflictsAreHotlineItems(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now()
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RF-1", 35.0, 36.1, 6000, -200, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-1", 35.0, 35.88, 6000, 200, now)}}, 202, nil)
	var alerts struct{ Alerts []struct{ ID string } }
	e.mustDo("GET", "/v1/alerts", e.tokens["coalition"], nil, 200, &alerts)
	if len(alerts.Alerts) != 1 {
		t.Fatalf("alerts %+v", alerts)
	}
	var a wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(10, 10, "a", nil), 201, &a)
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(10.01, 10.01, "b", []map[string]string{{"id": a.ID, "version": a.Version}}), 201, nil)

	for _, p := range []string{"coalition", "russia"} {
		var list struct{ Messages []wireMessage }
		e.mustDo("GET", "/v1/hotline/messages", e.tokens[p], nil, 200, &list)
		kinds := map[string]bool{}
		for _, m := range list.Messages {
			kinds[m.Kind] = true
			if m.From != "deconflict" {
				t.Errorf("%s: item from %s", p, m.From)
			}
			if m.Kind == "alert" && (m.Ref == nil || m.Ref.AlertID != alerts.Alerts[0].ID) {
				t.Errorf("%s: alert item %+v", p, m)
			}
			// Each item names its subject for people: the callsigns of
			// the alert's aircraft, both volumes of the conflict with
			// their owners and bands.
			switch {
			case m.Subject == nil:
				t.Errorf("%s: %s item without a subject", p, m.Kind)
			case m.Kind == "alert":
				var got []string
				for _, ac := range m.Subject.Aircraft {
					got = append(got, ac.Party+"/"+ac.Aircraft+"/"+ac.Callsign)
				}
				if strings.Join(got, " ") != "russia/RF-1/CS-RF-1 coalition/US-1/CS-US-1" && strings.Join(got, " ") != "coalition/US-1/CS-US-1 russia/RF-1/CS-RF-1" {
					t.Errorf("%s: alert subject %q", p, got)
				}
			case m.Kind == "volume_conflict":
				vs := m.Subject.Volumes
				if len(vs) != 2 || vs[0].Party != "russia" || vs[1].ID != a.ID || vs[1].Party != "coalition" ||
					vs[0].AltLowerM != 5000 || vs[1].AltUpperM != 7000 || vs[1].End.Sub(vs[1].Start) != 2*time.Hour {
					t.Errorf("%s: volume conflict subject %+v", p, vs)
				}
			}
		}
		if !kinds["alert"] || !kinds["volume_conflict"] {
			t.Fatalf("%s: items %+v", p, list.Messages)
		}
	}
}

// TestHotlineThreadMembership: a party that is not on a thread cannot post
// into it, nor start one outside its own space (<party>/<name>), nor an
// alert thread: 400 naming the thread, alike whether or not the thread
// has begun, so that a party cannot try names to learn which threads the
// others talk in.
func TestHotlineThreadMembership(t *testing.T) {
	e := newEnv(t, Options{})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "thread": "coalition/ops", "text": "c to r"}, 201, nil)
	var refusals []string
	for _, thread := range []string{"coalition/ops", "coalition/none", "ops", "alert:x"} {
		code, b, _ := e.do("POST", "/v1/hotline/messages", third.Token, map[string]any{"to": []string{"russia"}, "kind": "notice", "thread": thread, "text": "b to r"})
		if code != 400 || !strings.Contains(string(b), `"field":"thread"`) {
			t.Fatalf("bystander posting into %q: %d %s", thread, code, b)
		}
		if thread != "alert:x" {
			refusals = append(refusals, strings.ReplaceAll(string(b), thread, "THREAD"))
		}
	}
	// The thread of others that has begun is refused in the same words as
	// one that has not.
	if refusals[0] != refusals[1] {
		t.Fatalf("a begun thread of others is refused apart from one that has not begun:\n%s\n%s", refusals[0], refusals[1])
	}
	e.mustDo("POST", "/v1/hotline/messages", third.Token, map[string]any{"to": []string{"russia"}, "kind": "notice", "thread": "bystander/ops", "text": "b to r"}, 201, nil)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "reply", "thread": "coalition/ops", "text": "r to c"}, 201, nil)
}

// A party has at most hotline.MaxOpenPerRecipient messages awaiting one
// recipient's acknowledgment: one more to that recipient is 429 naming it
// (to[i]) and stores nothing, while the party writes on to the others; an
// acknowledgment makes room. Nothing bounded them, and each escalates
// every escalation deadline in the job that escalates the alerts, 1,000 a
// tick at 0.4 s: 300,000 of one party's messages would delay the
// escalation of every alert.
func TestHotlineBoundsOpenMessagesPerRecipient(t *testing.T) {
	e := newEnv(t, Options{})
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "navy"}, 201, nil)
	ctx := context.Background()
	russia := party.Principal{Party: "russia"}
	var first hotline.Message
	for i := range hotline.MaxOpenPerRecipient {
		m, err := e.svc.PostMessage(ctx, russia, hotline.NewMessage{To: []string{"coalition"}, Kind: "request", Thread: fmt.Sprintf("russia/t%d", i), Text: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = m
		}
	}
	before := fingerprint(t, e.st)
	var p struct{ Type, Field, Detail string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"navy", "coalition"}, "kind": "notice", "thread": "russia/more", "text": "one more"}, http.StatusTooManyRequests, &p)
	if p.Type != ProblemBase+"too-many-open-messages" || p.Field != "to[1]" || !strings.Contains(p.Detail, fmt.Sprint(hotline.MaxOpenPerRecipient)) {
		t.Fatalf("refusal %+v, want too-many-open-messages naming to[1] and the limit", p)
	}
	if after := fingerprint(t, e.st); after != before {
		t.Fatalf("a refused message changed the store:\n%s\n%s", before, after)
	}
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"navy"}, "kind": "notice", "thread": "russia/more", "text": "to the navy"}, 201, nil)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "thread": "coalition/mine", "text": "the other way"}, 201, nil)
	e.mustDo("POST", "/v1/hotline/messages/"+first.ID+"/ack", e.tokens["coalition"], nil, 200, nil)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "notice", "thread": "russia/t0", "text": "now there is room"}, 201, nil)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "notice", "thread": "russia/t0", "text": "and no more"}, http.StatusTooManyRequests, nil)
}

// TestHotlineRefusesAMemberGivenTwice: a message that gives its text, its
// recipients or a member of its reference twice is refused with a 400
// naming the field, and changes nothing. encoding/json took the last, and
// stored and delivered it, while the body the party signed reads as the
// first to a reader that takes the first, and as nothing to one that
// refuses it: what the party said was a matter of who read it.
func TestHotlineRefusesAMemberGivenTwice(t *testing.T) {
	e := newEnv(t, Options{})
	before := fingerprint(t, e.st)
	for _, c := range []struct{ body, field string }{
		{`{"to":["russia"],"kind":"request","text":"climb to FL200","text":"descend to FL100"}`, "text"},
		{`{"to":["russia"],"kind":"request","text":"climb","to":["coalition2"]}`, "to"},
		{`{"to":["russia"],"kind":"request","text":"climb","ref":{"rules_version":1,"rules_version":2}}`, "ref"},
	} {
		code, b, hdr := e.do("POST", "/v1/hotline/messages", e.tokens["coalition"], c.body)
		if code != 400 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, code, b, c.field)
		}
	}
	if after := fingerprint(t, e.st); after != before {
		t.Fatal("a refused message changed the store")
	}
}
