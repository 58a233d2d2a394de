package timeline

import (
	"bytes"
	"regexp"
	"testing"
	"time"
)

// FuzzExport reads any export as `deconflict audit timeline` does (an
// export is a file anyone may hand an investigator; its hash chain and
// signatures are checked only with --key) and draws the timeline of each
// of its first subjects: a bad export is an error, never a panic, and
// whatever the records hold, the page stays self-contained and inert (no
// script, no fetch, no embedded page), as the real one is checked to be;
// and Scan with ReadSubject give what Read gives.
func FuzzExport(f *testing.F) {
	rec := runScenario(f)
	f.Add(rec.exportAll)
	f.Add(rec.exportRuss)
	// Each line of the operator's export alone, so that the fuzzer starts
	// from every kind of record.
	for _, line := range bytes.Split(rec.exportAll, []byte("\n")) {
		if len(line) > 0 {
			f.Add(line)
		}
	}
	unsafe := regexp.MustCompile(`(?i)<script|\s(src|href|action|srcset|on[a-z]+)=|url\(|@import|<(iframe|object|embed|link|img|base|form)\b`)
	f.Fuzz(func(t *testing.T, export []byte) {
		// The streaming reading refuses, lists, picks and draws as
		// reading the whole export does.
		sameAsRead(t, export)
		e, err := Read(bytes.NewReader(export))
		if err != nil {
			return
		}
		subjects := e.Subjects()
		if _, err := e.Pick("", ""); err != nil && len(subjects) > 0 {
			t.Fatalf("%d subjects, yet none is picked: %v", len(subjects), err)
		}
		for i, s := range subjects {
			if i == 3 {
				break
			}
			var page bytes.Buffer
			if err := e.Build(s).WriteHTML(&page, Verification{}, Source{File: "export.jsonl", Generated: time.Unix(0, 0)}); err != nil {
				t.Fatalf("%s %s: %v", s.Kind, s.ID, err)
			}
			if loc := unsafe.FindIndex(page.Bytes()); loc != nil {
				t.Fatalf("%s %s: the page holds %q", s.Kind, s.ID, page.Bytes()[loc[0]:min(page.Len(), loc[1]+40)])
			}
		}
	})
}
