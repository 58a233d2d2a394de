package api

import (
	"net/http"
	"strconv"

	"github.com/deconflict/deconflict/internal/party"
)

// getAudit streams the audit log as JSON lines from ?from= (default 1):
// records, checkpoints and a signed head line; other parties' private
// details appear only as their hash.
func (h *Handler) getAudit(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	from := int64(1)
	if s := r.URL.Query().Get("from"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return badRequest("from", "from: must be a sequence number, 1 or more")
		}
		from = n
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	return h.svc.ExportAudit(r.Context(), p, w, from)
}

func (h *Handler) getAuditKey(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	return writeJSON(w, http.StatusOK, h.svc.AuditKey())
}
