package api

import (
	"strconv"
	"testing"
)

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
	// Two proposals of the rules, one to accept and one to reject; the
	// observer never answers, so both stay open until answered.
	for _, name := range []string{"accept", "reject"} {
		var p struct{ Version int64 }
		e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"lookahead_s": 240, "levels": []any{
			map[string]any{"name": "advisory", "max_time_to_los_s": 240}, map[string]any{"name": "warning", "max_time_to_los_s": 60}}}, 202, &p)
		f.extra[name] = strconv.FormatInt(p.Version, 10)
	}
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
		{name: "rules proposals", method: "GET", path: "/v1/rules/proposals", owner: "any", ownerStatus: 200, otherStatus: 200},
		{name: "accept rules", method: "POST", path: "/v1/rules/" + f.extra["accept"] + "/accept", owner: "any", ownerStatus: 200, otherStatus: 200},
		// The first rejection closes the proposal: the second answer is
		// a conflict.
		{name: "reject rules", method: "POST", path: "/v1/rules/" + f.extra["reject"] + "/reject", body: func() any {
			return map[string]any{"reason": "not now"}
		}, owner: "any", ownerStatus: 409, otherStatus: 200},
	}
}
