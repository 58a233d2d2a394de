package api

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/track"
)

// FuzzPositionsIntake: any body either fails as a whole with a problem, or
// splits into accepted and rejected reports that add up, every rejection
// naming its index and field, every accepted report inside the limits.
func FuzzPositionsIntake(f *testing.F) {
	now := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	ts := now.Format(time.RFC3339)
	f.Add(`{"reports":[{"aircraft":"RF-101","callsign":"SU24-1","time":"` + ts + `","lat":35.4,"lon":35.95,"alt_m":6000,"vel_east_mps":200,"vel_north_mps":0,"vel_up_mps":0}]}`)
	f.Add(`{"reports":[{"aircraft":"A","time":"` + ts + `","lat":91,"lon":0,"alt_m":0}]}`)
	f.Add(`{"reports":[{"aircraft":"","time":"2000-01-01T00:00:00Z","lat":0,"lon":0,"alt_m":0}]}`)
	f.Add(`{"reports":[]}`)
	f.Add(`{"reports":[{"lat":"x"}]}`)
	f.Add(`{"reports":null}`)
	f.Add(`{"reports":[{"aircraft":"A","time":"` + ts + `","lat":1e308,"lon":-1e308,"alt_m":1e400}]}`)
	f.Add(`[]`)
	f.Add(`{"reports":[{}]} {}`)
	f.Add(`{"reports":[{"aircraft":"A","time":"` + ts + `","lat":1,"lon":2,"alt_m":3,"vel_east_mps":2000,"vel_north_mps":2000,"vel_up_mps":2000}]}`)
	f.Add(`{"reports":[{"aircraft":"A","time":"` + ts + `","lat":1,"lon":2,"alt_m":3},{"aircraft":"A","time":"` + ts + `","lat":1,"lon":2,"alt_m":3}]}`)
	f.Add(`{"reports":[{"aircraft":"A","time":"` + ts + `","lon":2,"alt_m":3},{"aircraft":"B","time":"` + ts + `","lat":null,"lon":2,"alt_m":3}]}`)
	f.Add(`{"reports":[{"aircraft":"A","callsign":"SU\u000024","time":"` + ts + `","lat":1,"lon":2,"alt_m":3}]}`)
	f.Add(`{"reports":[{"aircraft":"A","class":"uas","time":"` + ts + `","lat":1,"lon":2,"alt_m":3},{"aircraft":"B","class":"glider","time":"` + ts + `","lat":1,"lon":2,"alt_m":3}]}`)
	f.Add(`{"reports":[{"aircraft":"A","class":"UAS\u0000","time":"` + ts + `","lat":1,"lon":2,"alt_m":3}]}`)
	f.Add(`{"reports":[{"aircraft":"A","time":"2026-11-24T7:00:00Z","lat":1,"lon":2,"alt_m":3},{"aircraft":"B","time":"2026-11-25T07:00:00+24:00","lat":1,"lon":2,"alt_m":3}]}`)
	f.Add(`{"reports":[{"aircraft":"A","time":"2026-11-24T07:00:00,5Z","lat":1,"lon":2,"alt_m":3},{"aircraft":"B","time":"2026-11-24T06:59:60Z","lat":1,"lon":2,"alt_m":3}]}`)
	rl := rules.Default()
	f.Fuzz(func(t *testing.T, body string) {
		ok, index, rejected, err := parsePositions(strings.NewReader(body), "coalition", now, &rl)
		if err != nil {
			if _, isProblem := err.(*Problem); !isProblem {
				t.Fatalf("error is not a problem: %v", err)
			}
			return
		}
		if len(ok) != len(index) {
			t.Fatalf("%d accepted, %d indexes", len(ok), len(index))
		}
		seen := map[int]bool{}
		for _, i := range index {
			seen[i] = true
		}
		for _, r := range rejected {
			if seen[r.Index] {
				t.Fatalf("report %d both accepted and rejected", r.Index)
			}
			seen[r.Index] = true
			if !strings.HasPrefix(r.Error, fmt.Sprintf("reports[%d].", r.Index)) || !strings.Contains(r.Error, ":") {
				t.Fatalf("rejection does not name its field: %+v", r)
			}
		}
		for i := range len(seen) {
			if !seen[i] {
				t.Fatalf("report %d neither accepted nor rejected", i)
			}
		}
		sightings := map[sighting]bool{}
		for _, r := range ok {
			if r.Aircraft == "" || r.LatDeg < -90 || r.LatDeg > 90 || r.LonDeg < -180 || r.LonDeg > 180 ||
				r.Time.After(now.Add(MaxFutureS*time.Second)) || r.Time.Before(now.Add(-MaxAgeS*time.Second)) {
				t.Fatalf("accepted a report outside the limits: %+v", r)
			}
			// The engine never refuses what the edge accepted.
			if !rl.HasClass(r.Class) {
				t.Fatalf("accepted a class the rules do not know: %+v", r)
			}
			tr := track.Report{Party: "coalition", Aircraft: r.Aircraft, Callsign: r.Callsign, Class: r.Class, Time: r.Time,
				Pos:        geo.LLA{LatDeg: r.LatDeg, LonDeg: r.LonDeg, AltM: r.AltM},
				VelEastMps: r.VelEastMps, VelNorthMps: r.VelNorthMps, VelUpMps: r.VelUpMps}
			if err := tr.Validate(); err != nil {
				t.Fatalf("accepted a report the engine refuses: %v: %+v", err, r)
			}
			key := sighting{r.Aircraft, r.Time.UnixNano()}
			if sightings[key] {
				t.Fatalf("accepted two reports of %q at %v", r.Aircraft, r.Time)
			}
			sightings[key] = true
		}
	})
}

// parsePositions is the intake's path through the body, as the handler
// takes it: decode (or refuse) the whole batch, then check each report.
func parsePositions(r io.Reader, partyName string, now time.Time, rl *rules.Rules) (ok []service.PositionReport, index []int, rejected []Rejection, err error) {
	reports, err := decodePositions(r)
	if err != nil {
		return nil, nil, nil, err
	}
	ok, index, rejected = checkPositions(reports, partyName, now, rl)
	return ok, index, rejected, nil
}
