// Command deconflict is the single binary of the deconflict service: it runs
// the server, the demo, the simulator and the analyst tools. Each subcommand
// lives in its own file and registers itself in commands; the work itself is
// done by the packages under internal/.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	// run executes the subcommand with the arguments that follow its name.
	// It returns a usageError for bad arguments or input (exit status 2).
	run func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a subcommand; called from the init function of the file
// that implements it, so that subcommands can be added without touching
// this file.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("deconflict: subcommand registered twice: " + c.name)
	}
	commands[c.name] = c
}

// usageError marks an error caused by the caller's arguments or input; it
// exits with status 2 rather than 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError ends the command with a given exit status, having printed
// what it had to say.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "deconflict: unknown subcommand %q\n\n", args[0])
		printHelp(stderr)
		return 2
	}
	if err := c.run(args[1:], stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "deconflict %s: %v\n", c.name, err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "deconflict: strategic and tactical deconfliction between parties sharing airspace")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage: deconflict <subcommand> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "subcommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'deconflict <subcommand> -h' for the flags of one subcommand.")
}
