package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// benchMode is one family of measurements of `deconflict bench`. Each mode
// times the project's way of doing something and, in the same process, a
// plain baseline (brute force, full scan, ...), and prints both with their
// ratio.
type benchMode struct {
	// flag selects the mode when present among the arguments, e.g. "--volumes".
	// The default mode has flag "".
	flag    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var benchModes = map[string]benchMode{}

func registerBenchMode(m benchMode) {
	if _, dup := benchModes[m.flag]; dup {
		panic("deconflict: bench mode registered twice: " + m.flag)
	}
	benchModes[m.flag] = m
}

func init() {
	register(command{
		name:    "bench",
		summary: "measure detection, volume checks and HTTP ingest against in-process baselines",
		run:     runBench,
	})
}

func runBench(args []string, stdout, stderr io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			printBenchHelp(stdout)
			return nil
		}
	}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if name == "" || !strings.HasPrefix(name, "--") {
			continue
		}
		if m, ok := benchModes[name]; ok && name != "" {
			return m.run(args, stdout, stderr)
		}
	}
	if m, ok := benchModes[""]; ok {
		return m.run(args, stdout, stderr)
	}
	printBenchHelp(stderr)
	return usagef("no benchmark selected")
}

func printBenchHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: deconflict bench [mode flag] [flags]")
	flags := make([]string, 0, len(benchModes))
	for f := range benchModes {
		flags = append(flags, f)
	}
	sort.Strings(flags)
	for _, f := range flags {
		name := f
		if name == "" {
			name = "(default)"
		}
		fmt.Fprintf(w, "  %-12s %s\n", name, benchModes[f].summary)
	}
}
