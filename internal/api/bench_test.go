package api

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// BenchmarkPositionsHTTP posts batches of 1,000 reports over loopback to a
// server holding 2,000 tracks (the full-size figure, 25,000 tracks, is
// `deconflict bench --http`). It reports reports/s.
func BenchmarkPositionsHTTP(b *testing.B) {
	e := newEnv(b, Options{RatePerSecond: 1e6})
	const tracks, batch = 2000, 1000
	body := func(lo int, now time.Time) []byte {
		var buf bytes.Buffer
		buf.WriteString(`{"reports":[`)
		for i := lo; i < lo+batch; i++ {
			if i > lo {
				buf.WriteByte(',')
			}
			// A grid of aircraft 0.2 degrees apart at two levels.
			fmt.Fprintf(&buf, `{"aircraft":"A%d","time":%q,"lat":%g,"lon":%g,"alt_m":%d,"vel_east_mps":200}`,
				i, now.UTC().Format(time.RFC3339Nano), 30+float64(i%50)*0.2, 30+float64(i/50)*0.2, 6000+(i%2)*3000)
		}
		buf.WriteString("]}")
		return buf.Bytes()
	}
	post := func(b *testing.B, data []byte) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/positions", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+e.tokens["coalition"])
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	for lo := 0; lo < tracks; lo += batch {
		post(b, body(lo, time.Now()))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		data := body((i%(tracks/batch))*batch, time.Now())
		b.StartTimer()
		post(b, data)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "reports/s")
}
