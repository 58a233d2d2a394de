package replica

import (
	"fmt"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/track"
)

func benchReports(n int) []track.Report {
	out := make([]track.Report, n)
	t0 := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = track.Report{Party: "coalition", Aircraft: fmt.Sprintf("coalition-%06x", i), Callsign: "SU24",
			Pos:        geo.LLA{LatDeg: 35.123456 + float64(i)*1e-4, LonDeg: 36.654321, AltM: 6123.4},
			VelEastMps: 201.25, VelNorthMps: -13.5, Time: t0.Add(time.Duration(i) * time.Millisecond)}
	}
	return out
}

// BenchmarkEncodePositions: the cost per report of relaying a batch of
// 1,000 (b.N batches).
func BenchmarkEncodePositions(b *testing.B) {
	rs := benchReports(1000)
	for b.Loop() {
		if _, err := EncodePositions("replica-a", rs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePositions(b *testing.B) {
	payloads, err := EncodePositions("replica-a", benchReports(1000))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, p := range payloads {
			if _, _, err := DecodePositions(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}
