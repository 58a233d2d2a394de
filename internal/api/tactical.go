package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/party"
)

// wireTrack is one track on the wire: position and velocity, no details.
type wireTrack struct {
	Party       string    `json:"party"`
	Aircraft    string    `json:"aircraft"`
	Callsign    string    `json:"callsign"`
	Class       string    `json:"class"`
	Time        time.Time `json:"time"`
	Lat         float64   `json:"lat"`
	Lon         float64   `json:"lon"`
	AltM        float64   `json:"alt_m"`
	AltSource   string    `json:"alt_source,omitempty"`
	VelEastMps  float64   `json:"vel_east_mps"`
	VelNorthMps float64   `json:"vel_north_mps"`
	VelUpMps    float64   `json:"vel_up_mps"`
}

func (h *Handler) getTracks(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	format, err := queryParam(r, "format")
	if err != nil {
		return err
	}
	if format != "" && format != "json" && format != "geojson" {
		return badRequest("format", "format: "+strconv.Quote(format)+" is not json or geojson")
	}
	bbox, err := queryParam(r, "bbox")
	if err != nil {
		return err
	}
	box := detect.World
	if s := bbox; s != "" {
		b, err := parseBBox(s)
		if err != nil {
			return err
		}
		box = detect.BBox{MinLatDeg: b.MinLatDeg, MinLonDeg: b.MinLonDeg, MaxLatDeg: b.MaxLatDeg, MaxLonDeg: b.MaxLonDeg}
	}
	states := h.svc.Tracks(p, box)
	out := make([]wireTrack, len(states))
	for i, s := range states {
		out[i] = wireTrack{
			Party: s.Party, Aircraft: s.Aircraft, Callsign: s.Callsign, Class: s.Class, Time: s.Time.UTC(),
			Lat: s.Pos.LatDeg, Lon: s.Pos.LonDeg, AltM: s.Pos.AltM, AltSource: s.AltSource,
			VelEastMps: s.VelEastMps, VelNorthMps: s.VelNorthMps, VelUpMps: s.VelUpMps,
		}
	}
	if format == "geojson" {
		return writeTracksGeoJSON(w, out)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tracks": out})
}

func (h *Handler) getAlerts(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	as := h.svc.Alerts(p)
	if as == nil {
		as = []alert.Alert{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"alerts": as})
}

// getResolution answers the resolution of an alert for the caller: the
// bands and suggestion of its own aircraft in it. 404 when no alert of
// that id concerns one of its aircraft, 410 with the time when it cleared;
// 429 when its party's budget of resolutions does not hold one
// (resolutionbudget.go).
func (h *Handler) getResolution(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	res, err := h.resolutionOnDemand(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}
