package service

// This file holds the rules by agreement (package rules, proposal.go): the
// operator proposes, every party of the airspace answers, and a proposal
// that every party accepted becomes the rules in force, in the transaction
// of the last acceptance.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
)

// Errors of the rules by agreement, for the API to map.
var (
	// ErrProposalClosed: the proposal is no longer open, or the party's
	// answer stands (it accepted already).
	ErrProposalClosed = errors.New("service: the proposal is closed or already answered")
	// ErrAnswerRequired: a plain acknowledgment of the hotline item of a
	// proposal that still waits for the party's answer; the answer
	// (accept or reject) acknowledges it.
	ErrAnswerRequired = errors.New("service: this item is acknowledged by answering the proposal")
)

// MaxOpenProposals bounds the proposals of the rules open at once: each
// is a hotline item to every party that escalates until the party
// answers it, so that without a bound an operator proposing without end
// would bury every party's alerts under them.
const MaxOpenProposals = 4

// TooManyProposalsError refuses a proposal while MaxOpenProposals are
// open: one of them must close first (answered, or superseded).
type TooManyProposalsError struct {
	Open  []int64 // the versions open, in order
	Limit int
}

func (e *TooManyProposalsError) Error() string {
	vs := make([]string, len(e.Open))
	for i, v := range e.Open {
		vs[i] = fmt.Sprint(v)
	}
	return fmt.Sprintf("%d proposals of the rules are open (versions %s), at most %d at once: each asks every party for an answer; wait for one to close (every party's answer, a rejection, or another coming into force)",
		len(e.Open), strings.Join(vs, ", "), e.Limit)
}

// openProposals returns the versions of the proposals still open, as
// settled against asked and the version in force (a stored open one that
// a revocation would close is not counted).
func openProposals(tx store.Rules, asked []string, inForce int64, now time.Time) ([]int64, error) {
	recs, err := tx.RulesProposals(rules.ProposalOpen)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, rec := range recs {
		p, err := decodeProposal(rec)
		if err != nil {
			return nil, err
		}
		if p.Settle(asked, inForce, now); p.State == rules.ProposalOpen {
			out = append(out, p.Version)
		}
	}
	return out, nil
}

// inForce reads the rules in force from the store.
func inForce(tx store.Rules) (rules.Rules, error) {
	rec, err := tx.LatestRules()
	if err != nil {
		return rules.Rules{}, err
	}
	return decodeRules(rec)
}

// Replicas of two versions of the program may share one store for a
// while (an upgrade replaces them one by one), and a new version may add
// a field to the rules without a migration of the store's schema, which
// alone fences the older replicas (fence.go). Read by the older version,
// such rules lost the field without a word: it ran detection, volume
// checks and deadlines under rules no party agreed to (a separation
// table, a fleet, a performance entry left out), and when it settled a
// proposal written by the newer one it stored it again without the
// field, so that the rules the parties accepted never came into force.
// So every stored version of the rules and every proposal is read
// strictly: a field this program does not know refuses it
// (*NewerRulesError), and the program keeps the rules it runs with, writes
// no volume and answers no proposal until it is replaced by the newer
// version. The other way round, a field of the rules is never removed
// (no json-tagged field ever was): the versions stored before would no
// longer be read; keep one that is no longer used, ignored.

// NewerRulesError: a stored version of the rules (or a proposal of them)
// holds a field this program does not know, written by a newer version of
// deconflict.
type NewerRulesError struct {
	// What is "rules" or "rules proposal"; Version its version.
	What    string
	Version int64
	// Field is the first field not known, as the JSON decoder names it.
	Field string
}

func (e *NewerRulesError) Error() string {
	return fmt.Sprintf("service: %s version %d hold the field %q, which this version of deconflict does not know: a newer version wrote them; this one does not apply or settle them without it (run the newer version)", e.What, e.Version, e.Field)
}

// decodeRules reads a stored version of the rules (rules.Decode),
// refusing one with a field this program does not know.
func decodeRules(rec store.RulesRecord) (rules.Rules, error) {
	if err := knownFields("rules", rec.Version, rec.Body, &rules.Rules{}); err != nil {
		return rules.Rules{}, err
	}
	r, err := rules.Decode(rec.Body)
	if err != nil {
		return rules.Rules{}, fmt.Errorf("service: rules version %d: %w", rec.Version, err)
	}
	r.Version = rec.Version
	return r, nil
}

// knownFields returns a *NewerRulesError when body, decoded into into,
// holds a field that into's type does not know (at any depth); other
// faults are left to the decoding proper.
func knownFields(what string, version int64, body []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(into)
	if err == nil {
		return nil
	}
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		return &NewerRulesError{What: what, Version: version, Field: strings.TrimSuffix(name, `"`)}
	}
	return nil
}

// inUse is r as the process runs with it (rules.InUse): what every
// deadline, check and engine is computed from, while r stays as agreed.
func inUse(r rules.Rules) rules.Rules {
	u, _ := r.InUse()
	return u
}

func decodeProposal(rec store.RulesProposal) (rules.Proposal, error) {
	var p rules.Proposal
	if err := knownFields("rules proposal", rec.Version, rec.Body, &rules.Proposal{}); err != nil {
		return rules.Proposal{}, err
	}
	if err := json.Unmarshal(rec.Body, &p); err != nil {
		return rules.Proposal{}, fmt.Errorf("service: rules proposal %d: %w", rec.Version, err)
	}
	// Computed again, not read: the digest of the rules as this program
	// holds them is that of the rules it would bring into force
	// (activate), which a proposal stored before the digest existed
	// lacks.
	digest, err := rules.ContentSHA256(p.Rules)
	if err != nil {
		return rules.Proposal{}, fmt.Errorf("service: rules proposal %d: %w", rec.Version, err)
	}
	p.RulesSHA256 = digest
	return p, nil
}

func putProposal(tx store.Rules, p rules.Proposal) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return tx.PutRulesProposal(store.RulesProposal{Version: p.Version, Created: p.Created, Actor: p.ProposedBy, State: p.State, Body: body})
}

// nextRulesVersion is one above every version in force or proposed.
func nextRulesVersion(tx store.Rules, cur int64) (int64, error) {
	ps, err := tx.RulesProposals("")
	if err != nil {
		return 0, err
	}
	next := cur + 1
	if n := len(ps); n > 0 && ps[n-1].Version >= next {
		next = ps[n-1].Version + 1
	}
	return next, nil
}

// keptOutOfBounds explains the refusal err of a proposal whose field the
// rules in force fail the same way: they were agreed under an older
// version whose bounds were wider, and a proposal that leaves the figure
// as it is must say why it is refused all the same.
func (s *Service) keptOutOfBounds(err error) error {
	var fe *fielderr.Error
	if !errors.As(err, &fe) {
		return err
	}
	agreed, _ := s.AgreedRules()
	var cur *fielderr.Error
	if !errors.As(agreed.Validate(), &cur) || cur.Field != fe.Field {
		return err
	}
	return fielderr.Errorf(fe.Field, "%s; the rules in force (version %d) hold it so, agreed under an older version whose bounds were wider: a proposal must bring it within the bounds", fe.Msg, agreed.Version)
}

// rulesChange is what a transaction that brought rules into force hands
// to the in-memory state after its commit, and the scans of the volumes
// made ahead for it (scanAhead), kept across its attempts.
type rulesChange struct {
	activated *rules.Rules
	scans     []*volume.RulesScan
	// scanned counts the scans made ahead: after maxScansAhead, an
	// activation checks every volume inside its transaction.
	scanned int
}

// begin starts an attempt of the transaction: nothing activated yet, the
// scans made ahead kept. It returns the time of the attempt, for
// everything it writes: an attempt runs again after the volumes were
// checked ahead (seconds with 100,000 volumes, alerts committing under
// the old rules meanwhile), and the rules come into force when it
// commits (the new conflicts' hotline items, with their deadlines, are
// posted after it: findings.go).
func (ch *rulesChange) begin(s *Service) time.Time {
	ch.activated = nil
	return s.now()
}

// maxScansAhead bounds the scans made ahead for one write: the rules in
// force would have to change under it (another replica) each time to need
// another.
const maxScansAhead = 3

// scanFor returns the scan made ahead of the change from the rules old to
// rl (both as in use), or, when there is none, a *scanAheadError for
// writeThenKeep to make it outside the writers' lock and run the
// transaction again; nil and no error once maxScansAhead were made: the
// volumes are then checked inside the transaction.
func (ch *rulesChange) scanFor(old, rl rules.Rules) (*volume.RulesScan, error) {
	for _, sc := range ch.scans {
		if sc.For(old, rl) {
			return sc, nil
		}
	}
	if ch.scanned >= maxScansAhead {
		return nil, nil
	}
	return nil, &scanAheadError{ch: ch, old: old, rl: rl}
}

// scanAheadError ends the attempt of a transaction that brings rules into
// force before it writes anything, so that the live volumes are checked
// for them (the volumes that break them, the pairs that conflict only
// under them: seconds with 100,000 volumes) outside the writers' lock,
// while alerts commit; the transaction then runs again and checks only the
// volumes written meanwhile.
type scanAheadError struct {
	ch      *rulesChange
	old, rl rules.Rules
}

func (e *scanAheadError) Error() string {
	return fmt.Sprintf("service: the volumes are to be checked for rules version %d before the write", e.rl.Version)
}

// scanAhead makes the scan e asks for, without the writers' lock: the
// registry takes in what the store committed, then is scanned.
func (s *Service) scanAhead(ctx context.Context, e *scanAheadError) error {
	e.ch.scanned++
	reg := s.volumes()
	if err := s.st.View(ctx, func(tx store.Tx) error { return reg.Sync(tx) }); err != nil {
		return fmt.Errorf("service: reading the volumes ahead of new rules: %w", err)
	}
	sc, err := reg.ScanRules(e.old, e.rl)
	if err != nil {
		return err
	}
	e.ch.scans = append(e.ch.scans, sc)
	return nil
}

// adopt applies rules that came into force to the live engines.
func (s *Service) adopt(ctx context.Context, ch *rulesChange) error {
	if ch.activated == nil {
		return nil
	}
	if s.onRulesCommitted != nil {
		s.onRulesCommitted()
	}
	// One version at a time, in order: an older one adopted here after
	// a newer one would be skipped.
	s.lockRulesApply()
	defer s.rulesApply.Unlock()
	r := *ch.activated
	old := s.Rules()
	if r.Version <= old.Version {
		return nil
	}
	in := s.prepareRules(r)
	s.rules.Store(in)
	return s.applyRules(ctx, old, in.inUse)
}

// adoptAndAnnounce adopts the rules a committed transaction brought into
// force, then announces the first of what their activation found
// (findings.go), within the bound of findingsInRequestFor: the rest is
// the periodic job's. A failure to announce is logged, not returned: the
// rules are in force, and what is left queued is announced by the
// periodic job.
func (s *Service) adoptAndAnnounce(ctx context.Context, ch *rulesChange) error {
	if ch.activated == nil {
		return nil
	}
	if err := s.adopt(ctx, ch); err != nil {
		return err
	}
	if err := s.announceFindingsWithin(ctx, findingsBatchesPerTick, findingsInRequestFor); err != nil {
		s.log.Warn("the findings of new rules are left for the periodic job", "version", ch.activated.Version, "err", err)
	}
	return nil
}

// ProposeRules proposes r as the next version of the rules (operator
// only): a proposal every party of the airspace must answer, with a hotline
// item to each, audited and announced with a rules_proposed event. With no
// party to ask it comes into force at once. Rules without classes or
// separation table (the shape before the table existed) get the default
// ones built from their own figures (rules.FillTable).
func (s *Service) ProposeRules(ctx context.Context, actor party.Principal, r rules.Rules) (rules.Proposal, error) {
	if !actor.Operator {
		return rules.Proposal{}, ErrForbidden
	}
	r.FillTable()
	if err := r.Validate(); err != nil {
		return rules.Proposal{}, s.keptOutOfBounds(err)
	}
	var p rules.Proposal
	ch := &rulesChange{}
	err := s.writeAnswer(ctx, func(tx store.Tx) error {
		now := ch.begin(s)
		base, err := inForce(tx)
		if err != nil {
			return err
		}
		asked, err := airspaceParties(tx)
		if err != nil {
			return err
		}
		open, err := openProposals(tx, asked, base.Version, now)
		if err != nil {
			return err
		}
		if len(open) >= MaxOpenProposals {
			return &TooManyProposalsError{Open: open, Limit: MaxOpenProposals}
		}
		version, err := nextRulesVersion(tx, base.Version)
		if err != nil {
			return err
		}
		if p, err = rules.Propose(version, base, r, actor.Party, now); err != nil {
			return err
		}
		p.Settle(asked, base.Version, now)
		if err := putProposal(tx, p); err != nil {
			return err
		}
		if err := s.audit(tx, actor.Party, "rules_proposed", audit.Everyone, p); err != nil {
			return err
		}
		if _, err := appendEvent(tx, "rules_proposed", everyone, p, now); err != nil {
			return err
		}
		if len(asked) > 0 {
			if _, _, err := hotline.PostRulesProposal(tx, s.alog, inUse(base), p.Version, asked, proposalText(p), now); err != nil {
				return err
			}
		}
		if p.State == rules.ProposalActive {
			return s.activate(tx, p, asked, ch, now)
		}
		return nil
	}, nil, func() any { return p })
	if err != nil {
		return rules.Proposal{}, err
	}
	return p, s.adoptAndAnnounce(ctx, ch)
}

// proposalText is the hotline item of a proposal: what changes, field by
// field (the JSON of the values; texts the parties wrote are quoted by it).
func proposalText(p rules.Proposal) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rules version %d proposed by %s (against version %d):", p.Version, p.ProposedBy, p.Base)
	if len(p.Changes) == 0 {
		b.WriteString(" no field changes")
	}
	for i, c := range p.Changes {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s %s -> %s", c.Field, c.Old, c.New)
	}
	b.WriteString(". Answer with accept or reject.")
	// Escaped: the old values are the rules in force, which rules agreed
	// under an older version may hold with characters a hotline text
	// refuses (a level name with a zero-width space), and the proposal
	// that replaces them must reach the parties all the same.
	text := printable.Escape(b.String())
	if len(text) > hotline.MaxTextBytes {
		text = fmt.Sprintf("rules version %d proposed by %s changes %d fields (the whole change is in GET /v1/rules/proposals). Answer with accept or reject.",
			p.Version, p.ProposedBy, len(p.Changes))
	}
	return text
}

// activate brings proposal p (every asked party accepted) into force in
// tx: the rules version, its audit record and rules_changed event, the
// flags of volumes that break it, the conflicts between volumes that only
// the new rules make, and every other open proposal superseded (it was
// made against rules no longer in force).
func (s *Service) activate(tx store.Tx, p rules.Proposal, asked []string, ch *rulesChange, now time.Time) error {
	r := p.Rules
	r.Version = p.Version
	old, err := inForce(tx)
	if err != nil {
		return err
	}
	// The volumes are checked ahead, outside the writers' lock: when they
	// were not, this attempt ends here and is rolled back (scanAheadError).
	scan, err := ch.scanFor(inUse(old), inUse(r))
	if err != nil {
		return err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := tx.PutRules(store.RulesRecord{Version: r.Version, Created: now.UTC(), Actor: p.ProposedBy, Body: body}); err != nil {
		return err
	}
	if err := s.audit(tx, "deconflict", "rules_changed", audit.Everyone, map[string]any{"rules": r, "accepted_by": p.AcceptedBy}); err != nil {
		return err
	}
	if _, err := appendEvent(tx, "rules_changed", everyone, r, now); err != nil {
		return err
	}
	flags, pairs, err := s.volumes().AfterScan(tx, scan, inUse(old), inUse(r))
	if err != nil {
		return err
	}
	// Announced after the commit, in short transactions (findings.go).
	if err := s.queueFindings(tx, r.Version, flags, pairs); err != nil {
		return err
	}
	open, err := tx.RulesProposals(rules.ProposalOpen)
	if err != nil {
		return err
	}
	for _, rec := range open {
		if rec.Version == p.Version {
			continue
		}
		q, err := decodeProposal(rec)
		if err != nil {
			return err
		}
		if !q.Settle(asked, r.Version, now) {
			continue
		}
		if err := s.recordSettled(tx, q, asked, ch, now); err != nil {
			return err
		}
	}
	// Its items that wait only for parties revoked since it was made.
	if _, err := hotline.SettleProposal(tx, s.alog, p.Version, now, s.passOverMessage); err != nil {
		return err
	}
	ch.activated = &r
	return nil
}

// recordSettled stores a proposal whose state Settle changed, with its
// audit record and event, and brings it into force when it became active;
// its hotline items still waiting for a party are settled (closeItems).
func (s *Service) recordSettled(tx store.Tx, p rules.Proposal, asked []string, ch *rulesChange, now time.Time) error {
	if err := putProposal(tx, p); err != nil {
		return err
	}
	if err := s.audit(tx, "deconflict", "rules_proposal_closed", audit.Everyone, map[string]any{"version": p.Version, "state": p.State, "accepted_by": p.AcceptedBy}); err != nil {
		return err
	}
	if _, err := appendEvent(tx, "rules_answered", everyone, p, now); err != nil {
		return err
	}
	if p.State == rules.ProposalActive {
		return s.activate(tx, p, asked, ch, now)
	}
	return s.closeItems(tx, p, now)
}

// closeItems settles the hotline items of p, stored closed in tx, that
// still wait for a party's answer (hotline.SettleProposal): they would
// escalate about a question that no longer exists, and a plain
// acknowledgment of one would read as an answer to it. activate does so
// for the proposal it brings into force.
func (s *Service) closeItems(tx store.Tx, p rules.Proposal, now time.Time) error {
	_, err := hotline.SettleProposal(tx, s.alog, p.Version, now, s.passOverMessage)
	return err
}

// RulesContentError refuses an acceptance that names other rules than
// those the proposal of its version holds: the party accepted content it
// was shown, and the record must not read it as an acceptance of other
// content under the same version number.
type RulesContentError struct {
	Version int64
	// Sent is the rules_sha256 of the acceptance, Held the digest of the
	// proposal's rules (rules.ContentSHA256).
	Sent, Held string
}

func (e *RulesContentError) Error() string {
	return fmt.Sprintf("rules_sha256 %q is not the digest of the rules proposed as version %d (%s): read the proposal again (GET /v1/rules/proposals), check what it holds, and accept that", e.Sent, e.Version, e.Held)
}

// AnswerRules records the calling party's answer to the proposal of a
// version: accepting it, or rejecting it (which closes it). An acceptance
// names the content it accepts, rulesSHA256 (rules.ContentSHA256 of the
// proposal's rules as the party read them); one without it, or naming
// other content, is refused and changes nothing (*fielderr.Error,
// *RulesContentError), and the digest is recorded with the acceptance.
// The party's hotline item about the proposal is acknowledged with the
// answer. The acceptance that completes the proposal brings it into force.
func (s *Service) AnswerRules(ctx context.Context, p party.Principal, version int64, accept bool, reason, rulesSHA256 string) (rules.Proposal, error) {
	if p.Operator {
		return rules.Proposal{}, fmt.Errorf("%w: the operator proposes; the parties answer", ErrForbidden)
	}
	if accept && rulesSHA256 == "" {
		return rules.Proposal{}, fielderr.New("rules_sha256", "required: an acceptance names the content it accepts, the rules_sha256 of the proposal (the SHA-256 of the canonical JSON of its rules)")
	}
	if err := hotline.CheckReply("reason", reason); err != nil {
		return rules.Proposal{}, err
	}
	if n := len(answerReply(accept, reason)); n > hotline.MaxTextBytes {
		// Refused here, on the field the party sent: the acknowledgment
		// of its item would be refused for its reply otherwise.
		return rules.Proposal{}, fielderr.Errorf("reason", "%d bytes, at most %d: the proposal's hotline item is acknowledged with %q and the reason, at most %d bytes",
			len(reason), hotline.MaxTextBytes-(n-len(reason)), rejectedReplyPrefix, hotline.MaxTextBytes)
	}
	var prop rules.Proposal
	ch := &rulesChange{}
	err := s.writeAnswer(ctx, func(tx store.Tx) error {
		now := ch.begin(s)
		rec, err := tx.GetRulesProposal(version)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if prop, err = decodeProposal(rec); err != nil {
			return err
		}
		asked, err := airspaceParties(tx)
		if err != nil {
			return err
		}
		cur, err := tx.LatestRules()
		if err != nil {
			return err
		}
		if accept && rulesSHA256 != prop.RulesSHA256 {
			return &RulesContentError{Version: version, Sent: rulesSHA256, Held: prop.RulesSHA256}
		}
		changed, err := prop.Answer(p.Party, accept, reason, asked, now)
		switch {
		case errors.Is(err, rules.ErrNotAsked):
			return fmt.Errorf("%w: %v", ErrForbidden, err)
		case errors.Is(err, rules.ErrProposalClosed), errors.Is(err, rules.ErrAnswered):
			prop.Settle(asked, cur.Version, now)
			return fmt.Errorf("%w: %v", ErrProposalClosed, err)
		case err != nil:
			return err
		}
		if !changed {
			prop.Settle(asked, cur.Version, now)
			return nil
		}
		kind, content := "rules_accepted", map[string]any{"version": version, "party": p.Party, "rules_sha256": rulesSHA256}
		if !accept {
			delete(content, "rules_sha256")
			kind = "rules_rejected"
			content["reason"] = audit.Seal(reason, asked...)
		}
		if err := s.audit(tx, p.Party, kind, audit.Everyone, content); err != nil {
			return err
		}
		if err := s.ackRulesItem(tx, p.Party, version, accept, reason, now); err != nil {
			return err
		}
		settled := prop.Settle(asked, cur.Version, now)
		if err := putProposal(tx, prop); err != nil {
			return err
		}
		if _, err := appendEvent(tx, "rules_answered", everyone, prop, now); err != nil {
			return err
		}
		switch {
		case settled && prop.State == rules.ProposalActive:
			return s.activate(tx, prop, asked, ch, now)
		case settled:
			return s.closeItems(tx, prop, now)
		}
		return nil
	}, nil, func() any { return prop })
	if err != nil {
		if errors.Is(err, ErrProposalClosed) {
			return prop, err
		}
		return rules.Proposal{}, err
	}
	return prop, s.adoptAndAnnounce(ctx, ch)
}

// rejectedReplyPrefix opens the reply of a rejection with a reason.
const rejectedReplyPrefix = "rejected: "

// answerReply is the reply a party's answer acknowledges its item with.
func answerReply(accept bool, reason string) string {
	switch {
	case accept:
		return "accepted"
	case reason == "":
		return "rejected"
	}
	return rejectedReplyPrefix + reason
}

// ackRulesItem acknowledges party's hotline items about the proposal of
// version with its answer.
func (s *Service) ackRulesItem(tx store.Tx, party string, version int64, accept bool, reason string, now time.Time) error {
	items, err := tx.MessagesFor(party, hotline.RulesThread(version), time.Time{}, hotline.MaxListLimit)
	if err != nil {
		return err
	}
	reply := answerReply(accept, reason)
	for _, it := range items {
		if it.From != hotline.System {
			continue
		}
		if _, _, err := hotline.Ack(tx, s.alog, it.ID, party, reply, now); err != nil && !errors.Is(err, hotline.ErrNotRecipient) {
			return err
		}
	}
	return nil
}

// checkRulesItemAck refuses party's plain acknowledgment of the hotline
// item of a proposal that is open and that party has not answered: the
// item asks for the answer, and an acknowledgment without it would end the
// item's escalation while the proposal still waits for the party (and the
// answer, when it comes, would no longer be the item's reply). A closed
// proposal has nothing left to answer: its items were settled when it
// closed (closeItems), and hotline.Ack refuses an acknowledgment of one
// (*hotline.SettledError).
func checkRulesItemAck(tx store.Tx, party string, m hotline.Message) error {
	if m.Kind != hotline.KindRulesProposal || m.Ref == nil || m.AckedBy(party) || !slices.Contains(m.To, party) {
		return nil
	}
	rec, err := tx.GetRulesProposal(m.Ref.RulesVersion)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	p, err := decodeProposal(rec)
	if err != nil {
		return err
	}
	if p.State != rules.ProposalOpen || slices.ContainsFunc(p.Answers, func(a rules.Answer) bool { return a.Party == party }) {
		return nil
	}
	return fmt.Errorf("%w: answer proposal %d with POST /v1/rules/%d/accept or /v1/rules/%d/reject", ErrAnswerRequired, p.Version, p.Version, p.Version)
}

// RulesProposals lists the open proposals, each with who accepted and who
// must still answer.
func (s *Service) RulesProposals(ctx context.Context) ([]rules.Proposal, error) {
	out := []rules.Proposal{}
	err := s.st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.RulesProposals(rules.ProposalOpen)
		if err != nil {
			return err
		}
		asked, err := airspaceParties(tx)
		if err != nil {
			return err
		}
		cur, err := tx.LatestRules()
		if err != nil {
			return err
		}
		for _, rec := range recs {
			p, err := decodeProposal(rec)
			if err != nil {
				return err
			}
			// Settled for the view only: a change of state is written by
			// settleProposals.
			p.Settle(asked, cur.Version, s.now())
			if p.State == rules.ProposalOpen {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

// RulesProposal returns one proposal, open or closed.
func (s *Service) RulesProposal(ctx context.Context, version int64) (rules.Proposal, error) {
	var p rules.Proposal
	err := s.st.View(ctx, func(tx store.Tx) error {
		rec, err := tx.GetRulesProposal(version)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if p, err = decodeProposal(rec); err != nil {
			return err
		}
		asked, err := airspaceParties(tx)
		if err != nil {
			return err
		}
		cur, err := tx.LatestRules()
		if err != nil {
			return err
		}
		p.Settle(asked, cur.Version, s.now())
		return nil
	})
	return p, err
}

// settleProposals settles every open proposal against the parties asked
// now (after a revocation, at start): one whose last waiting party was
// revoked comes into force.
func (s *Service) settleProposals(ctx context.Context) error {
	ch := &rulesChange{}
	err := s.write(ctx, func(tx store.Tx) error {
		return settleOpen(tx, s, ch, ch.begin(s))
	})
	if err != nil {
		return err
	}
	return s.adoptAndAnnounce(ctx, ch)
}

func settleOpen(tx store.Tx, s *Service, ch *rulesChange, now time.Time) error {
	recs, err := tx.RulesProposals(rules.ProposalOpen)
	if err != nil {
		return err
	}
	asked, err := airspaceParties(tx)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		cur, err := tx.LatestRules()
		if err != nil {
			return err
		}
		p, err := decodeProposal(rec)
		if err != nil {
			return err
		}
		if p.State != rules.ProposalOpen || !p.Settle(asked, cur.Version, now) {
			continue
		}
		if err := s.recordSettled(tx, p, asked, ch, now); err != nil {
			return err
		}
		if ch.activated != nil {
			// The others were settled by the activation.
			return nil
		}
	}
	return nil
}

// askNewParty posts the hotline items of the open proposals to a party
// just created (in its creation's transaction): it joined under the rules
// in force and must answer what is still open, like everyone.
func askNewParty(tx store.Tx, log *audit.Log, name string, now time.Time) error {
	recs, err := tx.RulesProposals(rules.ProposalOpen)
	if err != nil || len(recs) == 0 {
		return err
	}
	cur, err := inForce(tx)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		p, err := decodeProposal(rec)
		if err != nil {
			return err
		}
		if _, _, err := hotline.PostRulesProposal(tx, log, inUse(cur), p.Version, []string{name}, proposalText(p), now); err != nil {
			return err
		}
	}
	return nil
}

// nameWitness puts party w.Party's witness into the rules in tx, replacing
// the one it had (AddPartyWith): the initial rules when none are in force,
// else a proposal of actor that every party answers. It returns the
// version and whether it is in force.
func nameWitness(tx store.Tx, actor string, w rules.Witness, now time.Time) (int64, bool, error) {
	base, err := inForce(tx)
	initial := errors.Is(err, store.ErrNotFound)
	if initial {
		base = rules.Default()
	} else if err != nil {
		return 0, false, err
	}
	r := base
	r.Witnesses = slices.DeleteFunc(slices.Clone(base.Witnesses), func(x rules.Witness) bool { return x.Party == w.Party })
	r.Witnesses = append(r.Witnesses, w)
	// Only the witnesses change: rules in force agreed under an older
	// version, outside this version's bounds elsewhere, must not keep a
	// party from naming its witness (the base passed Validate otherwise).
	if err := r.ValidateWitnesses(); err != nil {
		return 0, false, err
	}
	if initial {
		r.Version = 1
		body, err := json.Marshal(r)
		if err != nil {
			return 0, false, err
		}
		if err := tx.PutRules(store.RulesRecord{Version: r.Version, Created: now.UTC(), Actor: actor, Body: body}); err != nil {
			return 0, false, err
		}
		if err := appendAudit(tx, actor, "rules_changed", audit.Everyone, map[string]any{"rules": r, "accepted_by": []string{}}, now); err != nil {
			return 0, false, err
		}
		_, err = appendEvent(tx, "rules_changed", everyone, r, now)
		return r.Version, true, err
	}
	version, err := nextRulesVersion(tx, base.Version)
	if err != nil {
		return 0, false, err
	}
	p, err := rules.Propose(version, base, r, actor, now)
	if err != nil {
		return 0, false, err
	}
	asked, err := airspaceParties(tx)
	if err != nil {
		return 0, false, err
	}
	// The new party is asked: a proposal always waits for someone.
	p.Settle(asked, base.Version, now)
	if err := putProposal(tx, p); err != nil {
		return 0, false, err
	}
	if err := appendAudit(tx, actor, "rules_proposed", audit.Everyone, p, now); err != nil {
		return 0, false, err
	}
	if _, err := appendEvent(tx, "rules_proposed", everyone, p, now); err != nil {
		return 0, false, err
	}
	if _, _, err := hotline.PostRulesProposal(tx, nil, inUse(base), p.Version, asked, proposalText(p), now); err != nil {
		return 0, false, err
	}
	return p.Version, false, nil
}

// reasonRulesChanged is the reason of the clear of an alert that rules
// judging otherwise than those it was judged under ended.
const reasonRulesChanged = "rules_changed"

// clearedByRules is the clear at now of the open alert a (as last
// published) by rules under which detection is not what it was judged
// under: the alerts of the old engine at a change of the rules
// (retuneTactical), and those a start or a takeover finds open in the
// store under such rules (endJudgedOtherwise). Each is ended, and what
// the rules now find is raised under new ids: no alert spans two sets of
// rules, and no party's acknowledgment of an alert judged under rules no
// longer in force stands for one judged under the new.
func clearedByRules(a alert.Alert, now time.Time) alert.Transition {
	a.State = alert.StateCleared
	a.Reason = reasonRulesChanged
	a.Time = now
	return a
}

// endJudgedOtherwise returns, for a start or a takeover (queueReconcile,
// t.mu held), the clears by rules (clearedByRules) of the alerts of
// stored that eng does not judge as they were judged (judgedOtherwise),
// which it takes out of stored, and inStore as the store has it once
// they are committed: those alerts cleared, at now. New rules that change
// detection end every open alert when the retune after their activation
// commits; a process that died between the activation's commit and that
// one's left them open in the store, and its successor would otherwise
// take them up, held, then go on under their ids, under rules that judge
// otherwise.
func (s *Service) endJudgedOtherwise(eng *alert.Engine, inStore StoredAlerts, stored map[string]alert.Alert, now time.Time) (StoredAlerts, []alert.Transition) {
	ids := s.judgedOtherwise(eng, stored, inStore.RulesHistory)
	if len(ids) == 0 {
		return inStore, nil
	}
	// Copies: the caller's maps stay as it read them.
	inStore.Cleared = maps.Clone(inStore.Cleared)
	if inStore.Cleared == nil {
		inStore.Cleared = map[string]bool{}
	}
	inStore.Spans = maps.Clone(inStore.Spans)
	if inStore.Spans == nil {
		inStore.Spans = map[string]AlertSpan{}
	}
	trs := make([]alert.Transition, 0, len(ids))
	for _, id := range ids {
		a := stored[id]
		delete(stored, id)
		tr := clearedByRules(a, now)
		trs = append(trs, tr)
		inStore.Cleared[id] = true
		sp := inStore.Spans[id]
		sp.Pair, sp.To = pairOf(&a), now
		inStore.Spans[id] = sp
	}
	s.log.Info("the alerts open in the store under rules that detect otherwise than those in force are ended (rules_changed), and what the rules in force find raised anew",
		"alerts", len(ids), "rules_version", eng.RulesVersion())
	return inStore, trs
}

// judgedOtherwise returns, in id order, the ids of the alerts of stored
// (each as last published) that eng would not judge as they were judged:
// the rules they were judged under (alert.Alert.RulesVersion, found in
// history) are not rules eng detects as (alert.Engine.DetectsAs, what a
// change of the rules asks before it ends the open alerts:
// retuneTactical). An alert of a program before RulesVersion (zero) is
// taken as judged under the version in force at its time: the last that
// came into force at or before it, or the first when it is older than all.
// That is exact but for an alert whose transition's time (its reports',
// not the commit's) lies within moments of an activation: one the old
// rules judged from reports timed just after it is taken as judged under
// the new, one the new rules raised from reports timed just before it is
// ended and raised again. An alert naming a version the history does not
// have, or whose rules cannot be read, is ended: under which rules it was
// judged is unknown. An empty history (no rules read) ends none.
func (s *Service) judgedOtherwise(eng *alert.Engine, stored map[string]alert.Alert, history []store.RulesRecord) []string {
	if len(history) == 0 || len(stored) == 0 {
		return nil
	}
	// By version: whether eng detects as the rules of that version.
	same := map[int64]bool{}
	sameAs := func(version int64) bool {
		if v, ok := same[version]; ok {
			return v
		}
		i, found := slices.BinarySearchFunc(history, version, func(rec store.RulesRecord, v int64) int { return cmp.Compare(rec.Version, v) })
		v := false
		if found {
			r, err := decodeRules(history[i])
			if err != nil {
				s.log.Error("the rules an open alert was judged under cannot be read: it is ended as judged otherwise", "rules_version", version, "err", err)
			} else {
				v = eng.DetectsAs(inUse(r))
			}
		}
		same[version] = v
		return v
	}
	var out []string
	for _, id := range slices.Sorted(maps.Keys(stored)) {
		a := stored[id]
		version := a.RulesVersion
		if version == 0 {
			version = history[0].Version
			for _, rec := range history[1:] {
				if rec.Created.After(a.Time) {
					break
				}
				version = rec.Version
			}
		}
		if !sameAs(version) {
			out = append(out, id)
		}
	}
	return out
}
