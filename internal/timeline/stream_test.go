package timeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime"
	"testing"
	"time"
)

// sameAsRead checks that Scan and ReadSubject give what Read gives of
// export: the same error, or the same subjects (in the same order where
// the order is defined), the same pick, and the same timeline and page of
// each subject.
func sameAsRead(t *testing.T, export []byte) {
	t.Helper()
	e, rerr := Read(bytes.NewReader(export))
	ix, serr := Scan(bytes.NewReader(export))
	if rerr != nil || serr != nil {
		if fmt.Sprint(rerr) != fmt.Sprint(serr) {
			t.Fatalf("Read: %v, Scan: %v", rerr, serr)
		}
		return
	}
	if ix.Viewer != e.Viewer || ix.Hidden != e.Hidden || !ix.HeadTime.Equal(e.HeadTime) || ix.Records != len(e.Records) {
		t.Fatalf("Scan: viewer %q, %d hidden, head %v, %d records; Read: %q, %d, %v, %d", ix.Viewer, ix.Hidden, ix.HeadTime, ix.Records,
			e.Viewer, e.Hidden, e.HeadTime, len(e.Records))
	}
	want, got := e.Subjects(), ix.Subjects()
	byKey := func(ss []Subject) map[string]Subject {
		m := map[string]Subject{}
		for _, s := range ss {
			m[s.Kind+" "+s.ID] = s
		}
		return m
	}
	if !reflect.DeepEqual(byKey(want), byKey(got)) {
		t.Fatalf("subjects:\nScan %+v\nRead %+v", got, want)
	}
	for i := range want {
		if !want[i].First.Equal(got[i].First) || want[i].ID != got[i].ID {
			t.Fatalf("subject %d: Scan %+v, Read %+v", i, got[i], want[i])
		}
	}
	wp, werr := e.Pick("", "")
	gp, gerr := ix.Pick("", "")
	if fmt.Sprint(werr) != fmt.Sprint(gerr) || wp.Escalations != gp.Escalations || wp.Level != gp.Level || wp.Steps != gp.Steps {
		t.Fatalf("pick: Scan %+v %v, Read %+v %v", gp, gerr, wp, werr)
	}
	for _, s := range want {
		alertID, thread := s.ID, ""
		if s.Kind == "thread" {
			alertID, thread = "", s.ID
		}
		wp, werr := e.Pick(alertID, thread)
		gp, gerr := ix.Pick(alertID, thread)
		if fmt.Sprint(werr) != fmt.Sprint(gerr) || !reflect.DeepEqual(wp, gp) {
			t.Fatalf("pick %s %q: Scan %+v %v, Read %+v %v", s.Kind, s.ID, gp, gerr, wp, werr)
		}
		tl, err := ix.ReadSubject(bytes.NewReader(export), s)
		if err != nil {
			t.Fatalf("%s %q: %v", s.Kind, s.ID, err)
		}
		if wantTL := e.Build(s); !reflect.DeepEqual(tl, wantTL) {
			t.Fatalf("%s %q: the timeline differs:\nReadSubject %+v\nRead %+v", s.Kind, s.ID, tl, wantTL)
		}
		var a, b bytes.Buffer
		src := Source{File: "x.jsonl", Generated: time.Unix(0, 0)}
		if err := tl.WriteHTML(&a, Verification{}, src); err != nil {
			t.Fatal(err)
		}
		if err := e.Build(s).WriteHTML(&b, Verification{}, src); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("%s %q: the pages differ", s.Kind, s.ID)
		}
	}
}

// TestScanMatchesRead: the streaming reading lists, names, picks and draws
// every subject of the operator's and a party's exports as reading the
// whole export does.
func TestScanMatchesRead(t *testing.T) {
	rec := runScenario(t)
	for _, export := range [][]byte{rec.exportAll, rec.exportRuss, nil, []byte("{"), bytes.ReplaceAll(rec.exportAll, []byte("\n"), []byte("\r"))} {
		sameAsRead(t, export)
	}
	// A volume whose conflict is gone by its last record: its thread's
	// first step still names the other volume, as it was then.
	conflicting := regexp.MustCompile(`(?m)^.*"kind":"volume_created","content":\{"conflicts":\[\{[^]]*\]`).Find(rec.exportAll)
	if conflicting == nil {
		t.Fatal("no volume write with a conflict in the export")
	}
	resolved := regexp.MustCompile(`"content":\{"conflicts":\[[^]]*\]`).ReplaceAll(conflicting, []byte(`"content":{"conflicts":[]`))
	resolved = bytes.Replace(resolved, []byte("volume_created"), []byte("volume_updated"), 1)
	line := regexp.MustCompile(`(?m)^.*"kind":"volume_created","content":\{"conflicts":\[\{.*$`).Find(rec.exportAll)
	withResolved := append(bytes.Clone(rec.exportAll), append(resolved, line[len(conflicting):]...)...)
	if _, err := Read(bytes.NewReader(withResolved)); err != nil {
		t.Fatalf("the export with the conflict resolved: %v", err)
	}
	sameAsRead(t, withResolved)
	// A seq beyond any log's, which Export.volumeAt stops at.
	beyond := regexp.MustCompile(`^\{"seq":\d+,"leaf_index":\d+,`).ReplaceAll(conflicting, []byte(`{"seq":4611686018427387905,"leaf_index":4611686018427387904,`))
	withBeyond := bytes.Replace(rec.exportAll, conflicting, beyond, 1)
	if _, err := Read(bytes.NewReader(withBeyond)); err != nil || bytes.Equal(withBeyond, rec.exportAll) {
		t.Fatalf("the export with a seq beyond: %v", err)
	}
	sameAsRead(t, withBeyond)

	// Each record alone, and the export without each one.
	lines := bytes.SplitAfter(rec.exportAll, []byte("\n"))
	for i := range lines {
		sameAsRead(t, lines[i])
		sameAsRead(t, bytes.Join(append(append([][]byte{}, lines[:i]...), lines[i+1:]...), nil))
	}
}

// TestReadSubjectRefusesAnotherExport: the second reading is of the
// export indexed, or refused.
func TestReadSubjectRefusesAnotherExport(t *testing.T) {
	rec := runScenario(t)
	ix, err := Scan(bytes.NewReader(rec.exportAll))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ix.Pick("", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.ReadSubject(bytes.NewReader(rec.exportRuss), s); !errors.Is(err, ErrChanged) {
		t.Fatalf("another export: %v, want ErrChanged", err)
	}
}

// repeatedExport is an io.Reader of an export of about size bytes, made
// as it is read: the operator's export of the scenario, then its alert
// transitions again and again (as a long day of one conflict would hold
// them), then its head; it calls sample every 4 MiB read.
type repeatedExport struct {
	body, again, tail []byte
	repeats, next     int // parts: body, again × repeats, tail
	left              []byte
	read, nextSample  int64
	sample            func()
}

func newRepeatedExport(export []byte, size int64, sample func()) *repeatedExport {
	r := &repeatedExport{sample: sample}
	for _, line := range bytes.SplitAfter(export, []byte("\n")) {
		switch {
		case bytes.HasPrefix(line, []byte(`{"head":`)), bytes.HasPrefix(line, []byte(`{"log_checkpoint":`)):
			r.tail = append(r.tail, line...)
		default:
			r.body = append(r.body, line...)
			if bytes.Contains(line, []byte(`"kind":"alert_`)) {
				r.again = append(r.again, line...)
			}
		}
	}
	r.repeats = int(max(1, (size-int64(len(r.body)))/int64(len(r.again))+1))
	return r
}

func (r *repeatedExport) Read(p []byte) (int, error) {
	for len(r.left) == 0 {
		switch {
		case r.next == 0:
			r.left = r.body
		case r.next <= r.repeats:
			r.left = r.again
		case r.next == r.repeats+1:
			r.left = r.tail
		default:
			return 0, io.EOF
		}
		r.next++
	}
	n := copy(p, r.left)
	r.left = r.left[n:]
	if r.read += int64(n); r.read >= r.nextSample {
		r.nextSample += 4 << 20
		r.sample()
	}
	return n, nil
}

// TestScanMemoryIsBounded: the subjects of a 128 MiB export (made as it
// is read, never held) are indexed, and the timeline of one drawn,
// holding a few MiB: reading the whole export held every record, some
// 250 MiB of heap for this one.
func TestScanMemoryIsBounded(t *testing.T) {
	rec := runScenario(t)
	const size = 128 << 20
	// The index of the scenario's subjects and one subject's records, the
	// line read and the garbage of parsing it: a few MiB.
	const bound = 16 << 20
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapAlloc)
	}
	src := newRepeatedExport(rec.exportAll, size, sample)
	ix, err := Scan(src)
	if err != nil {
		t.Fatal(err)
	}
	if src.read < size {
		t.Fatalf("the export read is %d bytes, want %d or more", src.read, size)
	}
	t.Logf("indexing %d MiB: peak heap %d MiB over the start", src.read>>20, (int64(peak)-int64(base.HeapAlloc))>>20)
	if grown := int64(peak) - int64(base.HeapAlloc); grown > bound {
		t.Fatalf("indexing %d MiB took %d MiB of heap, want at most %d MiB", src.read>>20, grown>>20, bound>>20)
	}
	// A thread of the scenario: its records are in the first part; the
	// alert transitions that follow are read and let go.
	s, err := ix.Pick("", bystanderThread(mustRead(t, rec.exportAll)))
	if err != nil {
		t.Fatal(err)
	}
	peak = 0
	src = newRepeatedExport(rec.exportAll, size, sample)
	tl, err := ix.ReadSubject(src, s)
	if err != nil {
		t.Fatal(err)
	}
	if grown := int64(peak) - int64(base.HeapAlloc); grown > bound || len(tl.Steps) == 0 {
		t.Fatalf("the timeline of %s (%d steps) from %d MiB took %d MiB of heap, want at most %d MiB", s.ID, len(tl.Steps), src.read>>20, grown>>20, bound>>20)
	}
}

func mustRead(t *testing.T, export []byte) *Export {
	t.Helper()
	e, err := Read(bytes.NewReader(export))
	if err != nil {
		t.Fatal(err)
	}
	return e
}
