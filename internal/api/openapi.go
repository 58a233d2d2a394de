package api

import (
	_ "embed"
	"net/http"

	"github.com/deconflict/deconflict/internal/party"
)

// openAPIDoc is the OpenAPI 3.1 description of every route; the tests keep
// it true (each route is in it, each response body validates against it).
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document.
func OpenAPI() []byte { return openAPIDoc }

func (h *Handler) openapi(w http.ResponseWriter, r *http.Request, _ party.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIDoc)
	return err
}
