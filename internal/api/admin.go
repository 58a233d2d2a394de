package api

import (
	"net/http"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/service"
)

func (h *Handler) listParties(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	ps, err := h.svc.ListParties(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"parties": ps})
}

// tokenAnswer carries a token, shown this once.
type tokenAnswer struct {
	Party string `json:"party"`
	Token string `json:"token"`
}

// writeToken answers a write that issued a token. Such writes take an
// Idempotency-Key, but their answer is not kept to be replayed: it holds
// the token, which the server keeps only as its hash, and keeping it would
// store a usable secret. Sent again with its key within
// service.TokenIdempotencyTTL (its answer lost), the write is not done
// again: the party's tokens are replaced by a new one, answered with
// Idempotent-Replayed: true, and the token of the lost answer is revoked
// unseen (service.issueToken); the first request, when it runs only after
// such a retry was answered, changes nothing (409 overtaken).
func writeToken(w http.ResponseWriter, r *http.Request, status int, name, token string) error {
	if service.TokenReissued(r.Context()) {
		w.Header().Set(ReplayedHeader, "true")
	}
	return writeJSON(w, status, tokenAnswer{Party: name, Token: token})
}

func (h *Handler) addParty(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in struct {
		Name       string   `json:"name"`
		PublicKeys []string `json:"public_keys"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	keys, err := party.ParsePublicKeys("public_keys", in.PublicKeys)
	if err != nil {
		return err
	}
	tok, err := h.svc.AddParty(r.Context(), p, in.Name, keys...)
	if err != nil {
		return err
	}
	return writeToken(w, r, http.StatusCreated, in.Name, tok)
}

func (h *Handler) rotateParty(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	name := r.PathValue("name")
	tok, err := h.svc.RotateParty(r.Context(), p, name)
	if err != nil {
		return err
	}
	return writeToken(w, r, http.StatusOK, name, tok)
}

func (h *Handler) revokeParty(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	name := r.PathValue("name")
	if err := h.svc.RevokeParty(r.Context(), p, name); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"party": name, "revoked": true})
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	ks, err := h.svc.Keys(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": ks})
}

// addKey registers another key of the requesting party; signed by one of
// its current keys when it has one.
func (h *Handler) addKey(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in struct {
		PublicKey string `json:"public_key"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	pub, err := partykey.Parse(in.PublicKey)
	if err != nil {
		return badRequest("public_key", err.Error())
	}
	k, err := h.svc.AddKey(r.Context(), p, r.PathValue("name"), pub)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, k)
}

func (h *Handler) retireKey(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	k, err := h.svc.RetireKey(r.Context(), p, r.PathValue("name"), r.PathValue("keyid"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, k)
}
