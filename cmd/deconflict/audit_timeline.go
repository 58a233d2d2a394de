package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/timeline"
)

const auditTimelineUsage = `usage: deconflict audit timeline --file EXPORT --html OUT.html [--alert ID | --thread NAME] [--key KEY]
       deconflict audit timeline --file EXPORT --list
  write the timeline of one alert (with its hotline thread) or one hotline thread
  of an audit export as a self-contained HTML page: who said what when, the
  alert's levels, acknowledgments and escalations, with the map at each step.
  Without --alert or --thread, the one that escalated most (then the one that
  reached the highest level, then the longest). --list prints every alert and
  thread of the export instead. --key verifies the export first (as audit
  verify does) and the page says so; without it the page says it is unverified.`

// runAuditTimeline parses flags and hands the export to package timeline.
func runAuditTimeline(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit timeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, auditTimelineUsage) }
	file := fs.String("file", "", "the audit export (JSON lines of audit export or GET /v1/audit); - for stdin")
	out := fs.String("html", "", "the page to write")
	alertID := fs.String("alert", "", "the alert (by id) the timeline is about")
	thread := fs.String("thread", "", "the hotline thread the timeline is about (volume:ID, a name, alert:ID)")
	keyArg := fs.String("key", "", "the audit public key to verify the export with (as for audit verify)")
	list := fs.Bool("list", false, "list the alerts and threads of the export instead of writing a page")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usagef("audit timeline takes no arguments, got %q\n%s", pos, auditTimelineUsage)
	case *file == "":
		return usagef("--file is required\n%s", auditTimelineUsage)
	case !*list && *out == "":
		return usagef("--html OUT.html is required (or --list)\n%s", auditTimelineUsage)
	case *alertID != "" && *thread != "":
		return usagef("--alert and --thread: give one of them")
	}
	ex, err := openTimelineExport(*file, stderr)
	if err != nil {
		return err
	}
	defer ex.close()
	var v timeline.Verification
	if *keyArg != "" {
		pub, err := publicKeyArg(*keyArg)
		if err != nil {
			return usageError{err}
		}
		var sum audit.Summary
		err = ex.pass("verifying", func(r io.Reader) (err error) {
			sum, err = audit.Verify(r, pub)
			return err
		})
		if err != nil {
			return fmt.Errorf("BAD: the export does not verify: %w", err)
		}
		v = timeline.Verification{Checked: true, Summary: fmt.Sprintf("every hash link and signature of records %d to %d checks with the key %s; the export was signed at %s",
			sum.FirstSeq, sum.LastSeq, audit.PublicKeyInfo(pub).PublicKey, sum.HeadTime.UTC().Format(time.RFC3339))}
	}
	var exp *timeline.Index
	err = ex.pass("indexing", func(r io.Reader) (err error) {
		exp, err = timeline.Scan(r)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", *file, escapedError{err})
	}
	// The ids, names and levels come from the export, which anyone may
	// have edited (it is checked only with --key): escaped, a control
	// character in them can neither drive the terminal (ANSI escapes) nor
	// forge a line or a column of the list (a newline, a tab).
	esc := printable.Escape
	if *list {
		for _, s := range exp.Subjects() {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s to %s\t%d steps\t%d escalations\t%s\n", s.Kind, esc(s.ID), esc(s.Name),
				s.First.UTC().Format(time.RFC3339), s.Last.UTC().Format(time.RFC3339), s.Steps, s.Escalations, esc(s.Level))
		}
		return nil
	}
	subject, err := exp.Pick(*alertID, *thread)
	if err != nil {
		return usageError{err}
	}
	var tl *timeline.Timeline
	err = ex.pass("reading the records of "+subject.Kind+" "+esc(subject.ID), func(r io.Reader) (err error) {
		tl, err = exp.ReadSubject(r, subject)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", *file, escapedError{err})
	}
	var page bytes.Buffer
	if err := tl.WriteHTML(&page, v, timeline.Source{File: filepath.Base(*file), Generated: time.Now()}); err != nil {
		return err
	}
	if err := os.WriteFile(*out, page.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: the timeline of %s %s (%s), %d steps, %d escalations\n", *out, subject.Kind, esc(subject.ID), esc(subject.Name), len(tl.Steps), subject.Escalations)
	return nil
}

// timelineExport is the export audit timeline reads, once per pass (the
// verification, the index, the records of the subject), a line at a time:
// a file, or standard input copied to a temporary file first. Each pass
// hashes what it reads, and a pass that reads other bytes than the first
// (the file replaced or appended to meanwhile) fails: what was verified
// is what the page shows.
type timelineExport struct {
	name   string
	path   string
	temp   bool
	size   int64
	first  []byte // the SHA-256 of what the first pass read
	stderr io.Writer
}

// timelineProgressEvery is the least wall time between two lines of
// progress of a pass (a gigabyte takes a minute or more).
var timelineProgressEvery = 5 * time.Second

func openTimelineExport(file string, stderr io.Writer) (*timelineExport, error) {
	ex := &timelineExport{name: file, path: file, stderr: stderr}
	if file == "-" {
		tmp, err := os.CreateTemp("", "deconflict-timeline-*.jsonl")
		if err != nil {
			return nil, err
		}
		ex.path, ex.temp = tmp.Name(), true
		_, err = io.Copy(tmp, os.Stdin)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			ex.close()
			return nil, fmt.Errorf("copying standard input to %s: %w", ex.path, err)
		}
	}
	st, err := os.Stat(ex.path)
	if err != nil {
		return nil, usageError{err}
	}
	if st.IsDir() {
		return nil, usagef("--file %s is a directory", file)
	}
	ex.size = st.Size()
	return ex, nil
}

func (ex *timelineExport) close() {
	if ex.temp {
		os.Remove(ex.path)
	}
}

// pass runs read over the export, saying on stderr how far it is now and
// then, and fails when the bytes are not those of the first pass.
func (ex *timelineExport) pass(what string, read func(io.Reader) error) error {
	f, err := os.Open(ex.path)
	if err != nil {
		return usageError{err}
	}
	defer f.Close()
	h := sha256.New()
	pr := &progressReader{r: io.TeeReader(f, h), last: time.Now(), report: func(n int64) {
		fmt.Fprintf(ex.stderr, "deconflict audit timeline: %s: %d of %d MiB of %s read\n", what, n>>20, ex.size>>20, ex.name)
	}}
	if err := read(pr); err != nil {
		return err
	}
	// What the reading left unread (after a fault it returned) is not
	// compared; what it read whole is.
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	sum := h.Sum(nil)
	if ex.first == nil {
		ex.first = sum
	} else if !bytes.Equal(sum, ex.first) {
		return fmt.Errorf("%s changed while it was read (its bytes differ from the first reading): read it again", ex.name)
	}
	return nil
}

// progressReader calls report with the bytes read so far, at most once
// per timelineProgressEvery.
type progressReader struct {
	r      io.Reader
	n      int64
	last   time.Time
	report func(n int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if now := time.Now(); now.Sub(p.last) >= timelineProgressEvery {
		p.last = now
		p.report(p.n)
	}
	return n, err
}
