package timeline

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
)

// fakeClock is a wall clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorded is what the scenario did, for the checks.
type recorded struct {
	svc        *service.Service
	alertID    string
	volumeA    volume.Volume // coalition's
	volumeB    volume.Volume // russia's, written second: its thread holds the conflict
	exportAll  []byte        // the operator's export
	exportRuss []byte        // russia's export

	rulesVersion int64
}

var t0 = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)

// runScenario runs a real service through what an investigation looks
// at: two parties declare conflicting volumes, their aircraft close head
// on (an alert raised, then a warning), the coalition acknowledges in time
// with a reply, russia does not and the items escalate, russia answers
// late, and the hotline carries a message about it; then the exports of
// the operator and of russia.
func runScenario(t testing.TB) *recorded {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &fakeClock{t: t0}
	svc, err := service.New(ctx, service.Config{Store: st, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(ctx) })
	rec := &recorded{svc: svc}
	for _, p := range []string{"coalition", "russia", "bystander"} {
		if _, err := svc.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	co := party.Principal{Party: "coalition"}
	ru := party.Principal{Party: "russia"}
	fl := func(n float64) float64 { return n * 100 * 0.3048 }
	rec.volumeA, err = svc.CreateVolume(ctx, co, volume.Input{
		Footprint: volume.Footprint{Type: "Circle", Center: []float64{36.6, 35.5}, RadiusM: 30000},
		AltLowerM: fl(220), AltUpperM: fl(240), Start: t0, End: t0.Add(2 * time.Hour), State: volume.Accepted,
		Details: json.RawMessage(`{"mission":"SECRET-COALITION"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec.volumeB, err = svc.CreateVolume(ctx, ru, volume.Input{
		Footprint: volume.Footprint{Type: "Polygon", Coordinates: [][][]float64{{{36.7, 35.3}, {37.2, 35.3}, {37.2, 35.8}, {36.7, 35.8}, {36.7, 35.3}}}},
		AltLowerM: fl(230), AltUpperM: fl(250), Start: t0.Add(time.Hour), End: t0.Add(3 * time.Hour), State: volume.Accepted,
		Key: []volume.KeyEntry{{ID: rec.volumeA.ID, Version: rec.volumeA.Version}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Head on at FL230, 60 km apart, closing at 440 m/s: advisory at
	// first, a warning once within a minute of losing separation.
	report := func(p party.Principal, id, cs string, lon, vel float64) {
		t.Helper()
		el := clk.now().Sub(t0).Seconds()
		_, _, err := svc.IngestPositions(ctx, p, []service.PositionReport{{Aircraft: id, Callsign: cs, Time: clk.now(),
			LatDeg: 35.5, LonDeg: lon + vel*el/(111320*0.8141), AltM: fl(230), VelEastMps: vel}})
		if err != nil {
			t.Fatal(err)
		}
	}
	fly := func(d time.Duration) {
		for range int(d / time.Second) {
			clk.advance(time.Second)
			report(co, "CO-9", "VIPER9", 36.4, 220)
			report(ru, "RF-1", "SU24-1", 37.06, -220)
			svc.Tick(ctx)
		}
	}
	report(co, "CO-9", "VIPER9", 36.4, 220)
	report(ru, "RF-1", "SU24-1", 37.06, -220)
	alerts := svc.Alerts(co)
	if len(alerts) != 1 {
		t.Fatalf("alerts %+v", alerts)
	}
	rec.alertID = alerts[0].ID
	fly(5 * time.Second)
	items, err := svc.ListMessages(ctx, co, "alert:"+rec.alertID, time.Time{}, 0)
	if err != nil || len(items) == 0 {
		t.Fatalf("the alert's items: %v %+v", err, items)
	}
	if _, err := svc.AckMessage(ctx, co, items[0].ID, "seen, VIPER9 turning"); err != nil {
		t.Fatal(err)
	}
	// Until the warning and past its deadline: russia does not answer.
	fly(90 * time.Second)
	items, err = svc.ListMessages(ctx, ru, "alert:"+rec.alertID, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range items {
		if _, err := svc.AckMessage(ctx, ru, m.ID, "late, sorry"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.PostMessage(ctx, ru, hotlineNotice("coalition", "alert:"+rec.alertID, "SU24-1 climbing to FL250 <script>alert(1)</script>")); err != nil {
		t.Fatal(err)
	}
	// Traffic russia may not read: hidden from its export.
	if _, err := svc.PostMessage(ctx, co, hotlineNotice("bystander", "", "tanker on station")); err != nil {
		t.Fatal(err)
	}
	// A proposal of the rules, which both parties accept.
	r := svc.Rules()
	r.DiscloseLingerS = 45
	prop, err := svc.ProposeRules(ctx, party.Principal{Party: party.OperatorName, Operator: true}, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []party.Principal{co, ru} {
		if _, err := svc.AnswerRules(ctx, p, prop.Version, true, "", prop.RulesSHA256); err != nil {
			t.Fatal(err)
		}
	}
	rec.rulesVersion = prop.Version
	var all, russ bytes.Buffer
	if err := svc.ExportAudit(ctx, party.Principal{Party: party.OperatorName, Operator: true}, &all, 1); err != nil {
		t.Fatal(err)
	}
	if err := svc.ExportAudit(ctx, ru, &russ, 1); err != nil {
		t.Fatal(err)
	}
	rec.exportAll, rec.exportRuss = all.Bytes(), russ.Bytes()
	return rec
}

func hotlineNotice(to, thread, text string) hotline.NewMessage {
	return hotline.NewMessage{To: []string{to}, Kind: hotline.KindNotice, Thread: thread, Text: text}
}
