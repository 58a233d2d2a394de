package alert

import (
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// Engine is the tactical picture the service drives: the detection engine
// and the alert lifecycle behind one mutex, so it is safe for concurrent
// use. Ingest, Expire and Tick return the alert transitions to publish, in
// the order they happened.
type Engine struct {
	mu     sync.Mutex
	det    *detect.Engine
	life   *Lifecycle
	events []detect.Event // reused between calls: the hot path allocates little
}

// NewEngine makes an engine for the rules with the default grid and
// hysteresis; conf may be nil (no conformance monitoring).
func NewEngine(r rules.Rules, conf detect.Conformance) *Engine {
	return NewEngineWith(r, DefaultHysteresis(r), detect.Grid{}, conf)
}

// NewEngineWith makes an engine with explicit hysteresis and index grid
// (zero values: the defaults).
func NewEngineWith(r rules.Rules, h Hysteresis, g detect.Grid, conf detect.Conformance) *Engine {
	det := detect.NewEngine(r, g, conf)
	det.SetLevelMargin(h.LevelMarginS)
	return &Engine{det: det, life: NewLifecycle(r, h)}
}

// DetectsAs reports whether an engine made for r (NewEngine) would judge
// every report exactly as e does: then e can go on under r as it is, its
// open alerts with it, and new rules that change something else (a
// witness, a deadline, a fleet bound) need not end and raise them again.
func (e *Engine) DetectsAs(r rules.Rules) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.h == DefaultHysteresis(r) && SameDetection(e.life.rules, r)
}

// Relabel makes r, which detects as e's rules (DetectsAs), e's rules from
// now on: the alerts it raises or updates name r's version. Those open
// keep the version they were last published under until their next
// transition.
func (e *Engine) Relabel(r rules.Rules) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.life.rules = r
}

// RulesVersion is the version of e's rules, which its alerts name.
func (e *Engine) RulesVersion() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.rules.Version
}

// SameDetection reports whether engines made for a and b take the same
// inputs from them: what NewEngineWith and what it builds read of the
// rules. The detection engine reads the separation table (ParamsFrom,
// NewTable: the classes and the entry of each pair, their detectors,
// lookaheads and levels, after FillTable, which builds the manned entry
// of older rules from the top-level separation, lookahead and levels),
// the stale time (the track table, the pairs' report gap) and whether
// aircraft of one party alert each other; its index of near aircraft
// reads each class's performance (nearCellsM); the lifecycle names a
// nonconforming alert after the first of the top-level levels. The
// top-level levels are compared whole, and the performance too: the
// service ranks an alert's level by them (rules.LevelRank) and bounds
// its resolutions by the performance.
func SameDetection(a, b rules.Rules) bool {
	return reflect.DeepEqual(detectionOf(a), detectionOf(b))
}

// detection is what of the rules an engine's judgement depends on
// (SameDetection).
type detection struct {
	Classes         []string
	Separation      []rules.Separation
	Performance     []rules.Performance
	Levels          []rules.Level
	StaleAfterS     float64
	SamePartyAlerts bool
}

func detectionOf(r rules.Rules) detection {
	r.FillTable()
	return detection{
		Classes:         r.Classes,
		Separation:      r.Separation,
		Performance:     r.Performance,
		Levels:          r.Levels,
		StaleAfterS:     r.StaleAfterS,
		SamePartyAlerts: r.SamePartyAlerts,
	}
}

// Ingest applies a batch of reports at time now. A batch with an invalid
// report is refused whole with a *detect.ReportError naming it, and changes
// nothing.
func (e *Engine) Ingest(reports []track.Report, now time.Time) ([]Transition, error) {
	_, _, trs, err := e.IngestAdmitted(reports, EveryAircraft, now)
	return trs, err
}

// EveryAircraft is the maxPerParty of IngestAdmitted that bounds no
// party's tracks.
const EveryAircraft = -1

// IngestAdmitted is Ingest of the reports that keep every party within
// maxPerParty live tracks, in one turn of the lock: the others, which
// would start a track beyond it, are left out and their indices returned
// (detect.Engine.Admit). maxPerParty EveryAircraft (below 0) admits
// every report; 0 admits the reports of live tracks only (a fleet of
// none agreed for a party).
func (e *Engine) IngestAdmitted(reports []track.Report, maxPerParty int, now time.Time) (admitted []track.Report, refused []int, trs []Transition, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	admitted = reports
	if maxPerParty >= 0 {
		if refused = e.det.Admit(reports, maxPerParty); len(refused) > 0 {
			admitted = make([]track.Report, 0, len(reports)-len(refused))
			next := 0
			for i := range reports {
				if next < len(refused) && refused[next] == i {
					next++
					continue
				}
				admitted = append(admitted, reports[i])
			}
		}
	}
	e.events, err = e.det.Ingest(e.events[:0], admitted, now)
	if err != nil {
		return nil, nil, nil, err
	}
	return admitted, refused, e.life.Apply(nil, e.events, now), nil
}

// Expire drops the tracks stale at now (clearing their alerts with reason
// stale) and clears the alerts whose hysteresis wait ended. The service
// calls it periodically, about once a second.
func (e *Engine) Expire(now time.Time) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = e.det.Expire(e.events[:0], now)
	return e.life.Apply(nil, e.events, now)
}

// Alerts returns the open alerts as last published, in id order.
func (e *Engine) Alerts() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Open()
}

// Alert returns the open alert of that id.
func (e *Engine) Alert(id string) (Alert, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Find(id)
}

// KeepSpent makes e, made to replace old (new rules that change
// detection), never raise an alert under an id old published cleared, nor
// under the id of one of spent (old's open alerts, ended as e replaces
// it), for as long as old would not have (Lifecycle.raiseID): an id old
// took from another replica (Rename) and cleared is derived again by e
// from the report it came from, when the relay brings it. Call it before
// e takes any report.
func (e *Engine) KeepSpent(old *Engine, spent []Alert, now time.Time) {
	old.mu.Lock()
	defer old.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.life.keepSpent(old.life, spent, now)
}

// Reopen is Lifecycle.Reopen under the engine's lock.
func (e *Engine) Reopen(a *Alert, now time.Time) (Alert, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Reopen(a, now)
}

// DropClearing is Lifecycle.DropClearing under the engine's lock.
func (e *Engine) DropClearing(a *Alert) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.DropClearing(a)
}

// NewsAgainst is Lifecycle.NewsAgainst under the engine's lock.
func (e *Engine) NewsAgainst(prev *Alert) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.NewsAgainst(prev)
}

// Rename is Lifecycle.Rename under the engine's lock.
func (e *Engine) Rename(a *Alert, to string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Rename(a, to)
}

// TracksSince reports whether the engine has a live track of every
// aircraft of a whose last report is at or after since, or after[its
// key] when later (nil: none): its picture of them is then at least as
// recent as one taken at those times.
func (e *Engine) TracksSince(a *Alert, since time.Time, after map[track.Key]time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range a.Aircraft {
		k := a.Aircraft[i].Key()
		if !e.trackedSince(k, laterOf(since, after[k])) {
			return false
		}
	}
	return true
}

// EndedAt returns a as cleared at now, for an alert whose end this engine
// did not find itself (one the store has open and this engine does not):
// resolved when it has a live track of every aircraft reported at or after
// since, or after[its key] when later (its picture of them is as recent,
// and it finds no alert), else stale, with each aircraft it has no such
// track of marked Stale.
func (e *Engine) EndedAt(a Alert, since time.Time, after map[track.Key]time.Time, now time.Time) Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	a.State, a.Time, a.Reason = StateCleared, now, ReasonResolved
	a.Aircraft = slices.Clone(a.Aircraft)
	for i := range a.Aircraft {
		k := a.Aircraft[i].Key()
		a.Aircraft[i].Stale = !e.trackedSince(k, laterOf(since, after[k]))
		if a.Aircraft[i].Stale {
			a.Reason = ReasonStale
		}
	}
	return a
}

// LastReports returns the time of the last report of each of the
// aircraft that the engine has a live track of.
func (e *Engine) LastReports(aircraft []track.Key) map[track.Key]time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[track.Key]time.Time, len(aircraft))
	for _, k := range aircraft {
		if s, ok := e.det.TrackOf(k); ok {
			out[k] = s.Time
		}
	}
	return out
}

// trackedSince reports whether the engine has a live track of k reported
// at or after since (e.mu held).
func (e *Engine) trackedSince(k track.Key, since time.Time) bool {
	s, ok := e.det.TrackOf(k)
	return ok && !s.Time.Before(since)
}

// laterOf returns the later of two times.
func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Conflicts returns the current conflict set, sorted by pair.
func (e *Engine) Conflicts() []detect.Conflict {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.Conflicts()
}

// Tracks returns the live tracks inside the box.
func (e *Engine) Tracks(b detect.BBox) []track.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.Tracks(b)
}

// Stats is a snapshot of the engine's counters.
type Stats struct {
	Tracks    int            `json:"tracks"`
	Conflicts int            `json:"conflicts"`
	Alerts    int            `json:"alerts"`
	Reports   track.Counters `json:"reports"`
}

// Stats returns the current counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{
		Tracks:    e.det.NumTracks(),
		Conflicts: e.det.NumConflicts(),
		Alerts:    len(e.life.conflicts) + len(e.life.nonconf),
		Reports:   e.det.Counters(),
	}
}

// FullCycle recomputes the whole conflict set from scratch through the
// spatial index (for recovery checks and the benchmark); the engine's own
// set is left as it is.
func (e *Engine) FullCycle() []detect.Conflict {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.FullCycle()
}

// FullCycleInto is FullCycle writing over dst, reusing its capacity
// (detect.Engine.FullCycleInto): for a caller that runs cycle after
// cycle.
func (e *Engine) FullCycleInto(dst []detect.Conflict) []detect.Conflict {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.FullCycleInto(dst)
}

// Params returns the detection engine's pair parameters: what BruteForce
// must be given to compare with FullCycle.
func (e *Engine) Params() detect.Params {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.Params()
}

// Grids returns the grid of each entry of the separation table.
func (e *Engine) Grids() []detect.Grid {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.Grids()
}

// States returns a copy of every live track.
func (e *Engine) States() []track.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.States()
}
