package timeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/volume"
)

// subjectSource is what listing, naming and picking the subjects of an
// export read of it: an Export, holding its records, or an Index, holding
// a summary of them. Both list, name and pick with the functions below,
// so that the streaming reading cannot drift from Read.
type subjectSource interface {
	// alertIDs and threadIDs are the alerts and threads of the export,
	// in no order.
	alertIDs() iter.Seq[string]
	threadIDs() iter.Seq[string]
	hasAlert(id string) bool
	hasThread(thread string) bool
	// alertName is the name of a known alert (false when unknown).
	alertName(id string) (string, bool)
	// firstItemName is the name of a thread's first item (false when
	// the thread has none).
	firstItemName(thread string) (string, bool)
	// latestVolume is how the latest record of a volume names it and the
	// volumes it conflicts with there (false when it has none).
	latestVolume(id string) (name string, conflicts []volume.Ref, ok bool)
	subject(kind, id string) Subject
}

// listSubjects is Export.Subjects of src.
func listSubjects(src subjectSource) []Subject {
	var out []Subject
	for id := range src.alertIDs() {
		out = append(out, src.subject("alert", id))
	}
	for th := range src.threadIDs() {
		if id, ok := strings.CutPrefix(th, alertThreadPrefix); ok && src.hasAlert(id) {
			continue
		}
		out = append(out, src.subject("thread", th))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].First.Equal(out[j].First) {
			return out[i].First.Before(out[j].First)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// pickSubject is Export.Pick of src.
func pickSubject(src subjectSource, alertID, thread string) (Subject, error) {
	switch {
	case alertID != "" && thread != "":
		return Subject{}, errors.New("an alert or a thread, not both")
	case alertID != "":
		if !src.hasAlert(alertID) && !src.hasThread(alertThreadPrefix+alertID) {
			return Subject{}, fmt.Errorf("no alert %q in the export (or none its viewer may read)", alertID)
		}
		return src.subject("alert", alertID), nil
	case thread != "":
		if id, ok := strings.CutPrefix(thread, alertThreadPrefix); ok {
			return pickSubject(src, id, "")
		}
		if !src.hasThread(thread) {
			return Subject{}, fmt.Errorf("no thread %q in the export (or none its viewer may read)", thread)
		}
		return src.subject("thread", thread), nil
	}
	return pickBest(listSubjects(src))
}

// subjectName says what an alert or a thread is about, as the console
// names its threads: callsigns of an alert's aircraft, a volume's party,
// band and window.
func subjectName(src subjectSource, kind, id string) string {
	if kind == "thread" {
		if vid, ok := strings.CutPrefix(id, "volume:"); ok {
			return volumeThreadName(src, vid)
		}
		if v, ok := strings.CutPrefix(id, "rules:"); ok {
			return "Rules proposal v" + v
		}
		if name, ok := src.firstItemName(id); ok && strings.HasPrefix(id, "t-") {
			return name
		}
		return "Thread " + id
	}
	if name, ok := src.alertName(id); ok {
		return name
	}
	return "Alert " + id
}

func volumeThreadName(src subjectSource, id string) string {
	name, conflicts, ok := src.latestVolume(id)
	if !ok {
		return "Volume thread " + id
	}
	var others []string
	for _, c := range conflicts {
		if other, _, ok := src.latestVolume(c.ID); ok {
			others = append(others, other)
		} else {
			others = append(others, "a volume of "+c.Party)
		}
	}
	if len(others) > 0 {
		return "Volume conflict: " + name + " ↔ " + strings.Join(others, ", ")
	}
	return "Volume " + name
}

// nameOfAlert is the name of an alert from its first record.
func nameOfAlert(a alert.Alert) string {
	var names []string
	for _, ac := range a.Aircraft {
		names = append(names, aircraftName(ac))
	}
	if a.Kind == alert.KindNonconforming && len(names) == 1 {
		return "Outside its volumes: " + names[0]
	}
	return "Conflict " + strings.Join(names, " ↔ ")
}

// nameOfFirstItem is the name of a thread from its first item.
func nameOfFirstItem(m *message) string {
	return fmt.Sprintf("%s from %s: %s", m.Kind, m.From, excerpt(m.text, 60))
}

// exportHead is what an export says besides its readable records.
type exportHead struct {
	Viewer   string
	HeadTime time.Time
	// Hidden counts the records shown by their commitment only.
	Hidden int
}

// scanEntries reads an export one line in memory at a time and calls fn
// with each readable record, every one parsed, so that an export is
// refused for the same fault at the same line whatever fn keeps.
func scanEntries(r io.Reader, fn func(*entry)) (exportHead, error) {
	var h exportHead
	err := scan(r, func(n int, line audit.Line) error {
		switch {
		case line.Head != nil:
			h.Viewer, h.HeadTime = line.Head.Viewer, line.Head.Time
		case line.Record != nil && line.Record.Hidden():
			h.Hidden++
		case line.Record != nil:
			en, err := readEntry(*line.Record)
			if err != nil {
				return fmt.Errorf("line %d (seq %d): %w", n, line.Record.Seq, err)
			}
			fn(&en)
		}
		return nil
	})
	return h, err
}

// Export as a subjectSource.

func (e *Export) alertIDs() iter.Seq[string]  { return maps.Keys(e.alerts) }
func (e *Export) threadIDs() iter.Seq[string] { return maps.Keys(e.threads) }
func (e *Export) hasAlert(id string) bool     { _, ok := e.alerts[id]; return ok }
func (e *Export) hasThread(th string) bool    { _, ok := e.threads[th]; return ok }

func (e *Export) alertName(id string) (string, bool) {
	idx := e.alerts[id]
	if len(idx) == 0 {
		return "", false
	}
	var a alert.Alert
	_ = json.Unmarshal(e.Records[idx[0]].Content, &a)
	return nameOfAlert(a), true
}

func (e *Export) firstItemName(thread string) (string, bool) {
	ms := e.threads[thread]
	if len(ms) == 0 {
		return "", false
	}
	return nameOfFirstItem(ms[0]), true
}

func (e *Export) latestVolume(id string) (string, []volume.Ref, bool) {
	v, ok := e.volumeAt(id, latestSeq)
	return VolumeName(v.Volume), v.Conflicts, ok
}

// Index as a subjectSource.

func (ix *Index) alertIDs() iter.Seq[string]  { return maps.Keys(ix.alerts) }
func (ix *Index) threadIDs() iter.Seq[string] { return maps.Keys(ix.threads) }
func (ix *Index) hasAlert(id string) bool     { _, ok := ix.alerts[id]; return ok }
func (ix *Index) hasThread(th string) bool    { _, ok := ix.threads[th]; return ok }

func (ix *Index) alertName(id string) (string, bool) {
	if a := ix.alerts[id]; a != nil {
		return a.name, true
	}
	return "", false
}

func (ix *Index) firstItemName(thread string) (string, bool) {
	if th := ix.threads[thread]; th != nil {
		return th.firstItem, true
	}
	return "", false
}

func (ix *Index) latestVolume(id string) (string, []volume.Ref, bool) {
	if v := ix.volumes[id]; v != nil && v.known {
		return v.name, v.conflicts, true
	}
	return "", nil, false
}
