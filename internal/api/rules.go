package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
)

// putRules proposes a change of the rules (operator): the body's fields
// replace those of the rules in force, a field left out keeps its value;
// 202 with the proposal, which comes into force once every party accepted.
func (h *Handler) putRules(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return jsonProblem(err)
	}
	// Over the rules as agreed, not as the process runs with them: a
	// figure it clamps (rules agreed under an older version) changes
	// only when the body says so.
	agreed, _ := h.svc.AgreedRules()
	in, err := amendRules(agreed, body)
	if err != nil {
		return err
	}
	service.RenderWith(r.Context(), jsonAnswer(http.StatusAccepted))
	prop, err := h.svc.ProposeRules(r.Context(), p, in)
	if err != nil {
		return err
	}
	h.setFindingsPending(w, r, p, prop)
	return writeAnswer(w, r.Context(), http.StatusAccepted, prop)
}

// FindingsPendingHeader, on the answer of the request that brought rules
// into force, is how many of what their activation found (volumes that
// break them, pairs that conflict only under them) are still to be
// announced: the request announces the first and answers, the periodic
// job the rest (absent when none is left).
const FindingsPendingHeader = "Findings-Pending"

// setFindingsPending sets FindingsPendingHeader on the answer of a
// request of p that brought prop into force: the findings that concern p
// (every one for the operator), never another party's, not even their
// number (service.FindingsPendingFor).
func (h *Handler) setFindingsPending(w http.ResponseWriter, r *http.Request, p party.Principal, prop rules.Proposal) {
	if prop.State != rules.ProposalActive {
		return
	}
	n, err := h.svc.FindingsPendingFor(r.Context(), p)
	if err != nil {
		// The rules are in force and the answer says so; the count is
		// for information only.
		h.log.Warn("reading the findings still to be announced", "err", err)
		return
	}
	if n > 0 {
		w.Header().Set(FindingsPendingHeader, strconv.FormatInt(n, 10))
	}
}

// amendRules reads a body of rules fields over base: each field given
// replaces base's as a whole, unknown fields are refused by name.
func amendRules(base rules.Rules, body []byte) (rules.Rules, error) {
	var given map[string]json.RawMessage
	if err := decodeFrom(bytes.NewReader(body), &given); err != nil {
		return rules.Rules{}, err
	}
	if given == nil {
		return rules.Rules{}, badRequest("", "the body must be a JSON object of rules fields")
	}
	return rules.Amend(base, given)
}

func (h *Handler) listRulesProposals(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	ps, err := h.svc.RulesProposals(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"proposals": ps})
}

// proposalVersion reads the {version} of the path, spelled only as the
// service writes it (decimal, no sign, no leading zero): the record binds
// a signed answer to its proposal by the version its path spells, and
// "02" or "+2", answered as 2, left a genuine signed answer that no
// longer verified.
func proposalVersion(r *http.Request) (int64, error) {
	s := r.PathValue("version")
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 || strconv.FormatInt(v, 10) != s {
		return 0, badRequest("version", "must be a rules version, 1 or more, in decimal without sign or leading zero")
	}
	return v, nil
}

func (h *Handler) acceptRules(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	v, err := proposalVersion(r)
	if err != nil {
		return err
	}
	// The body names the content accepted: {"rules_sha256": "<hex>"},
	// the digest of the proposal's rules the party read. Signed with the
	// body (Content-Digest), it binds the acceptance to that content,
	// where the version of the path alone could be read, in a rewritten
	// record, as the acceptance of other rules under the same number.
	var in struct {
		RulesSHA256 string `json:"rules_sha256"`
	}
	if b, err := io.ReadAll(r.Body); err != nil {
		return jsonProblem(err)
	} else if len(bytes.TrimSpace(b)) > 0 {
		if err := decodeFrom(bytes.NewReader(b), &in); err != nil {
			return err
		}
	}
	service.RenderWith(r.Context(), jsonAnswer(http.StatusOK))
	prop, err := h.svc.AnswerRules(r.Context(), p, v, true, "", in.RulesSHA256)
	if err != nil {
		return err
	}
	h.setFindingsPending(w, r, p, prop)
	return writeAnswer(w, r.Context(), http.StatusOK, prop)
}

func (h *Handler) rejectRules(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	v, err := proposalVersion(r)
	if err != nil {
		return err
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if b, err := io.ReadAll(r.Body); err != nil {
		return jsonProblem(err)
	} else if len(bytes.TrimSpace(b)) > 0 {
		if err := decodeFrom(bytes.NewReader(b), &in); err != nil {
			return err
		}
	}
	service.RenderWith(r.Context(), jsonAnswer(http.StatusOK))
	prop, err := h.svc.AnswerRules(r.Context(), p, v, false, in.Reason, "")
	if err != nil {
		return err
	}
	return writeAnswer(w, r.Context(), http.StatusOK, prop)
}
