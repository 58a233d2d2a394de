package main

import (
	"bytes"
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
	var data []byte
	if *file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(*file)
	}
	if err != nil {
		return usageError{err}
	}
	var v timeline.Verification
	if *keyArg != "" {
		pub, err := publicKeyArg(*keyArg)
		if err != nil {
			return usageError{err}
		}
		sum, err := audit.Verify(bytes.NewReader(data), pub)
		if err != nil {
			return fmt.Errorf("BAD: the export does not verify: %w", err)
		}
		v = timeline.Verification{Checked: true, Summary: fmt.Sprintf("every hash link and signature of records %d to %d checks with the key %s; the export was signed at %s",
			sum.FirstSeq, sum.LastSeq, audit.PublicKeyInfo(pub).PublicKey, sum.HeadTime.UTC().Format(time.RFC3339))}
	}
	exp, err := timeline.Read(bytes.NewReader(data))
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
	tl := exp.Build(subject)
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
