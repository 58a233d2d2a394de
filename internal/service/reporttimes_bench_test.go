package service

import (
	"context"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

// BenchmarkRecordReportTimes is the leader's record of its report times
// (recordReportTimes, a periodic job under the commit's lock) in metro
// traffic of 25,000 aircraft and its open alerts, each time as if every
// aircraft had reported since the last record (as they do at each tick;
// the record of the tenure is kept, as after its first write).
func BenchmarkRecordReportTimes(b *testing.B) {
	s, open, now := trafficAlerts(b, "metro", 25_000)
	b.ReportMetric(float64(len(open)), "alerts")
	ctx := context.Background()
	for b.Loop() {
		s.tac.commitMu.Lock()
		s.tac.reportTimesRecorded = nil
		s.tac.commitMu.Unlock()
		if err := s.recordReportTimes(ctx, now); err != nil {
			b.Fatal(err)
		}
	}
	var size int
	if err := s.st.View(ctx, func(tx store.Tx) error {
		raw, err := tx.GetMeta(reportTimesMeta)
		size = len(raw)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(size), "record-bytes")
	b.ReportMetric(float64(len(s.tac.reportTimesWritten)), "aircraft")
}
