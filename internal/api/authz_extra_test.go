package api

import "testing"

// setupAuthzExtra adds hotline messages: one from coalition to russia
// (which russia may acknowledge and coalition may not) and one private
// note from coalition to a third party that russia must never see.
func setupAuthzExtra(t *testing.T, e *env, f *authzFixture) {
	var obs struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "observer"}, 201, &obs)
	var m struct{ ID string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "request", "text": "please confirm"}, 201, &m)
	f.extra["msg"] = m.ID
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"observer"}, "kind": "notice", "text": "private-note-to-observer"}, 201, nil)
}

func authzExtraCases(e *env, f authzFixture) []matrixCase {
	private := []string{"private-note-to-observer"}
	return []matrixCase{
		{name: "post message", method: "POST", path: "/v1/hotline/messages", body: func() any {
			return map[string]any{"to": []string{"observer"}, "kind": "notice", "text": "hello"}
		}, owner: "any", ownerStatus: 201, otherStatus: 201},
		{name: "list messages", method: "GET", path: "/v1/hotline/messages", owner: "coalition", ownerStatus: 200, otherStatus: 200, forbid: private},
		{name: "ack as recipient", method: "POST", path: "/v1/hotline/messages/" + f.extra["msg"] + "/ack", body: func() any {
			return map[string]any{"reply": "confirmed"}
		}, owner: "russia", ownerStatus: 200, otherStatus: 403},
	}
}
