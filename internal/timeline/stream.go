package timeline

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/volume"
)

// Index is what one pass over an export keeps to list its subjects and
// pick one: for each alert, hotline item, thread and volume, a summary of
// its steps (how many, the first and last, the highest level), its name
// and the ids a timeline of it reads; never the records themselves. Its
// memory grows with the number of alerts, items and volumes, not with the
// records about them or their size: an export of gigabytes, mostly the
// transitions of alerts and the writes of volumes, is indexed in a few
// megabytes. ReadSubject then reads the export again for the records of
// one subject.
//
// It lists, names and picks with the functions Export uses (subjects.go),
// from its summaries instead of the records (the tests compare them on
// every subject).
type Index struct {
	// Viewer, Hidden and HeadTime are as in Export.
	Viewer   string
	Hidden   int
	HeadTime time.Time
	// Records counts the readable records.
	Records int

	alerts   map[string]*alertSummary
	threads  map[string]*threadSummary
	msgs     map[string]*span // message id -> its steps (posting, acks, escalations...)
	volumes  map[string]*volumeSummary
	lastSeq  int64
	position int // records read so far
}

// span sums the steps of records of one alert, item or volume: how many,
// the escalations among them, the last (by position in the export), the
// first with a time (Subject.First skips zero times), and
// the highest level rank of alert steps.
type span struct {
	steps, escalations int
	lastAt             int
	last               time.Time
	firstTimedAt       int
	firstTimed         time.Time
	rank               int
}

func (s *span) add(at int, t time.Time, escalation bool, level string) {
	t = t.UTC()
	s.steps++
	s.lastAt, s.last = at, t
	if s.firstTimed.IsZero() && !t.IsZero() {
		s.firstTimedAt, s.firstTimed = at, t
	}
	if escalation {
		s.escalations++
	}
	s.rank = max(s.rank, levelRank(level))
}

type alertSummary struct {
	span
	name string // from its first record, as Export.name says it
}

// threadSummary is what the items of a thread say: for each item id the
// last posting of it in the thread (its level and the volume it is
// about), and the name of the thread's first item.
type threadSummary struct {
	items     map[string]itemRef
	firstItem string
}

type itemRef struct {
	level, volumeID string
}

// volumeSummary is a volume's steps, how its last record names it and the
// volumes it conflicts with there, and every volume any of its records
// named as conflicting (a step names the other volume as it was then).
type volumeSummary struct {
	span
	// known is whether name and conflicts are set: from the last record
	// before any beyond latestSeq, as Export.volumeAt reads them.
	known, beyond bool
	name          string
	conflicts     []volume.Ref
	everNamed     map[string]bool
}

// latestSeq is the seq up to which Export.volumeAt reads a volume's
// latest state.
const latestSeq = 1 << 62

// Scan reads an export once (the JSON lines of `deconflict audit export`
// or GET /v1/audit), one line in memory at a time, and indexes its
// subjects. It refuses what Read refuses, with the same error.
func Scan(r io.Reader) (*Index, error) {
	ix := &Index{alerts: map[string]*alertSummary{}, threads: map[string]*threadSummary{}, msgs: map[string]*span{},
		volumes: map[string]*volumeSummary{}}
	h, err := scanEntries(r, ix.add)
	if err != nil {
		return nil, err
	}
	ix.Viewer, ix.HeadTime, ix.Hidden = h.Viewer, h.HeadTime, h.Hidden
	if ix.Records == 0 && ix.Hidden == 0 {
		return nil, errNoRecord
	}
	return ix, nil
}

func (ix *Index) add(en *entry) {
	at := ix.position
	ix.position++
	ix.Records++
	ix.lastSeq = en.rec.Seq
	r := en.rec
	switch {
	case en.alert != nil:
		a := ix.alerts[en.alert.ID]
		if a == nil {
			a = &alertSummary{name: nameOfAlert(*en.alert)}
			ix.alerts[en.alert.ID] = a
		}
		a.add(at, r.Time, false, en.alert.Level)
	case en.msg != nil:
		m := en.msg
		th := ix.threads[m.Thread]
		if th == nil {
			th = &threadSummary{items: map[string]itemRef{}, firstItem: nameOfFirstItem(m)}
			ix.threads[m.Thread] = th
		}
		ref := itemRef{level: m.Level}
		if m.Ref != nil {
			ref.volumeID = m.Ref.VolumeID
		}
		th.items[m.ID] = ref
		ix.msg(m.ID).add(at, r.Time, false, "")
	case isMessageEvent(r.Kind):
		// A record the timeline cannot read as its kind is no step of it.
		if eventReadable(r) {
			ix.msg(en.msgID).add(at, r.Time, r.Kind == "message_escalated", "")
		}
	case en.vol != nil:
		id := en.vol.Volume.ID
		v := ix.volumes[id]
		if v == nil {
			v = &volumeSummary{everNamed: map[string]bool{}}
			ix.volumes[id] = v
		}
		v.add(at, r.Time, false, "")
		if v.beyond = v.beyond || r.Seq > latestSeq; !v.beyond {
			v.known, v.name, v.conflicts = true, VolumeName(en.vol.Volume), en.vol.Conflicts
		}
		for _, c := range en.vol.Conflicts {
			v.everNamed[c.ID] = true
		}
	}
}

func (ix *Index) msg(id string) *span {
	s := ix.msgs[id]
	if s == nil {
		s = &span{}
		ix.msgs[id] = s
	}
	return s
}

// eventReadable is whether steps reads a record about an item.
func eventReadable(r audit.Record) bool {
	var dst any
	switch r.Kind {
	case "message_acked":
		dst = &ackContent{}
	case "message_escalated":
		dst = &escalationContent{}
	case "message_rescheduled":
		dst = &rescheduleContent{}
	default:
		dst = &settleContent{}
	}
	return json.Unmarshal(r.Content, dst) == nil
}

// parts are the alert, items and volumes whose records make the steps of
// a subject, as Export.steps gathers them.
type parts struct {
	alertID string
	thread  string
	items   map[string]itemRef
	volumes map[string]bool
}

func (ix *Index) parts(kind, id string) parts {
	p := parts{thread: id, volumes: map[string]bool{}}
	if kind == "alert" {
		p.alertID, p.thread = id, alertThreadPrefix+id
	}
	if th := ix.threads[p.thread]; th != nil {
		p.items = th.items
	}
	if vid, ok := strings.CutPrefix(p.thread, "volume:"); ok {
		p.volumes[vid] = true
		if v := ix.volumes[vid]; v != nil && v.known {
			for _, c := range v.conflicts {
				p.volumes[c.ID] = true
			}
		}
	}
	for _, it := range p.items {
		if it.volumeID != "" {
			p.volumes[it.volumeID] = true
		}
	}
	return p
}

func (ix *Index) subject(kind, id string) Subject {
	s := Subject{Kind: kind, ID: id, Name: ix.name(kind, id)}
	p := ix.parts(kind, id)
	firstTimedAt, lastAt, rank := -1, -1, 0
	merge := func(sp *span, itemRank int) {
		if sp == nil || sp.steps == 0 {
			return
		}
		s.Steps += sp.steps
		s.Escalations += sp.escalations
		if !sp.firstTimed.IsZero() && (firstTimedAt < 0 || sp.firstTimedAt < firstTimedAt) {
			firstTimedAt, s.First = sp.firstTimedAt, sp.firstTimed
		}
		if sp.lastAt > lastAt {
			lastAt, s.Last = sp.lastAt, sp.last
		}
		rank = max(rank, sp.rank, itemRank)
	}
	if a := ix.alerts[p.alertID]; a != nil {
		merge(&a.span, 0)
	}
	for mid, it := range p.items {
		merge(ix.msgs[mid], levelRank(it.level))
	}
	for vid := range p.volumes {
		if v := ix.volumes[vid]; v != nil {
			merge(&v.span, 0)
		}
	}
	s.Level = rankLevel[rank]
	return s
}

// rankLevel is the level of each rank of levelRank.
var rankLevel = map[int]string{1: "advisory", 2: "caution", 3: "warning"}

// name is Export.name.
func (ix *Index) name(kind, id string) string { return subjectName(ix, kind, id) }

// Subjects is Export.Subjects.
func (ix *Index) Subjects() []Subject { return listSubjects(ix) }

// Pick is Export.Pick.
func (ix *Index) Pick(alertID, thread string) (Subject, error) {
	return pickSubject(ix, alertID, thread)
}

// ErrChanged says that an export read twice was not the same both times.
var ErrChanged = errors.New("the export changed while it was read (its records are not those indexed): read it again")

// ReadSubject reads the export ix was made from again, keeping only the
// records the timeline of s is made of, and builds that timeline: the
// memory it takes is that of the subject's records. The export must be
// the one indexed (ErrChanged when its records are not as many, or do
// not end at the same seq).
func (ix *Index) ReadSubject(r io.Reader, s Subject) (*Timeline, error) {
	p := ix.parts(s.Kind, s.ID)
	// The volumes whose records a step reads: the subject's, and those
	// any of their records names as conflicting (named as they were then).
	vols := map[string]bool{}
	for vid := range p.volumes {
		vols[vid] = true
		if v := ix.volumes[vid]; v != nil {
			for other := range v.everNamed {
				vols[other] = true
			}
		}
	}
	records, lastSeq := 0, int64(0)
	e, err := read(r, func(en *entry) bool {
		records++
		lastSeq = en.rec.Seq
		switch {
		case en.alert != nil:
			return en.alert.ID == p.alertID
		case en.msg != nil:
			_, item := p.items[en.msgID]
			return item || en.msg.Thread == p.thread
		case isMessageEvent(en.rec.Kind):
			_, item := p.items[en.msgID]
			return item
		case en.vol != nil:
			return vols[en.vol.Volume.ID]
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	if records != ix.Records || lastSeq != ix.lastSeq || e.Hidden != ix.Hidden || e.Viewer != ix.Viewer {
		return nil, ErrChanged
	}
	return e.Build(s), nil
}
