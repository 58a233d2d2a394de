package feed

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/wiretime"
)

func TestParseJSONLine(t *testing.T) {
	line := `{"aircraft":"RF-101","callsign":"SU24-1","class":"uas","time":"2026-11-24T07:00:00Z","lat":35.4,"lon":35.95,"alt_m":6000,"vel_east_mps":200,"vel_north_mps":-3.5,"vel_up_mps":1,"extra":"ignored"}`
	r, err := ParseJSONLine([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(line), &raw)
	if r.Aircraft != raw["aircraft"] || r.Callsign != raw["callsign"] || r.Class != raw["class"] || r.LatDeg != raw["lat"] || r.LonDeg != raw["lon"] ||
		r.AltM != raw["alt_m"] || r.VelEastMps != raw["vel_east_mps"] || r.VelNorthMps != raw["vel_north_mps"] || r.VelUpMps != raw["vel_up_mps"] {
		t.Errorf("report = %+v", r)
	}
	if r.Time.Format(time.RFC3339) != raw["time"] {
		t.Errorf("time = %v", r.Time)
	}
}

func TestParseJSONLineErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		`{"time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1}`:                                        "aircraft",
		`{"aircraft":"","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1}`:                          "aircraft",
		`{"aircraft":"A","lat":1,"lon":1,"alt_m":1}`:                                                       "time",
		`{"aircraft":"A","time":"yesterday","lat":1,"lon":1,"alt_m":1}`:                                    "time",
		`{"aircraft":"A","time":"2026-11-24T7:00:00Z","lat":1,"lon":1,"alt_m":1}`:                          "time",
		`{"aircraft":"A","time":"2026-11-24T07:00:00,5Z","lat":1,"lon":1,"alt_m":1}`:                       "time",
		`{"aircraft":"A","time":"2026-11-25T07:00:00+24:00","lat":1,"lon":1,"alt_m":1}`:                    "time",
		`{"aircraft":"A","time":"2026-11-24T07:00:00.1234567891Z","lat":1,"lon":1,"alt_m":1}`:              "time",
		`{"aircraft":"A","time":"9999-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1}`:                         "time",
		`{"aircraft":"A","time":"2026-11-24T07:00:00Z","lon":1,"alt_m":1}`:                                 "lat",
		`{"aircraft":"A","time":"2026-11-24T07:00:00Z","lat":90.5,"lon":1,"alt_m":1}`:                      "lat",
		`{"aircraft":"A","time":"2026-11-24T07:00:00Z","lat":1,"lon":-200,"alt_m":1}`:                      "lon",
		`{"aircraft":"A","time":"2026-11-24T07:00:00Z","lat":1,"lon":1}`:                                   "alt_m",
		`{"aircraft":"A","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":"high"}`:                    "alt_m",
		`{"aircraft":"A","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1e9}`:                       "alt_m",
		`{"aircraft":"A","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1,"vel_up_mps":5000}`:       "vel_up_mps",
		`{"aircraft":"A","class":7,"time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1}`:               "class",
		`{"aircraft":"A","callsign":"SU\u000024","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1}`: "callsign",
		`{"aircraft":"A\u202e","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1}`:                   "aircraft",
		`not json`: "line",
		``:         "line",
	}
	for line, field := range cases {
		_, err := ParseJSONLine([]byte(line))
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: err %v, want a *fielderr.Error on %q", line, err, field)
		}
	}
}

// TestParseJSONLineKeepsTheAltitudeSource: a line of the items of POST
// /v1/positions may say what its altitude is; the report sent says it too
// (it was dropped: a barometric altitude reached the server as one of
// unknown source), and a source the server does not know is refused
// naming alt_source.
func TestParseJSONLineKeepsTheAltitudeSource(t *testing.T) {
	for _, src := range []string{"geometric", "barometric"} {
		r, err := ParseJSONLine([]byte(`{"aircraft":"A","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1,"alt_source":"` + src + `"}`))
		if err != nil || r.AltSource != src {
			t.Errorf("alt_source %q: report %+v, err %v", src, r, err)
		}
	}
	_, err := ParseJSONLine([]byte(`{"aircraft":"A","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1,"alt_source":"radar"}`))
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "alt_source" {
		t.Errorf("alt_source radar: err %v, want a *fielderr.Error on alt_source", err)
	}
}

// TestParseJSONLineTakesTheServersLimits: a line is checked with the
// server's own limits (track.Report.Validate), each accepted at its edge
// and skipped just beyond it, naming the field and counted by it in the
// skipped summary. The feed's own were looser (a callsign of 64 bytes, an
// altitude of 100 km, any class): such a line was sent, refused by the
// server and counted undeliverable without a reason. One was tighter (a
// vertical speed of 1000 m/s, where the server bounds the speed over all
// three components): a line the server takes was skipped.
func TestParseJSONLineTakesTheServersLimits(t *testing.T) {
	line := func(field, value string) string {
		fields := map[string]string{"aircraft": `"A"`, "time": `"2026-11-24T07:00:00Z"`, "lat": "1", "lon": "1", "alt_m": "1"}
		fields[field] = value
		var parts []string
		for _, k := range []string{"aircraft", "callsign", "class", "time", "lat", "lon", "alt_m", "vel_east_mps", "vel_north_mps", "vel_up_mps"} {
			if v, ok := fields[k]; ok {
				parts = append(parts, fmt.Sprintf("%q:%s", k, v))
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	text := func(n int, c string) string { return fmt.Sprintf("%q", strings.Repeat(c, n)) }
	number := func(v float64) string { return fmt.Sprint(v) }
	cases := []struct {
		field, atLimit, beyond string
		skippedAs              string // the field named; the same as field unless blamed on another
	}{
		{"aircraft", text(track.MaxIDBytes, "A"), text(track.MaxIDBytes+1, "A"), "aircraft"},
		{"callsign", text(track.MaxCallsignLen, "C"), text(track.MaxCallsignLen+1, "C"), "callsign"},
		{"class", text(track.MaxClassBytes, "u"), text(track.MaxClassBytes+1, "u"), "class"},
		{"class", `"uas-2_b"`, `"UAS"`, "class"},
		{"alt_m", number(track.MaxAltM), number(math.Nextafter(track.MaxAltM, math.Inf(1))), "alt_m"},
		{"alt_m", number(track.MinAltM), number(math.Nextafter(track.MinAltM, math.Inf(-1))), "alt_m"},
		{"vel_up_mps", number(track.MaxSpeedMps), number(math.Nextafter(track.MaxSpeedMps, math.Inf(1))), "vel_up_mps"},
		{"vel_east_mps", number(-track.MaxSpeedMps), number(math.Nextafter(-track.MaxSpeedMps, math.Inf(-1))), "vel_east_mps"},
	}
	for _, c := range cases {
		if _, err := ParseJSONLine([]byte(line(c.field, c.atLimit))); err != nil {
			t.Errorf("%s %s, at the server's limit: %v", c.field, c.atLimit, err)
		}
		_, err := ParseJSONLine([]byte(line(c.field, c.beyond)))
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.skippedAs {
			t.Errorf("%s %s, beyond the server's limit: err %v, want a *fielderr.Error on %q", c.field, c.beyond, err, c.skippedAs)
		}
	}
	// The speed over all three components, each within the limit.
	over := `{"aircraft":"A","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1,"vel_east_mps":3000,"vel_north_mps":1}`
	if _, err := ParseJSONLine([]byte(over)); err == nil {
		t.Errorf("%s, above the server's %d m/s: accepted", over, track.MaxSpeedMps)
	}
	// Counted by the field in the skipped summary.
	file := line("callsign", text(track.MaxCallsignLen, "C")) + "\n" + line("callsign", text(track.MaxCallsignLen+1, "C")) + "\n"
	got, stats := replayFile(t, file, 1)
	if want := "skipped 1 lines: 1 bad callsign"; len(got) != 1 || stats.SkippedSummary() != want {
		t.Errorf("%d reports, summary %q; want 1 and %q", len(got), stats.SkippedSummary(), want)
	}
}

func FuzzParseJSONLine(f *testing.F) {
	f.Add(`{"aircraft":"RF-101","callsign":"SU24-1","time":"2026-11-24T07:00:00Z","lat":35.4,"lon":35.95,"alt_m":6000,"vel_east_mps":200,"vel_north_mps":0,"vel_up_mps":0}`)
	f.Add(`{"aircraft":"4CA2D6","time":"2026-11-24T07:00:00.123456+02:00","lat":-90,"lon":180,"alt_m":-10}`)
	f.Add(`{"aircraft":"x","time":"2026-11-24T07:00:00Z","lat":1,"lon":1,"alt_m":1,"vel_east_mps":-3000}`)
	f.Add(`{"aircraft":null}`)
	f.Add(`[1,2,3]`)
	f.Add(`{"aircraft":"A","time":"2026-11-25T07:00:00+24:00","lat":1,"lon":1,"alt_m":1}`)
	f.Add(`{"aircraft":"A","time":"2026-11-24T7:00:00,5Z","lat":1,"lon":1,"alt_m":1}`)
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseJSONLine([]byte(line))
		if err == nil {
			// Only a time the server reads (wiretime's profile) is sent.
			var sent struct{ Time string }
			_ = json.Unmarshal([]byte(line), &sent)
			if _, perr := wiretime.Parse("time", sent.Time); perr != nil {
				t.Fatalf("accepted a time the server refuses: %v", perr)
			}
		}
		if err != nil {
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error %v does not name a field", err)
			}
			return
		}
		// The server would refuse the whole batch for such a text.
		if printable.Check(r.Aircraft) != nil || printable.Check(r.Callsign) != nil {
			t.Fatalf("accepted %q / %q, which the server refuses", r.Aircraft, r.Callsign)
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", r, err)
		}
		again, err := ParseJSONLine(out)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", out, err)
		}
		if !again.Time.Equal(r.Time) {
			t.Fatalf("time round trip %v -> %v", r.Time, again.Time)
		}
		again.Time = r.Time
		if again != r {
			t.Fatalf("round trip:\n%+v\n%+v", r, again)
		}
	})
}
