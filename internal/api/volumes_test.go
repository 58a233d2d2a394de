package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
)

// circleVolume is a circle of radius 5 km at lat/lon, for the next two hours.
func circleVolume(lat, lon float64, details string, key []map[string]string) map[string]any {
	now := time.Now().UTC().Truncate(time.Second)
	b := map[string]any{
		"footprint":   map[string]any{"type": "Circle", "center": []float64{lon, lat}, "radius_m": 5000},
		"alt_lower_m": 5000, "alt_upper_m": 7000,
		"start": now, "end": now.Add(2 * time.Hour),
		"priority": 0, "state": "accepted",
		"details": map[string]string{"mission": details},
	}
	if key != nil {
		b["key"] = key
	}
	return b
}

type wireVolume struct {
	ID        string          `json:"id"`
	Party     string          `json:"party"`
	Version   string          `json:"version"`
	State     string          `json:"state"`
	Details   json.RawMessage `json:"details"`
	Conflicts []struct{ ID string }
}

func TestVolumesKeyConflictAndReducedView(t *testing.T) {
	e := newEnv(t, Options{})
	sc := e.openStream(e.tokens["coalition"], "")
	sr := e.openStream(e.tokens["russia"], "")

	var a wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35.4, 36.0, "strike-raqqa", nil), 201, &a)
	if a.Party != "coalition" || a.Version == "" || !strings.Contains(string(a.Details), "strike-raqqa") {
		t.Fatalf("created %+v", a)
	}
	if ev := sc.next(t); ev.Kind != "volume_changed" {
		t.Fatalf("owner event %+v", ev)
	}

	// Another party sees it reduced.
	var seen wireVolume
	b := e.mustDo("GET", "/v1/volumes/"+a.ID, e.tokens["russia"], nil, 200, &seen)
	if seen.ID != a.ID || strings.Contains(string(b), "strike-raqqa") || strings.Contains(string(b), "details") {
		t.Fatalf("reduced view: %s", b)
	}
	b = e.mustDo("GET", "/v1/volumes?bbox=35,35,37,36&alt=0,10000", e.tokens["russia"], nil, 200, nil)
	if !strings.Contains(string(b), a.ID) || strings.Contains(string(b), "strike-raqqa") {
		t.Fatalf("query as another party: %s", b)
	}

	// A conflicting volume without the key: 409 listing exactly a, reduced.
	code, body, _ := e.do("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35.42, 36.02, "cap", nil))
	var p struct {
		Type    string
		Missing []wireVolume
	}
	_ = json.Unmarshal(body, &p)
	if code != 409 || p.Type != ProblemBase+"missing-key" || len(p.Missing) != 1 || p.Missing[0].ID != a.ID || strings.Contains(string(body), "strike-raqqa") {
		t.Fatalf("missing key: %d %s", code, body)
	}
	// With the key it is stored, and both parties hear of the conflict.
	var r wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35.42, 36.02, "cap", []map[string]string{{"id": a.ID, "version": a.Version}}), 201, &r)
	if len(r.Conflicts) != 1 || r.Conflicts[0].ID != a.ID {
		t.Fatalf("conflicts %+v", r.Conflicts)
	}
	kinds := map[string][]string{}
	for name, s := range map[string]*stream{"coalition": sc, "russia": sr} {
		for {
			ev := s.next(t)
			kinds[name] = append(kinds[name], ev.Kind)
			if ev.Kind == "volume_conflict" {
				if strings.Contains(string(ev.Data.Data), "strike-raqqa") || strings.Contains(string(ev.Data.Data), `"cap"`) {
					t.Fatalf("volume_conflict carries details: %s", ev.Data.Data)
				}
				break
			}
		}
	}
	if strings.Join(kinds["coalition"], ",") != "volume_conflict" || strings.Join(kinds["russia"], ",") != "volume_changed,volume_conflict" {
		t.Fatalf("events: %v", kinds)
	}

	// Stale version and state changes.
	upd := circleVolume(35.4, 36.0, "strike-raqqa-2", []map[string]string{{"id": r.ID, "version": r.Version}})
	upd["version"] = "stale"
	if code, body, _ := e.do("PUT", "/v1/volumes/"+a.ID, e.tokens["coalition"], upd); code != 409 || !strings.Contains(string(body), "stale-version") {
		t.Fatalf("stale update: %d %s", code, body)
	}
	var ended wireVolume
	e.mustDo("POST", "/v1/volumes/"+a.ID+"/state", e.tokens["coalition"], map[string]any{"state": "ended", "version": a.Version}, 200, &ended)
	if ended.State != "ended" || ended.Version == a.Version {
		t.Fatalf("ended %+v", ended)
	}
}

// No party can deny the airspace to the others on its own: the attack
// that made every other party's write fail with higher-priority (priority
// 2^63-1 on a 200 km circle from -1,000 to 30,000 m) is refused field by
// field, and priority is only what the agreed rules grant.
func TestPriorityAndExtentAreAgreedNotChosen(t *testing.T) {
	e := newEnv(t, Options{})
	attack := circleVolume(35, 36, "deny", nil)
	attack["priority"] = int64(math.MaxInt64)
	attack["footprint"] = map[string]any{"type": "Circle", "center": []float64{36, 35}, "radius_m": 200_000}
	attack["alt_lower_m"], attack["alt_upper_m"] = -1000, 30_000
	if code, body, _ := e.do("POST", "/v1/volumes", e.tokens["coalition"], attack); code != 400 {
		t.Fatalf("the attack: %d %s", code, body)
	}
	for _, c := range []struct {
		field string
		value any
	}{
		{"priority", int64(math.MaxInt64)},
		{"priority", 1},
		{"footprint", map[string]any{"type": "Circle", "center": []float64{36, 35}, "radius_m": 200_000}},
		{"alt_lower_m", -1000},
		{"alt_upper_m", 999_999},
		{"alt_upper_m", 25_000}, // a band of 20,000 m
	} {
		body := withField(circleVolume(35, 36, "x", nil), c.field, c.value)
		code, b, _ := e.do("POST", "/v1/volumes", e.tokens["coalition"], body)
		var p Problem
		_ = json.Unmarshal(b, &p)
		if code != 400 || p.Field != c.field {
			t.Errorf("%s %v: %d %s", c.field, c.value, code, b)
		}
	}
	// Once the rules grant it, a party uses priority up to its grant.
	var r rules.Rules
	e.mustDo("GET", "/v1/rules", e.tokens["russia"], nil, 200, &r)
	r.PriorityMax = map[string]int{"coalition": 2}
	e.agreeRules(r)
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], withField(circleVolume(35, 36, "medevac", nil), "priority", 2), 201, nil)
	if code, b, _ := e.do("POST", "/v1/volumes", e.tokens["russia"], withField(circleVolume(40, 40, "x", nil), "priority", 1)); code != 400 {
		t.Errorf("a party without a grant: %d %s", code, b)
	}
}

// A party holds at most MaxVolumesPerParty live volumes and
// MaxPositionsPerParty positions in their footprints: a write beyond
// either is 429 too-many-volumes and stores nothing; another party is not
// held back by it. 400 polygons of 1,000 vertices from one party made
// every other party's listing 15 MB (200 MB as KML), and nothing bounded
// them.
func TestVolumesBoundPerParty(t *testing.T) {
	e := newEnvConfig(t, openTestStore(t), Options{}, func(c *service.Config) {
		c.MaxVolumesPerParty, c.MaxPositionsPerParty = 2, 500
	})
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(10, 10, "one", nil), 201, nil)
	var second wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(20, 20, "two", nil), 201, &second)
	before := fingerprint(t, e.st)
	var p struct{ Type, Detail, Field string }
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(30, 30, "three", nil), http.StatusTooManyRequests, &p)
	if p.Type != ProblemBase+"too-many-volumes" || !strings.Contains(p.Detail, "2 live volumes") {
		t.Fatalf("refusal %+v, want too-many-volumes naming the limit of 2", p)
	}
	if after := fingerprint(t, e.st); after != before {
		t.Fatalf("a refused write changed the store:\n%s\n%s", before, after)
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(30, 30, "theirs", nil), 201, nil)
	// A cancelled volume makes room.
	e.mustDo("POST", "/v1/volumes/"+second.ID+"/state", e.tokens["coalition"], map[string]any{"state": "cancelled", "version": second.Version}, 200, nil)
	detailed := circleVolume(40, 40, "detailed", nil)
	detailed["footprint"] = regularPolygon(40, 40, 0.05, 1000)
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], detailed, http.StatusTooManyRequests, &p)
	if p.Type != ProblemBase+"too-many-volumes" || p.Field != "footprint" || !strings.Contains(p.Detail, "500 positions") {
		t.Fatalf("refusal %+v, want too-many-volumes naming the footprint and the limit of 500 positions", p)
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(40, 40, "three", nil), 201, nil)
}

// TestNamedVolumesShowTheirConflictsAsRead: another party's volume named in
// a 409 missing-key or in the answer of POST /v1/volumes/alternatives shows
// the conflicts the caller reads in GET /v1/volumes/{id} (under
// volume_visibility "all", every one), not an empty list that reads as
// "conflicts with nothing".
func TestNamedVolumesShowTheirConflictsAsRead(t *testing.T) {
	e := newEnv(t, Options{})
	var first, second wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35.4, 36.0, "cap-1", nil), 201, &first)
	// The coalition's volume conflicts with russia's: it names it.
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(35.42, 36.02, "strike", []map[string]string{{"id": first.ID, "version": first.Version}}), 201, &second)
	var read wireVolume
	e.mustDo("GET", "/v1/volumes/"+second.ID, e.tokens["russia"], nil, 200, &read)
	if len(read.Conflicts) != 1 || read.Conflicts[0].ID != first.ID {
		t.Fatalf("the coalition's volume as russia reads it: conflicts %+v", read.Conflicts)
	}
	// Russia declares another volume there without a key.
	code, body, _ := e.do("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35.43, 36.03, "cap-2", nil))
	var p struct{ Missing []wireVolume }
	_ = json.Unmarshal(body, &p)
	if code != 409 || len(p.Missing) != 1 || p.Missing[0].ID != second.ID {
		t.Fatalf("missing key: %d %s", code, body)
	}
	if fmt.Sprint(p.Missing[0].Conflicts) != fmt.Sprint(read.Conflicts) {
		t.Errorf("the 409 shows the coalition's volume with conflicts %+v, GET with %+v", p.Missing[0].Conflicts, read.Conflicts)
	}
	var alts struct{ Conflicts []wireVolume }
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["russia"], circleVolume(35.43, 36.03, "cap-2", nil), 200, &alts)
	if len(alts.Conflicts) != 1 || fmt.Sprint(alts.Conflicts[0].Conflicts) != fmt.Sprint(read.Conflicts) {
		t.Errorf("the alternatives' answer shows %+v, GET conflicts %+v", alts.Conflicts, read.Conflicts)
	}
}

// polygonVolume is circleVolume's volume with a footprint of a regular
// polygon of n vertices, radiusM around (lat, lon).
func polygonVolume(lat, lon, radiusM float64, n int) map[string]any {
	b := circleVolume(lat, lon, "polygon", nil)
	ring := make([][]float64, 0, n+1)
	for i := range n {
		a := 2 * math.Pi * float64(i) / float64(n)
		ring = append(ring, []float64{lon + radiusM*math.Cos(a)/(111_320*math.Cos(lat*math.Pi/180)), lat + radiusM*math.Sin(a)/111_320})
	}
	ring = append(ring, ring[0])
	b["footprint"] = map[string]any{"type": "Polygon", "coordinates": [][][]float64{ring}}
	return b
}

// A party's volume writes are counted against its budget by the positions
// of the footprints they compile and check, not by request: compiling and
// checking a corridor of 1,000 positions took 13 ms where a circle took
// 2 µs, and counted by request one party writing large footprints at the
// request rate kept every core busy. A write reserves the most its body
// can hold (a position per 6 bytes, at most the largest footprint) and is
// charged its positions and 40; a state change is charged the positions of
// the stored volume, which it compiles and checks again. A write the
// budget does not hold is refused with 429 too-many-volume-positions and
// Retry-After, changing nothing; small writes go on, and the other parties
// write as their own budgets let them.
func TestVolumeWritesBudgetCountsPositions(t *testing.T) {
	e := newEnv(t, Options{VolumePositionsPerSecond: 0.001, VolumePositionsBurst: 3_000})
	big := polygonVolume(35, 36, 5_000, 999)
	var first wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], big, http.StatusCreated, &first) // 1,040 charged: 1,960 left
	code, body, hdr := e.do("POST", "/v1/volumes", e.tokens["coalition"], polygonVolume(36, 36, 5_000, 999))
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-volume-positions" || !strings.Contains(p.Detail, "--volume-positions-per-second") {
		t.Fatalf("a second write of 1,000 positions: %d %s, want 429 too-many-volume-positions naming the flag", code, body)
	}
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	var list struct{ Volumes []wireVolume }
	e.mustDo("GET", "/v1/volumes", e.tokens["coalition"], nil, http.StatusOK, &list)
	if len(list.Volumes) != 1 {
		t.Fatalf("%d volumes after the refusal, want the first only", len(list.Volumes))
	}
	var small wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], circleVolume(37, 36, "small", nil), http.StatusCreated, &small) // 1,919 left

	// A state change compiles the stored footprint: charged its 1,000
	// positions and 40.
	var changed wireVolume
	e.mustDo("POST", "/v1/volumes/"+first.ID+"/state", e.tokens["coalition"], map[string]any{"state": "accepted", "version": first.Version}, http.StatusOK, &changed) // 879 left
	code, body, _ = e.do("POST", "/v1/volumes/"+first.ID+"/state", e.tokens["coalition"], map[string]any{"state": "accepted", "version": changed.Version})
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-volume-positions" || !strings.Contains(p.Detail, "1000 positions") {
		t.Fatalf("a second state change of 1,000 positions: %d %s, want 429 naming them", code, body)
	}
	e.wantRefusals(budgetVolumes, "coalition", 2)
	e.mustDo("GET", "/v1/volumes/"+first.ID, e.tokens["coalition"], nil, http.StatusOK, &list.Volumes[0])
	if list.Volumes[0].Version != changed.Version {
		t.Fatalf("the refused state change changed the volume: version %s, want %s", list.Volumes[0].Version, changed.Version)
	}
	e.mustDo("POST", "/v1/volumes/"+small.ID+"/state", e.tokens["coalition"], map[string]any{"state": "cancelled", "version": small.Version}, http.StatusOK, nil)

	// Another party's budget is its own.
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], polygonVolume(38, 36, 5_000, 999), http.StatusCreated, nil)
}
