package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	run := func(src io.Reader, dst io.Writer) (int, error) {
		if *bands {
			return encounter.RunBands(src, dst, frame)
		}
		return encounter.Run(src, dst, frame, det)
	}
	src, err := os.Open(*in)
	if err != nil {
		return usagef("--in: %v", err)
	}
	defer src.Close()

	if *out == "" {
		_, err := run(src, stdout)
		return encounterError(*in, err)
	}
	return encounterToFile(src, *in, *out, run)
}

// encounterToFile writes to a temporary file beside out and renames it into
// place only when every row succeeded, so that a bad row leaves no partial
// output (and an existing file untouched).
func encounterToFile(src io.Reader, inName, out string, run func(io.Reader, io.Writer) (int, error)) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := run(src, tmp); err != nil {
		return encounterError(inName, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
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
