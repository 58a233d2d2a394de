package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/rules"
)

const goodBody = `{"footprint":{"type":"Polygon","coordinates":[[[36,35],[36.1,35],[36.1,35.1],[36,35.1],[36,35]]]},
 "alt_lower_m":1000,"alt_upper_m":2000,"start":"2026-11-24T08:00:00Z","end":"2026-11-24T10:00:00Z",
 "priority":1,"state":"accepted","details":{"mission":"x"},"key":[{"id":"a","version":"b"}]}`

// edit returns goodBody with the top-level field replaced (or removed when
// value is "").
func edit(t *testing.T, field, value string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(goodBody), &m); err != nil {
		t.Fatal(err)
	}
	if value == "" {
		delete(m, field)
	} else {
		m[field] = json.RawMessage(value)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ring(pts ...string) string {
	return `{"type":"Polygon","coordinates":[[` + strings.Join(pts, ",") + `]]}`
}

func TestParseInputGood(t *testing.T) {
	in, err := ParseInput([]byte(goodBody))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Validate(rules.Default()); err != nil {
		t.Fatal(err)
	}
	if in.AltLowerM != 1000 || in.AltUpperM != 2000 || in.Priority != 1 || in.State != Accepted ||
		len(in.Key) != 1 || in.Key[0].ID != "a" || string(in.Details) != `{"mission":"x"}` {
		t.Errorf("parsed %+v", in)
	}
}

// Feet and flight levels are converted once, at the edge.
func TestParseInputUnits(t *testing.T) {
	body := edit(t, "alt_lower_m", "")
	body = []byte(strings.Replace(string(body), `"alt_upper_m":2000`, `"alt_upper_fl":95,"alt_lower_ft":3500`, 1))
	in, err := ParseInput(body)
	if err != nil {
		t.Fatal(err)
	}
	// The international foot is 0.3048 m exactly; FL95 is 9,500 ft.
	if want := 3500 * 0.3048; math.Abs(in.AltLowerM-want) > 1e-9 {
		t.Errorf("alt_lower_ft 3500 -> %v m, want %v", in.AltLowerM, want)
	}
	if want := 9500 * 0.3048; math.Abs(in.AltUpperM-want) > 1e-9 {
		t.Errorf("alt_upper_fl 95 -> %v m, want %v", in.AltUpperM, want)
	}
	both := []byte(strings.Replace(goodBody, `"alt_lower_m":1000`, `"alt_lower_m":1000,"alt_lower_ft":3000`, 1))
	if _, err := ParseInput(both); fieldOf(err) != "alt_lower_m" {
		t.Errorf("two forms of one altitude: %v", err)
	}
}

func fieldOf(err error) string {
	var fe *fielderr.Error
	if errors.As(err, &fe) {
		return fe.Field
	}
	return fmt.Sprintf("(not a *fielderr.Error: %v)", err)
}

// Every kind of bad input is refused with the field that is wrong.
func TestValidationNamesTheField(t *testing.T) {
	rl := rules.Default()
	bigRing := make([]string, 0, rl.MaxVertices+2)
	for i := 0; i <= rl.MaxVertices; i++ {
		a := 2 * math.Pi * float64(i) / float64(rl.MaxVertices+1)
		bigRing = append(bigRing, fmt.Sprintf("[%g,%g]", 36+0.5*math.Cos(a), 35+0.5*math.Sin(a)))
	}
	bigRing = append(bigRing, bigRing[0])
	cases := []struct {
		name, field, value, want string
	}{
		{"unclosed ring", "footprint", ring("[36,35]", "[36.1,35]", "[36.1,35.1]", "[36,35.1]"), "footprint.coordinates[0][3]"},
		{"three positions", "footprint", ring("[36,35]", "[36.1,35]", "[36,35]"), "footprint.coordinates[0]"},
		{"self-intersecting bow tie", "footprint", ring("[36,35]", "[36.1,35.1]", "[36.1,35]", "[36,35.1]", "[36,35]"), "footprint.coordinates[0]"},
		{"spike folding back", "footprint", ring("[36,35]", "[36.2,35]", "[36.1,35]", "[36.1,35.1]", "[36,35]"), "footprint.coordinates[0]"},
		{"repeated position", "footprint", ring("[36,35]", "[36.1,35]", "[36.1,35]", "[36.1,35.1]", "[36,35]"), "footprint.coordinates[0][2]"},
		{"latitude above 90", "footprint", ring("[36,35]", "[36.1,91]", "[36.1,35.1]", "[36,35]"), "footprint.coordinates[0][1]"},
		{"longitude below -180", "footprint", ring("[36,35]", "[-181,35]", "[36.1,35.1]", "[36,35]"), "footprint.coordinates[0][1]"},
		{"position of one number", "footprint", ring("[36,35]", "[36.1]", "[36.1,35.1]", "[36,35]"), "footprint.coordinates[0][1]"},
		{"huge number", "footprint", ring("[36,35]", "[1e999,35]", "[36.1,35.1]", "[36,35]"), "footprint.coordinates"},
		{"hole", "footprint", `{"type":"Polygon","coordinates":[[[36,35],[37,35],[37,36],[36,35]],[[36.5,35.2],[36.6,35.2],[36.6,35.3],[36.5,35.2]]]}`, "footprint.coordinates[1]"},
		{"too many vertices", "footprint", ring(bigRing...), "footprint.coordinates[0]"},
		{"footprint too wide", "footprint", ring("[30,35]", "[36,35]", "[36,36]", "[30,35]"), "footprint.coordinates[0]"},
		{"circle too wide", "footprint", `{"type":"Circle","center":[36,35],"radius_m":300000}`, "footprint.radius_m"},
		{"circle without radius", "footprint", `{"type":"Circle","center":[36,35]}`, "footprint.radius_m"},
		{"circle center off the globe", "footprint", `{"type":"Circle","center":[36,95],"radius_m":1000}`, "footprint.center"},
		{"unknown type", "footprint", `{"type":"MultiPolygon","coordinates":[]}`, "footprint.type"},
		{"no footprint", "footprint", "", "footprint"},
		{"lower above upper", "alt_lower_m", "2500", "alt_lower_m"},
		{"band of no height", "alt_lower_m", "2000", "alt_upper_m"},
		{"no lower altitude", "alt_lower_m", "", "alt_lower_m"},
		{"end before start", "end", `"2026-11-24T07:00:00Z"`, "end"},
		{"end equal to start", "end", `"2026-11-24T08:00:00Z"`, "end"},
		{"window too long", "end", `"2026-11-25T08:00:01Z"`, "end"},
		{"start not RFC 3339", "start", `"24/11/2026 08:00"`, "start"},
		{"bad state", "state", `"flying"`, "state"},
		{"priority not an integer", "priority", `1.5`, "priority"},
		{"key entry without version", "key", `[{"id":"a"}]`, "key[0].version"},
		{"unknown field", "priorty", `5`, "priorty"},
		{"altitude below -500 m", "alt_lower_m", `-1000`, "alt_lower_m"},
		{"altitude above 30,000 m", "alt_upper_m", `30001`, "alt_upper_m"},
		{"altitude of a million meters", "alt_upper_m", `999999`, "alt_upper_m"},
		{"band higher than the rules allow", "alt_upper_m", `16001`, "alt_upper_m"},
		{"footprint larger than the rules allow", "footprint", `{"type":"Circle","center":[36,35],"radius_m":200000}`, "footprint"},
		{"start in year 9999", "start", `"9999-11-24T08:00:00Z"`, "start"},
		{"end in year 9999", "end", `"9999-11-24T08:00:00Z"`, "end"},
		{"start in year 1600", "start", `"1600-11-24T08:00:00Z"`, "start"},
		{"unknown footprint field", "footprint", `{"type":"Circle","center":[36,35],"radius_m":1000,"radius":9}`, "footprint.radius"},
		{"zero-area ring on the equator", "footprint", ring("[0,0]", "[1,0]", "[2,0]", "[0,0]"), "footprint.coordinates[0]"},
		{"zero-area ring on a meridian", "footprint", ring("[36,35]", "[36,36]", "[36,35.5]", "[36,35]"), "footprint.coordinates[0]"},
		{"sliver of no area", "footprint", ring("[36,35]", "[36.1,35]", "[36.1,35.0000000001]", "[36,35]"), "footprint.coordinates[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := ParseInput(edit(t, c.field, c.value))
			if err == nil {
				err = in.Validate(rl)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := fieldOf(err); got != c.want {
				t.Errorf("field %q, want %q (error: %v)", got, c.want, err)
			}
		})
	}
}

// NaN and infinities cannot come through JSON but can through Go callers.
func TestValidateNonFinite(t *testing.T) {
	rl := rules.Default()
	base := input(circle(35, 36, 1000), 0, 1000, t0, t0.Add(3600e9))
	for name, mod := range map[string]func(*Input){
		"alt_lower_m":        func(in *Input) { in.AltLowerM = math.NaN() },
		"alt_upper_m":        func(in *Input) { in.AltUpperM = math.Inf(1) },
		"footprint.radius_m": func(in *Input) { in.Footprint.RadiusM = math.NaN() },
		"footprint.center":   func(in *Input) { in.Footprint.Center = []float64{math.Inf(-1), 35} },
		"footprint.coordinates[0]": func(in *Input) {
			*in = input(polygon([2]float64{36, 35}, [2]float64{36.1, 35}, [2]float64{36, math.NaN()}), 0, 1, t0, t0.Add(1e9))
		},
	} {
		in := base
		mod(&in)
		err := in.Validate(rl)
		if got := fieldOf(err); !strings.HasPrefix(got, name) {
			t.Errorf("%s: got field %q (%v)", name, got, err)
		}
	}
}

// FuzzParseInput: the intake never panics, every refusal is a *fielderr.Error,
// and what it accepts survives a round trip through the stored form.
func FuzzParseInput(f *testing.F) {
	f.Add([]byte(goodBody))
	f.Add([]byte(`{"footprint":{"type":"Circle","center":[179.99,0],"radius_m":5000},"alt_lower_fl":100,"alt_upper_fl":200,"start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:00:00Z"}`))
	f.Add([]byte(`{"footprint":{"type":"Polygon","coordinates":[[[0,89],[120,89],[-120,89],[0,89]]]},"alt_lower_m":0,"alt_upper_m":100,"start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:00:00Z"}`))
	f.Add([]byte(`{"footprint":{"type":"Polygon","coordinates":[[[179.9,1],[-179.9,1],[-179.9,-1],[179.9,-1],[179.9,1]]]},"alt_lower_ft":0,"alt_upper_ft":5000,"start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:00:00Z"}`))
	f.Add([]byte(`{"footprint":{"type":"Polygon","coordinates":[[[36,35],[36.1,35.1],[36.1,35],[36,35.1],[36,35]]]}}`))
	f.Add([]byte(`{"footprint":{"type":"Polygon","coordinates":[[[1e999,35]]]}}`))
	f.Add([]byte(`{"footprint":{"type":"Orbit","points":[[179.9,35],[-179.9,35]],"width_m":9000},"alt_lower_m":0,"alt_upper_m":100,"start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:00:00Z"}`))
	f.Add([]byte(`{"footprint":{"type":"Corridor","line":[[36,35],[36.1,35.1],[36.2,35]],"width_m":2000},"alt_lower_m":0,"alt_upper_m":100,"start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:00:00Z"}`))
	f.Add([]byte(`{"footprint":null,"alt_lower_m":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rl := rules.Default()
		in, err := ParseInput(data)
		if err == nil {
			err = in.Validate(rl)
		}
		if err != nil {
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refusal without a field: %v", err)
			}
			return
		}
		s, err := in.compile(rl)
		if err != nil {
			t.Fatal(err)
		}
		v := &Volume{ID: "x", Party: "p", Version: "1", State: Accepted, Footprint: in.Footprint,
			AltLowerM: in.AltLowerM, AltUpperM: in.AltUpperM, Start: in.Start, End: in.End, Details: in.Details, shape: s}
		rec, err := v.record()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(rec)
		if err != nil {
			t.Fatalf("stored form does not decode: %v", err)
		}
		if !back.Start.Equal(v.Start) || back.AltUpperM != v.AltUpperM || back.shape.circle != s.circle {
			t.Fatalf("round trip changed the volume: %+v -> %+v", v, back)
		}
		// Stored again, the record's columns are the same, and its body
		// (whose absent conflicts read back as none) a fixed point from
		// then on: a volume loaded and stored again changes nothing.
		again, err := back.record()
		if err != nil {
			t.Fatalf("a decoded volume does not store: %v", err)
		}
		cols, againCols := rec, again
		cols.Body, againCols.Body = nil, nil
		if !reflect.DeepEqual(cols, againCols) {
			t.Fatalf("stored again differently:\n%+v\n%+v", cols, againCols)
		}
		back2, err := Decode(again)
		if err != nil {
			t.Fatalf("stored again, it does not decode: %v", err)
		}
		again2, err := back2.record()
		if err != nil || !reflect.DeepEqual(again2, again) {
			t.Fatalf("the stored form is no fixed point (%v):\n%s\n%s", err, again.Body, again2.Body)
		}
	})
}

// The full and reduced JSON of a volume are the shapes of docs/WIRE.md.
func TestVolumeWireShape(t *testing.T) {
	e := newEnv(t, newFakeStore())
	v := e.mustCreate("a", area(0))
	keys := func(x any) map[string]json.RawMessage {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	full := keys(v)
	for _, k := range []string{"id", "party", "version", "state", "priority", "footprint", "alt_lower_m", "alt_upper_m", "start", "end", "details", "conflicts"} {
		if _, ok := full[k]; !ok {
			t.Errorf("full volume lacks %q", k)
		}
	}
	if string(full["conflicts"]) != "[]" {
		t.Errorf("conflicts %s, want an empty array", full["conflicts"])
	}
	red := keys(v.Reduced())
	if _, ok := red["details"]; ok {
		t.Error("reduced volume carries details")
	}
	if len(red) != len(full)-1 {
		t.Errorf("reduced volume has %d fields, full %d", len(red), len(full))
	}
	var start time.Time
	if err := json.Unmarshal(full["start"], &start); err != nil || !start.Equal(t0) {
		t.Errorf("start %s (%v)", full["start"], err)
	}
}

// A member named "" is refused naming the object that holds it.
func TestEmptyMemberNameNamesItsObject(t *testing.T) {
	for body, field := range map[string]string{
		`{"":0}`: "body",
		`{"footprint":{"type":"Circle","center":[1,2],"radius_m":5,"":1}}`: "footprint",
	} {
		_, err := ParseInput([]byte(body))
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v, want a refusal naming %s", body, err, field)
		}
	}
}
