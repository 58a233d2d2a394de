package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
)

// restart stops the service and its HTTP server and starts new ones on the
// same store, as a restart of the process would; the tokens stay valid.
func (e *env) restart(opt Options) {
	e.t.Helper()
	e.svc.EndStreams()
	e.srv.Close()
	if err := e.svc.Close(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	svc, err := service.New(context.Background(), service.Config{Store: e.st, Now: func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }})
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
	e.srv = httptest.NewServer(NewHandler(svc, opt))
	e.t.Cleanup(func() {
		svc.EndStreams()
		e.srv.Close()
		_ = svc.Close(context.Background())
	})
}

func (e *env) addParty(name string) string {
	e.t.Helper()
	var out struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": name}, 201, &out)
	e.tokens[name] = out.Token
	return out.Token
}

func (e *env) rulesInForce() rules.Rules {
	e.t.Helper()
	var r rules.Rules
	e.mustDo("GET", "/v1/rules", e.tokens["coalition"], nil, 200, &r)
	return r
}

func (e *env) proposals(token string) []rules.Proposal {
	e.t.Helper()
	var out struct{ Proposals []rules.Proposal }
	e.mustDo("GET", "/v1/rules/proposals", token, nil, 200, &out)
	return out.Proposals
}

func answerPath(version int64, verb string) string {
	return "/v1/rules/" + strconv.FormatInt(version, 10) + "/" + verb
}

// rulesItem returns the party's hotline item about the proposal.
func (e *env) rulesItem(party string, version int64) (map[string]any, bool) {
	e.t.Helper()
	var out struct{ Messages []map[string]any }
	e.mustDo("GET", "/v1/hotline/messages?thread=rules:"+strconv.FormatInt(version, 10), e.tokens[party], nil, 200, &out)
	for _, m := range out.Messages {
		if m["kind"] == "rules_proposal" {
			return m, true
		}
	}
	return nil, false
}

// TestRulesByAgreement walks proposals through acceptance (with a restart
// of the server while one waits), rejection, a party created while one is
// open, and the revocation of the last party a proposal waited for.
func TestRulesByAgreement(t *testing.T) {
	e := newEnv(t, Options{})
	sc := e.openStream(e.tokens["coalition"], "")

	// 1. A proposal: nothing changes until every party accepted.
	var p rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"disclose_within_m": 50_000, "volume_visibility": "need_to_know"}, 202, &p)
	if p.Version != 2 || p.State != rules.ProposalOpen || len(p.AcceptedBy) != 0 || !slices.Equal(p.WaitingFor, []string{"coalition", "russia"}) {
		t.Fatalf("proposal %+v", p)
	}
	fields := []string{}
	for _, c := range p.Changes {
		fields = append(fields, c.Field+":"+string(c.Old)+"->"+string(c.New))
	}
	if strings.Join(fields, ",") != `disclose_within_m:92600->50000,volume_visibility:"all"->"need_to_know"` {
		t.Errorf("changes %v", fields)
	}
	if r := e.rulesInForce(); r.Version != 1 || r.DiscloseWithinM != 92_600 {
		t.Fatalf("a proposal changed the rules in force: %+v", r)
	}
	if ev := sc.next(t); ev.Kind != "rules_proposed" {
		t.Fatalf("first event %s", ev.Kind)
	}
	item, ok := e.rulesItem("coalition", 2)
	if !ok || item["state"] != "open" || item["deadline"] == nil || !strings.Contains(item["text"].(string), "disclose_within_m 92600 -> 50000") {
		t.Fatalf("coalition's hotline item: %v", item)
	}
	if ps := e.proposals(e.tokens["russia"]); len(ps) != 1 || ps[0].Version != 2 {
		t.Fatalf("open proposals %+v", ps)
	}
	// The item is acknowledged by the answer, not plainly.
	if code, b, _ := e.do("POST", "/v1/hotline/messages/"+item["id"].(string)+"/ack", e.tokens["coalition"], map[string]any{}); code != 409 || !strings.Contains(string(b), "answer-required") {
		t.Errorf("a plain acknowledgment of the unanswered proposal's item: %d %s", code, b)
	}
	// The operator proposes; it does not answer.
	if code, b, _ := e.do("POST", answerPath(2, "accept"), e.operator, e.acceptBody(2)); code != 403 {
		t.Errorf("the operator accepting: %d %s", code, b)
	}
	e.mustDo("POST", answerPath(2, "accept"), e.tokens["coalition"], e.acceptBody(2), 200, &p)
	if !slices.Equal(p.AcceptedBy, []string{"coalition"}) || !slices.Equal(p.WaitingFor, []string{"russia"}) || p.State != rules.ProposalOpen {
		t.Fatalf("after coalition accepted: %+v", p)
	}
	// Accepting twice changes nothing; rejecting after accepting is refused.
	e.mustDo("POST", answerPath(2, "accept"), e.tokens["coalition"], e.acceptBody(2), 200, nil)
	if code, _, _ := e.do("POST", answerPath(2, "reject"), e.tokens["coalition"], map[string]any{"reason": "changed my mind"}); code != 409 {
		t.Errorf("rejecting after accepting: %d, want 409", code)
	}
	if item, _ := e.rulesItem("coalition", 2); !ackedBy(item, "coalition") {
		t.Errorf("accepting did not acknowledge coalition's item: %v", item)
	}

	// 2. The server restarts while the proposal waits for russia.
	sc.close()
	e.restart(Options{})
	if ps := e.proposals(e.tokens["russia"]); len(ps) != 1 || !slices.Equal(ps[0].AcceptedBy, []string{"coalition"}) {
		t.Fatalf("after the restart: %+v", ps)
	}
	sr := e.openStream(e.tokens["russia"], "")
	for ev := sr.next(t); ev.Kind != "rules_answered"; ev = sr.next(t) {
	}
	e.mustDo("POST", answerPath(2, "accept"), e.tokens["russia"], e.acceptBody(2), 200, &p)
	if p.State != rules.ProposalActive || p.Closed == nil {
		t.Fatalf("after every party accepted: %+v", p)
	}
	if r := e.rulesInForce(); r.Version != 2 || r.DiscloseWithinM != 50_000 || r.VolumeVisibility != rules.VolumesNeedToKnow {
		t.Fatalf("rules in force %+v", r)
	}
	var kinds []string
	for len(kinds) == 0 || kinds[len(kinds)-1] != "rules_changed" {
		kinds = append(kinds, sr.next(t).Kind)
	}
	if !slices.Contains(kinds, "rules_answered") {
		t.Errorf("events of the last acceptance: %v", kinds)
	}
	if ps := e.proposals(e.tokens["russia"]); len(ps) != 0 {
		t.Errorf("open proposals after activation: %+v", ps)
	}

	// 3. One rejection closes a proposal; its reason is told.
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"lookahead_s": 200, "levels": []any{
		map[string]any{"name": "advisory", "max_time_to_los_s": 200}, map[string]any{"name": "warning", "max_time_to_los_s": 60}}}, 202, &p)
	if p.Version != 3 {
		t.Fatalf("second proposal is version %d", p.Version)
	}
	e.mustDo("POST", answerPath(3, "reject"), e.tokens["russia"], map[string]any{"reason": "too short for our tankers"}, 200, &p)
	if p.State != rules.ProposalRejected || len(p.Answers) != 1 || p.Answers[0].Reason != "too short for our tankers" {
		t.Fatalf("after a rejection: %+v", p)
	}
	if code, _, _ := e.do("POST", answerPath(3, "accept"), e.tokens["coalition"], e.acceptBody(3)); code != 409 {
		t.Errorf("accepting a rejected proposal: %d, want 409", code)
	}
	if r := e.rulesInForce(); r.Version != 2 {
		t.Fatalf("a rejected proposal came into force: %+v", r)
	}

	// 4. A party created while a proposal is open must answer it too; it
	// joined under the rules in force.
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"disclose_linger_s": 30}, 202, &p)
	e.mustDo("POST", answerPath(p.Version, "accept"), e.tokens["coalition"], e.acceptBody(p.Version), 200, nil)
	e.addParty("drones")
	e.mustDo("POST", answerPath(p.Version, "accept"), e.tokens["russia"], e.acceptBody(p.Version), 200, &p)
	if p.State != rules.ProposalOpen || !slices.Equal(p.WaitingFor, []string{"drones"}) {
		t.Fatalf("with a newcomer: %+v", p)
	}
	if _, ok := e.rulesItem("drones", p.Version); !ok {
		t.Errorf("the newcomer got no hotline item about the open proposal")
	}

	// 5. Revoking the last party it waited for brings it into force.
	e.mustDo("POST", "/v1/parties/drones/revoke", e.operator, nil, 200, nil)
	if r := e.rulesInForce(); r.Version != p.Version || r.DiscloseLingerS != 30 {
		t.Fatalf("after revoking the party it waited for: rules %+v", r)
	}

	// Two open proposals: the first in force supersedes the other.
	var a, b rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"disclose_linger_s": 20}, 202, &a)
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"disclose_linger_s": 10}, 202, &b)
	for _, party := range []string{"coalition", "russia"} {
		e.mustDo("POST", answerPath(b.Version, "accept"), e.tokens[party], e.acceptBody(b.Version), 200, nil)
	}
	if code, body, _ := e.do("POST", answerPath(a.Version, "accept"), e.tokens["coalition"], e.acceptBody(a.Version)); code != 409 || !strings.Contains(string(body), "closed") {
		t.Errorf("accepting a superseded proposal: %d %s", code, body)
	}
	if r := e.rulesInForce(); r.Version != b.Version || r.DiscloseLingerS != 10 {
		t.Fatalf("rules %+v, want version %d", r, b.Version)
	}

	// Every step is in the record.
	audit := string(e.mustDo("GET", "/v1/audit", e.operator, nil, 200, nil))
	for _, kind := range []string{"rules_proposed", "rules_accepted", "rules_rejected", "rules_changed", "rules_proposal_closed"} {
		if !strings.Contains(audit, `"kind":"`+kind+`"`) {
			t.Errorf("the audit log has no %s record", kind)
		}
	}

	// Bad requests name what is wrong and change nothing.
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		field        string
	}{
		{"PUT", "/v1/rules", map[string]any{"disclose_within_m": -5}, 400, "disclose_within_m"},
		{"PUT", "/v1/rules", map[string]any{"volume_visibility": "everyone"}, 400, "volume_visibility"},
		{"PUT", "/v1/rules", map[string]any{"levels": []any{map[string]any{"name": "advisory", "max_time_to_los_s": 200},
			map[string]any{"name": "warning", "max_time_to_los_s": 1e-300}}}, 400, "levels[1].max_time_to_los_s"},
		{"PUT", "/v1/rules", map[string]any{"disclose_withn_m": 5}, 400, "disclose_withn_m"},
		// Figures above zero that mean nothing, and a number beyond float64.
		{"PUT", "/v1/rules", map[string]any{"horizontal_sep_m": 1e-300}, 400, "horizontal_sep_m"},
		{"PUT", "/v1/rules", map[string]any{"performance": []any{map[string]any{"class": "manned", "min_ground_speed_mps": 5, "max_ground_speed_mps": 360,
			"min_vertical_speed_mps": -30, "max_vertical_speed_mps": 30, "min_alt_m": 30, "max_alt_m": 15000, "alt_step_m": 0.001,
			"turn_rate_deg_per_s": 3, "vertical_rate_mps": 7, "max_climb_m": 0}}}, 400, "performance[0].alt_step_m"},
		{"PUT", "/v1/rules", `{"vertical_sep_m": 1e309}`, 400, "vertical_sep_m"},
		{"PUT", "/v1/rules", "[]", 400, ""},
		{"POST", "/v1/rules/x/accept", nil, 400, "version"},
		{"POST", "/v1/rules/999/accept", map[string]any{"rules_sha256": strings.Repeat("0", 64)}, 404, ""},
		{"POST", answerPath(b.Version, "reject"), map[string]any{"reason": "bad\u0007bell"}, 400, "reason"},
	} {
		tok := e.tokens["coalition"]
		if c.method == "PUT" {
			tok = e.operator
		}
		code, body, _ := e.do(c.method, c.path, tok, c.body)
		var pr Problem
		_ = json.Unmarshal(body, &pr)
		if code != c.status || pr.Field != c.field {
			t.Errorf("%s %s %v: %d %s", c.method, c.path, c.body, code, body)
		}
	}
	if r := e.rulesInForce(); r.Version != b.Version {
		t.Errorf("a refused request changed the rules: version %d", r.Version)
	}
}

func ackedBy(m map[string]any, party string) bool {
	acks, _ := m["acks"].([]any)
	for _, a := range acks {
		if am, ok := a.(map[string]any); ok && am["party"] == party {
			return true
		}
	}
	return false
}

// A proposal's hotline item escalates like any other when a party lets
// its deadline pass without answering.
func TestRulesProposalEscalates(t *testing.T) {
	e := newEnv(t, Options{})
	var p rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"disclose_linger_s": 30}, 202, &p)
	e.mustDo("POST", answerPath(p.Version, "accept"), e.tokens["coalition"], e.acceptBody(p.Version), 200, nil)
	e.advance(rules.Default().AckDeadline("") + time.Second)
	e.svc.Tick(context.Background())
	for party, want := range map[string]string{"russia": "escalated"} {
		item, ok := e.rulesItem(party, p.Version)
		if !ok || item["state"] != want {
			t.Errorf("%s's item after the deadline: %v", party, item)
		}
	}
	item, _ := e.rulesItem("coalition", p.Version)
	if !ackedBy(item, "coalition") {
		t.Errorf("coalition answered, yet its acknowledgment is missing: %v", item)
	}
	if code, _, _ := e.do("GET", "/v1/rules/proposals", e.tokens["coalition"], nil); code != http.StatusOK {
		t.Fatal(code)
	}
}

// TestActivationAnswerSaysHowManyFindingsWait: the answer of the
// acceptance that brought rules into force carries Findings-Pending, the
// findings its request left to the periodic job; a proposal still open
// does not.
func TestActivationAnswerSaysHowManyFindingsWait(t *testing.T) {
	e := newEnv(t, Options{})
	// Findings queued that cannot be announced (their batch unreadable):
	// they wait, counted, whatever the request announces.
	if err := e.st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.PutMeta("rules/findings/0", []byte("{not json")); err != nil {
			return err
		}
		return tx.PutMeta("rules/findings", []byte(`{"head":0,"tail":1,"findings":9,"by_party":{"russia":7,"coalition":2}}`))
	}); err != nil {
		t.Fatal(err)
	}
	var p rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"ack_deadline_s": 100}, 202, &p)
	path := "/v1/rules/" + strconv.FormatInt(p.Version, 10) + "/accept"
	status, _, h := e.do("POST", path, e.tokens["coalition"], e.acceptBody(p.Version))
	if status != 200 || h.Get(FindingsPendingHeader) != "" {
		t.Fatalf("the first acceptance: %d, %s %q; want 200 without the header (nothing in force)", status, FindingsPendingHeader, h.Get(FindingsPendingHeader))
	}
	status, body, h := e.do("POST", path, e.tokens["russia"], e.acceptBody(p.Version))
	if status != 200 || h.Get(FindingsPendingHeader) != "7" {
		t.Fatalf("the acceptance that brought the rules into force: %d %s, %s %q; want 200 with 7", status, body, FindingsPendingHeader, h.Get(FindingsPendingHeader))
	}
}

// TestFindingsPendingCountsOnlyTheCallersFindings: Findings-Pending told
// the party whose acceptance brought rules into force how many findings
// wait of every party, its own and the others' (volumes of theirs that
// break the rules, pairs of theirs that conflict), which it hears of by
// no event. It counts the findings that concern the caller.
func TestFindingsPendingCountsOnlyTheCallersFindings(t *testing.T) {
	e := newEnv(t, Options{})
	// Volumes of two hours, far apart: each breaks a one-hour maximum,
	// one of coalition, three of russia.
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35.0, 30.0, "a", nil), 201, nil)
	for i := range 3 {
		e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(40.0, 30.0+2*float64(i), "b", nil), 201, nil)
	}
	// A batch ahead of them that cannot be read holds them back: the
	// request announces none of them, and they wait.
	if err := e.st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.PutMeta("rules/findings/0", []byte("{not json")); err != nil {
			return err
		}
		return tx.PutMeta("rules/findings", []byte(`{"head":0,"tail":1,"findings":7}`))
	}); err != nil {
		t.Fatal(err)
	}
	var p rules.Proposal
	e.mustDo("PUT", "/v1/rules", e.operator, map[string]any{"max_window_s": 3600}, 202, &p)
	path := "/v1/rules/" + strconv.FormatInt(p.Version, 10) + "/accept"
	e.mustDo("POST", path, e.tokens["russia"], e.acceptBody(p.Version), 200, nil)
	status, body, h := e.do("POST", path, e.tokens["coalition"], e.acceptBody(p.Version))
	if status != 200 || h.Get(FindingsPendingHeader) != "1" {
		t.Fatalf("coalition's acceptance that brought the rules into force: %d %s, %s %q; want 200 with 1 (its own volume; russia's three and the unreadable batch's seven are none of its business)",
			status, body, FindingsPendingHeader, h.Get(FindingsPendingHeader))
	}
}

// acceptBody is the body of an acceptance of the proposal of version: the
// digest of its rules as the service holds them.
func (e *env) acceptBody(version int64) map[string]string {
	e.t.Helper()
	p, err := e.svc.RulesProposal(context.Background(), version)
	if err != nil {
		e.t.Fatalf("reading proposal %d: %v", version, err)
	}
	return map[string]string{"rules_sha256": p.RulesSHA256}
}
