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
