package timeline

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// step is what a test expects of a Step.
type step struct {
	who, kind string
	has       []string // in What or the notes
	late      bool
	aircraft  int // in the scene
}

// wantSteps checks that tl has the steps of want, each by whom and of what
// kind, holding what it has in its What or notes.
func wantSteps(t *testing.T, tl *Timeline, want []step) {
	t.Helper()
	if len(tl.Steps) != len(want) {
		for _, st := range tl.Steps {
			t.Logf("%s %s %s %v", st.Who, st.Kind, st.What, st.Notes)
		}
		t.Fatalf("%d steps, want %d", len(tl.Steps), len(want))
	}
	for i, w := range want {
		st := tl.Steps[i]
		text := st.What + " | " + strings.Join(st.Notes, " | ")
		if st.Who != w.who || st.Kind != w.kind {
			t.Errorf("step %d: %s %s: %s", i, st.Who, st.Kind, text)
		}
		for _, h := range w.has {
			if !strings.Contains(text, h) {
				t.Errorf("step %d lacks %q: %s", i, h, text)
			}
		}
	}
}

func TestTimelineOfAnEscalatedAlert(t *testing.T) {
	rec := runScenario(t)
	for _, c := range []struct {
		viewer string
		export []byte
	}{{"", rec.exportAll}, {"russia", rec.exportRuss}} {
		e, err := Read(bytes.NewReader(c.export))
		if err != nil {
			t.Fatal(err)
		}
		if e.Viewer != c.viewer {
			t.Errorf("viewer %q, want %q", e.Viewer, c.viewer)
		}
		if hidden := e.Hidden > 0; hidden != (c.viewer == "russia") {
			t.Errorf("%q: %d records hidden", c.viewer, e.Hidden)
		}
		// Every alert and thread, named for people.
		subjects := map[string]Subject{}
		for _, s := range e.Subjects() {
			subjects[s.Kind+" "+s.ID] = s
		}
		alert, ok := subjects["alert "+rec.alertID]
		if !ok || alert.Name != "Conflict VIPER9 (coalition) ↔ SU24-1 (russia)" || alert.Escalations != 1 || alert.Level != "warning" {
			t.Errorf("%q: the alert is %+v", c.viewer, alert)
		}
		vt := subjects["thread volume:"+rec.volumeB.ID]
		if vt.Name != "Volume conflict: russia FL230–FL250 07:00–09:00Z ↔ coalition FL220–FL240 06:00–08:00Z" {
			t.Errorf("%q: the volume thread is %+v", c.viewer, vt)
		}
		rt := subjects[fmt.Sprintf("thread rules:%d", rec.rulesVersion)]
		if rt.Name != fmt.Sprintf("Rules proposal v%d", rec.rulesVersion) || rt.Steps != 3 {
			t.Errorf("%q: the rules proposal's thread is %+v, want its item and the two answers", c.viewer, rt)
		}
		_, sees := subjects["thread "+bystanderThread(e)]
		if sees != (c.viewer == "") {
			t.Errorf("%q sees the coalition's thread with the bystander: %v", c.viewer, sees)
		}
		// With nothing chosen, the alert that escalated.
		picked, err := e.Pick("", "")
		if err != nil || picked.ID != rec.alertID {
			t.Fatalf("%q: picked %+v (%v)", c.viewer, picked, err)
		}
		if byThread, err := e.Pick("", "alert:"+rec.alertID); err != nil || byThread.Kind != "alert" || byThread.ID != rec.alertID {
			t.Errorf("%q: --thread alert:ID is %+v (%v)", c.viewer, byThread, err)
		}
		for _, bad := range [][2]string{{"nope", ""}, {"", "nope"}, {rec.alertID, "x"}} {
			if _, err := e.Pick(bad[0], bad[1]); err == nil {
				t.Errorf("%q: Pick(%q, %q) found something", c.viewer, bad[0], bad[1])
			}
		}

		tl := e.Build(picked)
		want := []step{
			{"deconflict", "alert", []string{"Alert raised at level caution", "VIPER9 (coalition) ↔ SU24-1 (russia)", "Loss of separation predicted in"}, false, 2},
			{"deconflict", "message", []string{"Alert item (caution) from deconflict to coalition, russia", "VIPER9", "To acknowledge by 06:02:00Z"}, false, 2},
			{"coalition", "ack", []string{"coalition acknowledged the caution alert item, in time", "Reply: “seen, VIPER9 turning”"}, false, 2},
			{"deconflict", "alert", []string{"Alert now at level warning"}, false, 2},
			{"deconflict", "message", []string{"Alert item (warning)", "in 30s"}, false, 2},
			{"deconflict", "escalation", []string{"ESCALATED (1st time): the warning alert item not acknowledged by coalition, russia before 06:01:26Z", "Next escalation at 06:03:26Z"}, false, 2},
			{"russia", "ack", []string{"russia acknowledged the caution alert item, in time", "Every recipient has now acknowledged it", "late, sorry"}, false, 2},
			{"russia", "ack", []string{"russia acknowledged the warning alert item, LATE (deadline 06:01:26Z)"}, true, 2},
			{"russia", "message", []string{"Notice from russia to coalition", "SU24-1 climbing to FL250"}, false, 2},
		}
		if len(tl.Steps) != len(want) {
			for _, st := range tl.Steps {
				t.Logf("%s %s %s", st.Who, st.Kind, st.What)
			}
			t.Fatalf("%q: %d steps, want %d", c.viewer, len(tl.Steps), len(want))
		}
		for i, w := range want {
			st := tl.Steps[i]
			text := st.What + " | " + strings.Join(st.Notes, " | ")
			if st.Who != w.who || st.Kind != w.kind || st.Late != w.late || len(st.Scene.Aircraft) != w.aircraft {
				t.Errorf("%q step %d: %s %s late %v with %d aircraft: %s", c.viewer, i, st.Who, st.Kind, st.Late, len(st.Scene.Aircraft), text)
			}
			for _, h := range w.has {
				if !strings.Contains(text, h) {
					t.Errorf("%q step %d lacks %q: %s", c.viewer, i, h, text)
				}
			}
			if i > 0 && st.Seq <= tl.Steps[i-1].Seq {
				t.Errorf("%q step %d: record %d after record %d", c.viewer, i, st.Seq, tl.Steps[i-1].Seq)
			}
		}
		// The map follows the aircraft: at the warning they have moved
		// from where the alert was raised, which is their trail.
		warn := tl.Steps[3].Scene
		for _, a := range warn.Aircraft {
			if len(a.Trail) != 1 || a.Trail[0] == a.At || a.Ahead == a.At {
				t.Errorf("%q: at the warning %s is at %v, trail %v, ahead %v", c.viewer, a.Name, a.At, a.Trail, a.Ahead)
			}
		}
		// Closing head on: the predicted positions at the closest approach
		// lie between the two aircraft, close together.
		if a, b := warn.Aircraft[0].Ahead, warn.Aircraft[1].Ahead; absf(a[0]-b[0]) > 0.01 || a[0] < warn.Aircraft[0].At[0] || a[0] > warn.Aircraft[1].At[0] {
			t.Errorf("%q: closest approach at %v and %v from %v and %v", c.viewer, a, b, warn.Aircraft[0].At, warn.Aircraft[1].At)
		}

		var page bytes.Buffer
		if err := tl.WriteHTML(&page, Verification{}, Source{File: "export.jsonl", Generated: t0}); err != nil {
			t.Fatal(err)
		}
		checkPage(t, page.String(), len(want))
		if !strings.Contains(page.String(), "Not verified") {
			t.Errorf("%q: an unverified page does not say so", c.viewer)
		}
		if strings.Contains(page.String(), "SECRET-COALITION") {
			t.Errorf("%q: the page shows a volume's private details", c.viewer)
		}
		if c.viewer == "russia" && !strings.Contains(page.String(), "records of the export are hidden from this viewer") {
			t.Errorf("the page of russia's export does not say that records are hidden from it")
		}
	}
}

func bystanderThread(e *Export) string {
	for th, ms := range e.threads {
		for _, m := range ms {
			if m.From == "coalition" && len(m.To) == 1 && m.To[0] == "bystander" {
				return th
			}
		}
	}
	return "(none)"
}

func absf(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// checkPage checks that a page stands alone (no script, nothing fetched
// from anywhere) and has one map per step, with what came from parties
// escaped.
func checkPage(t *testing.T, page string, steps int) {
	t.Helper()
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script`), regexp.MustCompile(`(?i)\s(src|href|action|srcset)=`),
		regexp.MustCompile(`(?i)url\(`), regexp.MustCompile(`(?i)@import`), regexp.MustCompile(`(?i)<(iframe|object|embed|link|img)`),
	} {
		if loc := bad.FindStringIndex(page); loc != nil {
			t.Errorf("the page is not self-contained: %q at %d", page[loc[0]:min(len(page), loc[1]+40)], loc[0])
		}
	}
	if n := strings.Count(page, `<li id="seq-`); n != steps {
		t.Errorf("%d steps in the page, want %d", n, steps)
	}
	if n := strings.Count(page, "<svg "); n != steps {
		t.Errorf("%d maps in the page, want one per step (%d)", n, steps)
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the text of a message is not in the page escaped")
	}
}

// TestTimelineOfFarPositions: an export edited to place its aircraft
// 1e300 degrees away, at a pole, or their closest approach 1e300 seconds
// ahead, still gives a page, with a map of what is on the earth: the map
// and its graticule once spanned every such point (the graticule was an
// endless loop of lines 10 degrees apart), and at a pole a degree of
// longitude had no width.
func TestTimelineOfFarPositions(t *testing.T) {
	rec := runScenario(t)
	for _, c := range []struct{ name, from, to string }{
		{"latitude", `"lat":35.5`, `"lat":1e300`},
		{"longitude", `"lon":36.4`, `"lon":-1e300`},
		{"pole", `"lat":35.5`, `"lat":90`},
		{"closest approach", `"t_cpa_s":`, `"t_cpa_s":1e300,"was":`},
	} {
		export := bytes.ReplaceAll(rec.exportAll, []byte(c.from), []byte(c.to))
		if bytes.Equal(export, rec.exportAll) {
			t.Fatalf("%s: %s is not in the export", c.name, c.from)
		}
		e, err := Read(bytes.NewReader(export))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		s, err := e.Pick(rec.alertID, "")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		tl := e.Build(s)
		var page bytes.Buffer
		if err := tl.WriteHTML(&page, Verification{}, Source{File: "edited.jsonl"}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n := strings.Count(page.String(), "<svg "); n != len(tl.Steps) {
			t.Errorf("%s: %d maps for %d steps", c.name, n, len(tl.Steps))
		}
		if lines := strings.Count(page.String(), `stroke="#c5d0d8"`); lines > 2*(maxGraticuleLines+1)*len(tl.Steps) {
			t.Errorf("%s: %d graticule lines", c.name, lines)
		}
	}
}

// TestTimelineShowsARescheduledDeadline: the server's clock steps a day
// ahead, an item is posted with its deadline counted from it, and the
// clock is corrected; the escalation job brings the deadline back
// (message_rescheduled). The thread's timeline shows that step, from when
// to when and why, between the posting and the escalation it led to: it
// showed nothing, and the item seemed to escalate a day before its
// deadline.
func TestTimelineShowsARescheduledDeadline(t *testing.T) {
	ctx := context.Background()
	svc, clk := newHotlineService(t, t0)
	clk.advance(24 * time.Hour) // the step forward
	m, err := svc.PostMessage(ctx, party.Principal{Party: "coalition"}, hotlineNotice("russia", "", "confirm your track"))
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(-24*time.Hour + time.Minute) // the correction
	svc.Tick(ctx)
	now := clk.now()
	clk.advance(time.Hour) // past the deadline brought back: it escalates
	svc.Tick(ctx)
	tl := threadTimeline(t, svc, "russia", m.Thread)
	want := []step{
		{"coalition", "message", []string{"Notice from coalition to russia", "confirm your track"}, false, 0},
		{"deconflict", "reschedule", []string{"Deadline brought back: the acknowledgment deadline of",
			"from " + m.Deadline.UTC().Format(time.RFC3339) + " to " + now.Add(svc.Rules().AckDeadline("")).UTC().Format(time.RFC3339),
			"Why: the deadline lay more than"}, false, 0},
		{"deconflict", "escalation", []string{"ESCALATED (1st time)"}, false, 0},
	}
	wantSteps(t, tl, want)
}

// TestTimelinePastMidnightCarriesDates: a thread that runs past midnight
// UTC names the day of every time that is not on the page's first day,
// in the steps, their notes and the summary, so that an escalation at
// 00:00:10Z is not read as earlier than the notice of 23:59:40Z.
func TestTimelinePastMidnightCarriesDates(t *testing.T) {
	ctx := context.Background()
	evening := time.Date(2026, 12, 7, 23, 59, 40, 0, time.UTC)
	svc, clk := newHotlineService(t, evening)
	m, err := svc.PostMessage(ctx, party.Principal{Party: "coalition"}, hotlineNotice("russia", "", "confirm your track"))
	if err != nil {
		t.Fatal(err)
	}
	if y, mo, d := m.Deadline.UTC().Date(); d == evening.Day() {
		t.Fatalf("the deadline %v is on %d-%d-%d: the test needs one past midnight", m.Deadline, y, mo, d)
	}
	clk.advance(m.Deadline.Sub(evening) + time.Second)
	svc.Tick(ctx)
	tl := threadTimeline(t, svc, "russia", m.Thread)
	deadline := m.Deadline.UTC()
	want := []step{
		{"coalition", "message", []string{"To acknowledge by " + deadline.Format("2006-01-02 15:04:05Z")}, false, 0},
		// Written on the next day: its own day's times need no date.
		{"deconflict", "escalation", []string{"before " + deadline.Format("15:04:05Z") + " |", "the notice of coalition sent 2026-12-07 23:59:40Z"}, false, 0},
	}
	if len(tl.Steps) != len(want) {
		t.Fatalf("%d steps, want %d", len(tl.Steps), len(want))
	}
	for i, w := range want {
		st := tl.Steps[i]
		text := st.What + " | " + strings.Join(st.Notes, " | ")
		for _, h := range w.has {
			if !strings.Contains(text, h) {
				t.Errorf("step %d lacks %q: %s", i, h, text)
			}
		}
	}
	var page bytes.Buffer
	if err := tl.WriteHTML(&page, Verification{}, Source{File: "x.jsonl", Generated: clk.now()}); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	escalated := tl.Steps[1].Time.Format("2006-01-02 15:04:05Z")
	for _, h := range []string{
		"Monday 7 December 2026 to Tuesday 8 December 2026",
		`<dt>From</dt><dd>23:59:40Z</dd>`,
		`<dt>To</dt><dd>` + escalated + `</dd>`,
		`">` + escalated + `</time>`,
	} {
		if !strings.Contains(html, h) {
			t.Errorf("the page lacks %q", h)
		}
	}
}

// newHotlineService is a service on a fresh store, on a clock starting at
// start, with the parties coalition and russia.
func newHotlineService(t *testing.T, start time.Time) (*service.Service, *fakeClock) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &fakeClock{t: start}
	svc, err := service.New(ctx, service.Config{Store: st, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(ctx) })
	for _, p := range []string{"coalition", "russia"} {
		if _, err := svc.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return svc, clk
}

// threadTimeline is the timeline of thread built from the audit export
// viewer may read.
func threadTimeline(t *testing.T, svc *service.Service, viewer, thread string) *Timeline {
	t.Helper()
	var export bytes.Buffer
	if err := svc.ExportAudit(context.Background(), party.Principal{Party: viewer}, &export, 1); err != nil {
		t.Fatal(err)
	}
	e, err := Read(&export)
	if err != nil {
		t.Fatal(err)
	}
	picked, err := e.Pick("", thread)
	if err != nil {
		t.Fatal(err)
	}
	return e.Build(picked)
}

// TestTimelineShowsASettledProposalItem: a proposal waits for coalition,
// russia and drones; coalition and russia accept and drones is revoked,
// which brings it into force; its item, waiting for drones alone, is
// settled then (message_settled). The thread's timeline shows that
// step, naming drones and why: it showed the two acceptances and nothing
// after, and the item seemed to wait for ever.
func TestTimelineShowsASettledProposalItem(t *testing.T) {
	ctx := context.Background()
	svc, clk := newHotlineService(t, t0)
	p := proposeToThree(t, svc)
	for _, name := range []string{"coalition", "russia"} {
		if _, err := svc.AnswerRules(ctx, party.Principal{Party: name}, p.Version, true, "", p.RulesSHA256); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.RevokeParty(ctx, party.Principal{Party: party.OperatorName, Operator: true}, "drones"); err != nil {
		t.Fatal(err)
	}
	clk.advance(svc.Rules().AckDeadline("") + time.Second)
	svc.Tick(ctx)
	tl := threadTimeline(t, svc, "coalition", hotline.RulesThread(p.Version))
	want := []step{
		{"deconflict", "message", nil, false, 0},
		{"coalition", "ack", []string{"coalition acknowledged"}, false, 0},
		{"russia", "ack", []string{"russia acknowledged"}, false, 0},
		{"deconflict", "settle", []string{"is acknowledged without drones (revoked)", "Why: the proposal of the rules version 2 came into force"}, false, 0},
	}
	wantSteps(t, tl, want)
}

// TestTimelineShowsARejectedProposalItemSettled: russia rejects a
// proposal that coalition and drones never answered; its item is settled
// at the rejection. The thread's timeline names the two it no longer
// waits for, and why, without calling them revoked: it read "without ,
// revoked" for a settlement that revoked no one.
func TestTimelineShowsARejectedProposalItemSettled(t *testing.T) {
	ctx := context.Background()
	svc, _ := newHotlineService(t, t0)
	p := proposeToThree(t, svc)
	if _, err := svc.AnswerRules(ctx, party.Principal{Party: "russia"}, p.Version, false, "no", ""); err != nil {
		t.Fatal(err)
	}
	tl := threadTimeline(t, svc, "coalition", hotline.RulesThread(p.Version))
	if len(tl.Steps) != 3 {
		for _, st := range tl.Steps {
			t.Logf("%s %s %s %v", st.Who, st.Kind, st.What, st.Notes)
		}
		t.Fatalf("%d steps, want 3 (message, russia's answer, settle)", len(tl.Steps))
	}
	st := tl.Steps[2]
	text := st.What + " | " + strings.Join(st.Notes, " | ")
	if st.Kind != "settle" || !strings.Contains(text, "is acknowledged without coalition, drones") || strings.Contains(text, "revoked") ||
		!strings.Contains(text, "Why: the proposal of the rules version 2 was rejected by russia") {
		t.Errorf("the settle step: %s %s", st.Kind, text)
	}
}

// proposeToThree adds the party drones and has the operator propose new
// rules (a time buffer of 45 s), which wait for coalition, russia and
// drones.
func proposeToThree(t *testing.T, svc *service.Service) rules.Proposal {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.CreateParty(ctx, "drones"); err != nil {
		t.Fatal(err)
	}
	r := svc.Rules()
	r.TimeBufferS = 45
	p, err := svc.ProposeRules(ctx, party.Principal{Party: party.OperatorName, Operator: true}, r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
