package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
)

// The hotline is between parties: the operator neither sends nor reads
// messages through it (it reads them in the audit export).
var errOperatorHotline = fmt.Errorf("%w: the operator has no hotline; use a party's token", ErrForbidden)

// PostMessage sends a hotline message from the caller.
func (s *Service) PostMessage(ctx context.Context, p party.Principal, in hotline.NewMessage) (hotline.Message, error) {
	if p.Operator {
		return hotline.Message{}, errOperatorHotline
	}
	var m hotline.Message
	err := s.writeAnswer(ctx, func(tx store.Tx) error {
		var err error
		m, _, err = hotline.Post(tx, s.alog, s.Rules(), p.Party, in, s.now())
		return err
	}, nil, func() any { return m })
	return m, err
}

// AckMessage records the caller's acknowledgment of message id
// (idempotent: a second acknowledgment changes nothing). The item of a
// proposal of the rules the caller has still to answer is acknowledged by
// the answer only (ErrAnswerRequired).
func (s *Service) AckMessage(ctx context.Context, p party.Principal, id, reply string) (hotline.Message, error) {
	if p.Operator {
		return hotline.Message{}, errOperatorHotline
	}
	var m hotline.Message
	err := s.write(ctx, func(tx store.Tx) error {
		cur, err := hotline.Get(tx, p.Party, id)
		if err == nil {
			err = checkRulesItemAck(tx, p.Party, cur)
		}
		if err != nil && !errors.Is(err, hotline.ErrNotFound) {
			return err
		}
		m, _, err = hotline.Ack(tx, s.alog, id, p.Party, reply, s.now())
		return err
	})
	return m, err
}

// ListMessages lists the messages the caller sent or received.
func (s *Service) ListMessages(ctx context.Context, p party.Principal, thread string, since time.Time, limit int) ([]hotline.Message, error) {
	if p.Operator {
		return nil, errOperatorHotline
	}
	var out []hotline.Message
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = hotline.List(tx, p.Party, thread, since, limit, s.passOverMessage)
		return err
	})
	return out, err
}

// escalateBatch is how many items one transaction of the escalation job
// escalates.
const escalateBatch = 1000

// escalate is the periodic job that escalates hotline items whose deadline
// passed without every acknowledgment: every one due, a batch per
// transaction, so that none waits for a later tick. It first brings back
// the items whose deadline a clock that was ahead set too far ahead
// (hotline.Reschedule), so that a step of the clock forward and back does
// not stop their escalation until the clock catches up.
func (s *Service) escalate(ctx context.Context, now time.Time) error {
	for {
		var rescheduled, escalated int
		err := s.write(ctx, func(tx store.Tx) error {
			rl, err := s.storedRulesIn(tx)
			if err != nil {
				return err
			}
			// The clock as the transaction runs, not as the job began:
			// the job waited for the writers' lock (another replica's
			// commit) and ran its batches meanwhile, and the items
			// posted since are due further ahead of its time than the
			// rules set any, with no clock step.
			back, _, err := hotline.Reschedule(tx, s.alog, rl, latest(now, s.now()), escalateBatch, s.passOverMessage)
			if err != nil {
				return err
			}
			ms, _, err := hotline.Escalate(tx, s.alog, rl, now, escalateBatch, s.passOverMessage)
			rescheduled, escalated = len(back), len(ms)
			return err
		})
		if err != nil {
			return err
		}
		s.m.Escalations.Add(float64(escalated))
		if rescheduled < escalateBatch && escalated < escalateBatch {
			return nil
		}
	}
}

// latest is the later of a and b.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// storedRulesIn is the rules in force as tx reads them: the process's own,
// unless the store holds a newer version (an activation committed by
// another replica, which this one adopts at a later tick; the escalation
// job runs before it catches up). The escalation job takes its deadlines
// from them: a replica behind new rules that lengthen the deadlines took
// the items posted under them, legitimately further ahead than the old
// rules set any, for the mark of a clock step and brought them back.
func (s *Service) storedRulesIn(tx store.Tx) (rules.Rules, error) {
	rl := s.Rules()
	rec, err := tx.LatestRules()
	if errors.Is(err, store.ErrNotFound) {
		return rl, nil
	}
	if err != nil {
		return rules.Rules{}, err
	}
	if rec.Version <= rl.Version {
		return rl, nil
	}
	agreed, err := decodeRules(rec)
	if err != nil {
		return rules.Rules{}, err
	}
	inUse, _ := agreed.InUse()
	return inUse, nil
}

// volumeConflictItems raises the hotline items of the conflicts a volume
// write was accepted with, for both owners to acknowledge: one per other
// party, naming each of its volumes in conflict, and none to a party
// still to acknowledge an item of the same conflicts
// (hotline.PostVolumeConflicts). A write in conflict with more volumes
// than hotline.MaxVolumeConflictsPerWrite is refused
// (*hotline.TooManyConflictsError), and its transaction writes nothing.
func (s *Service) volumeConflictItems(tx store.Tx, res volume.Result, rl rules.Rules, now time.Time) error {
	if len(res.Conflicts) == 0 {
		return nil
	}
	conflicts := make([]hotline.SubjectVolume, len(res.Conflicts))
	for i := range res.Conflicts {
		conflicts[i] = subjectVolume(&res.Conflicts[i])
	}
	_, _, err := hotline.PostVolumeConflicts(tx, s.alog, rl, subjectVolume(&res.Volume), conflicts, now)
	return err
}

// subjectVolume is what a volume conflict's item says of a volume for
// people: whose, its band and its window, as the reduced volume shows them.
func subjectVolume(v *volume.Volume) hotline.SubjectVolume {
	return hotline.SubjectVolume{ID: v.ID, Party: v.Party, Version: v.Version,
		AltLowerM: v.AltLowerM, AltUpperM: v.AltUpperM, Start: v.Start.UTC(), End: v.End.UTC()}
}

// alertSubject names an alert's aircraft for people, as the alert itself
// shows them to the item's recipients.
func alertSubject(a *alert.Transition) *hotline.Subject {
	sub := &hotline.Subject{}
	for _, ac := range a.Aircraft {
		sub.Aircraft = append(sub.Aircraft, hotline.SubjectAircraft{Party: ac.Party, Aircraft: ac.Aircraft, Callsign: ac.Callsign})
	}
	return sub
}

// alertItem raises the hotline item of a tactical alert: when it is raised,
// and again when it goes up a level, so that the new level is acknowledged
// too. posted holds the level last posted per open alert; the caller
// applies it only once the transaction has committed. The item is posted
// at the server's time, not the alert's (the time of the reports, which a
// party may have timed up to a minute behind or seconds ahead): its
// deadline is counted from when the recipients are told, and its creation
// time keeps the order of the messages.
func (s *Service) alertItem(tx store.Tx, a *alert.Transition, rl rules.Rules, posted map[string]int) error {
	level := rl.LevelRank(a.Level)
	prev, open := posted[a.ID]
	switch {
	case a.State == alert.StateCleared:
		posted[a.ID] = -1
		return nil
	case a.State == alert.StateRaised, !open:
	case level > prev:
	default:
		return nil
	}
	posted[a.ID] = level
	to := a.Parties()
	if a.ForEveryone() {
		var err error
		if to, err = airspaceParties(tx); err != nil {
			return err
		}
	}
	it := hotline.SystemItem{Kind: hotline.KindAlert, To: to, Text: alertText(a), Ref: hotline.Ref{AlertID: a.ID}, Level: a.Level, Subject: alertSubject(a)}
	_, _, err := hotline.PostSystem(tx, s.alog, rl, it, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// airspaceParties lists the parties that fly (not the operator, not
// revoked): the recipients of an alert that concerns everyone.
func airspaceParties(tx store.Tx) ([]string, error) {
	ps, err := tx.ListParties()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ps {
		if !p.Operator && !p.Disabled {
			out = append(out, p.Name)
		}
	}
	return out, nil
}

// alertText is the text of an alert's hotline item. The aircraft ids and
// callsigns were checked at the edge (track.Report.Validate), and are
// escaped here all the same: the commit of alert transitions must never
// fail for what a party sent, because it carries other parties' alerts.
func alertText(a *alert.Transition) string {
	if a.Kind == alert.KindNonconforming && len(a.Aircraft) > 0 {
		ac := a.Aircraft[0]
		return fmt.Sprintf("%s alert: aircraft %s (%s) of %s is outside its party's active volumes",
			a.Level, printable.Escape(ac.Aircraft), printable.Escape(ac.Callsign), ac.Party)
	}
	if len(a.Aircraft) == 2 {
		x, y := a.Aircraft[0], a.Aircraft[1]
		return fmt.Sprintf("%s alert: %s (%s) of %s and %s (%s) of %s lose separation in %.0f s (closest %.0f m horizontally, %.0f m vertically in %.0f s)",
			a.Level, printable.Escape(x.Aircraft), printable.Escape(x.Callsign), x.Party,
			printable.Escape(y.Aircraft), printable.Escape(y.Callsign), y.Party, a.TInS, a.DHCPAM, a.DVCPAM, a.TCPAS)
	}
	return a.Level + " alert " + a.ID
}
