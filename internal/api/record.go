package api

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/wiretime"
)

// getAudit streams the audit log as JSON lines from ?from= (default 1):
// records, checkpoints and a signed head line; other parties' private
// details appear only as their hash.
func (h *Handler) getAudit(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	from, _, err := queryOptionalInt(r, "from", 1, 1)
	if err != nil {
		return err
	}
	// An export lasts as long as its client takes to read it: not the
	// server's write timeout, but each write within the stream's.
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), timeout: h.opt.StreamWriteTimeout}
	defer sw.finish()
	w.Header().Set("Content-Type", "application/x-ndjson")
	return h.svc.ExportAudit(r.Context(), p, sw, from)
}

func (h *Handler) getAuditKey(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	return writeJSON(w, http.StatusOK, h.svc.AuditKey())
}

func (h *Handler) postMessage(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in hotline.NewMessage
	if err := decode(r, &in); err != nil {
		return err
	}
	service.RenderWith(r.Context(), jsonAnswer(http.StatusCreated))
	m, err := h.svc.PostMessage(r.Context(), p, in)
	if err != nil {
		return err
	}
	return writeAnswer(w, r.Context(), http.StatusCreated, m)
}

func (h *Handler) listMessages(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	thread, err := queryParam(r, "thread")
	if err != nil {
		return err
	}
	var since time.Time
	s, err := queryParam(r, "since")
	if err != nil {
		return err
	}
	if s != "" {
		t, err := wiretime.Parse("since", s)
		if err != nil {
			return err
		}
		since = t
	}
	limit, _, err := queryOptionalInt(r, "limit", 1, 0)
	if err != nil {
		return err
	}
	ms, err := h.svc.ListMessages(r.Context(), p, thread, since, int(limit))
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []hotline.Message{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"messages": ms})
}

// ackMessage acknowledges a message; the body ({"reply": ".."}) is optional.
func (h *Handler) ackMessage(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in struct {
		Reply string `json:"reply"`
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeFrom(bytes.NewReader(body), &in); err != nil {
			return err
		}
	}
	m, err := h.svc.AckMessage(r.Context(), p, r.PathValue("id"), in.Reply)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m)
}
