package feed

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/printable"
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
