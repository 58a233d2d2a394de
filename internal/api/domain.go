package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/volume"
)

// domainProblem maps the errors of the domain packages (volumes, hotline)
// onto problems; nil when err is not one of theirs.
func domainProblem(err error) *Problem {
	switch {
	case errors.Is(err, hotline.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "Not found", "no such message among those this party sent or received")
	case errors.Is(err, hotline.ErrNotRecipient):
		return problem(http.StatusForbidden, "not-recipient", "Not a recipient", "only a recipient acknowledges a message")
	case errors.Is(err, hotline.ErrNotMember):
		p := problem(http.StatusForbidden, "not-member", "Not a member of the thread",
			"the thread has begun without this party: post into a thread it sent or received a message in, or start a new one")
		p.Field = "thread"
		return p
	}
	var ue *hotline.UnreadableError
	if errors.As(err, &ue) {
		// A fault of the store, not of the request: named, so that the
		// operator can find the row, and told apart from a failure of
		// the server that the same request would not meet again.
		return problem(http.StatusInternalServerError, "message-unreadable", "Message unreadable",
			"the stored message "+ue.ID+" cannot be read (its stored body does not decode); the operator is told of it in the server's log. Your other messages are listed as usual")
	}
	var se *hotline.SettledError
	if errors.As(err, &se) {
		return problem(http.StatusConflict, "message-settled", "Message settled", se.Error())
	}
	var tm *hotline.TooManyOpenError
	if errors.As(err, &tm) {
		p := problem(http.StatusTooManyRequests, "too-many-open-messages", "Too many messages awaiting acknowledgment", tm.Error())
		p.Field = tm.Field
		return p
	}
	var tc *hotline.TooManyConflictsError
	if errors.As(err, &tc) {
		p := problem(http.StatusUnprocessableEntity, "too-many-conflicts", "Conflicts with too many volumes", tc.Error())
		p.Field = "key"
		return p
	}
	var mk *volume.MissingKeyError
	if errors.As(err, &mk) {
		p := problem(http.StatusConflict, "missing-key", "Awareness key incomplete",
			"the volume conflicts with other parties' volumes missing or stale in the key; add them (see missing) and retry")
		p.Field = "key"
		p.Missing = mk.Missing
		if len(mk.Alternatives) > 0 {
			p.Alternatives = mk.Alternatives
		}
		p.AlternativesOmitted = mk.AlternativesOmitted
		return p
	}
	var le *volume.PartyLimitError
	if errors.As(err, &le) {
		p := problem(http.StatusTooManyRequests, "too-many-volumes", "Too many live volumes",
			"this party would hold more than "+strconv.Itoa(le.Limit)+" "+le.What+", the limit of a party; end or cancel some of its volumes first")
		if le.What != volume.LimitVolumes {
			p.Field = "footprint"
		}
		return p
	}
	var pe *volume.PriorityError
	if errors.As(err, &pe) {
		p := problem(http.StatusConflict, "higher-priority", "Conflicts with a higher-priority volume", pe.Error())
		p.Conflicts = pe.Higher
		if len(pe.Alternatives) > 0 {
			p.Alternatives = pe.Alternatives
		}
		p.AlternativesOmitted = pe.AlternativesOmitted
		return p
	}
	switch {
	case errors.Is(err, volume.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "Not found", err.Error())
	case errors.Is(err, volume.ErrForbidden):
		return problem(http.StatusForbidden, "forbidden", "Forbidden", err.Error())
	case errors.Is(err, volume.ErrStaleVersion):
		p := problem(http.StatusConflict, "stale-version", "Stale version", "the volume was changed since that version; read it again")
		p.Field = "version"
		return p
	case errors.Is(err, volume.ErrIllegalTransition):
		p := problem(http.StatusConflict, "illegal-transition", "Illegal state transition", err.Error())
		p.Field = "state"
		return p
	case errors.Is(err, volume.ErrActivatedConflict):
		p := problem(http.StatusConflict, "activated-conflict", "A conflicting volume may not be activated", err.Error())
		p.Field = "state"
		return p
	}
	return nil
}
