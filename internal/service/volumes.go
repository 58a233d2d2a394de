package service

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
)

// volumeAudit is the audit content of a volume write: the volume without
// its details, and the details sealed for their owner, so that the chain
// covers them while an export for another party shows only their hash.
type volumeAudit struct {
	Volume    volume.Volume `json:"volume"`
	Details   *audit.Sealed `json:"details,omitempty"`
	Conflicts []volume.Ref  `json:"conflicts,omitempty"`
}

func auditOfVolume(res volume.Result) volumeAudit {
	a := volumeAudit{Volume: res.Volume.Reduced()}
	if len(res.Volume.Details) > 0 {
		sealed := audit.Seal(res.Volume.Details, res.Volume.Party)
		a.Details = &sealed
	}
	for _, c := range res.Conflicts {
		a.Conflicts = append(a.Conflicts, c.Ref())
	}
	return a
}

// recordVolume appends the audit record and the events of one registry
// write to its transaction.
func (s *Service) recordVolume(tx store.Tx, actor, kind string, res volume.Result, now time.Time) error {
	if err := s.audit(tx, actor, kind, audit.Everyone, auditOfVolume(res)); err != nil {
		return err
	}
	return res.AppendEvents(tx, now)
}

// commitVolume runs one registry write in a transaction together with its
// audit record and events, and hands the result to the registry after the
// commit.
func (s *Service) commitVolume(ctx context.Context, actor, kind string, op func(tx store.Tx, rl rules.Rules, now time.Time) (volume.Result, error)) (volume.Volume, error) {
	now := s.now()
	rl := s.Rules()
	var res volume.Result
	err := s.writeThen(ctx, func(tx store.Tx) error {
		var err error
		res, err = op(tx, rl, now)
		if err != nil {
			return err
		}
		if err := s.recordVolume(tx, actor, kind, res, now); err != nil {
			return err
		}
		return s.volumeConflictItems(tx, res, rl, now)
	}, func() { s.volumes().Apply(res) })
	return res.Volume, err
}

// CreateVolume declares a new volume of the caller.
func (s *Service) CreateVolume(ctx context.Context, p party.Principal, in volume.Input) (volume.Volume, error) {
	if p.Operator {
		return volume.Volume{}, ErrForbidden
	}
	return s.commitVolume(ctx, p.Party, "volume_created", func(tx store.Tx, rl rules.Rules, now time.Time) (volume.Result, error) {
		return s.volumes().Create(tx, p.Party, in, rl, now)
	})
}

// UpdateVolume replaces the caller's volume id at version in.Version.
func (s *Service) UpdateVolume(ctx context.Context, p party.Principal, id string, in volume.Input) (volume.Volume, error) {
	if p.Operator {
		return volume.Volume{}, ErrForbidden
	}
	if in.Version == "" {
		return volume.Volume{}, fielderr.New("version", "the version being replaced is required")
	}
	return s.commitVolume(ctx, p.Party, "volume_updated", func(tx store.Tx, rl rules.Rules, now time.Time) (volume.Result, error) {
		return s.volumes().Update(tx, p.Party, id, in, rl, now)
	})
}

// SetVolumeState moves the caller's volume id (at version) to state.
func (s *Service) SetVolumeState(ctx context.Context, p party.Principal, id, version string, state volume.State, key []volume.KeyEntry) (volume.Volume, error) {
	if p.Operator {
		return volume.Volume{}, ErrForbidden
	}
	if version == "" {
		return volume.Volume{}, fielderr.New("version", "the current version is required")
	}
	return s.commitVolume(ctx, p.Party, "volume_state", func(tx store.Tx, rl rules.Rules, now time.Time) (volume.Result, error) {
		return s.volumes().SetState(tx, p.Party, id, version, state, key, rl, now)
	})
}

// GetVolume returns volume id as the caller may see it.
func (s *Service) GetVolume(p party.Principal, id string) (volume.Volume, error) {
	return s.volumes().Get(p.Party, id)
}

// QueryVolumes lists live volumes meeting the area, band and window, each
// as the caller may see it.
func (s *Service) QueryVolumes(p party.Principal, area *volume.Footprint, e volume.Extent) ([]volume.Volume, error) {
	return s.volumes().Query(p.Party, area, e)
}

// QueryVolumesBox is QueryVolumes over a latitude/longitude box (minLon >
// maxLon crosses the antimeridian).
func (s *Service) QueryVolumesBox(p party.Principal, b volume.Box, e volume.Extent) ([]volume.Volume, error) {
	return s.volumes().QueryBox(p.Party, b, e)
}

// endExpiredVolumes is the periodic job that ends volumes whose window is over.
func (s *Service) endExpiredVolumes(ctx context.Context, now time.Time) error {
	rl := s.Rules()
	var results []volume.Result
	return s.writeThen(ctx, func(tx store.Tx) error {
		var err error
		results, err = s.volumes().EndExpired(tx, rl, now)
		if err != nil {
			return err
		}
		for _, res := range results {
			if err := s.recordVolume(tx, "deconflict", "volume_ended", res, now); err != nil {
				return err
			}
		}
		return nil
	}, func() { s.volumes().Apply(results...) })
}

func (s *Service) volumes() *volume.Registry { return s.vol.Load() }

// VolumeFlag is the data of a volume_flagged event, sent to the owner of a
// live volume that breaks rules adopted after it was written. The volume
// stays as it is; the owner decides what to do with it.
type VolumeFlag struct {
	Volume       volume.Ref `json:"volume"`
	RulesVersion int64      `json:"rules_version"`
	Field        string     `json:"field"`
	Reason       string     `json:"reason"`
}

// flagVolumes tells, in tx, the owner of every live volume that breaks rl.
func (s *Service) flagVolumes(tx store.Tx, rl rules.Rules, now time.Time) error {
	flags, err := s.volumes().Breaking(tx, rl)
	if err != nil {
		return err
	}
	for _, f := range flags {
		data := VolumeFlag{Volume: f.Volume.Ref(), RulesVersion: rl.Version, Field: f.Reason.Field, Reason: f.Reason.Msg}
		if _, err := appendEvent(tx, "volume_flagged", []string{f.Volume.Party}, data, now); err != nil {
			return err
		}
		if err := s.audit(tx, "deconflict", "volume_flagged", audit.For(f.Volume.Party), data); err != nil {
			return err
		}
	}
	return nil
}

// loadVolumes rebuilds the volume index from the store for rl (at start,
// and when new rules change the separation the index is built for).
func (s *Service) loadVolumes(ctx context.Context, rl rules.Rules) error {
	reg := volume.NewRegistry(rl)
	s.observeVolumes(reg)
	// The index built here is kept: with the default GC target the
	// collector would mark the growing heap again and again (a third of
	// the start time with 100,000 volumes). Collect less often while
	// loading.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	if err := s.st.View(ctx, func(tx store.Tx) error { return reg.Load(tx) }); err != nil {
		return fmt.Errorf("service: loading volumes: %w", err)
	}
	s.vol.Store(reg)
	return nil
}

// PreviewVolume reports, without writing, whether the caller's would-be
// volume passes validation and which other parties' volumes it would
// conflict with (reduced): the dry run of an import.
func (s *Service) PreviewVolume(p party.Principal, in volume.Input) ([]volume.Volume, error) {
	if p.Operator {
		return nil, ErrForbidden
	}
	return s.volumes().Preview(p.Party, in, s.Rules())
}
