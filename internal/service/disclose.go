package service

import (
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/disclose"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/volume"
)

// This file wires need to know (package disclose) into the service: the
// picture of what each party may see is fed with the same reports as the
// tactical engine, with its alert transitions and with every committed
// volume, and every way tracks leave the service toward a party reads it.

// picture is the disclosure picture in force; nil when the service runs
// without need to know (Config.WithoutNeedToKnow, a benchmark baseline).
func (s *Service) picture() *disclose.Picture { return s.disc.Load() }

// newPicture starts an empty picture for the rules (before the volumes
// are loaded, so that the registry's observer fills it).
func (s *Service) newPicture(r rules.Rules) {
	if s.cfg.WithoutNeedToKnow {
		return
	}
	s.disc.Store(disclose.New(disclose.RuleFrom(r)))
}

// observeVolumes makes reg tell the picture in force of every committed
// volume state.
func (s *Service) observeVolumes(reg *volume.Registry) {
	reg.Observe(func(v *volume.Volume) {
		if p := s.picture(); p != nil {
			p.PutVolume(v)
		}
	})
}

// rebuildPicture replaces the picture after a rules change (t.mu held):
// the new one takes the engine's live tracks as last reported, its open
// alerts and the live volumes, and keeps what the old one still
// discloses (disclose.Rebuild), so that no track flickers.
func (s *Service) rebuildPicture(r rules.Rules, states []track.State, open []alert.Alert, now time.Time) {
	if s.cfg.WithoutNeedToKnow {
		return
	}
	var live []*volume.Volume
	s.volumes().EachLive(func(v *volume.Volume) { live = append(live, v) })
	p := disclose.Rebuild(disclose.RuleFrom(r), s.picture(), states, open, live, now)
	s.disc.Store(p)
	// Again after the swap: a volume committed meanwhile may have gone to
	// the old picture only (PutVolume ignores what it already holds).
	s.volumes().EachLive(p.PutVolume)
}

// Tracks returns the live tracks inside the box that p may see: every
// track for the operator; for a party its own and those disclosed to it.
func (s *Service) Tracks(p party.Principal, b detect.BBox) []track.State {
	pic := s.picture()
	if p.Operator || pic == nil {
		return s.tac.eng.Load().Tracks(b)
	}
	return pic.Tracks(p.Party, b, s.now())
}

// disclosePositions feeds reports the engine accepted to the picture, out
// of the engine's lock: the two run side by side on different chunks.
func (s *Service) disclosePositions(reports []track.Report) {
	if pic := s.picture(); pic != nil {
		pic.Ingest(reports, s.now())
	}
}
