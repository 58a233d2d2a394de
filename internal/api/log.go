package api

import (
	"encoding/hex"
	"net/http"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/translog"
)

// The transparency log: its key, its latest checkpoint with the witnesses'
// cosignatures, and proofs (RFC 9162 hashing, hashes in lowercase hex).

func (h *Handler) getLogKey(w http.ResponseWriter, r *http.Request, _ party.Principal) error {
	origin, vkey := h.svc.LogKey()
	return writeJSON(w, http.StatusOK, map[string]string{"origin": origin, "vkey": vkey})
}

func (h *Handler) getLogCheckpoint(w http.ResponseWriter, r *http.Request, _ party.Principal) error {
	b := h.svc.LogCheckpoint(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write(b)
	return err
}

func (h *Handler) getLogStatus(w http.ResponseWriter, r *http.Request, _ party.Principal) error {
	return writeJSON(w, http.StatusOK, h.svc.LogStatus(r.Context()))
}

func hexes(hs []translog.Hash) []string {
	out := make([]string, len(hs))
	for i, x := range hs {
		out[i] = hex.EncodeToString(x[:])
	}
	return out
}

func (h *Handler) getInclusionProof(w http.ResponseWriter, r *http.Request, _ party.Principal) error {
	index, err := queryInt(r, "index", 0)
	if err != nil {
		return err
	}
	size, err := queryInt(r, "size", 1)
	if err != nil {
		return err
	}
	if index >= size {
		return badRequest("index", "index: must be below size")
	}
	leaf, proof, err := h.svc.InclusionProof(r.Context(), index, size)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"index": index, "size": size, "leaf_hash": hex.EncodeToString(leaf[:]), "proof": hexes(proof)})
}

func (h *Handler) getConsistencyProof(w http.ResponseWriter, r *http.Request, _ party.Principal) error {
	from, err := queryInt(r, "from", 0)
	if err != nil {
		return err
	}
	size, err := queryInt(r, "size", 0)
	if err != nil {
		return err
	}
	if from > size {
		return badRequest("from", "from: must be at most size")
	}
	proof, err := h.svc.ConsistencyProof(r.Context(), from, size)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"from": from, "size": size, "proof": hexes(proof)})
}
