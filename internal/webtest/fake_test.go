package webtest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeAPI implements the wire shapes of docs/WIRE.md that the console uses,
// for two parties, with the pair math reduced to straight lines in a flat
// local frame. It stands in for the real service so that the page can be
// tested in a browser on its own; the real server is used when it exists
// (see backend_test.go).
type fakeAPI struct {
	mu       sync.Mutex
	tokens   map[string]string // token -> party
	rules    fakeRules
	tracks   map[string]map[string]any // party/aircraft -> track
	volumes  []map[string]any
	alerts   map[string]map[string]any // alert id -> alert
	pairs    map[string]string         // "a|b" aircraft key pair -> alert id
	messages map[string]map[string]any
	order    []string // message ids in creation order
	events   []fakeEvent
	notify   chan struct{} // closed and replaced on every event
	nextID   int
}

type fakeRules struct {
	Version        int     `json:"version"`
	HorizontalSepM float64 `json:"horizontal_sep_m"`
	VerticalSepM   float64 `json:"vertical_sep_m"`
	LookaheadS     float64 `json:"lookahead_s"`
	AckDeadlineS   float64 `json:"ack_deadline_s"`
	EscalationS    float64 `json:"escalation_deadline_s"`
	StaleAfterS    float64 `json:"stale_after_s"`
}

type fakeEvent struct {
	id       int
	kind     string
	time     time.Time
	data     map[string]any
	audience []string
}

func newFakeAPI(tokens map[string]string) *fakeAPI {
	return &fakeAPI{
		tokens:   tokens,
		rules:    fakeRules{Version: 3, HorizontalSepM: 9260, VerticalSepM: 304.8, LookaheadS: 300, AckDeadlineS: 120, EscalationS: 120, StaleAfterS: 30},
		tracks:   map[string]map[string]any{},
		alerts:   map[string]map[string]any{},
		pairs:    map[string]string{},
		messages: map[string]map[string]any{},
		notify:   make(chan struct{}),
	}
}

func (f *fakeAPI) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/me", f.auth(func(w http.ResponseWriter, r *http.Request, party string) {
		writeJSON(w, 200, map[string]any{"party": party, "operator": false})
	}))
	mux.HandleFunc("GET /v1/rules", f.auth(func(w http.ResponseWriter, r *http.Request, party string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, f.rules)
	}))
	mux.HandleFunc("GET /v1/tracks", f.auth(f.getTracks))
	mux.HandleFunc("POST /v1/positions", f.auth(f.postPositions))
	mux.HandleFunc("GET /v1/volumes", f.auth(f.getVolumes))
	mux.HandleFunc("POST /v1/volumes", f.auth(f.postVolume))
	mux.HandleFunc("GET /v1/alerts", f.auth(f.getAlerts))
	mux.HandleFunc("GET /v1/hotline/messages", f.auth(f.getMessages))
	mux.HandleFunc("POST /v1/hotline/messages", f.auth(f.postMessage))
	mux.HandleFunc("POST /v1/hotline/messages/{id}/ack", f.auth(f.postAck))
	mux.HandleFunc("GET /v1/events", f.auth(f.getEvents))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func problem(w http.ResponseWriter, status int, field, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "https://deconflict.dev/problems/fake", "title": http.StatusText(status), "status": status, "detail": detail, "field": field})
}

func (f *fakeAPI) auth(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		party := f.tokens[tok]
		if !ok || party == "" {
			problem(w, 401, "", "missing or unknown token")
			return
		}
		h(w, r, party)
	}
}

// publish records an event; the caller holds f.mu.
func (f *fakeAPI) publish(kind string, data map[string]any, audience ...string) {
	f.events = append(f.events, fakeEvent{id: len(f.events) + 1, kind: kind, time: time.Now().UTC(), data: clone(data), audience: audience})
	close(f.notify)
	f.notify = make(chan struct{})
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

func (f *fakeAPI) id(prefix string) string {
	f.nextID++
	return fmt.Sprintf("%s-%d", prefix, f.nextID)
}

func (f *fakeAPI) getTracks(w http.ResponseWriter, r *http.Request, party string) {
	parts := strings.Split(r.URL.Query().Get("bbox"), ",")
	if len(parts) != 4 {
		problem(w, 400, "bbox", "want minLon,minLat,maxLon,maxLat")
		return
	}
	var bb [4]float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil {
			problem(w, 400, "bbox", err.Error())
			return
		}
		bb[i] = v
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	list := make([]map[string]any, 0, len(f.tracks))
	for _, t := range f.tracks {
		lon, lat := t["lon"].(float64), t["lat"].(float64)
		if lon >= bb[0] && lon <= bb[2] && lat >= bb[1] && lat <= bb[3] {
			list = append(list, t)
		}
	}
	writeJSON(w, 200, map[string]any{"tracks": list})
}

type fakeReport struct {
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

func (f *fakeAPI) postPositions(w http.ResponseWriter, r *http.Request, party string) {
	var body struct {
		Reports []fakeReport `json:"reports"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		problem(w, 400, "reports", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rep := range body.Reports {
		f.tracks[party+"/"+rep.Aircraft] = map[string]any{
			"party": party, "aircraft": rep.Aircraft, "callsign": rep.Callsign, "time": rep.Time.UTC().Format(time.RFC3339Nano),
			"lat": rep.Lat, "lon": rep.Lon, "alt_m": rep.AltM,
			"vel_east_mps": rep.VelEastMps, "vel_north_mps": rep.VelNorthMps, "vel_up_mps": rep.VelUpMps,
		}
	}
	// Only the pairs that involve a reported aircraft can change.
	for _, rep := range body.Reports {
		a := f.tracks[party+"/"+rep.Aircraft]
		for key, b := range f.tracks {
			if b["party"] != party {
				f.detect(a, b, party+"/"+rep.Aircraft, key)
			}
		}
	}
	writeJSON(w, 202, map[string]any{"accepted": len(body.Reports), "rejected": []any{}})
}

// detect raises or updates the alert of one pair of aircraft of different
// parties: straight-line motion in a flat frame around the first aircraft.
func (f *fakeAPI) detect(a, b map[string]any, ka, kb string) {
	num := func(m map[string]any, k string) float64 { return m[k].(float64) }
	lat0 := num(a, "lat")
	const mPerDeg = 111320.0
	px := (num(b, "lon") - num(a, "lon")) * mPerDeg * math.Cos(lat0*math.Pi/180)
	py := (num(b, "lat") - lat0) * mPerDeg
	pz := num(b, "alt_m") - num(a, "alt_m")
	vx := num(b, "vel_east_mps") - num(a, "vel_east_mps")
	vy := num(b, "vel_north_mps") - num(a, "vel_north_mps")
	vz := num(b, "vel_up_mps") - num(a, "vel_up_mps")
	tCPA := 0.0
	if v2 := vx*vx + vy*vy; v2 > 0 {
		tCPA = math.Max(0, -(px*vx+py*vy)/v2)
	}
	// Loss of separation: the first time both distances are inside the
	// minima, found by stepping a second at a time (the fake needs no more).
	tIn := -1.0
	for t := 0.0; t <= f.rules.LookaheadS; t++ {
		if math.Hypot(px+vx*t, py+vy*t) < f.rules.HorizontalSepM && math.Abs(pz+vz*t) < f.rules.VerticalSepM {
			tIn = t
			break
		}
	}
	pair := ka + "|" + kb
	if ka > kb {
		pair = kb + "|" + ka
	}
	id, open := f.pairs[pair]
	parties := []string{a["party"].(string), b["party"].(string)}
	if tIn < 0 {
		if open {
			al := f.alerts[id]
			al["state"], al["reason"] = "cleared", "resolved"
			delete(f.pairs, pair)
			delete(f.alerts, id)
			f.publish("alert_cleared", al, parties...)
		}
		return
	}
	lvl := "advisory"
	if tIn <= 60 {
		lvl = "warning"
	} else if tIn <= 120 {
		lvl = "caution"
	}
	ac := func(m map[string]any) map[string]any {
		return map[string]any{"party": m["party"], "aircraft": m["aircraft"], "callsign": m["callsign"], "lat": m["lat"], "lon": m["lon"], "alt_m": m["alt_m"], "vel_east_mps": m["vel_east_mps"], "vel_north_mps": m["vel_north_mps"], "vel_up_mps": m["vel_up_mps"]}
	}
	kind := "alert_updated"
	if !open {
		id = f.id("alert")
		f.pairs[pair] = id
		kind = "alert_raised"
	}
	al := map[string]any{
		"id": id, "kind": "conflict", "level": lvl, "state": strings.TrimPrefix(kind, "alert_"), "reason": "",
		"time": time.Now().UTC().Format(time.RFC3339Nano), "t_in_s": tIn, "t_out_s": tIn + 60, "t_cpa_s": tCPA,
		"d_h_cpa_m": math.Hypot(px+vx*tCPA, py+vy*tCPA), "d_v_cpa_m": math.Abs(pz + vz*tCPA),
		"aircraft": []any{ac(a), ac(b)}, "volumes": []any{},
	}
	f.alerts[id] = al
	f.publish(kind, al, parties...)
	if !open {
		now := time.Now().UTC()
		m := clone(map[string]any{
			"id": f.id("msg"), "from": "deconflict", "to": parties, "thread": id, "kind": "alert",
			"text": fmt.Sprintf("%s conflict %s / %s", lvl, a["callsign"], b["callsign"]),
			"ref":  map[string]any{"alert_id": id}, "created": now.Format(time.RFC3339Nano),
			"deadline":            now.Add(time.Duration(f.rules.AckDeadlineS) * time.Second).Format(time.RFC3339Nano),
			"escalation_deadline": now.Add(time.Duration(f.rules.AckDeadlineS+f.rules.EscalationS) * time.Second).Format(time.RFC3339Nano),
			"state":               "open", "acks": []any{},
		})
		f.messages[m["id"].(string)] = m
		f.order = append(f.order, m["id"].(string))
		f.publish("message", m, parties...)
	}
}

// reduced is a volume as another party sees it: without its details.
func reduced(v map[string]any, party string) map[string]any {
	out := clone(v)
	if v["party"] != party {
		delete(out, "details")
	}
	return out
}

func (f *fakeAPI) getVolumes(w http.ResponseWriter, r *http.Request, party string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []map[string]any{}
	for _, v := range f.volumes {
		list = append(list, reduced(v, party))
	}
	writeJSON(w, 200, map[string]any{"volumes": list})
}

func (f *fakeAPI) postVolume(w http.ResponseWriter, r *http.Request, party string) {
	var v map[string]any
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		problem(w, 400, "", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v["id"], v["party"], v["version"], v["conflicts"] = f.id("vol"), party, "1", []any{}
	f.volumes = append(f.volumes, v)
	f.publish("volume_changed", v, party)
	writeJSON(w, 201, v)
}

func (f *fakeAPI) getAlerts(w http.ResponseWriter, r *http.Request, party string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []map[string]any{}
	for _, a := range f.alerts {
		for _, ac := range a["aircraft"].([]any) {
			if ac.(map[string]any)["party"] == party {
				list = append(list, a)
				break
			}
		}
	}
	writeJSON(w, 200, map[string]any{"alerts": list})
}

func concerns(m map[string]any, party string) bool {
	if m["from"] == party {
		return true
	}
	for _, p := range m["to"].([]any) {
		if p == party {
			return true
		}
	}
	return false
}

func (f *fakeAPI) getMessages(w http.ResponseWriter, r *http.Request, party string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []map[string]any{}
	for _, id := range f.order {
		if m := clone(f.messages[id]); concerns(m, party) {
			list = append(list, m)
		}
	}
	writeJSON(w, 200, map[string]any{"messages": list})
}

func (f *fakeAPI) postMessage(w http.ResponseWriter, r *http.Request, party string) {
	var in struct {
		To     []string       `json:"to"`
		Kind   string         `json:"kind"`
		Thread string         `json:"thread"`
		Text   string         `json:"text"`
		Ref    map[string]any `json:"ref"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		problem(w, 400, "", err.Error())
		return
	}
	if len(in.To) == 0 {
		problem(w, 400, "to", "at least one recipient")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().UTC()
	m := clone(map[string]any{
		"id": f.id("msg"), "from": party, "to": in.To, "thread": in.Thread, "kind": in.Kind, "text": in.Text, "ref": in.Ref,
		"created":             now.Format(time.RFC3339Nano),
		"deadline":            now.Add(time.Duration(f.rules.AckDeadlineS) * time.Second).Format(time.RFC3339Nano),
		"escalation_deadline": now.Add(time.Duration(f.rules.AckDeadlineS+f.rules.EscalationS) * time.Second).Format(time.RFC3339Nano),
		"state":               "open", "acks": []any{},
	})
	f.messages[m["id"].(string)] = m
	f.order = append(f.order, m["id"].(string))
	f.publish("message", m, append([]string{party}, in.To...)...)
	writeJSON(w, 201, m)
}

func (f *fakeAPI) postAck(w http.ResponseWriter, r *http.Request, party string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.messages[r.PathValue("id")]
	if !ok || !concerns(m, party) {
		problem(w, 404, "id", "no such message")
		return
	}
	acks := m["acks"].([]any)
	for _, a := range acks {
		if a.(map[string]any)["party"] == party {
			writeJSON(w, 200, m)
			return
		}
	}
	m["acks"] = append(acks, map[string]any{"party": party, "time": time.Now().UTC().Format(time.RFC3339Nano), "reply": ""})
	if len(m["acks"].([]any)) == len(m["to"].([]any)) {
		m["state"] = "acknowledged"
	}
	aud := []string{}
	if from, ok := m["from"].(string); ok && from != "deconflict" {
		aud = append(aud, from)
	}
	for _, p := range m["to"].([]any) {
		aud = append(aud, p.(string))
	}
	f.publish("ack", m, aud...)
	writeJSON(w, 200, m)
}

func (f *fakeAPI) getEvents(w http.ResponseWriter, r *http.Request, party string) {
	f.mu.Lock()
	after := len(f.events)
	f.mu.Unlock()
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problem(w, 400, "Last-Event-ID", "must be a non-negative event id")
			return
		}
		after = n
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(200)
	fmt.Fprint(w, ": stream of "+party+"\nretry: 500\n\n")
	rc.Flush()
	for {
		f.mu.Lock()
		pending := f.events[min(after, len(f.events)):]
		wait := f.notify
		f.mu.Unlock()
		for _, e := range pending {
			after = e.id
			if !slices.Contains(e.audience, party) {
				continue
			}
			data := e.data
			if e.kind == "volume_changed" {
				data = reduced(data, party)
			}
			b, _ := json.Marshal(map[string]any{"id": e.id, "kind": e.kind, "time": e.time, "data": data})
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.id, e.kind, b); err != nil {
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-wait:
		}
	}
}
