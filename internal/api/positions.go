package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/wiretime"
)

// Limits of the position intake. What a report itself may hold is the
// engine's rule (track.Report.Validate), checked here once at the edge.
const (
	MaxReportsPerRequest = 10_000
	// MaxFutureS and MaxAgeS bound a report's time against the wall clock.
	MaxFutureS = 10
	MaxAgeS    = 60
)

// positionReport is one report on the wire (docs/WIRE.md "Positions").
// has records which of the required numbers were present.
type positionReport struct {
	Aircraft    string
	Callsign    string
	Class       string
	Time        time.Time
	Lat         float64
	Lon         float64
	AltM        float64
	AltSource   string
	VelEastMps  float64
	VelNorthMps float64
	VelUpMps    float64
	has         presence
	// timeErr is why the time sent is refused (setTime), "" when it was
	// read or not sent.
	timeErr string
}

// setTime reads the report's time in the profile the service accepts
// (wiretime): a time Go's time.Parse reads but RFC 3339 does not write (a
// one-digit hour, a comma, an offset of +24:00) is this report's
// rejection naming time, not some instant nor a refusal of the whole
// batch.
func (r *positionReport) setTime(s string) {
	r.setParsed(wiretime.Parse("time", s))
}

// setTimeBytes is setTime of the bytes of a JSON string (the fast
// decoder's), read without a copy.
func (r *positionReport) setTimeBytes(b []byte) {
	r.setParsed(wiretime.ParseBytes("time", b))
}

func (r *positionReport) setParsed(t time.Time, err error) {
	if err != nil {
		r.Time, r.timeErr = time.Time{}, err.Error()
		return
	}
	r.Time, r.timeErr = t, ""
}

// presence is a set of the required numeric fields of a report: a missing
// latitude must not read as the equator.
type presence uint8

const (
	hasLat presence = 1 << iota
	hasLon
	hasAltM
)

// wireReport is a report as encoding/json decodes it (the general path):
// pointers tell a missing or null number from a zero.
type wireReport struct {
	Aircraft    string   `json:"aircraft"`
	Callsign    string   `json:"callsign"`
	Class       string   `json:"class"`
	Time        *string  `json:"time"`
	Lat         *float64 `json:"lat"`
	Lon         *float64 `json:"lon"`
	AltM        *float64 `json:"alt_m"`
	AltSource   string   `json:"alt_source"`
	VelEastMps  float64  `json:"vel_east_mps"`
	VelNorthMps float64  `json:"vel_north_mps"`
	VelUpMps    float64  `json:"vel_up_mps"`
}

type wireBatch struct {
	Reports []wireReport `json:"reports"`
}

func (w *wireReport) report() positionReport {
	r := positionReport{Aircraft: w.Aircraft, Callsign: w.Callsign, AltSource: w.AltSource, Class: w.Class,
		VelEastMps: w.VelEastMps, VelNorthMps: w.VelNorthMps, VelUpMps: w.VelUpMps}
	if w.Time != nil {
		r.setTime(*w.Time)
	}
	if w.Lat != nil {
		r.Lat, r.has = *w.Lat, r.has|hasLat
	}
	if w.Lon != nil {
		r.Lon, r.has = *w.Lon, r.has|hasLon
	}
	if w.AltM != nil {
		r.AltM, r.has = *w.AltM, r.has|hasAltM
	}
	return r
}

// decodeBatch decodes a position batch with encoding/json: unknown fields
// and trailing data are refused.
func decodeBatch(body []byte) ([]positionReport, error) {
	var in wireBatch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, jsonProblem(err)
	}
	if dec.More() {
		return nil, badRequest("", "trailing data after the JSON object")
	}
	out := make([]positionReport, len(in.Reports))
	for i := range in.Reports {
		out[i] = in.Reports[i].report()
	}
	return out, nil
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

// checkReport returns the report as the engine takes it, or why it cannot
// be accepted at now, naming the field: the required fields, the time
// against the wall clock, then the engine's own rule: the report's, and a
// class the rules know (absent: manned).
func checkReport(partyName string, r *positionReport, now time.Time, rl *rules.Rules) (track.Report, string) {
	switch {
	case r.has&hasLat == 0:
		return track.Report{}, "lat: required"
	case r.has&hasLon == 0:
		return track.Report{}, "lon: required"
	case r.has&hasAltM == 0:
		return track.Report{}, "alt_m: required"
	case r.timeErr != "":
		return track.Report{}, r.timeErr
	case r.Time.IsZero():
		return track.Report{}, "time: required (RFC 3339)"
	case r.Time.After(now.Add(MaxFutureS * time.Second)):
		return track.Report{}, fmt.Sprintf("time: more than %d s in the future", MaxFutureS)
	case r.Time.Before(now.Add(-MaxAgeS * time.Second)):
		return track.Report{}, fmt.Sprintf("time: more than %d s old", MaxAgeS)
	}
	tr := track.Report{Party: partyName, Aircraft: r.Aircraft, Callsign: r.Callsign, Class: r.Class, Time: r.Time,
		Pos: geo.LLA{LatDeg: r.Lat, LonDeg: r.Lon, AltM: r.AltM}, AltSource: r.AltSource,
		VelEastMps: r.VelEastMps, VelNorthMps: r.VelNorthMps, VelUpMps: r.VelUpMps}
	if tr.Class == "" {
		tr.Class = rules.ClassManned
	}
	if err := tr.Validate(); err != nil {
		return track.Report{}, err.Error()
	}
	if !rl.HasClass(tr.Class) {
		return track.Report{}, fmt.Sprintf("class: unknown class %q (the rules know %s)", tr.Class, strings.Join(rl.Classes, ", "))
	}
	return tr, ""
}

// checkReportTexts refuses the whole batch, naming the first field, when a
// report's aircraft id or callsign holds a control or invisible formatting
// character (package printable): such text is refused at the edge with a
// 400 and nothing of the batch is applied, whereas a report that breaks
// the engine's other rules (limits, time, a duplicate) is rejected alone.
func checkReportTexts(reports []positionReport) error {
	for i := range reports {
		for _, f := range [...]struct{ name, value string }{{"aircraft", reports[i].Aircraft}, {"callsign", reports[i].Callsign}} {
			if err := printable.Check(f.value); err != nil {
				field := fmt.Sprintf("reports[%d].%s", i, f.name)
				return badRequest(field, fmt.Sprintf("%s: %v; nothing of the batch was accepted", field, err))
			}
		}
	}
	return nil
}

// sighting is an aircraft at an instant: a batch holds at most one report
// of each.
type sighting struct {
	aircraft string
	unixNano int64
}

// decodePositions decodes a batch, or refuses the whole of it (400): not
// JSON of a batch, too many reports, or a text that is not printable.
func decodePositions(r io.Reader) ([]positionReport, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, jsonProblem(err)
	}
	reports, fast := decodeBatchFast(body)
	if !fast {
		// The fast path reads ASCII alone; encoding/json would read each
		// invalid byte as U+FFFD, a text other than the one sent.
		if !utf8.Valid(body) {
			return nil, invalidUTF8(body)
		}
		if reports, err = decodeBatch(body); err != nil {
			return nil, err
		}
	}
	if len(reports) > MaxReportsPerRequest {
		return nil, badRequest("reports", fmt.Sprintf("at most %d reports per request, got %d", MaxReportsPerRequest, len(reports)))
	}
	if err := checkReportTexts(reports); err != nil {
		return nil, err
	}
	return reports, nil
}

// invalidUTF8 refuses a batch that is not valid UTF-8, naming the member
// that holds an invalid byte in the first report with one (the first such
// in the order of their names), or the body when no report's member does
// (the byte is in a name or outside the reports, or the batch is no JSON).
func invalidUTF8(body []byte) error {
	var raw struct {
		Reports []map[string]json.RawMessage `json:"reports"`
	}
	if json.Unmarshal(body, &raw) == nil {
		for i, r := range raw.Reports {
			names := slices.Sorted(maps.Keys(r))
			for _, name := range names {
				if !utf8.Valid(r[name]) {
					field := fmt.Sprintf("reports[%d].%s", i, name)
					return badRequest(field, field+": not valid UTF-8; nothing of the batch was accepted")
				}
			}
		}
	}
	return badRequest("", "the body is not valid UTF-8; nothing of the batch was accepted")
}

// checkPositions splits a decoded batch into the reports to ingest and the
// rejections.
func checkPositions(reports []positionReport, partyName string, now time.Time, rl *rules.Rules) (ok []service.PositionReport, index []int, rejected []Rejection) {
	rejected = []Rejection{}
	ok = make([]service.PositionReport, 0, len(reports))
	index = make([]int, 0, len(reports))
	first := make(map[sighting]int, len(reports))
	for i := range reports {
		tr, why := checkReport(partyName, &reports[i], now, rl)
		if why == "" {
			key := sighting{tr.Aircraft, tr.Time.UnixNano()}
			if j, dup := first[key]; dup {
				why = fmt.Sprintf("time: reports[%d] is already of aircraft %q at this time (one report per aircraft and time)", j, tr.Aircraft)
			} else {
				first[key] = i
			}
		}
		if why != "" {
			rejected = append(rejected, Rejection{Index: i, Error: fmt.Sprintf("reports[%d].%s", i, why)})
			continue
		}
		ok = append(ok, service.PositionReport{
			Aircraft: tr.Aircraft, Callsign: tr.Callsign, Class: tr.Class, Time: tr.Time,
			LatDeg: tr.Pos.LatDeg, LonDeg: tr.Pos.LonDeg, AltM: tr.Pos.AltM, AltSource: tr.AltSource,
			VelEastMps: tr.VelEastMps, VelNorthMps: tr.VelNorthMps, VelUpMps: tr.VelUpMps,
		})
		index = append(index, i)
	}
	return ok, index, rejected
}

// newestReportTime is the latest time a report of the batch holds, and
// whether one holds a time: the age of a party's newest report is its
// feed's latency alone.
func newestReportTime(reports []positionReport) (time.Time, bool) {
	var newest time.Time
	for i := range reports {
		if r := &reports[i]; r.timeErr == "" && r.Time.After(newest) {
			newest = r.Time
		}
	}
	return newest, !newest.IsZero()
}

func (h *Handler) postPositions(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if p.Operator {
		return problem(http.StatusForbidden, "forbidden", "Forbidden", "the operator has no aircraft; post positions with a party's token")
	}
	rl := h.svc.Rules()
	reports, err := decodePositions(r.Body)
	if err != nil {
		return err
	}
	// Every report of the batch counts, those then rejected too:
	// checking them is work. What the reports accepted raise is never
	// held back: the budget is taken at intake only.
	reservationOf(r.Context()).settle(len(reports))
	// The batch is well formed: the statement of a signed batch (its nonce
	// and signature) is committed while its reports are checked (by a
	// goroutine that runs while this one waits for the commit), and the
	// batch is applied once the commit succeeded.
	var ok []service.PositionReport
	var index []int
	var rejected []Rejection
	now := h.svc.Now()
	// Before the reports are judged against the service's time: a service
	// whose time is an hour off refuses them all, and they tell it.
	if h.svc.ReportClockDue(p.Party, now) {
		if newest, found := newestReportTime(reports); found {
			h.svc.SampleReportTime(p.Party, newest, now)
		}
	}
	check := func() { ok, index, rejected = checkPositions(reports, p.Party, now, &rl) }
	ctx := r.Context()
	if service.Signed(ctx) {
		checked := make(chan struct{})
		go func() {
			defer close(checked)
			check()
		}()
		ctx, err = h.svc.CommitBatchStatement(ctx)
		<-checked
		if err != nil {
			return err
		}
	} else {
		check()
	}
	h.svc.Metrics().ReportsRejected.Add(float64(len(rejected)))
	// Every report left passed the engine's own rule above: the engine
	// takes the batch in one pass.
	n, beyond, err := h.svc.IngestPositions(ctx, p, ok)
	var re *service.ReportError
	if errors.As(err, &re) && re.Index >= 0 && re.Index < len(index) {
		h.log.Error("the engine refused a report the edge accepted", "report", index[re.Index], "err", re.Msg)
		return badRequest(fmt.Sprintf("reports[%d]", index[re.Index]), re.Error())
	}
	if err != nil {
		return err
	}
	if len(beyond) > 0 {
		h.svc.Metrics().ReportsOverAircraftLimit.Add(float64(len(beyond)))
		for _, i := range beyond {
			rejected = append(rejected, Rejection{Index: index[i], Error: fmt.Sprintf(
				"reports[%d].aircraft: a new aircraft beyond the %d live ones this party may have (the lower of the rules' max_aircraft for it and the server's --max-aircraft-per-party); it is accepted once one of them has gone %g s without a report (stale_after_s)",
				index[i], h.svc.MaxAircraftFor(p.Party), rl.StaleAfterS)})
		}
		slices.SortFunc(rejected, func(a, b Rejection) int { return a.Index - b.Index })
	}
	return writeJSON(w, http.StatusAccepted, positionsAnswer{Accepted: n, Rejected: rejected})
}
