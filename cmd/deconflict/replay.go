package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strconv"

	"github.com/deconflict/deconflict/internal/feed"
)

func init() {
	register(command{
		name:    "replay",
		summary: "replay a recorded feed file (SBS or JSON lines) onto the wall clock",
		run:     runReplay,
	})
}

func runReplay(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signalContext()
	defer stop()
	return replayMain(ctx, args, stdout, stderr)
}

// speedFlag is a replay or simulation speed: a factor, or "max" (0) for as
// fast as the server takes it.
type speedFlag float64

func (s *speedFlag) String() string {
	if *s == 0 {
		return "max"
	}
	return strconv.FormatFloat(float64(*s), 'g', -1, 64)
}

func (s *speedFlag) Set(v string) error {
	if v == "max" {
		*s = 0
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0 && f <= 1e6) { // NaN and Inf too
		return errors.New("want a factor above zero (e.g. 10) or max")
	}
	*s = speedFlag(f)
	return nil
}

// flagError turns a flag parsing error into a usage error, except a request
// for help (-h), which is answered and is no error.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	return usageError{err}
}

func replayMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	speed := speedFlag(1)
	fs.Var(&speed, "speed", "file seconds per wall-clock second, or max; the file plays at its own pace "+jumpHelp)
	var pf pipelineFlags
	pf.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usagef("usage: deconflict replay FILE [--speed N|max] --server URL (--token T | --token-file F) [--key FILE] [--party P]")
	}
	dec := feed.NewSBSDecoder(nil)
	pacer := replayPacer(float64(speed), stderr, "replay")
	p, err := pf.start(ctx, &cf, stdout, stderr, "replay", replayStatus(pacer, dec)...)
	if err != nil {
		return err
	}
	dec.Stats = p.stats
	err = withInput(pos[0], func(r io.Reader) error {
		return dec.Replay(ctx, r, pacer, p.in)
	})
	return p.finish(err)
}
