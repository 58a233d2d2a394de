package service

import (
	"context"

	"github.com/deconflict/deconflict/internal/track"
)

// Peers connects the service to the other replicas on a shared database
// (package replica implements it over PostgreSQL; server wires it). With
// no Peers (the embedded store, one process) the service commits every
// alert transition itself and shares nothing.
type Peers interface {
	// PublishPositions hands reports this replica accepted to the other
	// replicas' engines. It must not keep the slice.
	PublishPositions(reports []track.Report)
	// LeadsDetection reports whether this replica holds the detection
	// lease: every replica runs the same engine on the same reports, and
	// only the holder commits the alert transitions, so that two replicas
	// seeing one conflict do not both write it.
	LeadsDetection() bool
}

// leadsDetection reports whether this replica commits alert transitions.
func (s *Service) leadsDetection() bool {
	return s.cfg.Peers == nil || s.cfg.Peers.LeadsDetection()
}

// publishPositions relays accepted reports to the other replicas.
func (s *Service) publishPositions(reports []track.Report) {
	if s.cfg.Peers != nil {
		s.cfg.Peers.PublishPositions(reports)
	}
}

// IngestRelayed feeds reports that another replica accepted (and
// validated) to the tactical engine, so that every replica keeps the same
// live picture. When this replica leads detection it commits the
// transitions they cause, like for its own reports.
func (s *Service) IngestRelayed(ctx context.Context, reports []track.Report) error {
	t := s.tac
	var dones []chan error
	for lo := 0; lo < len(reports); lo += ingestChunk {
		hi := min(lo+ingestChunk, len(reports))
		t.mu.Lock()
		trs, err := t.eng.Load().Ingest(reports[lo:hi], s.now())
		if err != nil {
			t.mu.Unlock()
			s.log.Warn("relayed position reports refused", "err", err)
			continue
		}
		if done := s.enqueueLocked(trs); done != nil {
			dones = append(dones, done)
		}
		t.mu.Unlock()
	}
	var first error
	for _, done := range dones {
		if err := s.commitTransitions(ctx, done); err != nil && first == nil {
			first = err
		}
	}
	return first
}
