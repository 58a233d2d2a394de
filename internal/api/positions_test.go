package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/service"
)

// TestPositionsMissingNumbersAndDuplicates: a report without lat, lon or
// alt_m (or with null) is refused naming the field, not read as 0; a second
// report of the same aircraft at the same time in one batch is refused
// naming the first, and the count of accepted reports is what the engine
// applied.
func TestPositionsMissingNumbersAndDuplicates(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	without := func(aircraft, field string) map[string]any {
		r := report(aircraft, 35, 36, 6000, 100, now)
		delete(r, field)
		return r
	}
	nulled := report("N-1", 35, 36, 6000, 100, now)
	nulled["alt_m"] = nil
	reports := []any{
		report("OK-1", 35, 36, 6000, 100, now),
		without("NO-LAT", "lat"),
		without("NO-LON", "lon"),
		without("NO-ALT", "alt_m"),
		nulled,
		report("OK-1", 35.5, 36.5, 7000, 100, now), // same aircraft, same time
		report("OK-1", 35.1, 36, 6000, 100, now.Add(time.Second)),
	}
	wantField := map[int]string{1: "lat", 2: "lon", 3: "alt_m", 4: "alt_m", 5: "time"}
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": reports}, 202, &out)
	if out.Accepted != 2 || len(out.Rejected) != len(wantField) {
		t.Fatalf("answer %+v, want 2 accepted and %d rejected", out, len(wantField))
	}
	for _, r := range out.Rejected {
		prefix := fmt.Sprintf("reports[%d].%s:", r.Index, wantField[r.Index])
		if !strings.HasPrefix(r.Error, prefix) {
			t.Errorf("rejection %+v, want prefix %q", r, prefix)
		}
	}
	if dup := out.Rejected[len(out.Rejected)-1]; !strings.Contains(dup.Error, "reports[0]") {
		t.Errorf("the duplicate's rejection does not name the first report: %+v", dup)
	}
	// The track is the later report; nothing was read as 0, 0, 0 m.
	var tracks struct {
		Tracks []struct {
			Aircraft string
			Lat      float64
			AltM     float64 `json:"alt_m"`
		}
	}
	e.mustDo("GET", "/v1/tracks?bbox=-180,-90,180,90", e.tokens["coalition"], nil, 200, &tracks)
	if len(tracks.Tracks) != 1 || tracks.Tracks[0].Aircraft != "OK-1" || tracks.Tracks[0].Lat != 35.1 {
		t.Fatalf("tracks %+v, want OK-1 alone at its second report", tracks.Tracks)
	}
}

// TestPositionsRefusedByTheEngineRuleAtTheEdge: a report whose velocity
// components are each within bounds but whose speed is not is refused at
// the edge with the engine's rule, naming the fastest component, and the
// rest of the batch goes to the engine once: the count of reports the
// engine took equals the accepted ones (a refused report used to restart
// the batch, and the reports before it were processed again).
func TestPositionsRefusedByTheEngineRuleAtTheEdge(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC()
	const n = 1000
	bad := map[int]bool{300: true, 600: true, 900: true}
	reports := make([]any, n)
	for i := range reports {
		r := report(fmt.Sprintf("A%d", i), 30+float64(i%50)*0.2, 30+float64(i/50)*0.2, 6000, 200, now)
		if bad[i] {
			r["vel_east_mps"], r["vel_north_mps"], r["vel_up_mps"] = 2000.0, -2100.0, 2000.0
		}
		reports[i] = r
	}
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": reports}, 202, &out)
	if out.Accepted != n-len(bad) || len(out.Rejected) != len(bad) {
		t.Fatalf("accepted %d, rejected %+v", out.Accepted, out.Rejected)
	}
	for _, r := range out.Rejected {
		if !bad[r.Index] || !strings.HasPrefix(r.Error, fmt.Sprintf("reports[%d].vel_north_mps:", r.Index)) {
			t.Errorf("rejection %+v", r)
		}
	}
	metrics := e.metrics()
	if want := fmt.Sprintf("deconflict_position_reports_accepted_total %d\n", n-len(bad)); !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %q: reports were processed again", want)
	}
	if want := fmt.Sprintf("deconflict_position_reports_rejected_total %d\n", len(bad)); !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %q", want)
	}
}

// TestPositionsAltitudeSource: a report may say what its altitude is
// (alt_source geometric or barometric, as the ASTERIX feed does); the track
// keeps it; any other value is refused naming the field.
func TestPositionsAltitudeSource(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	geometric := report("GEO-1", 35, 36, 6000, 100, now)
	geometric["alt_source"] = "geometric"
	barometric := report("BARO-1", 35.2, 36, 6000, 100, now)
	barometric["alt_source"] = "barometric"
	wrong := report("WRONG-1", 35.4, 36, 6000, 100, now)
	wrong["alt_source"] = "radar"
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{geometric, barometric, wrong, report("NONE-1", 35.6, 36, 6000, 100, now)}}, 202, &out)
	if out.Accepted != 3 || len(out.Rejected) != 1 || !strings.HasPrefix(out.Rejected[0].Error, "reports[2].alt_source:") {
		t.Fatalf("answer %+v", out)
	}
	var tracks struct {
		Tracks []struct {
			Aircraft  string
			AltSource *string `json:"alt_source"`
		}
	}
	e.mustDo("GET", "/v1/tracks?bbox=-180,-90,180,90", e.tokens["coalition"], nil, 200, &tracks)
	got := map[string]string{}
	for _, tr := range tracks.Tracks {
		if tr.AltSource != nil {
			got[tr.Aircraft] = *tr.AltSource
		} else {
			got[tr.Aircraft] = "(absent)"
		}
	}
	if got["GEO-1"] != "geometric" || got["BARO-1"] != "barometric" || got["NONE-1"] != "(absent)" || len(got) != 3 {
		t.Fatalf("tracks %v", got)
	}
}

// TestPositionsClasses: a report may name its class; absent it is manned,
// a class the rules do not know is refused naming reports[i].class, and the
// track carries the class.
func TestPositionsClasses(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	drone := report("D-1", 35, 36, 120, 20, now)
	drone["class"] = "uas"
	glider := report("G-1", 35, 36.1, 900, 30, now)
	glider["class"] = "glider"
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("M-1", 35.2, 36, 3000, 100, now), drone, glider}}, 202, &out)
	if out.Accepted != 2 || len(out.Rejected) != 1 || out.Rejected[0].Index != 2 ||
		!strings.HasPrefix(out.Rejected[0].Error, `reports[2].class: unknown class "glider" (the rules know manned, uas)`) {
		t.Fatalf("answer %+v", out)
	}
	var tracks struct {
		Tracks []struct{ Aircraft, Class string }
	}
	e.mustDo("GET", "/v1/tracks", e.tokens["coalition"], nil, 200, &tracks)
	classes := map[string]string{}
	for _, tr := range tracks.Tracks {
		classes[tr.Aircraft] = tr.Class
	}
	if len(classes) != 2 || classes["M-1"] != "manned" || classes["D-1"] != "uas" {
		t.Fatalf("tracks %+v", tracks.Tracks)
	}
}

// A party has at most MaxAircraftPerParty live aircraft: a report that
// would start one more is rejected alone, naming the limit, while its live
// aircraft report on; an aircraft that goes stale makes room. 100,000
// made-up aircraft of one party held 284 MB, and nothing bounded them.
func TestPositionsBoundThePartysAircraft(t *testing.T) {
	e := newEnvConfig(t, openTestStore(t), Options{}, func(c *service.Config) { c.MaxAircraftPerParty = 3 })
	now := time.Now().UTC().Truncate(time.Millisecond)
	var out positionsAnswer
	batch := []any{report("A", 35, 36, 6000, 100, now), report("B", 35.1, 36, 6000, 100, now), report("C", 35.2, 36, 6000, 100, now), report("D", 35.3, 36, 6000, 100, now)}
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": batch}, 202, &out)
	if out.Accepted != 3 || len(out.Rejected) != 1 || out.Rejected[0].Index != 3 ||
		!strings.HasPrefix(out.Rejected[0].Error, "reports[3].aircraft:") || !strings.Contains(out.Rejected[0].Error, "3 live ones") {
		t.Fatalf("answer %+v, want D rejected naming the limit of 3", out)
	}
	// The live aircraft report on; a new one is refused; the other
	// party's are its own.
	later := now.Add(10 * time.Second)
	e.advance(10 * time.Second)
	batch = []any{report("E", 35, 36, 6000, 100, later), report("A", 35, 36.1, 6000, 100, later), report("B", 35.1, 36.1, 6000, 100, later)}
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": batch}, 202, &out)
	if out.Accepted != 2 || len(out.Rejected) != 1 || out.Rejected[0].Index != 0 {
		t.Fatalf("answer %+v, want E alone rejected", out)
	}
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("D", 36, 36, 6000, 100, later)}}, 202, &out)
	if out.Accepted != 1 {
		t.Fatalf("russia's aircraft: %+v", out)
	}
	if want := "deconflict_position_reports_over_aircraft_limit_total 2\n"; !strings.Contains(e.metrics(), want) {
		t.Errorf("metrics lack %q: the operator is not told that a party hits the limit", want)
	}
	// C goes stale (no report for stale_after_s): E is accepted.
	e.advance(25 * time.Second)
	e.svc.Tick(context.Background())
	latest := now.Add(35 * time.Second)
	batch = []any{report("A", 35, 36.2, 6000, 100, latest), report("B", 35.1, 36.2, 6000, 100, latest), report("E", 35, 36, 6000, 100, latest)}
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": batch}, 202, &out)
	if out.Accepted != 3 || len(out.Rejected) != 0 {
		t.Fatalf("answer %+v after C went stale, want all accepted", out)
	}
}

// A party's position reports are counted against its budget by report,
// not by request: a batch of 10,000 takes 10,000 of it, and a batch is
// refused, unread, with 429 too-many-reports and Retry-After while the
// budget does not hold the largest one, applying nothing, while the other
// parties report on. Counted by request, one party could post 10,000
// reports 1,000 times a second and take every core the others' alerts
// need.
func TestPositionsBudgetCountsReports(t *testing.T) {
	e := newEnv(t, Options{ReportsPerSecond: 0.001, ReportsPerAircraftPerSecond: -1, ReportsBurst: MaxReportsPerRequest})
	now := time.Now().UTC().Truncate(time.Millisecond)
	// One request of the whole burst: two good reports and the rest
	// without a latitude (rejected, but checked: they count).
	batch := make([]any, MaxReportsPerRequest)
	for i := range batch {
		r := report(fmt.Sprintf("X%d", i), 35, 36, 6000, 100, now)
		delete(r, "lat")
		batch[i] = r
	}
	batch[0], batch[1] = report("A", 35, 36, 6000, 100, now), report("B", 35.1, 36, 6000, 100, now)
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": batch}, 202, &out)
	if out.Accepted != 2 {
		t.Fatalf("first batch: %d accepted, want 2", out.Accepted)
	}
	code, body, hdr := e.do("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("C", 35.2, 36, 6000, 100, now)}})
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-reports" ||
		!strings.Contains(p.Detail, "0.001 position reports a second") {
		t.Fatalf("second batch: %d %s, want 429 too-many-reports naming the budget", code, body)
	}
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	e.wantRefusals(budgetReports, "coalition", 1)
	// Nothing of the refused batch was applied; the other party's
	// reports are its own budget's.
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("D", 36, 36, 6000, 100, now)}}, 202, &out)
	if out.Accepted != 1 {
		t.Fatalf("russia's batch: %+v", out)
	}
	var tracks struct {
		Tracks []struct{ Party, Aircraft string }
	}
	e.mustDo("GET", "/v1/tracks", e.operator, nil, 200, &tracks)
	var got []string
	for _, tr := range tracks.Tracks {
		got = append(got, tr.Party+"/"+tr.Aircraft)
	}
	slices.Sort(got)
	if want := []string{"coalition/A", "coalition/B", "russia/D"}; !slices.Equal(got, want) {
		t.Fatalf("tracks %v, want %v", got, want)
	}
}

// The rules agree the fleet each party may fly (max_aircraft_by_party):
// a party that surrounds another's aircraft with more of its own than it
// agreed to starts no more tracks than that, so raises no more alerts, nor
// hotline items the other must acknowledge, while its live aircraft
// report on and every alert they raise stands. The other parties fly as
// the rules let them. Without it, 2,000 aircraft of one party around one
// aircraft of another raised 2,000 alerts and as many hotline items.
func TestPositionsAgreedFleetBoundsTheAlertsAgainstOthers(t *testing.T) {
	e := newEnv(t, Options{})
	e.agreeRules(map[string]any{"max_aircraft_by_party": map[string]int{"russia": 2}})
	now := time.Now().UTC().Truncate(time.Millisecond)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("V", 35, 36, 6000, 0, now)}}, 202, nil)
	surround := func(at time.Time) []any {
		var out []any
		for i := range 5 {
			out = append(out, report(fmt.Sprintf("S%d", i), 35+0.01*float64(i-2), 36.02, 6000, -100, at))
		}
		return out
	}
	var out positionsAnswer
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": surround(now)}, 202, &out)
	if out.Accepted != 2 || len(out.Rejected) != 3 || out.Rejected[0].Index != 2 ||
		!strings.HasPrefix(out.Rejected[0].Error, "reports[2].aircraft:") || !strings.Contains(out.Rejected[0].Error, "2 live ones") {
		t.Fatalf("answer %+v, want S2 to S4 rejected naming the fleet of 2", out)
	}
	alertsAndItems := func() (alerts, items int) {
		var al struct{ Alerts []json.RawMessage }
		e.mustDo("GET", "/v1/alerts", e.tokens["coalition"], nil, 200, &al)
		var ms struct{ Messages []struct{ Kind string } }
		e.mustDo("GET", "/v1/hotline/messages", e.tokens["coalition"], nil, 200, &ms)
		for _, m := range ms.Messages {
			if m.Kind == "alert" {
				items++
			}
		}
		return len(al.Alerts), items
	}
	if alerts, items := alertsAndItems(); alerts != 2 || items != 2 {
		t.Fatalf("coalition has %d alerts and %d hotline items, want 2 of each (one per aircraft of russia's agreed fleet)", alerts, items)
	}
	// Russia's live aircraft report on, and their alerts stand.
	later := now.Add(2 * time.Second)
	e.advance(2 * time.Second)
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": surround(later)[:2]}, 202, &out)
	if out.Accepted != 2 || len(out.Rejected) != 0 {
		t.Fatalf("russia's live aircraft: %+v", out)
	}
	if alerts, _ := alertsAndItems(); alerts != 2 {
		t.Fatalf("coalition has %d alerts after russia's live aircraft reported on, want 2", alerts)
	}
	// The coalition, not named, flies the rules' max_aircraft.
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{
		report("V", 35, 36, 6000, 0, later), report("W", 40, 36, 6000, 0, later), report("X", 41, 36, 6000, 0, later)}}, 202, &out)
	if out.Accepted != 3 {
		t.Fatalf("coalition's batch: %+v", out)
	}
}

// A burst configured below the largest batch the API takes is raised to
// it: a batch of the largest size can always pass once the budget is full.
func TestPositionsBudgetTakesTheLargestBatch(t *testing.T) {
	e := newEnv(t, Options{ReportsPerSecond: 0.001, ReportsPerAircraftPerSecond: -1, ReportsBurst: 5})
	now := time.Now().UTC().Truncate(time.Millisecond)
	batch := make([]any, MaxReportsPerRequest)
	for i := range batch {
		r := report(fmt.Sprintf("X%d", i), 35, 36, 6000, 100, now)
		delete(r, "lat")
		batch[i] = r
	}
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": batch}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": batch[:1]}, http.StatusTooManyRequests, nil)
}

// A batch reserves the most its body can hold before it is read, and is
// charged only the reports it holds: five batches of one report and one
// of 10,000 fit in a budget of 20,005, and then a batch of one, but not
// another of 10,000.
func TestPositionsBudgetChargesWhatABatchHolds(t *testing.T) {
	e := newEnv(t, Options{ReportsPerSecond: 0.001, ReportsPerAircraftPerSecond: -1, ReportsBurst: 2*MaxReportsPerRequest + 5})
	now := time.Now().UTC().Truncate(time.Millisecond)
	tok := e.tokens["coalition"]
	for i := range 5 {
		e.mustDo("POST", "/v1/positions", tok, map[string]any{"reports": []any{report(fmt.Sprint("S", i), 35, 36+float64(i)*0.1, 6000, 100, now)}}, 202, nil)
	}
	batch := make([]any, MaxReportsPerRequest)
	for i := range batch {
		r := report(fmt.Sprintf("X%d", i), 35, 36, 6000, 100, now)
		delete(r, "lat")
		batch[i] = r
	}
	e.mustDo("POST", "/v1/positions", tok, map[string]any{"reports": batch}, 202, nil)
	e.mustDo("POST", "/v1/positions", tok, map[string]any{"reports": batch[:1]}, 202, nil)
	e.mustDo("POST", "/v1/positions", tok, map[string]any{"reports": batch}, http.StatusTooManyRequests, nil)
}

// A batch refused before its reports are counted (malformed) costs what
// the server read of it, a report per 100 bytes: garbage is not free to
// send. 1,000 bytes cost 10 of a budget of 10,005, and the budget then no
// longer holds the largest batch (a small one still fits).
func TestPositionsBudgetChargesAMalformedBatchItsBytes(t *testing.T) {
	e := newEnv(t, Options{ReportsPerSecond: 0.001, ReportsPerAircraftPerSecond: -1, ReportsBurst: MaxReportsPerRequest + 5})
	tok := e.tokens["coalition"]
	garbage := `{"reports":[` + strings.Repeat(" ", 1000-len(`{"reports":[`)-1) + `x`
	e.mustDo("POST", "/v1/positions", tok, garbage, http.StatusBadRequest, nil)
	full := make([]any, MaxReportsPerRequest)
	for i := range full {
		full[i] = report(fmt.Sprint("F", i), 35, 36, 6000, 100, time.Now())
	}
	e.mustDo("POST", "/v1/positions", tok, map[string]any{"reports": full}, http.StatusTooManyRequests, nil)
	e.mustDo("POST", "/v1/positions", tok, map[string]any{"reports": []any{report("A", 35, 36, 6000, 100, time.Now())}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("B", 35, 36, 6000, 100, time.Now())}}, 202, nil)
}

// Small batches of one party in flight at once (a feed's, over a slow
// link) each reserve what their body can hold, not a full batch's worth:
// with a budget of one full batch, three of them still being read are
// all taken, where the first would have held the whole budget and the
// others been refused while the party was far within it. A body of
// unknown length reserves a full batch.
func TestPositionsBudgetReservesWhatABodyCanHold(t *testing.T) {
	e := newEnv(t, Options{ReportsPerSecond: 0.001, ReportsPerAircraftPerSecond: -1, ReportsBurst: MaxReportsPerRequest})
	tok := e.tokens["coalition"]
	budget := e.srv.Config.Handler.(*Handler).reports.limiter
	tokensLeft := func() float64 {
		budget.mu.Lock()
		defer budget.mu.Unlock()
		if b, ok := budget.buckets["coalition"]; ok {
			return b.tokens
		}
		return budget.burst
	}
	type inFlight struct {
		w    *io.PipeWriter
		body []byte
		code chan int
	}
	send := func(body []byte, length int64) inFlight {
		pr, pw := io.Pipe()
		// Ended before the server closes (cleanups run last first), so
		// that a failed test does not leave its requests waiting.
		t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
		req, err := http.NewRequest("POST", e.srv.URL+"/v1/positions", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		f := inFlight{w: pw, body: body, code: make(chan int, 1)}
		// Read before the request is sent: it may reserve at once.
		before := tokensLeft()
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				f.code <- -1
				return
			}
			resp.Body.Close()
			f.code <- resp.StatusCode
		}()
		// Wait until the request holds its reservation, or is answered.
		for tokensLeft() == before && len(f.code) == 0 {
			runtime.Gosched()
			time.Sleep(time.Millisecond)
		}
		return f
	}
	var flights []inFlight
	for i := range 3 {
		b, err := json.Marshal(map[string]any{"reports": []any{report(fmt.Sprint("S", i), 35, 36+float64(i)*0.1, 6000, 100, time.Now())}})
		if err != nil {
			t.Fatal(err)
		}
		flights = append(flights, send(b, int64(len(b))))
	}
	for i, f := range flights {
		if _, err := f.w.Write(f.body); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		f.w.Close()
		if code := <-f.code; code != http.StatusAccepted {
			t.Fatalf("batch %d of one report, in flight with the others: status %d, want 202", i, code)
		}
	}
	// Of unknown length: it reserves a full batch, which the budget no
	// longer holds.
	b, _ := json.Marshal(map[string]any{"reports": []any{report("U", 35, 37, 6000, 100, time.Now())}})
	f := send(b, -1)
	_, _ = f.w.Write(b)
	f.w.Close()
	if code := <-f.code; code != http.StatusTooManyRequests {
		t.Fatalf("a batch of unknown length with less than a full batch left: status %d, want 429", code)
	}
}

// A party's budget of reports rises with the fleet it may fly: a report a
// second of each of its aircraft (DefaultReportsPerAircraftPerSecond),
// when that is above the serve flag, which is a floor. Fixed at the flag,
// a fleet of 100,000 the parties agreed reporting at 1 Hz was held back
// at 50,000 reports a second. A party with a fleet of one has the floor.
func TestPositionsBudgetRisesWithTheAgreedFleet(t *testing.T) {
	e := newEnvConfig(t, openTestStore(t), Options{ReportsPerSecond: 0.001}, func(c *service.Config) { c.MaxAircraftPerParty = 200_000 })
	e.agreeRules(map[string]any{"max_aircraft_by_party": map[string]int{"coalition": 100_000, "russia": 1}})
	now := time.Now().UTC().Truncate(time.Millisecond)
	// Each batch reserves the largest batch (10,000) and is charged its
	// 4,000 reports (rejected, without a latitude: they count).
	batch := make([]any, 4_000)
	for i := range batch {
		r := report(fmt.Sprintf("X%d", i), 35, 36, 6000, 100, now)
		delete(r, "lat")
		batch[i] = r
	}
	body := map[string]any{"reports": batch}
	for i := range 5 {
		if code, resp, _ := e.do("POST", "/v1/positions", e.tokens["coalition"], body); code != http.StatusAccepted {
			t.Fatalf("coalition's batch %d (%d reports in all): %d %s; its fleet of 100,000 at 1 Hz holds 100,000 a second", i, 4_000*(i+1), code, resp)
		}
	}
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], body, http.StatusAccepted, nil)
	code, resp, _ := e.do("POST", "/v1/positions", e.tokens["russia"], body)
	var p Problem
	_ = json.Unmarshal(resp, &p)
	if code != http.StatusTooManyRequests || !strings.Contains(p.Detail, "--reports-per-second, 0.001") || !strings.Contains(p.Detail, "each of the 1 aircraft") {
		t.Fatalf("russia's second batch: %d %s, want 429 saying its budget is the floor, its fleet being one aircraft", code, resp)
	}
}
