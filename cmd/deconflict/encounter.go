package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/deconflict/deconflict/internal/encounter"
)

func init() {
	register(command{
		name:    "encounter",
		summary: "pairwise conflict detection for a CSV of encounters (analysts' batch tool)",
		run:     runEncounter,
	})
}

func runEncounter(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("encounter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "input CSV of encounters (required)")
	out := fs.String("out", "", "output CSV (default: standard output)")
	frameName := fs.String("frame", "local", "coordinates of the input: local (x,y,z meters) or wgs84 (lat,lon,alt_m)")
	detectorName := fs.String("detector", "cylinder", "cylinder (each row's D_m, H_m, T_s) or do365_wcv (DO-365B Phase I well clear and alert level)")
	bands := fs.Bool("bands", false, "with --detector do365_wcv: add the ownship's DAIDALUS instantaneous bands ("+encounter.BandsColumns+")")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: deconflict encounter --in FILE.csv [--out FILE.csv] [--frame local|wgs84] [--detector cylinder|do365_wcv [--bands]]")
		fmt.Fprintln(stderr, "\nWrites, per input row and in input order,")
		fmt.Fprintln(stderr, "  cylinder:  "+encounter.Header)
		fmt.Fprintln(stderr, "  do365_wcv: "+encounter.DO365Header)
		fmt.Fprintln(stderr, "  --bands:   the do365_wcv columns, then "+encounter.BandsColumns)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *in == "" {
		return usagef("--in FILE is required")
	}
	frame, err := encounter.ParseFrame(*frameName)
	if err != nil {
		return usagef("--frame: %v", err)
	}
	det, err := encounter.ParseDetector(*detectorName)
	if err != nil {
		return usagef("--detector: %v", err)
	}
	if *bands && det != encounter.DO365WCV {
		return usagef("--bands needs --detector do365_wcv")
	}
	// A long file says how far it is, now and then, on stderr.
	lastProgress := time.Now()
	progress := func(rows int) {
		if now := time.Now(); now.Sub(lastProgress) >= encounterProgressEvery {
			lastProgress = now
			fmt.Fprintf(stderr, "deconflict encounter: %d encounters so far\n", rows)
		}
	}
	run := func(src io.Reader, dst io.Writer) (int, error) {
		return encounter.RunWithProgress(src, dst, frame, det, *bands, progress)
	}
	src, err := os.Open(*in)
	if err != nil {
		return usagef("--in: %v", err)
	}
	defer src.Close()
	// The results go to stream as they come, or, when nil, to a file
	// renamed into place at the end.
	stream, to := stdout, "standard output"
	if *out != "" {
		stream, to = nil, *out
		st, err := checkEncounterOut(src, *in, *out)
		if err != nil {
			return err
		}
		if st != nil && !st.Mode().IsRegular() {
			// A device or a pipe (/dev/stdout, /dev/null, a FIFO) is
			// written as standard output is: renaming a file over it
			// replaced the device or the pipe with a file.
			f, err := os.OpenFile(*out, os.O_WRONLY, 0)
			if err != nil {
				return fmt.Errorf("--out %s: %w", *out, err)
			}
			defer f.Close()
			stream = f
		}
	}

	var rows int
	if stream != nil {
		written := &countingWriter{w: stream}
		rows, err = run(src, written)
		if err != nil && written.n > 0 {
			// What went out cannot be taken back: say that it is
			// not the results, lest it be taken for them.
			fmt.Fprintf(stderr, "deconflict encounter: INCOMPLETE: %s holds the header and the results of the first %d encounters only; discard it\n", to, rows)
		}
		if err != nil {
			return encounterError(*in, err)
		}
	} else {
		// Through a link, the file it names gets the results: renaming
		// over the link replaced it with a file, the target left stale.
		target := *out
		if resolved, err := filepath.EvalSymlinks(*out); err == nil {
			target = resolved
		}
		if rows, err = encounterToFile(src, *in, target, run); err != nil {
			return err
		}
	}
	// The analyst learns what was done; stdout, when it holds the
	// results, stays only the results.
	if rows == 0 {
		fmt.Fprintf(stderr, "deconflict encounter: %s has a header and no encounters: wrote only the header to %s\n", *in, to)
	} else {
		fmt.Fprintf(stderr, "deconflict encounter: %d encounters from %s written to %s\n", rows, *in, to)
	}
	return nil
}

// encounterProgressEvery is the least wall time between two lines of
// progress of a run (a million rows take seconds, with the bands longer).
var encounterProgressEvery = 5 * time.Second

// checkEncounterOut refuses, before any work, an --out that is the input
// itself (the results would replace the analyst's encounters) or a
// directory (the rename would fail once every row was done). It returns
// what --out is, nil when it does not exist yet.
func checkEncounterOut(src *os.File, inName, out string) (fs.FileInfo, error) {
	st, err := os.Stat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, usagef("--out %s: %v", out, err)
	}
	if st.IsDir() {
		return nil, usagef("--out %s is a directory: name the output file", out)
	}
	if in, err := src.Stat(); err == nil && os.SameFile(in, st) {
		return nil, usagef("--out %s is the input file %s: the results would replace the encounters; write them elsewhere", out, inName)
	}
	return st, nil
}

// encounterToFile writes to a temporary file beside out and renames it into
// place only when every row succeeded, so that a bad row leaves no partial
// output (and an existing file untouched).
func encounterToFile(src io.Reader, inName, out string, run func(io.Reader, io.Writer) (int, error)) (rows int, err error) {
	dir := filepath.Dir(out)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return 0, fmt.Errorf("--out %s: cannot write in %s: %w", out, dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if rows, err = run(src, tmp); err != nil {
		return 0, encounterError(inName, err)
	}
	// A file replaced keeps its permissions: results kept private stay
	// private.
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(out); err == nil {
		mode = st.Mode().Perm()
	}
	if err := tmp.Chmod(mode); err != nil {
		return 0, err
	}
	// On disk before the name: a crash leaves the old file or the whole
	// new one, never a short one under the name.
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("--out %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("--out %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return 0, fmt.Errorf("--out %s: %w", out, err)
	}
	return rows, nil
}

// encounterError makes faults in the input usage errors (exit status 2);
// failures to read or write stay plain errors (exit status 1).
func encounterError(inName string, err error) error {
	var ie *encounter.InputError
	if errors.As(err, &ie) {
		return usagef("%s: %v", inName, err)
	}
	return err
}

// countingWriter counts the bytes that went through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
