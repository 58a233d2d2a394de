package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
)

// Limits of the position intake.
const (
	MaxReportsPerRequest = 10_000
	// MaxFutureS and MaxAgeS bound a report's time against the wall clock.
	MaxFutureS = 10
	MaxAgeS    = 60
	// Bounds that no real aircraft exceeds; beyond them a report is garbage.
	minAltM      = -1_000
	maxAltM      = 40_000
	maxSpeedMps  = 3_000
	maxIDLength  = 64
	maxCallsignL = 16
)

// positionReport is one report on the wire (docs/WIRE.md "Positions").
type positionReport struct {
	Aircraft    string    `json:"aircraft"`
	Callsign    string    `json:"callsign"`
	Time        time.Time `json:"time"`
	Lat         float64   `json:"lat"`
	Lon         float64   `json:"lon"`
	AltM        float64   `json:"alt_m"`
	VelEastMps  float64   `json:"vel_east_mps"`
	VelNorthMps float64   `json:"vel_north_mps"`
	VelUpMps    float64   `json:"vel_up_mps"`
}

type positionBatch struct {
	Reports []positionReport `json:"reports"`
}

// Rejection is one refused report of a batch.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

type positionsAnswer struct {
	Accepted int         `json:"accepted"`
	Rejected []Rejection `json:"rejected"`
}

// checkReport returns why r cannot be accepted at now, naming the field.
func checkReport(r *positionReport, now time.Time) string {
	switch {
	case r.Aircraft == "":
		return "aircraft: must not be empty"
	case len(r.Aircraft) > maxIDLength:
		return fmt.Sprintf("aircraft: at most %d bytes", maxIDLength)
	case len(r.Callsign) > maxCallsignL:
		return fmt.Sprintf("callsign: at most %d bytes", maxCallsignL)
	case r.Time.IsZero():
		return "time: missing (RFC 3339)"
	case r.Time.After(now.Add(MaxFutureS * time.Second)):
		return fmt.Sprintf("time: more than %d s in the future", MaxFutureS)
	case r.Time.Before(now.Add(-MaxAgeS * time.Second)):
		return fmt.Sprintf("time: more than %d s old", MaxAgeS)
	case !finite(r.Lat) || r.Lat < -90 || r.Lat > 90:
		return "lat: must be within [-90, 90]"
	case !finite(r.Lon) || r.Lon < -180 || r.Lon > 180:
		return "lon: must be within [-180, 180]"
	case !finite(r.AltM) || r.AltM < minAltM || r.AltM > maxAltM:
		return fmt.Sprintf("alt_m: must be within [%d, %d]", minAltM, maxAltM)
	}
	for _, v := range []struct {
		name string
		mps  float64
	}{{"vel_east_mps", r.VelEastMps}, {"vel_north_mps", r.VelNorthMps}, {"vel_up_mps", r.VelUpMps}} {
		if !finite(v.mps) || math.Abs(v.mps) > maxSpeedMps {
			return fmt.Sprintf("%s: must be within [-%d, %d]", v.name, maxSpeedMps, maxSpeedMps)
		}
	}
	return ""
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// parsePositions decodes a batch and splits it into the reports to ingest
// and the rejections, each naming the report's index and field.
func parsePositions(r io.Reader, now time.Time) ([]service.PositionReport, []int, []Rejection, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, nil, jsonProblem(err)
	}
	var in positionBatch
	if reports, ok := decodeBatchFast(body); ok {
		in.Reports = reports
	} else {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return nil, nil, nil, jsonProblem(err)
		}
		if dec.More() {
			return nil, nil, nil, badRequest("", "trailing data after the JSON object")
		}
	}
	if len(in.Reports) > MaxReportsPerRequest {
		return nil, nil, nil, badRequest("reports", fmt.Sprintf("at most %d reports per request, got %d", MaxReportsPerRequest, len(in.Reports)))
	}
	rejected := []Rejection{}
	ok := make([]service.PositionReport, 0, len(in.Reports))
	index := make([]int, 0, len(in.Reports))
	for i := range in.Reports {
		rep := &in.Reports[i]
		if why := checkReport(rep, now); why != "" {
			rejected = append(rejected, Rejection{Index: i, Error: fmt.Sprintf("reports[%d].%s", i, why)})
			continue
		}
		ok = append(ok, service.PositionReport{
			Aircraft: rep.Aircraft, Callsign: rep.Callsign, Time: rep.Time,
			LatDeg: rep.Lat, LonDeg: rep.Lon, AltM: rep.AltM,
			VelEastMps: rep.VelEastMps, VelNorthMps: rep.VelNorthMps, VelUpMps: rep.VelUpMps,
		})
		index = append(index, i)
	}
	return ok, index, rejected, nil
}

func (h *Handler) postPositions(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if p.Operator {
		return problem(http.StatusForbidden, "forbidden", "Forbidden", "the operator has no aircraft; post positions with a party's token")
	}
	ok, index, rejected, err := parsePositions(r.Body, h.svc.Now())
	if err != nil {
		return err
	}
	// The engine refuses a batch whole for a report it cannot use; such a
	// report is rejected alone and the rest ingested.
	var n int
	for {
		n, err = h.svc.IngestPositions(r.Context(), p, ok)
		var re *service.ReportError
		if !errors.As(err, &re) || re.Index < 0 || re.Index >= len(ok) {
			break
		}
		rejected = append(rejected, Rejection{Index: index[re.Index], Error: fmt.Sprintf("reports[%d].%s", index[re.Index], re.Msg)})
		ok = slices.Delete(ok, re.Index, re.Index+1)
		index = slices.Delete(index, re.Index, re.Index+1)
	}
	if err != nil {
		return err
	}
	slices.SortFunc(rejected, func(a, b Rejection) int { return a.Index - b.Index })
	return writeJSON(w, http.StatusAccepted, positionsAnswer{Accepted: n, Rejected: rejected})
}
