package bench

import (
	"cmp"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/traffic"
)

// The load generator's hand-written batch decodes with encoding/json into
// the reports it stands for: the ids and classes verbatim, the time
// exactly, positions to the 1e-6 degree and speeds to the cm/s it writes.
func TestBatchBodyIsTheWireShape(t *testing.T) {
	for _, scenario := range []string{"theatre", "metro"} {
		t.Run(scenario, func(t *testing.T) { checkBatchBody(t, scenario) })
	}
}

func checkBatchBody(t *testing.T, scenario string) {
	as, err := fleet(scenario, 300, 7)
	if err != nil {
		t.Fatal(err)
	}
	reports, err := traffic.Generate(scenario, traffic.Options{Aircraft: 300, Parties: 2, Seed: 7, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	classes := map[string]int{}
	at := time.Date(2026, 11, 24, 7, 0, 0, 123456789, time.UTC)
	var got struct {
		Reports []client.Report `json:"reports"`
	}
	body := batchBody(nil, as, at)
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("not JSON: %v\n%.300s", err, body)
	}
	if len(got.Reports) != len(as) {
		t.Fatalf("%d reports, want %d", len(got.Reports), len(as))
	}
	for i, r := range got.Reports {
		a := as[i]
		near := func(x, y, tol float64) bool { return math.Abs(x-y) <= tol }
		want := cmp.Or(reports[i].Class, rules.ClassManned)
		if got := cmp.Or(r.Class, rules.ClassManned); got != want {
			t.Fatalf("report %d: class %q, the traffic's %q", i, got, want)
		}
		classes[want]++
		if r.Aircraft != a.id || !r.Time.Equal(at) || !near(r.LatDeg, a.latDeg, 5e-7) || !near(r.LonDeg, a.lonDeg, 5e-7) ||
			!near(r.AltM, a.altM, 0.05) || !near(r.VelEastMps, a.velEastMps, 0.005) || !near(r.VelNorthMps, a.velNorthMps, 0.005) || r.VelUpMps != 0 {
			t.Fatalf("report %d = %+v, aircraft %+v", i, r, a)
		}
	}
	if scenario == "metro" && (classes[rules.ClassUAS] == 0 || classes[rules.ClassManned] == 0) {
		t.Errorf("metro traffic of classes %v, want drones and manned aircraft", classes)
	}
	if string(batchBody(nil, nil, at)) != `{"reports":[]}` {
		t.Errorf("empty batch = %s", batchBody(nil, nil, at))
	}
}
