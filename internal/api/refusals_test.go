package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// wantRefusals fails the test unless deconflict_budget_refusals_total of
// budget and party is want (a series never counted is 0).
func (e *env) wantRefusals(budget, party string, want int) {
	e.t.Helper()
	prefix := fmt.Sprintf("deconflict_budget_refusals_total{budget=%q,party=%q} ", budget, party)
	got := 0.0
	for line := range strings.Lines(e.metrics()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			var err error
			if got, err = strconv.ParseFloat(v, 64); err != nil {
				e.t.Fatalf("%s%s: %v", prefix, v, err)
			}
		}
	}
	if got != float64(want) {
		e.t.Fatalf("%s= %g, want %d", prefix, got, want)
	}
}

// The operator sees a party refused: each refusal is counted, and logged
// at WARN at most once a minute for each party and budget, the next line
// saying how many went unlogged, so that a party refused at its request
// rate does not log a line a request.
func TestRefusalsAreLoggedOnceAMinuteAPartyAndBudget(t *testing.T) {
	var logged bytes.Buffer
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refusals"}, []string{"budget", "party"})
	r := newRefusals(counter, slog.New(slog.NewJSONHandler(&logged, nil)))
	lines := func() []map[string]any {
		var out []map[string]any
		for line := range strings.Lines(logged.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		r.refused(budgetReports, "coalition", "10000 position reports", at.Add(time.Duration(i)*time.Second))
	}
	r.refused(budgetVolumes, "coalition", "2041 positions", at)
	r.refused(budgetReports, "russia", "10000 position reports", at)
	if got := lines(); len(got) != 3 {
		t.Fatalf("%d lines for 7 refusals of 3 parties and budgets in a minute, want 3:\n%s", len(got), logged.String())
	}
	r.refused(budgetReports, "coalition", "10000 position reports", at.Add(refusalLogEvery))
	got := lines()
	if len(got) != 4 {
		t.Fatalf("%d lines a minute after the first, want 4:\n%s", len(got), logged.String())
	}
	if l := got[3]; l["level"] != "WARN" || l["budget"] != budgetReports || l["party"] != "coalition" || l["refused_unlogged_since_last_line"] != 4.0 {
		t.Fatalf("the line a minute later: %v, want WARN of coalition's reports saying 4 went unlogged", l)
	}
	for _, c := range []struct {
		budget, party string
		want          float64
	}{{budgetReports, "coalition", 6}, {budgetVolumes, "coalition", 1}, {budgetReports, "russia", 1}} {
		var m dto.Metric
		if err := counter.WithLabelValues(c.budget, c.party).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != c.want {
			t.Errorf("refusals of %s by %s: %g, want %g", c.party, c.budget, got, c.want)
		}
	}
}

// A budget refilled at a rate as low as 1e-12 a second answered
// Retry-After: 1 (the wait, 1e15 s, overflowed into a negative Duration),
// and the request rate's none at all: a client sent its request again
// every second for ever. Retry-After is the wait, in whole seconds rounded
// up, and a day at most (MaxRetryAfter).
func TestRetryAfterIsTheWaitUpToADay(t *testing.T) {
	retryAfter := func(hdr http.Header) int {
		t.Helper()
		s, err := strconv.Atoi(hdr.Get("Retry-After"))
		if err != nil {
			t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
		}
		return s
	}
	day := int(MaxRetryAfter / time.Second)

	e := newEnv(t, Options{RatePerSecond: 1e-12, RateBurst: 2, VolumePositionsPerSecond: 1e-12})
	for range 2 {
		e.mustDo("GET", "/v1/me", e.tokens["coalition"], nil, http.StatusOK, nil)
	}
	code, body, hdr := e.do("GET", "/v1/me", e.tokens["coalition"], nil)
	if code != http.StatusTooManyRequests || retryAfter(hdr) != day {
		t.Fatalf("a request at 1e-12 a second: %d Retry-After %q %s, want 429 and %d", code, hdr.Get("Retry-After"), body, day)
	}
	// The volume budget's burst is the largest write, 2,041: a write of
	// 1,000 positions leaves 1,001, short of the next one's reservation.
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], polygonVolume(35, 36, 5_000, 999), http.StatusCreated, nil)
	code, body, hdr = e.do("POST", "/v1/volumes", e.tokens["russia"], polygonVolume(36, 36, 5_000, 999))
	if code != http.StatusTooManyRequests || retryAfter(hdr) != day || !strings.Contains(string(body), "at most a day") {
		t.Fatalf("a write at 1e-12 positions a second: %d Retry-After %q %s, want 429 and %d", code, hdr.Get("Retry-After"), body, day)
	}

	// Within a day, the wait itself: 1,040 positions short at 0.1 a
	// second, 10,400 s (less what refilled while the test ran).
	e = newEnv(t, Options{VolumePositionsPerSecond: 0.1})
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], polygonVolume(35, 36, 5_000, 999), http.StatusCreated, nil)
	_, _, hdr = e.do("POST", "/v1/volumes", e.tokens["russia"], polygonVolume(36, 36, 5_000, 999))
	if s := retryAfter(hdr); s > 10_400 || s < 10_300 {
		t.Fatalf("Retry-After %d s, want the 10,400 s until the budget holds the write", s)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, c := range []struct {
		wait time.Duration
		want int
	}{
		{0, 1}, {time.Nanosecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {90 * time.Minute, 5400},
		{MaxRetryAfter, 86400}, {math.MaxInt64, 86400}, {durationOfSeconds(1e16), 86400}, {durationOfSeconds(math.Inf(1)), 86400},
	} {
		if got := retryAfterSeconds(c.wait); got != c.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", c.wait, got, c.want)
		}
	}
}

// A request beyond the most its budget ever holds, its burst, was refused
// with 429 and a Retry-After, every time it was sent again, and never told
// why: a search of alternatives among 40 volumes may cost 1,060,240
// checks, more than a burst of 1 MiB of checks. It is refused with 422
// beyond-budget naming the footprint (the volumes near it make the cost),
// and counted as a refusal; a write's search is omitted as ever.
func TestAlternativesBeyondTheBurstIsRefusedFor422(t *testing.T) {
	e := newEnv(t, Options{AlternativesChecksBurst: 1})
	for i := range 40 {
		e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35, 36, fmt.Sprint("russian ", i), nil), http.StatusCreated, nil)
	}
	code, body, hdr := e.do("POST", "/v1/volumes/alternatives", e.tokens["coalition"], circleVolume(35, 36.02, "ours", nil))
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusUnprocessableEntity || p.Type != ProblemBase+"beyond-budget" || p.Field != "footprint" ||
		!strings.Contains(p.Detail, "1060240 checks") || !strings.Contains(p.Detail, "--alternatives-checks-per-second") || hdr.Get("Retry-After") != "" {
		t.Fatalf("a search beyond the burst: %d %s (Retry-After %q), want 422 beyond-budget naming the footprint and the checks", code, body, hdr.Get("Retry-After"))
	}
	e.wantRefusals(budgetAlternatives, "coalition", 1)
}

// A preview compiles and checks each item's footprint as a write does:
// it pays their positions from the party's budget of previewed footprints,
// not an item each alone (a corridor of 1,000 positions took 13 ms, a
// circle 2 µs). Refused with 429 too-many-preview-positions when the
// budget does not hold them, no item checked; a file whose footprints hold
// more than the burst is previewed with the budget full and leaves it
// owing the rest.
func TestPreviewPaysItsFootprintsPositions(t *testing.T) {
	e := newEnv(t, Options{PreviewPositionsPerSecond: 0.001, PreviewPositionsBurst: 3_000})
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	two := polygonsOpenAir(2, 999) // 2,000 positions
	var got struct {
		Items []struct{ Status, Reason string }
	}
	e.mustDo("POST", path, e.tokens["coalition"], two, http.StatusOK, &got) // 1,000 left
	if len(got.Items) != 2 || got.Items[0].Status != "ok" {
		t.Fatalf("first preview: %+v", got)
	}
	code, body, hdr := e.do("POST", path, e.tokens["coalition"], two)
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-preview-positions" || !strings.Contains(p.Detail, "2000 positions") || hdr.Get("Retry-After") == "" {
		t.Fatalf("a second preview of 2,000 positions: %d %s, want 429 too-many-preview-positions naming them", code, body)
	}
	e.wantRefusals(budgetPreviewPositions, "coalition", 1)
	e.mustDo("POST", path, e.tokens["coalition"], circlesOpenAir(5, 10, 10), http.StatusOK, nil)

	// 4,000 positions, beyond the burst: previewed with the budget full,
	// and owing 1,000, so that even a circle waits.
	e.mustDo("POST", path, e.tokens["russia"], polygonsOpenAir(4, 999), http.StatusOK, &got)
	if len(got.Items) != 4 {
		t.Fatalf("a preview beyond the burst: %+v", got)
	}
	code, body, _ = e.do("POST", path, e.tokens["russia"], circlesOpenAir(1, 10, 10))
	if code != http.StatusTooManyRequests {
		t.Fatalf("a preview after one beyond the burst: %d %s, want 429 until it is paid back", code, body)
	}
	e.wantRefusals(budgetVolumes, "coalition", 0)
	e.wantRefusals(budgetVolumes, "russia", 0)
}

// A preview writes nothing: it must never keep its party from declaring
// or ending a volume, which deconfliction needs. Paid from the budget of
// volume writes, a preview beyond its burst left the budget owing the
// rest, and the party's writes and state changes were refused with 429
// until the rate had paid it back (100 s at the default rate, days at a
// low one). Previews have their own budget of positions: they wait on
// previews only.
func TestPreviewNeverHoldsBackVolumeWrites(t *testing.T) {
	e := newEnv(t, Options{VolumePositionsPerSecond: 0.001, VolumePositionsBurst: 3_000})
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	// 4,000 positions, beyond the burst of either budget.
	e.mustDo("POST", path, e.tokens["coalition"], polygonsOpenAir(4, 999), http.StatusOK, nil)
	var v wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35, 36, "declared", nil), http.StatusCreated, &v)
	e.mustDo("POST", "/v1/volumes/"+v.ID+"/state", e.tokens["coalition"], map[string]any{"state": "ended", "version": v.Version}, http.StatusOK, nil)
	e.wantRefusals(budgetVolumes, "coalition", 0)

	// The next preview waits until the previews' budget has paid back
	// what the first owes.
	code, body, hdr := e.do("POST", path, e.tokens["coalition"], circlesOpenAir(1, 10, 10))
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-preview-positions" || hdr.Get("Retry-After") == "" {
		t.Fatalf("a preview after one beyond the burst: %d %s, want 429 too-many-preview-positions", code, body)
	}
	e.wantRefusals(budgetPreviewPositions, "coalition", 1)
	e.wantRefusals(budgetVolumes, "coalition", 0)
}

// A preview is charged for the items it checked: one cut short, its answer
// too large or its client gone, was charged the positions of every item's
// footprint, the debt of a file beyond the burst included, and the party's
// next previews waited for items never checked. The unchecked items, and
// their positions, are given back.
func TestPreviewCutShortPaysForTheItemsChecked(t *testing.T) {
	// An answer of one polygon of 1,000 vertices (some 40 KB: its
	// footprint) passes, the second's does not.
	e := newEnv(t, Options{PreviewPositionsPerSecond: 0.001, PreviewPositionsBurst: 3_000, PreviewItemsPerSecond: 0.001, previewAnswerBytes: 50_000})
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	itemsBefore := e.previewItemsHeld("russia")
	// 5,000 positions: 3,000 reserved, 2,000 owed; cut at the second
	// item, the three after it unchecked.
	var p Problem
	e.mustDo("POST", path, e.tokens["russia"], polygonsOpenAir(5, 999), http.StatusRequestEntityTooLarge, &p)
	if p.Type != ProblemBase+"preview-too-large" || !strings.Contains(p.Detail, "first 2 of its 5 items") {
		t.Fatalf("a preview whose answer is too large at its second item: %+v", p)
	}
	// Charged 2,000: 1,000 left, a polygon's.
	e.mustDo("POST", path, e.tokens["russia"], polygonsOpenAir(1, 999), http.StatusOK, nil)
	e.wantRefusals(budgetPreviewPositions, "russia", 0)
	// Charged the items checked, 2 then 1, not 5 then 1.
	if used := itemsBefore - e.previewItemsHeld("russia"); used > 3.5 {
		t.Fatalf("the budget of preview items was charged %g for the 3 items checked", used)
	}

	// A client gone before the first item: nothing checked, nothing
	// charged (but the file's reading, paid by the items' reservation).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, "POST", path, strings.NewReader(polygonsOpenAir(4, 999)))
	err := e.handler.previewVolumes(httptest.NewRecorder(), r, party.Principal{Party: "coalition"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a preview whose client is gone: %v, want it to stop", err)
	}
	// Owing 1,000 had it been charged.
	e.mustDo("POST", path, e.tokens["coalition"], polygonsOpenAir(1, 999), http.StatusOK, nil)
	e.wantRefusals(budgetPreviewPositions, "coalition", 0)
}

// previewItemsHeld is what party's budget of preview items holds.
func (e *env) previewItemsHeld(party string) float64 {
	e.t.Helper()
	l := e.handler.previews.limiter
	if _, ok := l.take(party, 0, time.Now()); !ok {
		e.t.Fatal("the budget of preview items does not hold 0")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buckets[party].tokens
}

// polygonsOpenAir is an OpenAir file of n polygons of vertices vertices
// each (vertices+1 positions, the ring closed).
func polygonsOpenAir(n, vertices int) string {
	var b strings.Builder
	dms := func(x float64) string {
		s := int(math.Round(x * 3600))
		return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	for i := range n {
		fmt.Fprintf(&b, "AC R\nAN P%d\nAL GND\nAH FL100\n", i)
		for v := range vertices + 1 { // the last repeats the first
			a := 2 * math.Pi * float64(v%vertices) / float64(vertices)
			lat, lon := 10+float64(i)+0.3*math.Sin(a), 10+0.3*math.Cos(a)
			fmt.Fprintf(&b, "DP %s N %s E\n", dms(lat), "0"+dms(lon))
		}
	}
	return b.String()
}

// A request takes a whole token of the request rate's bucket: a burst set
// below one (Options.RateBurst 0.5) refused every request of every party with
// 429 for ever. It is raised to one.
func TestARateBurstBelowOneRequestIsRaisedToOne(t *testing.T) {
	e := newEnv(t, Options{})
	h := NewHandler(e.svc, Options{RatePerSecond: 0.001, RateBurst: 0.5})
	if wait, ok := h.rate.allow("coalition", time.Now()); !ok {
		t.Fatalf("the first request of a party refused for %v with a burst of 0.5", wait)
	}
}
