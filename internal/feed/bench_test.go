package feed

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

// BenchmarkSplitOnly is the floor of BaseStation parsing: cutting the line
// into its fields and nothing else.
func BenchmarkSplitOnly(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if len(strings.Split(sbsSamples[i%len(sbsSamples)], ",")) != sbsFields {
			b.Fatal("bad sample")
		}
	}
}

func BenchmarkParseSBS(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ParseSBS(sbsSamples[i%len(sbsSamples)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSBS is parse and assemble, per line, over a stream of many
// aircraft (one report every eighth line or so).
func BenchmarkDecodeSBS(b *testing.B) {
	d := NewSBSDecoder(&Stats{})
	t0 := time.Now()
	lines := make([]string, 0, 4*1000)
	for a := 0; a < 1000; a++ {
		icao := strings.ToUpper(strconv.FormatInt(int64(0x400000+a), 16))
		lines = append(lines,
			sbsLine(4, icao, map[int]string{sbsGroundSpeed: "420", sbsTrack: "45", sbsVerticalRate: "0"}),
			sbsLine(5, icao, map[int]string{sbsAltitude: "25000"}),
			sbsLine(3, icao, map[int]string{sbsAltitude: "25000", sbsLat: "35.5", sbsLon: "36.5"}),
			sbsLine(1, icao, map[int]string{sbsCallsign: "TEST"}))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Live(lines[i%len(lines)], t0.Add(time.Duration(i)*time.Millisecond))
	}
}

const jsonSample = `{"aircraft":"RF-101","callsign":"SU24-1","time":"2026-11-24T07:00:00Z","lat":35.4,"lon":35.95,"alt_m":6000,"vel_east_mps":200,"vel_north_mps":0,"vel_up_mps":0}`

// BenchmarkUnmarshalOnly is the baseline of ParseJSONLine: decoding into the
// report without checking anything.
func BenchmarkUnmarshalOnly(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var r client.Report
		if err := json.Unmarshal([]byte(jsonSample), &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseJSONLine(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSONLine([]byte(jsonSample)); err != nil {
			b.Fatal(err)
		}
	}
}
