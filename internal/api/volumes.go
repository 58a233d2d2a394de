package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/wiretime"
)

func readVolumeInput(r *http.Request) (volume.Input, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return volume.Input{}, err
	}
	return volume.ParseInput(body)
}

// readVolumeWrite reads the volume of a write and charges the party's
// budget of volume writes its footprint's positions and the base (the
// rest of what the write reserved by its length is given back).
func readVolumeWrite(r *http.Request) (volume.Input, error) {
	in, err := readVolumeInput(r)
	if err != nil {
		return in, err
	}
	reservationOf(r.Context()).settle(in.Footprint.Positions() + VolumeWriteBasePositions)
	return in, nil
}

func (h *Handler) postVolume(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	in, err := readVolumeWrite(r)
	if err != nil {
		return err
	}
	h.renderVolume(r.Context(), http.StatusCreated, p, in)
	v, err := h.svc.CreateVolume(r.Context(), p, in)
	var replayed *service.Replayed
	if errors.As(err, &replayed) {
		// Answered as the first was: located at the volume created.
		var kept struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(replayed.Body, &kept) == nil && kept.ID != "" {
			w.Header().Set("Location", "/v1/volumes/"+kept.ID)
		}
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/volumes/"+v.ID)
	return h.writeVolume(w, r.Context(), http.StatusCreated, p, v, in)
}

// writtenVolume is the answer to a write: the volume, and when it was
// accepted though it conflicts, its nearest conflict-free variants.
type writtenVolume struct {
	volume.Volume
	Alternatives []volume.Alternative `json:"alternatives,omitempty"`
	// AlternativesOmitted says why a write that conflicts has no
	// alternatives: "budget", the party's budget of searches was spent.
	AlternativesOmitted string `json:"alternatives_omitted,omitempty"`
}

// writeVolume answers a write that succeeded with the volume and, when
// it conflicts, its alternatives (as rendered in the write's transaction
// when the request carries an idempotency key).
func (h *Handler) writeVolume(w http.ResponseWriter, ctx context.Context, status int, p party.Principal, v volume.Volume, in volume.Input) error {
	if st, body, ok := service.Answered(ctx); ok {
		return writeRaw(w, st, body)
	}
	out, err := h.volumeAnswer(ctx, p, v, in)
	if err != nil {
		return err
	}
	return writeJSON(w, status, out)
}

// volumeAnswer is the answer to a volume write that succeeded. The write
// stands whatever its alternatives: when the party's budget of searches
// does not hold one, the answer says they were omitted.
func (h *Handler) volumeAnswer(ctx context.Context, p party.Principal, v volume.Volume, in volume.Input) (writtenVolume, error) {
	out := writtenVolume{Volume: v}
	if len(v.Conflicts) > 0 && v.State.Live() {
		alts, err := h.svc.VolumeAlternatives(ctx, p, v.ID, in)
		if errors.Is(err, service.ErrAlternativesBudget) {
			out.AlternativesOmitted = service.AlternativesOmittedBudget
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out.Alternatives = alts
	}
	return out, nil
}

// renderVolume renders the answer to a volume write of a request with an
// idempotency key in the write's transaction, so that it is kept with
// the write. Its alternatives were searched just before the transaction
// (service.VolumeAlternatives answers those of the request): a search,
// and its wait for a turn of work on demand, holds no writer back.
func (h *Handler) renderVolume(ctx context.Context, status int, p party.Principal, in volume.Input) {
	service.RenderWith(ctx, func(result any) (int, []byte, error) {
		out, err := h.volumeAnswer(ctx, p, result.(volume.Volume), in)
		if err != nil {
			return 0, nil, err
		}
		return jsonAnswer(status)(out)
	})
}

// postAlternatives answers, writing nothing, the volumes a would-be
// volume conflicts with and its nearest conflict-free variants; an invalid
// volume gets the same 400 as a write.
func (h *Handler) postAlternatives(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	in, err := readVolumeInput(r)
	if err != nil {
		return err
	}
	// The footprint is compiled and checked as a write's is: paid by its
	// positions (no base: nothing is committed), reserved before, from
	// the party's planning budget, that of previewed footprints
	// (Options.PreviewPositionsPerSecond), not from that of volume
	// writes: a request that writes nothing must never keep its party
	// from declaring or ending a volume. At most the largest footprint
	// the rules can allow, which the burst holds: one beyond is refused
	// as soon as its positions are counted (400 naming it), and
	// reserving all of them would refuse it with 429 for ever.
	positions := min(in.Footprint.Positions(), rules.MaxVerticesBound+1)
	// Its refusal names the request (alternativesPositions), not a
	// preview; the type is the budget's, too-many-preview-positions.
	res, wait, _ := h.alternativesPositions.reserveCost(p.Party, float64(positions), time.Now())
	if res == nil { // never beyond: the burst holds the largest footprint
		return h.alternativesPositions.refusal(p.Party, wait, fmt.Sprintf("does not hold the %d positions of the footprint this request for alternatives compiles and checks, which it reserves first (previews and requests for alternatives share this budget, apart from that of volume writes); nothing was searched", positions))
	}
	res.settle(positions)
	conflicts, probe, err := h.svc.PreviewVolume(p, in)
	if err != nil {
		return err
	}
	// Paid from the party's budget of checks (the request's context), by
	// what the search may cost among the volumes near it: refused with
	// 429 when the budget does not hold that.
	alts, err := h.svc.VolumeAlternatives(r.Context(), p, "", in)
	if be := (*service.AlternativesBudgetError)(nil); errors.As(err, &be) {
		return h.alternativesRefusal(p.Party, be)
	}
	if err != nil {
		return err
	}
	// The other parties' volumes hidden from the party that the answer
	// shows (clipped) are paid for and recorded first.
	if err := h.svc.RecordProbes(r.Context(), p, service.ProbeViaAlternatives, []service.Probe{probe}); err != nil {
		return err
	}
	if conflicts == nil {
		conflicts = []volume.Volume{}
	}
	if alts == nil {
		alts = []volume.Alternative{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"conflicts": conflicts, "alternatives": alts})
}

func (h *Handler) putVolume(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	in, err := readVolumeWrite(r)
	if err != nil {
		return err
	}
	h.renderVolume(r.Context(), http.StatusOK, p, in)
	v, err := h.svc.UpdateVolume(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return h.writeVolume(w, r.Context(), http.StatusOK, p, v, in)
}

func (h *Handler) postVolumeState(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in struct {
		State   volume.State      `json:"state"`
		Version string            `json:"version"`
		Key     []volume.KeyEntry `json:"key"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.State == "" {
		return badRequest("state", "state: required")
	}
	// The request is charged the base of a write; the footprint it
	// compiles and checks is the stored volume's, whole, reserved first.
	reservationOf(r.Context()).settle(VolumeWriteBasePositions)
	if n := h.svc.OwnVolumePositions(p, r.PathValue("id")); n > 0 {
		res, wait, _ := h.volumeWrites.reserveCost(p.Party, float64(n), time.Now())
		if res == nil { // never beyond: the burst holds the largest footprint
			return h.volumeWrites.refusal(p.Party, wait, fmt.Sprintf("does not hold the %d positions of the footprint this state change compiles and checks, which it reserves before it is made; nothing was changed", n))
		}
		res.settle(n)
	}
	service.RenderWith(r.Context(), func(result any) (int, []byte, error) {
		v := result.(volume.Volume)
		out, err := h.volumeAnswer(r.Context(), p, v, inputOf(v))
		if err != nil {
			return 0, nil, err
		}
		return jsonAnswer(http.StatusOK)(out)
	})
	v, err := h.svc.SetVolumeState(r.Context(), p, r.PathValue("id"), in.Version, in.State, in.Key)
	if err != nil {
		return err
	}
	return h.writeVolume(w, r.Context(), http.StatusOK, p, v, inputOf(v))
}

// inputOf is the write that makes v as it is.
func inputOf(v volume.Volume) volume.Input {
	return volume.Input{
		Footprint: v.Footprint, AltLowerM: v.AltLowerM, AltUpperM: v.AltUpperM,
		Start: v.Start, End: v.End, Priority: v.Priority, State: v.State, Details: v.Details,
	}
}

func (h *Handler) getVolume(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	v, err := h.svc.GetVolume(p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// farPast and farFuture bound a query window left open by the caller.
var (
	farPast   = time.Unix(0, 0).UTC()
	farFuture = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func (h *Handler) listVolumes(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	format, err := volumeFormat(r)
	if err != nil {
		return err
	}
	bbox, err := queryParam(r, "bbox")
	if err != nil {
		return err
	}
	var box *volume.Box
	if s := bbox; s != "" {
		b, err := parseBBox(s)
		if err != nil {
			return err
		}
		box = &b
	}
	alt, err := queryParam(r, "alt")
	if err != nil {
		return err
	}
	lower, upper := math.Inf(-1), math.Inf(1)
	if s := alt; s != "" {
		v, err := parseFloats(s, 2, "alt")
		if err != nil {
			return err
		}
		if v[0] > v[1] {
			return badRequest("alt", "alt: lower above upper")
		}
		lower, upper = v[0], v[1]
	}
	from, to := farPast, farFuture
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		s, err := queryParam(r, t.name)
		if err != nil {
			return err
		}
		if s != "" {
			v, err := wiretime.Parse(t.name, s)
			if err != nil {
				return err
			}
			*t.dst = v
		}
	}
	if to.Before(from) {
		return badRequest("to", "to: before from")
	}
	extent := volume.Extent{LowerM: lower, UpperM: upper, From: from, To: to}
	var vs []volume.Volume
	if box != nil {
		vs, err = h.svc.QueryVolumesBox(p, *box, extent)
	} else {
		vs, err = h.svc.QueryVolumes(p, nil, extent)
	}
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []volume.Volume{}
	}
	if format != "" && format != "json" {
		return writeVolumesAs(w, format, vs)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"volumes": vs})
}

// parseBBox reads minLon,minLat,maxLon,maxLat in degrees; minLon > maxLon
// crosses the antimeridian.
func parseBBox(s string) (volume.Box, error) {
	v, err := parseFloats(s, 4, "bbox")
	if err != nil {
		return volume.Box{}, err
	}
	b := volume.Box{MinLonDeg: v[0], MinLatDeg: v[1], MaxLonDeg: v[2], MaxLatDeg: v[3]}
	switch {
	case b.MinLatDeg < -90 || b.MaxLatDeg > 90 || b.MinLatDeg > b.MaxLatDeg:
		return b, badRequest("bbox", "bbox: latitudes must be within [-90, 90] with min <= max")
	case b.MinLonDeg < -180 || b.MaxLonDeg > 180 || b.MinLonDeg > 180 || b.MaxLonDeg < -180:
		return b, badRequest("bbox", "bbox: longitudes must be within [-180, 180]")
	}
	return b, nil
}

func parseFloats(s string, n int, field string) ([]float64, error) {
	parts := strings.Split(s, ",")
	if len(parts) != n {
		return nil, badRequest(field, fmt.Sprintf("%s: %d comma-separated numbers expected", field, n))
	}
	out := make([]float64, n)
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, badRequest(field, fmt.Sprintf("%s: %q is not a finite number", field, p))
		}
		out[i] = v
	}
	return out, nil
}
