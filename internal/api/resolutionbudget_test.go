package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
)

// resolutionTokens is what party's budget of resolutions on demand holds
// (ok false: the party has no bucket yet, its budget is full).
func (e *env) resolutionTokens(party string) (tokens float64, ok bool) {
	l := e.handler.resolutions.limiter
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[party]
	if !ok {
		return 0, false
	}
	return b.tokens, true
}

// resolutionScene raises two conflict alerts between the coalition and
// russia: one of two drones (class uas), and one of two manned aircraft
// over 100 drones of russia, which the manned aircraft's search lists
// (its reach covers them) and the drones' does not (55 km away). It
// returns the ids of the drones' alert and of the manned aircraft's.
func resolutionScene(t *testing.T, e *env) (dronesID, mannedID string) {
	t.Helper()
	now := time.Now()
	drone := func(aircraft string, lat, lon, velEastMps float64) map[string]any {
		r := report(aircraft, lat, lon, 100, velEastMps, now)
		r["class"] = "uas"
		return r
	}
	var fleet []any
	for i := range 100 {
		fleet = append(fleet, drone(fmt.Sprintf("RF-D%d", i), 34.95+0.01*float64(i/10), 35.9+0.02*float64(i%10), 0))
	}
	fleet = append(fleet, report("RF-1", 35.0, 36.1, 6000, -200, now), drone("RF-UAS", 35.5, 36.003, -10))
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": fleet}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{
		report("US-1", 35.0, 35.88, 6000, 200, now), drone("US-UAS", 35.5, 36.0, 10)}}, 202, nil)
	var alerts struct {
		Alerts []struct {
			ID, Kind string
			Aircraft []struct{ Aircraft string }
		}
	}
	e.mustDo("GET", "/v1/alerts", e.tokens["coalition"], nil, http.StatusOK, &alerts)
	for _, a := range alerts.Alerts {
		if a.Kind != "conflict" || len(a.Aircraft) != 2 {
			continue
		}
		switch {
		case a.Aircraft[0].Aircraft == "US-UAS" || a.Aircraft[1].Aircraft == "US-UAS":
			dronesID = a.ID
		case a.Aircraft[0].Aircraft == "US-1" || a.Aircraft[1].Aircraft == "US-1":
			mannedID = a.ID
		}
	}
	if dronesID == "" || mannedID == "" {
		t.Fatalf("alerts: %+v", alerts.Alerts)
	}
	return dronesID, mannedID
}

// A resolution on demand is charged what it cost, counted in units of
// work: at least ResolutionBaseWork, and a manned aircraft's over a
// hundred drones more than two drones' far from them. Before, the request
// rate alone bounded them, and a party asking for a manned aircraft's
// resolution in a loop took all the cores.
func TestResolutionsOnDemandAreChargedTheirWork(t *testing.T) {
	// A rate so low that the budget does not refill within the test.
	e := newEnv(t, Options{ResolutionWorkPerSecond: 1e-9, ResolutionWorkBurst: 10_000_000})
	dronesID, mannedID := resolutionScene(t, e)
	if _, ok := e.resolutionTokens("coalition"); ok {
		t.Fatal("the coalition's budget is charged for the resolutions of its alerts' events")
	}
	spent := func(id string) float64 {
		t.Helper()
		before, ok := e.resolutionTokens("coalition")
		if !ok {
			before = 10_000_000
		}
		e.mustDo("GET", "/v1/alerts/"+id+"/resolution", e.tokens["coalition"], nil, http.StatusOK, nil)
		after, ok := e.resolutionTokens("coalition")
		if !ok {
			t.Fatal("a resolution on demand charged nothing")
		}
		return before - after
	}
	drones, manned := spent(dronesID), spent(mannedID)
	t.Logf("charged %g for the drones, %g for the manned aircraft", drones, manned)
	if drones <= ResolutionBaseWork || manned <= drones+100 {
		t.Fatalf("charged %g for the drones' resolution and %g for the manned aircraft's over 100 drones: want more than %d, and the manned aircraft's more by the drones its search lists",
			drones, manned, ResolutionBaseWork)
	}
	// An alert that concerns none of the party's aircraft costs the
	// base: it looked the alert up.
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	e.mustDo("GET", "/v1/alerts/"+mannedID+"/resolution", third.Token, nil, http.StatusNotFound, nil)
	if left, _ := e.resolutionTokens("bystander"); math.Abs(10_000_000-ResolutionBaseWork-left) > 1 {
		t.Fatalf("a 404 left %g of the budget, want %d less than full", left, ResolutionBaseWork)
	}
}

// A party whose budget of resolutions does not hold the base is refused
// with 429 naming the budget, with Retry-After, and nothing is computed or
// charged; another party's budget, and the operator's own, are
// untouched by it.
func TestResolutionsOnDemandBeyondTheBudgetAreRefused(t *testing.T) {
	e := newEnv(t, Options{ResolutionWorkPerSecond: 1e-9, ResolutionWorkBurst: ResolutionBaseWork + 100})
	_, mannedID := resolutionScene(t, e)
	path := "/v1/alerts/" + mannedID + "/resolution"
	// The first is computed with the base there, and charged the rest
	// after, below zero.
	e.mustDo("GET", path, e.tokens["coalition"], nil, http.StatusOK, nil)
	before, _ := e.resolutionTokens("coalition")
	if before >= 0 {
		t.Fatalf("after a manned aircraft's resolution the budget holds %g, want below 0", before)
	}
	code, body, hdr := e.do("GET", path, e.tokens["coalition"], nil)
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-resolutions" ||
		!strings.Contains(p.Detail, "--resolution-work-per-second") || hdr.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: %s", code, hdr.Get("Retry-After"), body)
	}
	if after, _ := e.resolutionTokens("coalition"); math.Abs(after-before) > 1e-3 {
		t.Fatalf("the refusal changed the budget from %g to %g", before, after)
	}
	e.wantRefusals(budgetResolutions, "coalition", 1)
	// Russia's and the operator's are their own.
	if _, ok := e.resolutionTokens("russia"); ok {
		t.Fatal("russia's budget was touched")
	}
	e.mustDo("GET", path, e.tokens["russia"], nil, http.StatusOK, nil)
	e.mustDo("GET", path, e.operator, nil, http.StatusOK, nil)
	if op, ok := e.resolutionTokens(party.OperatorName); !ok || op >= ResolutionBaseWork+100 {
		t.Fatalf("the operator's resolution was not charged to its own budget (%g, %v)", op, ok)
	}
	e.wantRefusals(budgetResolutions, "russia", 0)
}

// A party's resolutions on demand are computed one at a time: one sent
// while another of the party's is computed waits for it to be charged,
// so that many sent at once do not all find the base in the budget and
// take many cores before any is charged. Another party's does not wait.
func TestResolutionsOnDemandOfAPartyWaitForItsPrevious(t *testing.T) {
	waiting := make(chan string, 4)
	e := newEnvConfig(t, openTestStore(t), Options{resolutionWaitHook: func(party string) { waiting <- party }},
		func(c *service.Config) { c.OnDemandAtOnce = 2 })
	_, mannedID := resolutionScene(t, e)
	path := "/v1/alerts/" + mannedID + "/resolution"
	// The coalition's previous resolution is being computed.
	release, err := e.handler.resolutionSlots.acquire(t.Context(), "coalition")
	if err != nil {
		t.Fatal(err)
	}
	answered := e.getInBackground(path, "coalition")
	select {
	case p := <-waiting:
		if p != "coalition" {
			t.Fatalf("%s waited", p)
		}
	case code := <-answered:
		t.Fatalf("answered %d while the party's previous resolution was computed", code)
	}
	if _, ok := e.resolutionTokens("coalition"); ok {
		t.Fatal("the waiting request took from the budget")
	}
	e.mustDo("GET", path, e.tokens["russia"], nil, http.StatusOK, nil)
	release()
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("answered %d once the previous one was done", code)
	}
}

// All parties' resolutions on demand together take turns of the
// service's work on demand (service.Config.OnDemandAtOnce), each party's
// budget bounding only its own: one sent while another party's takes the
// only turn waits for it, then is answered.
func TestResolutionsOnDemandOfAllPartiesTakeTurns(t *testing.T) {
	waitingTurn := make(chan string, 4)
	e := newEnvConfig(t, openTestStore(t), Options{resolutionTurnWaitHook: func(party string) { waitingTurn <- party }},
		func(c *service.Config) { c.OnDemandAtOnce = 1 })
	_, mannedID := resolutionScene(t, e)
	// Russia's resolution is being computed, in the only turn.
	release, err := e.handler.resolutionSlots.acquire(t.Context(), "russia")
	if err != nil {
		t.Fatal(err)
	}
	answered := e.getInBackground("/v1/alerts/"+mannedID+"/resolution", "coalition")
	select {
	case p := <-waitingTurn:
		if p != "coalition" {
			t.Fatalf("%s waited", p)
		}
	case code := <-answered:
		t.Fatalf("answered %d while another party's resolution took the only turn", code)
	}
	if _, ok := e.resolutionTokens("coalition"); ok {
		t.Fatal("the waiting request took from the budget")
	}
	release()
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("answered %d once the turn was free", code)
	}
}

// A request that gives up while waiting for a turn gives its party's slot
// back: the party's next one is not kept waiting by it.
func TestResolutionWaitingForATurnGivesUp(t *testing.T) {
	e := newEnvConfig(t, openTestStore(t), Options{}, func(c *service.Config) { c.OnDemandAtOnce = 1 })
	s := e.handler.resolutionSlots
	release, err := s.acquire(t.Context(), "russia")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.acquire(ctx, "coalition"); err == nil {
		t.Fatal("acquired a turn that another party holds")
	}
	release()
	again, err := s.acquire(ctx, "coalition")
	if err != nil {
		t.Fatalf("the coalition's slot was kept by the request that gave up: %v", err)
	}
	again()
}

// getInBackground GETs path as party in a goroutine, the answer's status
// (0: no answer) sent on the channel it returns.
func (e *env) getInBackground(path, party string) <-chan int {
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens[party])
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	return answered
}
