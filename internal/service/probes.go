package service

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
)

// Probes and need to know for volumes.
//
// Under volume_visibility need_to_know a party sees another party's
// volume only where it meets its own (a conflict with one of its live
// volumes, or one of its aircraft near it). A probe is an answer about a
// would-be volume of the party that is not written: a preview item, a
// request for alternatives, a write refused for a conflict (409
// missing-key, higher-priority). Its answer must name the volumes the
// would-be volume conflicts with (the writer keys them), so it shows
// volumes the party may not see otherwise ("hidden"). A declaration is
// recorded and its conflicts are told to their owners; a probe writes
// nothing. Unchecked, a party could map another's volumes by probing
// hypothetical volumes across the airspace and time at the cost of a
// position of a budget each. So every probe that shows a hidden volume:
//
//   - shows it clipped (volume.Volume.ClippedTo): its id, party,
//     version, state and priority (what a key and the priority rule
//     need), its band and window cut to where they meet the probe's
//     (grown by the separation and two time buffers) and, for its
//     footprint, the probe's own: no more than the conflict itself says;
//   - is paid from the party's budget of revealed volumes
//     (RevealBudget: each hidden volume shown by each probe counts one),
//     and refused whole when it does not hold them (429, nothing shown);
//   - is recorded before it is answered: a volumes_probed audit record
//     (actor deconflict, naming the prober) read by the prober and the
//     owner, and a volumes_probed event to the owner, naming the probe's
//     footprint, band and window and the owner's volumes it revealed, so
//     that the probed party sees who probed where and when. A probe
//     whose record cannot be written is answered with the error, showing
//     nothing.
//
// The alternatives stay exact (issue 17): they are searched against the
// volumes the party sees and those the probe conflicts with, which its
// answer names (clipped) and records. Under volume_visibility all every
// volume is visible: a probe shows nothing hidden, and nothing of this
// applies.

// RevealBudget pays for the hidden volumes the probes of a request show.
type RevealBudget interface {
	// Pay takes volumes out of party's budget, all or none. When the
	// budget does not hold them it takes nothing and returns the
	// refusal, which the request answers as it is.
	Pay(party, via string, volumes int) error
}

type revealBudgetKey struct{}

// WithRevealBudget makes b pay for the hidden volumes the probes of
// ctx's request show. Without one they are recorded but not counted.
func WithRevealBudget(ctx context.Context, b RevealBudget) context.Context {
	return context.WithValue(ctx, revealBudgetKey{}, b)
}

// How a probe was made (VolumesProbed.Via).
const (
	ProbeViaAlternatives = "alternatives" // POST /v1/volumes/alternatives
	ProbeViaPreview      = "preview"      // an item of POST /v1/volumes/preview
	ProbeViaWrite        = "write"        // a volume write refused for a conflict
)

// Probe is one would-be volume a party probed with and the hidden
// volumes its answer showed (none: it revealed nothing, and is not
// recorded).
type Probe struct {
	Footprint volume.Footprint `json:"footprint"`
	AltLowerM float64          `json:"alt_lower_m"`
	AltUpperM float64          `json:"alt_upper_m"`
	Start     time.Time        `json:"start"`
	End       time.Time        `json:"end"`
	Revealed  []volume.Ref     `json:"revealed"`
}

// VolumesProbed is the data of a volumes_probed event and audit record:
// the probes of one request of Party that revealed volumes of the
// reader's (each probe naming only those).
type VolumesProbed struct {
	Party  string  `json:"party"`
	Via    string  `json:"via"`
	Probes []Probe `json:"probes"`
}

// probeOf is the probe in, revealing nothing yet.
func probeOf(in volume.Input) Probe {
	return Probe{Footprint: in.Footprint, AltLowerM: in.AltLowerM, AltUpperM: in.AltUpperM, Start: in.Start, End: in.End}
}

// clipHidden shows vs (volumes a probe in of p conflicts with) as the
// probe's answer may: the hidden ones clipped (volume.ClippedTo), each
// named in the probe returned.
func (s *Service) clipHidden(p party.Principal, in volume.Input, vs []volume.Volume) Probe {
	probe := probeOf(in)
	rl, now := s.Rules(), s.now()
	if p.Operator || rl.VolumeVisibility != rules.VolumesNeedToKnow {
		return probe
	}
	visible := s.visibility(p, rl, now)
	for i := range vs {
		if vs[i].Party == p.Party || visible(&vs[i]) {
			continue
		}
		probe.Revealed = append(probe.Revealed, vs[i].Ref())
		vs[i] = vs[i].ClippedTo(in, rl)
	}
	return probe
}

// RecordProbes pays for and records the hidden volumes that the probes
// of p's request, made via, show (ctx's RevealBudget; the records and
// events described at the top of this file), before they are answered.
// An error (the budget's refusal, or the record not written) is the
// request's answer: nothing it probed may be shown.
func (s *Service) RecordProbes(ctx context.Context, p party.Principal, via string, probes []Probe) error {
	revealed := 0
	owners := map[string]*VolumesProbed{}
	// lastProbe is, for each owner, the index in probes of the last
	// probe its record holds.
	lastProbe := map[string]int{}
	var order []string
	for i, pr := range probes {
		revealed += len(pr.Revealed)
		for _, r := range pr.Revealed {
			rec := owners[r.Party]
			if rec == nil {
				rec = &VolumesProbed{Party: p.Party, Via: via}
				owners[r.Party] = rec
				order = append(order, r.Party)
			}
			if last, ok := lastProbe[r.Party]; !ok || last != i {
				own := pr
				own.Revealed = nil
				rec.Probes = append(rec.Probes, own)
				lastProbe[r.Party] = i
			}
			held := &rec.Probes[len(rec.Probes)-1]
			held.Revealed = append(held.Revealed, r)
		}
	}
	if revealed == 0 {
		return nil
	}
	if b, _ := ctx.Value(revealBudgetKey{}).(RevealBudget); b != nil {
		if err := b.Pay(p.Party, via, revealed); err != nil {
			return err
		}
	}
	slices.Sort(order)
	// Recorded by the service, not as the request's own write: a
	// signed request's statement covers what it changed (a refused
	// write changed nothing, and its nonce is spent already), and an
	// idempotency key keeps only a write's answer.
	return s.write(requestless{ctx}, func(tx store.Tx) error {
		now := s.now()
		for _, owner := range order {
			data := owners[owner]
			if err := s.audit(tx, "deconflict", "volumes_probed", audit.For(p.Party, owner), data); err != nil {
				return err
			}
			if _, err := appendEvent(tx, "volumes_probed", []string{owner}, data, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// requestless is a request's context without its values (its signed
// statement, its idempotency key, its budgets): a write the service
// makes on its own account during the request, ended with it.
type requestless struct{ context.Context }

func (requestless) Value(any) any { return nil }

// probedByRefusal clips, pays for and records the hidden volumes a
// write of p refused for a conflict (err: 409 missing-key or
// higher-priority) shows: a refused write is a probe (in, the volume
// asked for). Any other outcome passes unchanged; so does the refusal
// when its record is written, else the record's error (or the budget's
// refusal) replaces it.
func (s *Service) probedByRefusal(ctx context.Context, p party.Principal, in volume.Input, err error) error {
	var mk *volume.MissingKeyError
	var pe *volume.PriorityError
	var probe Probe
	switch {
	case errors.As(err, &mk):
		probe = s.clipHidden(p, in, mk.Missing)
	case errors.As(err, &pe):
		probe = s.clipHidden(p, in, pe.Higher)
	default:
		return err
	}
	if rerr := s.RecordProbes(ctx, p, ProbeViaWrite, []Probe{probe}); rerr != nil {
		return rerr
	}
	return err
}
