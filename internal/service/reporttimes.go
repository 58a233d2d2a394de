package service

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/track"
)

// A takeover holds an alert the store has open, rather than clearing it,
// while the new leader's picture of its aircraft is older than the old
// leader's (ReconcileDetection): cleared on the older picture, the same
// conflict would be raised again under a new id when the relay brings the
// reports the old leader had, and the parties would read an end that never
// was. The store's last transition of an alert tells how recent the old
// leader's picture was when it last changed the alert, not since: a report
// that changed nothing published (the conflict found again, with nothing
// new to tell) commits nothing. So the leader records, at each tick and at
// its shutdown, the time of the last report of each aircraft of the alerts
// it has open as its engine has them (reportTimesMeta), and a takeover
// holds an alert until its picture of each aircraft is as recent as the
// later of the store's transition and that record.
//
// What the leader saw after its last record and before it stopped leading
// (a tick at most, when it died) is not known: the relay has usually
// brought those reports to the new leader by the time the lease has lapsed.

// reportTimesMeta is the meta key of the leader's record of its report
// times.
const reportTimesMeta = "alert/report-times"

// reportTime is one entry of the record: an aircraft and the time of its
// last report as the leader's engine had it.
type reportTime struct {
	Party    string    `json:"party"`
	Aircraft string    `json:"aircraft"`
	Time     time.Time `json:"time"`
}

// errReportTimesUnreadable is a record in the store that cannot be decoded.
// Only this program writes it (a bug wrote it, or a hand on the store): it
// is taken as none, as a takeover judged before it was kept, and the
// log says so, since a takeover then judges from the store's transitions
// alone.
var errReportTimesUnreadable = errors.New("service: the record of the leader's report times cannot be read; taken as none")

// readReportTimes reads the record; none is no error, one that cannot be
// decoded is errReportTimesUnreadable.
func readReportTimes(tx store.Meta) (map[track.Key]time.Time, error) {
	raw, err := tx.GetMeta(reportTimesMeta)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs []reportTime
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("%w: %v", errReportTimesUnreadable, err)
	}
	out := make(map[track.Key]time.Time, len(rs))
	for _, r := range rs {
		out[track.Key{Party: r.Party, Aircraft: r.Aircraft}] = r.Time
	}
	return out, nil
}

// recordReportTimes is the periodic job (and the shutdown's last step) of
// the leader that records the time of the last report of each aircraft of
// the alerts it has open, its engine's and those it holds for the store.
// An aircraft's time recorded before (by an earlier leader, whose picture
// may have been ahead of this engine's) is kept when later, as long as an
// alert of it is open here; the others are let go. Nothing is written
// while the engine's times are those last recorded.
//
// In a city of drones the record holds some ten thousand aircraft and
// changes at every tick: what it is made of is gathered before the
// commit's lock is taken, and what this tenure wrote last is kept
// (tactical.reportTimesWritten) rather than read back, so that the lock is
// held only for the write.
func (s *Service) recordReportTimes(ctx context.Context, _ time.Time) error {
	t := s.tac
	if !s.leadsDetection() {
		// A follower records nothing (checked again below, under the
		// commit's lock): what it gathered would be thrown away at
		// every tick. What it wrote when it led is forgotten at its
		// next takeover (ReconcileDetection).
		return nil
	}
	eng := t.eng.Load()
	keys := map[track.Key]bool{}
	for _, a := range eng.Alerts() {
		for i := range a.Aircraft {
			keys[a.Aircraft[i].Key()] = true
		}
	}
	t.mu.Lock()
	for _, h := range t.held {
		for i := range h.last.Aircraft {
			keys[h.last.Aircraft[i].Key()] = true
		}
	}
	t.mu.Unlock()
	aircraft := slices.SortedFunc(maps.Keys(keys), compareKeys)
	own := eng.LastReports(aircraft)

	// The fence's tenure does not change while commitMu is held
	// (detectionFence).
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	fence, leads := s.detectionFence()
	if !leads {
		t.reportTimesRecorded, t.reportTimesWritten = nil, nil
		return nil
	}
	if t.reportTimesRecorded != nil && maps.EqualFunc(own, t.reportTimesRecorded, time.Time.Equal) {
		return nil
	}
	var written map[track.Key]time.Time
	err := s.st.Update(ctx, func(tx store.Tx) error {
		if fence != nil {
			if err := fence(tx); err != nil {
				return err
			}
		}
		before := t.reportTimesWritten
		if before == nil {
			// The first record of this tenure: merged with the last
			// leader's.
			var err error
			before, err = readReportTimes(tx)
			if errors.Is(err, errReportTimesUnreadable) {
				s.log.Warn("recording the report times of the alerts' aircraft: the last record is overwritten", "err", err)
				before, err = nil, nil
			}
			if err != nil {
				return err
			}
		}
		written = make(map[track.Key]time.Time, len(aircraft))
		rs := make([]reportTime, 0, len(aircraft))
		for _, k := range aircraft {
			at := later(own[k], before[k])
			if !at.IsZero() {
				written[k] = at
				rs = append(rs, reportTime{Party: k.Party, Aircraft: k.Aircraft, Time: at.UTC()})
			}
		}
		if len(rs) == 0 {
			return tx.DeleteMeta(reportTimesMeta)
		}
		raw, err := json.Marshal(rs)
		if err != nil {
			return err
		}
		return tx.PutMeta(reportTimesMeta, raw)
	})
	if errors.Is(err, ErrNotLeading) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("service: recording the report times of the alerts' aircraft: %w", err)
	}
	t.reportTimesRecorded, t.reportTimesWritten = own, written
	return nil
}

// compareKeys orders aircraft by party, then name.
func compareKeys(a, b track.Key) int {
	return cmp.Or(strings.Compare(a.Party, b.Party), strings.Compare(a.Aircraft, b.Aircraft))
}
