package api

import (
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"
)

// wireResolution is the resolution on the wire, as far as the tests read
// it.
type wireResolution struct {
	AlertID  string `json:"alert_id"`
	Aircraft []struct {
		Party, Aircraft string
		Intruder        *struct{ Party, Aircraft string }
		Bands           struct {
			TrackDeg []wireRange `json:"track_deg"`
			AltM     []wireRange `json:"alt_m"`
		}
		Suggestion *struct {
			Kind     string
			TurnDeg  float64 `json:"turn_deg"`
			TrackDeg float64 `json:"track_deg"`
			ClimbM   float64 `json:"climb_m"`
		}
	}
}

type wireRange struct {
	Low, High float64
	Region    string
}

// regionAt is the region of the bands at x.
func regionAt(rs []wireRange, x float64) string {
	for _, r := range rs {
		if r.Low <= x && x <= r.High {
			return r.Region
		}
	}
	return ""
}

// TestResolution raises a head-on conflict and checks the resolution in
// the events and on request: each party gets its own aircraft only, with
// the other as the intruder; the current track is in conflict and the
// suggestion turns right into a free range; a third party and unknown ids
// get 404; once cleared, 410 with the time.
func TestResolution(t *testing.T) {
	e := newEnv(t, Options{})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	sc := e.openStream(e.tokens["coalition"], "")
	sr := e.openStream(e.tokens["russia"], "")

	now := time.Now()
	// Head on at the same altitude, 20 km apart.
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RF-1", 35.0, 36.1, 6000, -200, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-1", 35.0, 35.88, 6000, 200, now)}}, 202, nil)

	var id string
	for party, s := range map[string]*stream{"coalition": sc, "russia": sr} {
		ev := s.next(t)
		if ev.Kind != "alert_raised" {
			t.Fatalf("%s: first event %s", party, ev.Kind)
		}
		var a struct {
			ID         string
			Resolution *wireResolution
		}
		if err := json.Unmarshal(ev.Data.Data, &a); err != nil {
			t.Fatal(err)
		}
		id = a.ID
		checkOwnResolution(t, party, a.Resolution)
	}
	for party, tok := range map[string]string{"coalition": e.tokens["coalition"], "russia": e.tokens["russia"]} {
		var res wireResolution
		e.mustDo("GET", "/v1/alerts/"+id+"/resolution", tok, nil, http.StatusOK, &res)
		checkOwnResolution(t, party, &res)
	}
	var all wireResolution
	e.mustDo("GET", "/v1/alerts/"+id+"/resolution", e.operator, nil, http.StatusOK, &all)
	if len(all.Aircraft) != 2 {
		t.Fatalf("the operator gets %d aircraft", len(all.Aircraft))
	}
	e.mustDo("GET", "/v1/alerts/"+id+"/resolution", third.Token, nil, http.StatusNotFound, nil)
	e.mustDo("GET", "/v1/alerts/nosuchalert/resolution", e.tokens["coalition"], nil, http.StatusNotFound, nil)

	// Both turn away and keep reporting until the alert clears.
	var cleared bool
	for step := 1; step <= 20 && !cleared; step++ {
		at := now.Add(time.Duration(step) * time.Second)
		e.advance(time.Second)
		e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{reportNorth("RF-1", 35.0, 36.1, 6000, 200, at)}}, 202, nil)
		e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{reportNorth("US-1", 35.0, 35.88, 6000, -200, at)}}, 202, nil)
		code, _, _ := e.do("GET", "/v1/alerts/"+id+"/resolution", e.tokens["coalition"], nil)
		cleared = code == http.StatusGone
	}
	if !cleared {
		t.Fatal("the alert did not clear")
	}
	var gone struct {
		Status    int
		ClearedAt time.Time `json:"cleared_at"`
	}
	e.mustDo("GET", "/v1/alerts/"+id+"/resolution", e.tokens["russia"], nil, http.StatusGone, &gone)
	if gone.ClearedAt.IsZero() || gone.ClearedAt.Before(now) {
		t.Fatalf("cleared at %v", gone.ClearedAt)
	}
	e.mustDo("GET", "/v1/alerts/"+id+"/resolution", third.Token, nil, http.StatusNotFound, nil)
}

// reportNorth is a report flying north or south.
func reportNorth(aircraft string, lat, lon, altM, velNorthMps float64, at time.Time) map[string]any {
	r := report(aircraft, lat, lon, altM, 0, at)
	r["vel_north_mps"] = velNorthMps
	return r
}

// checkOwnResolution: the party's own aircraft only, the other party's as
// the intruder; the current track (east for the coalition, west for
// russia) in conflict, the suggestion a right turn to a free track.
func checkOwnResolution(t *testing.T, party string, res *wireResolution) {
	t.Helper()
	if res == nil || len(res.Aircraft) != 1 {
		t.Fatalf("%s: resolution %+v", party, res)
	}
	ac := res.Aircraft[0]
	own, other, track := "US-1", "RF-1", 90.0
	if party == "russia" {
		own, other, track = "RF-1", "US-1", 270.0
	}
	if ac.Party != party || ac.Aircraft != own || ac.Intruder == nil || ac.Intruder.Aircraft != other {
		t.Fatalf("%s: %+v", party, ac)
	}
	if r := regionAt(ac.Bands.TrackDeg, track); r == "NONE" || r == "" {
		t.Fatalf("%s: the current track %v is %q in %+v", party, track, r, ac.Bands.TrackDeg)
	}
	if ac.Suggestion == nil || ac.Suggestion.Kind != "turn" || ac.Suggestion.TurnDeg <= 0 {
		t.Fatalf("%s: suggestion %+v", party, ac.Suggestion)
	}
	// The suggestion is clear of the intruder as flown; the instantaneous
	// bands of the new track (flown from now, without the reaction time)
	// need not be, but a turn twice as large is free there.
	turned := math.Mod(track+2*ac.Suggestion.TurnDeg, 360)
	if r := regionAt(ac.Bands.TrackDeg, turned); r != "NONE" {
		t.Fatalf("%s: track %v is %q in %+v", party, turned, r, ac.Bands.TrackDeg)
	}
	t.Logf("%s: suggestion %+v; track bands %+v", party, *ac.Suggestion, ac.Bands.TrackDeg)
}

// TestResolutionNeedToKnow: the bands of a party's aircraft consider the
// aircraft disclosed to the party and no other. A third party's aircraft
// 2,500 m above the alert's aircraft (within the disclosure distance) on
// the intruder's path makes its level conflicting; another one 3,500 m
// above (beyond it, so not disclosed) leaves its level free.
func TestResolutionNeedToKnow(t *testing.T) {
	e := newEnv(t, Options{})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	sc := e.openStream(e.tokens["coalition"], "")
	now := time.Now()
	e.mustDo("POST", "/v1/positions", third.Token, map[string]any{"reports": []any{
		report("BY-NEAR", 35.0, 36.1, 8500, -200, now),
		report("BY-FAR", 35.0, 36.1, 9500, -200, now),
	}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RF-1", 35.0, 36.1, 6000, -200, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-1", 35.0, 35.88, 6000, 200, now)}}, 202, nil)
	ev := sc.next(t)
	var a struct{ ID string }
	if err := json.Unmarshal(ev.Data.Data, &a); err != nil || ev.Kind != "alert_raised" {
		t.Fatalf("%s %v", ev.Kind, err)
	}
	// The bystander's next reports, now that the coalition's aircraft
	// flies: an aircraft's disclosure is decided at its own reports.
	later := now.Add(time.Second)
	e.mustDo("POST", "/v1/positions", third.Token, map[string]any{"reports": []any{
		report("BY-NEAR", 35.0, 36.1-200.0/91_000, 8500, -200, later),
		report("BY-FAR", 35.0, 36.1-200.0/91_000, 9500, -200, later),
	}}, 202, nil)
	var res wireResolution
	e.mustDo("GET", "/v1/alerts/"+a.ID+"/resolution", e.tokens["coalition"], nil, http.StatusOK, &res)
	alt := res.Aircraft[0].Bands.AltM
	if r := regionAt(alt, 8500); r == "NONE" {
		t.Fatalf("the disclosed aircraft's level is free: %+v", alt)
	}
	if r := regionAt(alt, 9500); r != "NONE" {
		t.Fatalf("the undisclosed aircraft's level is %s: %+v", r, alt)
	}
	var tr struct{ Tracks []wireTrack }
	e.mustDo("GET", "/v1/tracks", e.tokens["coalition"], nil, 200, &tr)
	for _, x := range tr.Tracks {
		if x.Aircraft == "BY-FAR" {
			t.Fatal("BY-FAR is disclosed to the coalition: the test's premise fails")
		}
	}
}
