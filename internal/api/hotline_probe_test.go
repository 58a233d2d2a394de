package api

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHotlineReservedThreadsDoNotTellWhetherTheyBegan plays coalition
// probing russia's volumes through the hotline. Russia's first volume was
// written in conflict with a bystander's (accepted with its key), which
// begins the thread volume:<id> between russia and the bystander; russia's
// second volume conflicts with nothing. Coalition may read both volumes
// (reduced: without the conflicts russia accepted), but posting into
// either's thread must be refused alike, or the refusal tells it which of
// russia's volumes is in conflict with another party's. The same holds
// for alert threads.
func TestHotlineReservedThreadsDoNotTellWhetherTheyBegan(t *testing.T) {
	e := newEnv(t, Options{})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)

	var hidden wireVolume
	e.mustDo("POST", "/v1/volumes", third.Token, circleVolume(35, 36, "bystander", nil), 201, &hidden)
	var conflicting wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35.01, 36.01, "russia-1",
		[]map[string]string{{"id": hidden.ID, "version": hidden.Version}}), 201, &conflicting)
	if len(conflicting.Conflicts) != 1 {
		t.Fatalf("russia's volume conflicts with %+v, want the bystander's", conflicting.Conflicts)
	}
	var quiet wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(10, 10, "russia-2", nil), 201, &quiet)

	probe := func(thread string) (int, string) {
		t.Helper()
		code, b, _ := e.do("POST", "/v1/hotline/messages", e.tokens["coalition"],
			map[string]any{"to": []string{"russia"}, "kind": "notice", "thread": thread, "text": "probe"})
		return code, string(problemType(t, b))
	}
	c1, p1 := probe("volume:" + conflicting.ID)
	c2, p2 := probe("volume:" + quiet.ID)
	if c1 != c2 || p1 != p2 || c1 < 400 || c1 >= 500 {
		t.Errorf("posting into the thread of russia's volume in conflict: %d %s; of its volume in none: %d %s", c1, p1, c2, p2)
	}

	// Russia and the bystander are members: they still post there.
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"],
		map[string]any{"to": []string{"bystander"}, "kind": "notice", "thread": "volume:" + conflicting.ID, "text": "ok"}, 201, nil)
	e.mustDo("POST", "/v1/hotline/messages", third.Token,
		map[string]any{"to": []string{"russia"}, "kind": "notice", "thread": "volume:" + conflicting.ID, "text": "ok"}, 201, nil)
	// And russia still starts the thread of its own volume.
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"],
		map[string]any{"to": []string{"coalition"}, "kind": "notice", "thread": "volume:" + quiet.ID, "text": "mine"}, 201, nil)
}

func problemType(t *testing.T, b []byte) string {
	t.Helper()
	var p struct {
		Type  string `json:"type"`
		Field string `json:"field"`
	}
	_ = json.Unmarshal(b, &p)
	return p.Type + " field=" + p.Field
}

// TestAlertItemIsPostedAtTheServersTime: reports may be timed up to 60 s
// behind the server's clock (and 10 s ahead). The hotline item of the
// alert they raise is posted when the server posts it: created then, its
// acknowledgment deadline counted from then (not already passed when it
// is posted, nor moved by the reporting party's clock), so that it does
// not escalate before anyone could acknowledge it, and a client that
// lists the messages created since the last one it saw misses none.
func TestAlertItemIsPostedAtTheServersTime(t *testing.T) {
	for _, skew := range []time.Duration{-25 * time.Second, 9 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			e := newEnv(t, Options{})
			before := time.Now()
			at := before.Add(skew)
			e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RF-1", 35.0, 36.1, 6000, -200, at)}}, 202, nil)
			e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-1", 35.0, 35.88, 6000, 200, at)}}, 202, nil)
			after := time.Now()
			// 10 s later, well within the 30 s to acknowledge a warning.
			e.advance(10 * time.Second)
			e.svc.Tick(context.Background())
			var list struct {
				Messages []struct {
					Kind, State, Level string
					Created            time.Time
					Deadline           time.Time
					Escalations        int
				}
			}
			e.mustDo("GET", "/v1/hotline/messages", e.tokens["coalition"], nil, 200, &list)
			if len(list.Messages) != 1 || list.Messages[0].Kind != "alert" {
				t.Fatalf("items %+v", list.Messages)
			}
			m := list.Messages[0]
			if m.Created.Before(before) || m.Created.After(after) {
				t.Errorf("the item was created at %s, posted between %s and %s", m.Created, before, after)
			}
			if m.State != "open" || m.Escalations != 0 {
				t.Errorf("the item is %s (%d escalations) at once; deadline %s", m.State, m.Escalations, m.Deadline)
			}
		})
	}
}

// TestHotlineRulesReferenceMustConcernTheSender: a party's message may
// refer to a proposal of the rules only when it was asked to answer it (it
// got the proposal's item), as for an alert; a version that is no
// proposal, or not a version at all, is refused naming the field, and
// nothing is posted.
func TestHotlineRulesReferenceMustConcernTheSender(t *testing.T) {
	e := newEnv(t, Options{})
	post := func(ref map[string]any, thread string) (int, string) {
		t.Helper()
		in := map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "about the rules", "ref": ref}
		if thread != "" {
			in["thread"] = thread
		}
		code, b, _ := e.do("POST", "/v1/hotline/messages", e.tokens["coalition"], in)
		return code, string(b)
	}
	for _, ref := range []map[string]any{{"rules_version": -3}, {"rules_version": 99}} {
		if code, b := post(ref, "ops"); code != 400 || !strings.Contains(b, `"field":"ref.rules_version"`) {
			t.Errorf("ref %v: %d %s", ref, code, b)
		}
	}
	var list struct{ Messages []wireMessage }
	e.mustDo("GET", "/v1/hotline/messages", e.tokens["russia"], nil, 200, &list)
	if len(list.Messages) != 0 {
		t.Fatalf("refused messages were posted: %+v", list.Messages)
	}

	// A proposal asks both parties: each may refer to it, in its thread.
	var p struct{ Version int64 }
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"disclose_linger_s": 30}, 202, &p)
	var m wireMessage
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"],
		map[string]any{"to": []string{"russia"}, "kind": "request", "text": "accept?", "ref": map[string]any{"rules_version": p.Version}}, 201, &m)
	if m.Thread != "rules:"+strconv.FormatInt(p.Version, 10) {
		t.Errorf("thread %q", m.Thread)
	}
}
