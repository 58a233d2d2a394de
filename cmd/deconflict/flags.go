package main

import (
	"flag"
	"os"
	"strings"
)

// envPrefix starts the environment variable of every flag.
const envPrefix = "DECONFLICT_"

// envName is the environment variable that sets a flag: DECONFLICT_ and
// the flag's name in upper case with '-' as '_' (--no-console is
// DECONFLICT_NO_CONSOLE).
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flagSetParsed, when set (by a test), sees every flag set parseFlags is
// given, so that the test can walk the flags of every command.
var flagSetParsed func(*flag.FlagSet)

// parseFlags parses the arguments of a (sub)command. Every flag of fs is
// first set from its environment variable (envName) when that is set, so
// that every flag of every command can be given either way; a flag on the
// command line wins. Every command parses its flags here.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if flagSetParsed != nil {
		flagSetParsed(fs)
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || err != nil {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = usagef("%s=%q: %v", envName(f.Name), v, e)
		}
	})
	if err != nil {
		return err
	}
	return fs.Parse(args)
}
