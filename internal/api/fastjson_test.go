package api

import (
	"reflect"
	"testing"
)

// slowBatch decodes like the general path.
func slowBatch(b []byte) ([]positionReport, bool) {
	reports, err := decodeBatch(b)
	return reports, err == nil
}

// FuzzFastBatchDecoder: whenever the fast decoder accepts a body,
// encoding/json accepts it too and gives exactly the same reports.
func FuzzFastBatchDecoder(f *testing.F) {
	seeds := []string{
		`{"reports":[{"aircraft":"RF-101","callsign":"SU24-1","time":"2026-11-24T07:00:00Z","lat":35.4,"lon":35.95,"alt_m":6000,"vel_east_mps":200,"vel_north_mps":0,"vel_up_mps":0}]}`,
		`{"reports":[]}`,
		`{"reports":[{"aircraft":"4CA2D6","alt_source":"geometric","time":"2026-11-24T07:00:00Z","lat":35.4,"lon":35.95,"alt_m":6000}]}`,
		`{"reports":[{"alt_source":7}]}`,
		` { "reports" : [ { } , {"lat":-0.5e-3,"lat":1E+2} ] } `,
		`{"reports":[{"aircraft":"a\u0041"}]}`,
		`{"reports":[{"Lat":1}]}`,
		`{"reports":[{"lat":01}]}`,
		`{"reports":[{"lat":1.}]}`,
		`{"reports":[{"lat":-}]}`,
		`{"reports":[{"lat":1e400}]}`,
		`{"reports":[{"time":"2026-11-24T07:00:00.123456789+02:00"}]}`,
		`{"reports":[{"time":"2026-13-24T07:00:00Z"}]}`,
		`{"reports":[{"time":"2026-11-24T7:00:00Z"},{"time":"2026-11-24T07:00:00,5Z"},{"time":"2026-11-25T07:00:00+24:00"}]}`,
		`{"reports":[{"time":"2026-11-24T07:00:00.1234567891Z"},{"time":"2016-12-31T23:59:60Z"},{"time":""}]}`,
		`{"reports":[{"time":"2026-11-24T07:00:00\u005a"}]}`,
		"{\"reports\":[{\"time\": \t\r\n\"2026-11-24T07:00:00Z\" }]}",
		`{"reports":[{"aircraft":null}]}`,
		`{"reports":[{"colour":"red"}]}`,
		`{"reports":[{}]}{}`,
		`{"reports":[{}],"x":1}`,
		`[]`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fast, ok := decodeBatchFast([]byte(body))
		if !ok {
			return
		}
		slow, sok := slowBatch([]byte(body))
		if !sok {
			t.Fatalf("fast accepted what encoding/json refuses: %q", body)
		}
		if len(fast) == 0 && len(slow) == 0 {
			return
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %+v\nslow %+v\nbody %q", fast, slow, body)
		}
	})
}

// TestFastBatchDecoderTakesTheUsualForm keeps the fast path in use: the
// form the clients send must not fall back.
func TestFastBatchDecoderTakesTheUsualForm(t *testing.T) {
	body := `{"reports":[{"aircraft":"RF-101","callsign":"SU24-1","time":"2026-11-24T07:00:00.5Z","lat":35.4,"lon":-35.95,"alt_m":6000,"vel_east_mps":200.25,"vel_north_mps":-1e1,"vel_up_mps":0}]}`
	fast, ok := decodeBatchFast([]byte(body))
	if !ok || len(fast) != 1 {
		t.Fatalf("fell back on %s", body)
	}
	slow, _ := slowBatch([]byte(body))
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast %+v slow %+v", fast, slow)
	}
}
