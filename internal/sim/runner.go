package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/rules"
)

// Options of a run.
type Options struct {
	// Speed is scenario seconds per wall-clock second (10: ten times real
	// time); 0 runs as fast as the server takes it.
	Speed float64
	// FromS and UntilS bound the part of the scenario that is run (UntilS 0:
	// until the last landing).
	FromS, UntilS float64
	// AckDelay is how long a party takes to acknowledge a hotline item.
	AckDelay time.Duration
	// DeclareAheadS is how long before a flight's first volume starts the
	// party declares its volumes (default 30 minutes of scenario time).
	DeclareAheadS float64
	// Resolve makes the run act on resolutions: planners take the
	// alternatives of conflicting declarations and pilots follow the
	// suggestions of their aircraft's alerts (resolution.go).
	Resolve bool
	// OnEvent, when set, sees every event each party receives.
	OnEvent func(party string, ev client.Event)
	// Logf, when set, receives notes on what went wrong and was handled.
	Logf func(format string, args ...any)
	// Now and Sleep are the wall clock (time.Now and a timer when nil);
	// tests pass a fake one.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Stats are the counters of a run, readable while it runs.
type Stats struct {
	simTimeBits     atomic.Uint64
	ReportsSent     atomic.Int64
	ReportsRejected atomic.Int64
	VolumesDeclared atomic.Int64
	// KeyRetries counts 409s answered by completing the awareness key.
	KeyRetries      atomic.Int64
	VolumesActive   atomic.Int64
	VolumeErrors    atomic.Int64
	VolumeConflicts atomic.Int64
	Acks            atomic.Int64
	Escalations     atomic.Int64
	AlertsSeen      atomic.Int64
	// StrategicConflicts counts declarations refused for a conflict in a
	// run with resolutions, StrategicResolved those of them declared
	// through an alternative; Manoeuvres counts the suggestions pilots
	// started to fly.
	StrategicConflicts atomic.Int64
	StrategicResolved  atomic.Int64
	Manoeuvres         atomic.Int64
	// LossesOfSeparation counts the pairs of aircraft of different parties
	// that were closer than the separation minima at some report.
	LossesOfSeparation atomic.Int64
}

// SimTimeS is the scenario time the run has reached.
func (s *Stats) SimTimeS() float64 { return math.Float64frombits(s.simTimeBits.Load()) }

func (s *Stats) setSimTime(t float64) { s.simTimeBits.Store(math.Float64bits(t)) }

// AlertRecord is what the run saw of one alert, across parties.
type AlertRecord struct {
	ID       string
	Kind     string
	Aircraft []string // aircraft ids, sorted
	// Parties that received the alert; Levels it reached; parties that
	// acknowledged one of its hotline items; whether one escalated.
	Parties   map[string]bool
	Levels    map[string]bool
	Acked     map[string]bool
	Escalated bool
	Cleared   bool
}

// Runner drives a server with a planned scenario, one client per party.
type Runner struct {
	plan    *Plan
	clients map[string]*client.Client
	opt     Options
	Stats   Stats

	noAck map[string]map[string]bool // party -> sortie ids it does not ack

	mu        sync.Mutex
	alerts    map[string]*AlertRecord
	msgAlert  map[string]string // message id -> alert id
	acked     map[string]bool   // party+"/"+message id
	escalated map[string]bool   // message ids
	conflicts map[string]bool   // volume conflict pairs seen
	volFlight map[string]string // volume id -> flight id, for every volume the run declared

	acks    sync.WaitGroup
	closing bool // under mu: no new acknowledgments are scheduled

	// What flights do beyond their plan, and what happened (under mu;
	// resolution.go): altitude shifts of pieces declared through an
	// alternative, manoeuvres flown, pairs that lost separation.
	shifts     map[string][]altShift
	manoeuvres map[string]*manoeuvre
	losses     map[string]bool
	types      map[string]AircraftType
	// minima are the separation minima of the server's rules by pair of
	// classes (minimaOf); nil when the rules could not be read.
	minima map[[2]string][2]float64
	// rules are the server's rules (zero when they could not be read):
	// the rates pilots fly suggestions at. Guarded by mu.
	rules rules.Rules
}

// NewRunner prepares a run. Every party of the scenario needs a client.
func NewRunner(p *Plan, clients map[string]*client.Client, opt Options) (*Runner, error) {
	for _, party := range p.Scenario.Parties {
		if clients[party.Name] == nil {
			return nil, fmt.Errorf("sim: no token for party %q", party.Name)
		}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Sleep == nil {
		opt.Sleep = client.Sleep
	}
	if opt.DeclareAheadS <= 0 {
		opt.DeclareAheadS = 1800
	}
	if opt.Speed < 0 || math.IsNaN(opt.Speed) || math.IsInf(opt.Speed, 0) {
		return nil, fmt.Errorf("sim: speed must be a positive number (or 0 for as fast as possible)")
	}
	r := &Runner{
		plan: p, clients: clients, opt: opt,
		noAck:  map[string]map[string]bool{},
		alerts: map[string]*AlertRecord{}, msgAlert: map[string]string{},
		acked: map[string]bool{}, escalated: map[string]bool{}, conflicts: map[string]bool{},
		volFlight: map[string]string{},
		shifts:    map[string][]altShift{}, manoeuvres: map[string]*manoeuvre{}, losses: map[string]bool{},
		types: map[string]AircraftType{},
	}
	for _, t := range p.Scenario.AircraftTypes {
		r.types[t.Name] = t
	}
	for _, party := range p.Scenario.Parties {
		r.noAck[party.Name] = map[string]bool{}
		for _, id := range party.NoAck {
			r.noAck[party.Name][id] = true
		}
	}
	return r, nil
}

func (r *Runner) logf(format string, args ...any) {
	if r.opt.Logf != nil {
		r.opt.Logf(format, args...)
	}
}

// Alerts returns what the run saw of each alert, sorted by id.
func (r *Runner) Alerts() []AlertRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]AlertRecord, 0, len(r.alerts))
	for _, a := range r.alerts {
		out = append(out, a.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Alert returns what the run saw of one alert.
func (r *Runner) Alert(id string) (AlertRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.alerts[id]
	if !ok {
		return AlertRecord{}, false
	}
	return a.clone(), true
}

// clone is a copy of a that shares none of its sets.
func (a *AlertRecord) clone() AlertRecord {
	c := *a
	c.Parties, c.Levels, c.Acked = maps.Clone(a.Parties), maps.Clone(a.Levels), maps.Clone(a.Acked)
	return c
}

// FlightOfVolume returns the flight a volume declared by this run is for,
// or nil.
func (r *Runner) FlightOfVolume(volumeID string) *Flight {
	r.mu.Lock()
	id, ok := r.volFlight[volumeID]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	return r.plan.Flight(id)
}

// clock maps scenario time onto the wall clock.
type clock struct {
	speed float64
	s0    float64
	w0    time.Time
}

func (c *clock) wall(tS float64) time.Time {
	return c.w0.Add(time.Duration((tS - c.s0) / c.speed * float64(time.Second)))
}

// Run declares volumes and streams positions from FromS to UntilS, and
// acknowledges hotline items as they come, until done or ctx is cancelled
// (then it returns ctx's error).
func (r *Runner) Run(ctx context.Context) error {
	sc := r.plan.Scenario
	until := r.opt.UntilS
	if until <= 0 || until > r.plan.EndS {
		until = r.plan.EndS
	}
	from := r.opt.FromS
	step := sc.ReportEveryS

	evCtx, stopEvents := context.WithCancel(context.Background())
	var followers sync.WaitGroup
	started := r.opt.Now()
	for _, p := range sc.Parties {
		followers.Add(1)
		go func(party string) {
			defer followers.Done()
			r.follow(evCtx, party, started)
		}(p.Name)
	}
	defer func() {
		stopEvents()
		followers.Wait()
	}()

	// The separation minima that losses of separation are counted against.
	if rl, err := r.clients[sc.Parties[0].Name].Rules(ctx); err == nil {
		r.minima = minimaOf(rl)
		r.mu.Lock()
		r.rules = rl
		r.mu.Unlock()
	} else if ctx.Err() != nil {
		return ctx.Err()
	} else {
		r.logf("sim: reading the rules: %v; losses of separation are not counted", err)
	}
	r.Stats.setSimTime(from)
	clk := &clock{speed: r.opt.Speed, s0: from, w0: r.opt.Now()}
	declared := map[string]bool{}
	declare := func(tS float64) error {
		for _, f := range r.plan.Flights {
			if declared[f.ID] || f.EndS < from || f.StartS-defaultLeadS-r.opt.DeclareAheadS > tS {
				continue
			}
			declared[f.ID] = true
			if err := r.declare(ctx, clk, f); err != nil {
				return err
			}
		}
		return nil
	}
	// Declare what flies at the start before the clock starts, so that no
	// aircraft is airborne without its volumes.
	if err := declare(from); err != nil {
		return err
	}
	clk.w0 = r.opt.Now()
	var lastStamp time.Time
	for t := from; t <= until; t += step {
		r.Stats.setSimTime(t)
		var stamp time.Time
		if r.opt.Speed > 0 {
			target := clk.wall(t)
			if d := target.Sub(r.opt.Now()); d > 0 {
				if err := r.opt.Sleep(ctx, d); err != nil {
					return err
				}
			} else if -d > 10*time.Second {
				// Too far behind (a slow server): re-base rather than stamp
				// reports the server would refuse as too old.
				r.logf("sim: %.0f s behind schedule at %.0f s; re-basing the clock", -d.Seconds(), t)
				clk.s0, clk.w0 = t, r.opt.Now()
				target = clk.wall(t)
			}
			stamp = target
		} else {
			stamp = r.opt.Now()
			if !stamp.After(lastStamp) {
				stamp = lastStamp.Add(time.Millisecond)
			}
		}
		lastStamp = stamp
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := declare(t); err != nil {
			return err
		}
		if err := r.post(ctx, t, stamp); err != nil {
			return err
		}
		// Nobody in the air until the next take-off: skip the quiet
		// period (the clock is re-based) instead of waiting through it.
		if next := r.nextTakeOff(t + step); next-t > 2*step && next <= until {
			t = next - step
			if r.opt.Speed > 0 {
				clk.s0, clk.w0 = next, r.opt.Now()
			}
		}
	}
	// Let scheduled acknowledgments go out before the streams stop.
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	r.acks.Wait()
	return ctx.Err()
}

// nextTakeOff returns when the next aircraft takes off if none is airborne
// at tS, or tS.
func (r *Runner) nextTakeOff(tS float64) float64 {
	next := math.Inf(1)
	for _, f := range r.plan.Flights {
		if tS >= f.StartS && tS <= f.EndS {
			return tS
		}
		if f.StartS > tS {
			next = math.Min(next, f.StartS)
		}
	}
	return next
}

// post sends every airborne aircraft's state at tS, one batch per party.
func (r *Runner) post(ctx context.Context, tS float64, stamp time.Time) error {
	batches := map[string][]client.Report{}
	states := map[string]State{}
	for _, f := range r.plan.Flights {
		st, ok := r.stateAt(f, tS)
		if !ok {
			continue
		}
		states[f.ID] = st
		batches[f.Party] = append(batches[f.Party], client.Report{
			Aircraft: f.ID, Callsign: f.Callsign, Class: f.Class, Time: stamp.UTC(),
			LatDeg: st.Pos.LatDeg, LonDeg: st.Pos.LonDeg, AltM: st.Pos.AltM,
			VelEastMps: st.VelEastMps, VelNorthMps: st.VelNorthMps, VelUpMps: st.VelUpMps,
		})
	}
	r.separationWatch(states)
	parties := make([]string, 0, len(batches))
	for p := range batches {
		parties = append(parties, p)
	}
	sort.Strings(parties)
	var b client.Backoff
	for _, p := range parties {
		batch := batches[p]
		for attempt := 0; ; attempt++ {
			res, err := r.clients[p].PostPositions(ctx, batch)
			if err == nil {
				r.Stats.ReportsSent.Add(int64(res.Accepted))
				r.Stats.ReportsRejected.Add(int64(len(res.Rejected)))
				if len(res.Rejected) > 0 {
					r.logf("sim: %s: %d reports rejected, first: %s", p, len(res.Rejected), res.Rejected[0].Error)
				}
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !client.Retryable(err) || attempt == 5 {
				r.Stats.ReportsRejected.Add(int64(len(batch)))
				r.logf("sim: %s: positions: %v", p, err)
				break
			}
			if err := client.Sleep(ctx, b.After(attempt, err)); err != nil {
				return err
			}
		}
	}
	return nil
}

// declare creates a flight's volumes as its party would: with an empty
// awareness key first; on a 409 the missing volumes are added to the key
// (as a cell does after coordinating on the hotline) and the request is
// sent again. Each volume is then activated; when a conflict keeps it in
// state accepted, it stays so.
func (r *Runner) declare(ctx context.Context, clk *clock, f *Flight) error {
	c := r.clients[f.Party]
	now := r.opt.Now()
	for _, v := range f.Volumes() {
		var start, end time.Time
		if r.opt.Speed > 0 {
			start, end = clk.wall(v.FromS), clk.wall(v.ToS)
		} else {
			// As fast as possible has no fixed mapping: claim the day.
			start, end = now, now.Add(23*time.Hour)
		}
		if start.Before(now) {
			start = now
		}
		if !end.After(start.Add(time.Second)) {
			continue // already over
		}
		details, _ := json.Marshal(map[string]any{"flight": f.ID, "callsign": f.Callsign, "type": f.Type, "piece": v.Index})
		in := client.VolumeInput{
			Footprint: client.Circle(v.LatDeg, v.LonDeg, v.RadiusM),
			AltLowerM: v.AltLowerM, AltUpperM: v.AltUpperM,
			Start: start.UTC().Truncate(time.Second), End: end.UTC().Truncate(time.Second).Add(time.Second),
			Priority: v.Priority, State: "accepted", Details: details, Key: []client.KeyEntry{},
		}
		vol, err := r.createResolving(ctx, c, in, f, v)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.Stats.VolumeErrors.Add(1)
			r.logf("sim: %s: volume %d of %s: %v", f.Party, v.Index, f.ID, err)
			continue
		}
		r.Stats.VolumesDeclared.Add(1)
		r.mu.Lock()
		r.volFlight[vol.ID] = f.ID
		r.mu.Unlock()
		if _, err := c.SetVolumeState(ctx, vol.ID, "activated", vol.Version); err == nil {
			r.Stats.VolumesActive.Add(1)
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (r *Runner) createWithKey(ctx context.Context, c *client.Client, in client.VolumeInput) (client.Volume, error) {
	seen := map[string]bool{}
	for attempt := 0; ; attempt++ {
		v, err := c.CreateVolume(ctx, in)
		var p *client.Problem
		if err == nil || !errors.As(err, &p) || p.Status != 409 || len(p.Missing) == 0 || attempt == 8 {
			return v, err
		}
		r.Stats.KeyRetries.Add(1)
		for _, m := range p.Missing {
			k := m.ID + "@" + m.Version
			if !seen[k] {
				seen[k] = true
				in.Key = append(in.Key, client.KeyEntry{ID: m.ID, Version: m.Version})
			}
		}
	}
}

// follow reads one party's event stream, keeps the record of alerts, and
// schedules acknowledgments.
func (r *Runner) follow(ctx context.Context, party string, since time.Time) {
	c := r.clients[party]
	err := c.Events(ctx, 0, func(ev client.Event) error {
		if !ev.Time.IsZero() && ev.Time.Before(since.Add(-time.Minute)) {
			return nil // history from before this run
		}
		r.handle(ctx, party, ev)
		if r.opt.OnEvent != nil {
			r.opt.OnEvent(party, ev)
		}
		return nil
	})
	if err != nil {
		r.logf("sim: %s: event stream: %v", party, err)
	}
}

func (r *Runner) handle(ctx context.Context, party string, ev client.Event) {
	switch ev.Kind {
	case "alert_raised", "alert_updated", "alert_cleared":
		var a client.Alert
		if json.Unmarshal(ev.Data, &a) != nil || a.ID == "" {
			return
		}
		r.mu.Lock()
		rec := r.alerts[a.ID]
		if rec == nil {
			rec = &AlertRecord{ID: a.ID, Kind: a.Kind, Parties: map[string]bool{}, Levels: map[string]bool{}, Acked: map[string]bool{}}
			for _, ac := range a.Aircraft {
				rec.Aircraft = append(rec.Aircraft, ac.Aircraft)
			}
			sort.Strings(rec.Aircraft)
			r.alerts[a.ID] = rec
			r.Stats.AlertsSeen.Add(1)
		}
		rec.Parties[party] = true
		if a.Level != "" && ev.Kind != "alert_cleared" {
			rec.Levels[a.Level] = true
		}
		if ev.Kind == "alert_cleared" {
			rec.Cleared = true
		}
		r.mu.Unlock()
		r.pilot(party, ev.Kind, &a)
	case "volume_conflict":
		r.mu.Lock()
		if !r.conflicts[string(ev.Data)] {
			r.conflicts[string(ev.Data)] = true
			r.Stats.VolumeConflicts.Add(1)
		}
		r.mu.Unlock()
	case "message", "escalated":
		var m client.Message
		if json.Unmarshal(ev.Data, &m) != nil || m.ID == "" {
			return
		}
		r.mu.Lock()
		if m.Ref != nil && m.Ref.AlertID != "" {
			r.msgAlert[m.ID] = m.Ref.AlertID
		}
		if ev.Kind == "escalated" && !r.escalated[m.ID] {
			r.escalated[m.ID] = true
			r.Stats.Escalations.Add(1)
			if rec := r.alerts[r.msgAlert[m.ID]]; rec != nil {
				rec.Escalated = true
			}
		}
		r.mu.Unlock()
		// A proposal of the rules is acknowledged by the party's answer
		// (the service refuses a plain acknowledgment while it waits
		// for it); the simulator does not answer proposals.
		if m.From != party && slices.Contains(m.To, party) && !m.AckedBy(party) && m.Kind != rulesProposalKind {
			r.scheduleAck(ctx, party, m)
		}
	}
}

// rulesProposalKind is the kind of a proposal's hotline item
// (hotline.KindRulesProposal).
const rulesProposalKind = "rules_proposal"

// scheduleAck acknowledges m for party after the ack delay, unless the
// party deliberately ignores alerts of one of its sorties.
func (r *Runner) scheduleAck(ctx context.Context, party string, m client.Message) {
	key := party + "/" + m.ID
	r.mu.Lock()
	if r.acked[key] || r.closing {
		r.mu.Unlock()
		return
	}
	r.acked[key] = true
	r.acks.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.acks.Done()
		if err := client.Sleep(ctx, r.opt.AckDelay); err != nil {
			return
		}
		if r.ignores(ctx, party, m) {
			return
		}
		if _, err := r.clients[party].AckMessage(ctx, m.ID, "seen, "+party); err != nil {
			if ctx.Err() == nil {
				r.logf("sim: %s: ack %s: %v", party, m.ID, err)
			}
			return
		}
		r.Stats.Acks.Add(1)
		r.mu.Lock()
		if rec := r.alerts[r.msgAlert[m.ID]]; rec != nil {
			rec.Acked[party] = true
		}
		r.mu.Unlock()
	}()
}

// ignores reports whether party leaves m unacknowledged: an alert about one
// of the sorties it lists in no_ack.
func (r *Runner) ignores(ctx context.Context, party string, m client.Message) bool {
	if len(r.noAck[party]) == 0 || m.Ref == nil || m.Ref.AlertID == "" {
		return false
	}
	r.mu.Lock()
	rec := r.alerts[m.Ref.AlertID]
	var aircraft []string
	if rec != nil {
		aircraft = rec.Aircraft
	}
	r.mu.Unlock()
	if rec == nil {
		// The alert event has not arrived (or is no longer streamed): ask.
		alerts, err := r.clients[party].Alerts(ctx)
		if err != nil {
			return false
		}
		for _, a := range alerts {
			if a.ID == m.Ref.AlertID {
				for _, ac := range a.Aircraft {
					aircraft = append(aircraft, ac.Aircraft)
				}
			}
		}
	}
	for _, id := range aircraft {
		if f := r.plan.Flight(id); f != nil && r.noAck[party][f.Sortie] {
			return true
		}
	}
	return false
}
