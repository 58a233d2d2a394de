package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/track"
)

// PositionReport is one validated report of a party's own aircraft.
type PositionReport struct {
	Aircraft string
	Callsign string
	Class    string
	Time     time.Time
	LatDeg   float64
	LonDeg   float64
	AltM     float64
	// AltSource is track.AltGeometric, track.AltBarometric or "".
	AltSource   string
	VelEastMps  float64
	VelNorthMps float64
	VelUpMps    float64
}

// ReportError names the report (index into the batch given to
// IngestPositions) that the engine refused; nothing of the batch was applied.
type ReportError struct {
	Index int
	Msg   string
}

func (e *ReportError) Error() string { return fmt.Sprintf("reports[%d].%s", e.Index, e.Msg) }

// tactical is the live tactical picture and the queue of its transitions
// waiting to be committed (commit.go). Transitions are queued under mu in
// the order the engine produced them and committed by whichever caller
// holds commitMu (group commit: one store transaction carries the
// transitions of the batches that arrived meanwhile, takeQueued).
type tactical struct {
	// eng is replaced (under mu) when the rules change; readers load it.
	eng atomic.Pointer[alert.Engine]

	mu      sync.Mutex // engine calls and the queue, in one order
	pending []queued
	// latest is, by alert, the resolution of its latest queued transition
	// (mu held): a newer transition of the alert supersedes it.
	latest map[string]*pendingResolution
	// held are the alerts open in the store that this replica's engine
	// did not have when it took the detection lease, and that it may yet
	// raise (mu held): see ReconcileDetection.
	held map[string]heldAlert
	// behind are the alerts open in the store that the engine took up at
	// the takeover (by id, or renamed to the store's), or raised while
	// held, from a picture of their aircraft older than the store's last
	// transition at the takeover (mu held): a
	// clear of one before its picture has caught up holds it instead
	// (takeHeld).
	behind map[string]heldAlert
	// heldOrBehind is len(held) + len(behind), stored under mu at each
	// change (noteHeld): the listings of open alerts and the resolutions
	// on demand read it without mu, which ingest holds through each
	// chunk's apply, and take mu only when there is something to read.
	heldOrBehind atomic.Int64
	// spent are the ids of the alerts the store had cleared at the last
	// takeover (mu held): see takeHeld.
	spent map[string]bool
	// spentUntil is when spent is let go (mu held).
	spentUntil time.Time
	// unled is what the engine produced that nobody commits, for a
	// takeover to record what the store has no trace of (late.go; mu
	// held).
	unled unledLog
	// delivered are the ids of the alerts this replica saw committed,
	// for unled to forget (its own lock).
	delivered deliveredAlerts

	commitMu sync.Mutex
	// posted is the alert level last posted to the hotline per open alert;
	// read and written only with commitMu held.
	posted map[string]int
	// reportTimesRecorded is what this replica last recorded of its
	// engine's report times in this tenure (recordReportTimes; commitMu
	// held); nil: nothing yet.
	reportTimesRecorded map[track.Key]time.Time
	// reportTimesWritten is the record as this replica last wrote it in
	// this tenure, merged with the last leader's (commitMu held); nil:
	// not yet, it is read from the store.
	reportTimesWritten map[track.Key]time.Time
	// failures counts the failed commit attempts in a row, and retryAt is
	// when the next may start (commitMu held).
	failures int
	retryAt  time.Time
	// inDoubt is the failed commit not known yet not to have committed
	// (written with commitMu and mu held; commit.go).
	inDoubt *inDoubt
	// instance and attempts make the tokens of commit attempts (commitMu
	// held; nextToken).
	instance string
	attempts uint64
}

// applyPosted records, after a commit, the hotline levels the transaction
// posted (-1: the alert cleared).
func (t *tactical) applyPosted(p map[string]int) {
	for id, lvl := range p {
		if lvl < 0 {
			delete(t.posted, id)
		} else {
			t.posted[id] = lvl
		}
	}
}

// conformance adapts the volume registry to the tactical engine's hook.
type conformance struct{ s *Service }

func (c conformance) Conforms(party string, p geo.LLA, t time.Time) (bool, bool) {
	return c.s.volumes().Conforms(party, p, t)
}

func (s *Service) newTactical(r rules.Rules) {
	s.tac = &tactical{posted: map[string]int{}, instance: s.process.id}
	s.tac.eng.Store(alert.NewEngine(r, conformance{s}))
	s.m.tracks = func() int { return s.tac.eng.Load().Stats().Tracks }
	s.m.alertCommit = s.tac.uncommitted
	s.m.alerts = func() map[string]int {
		out := map[string]int{}
		for _, a := range s.tac.eng.Load().Alerts() {
			out[a.Level]++
		}
		return out
	}
}

// IngestPositions feeds a batch of the party's reports to the tactical
// engine and commits the alert transitions they cause (events and audit
// records) before returning: one store transaction per batch, or fewer when
// batches arrive together. A signed batch (ctx carries its statement) is
// applied once its statement is committed (by CommitBatchStatement, or
// here). It returns how many reports were applied and the indices of those
// refused because they would start the track of an aircraft beyond the
// party's MaxAircraftFor live ones (the reports of its live aircraft
// are always applied).
func (s *Service) IngestPositions(ctx context.Context, p party.Principal, reports []PositionReport) (int, []int, error) {
	if p.Operator {
		return 0, nil, ErrForbidden
	}
	batch := make([]track.Report, len(reports))
	for i, r := range reports {
		batch[i] = track.Report{
			Party: p.Party, Aircraft: r.Aircraft, Callsign: r.Callsign, Class: r.Class,
			Pos: geo.LLA{LatDeg: r.LatDeg, LonDeg: r.LonDeg, AltM: r.AltM}, AltSource: r.AltSource,
			VelEastMps: r.VelEastMps, VelNorthMps: r.VelNorthMps, VelUpMps: r.VelUpMps,
			Time: r.Time,
		}
	}
	// A signed batch is applied only once its nonce and statement are
	// committed: a replay is refused and changes nothing.
	if err := s.commitBatchStatement(ctx); err != nil {
		return 0, nil, err
	}
	// The engine is taken a chunk at a time, so that a small batch (one
	// report that creates a conflict) does not wait behind whole large ones.
	var waiters []*commitWaiter
	var refused []int
	maxAircraft := s.MaxAircraftFor(p.Party)
	for lo := 0; lo < len(batch); lo += ingestChunk {
		hi := min(lo+ingestChunk, len(batch))
		applied, over, w, err := s.applyChunk(batch[lo:hi], true, maxAircraft)
		if err != nil {
			// The edge checks every report with the engine's rule, so this
			// is not expected. The chunks before were applied: commit what
			// they caused.
			for _, w := range waiters {
				_ = s.commitTransitions(ctx, w)
			}
			var re *detect.ReportError
			if errors.As(err, &re) {
				return lo - len(refused), refused, &ReportError{Index: lo + indexBeside(re.Index, over), Msg: re.Err.Error()}
			}
			return lo - len(refused), refused, err
		}
		for _, i := range over {
			refused = append(refused, lo+i)
		}
		if w != nil {
			waiters = append(waiters, w)
		}
		s.disclosePositions(applied)
		s.publishPositions(applied)
		s.m.ReportsAccepted.Add(float64(len(applied)))
	}
	for _, w := range waiters {
		if err := s.commitTransitions(ctx, w); err != nil {
			return len(batch) - len(refused), refused, err
		}
	}
	return len(batch) - len(refused), refused, nil
}

// indexBeside maps the index i into a slice that left out the (increasing)
// indices skipped onto the index into the whole.
func indexBeside(i int, skipped []int) int {
	for _, j := range skipped {
		if j > i {
			break
		}
		i++
	}
	return i
}

// DefaultMaxAircraftPerParty is the default of Config.MaxAircraftPerParty:
// twice the largest fleet of a party in the benchmarks (a city of 100,000
// drones over four parties), and at about 3 KB a track, 150 MB of memory
// at most for one party.
const DefaultMaxAircraftPerParty = 50_000

// MaxAircraftPerParty is the server's bound on the live tracks of a party
// (Config.MaxAircraftPerParty).
func (s *Service) MaxAircraftPerParty() int { return s.cfg.MaxAircraftPerParty }

// MaxAircraftFor is the number of live tracks party may have: the lower of
// the fleet the rules in force agree for it (rules.Rules.MaxAircraftFor)
// and the server's bound. Lowered below what the party flies, it starts
// no new track of the party while the live ones report on: it is taken at
// intake, and never holds back an alert of an aircraft already tracked.
func (s *Service) MaxAircraftFor(party string) int {
	rl := s.Rules()
	return min(s.cfg.MaxAircraftPerParty, rl.MaxAircraftFor(party))
}

// ingestChunk is how many reports go to the engine per turn of its lock.
const ingestChunk = 250

// applyChunk feeds one chunk of reports to the engine and queues the
// transitions it causes, in one turn of the engine's lock; with wait, the
// waiter (nil when nothing was queued) is released once they are
// committed. The reports that would start a track of a party beyond
// maxAircraft live ones (alert.EveryAircraft: no bound; 0 is a fleet of
// none) are left out: it returns the reports applied and the indices of
// those left out.
func (s *Service) applyChunk(reports []track.Report, wait bool, maxAircraft int) ([]track.Report, []int, *commitWaiter, error) {
	t := s.tac
	t.mu.Lock()
	defer t.mu.Unlock()
	applied, refused, trs, err := t.eng.Load().IngestAdmitted(reports, maxAircraft, s.now())
	if err != nil {
		return nil, nil, nil, err
	}
	return applied, refused, s.enqueueLocked(trs, wait), nil
}

// alertEventKind maps a transition's state onto its event kind.
func alertEventKind(state string) string { return "alert_" + state }

// persistTransitions appends the events and audit records of transitions,
// and posts the new alerts to the hotline. A transition with a resolution
// (by alert id in resolutions) is one event per party of its aircraft,
// each with that party's part of the resolution. It returns the first
// event appended (its id set), by which a commit in doubt whose token was
// deleted is recognised (settle).
func (s *Service) persistTransitions(tx store.Tx, trs []alert.Transition, resolutions map[string]*Resolution, posted map[string]int) (first store.Event, err error) {
	rl := s.Rules()
	for i := range trs {
		a := &trs[i]
		now := a.Time
		if now.IsZero() || a.RecordedLate {
			// An alert recorded late keeps its times in its content;
			// its events are of now, in the order of the log.
			now = s.now()
		}
		kind := alertEventKind(a.State)
		e, last, err := appendAlertEvents(tx, a, kind, now, resolutions[a.ID])
		if err != nil {
			return store.Event{}, err
		}
		if i == 0 {
			first = e
		}
		if err := recordAlert(tx, a, kind, last); err != nil {
			return store.Event{}, err
		}
		readers := audit.For(a.Parties()...)
		if a.ForEveryone() {
			readers = audit.Everyone
		}
		if err := s.audit(tx, "deconflict", kind, readers, a); err != nil {
			return store.Event{}, err
		}
		if a.RecordedLate {
			// Over when it is recorded: no item asks to acknowledge
			// it (late.go).
			continue
		}
		if _, seen := posted[a.ID]; !seen {
			if lvl, ok := s.tac.posted[a.ID]; ok {
				posted[a.ID] = lvl
			}
		}
		if err := s.alertItem(tx, a, rl, posted); err != nil {
			return store.Event{}, err
		}
	}
	return first, nil
}

// alertEvent is the data of an alert event: the alert, and for a raised
// or updated conflict the recipient's part of its resolution.
type alertEvent struct {
	*alert.Alert
	Resolution *Resolution `json:"resolution,omitempty"`
}

// appendAlertEvents appends the event of one transition: for everyone
// concerned at once, or with a resolution one per party. It returns the
// first and the last event appended, their ids set.
func appendAlertEvents(tx store.Tx, a *alert.Alert, kind string, now time.Time, res *Resolution) (first, last store.Event, err error) {
	if res == nil {
		audience := everyone
		if !a.ForEveryone() {
			audience = a.Parties()
		}
		body, err := json.Marshal(a)
		if err != nil {
			return store.Event{}, store.Event{}, err
		}
		e := store.Event{Time: now.UTC(), Kind: kind, Audience: audience, Body: body}
		e.ID, err = tx.AppendEvent(e)
		return e, e, err
	}
	for i, p := range a.Parties() {
		part := res.forParty(p)
		body, err := json.Marshal(alertEvent{Alert: a, Resolution: &part})
		if err != nil {
			return store.Event{}, store.Event{}, err
		}
		e := store.Event{Time: now.UTC(), Kind: kind, Audience: []string{p}, Body: body}
		if e.ID, err = tx.AppendEvent(e); err != nil {
			return store.Event{}, store.Event{}, err
		}
		if i == 0 {
			first = e
		}
		last = e
	}
	return first, last, nil
}

// resolutions collects, by alert id, the resolutions of the queued
// transitions that have one, waiting for each still being computed at
// most until resolutionWait after its transition was queued: an alert is
// never held back for long by its resolution (one not ready is left out
// of its events, and asked for on demand). An alert gets the resolution
// of its latest transition: one superseded by a newer transition of the
// alert is taken only if it is ready, never waited for (the newer one, in
// this commit or a later one, carries its own).
func (s *Service) resolutions(qs []queued) map[string]*Resolution {
	var out map[string]*Resolution
	// Latest first: an alert's earlier transitions in this commit are
	// passed over, so that its events never carry a resolution of older
	// positions while the newest is not ready.
	seen := map[string]bool{}
	for i := len(qs) - 1; i >= 0; i-- {
		q := qs[i]
		if seen[q.tr.ID] {
			continue
		}
		seen[q.tr.ID] = true
		if q.res == nil { // cleared, or not a conflict: nothing to resolve
			continue
		}
		var r *Resolution
		if q.res.superseded.Load() {
			select {
			case <-q.res.done:
				r = q.res.res
			default:
			}
		} else {
			var first bool
			// Late once, however often the commit is tried; not late
			// when a newer transition of the alert took its place
			// meanwhile (that one carries a resolution of its own).
			if r, first = q.res.wait(); r == nil && first && !q.res.superseded.Load() {
				s.log.Warn("the resolution of an alert was not ready in time for its events", "alert", q.tr.ID)
				s.m.ResolutionsLate.Inc()
			}
		}
		if r != nil {
			if out == nil {
				out = map[string]*Resolution{}
			}
			out[q.tr.ID] = r
		}
	}
	return out
}

// expireTracks is the periodic job that drops stale tracks and clears
// alerts whose hysteresis wait is over. It queues the transitions and
// tries their commit once (commitQueuedJob retries a failure).
func (s *Service) expireTracks(ctx context.Context, now time.Time) error {
	t := s.tac
	t.mu.Lock()
	s.enqueueLocked(t.eng.Load().Expire(now), false)
	s.clearHeldLocked(now)
	s.forgetStoredLocked(now)
	t.mu.Unlock()
	if pic := s.picture(); pic != nil {
		pic.Expire(now)
	}
	return s.commitQueuedJob(ctx, now)
}

// Alerts returns the open tactical alerts concerning p: the engine's,
// and those the store has open that it holds since a takeover (a start
// on the embedded store), where this replica leads detection; otherwise
// the store's, named as the leader named them (alertStory).
func (s *Service) Alerts(p party.Principal) []alert.Alert {
	var all []alert.Alert
	if s.leadsDetection() {
		all = s.tac.eng.Load().Alerts()
		s.asTheStoreHasBehind(all)
		if held := s.heldAlerts(); len(held) > 0 {
			all = append(all, held...)
			slices.SortFunc(all, func(x, y alert.Alert) int { return strings.Compare(x.ID, y.ID) })
		}
	} else {
		all = s.story.alerts()
	}
	out := all[:0]
	for _, a := range all {
		if p.Operator || a.ForEveryone() || slices.Contains(a.Parties(), p.Party) {
			out = append(out, a)
		}
	}
	return out
}

// heldAlerts returns the store's last transitions of the alerts held
// since the takeover (ReconcileDetection).
func (s *Service) heldAlerts() []alert.Alert {
	t := s.tac
	if t.heldOrBehind.Load() == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]alert.Alert, 0, len(t.held))
	for _, h := range t.held {
		out = append(out, h.last)
	}
	return out
}

// asTheStoreHasBehind replaces, in the engine's alerts all, those it
// took up from a picture older than the store's (tactical.behind) with
// what the store has of them: what the parties were told, which the
// engine's older picture does not overrule before it has caught up.
func (s *Service) asTheStoreHasBehind(all []alert.Alert) {
	t := s.tac
	if t.heldOrBehind.Load() == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.behind) == 0 {
		return
	}
	for i := range all {
		if b, ok := t.behind[all[i].ID]; ok {
			all[i] = b.last
		}
	}
}

// openAlert returns the open alert of that id, as Alerts answers it.
func (s *Service) openAlert(id string) (alert.Alert, bool) {
	if !s.leadsDetection() {
		return s.story.alert(id)
	}
	if a, ok := s.tac.eng.Load().Alert(id); ok {
		one := []alert.Alert{a}
		s.asTheStoreHasBehind(one)
		return one[0], true
	}
	t := s.tac
	if t.heldOrBehind.Load() == 0 {
		return alert.Alert{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.held[id]
	return h.last, ok
}

// retuneTactical replaces the tactical engine after a rules change (the
// engine is built for one separation table): the live tracks are fed to a
// new engine, the old engine's open alerts (and those held since a
// takeover) are cleared with reason rules_changed (clearedByRules: a start
// or a takeover ends so the alerts the store has open under rules that
// detect otherwise, endJudgedOtherwise), and the new engine's
// alerts raised, all committed
// together. Tracks of a class the new rules no longer know are dropped
// (their aircraft's next reports are refused naming the class).
//
// New rules that leave every input of detection as it was
// (alert.Engine.DetectsAs: a witness, a deadline, a fleet bound, a
// disclosure distance changed) keep the engine and its open alerts, held
// ones included: the same ids go on, nothing is cleared or raised, and no
// party is asked to acknowledge an alert again. Ending and raising them
// anew would tell the parties of a change that concerns none of them,
// each raise a hotline item to acknowledge, at every such change. The
// engine's alerts name r's version from then on (alert.Engine.Relabel).
func (s *Service) retuneTactical(ctx context.Context, r rules.Rules) error {
	t := s.tac
	t.mu.Lock()
	now := s.now()
	states := t.eng.Load().Tracks(detect.World)
	if t.eng.Load().DetectsAs(r) {
		// The alerts it raises or updates from now on name r's version.
		t.eng.Load().Relabel(r)
		// Need to know may have changed: the picture follows the rules.
		// The held alerts are open, and disclose their aircraft, too.
		open := t.eng.Load().Alerts()
		for _, id := range slices.Sorted(maps.Keys(t.held)) {
			open = append(open, t.held[id].last)
		}
		s.rebuildPicture(r, states, open, now)
		t.mu.Unlock()
		s.log.Info("new rules leave detection as it was: the open alerts go on under their ids", "version", r.Version, "alerts", len(open))
		return nil
	}
	old := t.eng.Load().Alerts()
	// The alerts held since a takeover are open too: ended with the rest,
	// not continued under the new rules by the raise that would take
	// them up (takeHeld).
	var held []alert.Alert
	for _, id := range slices.Sorted(maps.Keys(t.held)) {
		held = append(held, t.held[id].last)
	}
	old = append(old, held...)
	t.held, t.behind = nil, nil
	t.noteHeld()
	eng := alert.NewEngine(r, conformance{s})
	// The ids the old engine cleared, and those it ends now, stay spent:
	// one it took from another replica at a takeover (Rename) is derived
	// again by the new engine from the report it came from, when the
	// relay brings it.
	eng.KeepSpent(t.eng.Load(), old, now)
	reports := make([]track.Report, 0, len(states))
	for i := range states {
		if r.HasClass(states[i].Class) {
			reports = append(reports, states[i].Report)
		}
	}
	raised, err := eng.Ingest(reports, now)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	// The new engine derives an alert's id from the reports that show it:
	// an alert whose aircraft have not reported since it was raised is
	// found again under the id it is cleared under here. It is reissued:
	// the parties are never told that an id that ended is open again.
	spent := make(map[string]bool, len(old))
	for _, a := range old {
		spent[a.ID] = true
	}
	for i := range raised {
		if spent[raised[i].ID] {
			if reissued, ok := eng.Reopen(&raised[i], now); ok {
				raised[i] = reissued
			}
		}
	}
	if len(held) > 0 {
		// A held alert's reports, when they come, would raise it in the
		// new engine under the id it is cleared under here (derived from
		// them): that id is spent, as those the store had cleared at the
		// takeover (takeHeld).
		t.spent = maps.Clone(t.spent)
		if t.spent == nil {
			t.spent = map[string]bool{}
		}
		for _, a := range held {
			t.spent[a.ID] = true
		}
		t.spentUntil = later(t.spentUntil, now.Add(2*r.StaleAfter()))
	}
	trs := make([]alert.Transition, 0, len(old)+len(raised))
	for _, a := range old {
		trs = append(trs, clearedByRules(a, now))
	}
	trs = append(trs, raised...)
	t.eng.Store(eng)
	s.rebuildPicture(r, states, raised, now)
	w := s.enqueueLocked(trs, true)
	t.mu.Unlock()
	return s.commitTransitions(ctx, w)
}
