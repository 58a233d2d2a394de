// Package timeline owns the account of one alert or one hotline thread
// that a person reads after the fact, where an investigation starts: built
// from an audit export (only the records its viewer may read), step by
// step, who said what when, the alert's levels, acknowledgments (in time
// or late, with their replies) and escalations, each step with the map of
// the aircraft and volumes as the record showed them then; written as one
// self-contained HTML page (html.go) that needs no script, no network and
// no other file.
//
// It reads what the service writes (package audit's export, the alert
// transitions of package alert, the hotline records of package hotline,
// the volume records of package service); it verifies nothing itself:
// `deconflict audit timeline --key` verifies the export first.
package timeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/lineend"
	"github.com/deconflict/deconflict/internal/volume"
)

// maxLineBytes bounds one line of an export (a record with its details).
const maxLineBytes = 64 << 20

// Export is what an audit export shows its viewer.
type Export struct {
	// Viewer is the party the export was cut for ("" for the operator's).
	Viewer string
	// Records are the readable records, in seq order.
	Records []audit.Record
	// Hidden counts the records shown by their commitment only.
	Hidden int
	// HeadTime is when the export was signed (zero without a head).
	HeadTime time.Time

	// Indexes into Records.
	alerts   map[string][]int // alert id -> its transitions
	messages map[string]*message
	threads  map[string][]*message // in order of posting
	msgRecs  map[string][]int      // message id -> its posting, acknowledgments, escalations
	volumes  map[string][]int      // volume id -> its records
}

// message is a hotline item as its records tell it.
type message struct {
	seq                int64
	ID                 string          `json:"id"`
	From               string          `json:"from"`
	To                 []string        `json:"to"`
	Thread             string          `json:"thread"`
	Kind               string          `json:"kind"`
	Level              string          `json:"level"`
	Created            time.Time       `json:"created"`
	Deadline           time.Time       `json:"deadline"`
	EscalationDeadline time.Time       `json:"escalation_deadline"`
	Text               json.RawMessage `json:"text"`
	Ref                *struct {
		AlertID  string `json:"alert_id"`
		VolumeID string `json:"volume_id"`
	} `json:"ref"`
	text string // the text in clear, or a note that it is sealed
}

// ackContent is a message_acked record.
type ackContent struct {
	ID    string          `json:"id"`
	Party string          `json:"party"`
	State string          `json:"state"`
	Late  bool            `json:"late"`
	Reply json.RawMessage `json:"reply"`
}

// escalationContent is a message_escalated record.
type escalationContent struct {
	ID                 string    `json:"id"`
	Escalations        int       `json:"escalations"`
	DeadlinePassed     time.Time `json:"deadline_passed"`
	EscalationDeadline time.Time `json:"escalation_deadline"`
	Unacknowledged     []string  `json:"unacknowledged"`
}

// settleContent is a message_settled record: the proposal of the rules
// an item asked about closed, and the item became acknowledged without
// the recipients that had not acknowledged it (Unanswered; Revoked, those
// of them revoked). A record of an older version names only Revoked,
// which were then all of them.
type settleContent struct {
	ID         string   `json:"id"`
	Unanswered []string `json:"unanswered"`
	Revoked    []string `json:"revoked"`
	Reason     string   `json:"reason"`
}

// rescheduleContent is a message_rescheduled record: the item's running
// deadline lay further ahead than the rules set one (a clock stepped
// back), and the escalation job brought it back.
type rescheduleContent struct {
	ID          string    `json:"id"`
	State       string    `json:"state"`
	DeadlineWas time.Time `json:"deadline_was"`
	Deadline    time.Time `json:"deadline"`
	Reason      string    `json:"reason"`
}

// volumeContent is the record of a volume write: the volume, and the
// other parties' volumes it conflicts with that the export's viewer may
// read of.
type volumeContent struct {
	Volume    volume.Volume
	Conflicts []volume.Ref
}

// volumeOf reads the record of a volume write. Under need to know each
// conflict is sealed for the writer and the other volume's owner: an
// export reveals those its viewer may read, and the others are left out.
func volumeOf(r audit.Record) (volumeContent, error) {
	var raw struct {
		Volume    volume.Volume     `json:"volume"`
		Conflicts []json.RawMessage `json:"conflicts"`
	}
	if err := json.Unmarshal(r.Content, &raw); err != nil {
		return volumeContent{}, err
	}
	v := volumeContent{Volume: raw.Volume}
	for _, c := range raw.Conflicts {
		var ref volume.Ref
		if revealed(r, c, &ref) && ref.ID != "" {
			v.Conflicts = append(v.Conflicts, ref)
		}
	}
	return v, nil
}

// revealed decodes raw into out: as it is, or, when raw is a sealed
// value, its details if the export reveals them to its viewer (false
// when it does not).
func revealed(r audit.Record, raw json.RawMessage, out any) bool {
	sha, ok := sealedHash(raw)
	if !ok {
		return json.Unmarshal(raw, out) == nil
	}
	for _, rv := range r.Sealed {
		if rv.SHA256 == sha && json.Unmarshal(rv.Details, out) == nil {
			return true
		}
	}
	return false
}

// Read parses an export (the JSON lines of `deconflict audit export` or
// GET /v1/audit) and indexes what a timeline is made of. It holds every
// readable record: for an export of any size, Scan it first and read the
// records of one subject with ReadSubject.
func Read(r io.Reader) (*Export, error) {
	e, err := read(r, nil)
	if err != nil {
		return nil, err
	}
	if len(e.Records) == 0 && e.Hidden == 0 {
		return nil, errNoRecord
	}
	return e, nil
}

var errNoRecord = errors.New("no audit record in the export")

func newExport() *Export {
	return &Export{alerts: map[string][]int{}, messages: map[string]*message{}, threads: map[string][]*message{},
		msgRecs: map[string][]int{}, volumes: map[string][]int{}}
}

// read is Read keeping only the records keep accepts (every one when keep
// is nil); every record is parsed, so that an export is refused for the
// same fault at the same line whatever is kept.
func read(r io.Reader, keep func(*entry) bool) (*Export, error) {
	e := newExport()
	h, err := scanEntries(r, func(en *entry) {
		if keep == nil || keep(en) {
			e.add(en)
		}
	})
	if err != nil {
		return nil, err
	}
	e.Viewer, e.HeadTime, e.Hidden = h.Viewer, h.HeadTime, h.Hidden
	return e, nil
}

// scan calls fn with each line of an export and its number, one line in
// memory at a time.
func scan(r io.Reader, fn func(n int, line audit.Line) error) error {
	// An export saved with CR-only line endings read as one line, refused
	// as not canonical or too long, with no hint why.
	r, crOnly := lineend.Peek(r)
	if crOnly {
		return fmt.Errorf("line 1: %w", lineend.ErrCROnly)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		if len(sc.Bytes()) == 0 {
			continue
		}
		line, err := audit.ParseLine(sc.Bytes())
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes", n+1, maxLineBytes)
		}
		return fmt.Errorf("reading line %d: %w", n+1, err)
	}
	return nil
}

// entry is a readable record and what a timeline reads of it.
type entry struct {
	rec audit.Record
	// alert is the alert of an alert_ record.
	alert *alert.Alert
	// msg is the item of a message_posted record.
	msg *message
	// msgID is the item a message_ record is about (posting included).
	msgID string
	// vol is the volume of a volume write.
	vol *volumeContent
}

// readEntry parses what a timeline reads of a record.
func readEntry(r audit.Record) (entry, error) {
	en := entry{rec: r}
	switch {
	case strings.HasPrefix(r.Kind, "alert_"):
		var a alert.Alert
		if err := json.Unmarshal(r.Content, &a); err != nil {
			return en, fmt.Errorf("%s: %w", r.Kind, err)
		}
		en.alert = &a
	case r.Kind == "message_posted":
		m := &message{seq: r.Seq}
		if err := json.Unmarshal(r.Content, m); err != nil {
			return en, fmt.Errorf("%s: %w", r.Kind, err)
		}
		m.text = clear(r, m.Text)
		en.msg, en.msgID = m, m.ID
	case isMessageEvent(r.Kind):
		var ref struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(r.Content, &ref); err != nil {
			return en, fmt.Errorf("%s: %w", r.Kind, err)
		}
		en.msgID = ref.ID
	case isVolumeWrite(r.Kind):
		v, err := volumeOf(r)
		if err != nil {
			return en, fmt.Errorf("%s: %w", r.Kind, err)
		}
		en.vol = &v
	}
	return en, nil
}

// isMessageEvent is true of the records about a posted item.
func isMessageEvent(kind string) bool {
	return kind == "message_acked" || kind == "message_escalated" || kind == "message_rescheduled" || kind == "message_settled"
}

// isVolumeWrite is true of the records of a volume's states. A flag and a
// conflict brought by a rules change name volumes without being one of
// their states.
func isVolumeWrite(kind string) bool {
	return strings.HasPrefix(kind, "volume_") && kind != "volume_flagged" && kind != "volume_conflict"
}

func (e *Export) add(en *entry) {
	i := len(e.Records)
	e.Records = append(e.Records, en.rec)
	switch {
	case en.alert != nil:
		e.alerts[en.alert.ID] = append(e.alerts[en.alert.ID], i)
	case en.msg != nil:
		m := en.msg
		e.messages[m.ID] = m
		e.threads[m.Thread] = append(e.threads[m.Thread], m)
		e.msgRecs[m.ID] = append(e.msgRecs[m.ID], i)
	case isMessageEvent(en.rec.Kind):
		e.msgRecs[en.msgID] = append(e.msgRecs[en.msgID], i)
	case en.vol != nil:
		e.volumes[en.vol.Volume.ID] = append(e.volumes[en.vol.Volume.ID], i)
	}
}

// clear is a text of a record in clear: as it is, or the sealed details
// its viewer may read, or a note saying it is sealed.
func clear(r audit.Record, raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if revealed(r, raw, &s) {
		return s
	}
	if sha, ok := sealedHash(raw); ok {
		return "(sealed: this export's viewer may not read it; SHA-256 " + excerpt(sha, 17) + ")"
	}
	return string(raw)
}

// sealedHash is the hash of the sealed value raw references (false when
// raw is not one).
func sealedHash(raw json.RawMessage) (string, bool) {
	var sealed struct {
		Sealed struct {
			SHA256 string `json:"sha256"`
		} `json:"sealed"`
	}
	if json.Unmarshal(raw, &sealed) != nil || sealed.Sealed.SHA256 == "" {
		return "", false
	}
	return sealed.Sealed.SHA256, true
}

// Subject is what a timeline can be about: an alert (with its hotline
// thread) or another thread.
type Subject struct {
	// Kind is "alert" or "thread".
	Kind string
	// ID is the alert's id, or the thread's name.
	ID string
	// Name says what it is about for people.
	Name        string
	First, Last time.Time
	Steps       int
	Escalations int
	// Level is the highest alert level reached ("" when none).
	Level string
}

const alertThreadPrefix = "alert:"

// Subjects lists every alert and every thread other than an alert's, in
// order of their first record.
func (e *Export) Subjects() []Subject { return listSubjects(e) }

func (e *Export) subject(kind, id string) Subject {
	s := Subject{Kind: kind, ID: id, Name: e.name(kind, id)}
	for _, st := range e.steps(kind, id) {
		if s.First.IsZero() {
			s.First = st.Time
		}
		s.Last = st.Time
		s.Steps++
		if st.Kind == "escalation" {
			s.Escalations++
		}
		if levelRank(st.Level) > levelRank(s.Level) {
			s.Level = st.Level
		}
	}
	return s
}

// levelRank orders the alert levels of the default rules; others rank 0.
func levelRank(l string) int {
	return map[string]int{"advisory": 1, "caution": 2, "warning": 3}[l]
}

// Pick finds the subject named by an alert id or a thread (at most one of
// them), or with neither the one an investigation would start from: the
// one that escalated most, then the one that reached the highest level,
// then the one with most steps, then the earliest.
func (e *Export) Pick(alertID, thread string) (Subject, error) {
	return pickSubject(e, alertID, thread)
}

// pickBest is the subject an investigation would start from: the one
// that escalated most, then the one that reached the highest level, then
// the one with most steps, then the earliest.
func pickBest(all []Subject) (Subject, error) {
	if len(all) == 0 {
		return Subject{}, errors.New("the export holds no alert and no hotline thread its viewer may read")
	}
	best := all[0]
	for _, s := range all[1:] {
		switch {
		case s.Escalations != best.Escalations:
			if s.Escalations > best.Escalations {
				best = s
			}
		case levelRank(s.Level) != levelRank(best.Level):
			if levelRank(s.Level) > levelRank(best.Level) {
				best = s
			}
		case s.Steps > best.Steps:
			best = s
		}
	}
	return best, nil
}

// name says what an alert or a thread is about (subjectName).
func (e *Export) name(kind, id string) string { return subjectName(e, kind, id) }

// volumeAt is the latest record of volume id at or before seq.
func (e *Export) volumeAt(id string, seq int64) (volumeContent, bool) {
	var out volumeContent
	found := false
	for _, i := range e.volumes[id] {
		r := e.Records[i]
		if r.Seq > seq {
			break
		}
		if v, err := volumeOf(r); err == nil {
			out, found = v, true
		}
	}
	return out, found
}

// aircraftName is an aircraft as people call it: "VIPER9 (coalition)".
func aircraftName(ac alert.Aircraft) string {
	n := ac.Callsign
	if n == "" {
		n = ac.Aircraft
	}
	return fmt.Sprintf("%s (%s)", n, ac.Party)
}

// VolumeName is a volume as people call it: its party, altitude band and
// window, "coalition FL220–FL240 06:00–08:00Z".
func VolumeName(v volume.Volume) string {
	return fmt.Sprintf("%s %s %s", v.Party, bandText(v.AltLowerM, v.AltUpperM), windowText(v.Start, v.End))
}

func flText(altM float64) string {
	return fmt.Sprintf("FL%03.0f", geo.MToFlightLevel(altM))
}

func bandText(lowerM, upperM float64) string {
	return flText(lowerM) + "–" + flText(upperM)
}

// windowText is a window in UTC, "06:00–08:00Z", with "+1" when it ends
// the next day.
func windowText(start, end time.Time) string {
	start, end = start.UTC(), end.UTC()
	days := int(end.Truncate(24*time.Hour).Sub(start.Truncate(24*time.Hour)).Hours() / 24)
	s := start.Format("15:04") + "–" + end.Format("15:04") + "Z"
	if days > 0 {
		s += fmt.Sprintf("+%d", days)
	}
	return s
}

func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return strings.TrimSpace(string(r[:n-1])) + "…"
	}
	return s
}

// Step is one thing that happened.
type Step struct {
	Seq  int64
	Time time.Time
	// Who did it: a party, or "deconflict" for the service.
	Who string
	// Kind: alert, message, ack, escalation, reschedule, settle or volume.
	Kind string
	// What happened, in one sentence, and the details beside it.
	What  string
	Notes []string
	// Level is the alert level of the step ("" when none); Late marks an
	// acknowledgment after its deadline.
	Level string
	Late  bool
	// Scene is the map as the record showed it then.
	Scene Scene
}

// Timeline is the account of one subject.
type Timeline struct {
	Subject Subject
	Viewer  string
	Hidden  int
	Steps   []Step
	// Parties in the order their colours are given.
	Parties []string
}

// Build makes the timeline of a subject of the export.
func (e *Export) Build(s Subject) *Timeline {
	tl := &Timeline{Subject: s, Viewer: e.Viewer, Hidden: e.Hidden, Steps: e.steps(s.Kind, s.ID)}
	if e.Viewer != "" {
		tl.Parties = append(tl.Parties, e.Viewer)
	}
	for _, st := range tl.Steps {
		for _, ac := range st.Scene.Aircraft {
			if !slices.Contains(tl.Parties, ac.Party) {
				tl.Parties = append(tl.Parties, ac.Party)
			}
		}
		for _, v := range st.Scene.Volumes {
			if !slices.Contains(tl.Parties, v.Party) {
				tl.Parties = append(tl.Parties, v.Party)
			}
		}
	}
	return tl
}

// steps are the steps of a subject in the order of the record, each with
// its scene.
func (e *Export) steps(kind, id string) []Step {
	thread := id
	var alertID string
	if kind == "alert" {
		alertID, thread = id, alertThreadPrefix+id
	}
	msgs := map[string]*message{}
	for _, m := range e.threads[thread] {
		msgs[m.ID] = m
	}
	vols := map[string]bool{}
	if vid, ok := strings.CutPrefix(thread, "volume:"); ok {
		vols[vid] = true
		if v, ok := e.volumeAt(vid, latestSeq); ok {
			for _, c := range v.Conflicts {
				vols[c.ID] = true
			}
		}
	}
	for _, m := range msgs {
		if m.Ref != nil && m.Ref.VolumeID != "" {
			vols[m.Ref.VolumeID] = true
		}
	}
	// The records of the subject, in the order of the record.
	var idx []int
	idx = append(idx, e.alerts[alertID]...)
	for id := range msgs {
		idx = append(idx, e.msgRecs[id]...)
	}
	for id := range vols {
		idx = append(idx, e.volumes[id]...)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	var steps []Step
	sc := scene{}
	for _, i := range idx {
		r := e.Records[i]
		var st *Step
		switch {
		case strings.HasPrefix(r.Kind, "alert_"):
			var a alert.Alert
			if json.Unmarshal(r.Content, &a) != nil {
				continue
			}
			sc.alert(a)
			st = alertStep(r, a)
		case r.Kind == "message_posted":
			var m message
			if json.Unmarshal(r.Content, &m) != nil {
				continue
			}
			st = messageStep(r, msgs[m.ID])
		case r.Kind == "message_acked":
			var a ackContent
			if json.Unmarshal(r.Content, &a) != nil {
				continue
			}
			st = ackStep(r, a, msgs[a.ID])
		case r.Kind == "message_escalated":
			var x escalationContent
			if json.Unmarshal(r.Content, &x) != nil {
				continue
			}
			st = escalationStep(r, x, msgs[x.ID])
		case r.Kind == "message_rescheduled":
			var x rescheduleContent
			if json.Unmarshal(r.Content, &x) != nil {
				continue
			}
			st = rescheduleStep(r, x, msgs[x.ID])
		case r.Kind == "message_settled":
			var x settleContent
			if json.Unmarshal(r.Content, &x) != nil {
				continue
			}
			st = settleStep(r, x, msgs[x.ID])
		default:
			v, err := volumeOf(r)
			if err != nil {
				continue
			}
			sc.volume(v.Volume)
			st = volumeStep(r, v, e)
		}
		st.Seq, st.Time, st.Who = r.Seq, r.Time.UTC(), r.Actor
		st.Scene = sc.snapshot()
		steps = append(steps, *st)
	}
	return steps
}

func alertStep(r audit.Record, a alert.Alert) *Step {
	var names []string
	for _, ac := range a.Aircraft {
		names = append(names, aircraftName(ac))
	}
	st := &Step{Kind: "alert", Level: a.Level}
	switch r.Kind {
	case "alert_raised":
		st.What = fmt.Sprintf("Alert raised at level %s: %s", a.Level, strings.Join(names, " ↔ "))
	case "alert_updated":
		st.What = fmt.Sprintf("Alert now at level %s: %s", a.Level, strings.Join(names, " ↔ "))
	case "alert_cleared":
		st.What = fmt.Sprintf("Alert cleared (%s): %s", a.Reason, strings.Join(names, " ↔ "))
	default:
		st.What = fmt.Sprintf("Alert %s: %s", strings.TrimPrefix(r.Kind, "alert_"), strings.Join(names, " ↔ "))
	}
	if a.Kind == alert.KindConflict && r.Kind != "alert_cleared" {
		st.Notes = append(st.Notes, fmt.Sprintf("Loss of separation predicted in %.0f s; closest approach %.0f m horizontally, %.0f m vertically, in %.0f s",
			a.TInS, a.DHCPAM, a.DVCPAM, a.TCPAS))
	}
	if a.Kind == alert.KindNonconforming {
		st.Notes = append(st.Notes, "Outside every active volume of its party")
	}
	for _, ac := range a.Aircraft {
		st.Notes = append(st.Notes, fmt.Sprintf("%s at %.3f°N %.3f°E, %s, %.0f kt", aircraftName(ac), ac.LatDeg, ac.LonDeg,
			flText(ac.AltM), geo.MpsToKnots(hypot(ac.VelEastMps, ac.VelNorthMps))))
	}
	return st
}

func messageStep(r audit.Record, m *message) *Step {
	st := &Step{Kind: "message", Level: m.Level}
	what := map[string]string{"alert": "Alert item", "volume_conflict": "Strategic conflict item"}[m.Kind]
	if what == "" {
		// Any other kind, capitalised; an export may hold any text here.
		what = "Message"
		if first, size := utf8.DecodeRuneInString(m.Kind); size > 0 {
			what = string(unicode.ToUpper(first)) + m.Kind[size:]
		}
	}
	if m.Level != "" {
		what += " (" + m.Level + ")"
	}
	st.What = fmt.Sprintf("%s from %s to %s: “%s”", what, m.From, strings.Join(m.To, ", "), m.text)
	st.Notes = append(st.Notes, fmt.Sprintf("To acknowledge by %s (in %s)", clockOn(m.Deadline, r.Time), m.Deadline.Sub(m.Created).Round(time.Second)))
	return st
}

func ackStep(r audit.Record, a ackContent, m *message) *Step {
	st := &Step{Kind: "ack", Late: a.Late, Level: m.Level}
	when := "in time"
	if a.Late {
		when = fmt.Sprintf("LATE (deadline %s)", clockOn(m.Deadline, r.Time))
	}
	st.What = fmt.Sprintf("%s acknowledged %s, %s", a.Party, itemName(m, r.Time), when)
	if reply := clear(r, a.Reply); reply != "" {
		st.Notes = append(st.Notes, "Reply: “"+reply+"”")
	}
	if a.State == "acknowledged" {
		st.Notes = append(st.Notes, "Every recipient has now acknowledged it")
	}
	return st
}

func escalationStep(r audit.Record, x escalationContent, m *message) *Step {
	st := &Step{Kind: "escalation", Level: m.Level}
	st.What = fmt.Sprintf("ESCALATED (%s time): %s not acknowledged by %s before %s", ordinal(x.Escalations), itemName(m, r.Time),
		strings.Join(x.Unacknowledged, ", "), clockOn(x.DeadlinePassed, r.Time))
	st.Notes = append(st.Notes, "Next escalation at "+clockOn(x.EscalationDeadline, r.Time)+" unless acknowledged")
	return st
}

// settleStep says that an item became acknowledged without the
// recipients that had not acknowledged it, naming them (and which of them
// were revoked), and why.
func settleStep(r audit.Record, x settleContent, m *message) *Step {
	st := &Step{Kind: "settle", Level: m.Level}
	without := x.Unanswered
	if len(without) == 0 {
		without = x.Revoked
	}
	names := make([]string, len(without))
	for i, p := range without {
		names[i] = p
		if slices.Contains(x.Revoked, p) {
			names[i] += " (revoked)"
		}
	}
	st.What = fmt.Sprintf("Settled: %s is acknowledged without %s", itemName(m, r.Time), strings.Join(names, ", "))
	if x.Reason != "" {
		st.Notes = append(st.Notes, "Why: "+x.Reason)
	}
	return st
}

// rescheduleStep says that an item's running deadline was brought back,
// from when to when (dates in full: the one brought back may lie a day
// or more ahead), and why.
func rescheduleStep(r audit.Record, x rescheduleContent, m *message) *Step {
	st := &Step{Kind: "reschedule", Level: m.Level}
	what := "acknowledgment deadline"
	if x.State == "escalated" {
		what = "next escalation"
	}
	st.What = fmt.Sprintf("Deadline brought back: the %s of %s moved from %s to %s", what, itemName(m, r.Time),
		x.DeadlineWas.UTC().Format(time.RFC3339), x.Deadline.UTC().Format(time.RFC3339))
	if x.Reason != "" {
		st.Notes = append(st.Notes, "Why: "+x.Reason)
	}
	return st
}

func volumeStep(r audit.Record, v volumeContent, e *Export) *Step {
	st := &Step{Kind: "volume"}
	verb := map[string]string{"volume_created": "declared", "volume_updated": "changed", "volume_state": "set to " + string(v.Volume.State)}[r.Kind]
	if verb == "" {
		verb = strings.TrimPrefix(r.Kind, "volume_")
	}
	st.What = fmt.Sprintf("Volume %s %s (%s)", VolumeName(v.Volume), verb, v.Volume.State)
	for _, c := range v.Conflicts {
		other := "a volume of " + c.Party
		if o, ok := e.volumeAt(c.ID, r.Seq); ok {
			other = VolumeName(o.Volume)
		}
		st.Notes = append(st.Notes, "Conflicts with "+other)
	}
	return st
}

// itemName names a hotline item in a sentence written at the time of
// record at.
func itemName(m *message, at time.Time) string {
	switch m.Kind {
	case "alert":
		if m.Level != "" {
			return "the " + m.Level + " alert item"
		}
		return "the alert item"
	case "volume_conflict":
		return "the strategic conflict item"
	}
	return fmt.Sprintf("the %s of %s sent %s", m.Kind, m.From, clockOn(m.Created, at))
}

// clockOn is t in UTC as a reader of a page dated by ref reads it: the
// time of day alone when t falls on ref's UTC day, with its date
// otherwise, so that a deadline past midnight or a step on the next day
// is not read as earlier the same day.
func clockOn(t, ref time.Time) string {
	t = t.UTC()
	if y, m, d := t.Date(); ref.IsZero() || !sameDay(y, m, d, ref.UTC()) {
		return t.Format("2006-01-02 15:04:05Z")
	}
	return t.Format("15:04:05Z")
}

func sameDay(y int, m time.Month, d int, ref time.Time) bool {
	ry, rm, rd := ref.Date()
	return y == ry && m == rm && d == rd
}

func ordinal(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return fmt.Sprintf("%dth", n)
	case n%10 == 1:
		return fmt.Sprintf("%dst", n)
	case n%10 == 2:
		return fmt.Sprintf("%dnd", n)
	case n%10 == 3:
		return fmt.Sprintf("%drd", n)
	}
	return fmt.Sprintf("%dth", n)
}
