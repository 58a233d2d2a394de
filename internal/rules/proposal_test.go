package rules

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestDiffNamesEachChangedField(t *testing.T) {
	a := Default()
	b := a
	b.Version = 9
	b.LookaheadS = 240
	b.PriorityMax = map[string]int{"coalition": 2}
	b.Levels = append([]Level(nil), a.Levels...)
	b.Levels[0].MaxTimeToLoSS = 240
	cs, err := Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.Field+" "+string(c.Old)+" "+string(c.New))
	}
	want := []string{
		"lookahead_s 300 240",
		`levels [{"name":"advisory","max_time_to_los_s":300},{"name":"caution","max_time_to_los_s":120},{"name":"warning","max_time_to_los_s":60}] [{"name":"advisory","max_time_to_los_s":240},{"name":"caution","max_time_to_los_s":120},{"name":"warning","max_time_to_los_s":60}]`,
		`priority_max null {"coalition":2}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff:\n%q\nwant\n%q", got, want)
	}
	// And back: a field the new rules leave out is a change to null.
	cs, _ = Diff(b, a)
	if len(cs) != 3 || cs[len(cs)-1].Field != "priority_max" || string(cs[len(cs)-1].New) != "null" {
		t.Errorf("Diff back: %+v", cs)
	}
}

func TestProposalLifecycle(t *testing.T) {
	base := Default()
	r := base
	r.DiscloseLingerS = 30
	p, err := Propose(2, base, r, "operator", t0)
	if err != nil || p.State != ProposalOpen || len(p.Changes) != 1 || p.Rules.Version != 2 {
		t.Fatalf("Propose: %+v %v", p, err)
	}
	asked := []string{"a", "b"}
	if p.Settle(asked, 1, t0) || !slices.Equal(p.WaitingFor, asked) {
		t.Fatalf("settled with no answer: %+v", p)
	}
	if _, err := p.Answer("operator", true, "", asked, t0); !errors.Is(err, ErrNotAsked) {
		t.Errorf("the operator answering: %v", err)
	}
	if ch, err := p.Answer("a", true, "", asked, t0); !ch || err != nil {
		t.Fatalf("a accepts: %v %v", ch, err)
	}
	if ch, err := p.Answer("a", true, "", asked, t0); ch || err != nil {
		t.Errorf("a accepts again: %v %v", ch, err)
	}
	if _, err := p.Answer("a", false, "no", asked, t0); !errors.Is(err, ErrAnswered) {
		t.Errorf("a rejects after accepting: %v", err)
	}
	if p.Settle(asked, 1, t0) || !slices.Equal(p.WaitingFor, []string{"b"}) || !slices.Equal(p.AcceptedBy, []string{"a"}) {
		t.Fatalf("after a: %+v", p)
	}
	// b is revoked: only a is asked, and a accepted.
	if !p.Settle([]string{"a"}, 1, t0) || p.State != ProposalActive || p.Closed == nil {
		t.Fatalf("after b was revoked: %+v", p)
	}
	if _, err := p.Answer("b", true, "", asked, t0); !errors.Is(err, ErrProposalClosed) {
		t.Errorf("answering a closed proposal: %v", err)
	}

	q, _ := Propose(3, base, r, "operator", t0)
	_, _ = q.Answer("b", false, "too soon", asked, t0)
	if !q.Settle(asked, 1, t0) || q.State != ProposalRejected {
		t.Errorf("a rejection: %+v", q)
	}
	s, _ := Propose(4, base, r, "operator", t0)
	_, _ = s.Answer("a", true, "", asked, t0)
	_, _ = s.Answer("b", true, "", asked, t0)
	if !s.Settle(asked, 2, t0) || s.State != ProposalSuperseded {
		t.Errorf("accepted against rules no longer in force: %+v", s)
	}
}

func TestAmend(t *testing.T) {
	base := Default()
	base.PriorityMax = map[string]int{"a": 3}
	got, err := Amend(base, map[string]json.RawMessage{"disclose_within_m": json.RawMessage("1000"), "priority_max": json.RawMessage(`{"b":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got.DiscloseWithinM != 1000 || got.HorizontalSepM != base.HorizontalSepM || len(got.PriorityMax) != 1 || got.PriorityMax["b"] != 1 {
		t.Errorf("Amend: %+v", got)
	}
	if base.PriorityMax["a"] != 3 || len(base.PriorityMax) != 1 {
		t.Errorf("Amend changed its base: %+v", base.PriorityMax)
	}
	for body, field := range map[string]string{`{"lookahead":1}`: "lookahead", `{"lookahead_s":"x"}`: "lookahead_s",
		`{"horizontal_sep_m":1e309}`: "horizontal_sep_m", `{"max_vertices":1e3}`: "max_vertices"} {
		var m map[string]json.RawMessage
		_ = json.Unmarshal([]byte(body), &m)
		var fe *fielderr.Error
		if _, err := Amend(base, m); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("Amend(%s): %v", body, err)
		}
	}
}

// A number beyond float64 (1e309: JSON has no NaN or infinity, so this is
// how one is sent) or not whole for an integer is named as out of range,
// not as of the wrong type, which a party reading the refusal took for a
// string where a number belonged.
func TestAmendSaysANumberIsOutOfRange(t *testing.T) {
	for body, c := range map[string]struct{ field, msg string }{
		`{"horizontal_sep_m":1e309}`:  {"horizontal_sep_m", "1e309 is beyond the largest number"},
		`{"vertical_sep_m":-1e309}`:   {"vertical_sep_m", "-1e309 is beyond the largest number"},
		`{"max_vertices":1.5}`:        {"max_vertices", "1.5 is not a whole number"},
		`{"max_aircraft":1e20}`:       {"max_aircraft", "1e20 is not a whole number"},
		`{"horizontal_sep_m":"5000"}`: {"horizontal_sep_m", "wrong type: expected float64"},
	} {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		var fe *fielderr.Error
		if _, err := Amend(Default(), m); !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("Amend(%s): %v, want %s named with %q", body, err, c.field, c.msg)
		}
	}
}
