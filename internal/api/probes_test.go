package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Russia's hidden volume in the probe tests: a quadrilateral around 35 N
// 37 E, about 55 km across, 4,000 to 9,000 m, for four hours from an hour
// from now. Its corners' longitudes and latitudes are figures no probe
// uses, so that an answer naming one shows russia's shape.
var hiddenCorners = [][]float64{{36.71234, 34.78765}, {37.28766, 34.81234}, {37.26543, 35.23456}, {36.73456, 35.21234}, {36.71234, 34.78765}}

func hiddenPolygon(start time.Time) map[string]any {
	return map[string]any{
		"footprint":   map[string]any{"type": "Polygon", "coordinates": [][][]float64{hiddenCorners}},
		"alt_lower_m": 4000, "alt_upper_m": 9000,
		"start": start.Add(time.Hour), "end": start.Add(5 * time.Hour),
		"priority": 0, "state": "accepted",
		"details": map[string]string{"mission": "russia-secret"},
	}
}

// probeAt is a small would-be volume of coalition: a 1 km circle,
// 6,000 to 6,500 m, from two to three hours from start.
func probeAt(lat, lon float64, start time.Time) map[string]any {
	return map[string]any{
		"footprint":   map[string]any{"type": "Circle", "center": []float64{lon, lat}, "radius_m": 1000},
		"alt_lower_m": 6000, "alt_upper_m": 6500,
		"start": start.Add(2 * time.Hour), "end": start.Add(3 * time.Hour),
		"priority": 0, "state": "accepted",
	}
}

// shownVolume is another party's volume as a probe's answer shows it.
type shownVolume struct {
	ID        string          `json:"id"`
	Party     string          `json:"party"`
	Version   string          `json:"version"`
	Footprint json.RawMessage `json:"footprint"`
	AltLowerM float64         `json:"alt_lower_m"`
	AltUpperM float64         `json:"alt_upper_m"`
	Start     time.Time       `json:"start"`
	End       time.Time       `json:"end"`
	Clipped   bool            `json:"clipped"`
}

// checkClipped fails unless v, shown in answer to probe, is clipped to
// it: the probe's own footprint, the band within the probe's grown by the
// vertical separation (304.8 m), the window within the probe's grown by
// two time buffers (2 x 60 s), and no corner of russia's shape anywhere
// in the answer.
func checkClipped(t *testing.T, what string, probe map[string]any, v shownVolume, answer []byte) {
	t.Helper()
	if !v.Clipped {
		t.Errorf("%s: russia's hidden volume is not clipped: %+v", what, v)
	}
	fp, _ := json.Marshal(probe["footprint"])
	var got, want any
	_ = json.Unmarshal(v.Footprint, &got)
	_ = json.Unmarshal(fp, &want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: the footprint shown is %s, not the probe's %s", what, v.Footprint, fp)
	}
	lower, upper := probe["alt_lower_m"].(int), probe["alt_upper_m"].(int)
	if v.AltLowerM < float64(lower)-304.8 || v.AltUpperM > float64(upper)+304.8 || v.AltLowerM >= v.AltUpperM {
		t.Errorf("%s: the band shown %g-%g reaches beyond the probe's %d-%d grown by the separation", what, v.AltLowerM, v.AltUpperM, lower, upper)
	}
	start, end := probe["start"].(time.Time), probe["end"].(time.Time)
	if v.Start.Before(start.Add(-2*time.Minute)) || v.End.After(end.Add(2*time.Minute)) || !v.Start.Before(v.End) {
		t.Errorf("%s: the window shown %s-%s reaches beyond the probe's %s-%s grown by two time buffers", what, v.Start, v.End, start, end)
	}
	for _, c := range hiddenCorners {
		for _, x := range c {
			if bytes.Contains(answer, []byte(fmt.Sprint(x))) {
				t.Errorf("%s: the answer names %v, a corner of russia's shape:\n%s", what, x, answer)
			}
		}
	}
	if bytes.Contains(answer, []byte("russia-secret")) {
		t.Errorf("%s: the answer names russia's details", what)
	}
}

// TestProbeSweepIsClippedAndRecordedForTheProbed plays coalition mapping
// russia's volume under need_to_know by sweeping small probes over the
// airspace with POST /v1/volumes/alternatives, which writes nothing.
// Every answer shows russia's volume only where it meets the probe
// (clipped), and every probe that showed it is recorded for russia: a
// volumes_probed event on its stream and an audit record it reads,
// naming coalition and the probe; the probes that met nothing are not.
// The bystander reads none of it.
func TestProbeSweepIsClippedAndRecordedForTheProbed(t *testing.T) {
	e := newEnv(t, Options{})
	e.agreeRules(map[string]any{"volume_visibility": "need_to_know"})
	var third struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &third)
	sr := e.openRawStream(e.tokens["russia"])
	start := time.Now().UTC().Truncate(time.Second)
	var hidden wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], hiddenPolygon(start), 201, &hidden)

	revealing, probes := 0, 0
	for lat := 34.5; lat <= 35.5; lat += 0.25 {
		for lon := 36.5; lon <= 37.5; lon += 0.25 {
			probe := probeAt(lat, lon, start)
			var out struct{ Conflicts []shownVolume }
			b := e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], probe, http.StatusOK, &out)
			probes++
			for _, v := range out.Conflicts {
				if v.ID != hidden.ID {
					t.Fatalf("the probe shows %+v", v)
				}
				revealing++
				checkClipped(t, fmt.Sprintf("the probe at %g,%g", lat, lon), probe, v, b)
			}
		}
	}
	if revealing == 0 || revealing == probes {
		t.Fatalf("%d of %d probes met russia's volume: the sweep should meet it with some, not all", revealing, probes)
	}

	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "end-of-sweep"}, 201, nil)
	raw := sr.waitFor(t, "end-of-sweep")
	if got := bytes.Count(raw, []byte("event: volumes_probed")); got != revealing {
		t.Errorf("russia's stream has %d volumes_probed events, want one for each of the %d probes that showed its volume:\n%s", got, revealing, raw)
	}
	for _, want := range []string{`"party":"coalition"`, `"via":"alternatives"`, hidden.ID} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("russia's stream does not name %s", want)
		}
	}
	for viewer, tok := range map[string]string{"russia": e.tokens["russia"], "coalition": e.tokens["coalition"], "bystander": third.Token} {
		b := e.mustDo("GET", "/v1/audit", tok, nil, 200, nil)
		want := revealing
		if viewer == "bystander" {
			want = 0
		}
		if got := bytes.Count(b, []byte(`"kind":"volumes_probed"`)); got != want {
			t.Errorf("%s's export shows %d volumes_probed records, want %d", viewer, got, want)
		}
	}
}

// TestProbeOfAPreviewAndARefusedWriteIsClippedAndRecorded: an airspace
// preview's item and a write refused with 409 missing-key (a creation, a
// volume moved) are probes too: each shows russia's hidden volume clipped, and is recorded for
// russia (via preview, via write). The 409 still names the volume's id
// and version, which the key needs, and the write with that key
// declares; once declared, the volume conflicts with coalition's own and
// is visible: shown whole, and no longer recorded as probed.
func TestProbeOfAPreviewAndARefusedWriteIsClippedAndRecorded(t *testing.T) {
	e := newEnv(t, Options{})
	e.agreeRules(map[string]any{"volume_visibility": "need_to_know"})
	sr := e.openRawStream(e.tokens["russia"])
	sv := e.openStream(e.tokens["russia"], "")
	start := time.Now().UTC().Truncate(time.Second)
	var hidden wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], hiddenPolygon(start), 201, &hidden)

	// An item of a GeoJSON file, at the centre of russia's shape.
	probe := probeAt(35, 37, start)
	file, _ := json.Marshal(map[string]any{"type": "FeatureCollection", "features": []any{map[string]any{
		"type": "Feature", "geometry": map[string]any{"type": "Point", "coordinates": []float64{37, 35}},
		"properties": map[string]any{"radius_m": 1000, "alt_lower_m": 6000, "alt_upper_m": 6500, "start": probe["start"], "end": probe["end"]},
	}}})
	var preview struct {
		Items []struct {
			Status    string
			Conflicts []shownVolume
		}
	}
	b := e.mustDo("POST", "/v1/volumes/preview?format=geojson", e.tokens["coalition"], file, 200, &preview)
	if len(preview.Items) != 1 || preview.Items[0].Status != "conflicting" || len(preview.Items[0].Conflicts) != 1 {
		t.Fatalf("the preview: %s", b)
	}
	checkClipped(t, "the preview", probe, preview.Items[0].Conflicts[0], b)

	code, b, _ := e.do("POST", "/v1/volumes", e.tokens["coalition"], probe)
	var refused struct {
		Type    string
		Missing []shownVolume
	}
	_ = json.Unmarshal(b, &refused)
	if code != http.StatusConflict || len(refused.Missing) != 1 || refused.Missing[0].ID != hidden.ID || refused.Missing[0].Version != hidden.Version {
		t.Fatalf("the write without a key: %d %s", code, b)
	}
	checkClipped(t, "the 409", probe, refused.Missing[0], b)

	// A volume of coalition's moved onto it: the same.
	var far wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], probeAt(30, 30, start), 201, &far)
	moved := probeAt(35, 37, start)
	moved["version"] = far.Version
	code, b, _ = e.do("PUT", "/v1/volumes/"+far.ID, e.tokens["coalition"], moved)
	refused.Missing = nil
	_ = json.Unmarshal(b, &refused)
	if code != http.StatusConflict || len(refused.Missing) != 1 || refused.Missing[0].ID != hidden.ID {
		t.Fatalf("the volume moved onto russia's: %d %s", code, b)
	}
	checkClipped(t, "the 409 of the move", moved, refused.Missing[0], b)

	probe["key"] = []map[string]string{{"id": hidden.ID, "version": hidden.Version}}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], probe, 201, nil)
	// Visible now: shown whole, not recorded.
	var out struct{ Conflicts []shownVolume }
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], probeAt(35, 37, start), 200, &out)
	if len(out.Conflicts) != 1 || out.Conflicts[0].Clipped || !bytes.Contains(out.Conflicts[0].Footprint, []byte("36.71234")) {
		t.Fatalf("russia's volume, visible to coalition, is shown as %+v", out.Conflicts)
	}

	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "end-of-probes"}, 201, nil)
	raw := sr.waitFor(t, "end-of-probes")
	// As the OpenAPI document describes them (the stream checks each
	// event's data against its schema).
	var probed []string
	for ev := sv.next(t); !bytes.Contains(ev.Data.Data, []byte("end-of-probes")); ev = sv.next(t) {
		if ev.Kind == "volumes_probed" {
			var data struct{ Party, Via string }
			_ = json.Unmarshal(ev.Data.Data, &data)
			probed = append(probed, data.Party+" via "+data.Via)
		}
	}
	if fmt.Sprint(probed) != "[coalition via preview coalition via write coalition via write]" {
		t.Errorf("russia's events volumes_probed: %v", probed)
	}
	if got := bytes.Count(raw, []byte("event: volumes_probed")); got != 3 {
		t.Errorf("russia's stream has %d volumes_probed events, want 3 (the preview and the refused writes):\n%s", got, raw)
	}
	for _, via := range []string{`"via":"preview"`, `"via":"write"`} {
		if !bytes.Contains(raw, []byte(via)) {
			t.Errorf("russia's stream has no probe %s", via)
		}
	}
}

// TestProbesBeyondTheRevealBudgetAreRefused: coalition's budget of
// revealed volumes holds 3. Its sweep over russia's hidden volume is
// answered for the first three probes that meet it; the next is refused
// with 429 too-many-volume-reveals and Retry-After, showing nothing of
// russia's volume and recorded nowhere, and so is a write refused for
// the conflict; probes that meet nothing hidden cost nothing and are
// answered, and so is planning against a volume coalition may see.
func TestProbesBeyondTheRevealBudgetAreRefused(t *testing.T) {
	e := newEnv(t, Options{VolumeRevealsPerSecond: 1e-6, VolumeRevealsBurst: 3})
	e.agreeRules(map[string]any{"volume_visibility": "need_to_know"})
	sr := e.openRawStream(e.tokens["russia"])
	start := time.Now().UTC().Truncate(time.Second)
	var hidden wireVolume
	e.mustDo("POST", "/v1/volumes", e.tokens["russia"], hiddenPolygon(start), 201, &hidden)

	for i := range 3 {
		var out struct{ Conflicts []shownVolume }
		e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], probeAt(34.9+0.1*float64(i), 37, start), 200, &out)
		if len(out.Conflicts) != 1 {
			t.Fatalf("probe %d: %+v", i, out.Conflicts)
		}
	}
	refusedProbe := func(what, method, path string, body any) {
		t.Helper()
		code, b, hdr := e.do(method, path, e.tokens["coalition"], body)
		var pr struct{ Type string }
		_ = json.Unmarshal(b, &pr)
		if code != http.StatusTooManyRequests || !strings.HasSuffix(pr.Type, "/too-many-volume-reveals") || hdr.Get("Retry-After") == "" {
			t.Errorf("%s beyond the budget: %d %s (Retry-After %q)", what, code, b, hdr.Get("Retry-After"))
		}
		if bytes.Contains(b, []byte(hidden.ID)) {
			t.Errorf("%s beyond the budget names russia's volume: %s", what, b)
		}
	}
	refusedProbe("the fourth probe", "POST", "/v1/volumes/alternatives", probeAt(35.2, 37, start))
	refusedProbe("a write refused for the conflict", "POST", "/v1/volumes", probeAt(35.2, 37, start))
	e.wantRefusals(budgetReveals, "coalition", 2)

	// Far from russia's volume: nothing hidden shown, nothing paid.
	var far struct{ Conflicts []shownVolume }
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], probeAt(30, 30, start), 200, &far)
	if len(far.Conflicts) != 0 {
		t.Fatalf("far away: %+v", far.Conflicts)
	}
	// Planning against a volume coalition may see (its own conflicts
	// with it) still gets its alternatives.
	mine := probeAt(34.95, 37, start)
	mine["key"] = []map[string]string{{"id": hidden.ID, "version": hidden.Version}}
	e.mustDo("POST", "/v1/volumes", e.tokens["coalition"], mine, 201, nil)
	var planned struct {
		Conflicts    []shownVolume
		Alternatives []wireAlternative
	}
	e.mustDo("POST", "/v1/volumes/alternatives", e.tokens["coalition"], probeAt(35.1, 37, start), 200, &planned)
	if len(planned.Conflicts) != 1 || planned.Conflicts[0].Clipped || len(planned.Alternatives) == 0 {
		t.Fatalf("planning against a visible volume: %+v", planned)
	}

	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "end-of-budget"}, 201, nil)
	raw := sr.waitFor(t, "end-of-budget")
	if got := bytes.Count(raw, []byte("event: volumes_probed")); got != 3 {
		t.Errorf("russia's stream has %d volumes_probed events, want 3 (the probes answered)", got)
	}
}
