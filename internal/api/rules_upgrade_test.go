package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"golang.org/x/mod/sumdb/note"

	fnote "github.com/transparency-dev/formats/note"
)

// olderRules are rules an older version accepted and this one does not:
// an hour of lookahead (top level and the manned-manned entry) and of
// staleness, 10,000 vertices, a deadline of 1e-10 s ("above zero"), a
// level name with a zero-width space.
func olderRules() rules.Rules {
	r := rules.Default()
	r.Classes, r.Separation, r.Performance = nil, nil, nil
	r.LookaheadS, r.StaleAfterS = 3600, 3600
	r.MaxVertices = 10_000
	r.AckDeadlineS = 1e-10
	r.Levels[2].Name = "warn\u200bing"
	r.FillTable()
	r.Separation[0].LookaheadS = 3600
	return r
}

// syncBuffer is a log sink safe for the service's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRulesOfAnOlderVersionKeepEveryOperationWorking: a database written
// by an older version holds rules in force outside this version's bounds.
// The service starts, says so in its log, shows the rules as agreed with
// the figures it runs clamped, writes, changes and ends volumes under
// them (these failed with a 500 "internal" and the end job failed every
// tick), leaves the record as it is, explains why a proposal that keeps an
// out-of-bounds figure is refused, and adopts one within the bounds.
func TestRulesOfAnOlderVersionKeepEveryOperationWorking(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	older := olderRules()
	stored, err := json.Marshal(older)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(ctx, func(tx store.Tx) error {
		return tx.PutRules(store.RulesRecord{Version: 1, Created: time.Now().UTC(), Actor: "deconflict", Body: stored})
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	e := newEnvConfig(t, st, Options{}, func(c *service.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for _, want := range []string{"field=lookahead_s", "field=stale_after_s", "field=ack_deadline_s", "field=max_vertices", "field=separation[0].lookahead_s", "levels[2].name"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the start's log does not name %s:\n%s", want, logs.String())
		}
	}

	// As agreed, with what runs clamped.
	var shown struct {
		LookaheadS float64         `json:"lookahead_s"`
		Clamped    []rules.Clamped `json:"clamped"`
	}
	e.mustDo("GET", "/v1/rules", e.tokens["russia"], nil, 200, &shown)
	clamped := map[string]rules.Clamped{}
	for _, c := range shown.Clamped {
		clamped[c.Field] = c
	}
	if shown.LookaheadS != 3600 || clamped["lookahead_s"].InUse != 600 || clamped["ack_deadline_s"].InUse != 1 ||
		clamped["max_vertices"].InUse != 2000 || clamped["separation[0].lookahead_s"].InUse != 600 || clamped["stale_after_s"].InUse != 300 {
		t.Errorf("GET /v1/rules: lookahead_s %g, clamped %+v", shown.LookaheadS, shown.Clamped)
	}
	if rl := e.svc.Rules(); rl.LookaheadS != 600 || rl.AckDeadline("") != time.Second || rl.Levels[2].Name != "warn\u200bing" {
		t.Errorf("in use: lookahead %g s, deadline %v, level %q", rl.LookaheadS, rl.AckDeadline(""), rl.Levels[2].Name)
	}

	// Volumes: written, updated, changed and ended.
	var v wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35, 36, "cap", nil), 201, &v)
	upd := circleVolume(35, 36, "cap2", nil)
	upd["version"] = v.Version
	e.mustDo("PUT", "/v1/volumes/"+v.ID, e.tokens["coalition"], upd, 200, &v)
	e.mustDo("POST", "/v1/volumes/"+v.ID+"/state", e.tokens["coalition"], map[string]any{"state": "activated", "version": v.Version}, 200, &v)
	e.advance(2*time.Hour + rules.MaxTimeBuffer)
	e.svc.Tick(ctx)
	e.mustDo("GET", "/v1/volumes/"+v.ID, e.tokens["coalition"], nil, 200, &v)
	if v.State != "ended" {
		t.Errorf("the volume is %s past its end and buffer, want ended", v.State)
	}

	// A hotline item has the second the process runs with to be
	// acknowledged, not 1e-10 s (0 ns: escalated at every tick).
	var m struct{ Created, Deadline time.Time }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "hi"}, 201, &m)
	if got := m.Deadline.Sub(m.Created); got != time.Second {
		t.Errorf("a hotline item's deadline is %v after its creation, want 1s", got)
	}

	// A party and its witness: the proposal names the witness and leaves
	// the rest as agreed.
	_, plain, err := note.GenerateKey(nil, "navy-witness")
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := fnote.VKeyToCosignatureV1(plain)
	if err != nil {
		t.Fatal(err)
	}
	created, err := service.AddPartyWith(ctx, st, "operator", service.NewParty{Name: "navy",
		Witness: &rules.Witness{Party: "navy", URL: "https://witness.navy.example/", VKey: vkey}}, time.Now())
	if err != nil {
		t.Fatalf("a party with a witness under the older rules: %v", err)
	}
	e.tokens["navy"] = created.Token
	var items struct {
		Messages []struct {
			Thread            string
			Created, Deadline time.Time
		}
	}
	e.mustDo("GET", "/v1/hotline/messages", e.tokens["navy"], nil, 200, &items)
	if len(items.Messages) != 1 || items.Messages[0].Deadline.Sub(items.Messages[0].Created) != time.Second {
		t.Errorf("the witness proposal's hotline items to navy: %+v, want one with a deadline of 1s", items.Messages)
	}

	var rec store.RulesRecord
	readRecord := func() {
		t.Helper()
		err := st.View(ctx, func(tx store.Tx) error {
			var err error
			rec, err = tx.LatestRules()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	readRecord()
	if rec.Version != 1 || !bytes.Equal(rec.Body, stored) {
		t.Fatalf("the record changed: version %d %s", rec.Version, rec.Body)
	}

	// A proposal that leaves an out-of-bounds figure as agreed: refused,
	// naming it and why.
	code, body, _ := e.do("PUT", "/v1/rules", e.operator, map[string]any{"ack_deadline_s": 100})
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusBadRequest || p.Field != "lookahead_s" || !strings.Contains(p.Detail, "rules in force (version 1)") {
		t.Errorf("a proposal keeping lookahead_s 3600: %d %s", code, body)
	}

	// Within the bounds: adopted, nothing clamped any more.
	e.agreeRules(rules.Default(), e.tokens["navy"])
	shown.Clamped = nil
	e.mustDo("GET", "/v1/rules", e.tokens["russia"], nil, 200, &shown)
	if shown.LookaheadS != 300 || len(shown.Clamped) != 0 {
		t.Errorf("after the agreement: lookahead %g, clamped %+v", shown.LookaheadS, shown.Clamped)
	}
}
