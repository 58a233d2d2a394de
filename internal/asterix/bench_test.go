package asterix

import (
	"bytes"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// cpuTime is the CPU time used by the process: on the shared machine wall
// time mostly measures the other tenants, CPU time the decoder.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeReference decodes the reference recording's CAT062 block
// (7 system tracks of some 20 items each) over and over and reports
// records per second of wall time and per second of CPU time on one core
// (run it with -cpu 1). The goal is at least 1,000,000.
func BenchmarkDecodeReference(b *testing.B) {
	data := reference.ReadFile(b, filepath.Join(reference.ASTERIX(b), "fj_cat062.ast"))
	block, _, r := NextBlock(data)
	if r != ReasonNone {
		b.Fatal(r)
	}
	var d Decoder
	records := 0
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		recs, err := d.Block(block)
		if err != nil {
			b.Fatal(err)
		}
		records += len(recs)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(records)/(cpuTime(b)-cpu0).Seconds(), "records/cpu-s")
}

// BenchmarkStreamRecording runs a whole 30-minute FINAL recording of CAT062
// and CAT065 from memory through framing, blocks and records.
func BenchmarkStreamRecording(b *testing.B) {
	data := reference.ReadFile(b, filepath.Join(reference.ASTERIXRecordings(b), "jade_062_065_30min.ff"))
	records := int64(0)
	b.SetBytes(int64(len(data)))
	cpu0 := cpuTime(b)
	for b.Loop() {
		fr, _, err := NewFrameReader(bytes.NewReader(data), FramingFinal)
		if err != nil {
			b.Fatal(err)
		}
		var s Stream
		if err := s.Recording(fr, func(*Block) error { return nil }); err != nil {
			b.Fatal(err)
		}
		records += s.Stats.Records[Cat062].Load() + s.Stats.Records[Cat065].Load()
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(records)/(cpuTime(b)-cpu0).Seconds(), "records/cpu-s")
}
