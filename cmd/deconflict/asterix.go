package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"

	"github.com/deconflict/deconflict/internal/asterix"
)

func init() {
	register(command{
		name:    "asterix",
		summary: "decode an ASTERIX recording without a server: 'asterix dump' prints one CSV row per record",
		run:     runAsterix,
	})
}

func runAsterix(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "dump" {
		fmt.Fprintln(stderr, "usage: deconflict asterix dump --file FILE|- [--framing auto|raw|pcap|final|gps]")
		return usagef("asterix: the subcommand (dump) comes first")
	}
	fs := flag.NewFlagSet("asterix dump", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "the recording ('-' for standard input)")
	framingName := fs.String("framing", "auto", "how the recording wraps its blocks: auto (detect), raw, pcap, final or gps")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: deconflict asterix dump --file FILE|- [--framing auto|raw|pcap|final|gps]")
		fmt.Fprintln(stderr, "\nPrints one CSV row per CAT021/034/048/062/065 record, in the columns, units and conventions of")
		fmt.Fprintln(stderr, "../shared/reference/asterix/README.md; a summary of blocks, records and malformed input goes to stderr.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *file == "" {
		return usagef("--file is required")
	}
	framing, err := asterix.ParseFraming(*framingName)
	if err != nil {
		return usagef("--framing: %v", err)
	}
	return withInput(*file, func(r io.Reader) error {
		out := bufio.NewWriterSize(stdout, 1<<16)
		stats, framing, err := asterix.Dump(r, framing, out)
		if ferr := out.Flush(); err == nil {
			err = ferr
		}
		if stats == nil && err != nil {
			return usagef("--file %s: %v", *file, err)
		}
		fmt.Fprintf(stderr, "asterix dump: framing=%s %s\n", framing, stats)
		return err
	})
}
