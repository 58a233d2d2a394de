package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

// TestUnreadableMessage: one stored hotline message whose body does not
// decode made every GET /v1/events?snapshot=1 of its parties and of the
// operator fail (the console could not open its stream), and the list of
// their messages. The stream opens with a snapshot of the other items and
// the list lists them; an acknowledgment of the message itself is a 500
// problem naming it.
func TestUnreadableMessage(t *testing.T) {
	e := newEnv(t, Options{})
	var bad, other wireMessage
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "request", "text": "climb?"}, 201, &bad)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "request", "text": "descend?"}, 201, &other)
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		rec, err := tx.GetMessage(bad.ID)
		if err != nil {
			return err
		}
		rec.Body = []byte("{not json")
		return tx.PutMessage(rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{e.tokens["coalition"], e.tokens["russia"], e.operator} {
		s, code := e.tryStreamPath(token, "/v1/events?snapshot=1", "")
		if code != http.StatusOK {
			t.Fatalf("the stream with a snapshot answered %d", code)
		}
		first := s.next(t)
		s.close()
		var snap wireSnapshot
		if first.Kind != "snapshot" || json.Unmarshal(first.Data.Data, &snap) != nil {
			t.Fatalf("the stream opened with %s %s", first.Kind, first.Data.Data)
		}
		if len(snap.Messages) != 1 || snap.Messages[0].ID != other.ID {
			t.Errorf("the snapshot holds %+v, want %s", snap.Messages, other.ID)
		}
	}
	var list struct{ Messages []wireMessage }
	e.mustDo("GET", "/v1/hotline/messages", e.tokens["coalition"], nil, 200, &list)
	if len(list.Messages) != 1 || list.Messages[0].ID != other.ID {
		t.Errorf("the list holds %+v, want %s", list.Messages, other.ID)
	}
	code, body, h := e.do("POST", "/v1/hotline/messages/"+bad.ID+"/ack", e.tokens["russia"], map[string]any{})
	if code != http.StatusInternalServerError || h.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), "message-unreadable") || !strings.Contains(string(body), bad.ID) {
		t.Errorf("acknowledging the unreadable message: %d %s %s, want a 500 problem naming it", code, h.Get("Content-Type"), body)
	}
	// Not to a party that may not read it: not found, as another's is.
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "ukraine"}, http.StatusCreated, &third)
	if code, body, _ := e.do("POST", "/v1/hotline/messages/"+bad.ID+"/ack", third.Token, map[string]any{}); code != http.StatusNotFound {
		t.Errorf("a third party acknowledging the unreadable message: %d %s, want 404", code, body)
	}
}

// TestStoreUpgradedProblem: a replica of an older version whose store a
// newer one migrated refuses every write (store.UpgradedError); the
// request is answered 503 store-upgraded naming both versions, not 500
// internal, so that a client or a balancer sends it to another replica.
func TestStoreUpgradedProblem(t *testing.T) {
	p := toProblem(fmt.Errorf("service: %w", &store.UpgradedError{Stored: 12, Known: 11}))
	if p.Status != http.StatusServiceUnavailable || p.Type != ProblemBase+"store-upgraded" ||
		!strings.Contains(p.Detail, "12") || !strings.Contains(p.Detail, "11") {
		t.Errorf("problem %+v, want 503 store-upgraded naming versions 12 and 11", p)
	}
}
