package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
)

// fakeServer records what the simulator does through the API: it answers
// volumes (with one 409 for a missing key entry), positions, acks, and
// streams a fixed set of hotline items to each party.
type fakeServer struct {
	mu        sync.Mutex
	reports   map[string][]client.Report // by party
	volumes   map[string][]client.VolumeInput
	states    int
	acks      map[string][]string // party -> message ids
	ackedCond chan struct{}       // closed once wantAcks acks arrived
	wantAcks  int
	events    map[string][]client.Event
	posted    bool
}

func partyOf(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer tok-")
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	party := partyOf(r)
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/volumes":
		var in client.VolumeInput
		json.NewDecoder(r.Body).Decode(&in)
		s.mu.Lock()
		s.volumes[party] = append(s.volumes[party], in)
		n := len(s.volumes[party])
		s.mu.Unlock()
		if party == "coalition" && len(in.Key) == 0 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"status":409,"title":"awareness key incomplete","missing":[{"id":"ru-vol","party":"russia","version":"v7"}]}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(client.Volume{ID: fmt.Sprintf("%s-%d", party, n), Party: party, Version: "v1", State: "accepted"})
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/state"):
		s.mu.Lock()
		s.states++
		s.mu.Unlock()
		json.NewEncoder(w).Encode(client.Volume{})
	case r.Method == "POST" && r.URL.Path == "/v1/positions":
		var body struct{ Reports []client.Report }
		json.NewDecoder(r.Body).Decode(&body)
		s.mu.Lock()
		first := !s.posted
		s.posted = true
		s.reports[party] = append(s.reports[party], body.Reports...)
		s.mu.Unlock()
		if first {
			// Hold the run until the parties have acted on their events, so
			// that the outcome does not depend on scheduling.
			select {
			case <-s.ackedCond:
			case <-time.After(20 * time.Second):
			}
		}
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(client.PositionsResult{Accepted: len(body.Reports)})
	case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/v1/hotline/messages/"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/hotline/messages/"), "/ack")
		s.mu.Lock()
		s.acks[party] = append(s.acks[party], id)
		total := 0
		for _, a := range s.acks {
			total += len(a)
		}
		if total == s.wantAcks {
			close(s.ackedCond)
		}
		s.mu.Unlock()
		json.NewEncoder(w).Encode(client.Message{ID: id})
	case r.Method == "GET" && r.URL.Path == "/v1/events":
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range s.events[party] {
			data, _ := json.Marshal(ev)
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Kind, data)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	case r.Method == "GET" && r.URL.Path == "/v1/alerts":
		fmt.Fprint(w, `{"alerts":[]}`)
	default:
		http.NotFound(w, r)
	}
}

func alertEvent(id int64, alertID string, aircraft ...string) client.Event {
	a := client.Alert{ID: alertID, Kind: "conflict", Level: "advisory", State: "raised", Time: time.Now()}
	for _, ac := range aircraft {
		a.Aircraft = append(a.Aircraft, client.AlertAircraft{Aircraft: ac})
	}
	data, _ := json.Marshal(a)
	return client.Event{ID: id, Kind: "alert_raised", Time: time.Now(), Data: data}
}

func messageEvent(id int64, msgID, alertID string) client.Event {
	m := client.Message{ID: msgID, From: "deconflict", To: []string{"coalition", "russia"}, Kind: "alert",
		Ref: &client.MessageRef{AlertID: alertID}, State: "open"}
	data, _ := json.Marshal(m)
	return client.Event{ID: id, Kind: "message", Time: time.Now(), Data: data}
}

func TestRunnerDrivesTheAPIAsTheParties(t *testing.T) {
	p := builtinPlan(t, 1)
	sc := p.Scenario
	// A proposal of the rules is acknowledged by the parties' answer
	// only (a plain acknowledgment is refused): the simulator leaves it.
	proposal, _ := json.Marshal(client.Message{ID: "m-rules", From: "deconflict", To: []string{"coalition", "russia"}, Kind: "rules_proposal", State: "open"})
	evs := []client.Event{
		{ID: 1, Kind: "message", Time: time.Now(), Data: proposal},
		alertEvent(2, "al-ignored", "CO-FA18-STRIKE", "RU-SU24-STRIKE"),
		messageEvent(3, "m-ignored", "al-ignored"),
		alertEvent(4, "al-1", "CO-F16-STRIKE", "RU-SU34-STRIKE"),
		messageEvent(5, "m-1", "al-1"),
	}
	srv := &fakeServer{
		reports: map[string][]client.Report{}, volumes: map[string][]client.VolumeInput{},
		acks: map[string][]string{}, ackedCond: make(chan struct{}), wantAcks: 3,
		events: map[string][]client.Event{"coalition": evs, "russia": evs},
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	clients := map[string]*client.Client{}
	for _, party := range sc.Parties {
		clients[party.Name] = client.New(hs.URL, "tok-"+party.Name)
	}
	from, until := sc.DemoStartS, sc.DemoStartS+120
	r, err := NewRunner(p, clients, Options{Speed: 0, FromS: from, UntilS: until, AckDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	end := time.Now()

	srv.mu.Lock()
	defer srv.mu.Unlock()
	// Every airborne aircraft at every tick, stamped in order, on time.
	wantReports := 0
	for ts := from; ts <= until; ts += sc.ReportEveryS {
		for _, f := range p.Flights {
			if _, ok := f.At(ts); ok {
				wantReports++
			}
		}
	}
	got := 0
	for party, reps := range srv.reports {
		last := map[string]time.Time{}
		for _, rep := range reps {
			got++
			if f := p.Flight(rep.Aircraft); f == nil || f.Party != party {
				t.Fatalf("%s reported aircraft %s", party, rep.Aircraft)
			}
			if !rep.Time.After(last[rep.Aircraft]) || rep.Time.Before(start) || rep.Time.After(end) {
				t.Fatalf("%s stamped %v (previous %v, run %v..%v)", rep.Aircraft, rep.Time, last[rep.Aircraft], start, end)
			}
			last[rep.Aircraft] = rep.Time
		}
	}
	if got != wantReports || r.Stats.ReportsSent.Load() != int64(wantReports) {
		t.Errorf("reports: server got %d, sim counted %d, want %d", got, r.Stats.ReportsSent.Load(), wantReports)
	}
	// Volumes: the coalition's first request lacked the key entry; every
	// retry carries it.
	co := srv.volumes["coalition"]
	if len(co) < 2 || len(co[0].Key) != 0 || len(co[1].Key) != 1 || co[1].Key[0] != (client.KeyEntry{ID: "ru-vol", Version: "v7"}) {
		t.Fatalf("coalition volume requests: %d, first keys %v", len(co), co[:min(2, len(co))])
	}
	declared := int(r.Stats.VolumesDeclared.Load())
	if declared == 0 || declared != len(srv.volumes["russia"])+len(co)/2 || srv.states != declared {
		t.Errorf("declared %d, russia sent %d, coalition %d, state changes %d", declared, len(srv.volumes["russia"]), len(co), srv.states)
	}
	for _, v := range srv.volumes["russia"] {
		if v.State != "accepted" || !v.End.After(v.Start) || v.Footprint.Type != "Circle" {
			t.Fatalf("volume %+v", v)
		}
	}
	// Acks: both acknowledge al-1; russia leaves its Su-24's alert alone.
	for party := range srv.acks {
		sort.Strings(srv.acks[party])
	}
	if fmt.Sprint(srv.acks["coalition"]) != "[m-1 m-ignored]" || fmt.Sprint(srv.acks["russia"]) != "[m-1]" {
		t.Errorf("acks %v", srv.acks)
	}
	recs := r.Alerts()
	if len(recs) != 2 || !recs[0].Acked["coalition"] || !recs[0].Acked["russia"] || recs[1].Acked["russia"] || !recs[1].Acked["coalition"] {
		t.Errorf("alert records %+v", recs)
	}
}

// TestRunnerSlowsDownWhenAsked: a 429 with Retry-After is waited out and the
// batch sent again, not dropped.
func TestRunnerSlowsDownWhenAsked(t *testing.T) {
	p := builtinPlan(t, 1)
	var mu sync.Mutex
	calls, accepted := 0, 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/positions":
			var body struct{ Reports []client.Report }
			json.NewDecoder(r.Body).Decode(&body)
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			accepted += len(body.Reports)
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(client.PositionsResult{Accepted: len(body.Reports)})
		case "/v1/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"id":"v","version":"1"}`)
		}
	}))
	defer hs.Close()
	clients := map[string]*client.Client{}
	for _, party := range p.Scenario.Parties {
		clients[party.Name] = client.New(hs.URL, "tok-"+party.Name)
	}
	from := p.Scenario.DemoStartS
	r, err := NewRunner(p, clients, Options{FromS: from, UntilS: from})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, f := range p.Flights {
		if _, ok := f.At(from); ok {
			want++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if accepted != want || r.Stats.ReportsSent.Load() != int64(want) || r.Stats.ReportsRejected.Load() != 0 {
		t.Errorf("accepted %d, sim counted %d sent and %d rejected, want %d sent", accepted, r.Stats.ReportsSent.Load(), r.Stats.ReportsRejected.Load(), want)
	}
	if time.Since(start) < time.Second {
		t.Error("the Retry-After of the 429 was not waited out")
	}
}

// TestRunnerSkipsQuietPeriods: from midnight, when nothing flies until the
// first take-off, the run jumps there instead of streaming nothing for
// hours of scenario time.
func TestRunnerSkipsQuietPeriods(t *testing.T) {
	p := builtinPlan(t, 1)
	first := p.Flights[0].StartS
	if first < 3600 {
		t.Fatalf("the scenario starts flying at %.0f s: nothing to skip", first)
	}
	var mu sync.Mutex
	posts := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/positions":
			var body struct{ Reports []client.Report }
			json.NewDecoder(r.Body).Decode(&body)
			mu.Lock()
			posts++
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(client.PositionsResult{Accepted: len(body.Reports)})
		case "/v1/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"id":"v","version":"1"}`)
		}
	}))
	defer hs.Close()
	clients := map[string]*client.Client{}
	for _, party := range p.Scenario.Parties {
		clients[party.Name] = client.New(hs.URL, "tok-"+party.Name)
	}
	// A wall clock that moves only when the runner waits for it.
	var clockMu sync.Mutex
	wall := time.Now()
	now := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return wall
	}
	slept := time.Duration(0)
	fakeSleep := func(_ context.Context, d time.Duration) error {
		clockMu.Lock()
		defer clockMu.Unlock()
		wall = wall.Add(d)
		slept += d
		return nil
	}
	until := first + 20
	r, err := NewRunner(p, clients, Options{Speed: 10, FromS: 0, UntilS: until, Now: now, Sleep: fakeSleep})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Stats.SimTimeS() < first || r.Stats.ReportsSent.Load() == 0 {
		t.Errorf("reached %.0f s, sent %d reports", r.Stats.SimTimeS(), r.Stats.ReportsSent.Load())
	}
	// Streaming the 20 s after the first take-off at 10x takes 2 s of wall
	// time; the hours before it must not have been waited through.
	if slept > 3*time.Second {
		t.Errorf("waited %v of wall time for %.0f s of scenario", slept, until)
	}
}

// TestSeparationWatchByClass counts losses of separation with the minima
// of each pair's classes under the default rules: 1 km apart at one
// altitude is a loss for two manned aircraft (5 NM) and for a manned
// aircraft and a drone (DO-365's DTHR 0.66 NM), not for two drones (50 m);
// 200 m apart and 100 m above, a loss only for the manned-uas pair (ZTHR
// 450 ft); aircraft of one party never count.
func TestSeparationWatchByClass(t *testing.T) {
	flight := func(id, party, class string) *Flight {
		return &Flight{ID: id, Callsign: id, Party: party, Class: class}
	}
	plan := &Plan{Flights: []*Flight{
		flight("m1", "blue", ""), flight("m2", "red", ""),
		flight("u1", "blue", rules.ClassUAS), flight("u2", "red", rules.ClassUAS),
	}}
	at := func(northM, altM float64) State {
		return State{Pos: geo.LLA{LatDeg: 35 + northM/111_000, LonDeg: 36, AltM: altM}}
	}
	for _, tc := range []struct {
		name  string
		pos   map[string]State
		pairs []string
	}{
		{"1 km apart", map[string]State{"m1": at(0, 3000), "u2": at(1000, 3000), "m2": at(20_000, 3000), "u1": at(21_000, 3000)},
			[]string{"m1 x u2", "m2 x u1"}},
		{"two of each close", map[string]State{"m1": at(0, 3000), "m2": at(1000, 3000), "u1": at(20_000, 3000), "u2": at(21_000, 3000)},
			[]string{"m1 x m2"}},
		{"drones 30 m apart", map[string]State{"u1": at(0, 3000), "u2": at(30, 3010)},
			[]string{"u1 x u2"}},
		{"200 m and 100 m above", map[string]State{"m1": at(0, 3000), "u2": at(200, 3100), "u1": at(50_000, 3000), "m2": at(50_200, 3300)},
			[]string{"m1 x u2"}},
	} {
		r := &Runner{plan: plan, losses: map[string]bool{}, minima: minimaOf(rules.Default())}
		r.separationWatch(tc.pos)
		var got []string
		for k := range r.losses {
			got = append(got, k)
		}
		sort.Strings(got)
		if !slices.Equal(got, tc.pairs) || r.Stats.LossesOfSeparation.Load() != int64(len(tc.pairs)) {
			t.Errorf("%s: losses %v (%d counted), want %v", tc.name, got, r.Stats.LossesOfSeparation.Load(), tc.pairs)
		}
	}
}
