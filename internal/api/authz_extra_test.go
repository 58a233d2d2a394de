package api

import (
	"strconv"
	"testing"
	"time"
)

// setupAuthzExtra adds hotline messages: one from coalition to russia
// (which russia may acknowledge and coalition may not) and one private
// note from coalition to a third party that russia must never see; and
// a conflict alert between the coalition and that third party.
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
	// An alert between the coalition and the observer, far from the rest.
	now := time.Now()
	e.mustDo("POST", "/v1/positions", obs.Token, map[string]any{"reports": []any{report("OB-1", 10.0, 10.2, 6000, -200, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-9", 10.0, 10.0, 6000, 200, now)}}, 202, nil)
	var alerts struct{ Alerts []struct{ ID, Kind string } }
	e.mustDo("GET", "/v1/alerts", obs.Token, nil, 200, &alerts)
	for _, a := range alerts.Alerts {
		if a.Kind == "conflict" {
			f.extra["alert"] = a.ID
		}
	}
	if f.extra["alert"] == "" {
		t.Fatalf("no conflict among the observer's alerts %+v", alerts)
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
		{name: "accept rules", method: "POST", path: "/v1/rules/" + f.extra["accept"] + "/accept", body: func() any { v, _ := strconv.ParseInt(f.extra["accept"], 10, 64); return e.acceptBody(v) }, owner: "any", ownerStatus: 200, otherStatus: 200},
		// The first rejection closes the proposal: the second answer is
		// a conflict.
		{name: "reject rules", method: "POST", path: "/v1/rules/" + f.extra["reject"] + "/reject", body: func() any {
			return map[string]any{"reason": "not now"}
		}, owner: "any", ownerStatus: 409, otherStatus: 200},
		{name: "alert resolution", method: "GET", path: "/v1/alerts/" + f.extra["alert"] + "/resolution", owner: "coalition", ownerStatus: 200, otherStatus: 404},
	}
}
