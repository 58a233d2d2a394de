package service

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
)

// volumeAudit is the audit content of a volume write: the volume without
// its details, and the details sealed for their owner, so that the chain
// covers them while an export for another party shows only their hash.
type volumeAudit struct {
	Volume  volume.Volume `json:"volume"`
	Details *audit.Sealed `json:"details,omitempty"`
	// Conflicts are the other parties' volumes the write conflicts with
	// (volume.Ref). Under need to know each is sealed (audit.Sealed) for
	// the writer and that volume's owner: every party whose volume is one
	// of them reads the record (volumeReaders), and may not learn of the
	// others.
	Conflicts []any `json:"conflicts,omitempty"`
}

func auditOfVolume(res volume.Result, rl rules.Rules) volumeAudit {
	a := volumeAudit{Volume: res.Volume.Reduced()}
	if len(res.Volume.Details) > 0 {
		sealed := audit.Seal(res.Volume.Details, res.Volume.Party)
		a.Details = &sealed
	}
	for _, c := range res.Conflicts {
		if rl.VolumeVisibility == rules.VolumesNeedToKnow {
			a.Conflicts = append(a.Conflicts, audit.Seal(c.Ref(), res.Volume.Party, c.Party))
			continue
		}
		a.Conflicts = append(a.Conflicts, c.Ref())
	}
	return a
}

// volumeReaders is who may read the audit record of a volume write: every
// party when every party sees every volume; under need to know, the owner
// and the parties whose volumes it conflicts with (told of the conflict),
// the parties that may see it through the API when it is written.
func volumeReaders(res volume.Result, rl rules.Rules) audit.Readers {
	if rl.VolumeVisibility != rules.VolumesNeedToKnow {
		return audit.Everyone
	}
	readers := audit.For(res.Volume.Party)
	for _, c := range res.Conflicts {
		if !slices.Contains(readers, c.Party) {
			readers = append(readers, c.Party)
		}
	}
	return readers
}

// recordVolume appends the audit record and the events of one registry
// write to its transaction.
func (s *Service) recordVolume(tx store.Tx, actor, kind string, res volume.Result, rl rules.Rules, now time.Time) error {
	if err := s.audit(tx, actor, kind, volumeReaders(res, rl), auditOfVolume(res, rl)); err != nil {
		return err
	}
	return res.AppendEvents(tx, now)
}

// commitVolume runs one registry write in a transaction together with its
// audit record and events, and hands the result to the registry after the
// commit.
func (s *Service) commitVolume(ctx context.Context, actor, kind string, op func(tx store.Tx, rl rules.Rules, now time.Time) (volume.Result, error)) (volume.Volume, error) {
	var res volume.Result
	err := s.writeVolumes(ctx, func(tx store.Tx, rl rules.Rules) error {
		now := s.now()
		var err error
		res, err = op(tx, rl, now)
		if err != nil {
			return err
		}
		if n := len(res.Conflicts); n > hotline.MaxVolumeConflictsPerWrite {
			// Refused before its thousands of events are written.
			return &hotline.TooManyConflictsError{Conflicts: n, Limit: hotline.MaxVolumeConflictsPerWrite}
		}
		if err := s.recordVolume(tx, actor, kind, res, rl, now); err != nil {
			return err
		}
		return s.volumeConflictItems(tx, res, rl, now)
	}, func() { s.volumes().Apply(res) }, func() any { return res.Volume })
	return res.Volume, err
}

// writeVolumes runs a write of the volume registry, fn, with the rules in
// force as the store holds them when it commits: the write's transaction
// reads the store's version (on PostgreSQL after the writers' lock, which
// every replica takes), and when it is newer than the rules this process
// runs with (an activation committed and not adopted yet, by this process
// or another replica), the attempt ends before fn runs, the store's rules
// are adopted without the writers' lock (rulesBehindError: the volume
// index may be rebuilt for them, seconds with 100,000 volumes), and the
// write runs again. Checked under the rules before, a write could be
// accepted under rules that no longer hold, and the activation, whose
// check of the volumes was over, would never report its conflicts under
// the new ones. The volume writes are held shared (volumeWrites).
func (s *Service) writeVolumes(ctx context.Context, fn func(tx store.Tx, rl rules.Rules) error, after func(), result func() any) error {
	s.volumeWrites.RLock()
	defer s.volumeWrites.RUnlock()
	catchUps := 0
	catchUp := func(ctx context.Context) error {
		if catchUps++; catchUps > maxRulesCatchUps {
			return fmt.Errorf("service: the rules in force changed %d times during one volume write: %w", catchUps, store.ErrConflict)
		}
		// The index is rebuilt for the new rules under volumeWrites
		// (applyRules): let go of it meanwhile, taken again before the
		// writers' lock, in that order.
		s.volumeWrites.RUnlock()
		defer s.volumeWrites.RLock()
		return s.adoptStoredRules(ctx)
	}
	return s.writeAnswer(ctx, func(tx store.Tx) error {
		rl := s.Rules()
		stored, err := tx.LatestRules()
		if err != nil {
			return err
		}
		if stored.Version > rl.Version {
			return &rulesBehindError{checked: rl.Version, stored: stored.Version, catchUp: catchUp}
		}
		return fn(tx, rl)
	}, after, result)
}

// maxRulesCatchUps bounds how many times one volume write adopts newer
// rules: they would have to come into force again during each attempt.
const maxRulesCatchUps = 3

// rulesBehindError ends the attempt of a volume write whose process runs
// with older rules than the store holds (writeVolumes), before it writes
// anything: writeThenKeep calls catchUp without the writers' lock and
// runs the transaction again.
type rulesBehindError struct {
	checked, stored int64
	catchUp         func(context.Context) error
}

func (e *rulesBehindError) Error() string {
	return fmt.Sprintf("service: a volume write under rules version %d while the store holds version %d", e.checked, e.stored)
}

// CreateVolume declares a new volume of the caller. A refusal for a
// conflict (missing key, higher priority) carries the write's
// alternatives.
func (s *Service) CreateVolume(ctx context.Context, p party.Principal, in volume.Input) (volume.Volume, error) {
	if p.Operator {
		return volume.Volume{}, ErrForbidden
	}
	if err := s.searchBeforeWrite(ctx, p, "", in); err != nil {
		return volume.Volume{}, err
	}
	v, err := s.commitVolume(ctx, p.Party, "volume_created", func(tx store.Tx, rl rules.Rules, now time.Time) (volume.Result, error) {
		return s.volumes().Create(tx, p.Party, in, rl, now)
	})
	err = s.probedByRefusal(ctx, p, in, s.viewConflicts(p, err))
	return v, s.withAlternatives(ctx, p, "", in, err)
}

// VolumeAlternatives returns the nearest conflict-free variants of the
// caller's write in (of its volume id, "" for a new one; see
// volume.Registry.Alternatives), considering the volumes it may see and
// those the write conflicts with; none when it conflicts with nothing. An
// invalid write is refused as the write would be. The search is paid from
// the budget of ctx's request (WithAlternativesBudget): when it does not
// hold one, ErrAlternativesBudget and no search.
func (s *Service) VolumeAlternatives(ctx context.Context, p party.Principal, id string, in volume.Input) ([]volume.Alternative, error) {
	if p.Operator {
		return nil, ErrForbidden
	}
	if i := idempotencyOf(ctx); i != nil {
		i.mu.Lock()
		searched := i.alternatives
		i.mu.Unlock()
		if searched != nil {
			return searched.alts, searched.err
		}
	}
	alts, _, err := s.volumeAlternatives(ctx, p, id, in, nil)
	return alts, err
}

// volumeAlternatives is VolumeAlternatives, searched now; searched says
// whether a search was asked for (the write conflicts). before, when not
// nil, is asked first: its error ends the search, nothing paid.
func (s *Service) volumeAlternatives(ctx context.Context, p party.Principal, id string, in volume.Input, before func() error) (alts []volume.Alternative, searched bool, err error) {
	rl, now := s.Rules(), s.now()
	alts, err = s.searchAlternatives(ctx, p.Party, func(payListing func(checks int) error, pay func(near, mostChecks int) error) ([]volume.Alternative, int, error) {
		return s.volumes().AlternativesPaidListed(p.Party, id, in, rl, now, s.visibility(p, rl, now), func(checks int) error {
			searched = true
			if before != nil {
				if err := before(); err != nil {
					return err
				}
			}
			return payListing(checks)
		}, pay)
	})
	return alts, searched, err
}

// errKeptAlready ends the search of searchBeforeWrite for a request
// whose answer is kept already.
var errKeptAlready = errors.New("service: the answer to this request is kept already")

// searchedAlternatives are the alternatives of a request's volume write
// searched before its transaction, or why they were not (err).
type searchedAlternatives struct {
	alts []volume.Alternative
	err  error
}

// searchBeforeWrite searches, before the transaction of a volume write
// whose request carries an idempotency key, the alternatives its answer
// gives, which that answer, rendered and kept in the transaction, then
// takes from the request (VolumeAlternatives). Searched in the
// transaction, they held every writer of the process (and on PostgreSQL
// of every replica: the writers' lock), the commits of alerts included,
// for the search, and for as long as the search waited for a turn of
// work on demand behind other parties' resolutions and searches. A
// write that conflicts with nothing as the registry stands now is
// searched for in its transaction if it conflicts there (a volume
// committed meanwhile by another replica), as before. A search that
// could not be made for the request (it ended while the search waited
// for its turn) ends the write before it is made; the budget's refusal
// is an answer (alternatives omitted). A request whose key is kept
// already is answered from the store (its transaction replays it):
// nothing is searched for it.
func (s *Service) searchBeforeWrite(ctx context.Context, p party.Principal, id string, in volume.Input) error {
	i := idempotencyOf(ctx)
	if i == nil {
		return nil
	}
	alts, searched, err := s.volumeAlternatives(ctx, p, id, in, func() error {
		return s.st.View(ctx, func(tx store.Tx) error {
			_, err := tx.GetIdempotent(i.Party, i.Key, s.now())
			if err == nil {
				return errKeptAlready
			}
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		})
	})
	if errors.Is(err, errKeptAlready) || !searched {
		// Answered from the store, invalid (the write refuses it), or
		// conflicting with nothing.
		return nil
	}
	if err != nil && !errors.Is(err, ErrAlternativesBudget) {
		return err
	}
	i.mu.Lock()
	i.alternatives = &searchedAlternatives{alts: alts, err: err}
	i.mu.Unlock()
	return nil
}

// withAlternatives adds the alternatives of the write to a refusal for a
// conflict, or says they were omitted when the party's budget of searches
// did not hold one (the refusal itself stands); any other outcome passes
// unchanged.
func (s *Service) withAlternatives(ctx context.Context, p party.Principal, id string, in volume.Input, err error) error {
	var mk *volume.MissingKeyError
	var pe *volume.PriorityError
	switch {
	case errors.As(err, &mk):
		var aerr error
		mk.Alternatives, aerr = s.VolumeAlternatives(ctx, p, id, in)
		if errors.Is(aerr, ErrAlternativesBudget) {
			mk.AlternativesOmitted = AlternativesOmittedBudget
		}
	case errors.As(err, &pe):
		var aerr error
		pe.Alternatives, aerr = s.VolumeAlternatives(ctx, p, id, in)
		if errors.Is(aerr, ErrAlternativesBudget) {
			pe.AlternativesOmitted = AlternativesOmittedBudget
		}
	}
	return err
}

// viewConflicts shows the other parties' volumes a refusal for a conflict
// names (missing, higher priority) as the caller reads them (viewOthers);
// any other outcome passes unchanged.
func (s *Service) viewConflicts(p party.Principal, err error) error {
	var mk *volume.MissingKeyError
	var pe *volume.PriorityError
	switch {
	case errors.As(err, &mk):
		s.viewOthers(p, mk.Missing)
	case errors.As(err, &pe):
		s.viewOthers(p, pe.Higher)
	}
	return err
}

// viewOthers gives the other parties' volumes named in an answer to p (a
// 409's missing or higher-priority volumes, a preview's conflicts), which
// the registry hands over reduced without their conflicts, the conflicts
// p is shown when it reads them (GetVolume): those with p's own volumes,
// and under volume_visibility "all" every one. Without it the same volume
// at the same version said "conflicts":[] in a 409 and named its
// conflicts in GET /v1/volumes/{id}: an empty list read as "conflicts
// with nothing". A volume written again meanwhile keeps what it had.
func (s *Service) viewOthers(p party.Principal, vs []volume.Volume) {
	reg := s.volumes()
	for i := range vs {
		v := &vs[i]
		if v.Party == p.Party {
			continue
		}
		if cur, err := reg.Get(p.Party, v.ID); err == nil && cur.Version == v.Version {
			v.Conflicts = cur.Conflicts
		}
	}
	s.withAllConflicts(p, vs)
}

// UpdateVolume replaces the caller's volume id at version in.Version.
func (s *Service) UpdateVolume(ctx context.Context, p party.Principal, id string, in volume.Input) (volume.Volume, error) {
	if p.Operator {
		return volume.Volume{}, ErrForbidden
	}
	if in.Version == "" {
		return volume.Volume{}, fielderr.New("version", "the version being replaced is required")
	}
	if err := s.searchBeforeWrite(ctx, p, id, in); err != nil {
		return volume.Volume{}, err
	}
	v, err := s.commitVolume(ctx, p.Party, "volume_updated", func(tx store.Tx, rl rules.Rules, now time.Time) (volume.Result, error) {
		return s.volumes().Update(tx, p.Party, id, in, rl, now)
	})
	err = s.probedByRefusal(ctx, p, in, s.viewConflicts(p, s.hideForeign(p, id, err)))
	return v, s.withAlternatives(ctx, p, id, in, err)
}

// SetVolumeState moves the caller's volume id (at version) to state.
func (s *Service) SetVolumeState(ctx context.Context, p party.Principal, id, version string, state volume.State, key []volume.KeyEntry) (volume.Volume, error) {
	if p.Operator {
		return volume.Volume{}, ErrForbidden
	}
	if version == "" {
		return volume.Volume{}, fielderr.New("version", "the current version is required")
	}
	if cur, gerr := s.volumes().Get(p.Party, id); gerr == nil && cur.Party == p.Party && state.Live() {
		if err := s.searchBeforeWrite(ctx, p, id, inState(cur, state)); err != nil {
			return volume.Volume{}, err
		}
	}
	v, err := s.commitVolume(ctx, p.Party, "volume_state", func(tx store.Tx, rl rules.Rules, now time.Time) (volume.Result, error) {
		return s.volumes().SetState(tx, p.Party, id, version, state, key, rl, now)
	})
	err = s.viewConflicts(p, s.hideForeign(p, id, err))
	if !errors.Is(err, volume.ErrMissingKey) && !errors.Is(err, volume.ErrHigherPriority) {
		return v, err
	}
	if cur, gerr := s.volumes().Get(p.Party, id); gerr == nil && cur.Party == p.Party {
		in := inState(cur, state)
		if err = s.probedByRefusal(ctx, p, in, err); !errors.Is(err, volume.ErrMissingKey) && !errors.Is(err, volume.ErrHigherPriority) {
			return v, err
		}
		err = s.withAlternatives(ctx, p, id, in, err)
	}
	return v, err
}

// inState is the write of the volume cur as it is, in state.
func inState(cur volume.Volume, state volume.State) volume.Input {
	return volume.Input{
		Footprint: cur.Footprint, AltLowerM: cur.AltLowerM, AltUpperM: cur.AltUpperM,
		Start: cur.Start, End: cur.End, Priority: cur.Priority, State: state, Details: cur.Details,
	}
}

// OwnVolumePositions is the number of positions of the footprint of the
// caller's own volume id, 0 when it holds none of that id (as this
// replica knows it): what a state change of the volume compiles and
// checks, which a budget of volume writes charges before it is made.
func (s *Service) OwnVolumePositions(p party.Principal, id string) int {
	v, err := s.volumes().Get(p.Party, id)
	if err != nil || v.Party != p.Party {
		return 0
	}
	return v.Footprint.Positions()
}

// GetVolume returns volume id as the caller may see it; a volume it may
// not see (volume_visibility need_to_know) is not found, as if it did not
// exist.
func (s *Service) GetVolume(p party.Principal, id string) (volume.Volume, error) {
	v, err := s.volumes().Get(p.Party, id)
	if err == nil && !s.volumeVisible(p, v, s.Rules(), s.now()) {
		return volume.Volume{}, volume.ErrNotFound
	}
	if err == nil {
		vs := []volume.Volume{v}
		s.withAllConflicts(p, vs)
		v = vs[0]
	}
	return v, err
}

// QueryVolumes lists live volumes meeting the area, band and window, each
// as the caller may see it, and only those it may see.
func (s *Service) QueryVolumes(p party.Principal, area *volume.Footprint, e volume.Extent) ([]volume.Volume, error) {
	vs, err := s.volumes().Query(p.Party, area, e)
	vs = s.visibleVolumes(p, vs)
	s.withAllConflicts(p, vs)
	return vs, err
}

// QueryVolumesBox is QueryVolumes over a latitude/longitude box (minLon >
// maxLon crosses the antimeridian).
func (s *Service) QueryVolumesBox(p party.Principal, b volume.Box, e volume.Extent) ([]volume.Volume, error) {
	vs, err := s.volumes().QueryBox(p.Party, b, e)
	vs = s.visibleVolumes(p, vs)
	s.withAllConflicts(p, vs)
	return vs, err
}

// withAllConflicts gives back, to a caller that may see every volume (the
// operator, or every party under volume_visibility "all"), the conflicts
// the registry leaves out of another party's volume (volume.ViewFor): they
// are hidden because, under need to know, they name volumes the caller
// may not see. A volume written again meanwhile keeps its view.
func (s *Service) withAllConflicts(p party.Principal, vs []volume.Volume) {
	if !p.Operator && s.Rules().VolumeVisibility == rules.VolumesNeedToKnow {
		return
	}
	reg := s.volumes()
	for i := range vs {
		v := &vs[i]
		if v.Party == p.Party {
			continue
		}
		if full, err := reg.Get(v.Party, v.ID); err == nil && full.Version == v.Version {
			v.Conflicts = full.Conflicts
		}
	}
}

// volumeVisible is need to know for volumes: under volume_visibility
// need_to_know, another party's volume is visible to a party only when it
// conflicts with one of the party's live volumes (separation and time
// buffer included) or has been near one of its aircraft within the linger
// (package disclose); under "all", and for the operator, every volume is.
// What a 409 names in answer to a party's own write is shown there
// whatever this says: the party needs it to complete its key.
func (s *Service) volumeVisible(p party.Principal, v volume.Volume, rl rules.Rules, now time.Time) bool {
	if p.Operator || rl.VolumeVisibility != rules.VolumesNeedToKnow || v.Party == p.Party {
		return true
	}
	if s.volumes().ConflictsWithParty(v, p.Party) {
		return true
	}
	pic := s.picture()
	return pic != nil && pic.VolumeNear(p.Party, v.ID, now)
}

// visibleVolumes keeps the volumes p may see.
func (s *Service) visibleVolumes(p party.Principal, vs []volume.Volume) []volume.Volume {
	rl, now := s.Rules(), s.now()
	if p.Operator || rl.VolumeVisibility != rules.VolumesNeedToKnow {
		return vs
	}
	visible := s.visibility(p, rl, now)
	out := vs[:0]
	for i := range vs {
		if visible(&vs[i]) {
			out = append(out, vs[i])
		}
	}
	return out
}

// visibility is volumeVisible for many volumes at once: under need to
// know, the other parties' volumes that conflict with one of p's are
// found once, from p's own volumes (volume.Registry.ConflictingWith), at
// the first volume of another party asked about, rather than by a query
// of the index per volume: the search of alternatives asks about every
// volume near the write, thousands when they are stacked, and a query per
// volume made it grow with the square of their number. Not safe for
// concurrent use; the set is as the registry was at that first question.
func (s *Service) visibility(p party.Principal, rl rules.Rules, now time.Time) func(*volume.Volume) bool {
	if p.Operator || rl.VolumeVisibility != rules.VolumesNeedToKnow {
		return func(*volume.Volume) bool { return true }
	}
	var conflicting map[string]bool
	pic := s.picture()
	return func(v *volume.Volume) bool {
		if v.Party == p.Party {
			return true
		}
		if conflicting == nil {
			conflicting = s.volumes().ConflictingWith(p.Party)
		}
		return conflicting[v.ID] || (pic != nil && pic.VolumeNear(p.Party, v.ID, now))
	}
}

// hideForeign answers a write on another party's volume that the caller
// may not see as if the volume did not exist: a 403 would tell it exists.
func (s *Service) hideForeign(p party.Principal, id string, err error) error {
	if !errors.Is(err, volume.ErrForbidden) {
		return err
	}
	if v, gerr := s.volumes().Get(p.Party, id); gerr == nil && !s.volumeVisible(p, v, s.Rules(), s.now()) {
		return volume.ErrNotFound
	}
	return err
}

// endExpiredVolumes is the periodic job that ends volumes whose window is
// over (plus the time buffer of the rules the store holds).
func (s *Service) endExpiredVolumes(ctx context.Context, now time.Time) error {
	var results []volume.Result
	return s.writeVolumes(ctx, func(tx store.Tx, rl rules.Rules) error {
		var err error
		results, err = s.volumes().EndExpired(tx, rl, now)
		if err != nil {
			return err
		}
		for _, res := range results {
			if err := s.recordVolume(tx, "deconflict", "volume_ended", res, rl, now); err != nil {
				return err
			}
		}
		return nil
	}, func() { s.volumes().Apply(results...) }, nil)
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

// flagVolumes tells, in tx, the owner of every live volume that breaks rl
// (flags, volume.Registry.AfterScan).
func (s *Service) flagVolumes(tx store.Tx, flags []volume.Flag, rl rules.Rules, now time.Time) error {
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

// RulesConflict is the data of a volume_conflict event and audit record for
// two volumes that conflict only under the rules of RulesVersion (a
// separation or time buffer raised): both owners hear of it as of a
// conflict found at a write.
type RulesConflict struct {
	Volumes      []volume.Volume `json:"volumes"`
	RulesVersion int64           `json:"rules_version"`
}

// reportNewConflicts tells, in tx, both owners of every pair of live
// volumes that conflicts under rl but did not under the rules before it
// (pairs, volume.Registry.AfterScan): a volume_conflict event and an
// audit record (for the two owners, who alone hear of it through the
// API) each, as a write that found the conflict would have; and posts
// items, the hotline items that tell them grouped (conflictItems: this
// batch's pairs and earlier ones'), none to a party still to acknowledge
// an item of the same conflicts. The volumes stay as they are.
func (s *Service) reportNewConflicts(tx store.Tx, pairs []volume.Pair, items []pendingItem, rl rules.Rules, now time.Time) error {
	for _, p := range pairs {
		data := RulesConflict{Volumes: []volume.Volume{p.A.Reduced(), p.B.Reduced()}, RulesVersion: rl.Version}
		owners := []string{p.A.Party, p.B.Party}
		if _, err := appendEvent(tx, "volume_conflict", owners, data, now); err != nil {
			return err
		}
		if err := s.audit(tx, "deconflict", "volume_conflict", audit.For(owners...), data); err != nil {
			return err
		}
	}
	for _, it := range items {
		if _, _, err := hotline.PostVolumeConflictsUnderRules(tx, s.alog, rl, it.Volume, it.Conflicts, now); err != nil {
			return err
		}
	}
	return nil
}

// loadVolumes rebuilds the volume index from the store for rl (at start,
// and when new rules change the separation the index is built for).
func (s *Service) loadVolumes(ctx context.Context, rl rules.Rules) error {
	if s.onLoadVolumes != nil {
		s.onLoadVolumes()
	}
	reg := volume.NewRegistry(rl)
	reg.SetPartyLimits(volume.PartyLimits{Volumes: s.cfg.MaxVolumesPerParty, Positions: s.cfg.MaxPositionsPerParty})
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
// conflict with (reduced; those the caller may not see otherwise
// clipped to the probe, see probes.go): the dry run of an import, and of
// a request for alternatives. The probe names the volumes it clipped:
// the caller pays for and records them (RecordProbes) before it shows
// them.
func (s *Service) PreviewVolume(p party.Principal, in volume.Input) ([]volume.Volume, Probe, error) {
	if p.Operator {
		return nil, Probe{}, ErrForbidden
	}
	vs, err := s.volumes().Preview(p.Party, in, s.Rules())
	s.viewOthers(p, vs)
	return vs, s.clipHidden(p, in, vs), err
}
