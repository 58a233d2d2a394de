package service

import (
	"context"
	"time"

	"github.com/deconflict/deconflict/internal/clock"
)

// The service's time starts at the clock it follows (package clock), and a
// host whose clock is wrong when the service starts gives it a wrong time
// that no step shows. The parties' position reports carry their feeds'
// times: the edge gives the check (clock.ReportCheck) the newest report
// time of a batch of each party once a second, before it judges the
// reports against the service's time (a clock an hour off refuses them
// all, and those are the samples that tell it), and the periodic job
// judges the samples and raises the operator's alarm. The check corrects
// nothing: no party sets the service's time.

// ReportClockDue reports whether the edge samples the time of a batch of
// party's reports received at now.
func (s *Service) ReportClockDue(party string, now time.Time) bool {
	return s.reportClock.Due(party, now)
}

// SampleReportTime gives the check the newest report time of a batch of
// party's reports received at now.
func (s *Service) SampleReportTime(party string, reportTime, now time.Time) {
	s.reportClock.Sample(party, reportTime, now)
}

// ReportClock is what the last check of the service's time against the
// parties' reports found.
func (s *Service) ReportClock() clock.ReportStatus { return s.reportClock.Status() }

// checkReportClock is the periodic job that judges the samples.
func (s *Service) checkReportClock(_ context.Context, now time.Time) error {
	s.reportClock.Check(now)
	return nil
}
