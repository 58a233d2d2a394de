package jsonlimit

import (
	"fmt"
	"strings"
	"testing"
)

// volumeBody is a volume write of a polygon of n vertices, with details
// of a few members: what the API's largest bodies look like.
func volumeBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"footprint":{"type":"Polygon","coordinates":[[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[%.6f,%.6f]", 36+float64(i%100)*0.001, 35+float64(i/100)*0.001)
	}
	b.WriteString(`]]},"alt_lower_m":1000,"alt_upper_m":2000,"start":"2026-12-07T06:00:00Z","end":"2026-12-07T07:00:00Z","state":"accepted","details":{"mission":"CAS","callsigns":["A","B"],"notes":"climb to FL200"}}`)
	return []byte(b.String())
}

// BenchmarkCheck: Check of a volume body of 1,000 and 40,000 vertices (40
// KB and 1 MB), per byte.
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{1000, 40000} {
		body := volumeBody(n)
		b.Run(fmt.Sprintf("vertices-%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := Check(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
