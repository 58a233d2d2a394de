package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/volume"
)

// wireAlternative is an alternative on the wire, as far as tests read it.
type wireAlternative struct {
	Change    string
	ClimbM    float64 `json:"climb_m"`
	ShiftS    float64 `json:"shift_s"`
	AltLowerM float64 `json:"alt_lower_m"`
	AltUpperM float64 `json:"alt_upper_m"`
}

// TestAlternativesOfAConflictingWrite: russia holds 5,000-7,000 m over a
// circle; the coalition's write over the same circle conflicts. The 409
// missing key carries alternatives, the nearest first; each declares
// without conflict as it is; POST /v1/volumes/alternatives answers the
// same without storing anything; a write accepted with the key carries
// them too; an invalid write gets the write's own 400.
func TestAlternativesOfAConflictingWrite(t *testing.T) {
	e := newEnv(t, Options{})
	var theirs wireVolume
	russian := circleVolume(35, 36, "russian", nil)
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], russian, 201, &theirs)

	mine := circleVolume(35, 36.02, "ours", nil)
	var refused struct {
		Type         string
		Missing      []wireVolume
		Alternatives []wireAlternative
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], mine, http.StatusConflict, &refused)
	if len(refused.Missing) != 1 || len(refused.Alternatives) == 0 {
		t.Fatalf("409 %+v", refused)
	}
	byChange := map[string]wireAlternative{}
	for _, a := range refused.Alternatives {
		key := a.Change
		if a.ClimbM > 0 || a.ShiftS > 0 {
			key += "+"
		} else {
			key += "-"
		}
		byChange[key] = a
	}
	// Up: right above 7,000 m plus 1,000 ft; down: 1,000 ft below 5,000 m,
	// the same thickness.
	sep := 304.8
	if a := byChange["altitude+"]; a.AltLowerM != 7000+sep || a.AltUpperM != 9000+sep || a.ClimbM != 2000+sep {
		t.Fatalf("upward alternative %+v", a)
	}
	if a := byChange["altitude-"]; a.AltUpperM != 5000-sep || a.AltLowerM != 3000-sep {
		t.Fatalf("downward alternative %+v", a)
	}
	// Both windows start at the second the volume was made: a second
	// may have passed between the two.
	later := russian["end"].(time.Time).Sub(mine["start"].(time.Time)) + 2*time.Minute
	if a := byChange["time+"]; a.ShiftS != later.Seconds() {
		t.Fatalf("later alternative %+v: want %v, to the end of russia's window plus two buffers", a, later)
	}

	// Nothing was stored by asking.
	var planned struct {
		Conflicts    []wireVolume
		Alternatives []wireAlternative
	}
	before := fingerprint(t, e.st)
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], mine, http.StatusOK, &planned)
	if after := fingerprint(t, e.st); after != before {
		t.Fatalf("asking for alternatives changed the store:\n%s\n%s", before, after)
	}
	if len(planned.Conflicts) != 1 || len(planned.Alternatives) != len(refused.Alternatives) {
		t.Fatalf("alternatives answer %+v, the 409 had %+v", planned, refused)
	}

	// Each declares as it is, conflicting with nothing.
	var raw struct{ Alternatives []map[string]any }
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], mine, http.StatusOK, &raw)
	for i, a := range raw.Alternatives {
		delete(a, "change")
		delete(a, "climb_m")
		delete(a, "shift_s")
		a["state"] = "proposed"
		var v wireVolume
		e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], a, http.StatusCreated, &v)
		if len(v.Conflicts) != 0 {
			t.Fatalf("alternative %d conflicts once declared: %+v", i, v)
		}
		e.mustDo("POST", "/v1/volumes/"+v.ID+"/state", e.tokens["coalition"], map[string]any{"state": "cancelled", "version": v.Version}, 200, nil)
	}

	// Declared with the key, it is accepted though it conflicts: the
	// answer carries the alternatives too.
	keyed := circleVolume(35, 36.02, "ours", []map[string]string{{"id": theirs.ID, "version": theirs.Version}})
	var accepted struct {
		Conflicts    []any
		Alternatives []wireAlternative
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], keyed, http.StatusCreated, &accepted)
	if len(accepted.Conflicts) != 1 || len(accepted.Alternatives) == 0 {
		t.Fatalf("accepted with conflicts: %+v", accepted)
	}

	// An invalid volume: the same 400 as the write.
	bad := circleVolume(35, 36.02, "ours", nil)
	bad["alt_upper_m"] = 1000
	_, wrote, _ := e.do("POST", "/v1/volumes", e.tokens["coalition"], bad)
	code, asked, _ := e.do("POST", "/v1/volumes/alternatives", e.tokens["coalition"], bad)
	if code != http.StatusBadRequest || string(asked) != string(wrote) {
		t.Fatalf("alternatives of an invalid volume: %d %s; the write said %s", code, asked, wrote)
	}
}

// TestAlternativesNeedToKnow: under volume_visibility need_to_know, the
// alternatives of a write consider the volumes the writer may see and
// those its write conflicts with, and no other: a third party's volume
// right above russia's, which the coalition neither conflicts with nor
// may see, does not move the upward alternative (it would tell the
// coalition where that volume is).
func TestAlternativesNeedToKnow(t *testing.T) {
	e := newEnv(t, Options{})
	e.agreeRules(map[string]any{"volume_visibility": "need_to_know"})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35, 36, "russian", nil), 201, nil)
	above := circleVolume(35, 36, "hidden", nil)
	above["alt_lower_m"], above["alt_upper_m"] = 7400, 9000
	e.mustDo("POST", "/v1/volumes", third.Token, above, 201, nil)

	var planned struct{ Alternatives []wireAlternative }
	mine := circleVolume(35, 36.02, "ours", nil)
	mine["alt_lower_m"], mine["alt_upper_m"] = 6000, 6500
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], mine, http.StatusOK, &planned)
	found := false
	for _, a := range planned.Alternatives {
		if a.Change == "altitude" && a.ClimbM > 0 {
			found = true
			if a.AltLowerM != 7000+304.8 {
				t.Fatalf("the upward alternative %+v moved for a volume the coalition may not see", a)
			}
		}
	}
	if !found {
		t.Fatalf("no upward alternative in %+v", planned.Alternatives)
	}
}

// TestAlternativesOfAHigherPriorityRefusal: russia, granted priority 2 by
// the rules, holds 5,000-7,000 m over a circle; the coalition's write
// there, with a complete key, is refused 409 higher-priority, and that
// answer carries the alternatives too, each of which declares without
// conflict.
func TestAlternativesOfAHigherPriorityRefusal(t *testing.T) {
	e := newEnv(t, Options{})
	var r rules.Rules
	e.mustDo("GET", "/v1/rules", e.tokens["russia"], nil, 200, &r)
	r.PriorityMax = map[string]int{"russia": 2}
	e.agreeRules(r)
	var theirs wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], withField(circleVolume(35, 36, "medevac", nil), "priority", 2), 201, &theirs)

	mine := circleVolume(35, 36.02, "ours", []map[string]string{{"id": theirs.ID, "version": theirs.Version}})
	var refused struct {
		Type         string
		Conflicts    []wireVolume
		Alternatives []map[string]any
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], mine, http.StatusConflict, &refused)
	if !strings.HasSuffix(refused.Type, "higher-priority") || len(refused.Conflicts) != 1 || len(refused.Alternatives) == 0 {
		t.Fatalf("409 %+v", refused)
	}
	for i, a := range refused.Alternatives {
		for _, k := range []string{"change", "climb_m", "shift_s"} {
			delete(a, k)
		}
		var v wireVolume
		e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], a, http.StatusCreated, &v)
		if len(v.Conflicts) != 0 {
			t.Fatalf("alternative %d conflicts once declared: %+v", i, v)
		}
		e.mustDo("POST", "/v1/volumes/"+v.ID+"/state", e.tokens["coalition"], map[string]any{"state": "cancelled", "version": v.Version}, 200, nil)
	}
}

// A party's searches of alternatives are counted against its budget of
// checks (a search may make volume.MaxAlternativesChecks, a tenth of a
// second of a core; at the request rate alone one party kept every core
// busy): each reserves what it may cost among the volumes near it and is
// charged what it made. Once the budget does not hold a search, POST
// /v1/volumes/alternatives is refused with 429
// too-many-alternatives-checks and Retry-After, and a volume write is
// still judged and answered, refused or accepted, without its
// alternatives and saying so; the other parties search on.
func TestAlternativesBudgetCountsChecks(t *testing.T) {
	e := newEnv(t, Options{AlternativesChecksPerSecond: 0.001})
	var theirs wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35, 36, "russian", nil), 201, &theirs)
	mine := circleVolume(35, 36.02, "ours", nil)

	var planned struct{ Alternatives []wireAlternative }
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], mine, http.StatusOK, &planned)
	if len(planned.Alternatives) == 0 {
		t.Fatalf("first search: no alternatives")
	}
	// The budget left holds the reading of a request, not a search.
	e.spendAlternativesBudget("coalition", 5_000)
	code, body, hdr := e.do("POST", "/v1/volumes/alternatives", e.tokens["coalition"], mine)
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-alternatives-checks" || !strings.Contains(p.Detail, "--alternatives-checks-per-second") {
		t.Fatalf("second search: %d %s, want 429 too-many-alternatives-checks naming the flag", code, body)
	}
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	e.wantRefusals(budgetAlternatives, "coalition", 1)

	// A write is judged as ever: refused for the missing key, without
	// alternatives, saying why.
	var refused struct {
		Type                string
		Missing             []wireVolume
		Alternatives        []wireAlternative
		AlternativesOmitted string `json:"alternatives_omitted"`
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], mine, http.StatusConflict, &refused)
	if refused.Type != ProblemBase+"missing-key" || len(refused.Missing) != 1 || len(refused.Alternatives) != 0 || refused.AlternativesOmitted != "budget" {
		t.Fatalf("409 with the budget spent: %+v", refused)
	}
	// Accepted with the key though it conflicts: stored, without its
	// alternatives.
	keyed := circleVolume(35, 36.02, "ours", []map[string]string{{"id": theirs.ID, "version": theirs.Version}})
	var accepted struct {
		ID                  string
		Conflicts           []any
		Alternatives        []wireAlternative
		AlternativesOmitted string `json:"alternatives_omitted"`
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], keyed, http.StatusCreated, &accepted)
	if len(accepted.Conflicts) != 1 || len(accepted.Alternatives) != 0 || accepted.AlternativesOmitted != "budget" {
		t.Fatalf("accepted with the budget spent: %+v", accepted)
	}
	e.mustDo("GET", "/v1/volumes/"+accepted.ID, e.tokens["coalition"], nil, http.StatusOK, nil)
	// Each search omitted is a refusal too.
	e.wantRefusals(budgetAlternatives, "coalition", 3)

	// Another party's budget is its own.
	var russians struct{ Alternatives []wireAlternative }
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["russia"], circleVolume(35, 36.01, "again", nil), http.StatusOK, &russians)
	if len(russians.Alternatives) == 0 {
		t.Fatalf("russia's search: no alternatives")
	}
}

// spendAlternativesBudget leaves party's budget of checks of alternatives
// holding left (of a budget not spent yet, refilling too slowly to count).
func (e *env) spendAlternativesBudget(party string, left float64) {
	e.t.Helper()
	l := e.handler.alternatives.limiter
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buckets[party] = &bucket{tokens: left, last: time.Now()}
}

// A search reserves what it may cost among the volumes near it, not the
// bound of the largest search: with its budget holding a million checks,
// far less than a search at its bound (20 million) and far more than a
// search among one volume, a party searches; when its budget does not hold
// even that, Retry-After is the time until it holds that search, not a
// search at its bound (at a low --alternatives-checks-per-second, hours).
func TestAlternativesBudgetReservesWhatASearchMayCost(t *testing.T) {
	const checksPerS = 100
	e := newEnv(t, Options{AlternativesChecksPerSecond: checksPerS})
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35, 36, "russian", nil), 201, nil)
	mine := circleVolume(35, 36.02, "ours", nil)

	e.spendAlternativesBudget("coalition", 1_000_000)
	var planned struct{ Alternatives []wireAlternative }
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], mine, http.StatusOK, &planned)
	if len(planned.Alternatives) == 0 {
		t.Fatalf("no alternatives")
	}
	// A write's search likewise.
	var refused struct {
		Alternatives        []wireAlternative
		AlternativesOmitted string `json:"alternatives_omitted"`
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], mine, http.StatusConflict, &refused)
	if len(refused.Alternatives) == 0 || refused.AlternativesOmitted != "" {
		t.Fatalf("a write's search with a million checks in the budget: %+v", refused)
	}

	// Less than a search among one volume may cost: refused, to be sent
	// again once the budget holds that search.
	e.spendAlternativesBudget("coalition", 5_000)
	code, body, hdr := e.do("POST", "/v1/volumes/alternatives", e.tokens["coalition"], mine)
	if code != http.StatusTooManyRequests {
		t.Fatalf("%d %s, want 429", code, body)
	}
	mostChecks := volume.AlternativesChecksBound(1) + service.AlternativesSearchOverheadChecks
	var p Problem
	_ = json.Unmarshal(body, &p)
	if !strings.Contains(p.Detail, strconv.Itoa(mostChecks)+" checks") {
		t.Fatalf("the refusal does not name the %d checks the search may cost: %s", mostChecks, p.Detail)
	}
	wantMaxS := (mostChecks + checksPerS - 1) / checksPerS
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 || s > wantMaxS {
		t.Fatalf("Retry-After %q, want 1 to %d s (a search at its bound would be %d s)", hdr.Get("Retry-After"), wantMaxS, service.MaxAlternativesSearchChecks/checksPerS)
	}
}

// The alternatives endpoint compiles and checks the footprint asked as a
// write does (13 ms for a corridor of 1,000 positions): it is paid from
// the party's planning budget, that of previewed footprints, by the
// footprint's positions, and refused with 429 too-many-preview-positions
// when that does not hold them.
func TestAlternativesPaysTheFootprintsPositions(t *testing.T) {
	e := newEnv(t, Options{PreviewPositionsPerSecond: 0.001, PreviewPositionsBurst: 2_500})
	big := polygonVolume(35, 36, 5_000, 999)
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], big, http.StatusOK, nil) // 1,000 charged
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], big, http.StatusOK, nil) // 500 left
	code, body, hdr := e.do("POST", "/v1/volumes/alternatives", e.tokens["coalition"], big)
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-preview-positions" || !strings.Contains(p.Detail, "1000 positions") || hdr.Get("Retry-After") == "" {
		t.Fatalf("a third search for a footprint of 1,000 positions: %d %s, want 429 too-many-preview-positions naming them", code, body)
	}
	e.wantRefusals(budgetPreviewPositions, "coalition", 1)
	e.wantRefusals(budgetVolumes, "coalition", 0)
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], circleVolume(35, 36, "small", nil), http.StatusOK, nil)
}

// A request for alternatives writes nothing: it must never keep its party
// from declaring or ending a volume, which deconfliction needs. Paid from
// the budget of volume writes, a party asking alternatives as fast as that
// budget refilled was refused (429) its declarations and state changes.
// It pays from the planning budget previews pay from: planning waits on
// planning only, a preview's and a request for alternatives' alike.
func TestAlternativesNeverHoldBackVolumeWrites(t *testing.T) {
	e := newEnv(t, Options{VolumePositionsPerSecond: 0.001, VolumePositionsBurst: 3_000})
	big := polygonVolume(35, 36, 5_000, 999) // 1,000 positions
	for range 3 {                            // the planning budget's burst, spent
		e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], big, http.StatusOK, nil)
	}
	// The write of that footprint and the end of it, at once.
	var v wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], big, http.StatusCreated, &v)
	e.mustDo("POST", "/v1/volumes/"+v.ID+"/state", e.tokens["coalition"], map[string]any{"state": "ended", "version": v.Version}, http.StatusOK, nil)
	code, body, hdr := e.do("POST", "/v1/volumes/alternatives", e.tokens["coalition"], big)
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-preview-positions" || !strings.Contains(p.Detail, "--preview-positions-per-second") || hdr.Get("Retry-After") == "" {
		t.Fatalf("a request for alternatives with the planning budget spent: %d %s, want 429 too-many-preview-positions naming the flag", code, body)
	}
	e.wantRefusals(budgetVolumes, "coalition", 0)
	e.wantRefusals(budgetPreviewPositions, "coalition", 1)

	// A preview beyond the burst leaves the planning budget owing: the
	// party's requests for alternatives wait for it too.
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	e.mustDo("POST", path, e.tokens["russia"], polygonsOpenAir(4, 999), http.StatusOK, nil)
	code, body, _ = e.do("POST", "/v1/volumes/alternatives", e.tokens["russia"], circleVolume(35, 36, "small", nil))
	p = Problem{}
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-preview-positions" {
		t.Fatalf("a request for alternatives after a preview beyond the burst: %d %s, want 429 too-many-preview-positions", code, body)
	}
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], circleVolume(35, 36, "declared", nil), http.StatusCreated, nil)
	e.wantRefusals(budgetVolumes, "russia", 0)
}

// TestAlternativesOfTooLargeAFootprintIsRefusedFor400: a footprint of
// more positions than the budget it was paid from can ever hold (more
// than the rules allow a footprint) was refused with 429 and a
// Retry-After, every time: a client waited and sent it again for ever
// (the console's importer for ten minutes), and never heard what was
// wrong with it. It is refused as a write of it is, 400 naming the
// footprint, charged no more than the largest footprint.
func TestAlternativesOfTooLargeAFootprintIsRefusedFor400(t *testing.T) {
	e := newEnv(t, Options{VolumePositionsPerSecond: 1})
	huge := polygonVolume(35, 36, 5_000, 3_000)
	for path, who := range map[string]string{"/v1/volumes/alternatives": "coalition", "/v1/volumes": "russia"} {
		code, body, _ := e.do("POST", path, e.tokens[who], huge)
		var p Problem
		_ = json.Unmarshal(body, &p)
		if code != http.StatusBadRequest || !strings.HasPrefix(p.Field, "footprint") {
			t.Fatalf("POST %s of a footprint of 3,001 positions: %d %s, want 400 naming the footprint", path, code, body)
		}
	}
}

// A request for alternatives refused by the planning budget is told so in
// its own words: its title and detail said "Airspace preview positions
// budget spent" and "positions of previewed footprints", to a client that
// previewed nothing. The type stays too-many-preview-positions, the
// budget's (documented in WIRE.md, counted as preview_positions), which
// previews and requests for alternatives share; a preview's own refusal
// keeps its words.
func TestAlternativesRefusalNamesTheRequest(t *testing.T) {
	e := newEnv(t, Options{PreviewPositionsPerSecond: 0.001, PreviewPositionsBurst: 2_500})
	big := polygonVolume(35, 36, 5_000, 999) // 1,000 positions
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], big, http.StatusOK, nil)
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], big, http.StatusOK, nil) // 500 left
	code, body, _ := e.do("POST", "/v1/volumes/alternatives", e.tokens["coalition"], big)
	var p Problem
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-preview-positions" {
		t.Fatalf("a request for alternatives with the planning budget spent: %d %s, want 429 too-many-preview-positions", code, body)
	}
	for _, s := range []string{p.Title, p.Detail} {
		if strings.Contains(strings.ToLower(s), "preview positions") || strings.Contains(s, "previewed footprints") {
			t.Errorf("the refusal of a request for alternatives speaks of previews as what was spent: %q", s)
		}
	}
	if !strings.Contains(p.Title, "lternatives") {
		t.Errorf("title %q does not name the request for alternatives", p.Title)
	}
	for _, want := range []string{"request for alternatives", "1000 positions", "--preview-positions-per-second", "previews"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail %q does not say %q", p.Detail, want)
		}
	}

	// A preview's refusal by the same budget keeps a preview's words.
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	code, body, _ = e.do("POST", path, e.tokens["coalition"], polygonsOpenAir(1, 999))
	p = Problem{}
	_ = json.Unmarshal(body, &p)
	if code != http.StatusTooManyRequests || p.Type != ProblemBase+"too-many-preview-positions" || !strings.Contains(p.Title, "preview") {
		t.Fatalf("a preview with the planning budget spent: %d %s, want 429 too-many-preview-positions titled a preview's", code, body)
	}
}
