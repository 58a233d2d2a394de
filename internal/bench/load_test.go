package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

// TestIngestLoadReportsWhereAircraftAre: every report the load generator
// sends puts its aircraft where it is at the report's time, its fleet
// position dead-reckoned from the fleet's time, across batches, cycles and
// one load after another. A position older than its report's time (the
// load once moved its aircraft at the start of each cycle only, and each
// new load started them again from the fleet's positions) moves the
// aircraft back along its path at each report, as no aircraft flies, and
// moves every prediction of its conflicts with it: the slower a server
// took reports, the more its alerts changed.
func TestIngestLoadReportsWhereAircraftAre(t *testing.T) {
	as, err := fleet("theatre", 200, 1)
	if err != nil {
		t.Fatal(err)
	}
	fleetOf := map[string]aircraft{}
	for _, a := range as {
		fleetOf[a.id] = a
	}
	var mu sync.Mutex
	var reports int
	var worstM float64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Reports []struct {
				Aircraft string
				Time     time.Time
				Lat, Lon float64
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rep := range body.Reports {
			a, ok := fleetOf[rep.Aircraft]
			if !ok {
				worstM = math.Inf(1)
				continue
			}
			dtS := rep.Time.Sub(a.at).Seconds()
			lat := a.latDeg + a.velNorthMps*dtS/111_195
			lon := a.lonDeg + a.velEastMps*dtS/(111_195*math.Cos(lat*math.Pi/180))
			offM := math.Hypot((rep.Lat-lat)*111_195, (rep.Lon-lon)*111_195*math.Cos(lat*math.Pi/180))
			worstM = max(worstM, offM)
			reports++
		}
		mu.Unlock()
		fmt.Fprintf(w, `{"accepted":%d}`, len(body.Reports))
	}))
	defer srv.Close()
	d := &deployment{parties: map[string][]*client.Client{
		"coalition": {client.New(srv.URL, "c")},
		"russia":    {client.New(srv.URL, "r")},
	}}
	for range 2 {
		l := startIngest(context.Background(), d, groupByParty(as), 2, 30)
		time.Sleep(300 * time.Millisecond)
		l.stop()
		if err := l.err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if reports < len(as) {
		t.Fatalf("%d reports sent, want at least one per aircraft (%d)", reports, len(as))
	}
	// Printed to 6 decimals of a degree: some 0.1 m.
	if worstM > 1 {
		t.Fatalf("a report %.1f m from where its aircraft was at its time (%d reports)", worstM, reports)
	}
	t.Logf("%d reports, each within %.2f m of its aircraft", reports, worstM)
}

// TestAdvanceToStaysOnTheGlobe: dead-reckoned over the antimeridian and
// over a pole, an aircraft's position stays a valid one (the server
// refuses a longitude beyond 180°), on along its way, and an aircraft
// without a time of its position stays where it is.
func TestAdvanceToStaysOnTheGlobe(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	as := []aircraft{
		{id: "east", latDeg: 10, lonDeg: 179.99, velEastMps: 250, at: t0},
		{id: "west", latDeg: -10, lonDeg: -179.99, velEastMps: -250, at: t0},
		{id: "north", latDeg: 89.99, lonDeg: 20, velNorthMps: 250, at: t0},
		{id: "south", latDeg: -89.99, lonDeg: -20, velNorthMps: -250, at: t0},
		{id: "new", latDeg: 1, lonDeg: 2},
	}
	advanceTo(as, t0.Add(20*time.Second))
	for _, a := range as {
		if a.latDeg < -90 || a.latDeg > 90 || a.lonDeg < -180 || a.lonDeg >= 180 {
			t.Errorf("%s at %.4f, %.4f: off the globe", a.id, a.latDeg, a.lonDeg)
		}
	}
	if as[0].lonDeg > -179.9 || as[1].lonDeg < 179.9 {
		t.Errorf("across the antimeridian: east at %.4f, west at %.4f", as[0].lonDeg, as[1].lonDeg)
	}
	if as[2].latDeg > 89.99 || math.Abs(as[2].lonDeg-(-160)) > 1e-9 || as[2].velNorthMps >= 0 {
		t.Errorf("over the north pole: %.4f, %.4f heading north at %.0f m/s", as[2].latDeg, as[2].lonDeg, as[2].velNorthMps)
	}
	if as[3].latDeg < -89.99 || math.Abs(as[3].lonDeg-160) > 1e-9 || as[3].velNorthMps <= 0 {
		t.Errorf("over the south pole: %.4f, %.4f heading north at %.0f m/s", as[3].latDeg, as[3].lonDeg, as[3].velNorthMps)
	}
	if as[4].latDeg != 1 || as[4].lonDeg != 2 || !as[4].at.Equal(t0.Add(20*time.Second)) {
		t.Errorf("an aircraft without a time moved: %+v", as[4])
	}
}
