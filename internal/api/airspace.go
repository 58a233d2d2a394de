package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"

	"github.com/deconflict/deconflict/internal/airspace"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/wiretime"
)

// Media types of the airspace formats.
const (
	geoJSONType = "application/geo+json"
	kmlType     = "application/vnd.google-earth.kml+xml"
	openAirType = "text/plain; charset=utf-8"
	// importBody bounds an airspace file sent for a preview.
	importBody = 8 << 20
)

// Limits of one preview beyond its body: what it costs is per item (a
// conflict check, and alternatives when it conflicts) and what it answers
// grows with the footprints of every volume each item conflicts with, so
// that a small file over a detailed volume of another party would answer
// gigabytes (a circle over a 1,000-vertex polygon costs 40 KB of answer,
// 200,000 such circles fit in the body). A file beyond either limit is
// refused with 413 preview-too-large: preview it in parts.
const (
	// MaxPreviewItems bounds the items of one preview (each airspace
	// once per activation interval).
	MaxPreviewItems = 5_000
	// MaxPreviewAnswerBytes bounds the JSON answer of one preview.
	MaxPreviewAnswerBytes = 32 << 20
)

// previewTooLarge is the refusal of a file beyond the limits of a preview.
func previewTooLarge(detail string) *Problem {
	p := problem(http.StatusRequestEntityTooLarge, "preview-too-large", "Airspace file too large to preview at once", detail+"; preview the file in parts")
	p.Field = "file"
	return p
}

// volumeFormat checks the format query parameter of GET /v1/volumes.
func volumeFormat(r *http.Request) (string, error) {
	f, err := queryParam(r, "format")
	if err != nil {
		return "", err
	}
	switch f {
	case "", "json", "geojson", "kml", "openair":
		return f, nil
	default:
		return "", badRequest("format", "format: "+strconv.Quote(f)+" is not json, geojson, kml or openair")
	}
}

// writeVolumesAs writes volumes as a GeoJSON FeatureCollection, a KML
// document or an OpenAir file (see package airspace).
func writeVolumesAs(w http.ResponseWriter, format string, vs []volume.Volume) error {
	as := make([]airspace.Airspace, 0, len(vs))
	for _, v := range vs {
		a, err := airspace.FromVolume(v)
		if err != nil {
			return err
		}
		as = append(as, a)
	}
	var buf bytes.Buffer
	var ctype string
	switch format {
	case "geojson":
		b, err := airspace.WriteGeoJSON(as, 0, airspace.DefaultUnlimitedM)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		ctype = geoJSONType
	case "kml":
		if err := airspace.WriteKML(&buf, "deconflict volumes", as, 0, airspace.DefaultUnlimitedM); err != nil {
			return err
		}
		ctype = kmlType
	default:
		if err := airspace.WriteOpenAir(&buf, as); err != nil {
			return err
		}
		ctype = openAirType
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(buf.Bytes())
	return err
}

// writeTracksGeoJSON writes tracks as a FeatureCollection of Points (with
// the altitude as the third coordinate) and their wire fields as
// properties.
func writeTracksGeoJSON(w http.ResponseWriter, tracks []wireTrack) error {
	fc := geojson.NewFeatureCollection()
	for _, t := range tracks {
		f := geojson.NewFeature(orb.Point{t.Lon, t.Lat})
		f.ID = t.Party + "/" + t.Aircraft
		f.Properties = geojson.Properties{
			"party": t.Party, "aircraft": t.Aircraft, "callsign": t.Callsign, "time": t.Time.Format(time.RFC3339Nano),
			"alt_m": t.AltM, "vel_east_mps": t.VelEastMps, "vel_north_mps": t.VelNorthMps, "vel_up_mps": t.VelUpMps,
		}
		if t.AltSource != "" {
			f.Properties["alt_source"] = t.AltSource
		}
		fc.Append(f)
	}
	b, err := fc.MarshalJSON()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", geoJSONType)
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(append(b, '\n'))
	return err
}

// previewItem is one volume an airspace file would declare.
type previewItem struct {
	Index int `json:"index"`          // the airspace's position in the file
	Line  int `json:"line,omitempty"` // OpenAir: the line at fault, or the airspace's AC line
	// Feature is the GeoJSON feature index (GeoJSON files only).
	Feature *int   `json:"feature,omitempty"`
	Name    string `json:"name"`
	// Status: "ok" (would be declared as it is), "conflicting" (conflicts
	// with other parties' volumes: declaring it needs their keys) or
	// "refused" (reason, field and line say why).
	Status string          `json:"status"`
	Reason string          `json:"reason,omitempty"`
	Field  string          `json:"field,omitempty"`
	Input  *volumeWrite    `json:"input,omitempty"`
	Conf   []volume.Volume `json:"conflicts,omitempty"`
	// Alternatives are the nearest conflict-free variants of a
	// conflicting item (its band moved, its window moved, or both).
	Alternatives []volume.Alternative `json:"alternatives,omitempty"`
	// AlternativesOmitted says why a conflicting item has no
	// alternatives: "budget", the party's budget of searches was spent.
	AlternativesOmitted string `json:"alternatives_omitted,omitempty"`
}

// volumeWrite is the body of POST /v1/volumes for an item.
type volumeWrite struct {
	Footprint volume.Footprint `json:"footprint"`
	AltLowerM float64          `json:"alt_lower_m"`
	AltUpperM float64          `json:"alt_upper_m"`
	Start     time.Time        `json:"start"`
	End       time.Time        `json:"end"`
	Priority  int              `json:"priority"`
	State     volume.State     `json:"state"`
	Details   any              `json:"details,omitempty"`
}

// previewVolumes reads an airspace file (OpenAir or GeoJSON) and answers,
// without writing anything, what each airspace would become: the volume
// write to send, refused (with the reason and line or feature), or
// conflicting (with the other parties' volumes it meets).
func (h *Handler) previewVolumes(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	// A preview costs its items (settled below, once they are known);
	// one refused before, what was read of its file (budget.go).
	res := reservationOf(r.Context())
	format, err := queryParam(r, "format")
	if err != nil {
		return err
	}
	if format != "openair" && format != "geojson" {
		return badRequest("format", "format: must be openair or geojson")
	}
	var opt airspace.ImportOptions
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"start", &opt.Start}, {"end", &opt.End}} {
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
	for _, f := range []struct {
		name string
		dst  *float64
	}{{"ground_m", &opt.GroundM}, {"unlimited_m", &opt.UnlimitedM}} {
		s, err := queryParam(r, f.name)
		if err != nil {
			return err
		}
		if s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 1e5 {
				return badRequest(f.name, f.name+": must be a number of meters")
			}
			*f.dst = v
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var as []airspace.Airspace
	if format == "openair" {
		as, err = airspace.ParseOpenAir(bytes.NewReader(body))
	} else {
		as, err = airspace.ReadGeoJSON(body)
	}
	if err != nil {
		return fileProblem(err)
	}
	// Each airspace is one item at least: count them before making the
	// items.
	if len(as) > MaxPreviewItems {
		return previewTooLarge(fmt.Sprintf("the file holds %d airspaces, more than the %d items one preview answers", len(as), MaxPreviewItems))
	}
	items := airspace.Items(as, opt)
	if len(items) > MaxPreviewItems {
		return previewTooLarge(fmt.Sprintf("the file gives %d items (airspaces, each once per activation interval), more than the %d one preview answers", len(items), MaxPreviewItems))
	}
	if err := h.payPreviewFootprints(p.Party, items); err != nil {
		return err
	}
	res.settle(len(items))
	// A preview that stops before its last item (its client gone, or its
	// answer too large) is charged for the items it checked only, and at
	// least for the reading of its file (readItems, what a preview
	// refused before its items were known costs): the others, and their
	// footprints' positions, are given back. Given back every item, a
	// preview cut short at once cost nothing, its file read and parsed.
	readItems := min(int((int64(len(body))+h.previews.bytesPerUnit-1)/h.previews.bytesPerUnit), len(items))
	checked := 0
	defer func() {
		h.refundUncheckedPreviewItems(p.Party, len(items)-max(checked, readItems), items[checked:])
	}()
	// The answer is encoded item by item, so that its size is known (and
	// bounded) before it is all built.
	var answer bytes.Buffer
	answer.WriteString(`{"items":[`)
	ctx := r.Context()
	// The probes of items that show other parties' volumes hidden from
	// the party, paid for and recorded before the answer is sent.
	var probes []service.Probe
	for n, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		checked = n + 1
		pi, probe, err := h.previewItem(ctx, p, format, as[it.Index], it)
		if err != nil {
			return err
		}
		if len(probe.Revealed) > 0 {
			probes = append(probes, probe)
		}
		b, err := json.Marshal(pi)
		if err != nil {
			return err
		}
		if n > 0 {
			answer.WriteByte(',')
		}
		answer.Write(b)
		if answer.Len() > h.opt.previewAnswerBytes {
			return previewTooLarge(fmt.Sprintf("the answer for the first %d of its %d items is already more than %d bytes (the other parties' volumes each conflicts with, and its alternatives)", n+1, len(items), h.opt.previewAnswerBytes))
		}
	}
	answer.WriteString("]}\n")
	if err := h.svc.RecordProbes(ctx, p, service.ProbeViaPreview, probes); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(answer.Bytes())
	return err
}

// payPreviewFootprints pays, from party's budget of previewed footprints
// (Options.PreviewPositionsPerSecond), the positions of the footprints the
// items compile and check (each as a write's, no base: nothing is
// committed), before any is checked: counted by item only, a preview of
// 5,000 corridors of 1,000 positions (13 ms each) cost what 5,000 circles
// (2 µs each) did. The budget must hold them all, or the preview is
// refused with 429, nothing checked (charged what was read of its file).
// A file whose footprints hold more than the budget ever holds (its
// burst) is checked once the budget is full, and leaves it owing the
// rest: the party's later previews wait until the rate has paid it back,
// so that the party's average stays the rate, and a large file is
// previewed rather than refused for ever. The budget is not that of
// volume writes: a preview writes nothing, and must never keep its party
// from declaring or ending a volume.
func (h *Handler) payPreviewFootprints(party string, items []airspace.Item) error {
	positions := previewPositions(items)
	if positions == 0 {
		return nil
	}
	b := h.previewPositions
	_, burst := b.limiter.limits(party)
	held := min(positions, burst)
	res, wait, _ := b.reserveCost(party, held, time.Now())
	if res == nil {
		return b.refusal(party, wait, fmt.Sprintf("does not hold the %s positions this preview reserves for the %s positions of the footprints it compiles and checks (all of them, or the burst when more), once its file is read; no item was checked", figure(held), figure(positions)))
	}
	b.limiter.charge(party, positions-held, time.Now())
	return nil
}

// refundUncheckedPreviewItems gives back to party's budget of preview
// items the items it overpaid, and to its budget of previewed footprints
// the positions of the items a preview stopped before (unchecked): a
// preview is charged for the items it checked (and its file's reading),
// and one cut short (its client gone, or its answer too large) was
// charged for all of them, the debt of a file beyond the burst included.
func (h *Handler) refundUncheckedPreviewItems(party string, overpaidItems int, unchecked []airspace.Item) {
	if len(unchecked) == 0 {
		return
	}
	now := time.Now()
	if overpaidItems > 0 {
		h.previews.limiter.refund(party, float64(overpaidItems), now)
	}
	if positions := previewPositions(unchecked); positions > 0 {
		h.previewPositions.limiter.refund(party, positions, now)
	}
}

// previewPositions are the positions of the footprints the items compile
// and check.
func previewPositions(items []airspace.Item) float64 {
	positions := 0
	for _, it := range items {
		if it.Err == nil {
			// One beyond the largest the rules allow is refused
			// once its positions are counted.
			positions += min(it.Input.Footprint.Positions(), rules.MaxVerticesBound+1)
		}
	}
	return float64(positions)
}

// previewItem is what the item it of the airspace a would become.
// The probe names the other parties' volumes hidden from p that the item
// shows (clipped).
func (h *Handler) previewItem(ctx context.Context, p party.Principal, format string, a airspace.Airspace, it airspace.Item) (pi previewItem, probe service.Probe, err error) {
	pi = previewItem{Index: it.Index, Line: it.Line, Name: it.Name}
	if format == "geojson" {
		f := it.Line
		pi.Line, pi.Feature = 0, &f
	}
	if it.Err != nil {
		pi.Status, pi.Reason = "refused", it.Err.Error()
		if le := (*airspace.LineError)(nil); errors.As(it.Err, &le) && le.Line > 0 {
			pi.Line = le.Line
		}
		return pi, probe, nil
	}
	in := it.Input
	pi.Input = &volumeWrite{Footprint: in.Footprint, AltLowerM: in.AltLowerM, AltUpperM: in.AltUpperM,
		Start: in.Start, End: in.End, Priority: in.Priority, State: in.State, Details: rawJSON(in.Details)}
	conflicts, probe, err := h.svc.PreviewVolume(p, in)
	var fe *fielderr.Error
	switch {
	case errors.As(err, &fe):
		pi.Status, pi.Reason, pi.Field = "refused", fe.Error(), fe.Field
		if advice := a.UnlimitedAdvice(in, h.svc.Rules().MaxAltRangeM); advice != "" && fe.Field == "alt_upper_m" {
			pi.Reason += ": " + advice
		}
		if format == "openair" {
			pi.Line = a.LineOf(fe.Field)
		}
	case err != nil:
		return pi, probe, err
	case len(conflicts) > 0:
		pi.Status, pi.Conf = "conflicting", conflicts
		pi.Alternatives, err = h.svc.VolumeAlternatives(ctx, p, "", in)
		if errors.Is(err, service.ErrAlternativesBudget) {
			pi.AlternativesOmitted, err = service.AlternativesOmittedBudget, nil
		}
		if err != nil {
			return pi, probe, err
		}
	default:
		pi.Status = "ok"
	}
	return pi, probe, nil
}

// rawJSON keeps details as JSON when re-encoded, nil when absent.
func rawJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// fileProblem is the 400 answer to an airspace file that cannot be read:
// field "file" with the line (OpenAir), or "features[i]" (GeoJSON).
func fileProblem(err error) *Problem {
	var le *airspace.LineError
	if errors.As(err, &le) {
		if le.Line == 0 && le.Feature >= 0 {
			return badRequest("features["+strconv.Itoa(le.Feature)+"]", err.Error())
		}
		p := badRequest("file", err.Error())
		p.Line = le.Line
		return p
	}
	return badRequest("file", err.Error())
}
