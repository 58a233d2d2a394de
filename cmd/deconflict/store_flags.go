package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// openStore opens the store of a data directory: the embedded SQLite store
// in data by default, or the database at storeURL (postgres://...) when
// given. Subcommands that work on a server's data (serve, party, audit
// export) share it so that they all find the same store.
func openStore(data, storeURL string) (store.Store, error) {
	ctx := context.Background()
	// The data directory holds the signing keys and the operator's token
	// whatever the store: create it (for its owner alone) when missing.
	if data != "" {
		if err := os.MkdirAll(data, 0o700); err != nil {
			return nil, fmt.Errorf("creating the data directory: %w", err)
		}
	}
	switch {
	case storeURL == "" || storeURL == "sqlite":
		if data == "" {
			return nil, usagef("--data DIR is required (or DECONFLICT_DATA)")
		}
		return sqlite.Open(ctx, data)
	case strings.HasPrefix(storeURL, "postgres://"), strings.HasPrefix(storeURL, "postgresql://"):
		return postgres.Open(ctx, storeURL)
	}
	return nil, usagef("--store: unsupported store URL %q (use postgres://... or leave empty for SQLite in --data)", storeURL)
}

// storeFlags are the flags naming the store, with DECONFLICT_DATA and
// DECONFLICT_STORE as defaults (flags win over the environment).
type storeFlags struct {
	data     string
	storeURL string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.data, "data", os.Getenv("DECONFLICT_DATA"), "data directory (env DECONFLICT_DATA)")
	fs.StringVar(&s.storeURL, "store", os.Getenv("DECONFLICT_STORE"), "store URL: empty for SQLite in --data, or postgres://... (env DECONFLICT_STORE)")
}

func (s *storeFlags) open() (store.Store, error) { return openStore(s.data, s.storeURL) }

// parseInterspersed parses flags that may come before or after the
// positional arguments (`party add NAME --data DIR`), returning the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	parse := parseFlags // the environment once, then the rest of the line
	for {
		if err := parse(fs, args); errors.Is(err, flag.ErrHelp) {
			return nil, err
		} else if err != nil {
			return nil, usageError{err}
		}
		parse = (*flag.FlagSet).Parse
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
