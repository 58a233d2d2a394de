package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/sim"
)

func init() {
	register(command{
		name:    "sim",
		summary: "drive a running server with a scenario, as the clients of every party",
		run:     runSim,
	})
}

func runSim(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signalContext()
	defer stop()
	return simMain(ctx, args, stdout, stderr)
}

// loadScenario reads a built-in scenario by name, or a scenario file.
func loadScenario(name string) (*sim.Scenario, error) {
	for _, b := range sim.BuiltinNames() {
		if b == name {
			return sim.Builtin(name)
		}
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, usagef("--scenario: %q is neither a built-in scenario (%s) nor a readable file",
			name, strings.Join(sim.BuiltinNames(), ", "))
	}
	defer f.Close()
	s, err := sim.Load(f)
	if err != nil {
		return nil, usagef("--scenario %s: %v", name, err)
	}
	return s, nil
}

// parseScenarioTime reads a point in a scenario: seconds from its epoch,
// HH:MM[:SS] of its first day, or "demo" (the scenario's demo start).
func parseScenarioTime(s *sim.Scenario, v string) (float64, error) {
	switch {
	case v == "" || v == "0":
		return 0, nil
	case v == "demo":
		return s.DemoStartS, nil
	case strings.Contains(v, ":"):
		for _, layout := range []string{"15:04:05", "15:04"} {
			if t, err := time.Parse(layout, v); err == nil {
				return float64(t.Hour()*3600 + t.Minute()*60 + t.Second()), nil
			}
		}
	default:
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
			return f, nil
		}
	}
	return 0, fmt.Errorf("%q is not seconds, HH:MM[:SS] or demo", v)
}

func simMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "syria-2015", "built-in scenario name or scenario file (JSON)")
	speed := speedFlag(10)
	fs.Var(&speed, "speed", "scenario seconds per wall-clock second, or max")
	server := fs.String("server", envOr("DECONFLICT_SERVER", "http://127.0.0.1:8080"), "server base URL (env DECONFLICT_SERVER)")
	tokenFile := fs.String("token-file", "", "file with one line 'PARTY TOKEN' per party of the scenario")
	keysFile := fs.String("keys", "", "file with lines 'PARTY KEYFILE': the party's signing key (PKCS#8 PEM, deconflict key new; a path relative to this file) signs its writes")
	seed := fs.Uint64("seed", 1, "seed of the scenario's variations")
	ackDelay := fs.Duration("ack-delay", 2*time.Second, "wall time a party takes to acknowledge a hotline item")
	from := fs.String("from", "0", "scenario time to start at: seconds, HH:MM or demo")
	until := fs.String("until", "", "scenario time to stop at (default: when the last aircraft lands)")
	if err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *tokenFile == "" {
		return usagef("--token-file is required (one line 'PARTY TOKEN' per party)")
	}
	if *ackDelay < 0 {
		return usagef("--ack-delay must not be negative")
	}
	sc, err := loadScenario(*scenario)
	if err != nil {
		return err
	}
	fromS, err := parseScenarioTime(sc, *from)
	if err != nil {
		return usagef("--from: %v", err)
	}
	untilS, err := parseScenarioTime(sc, *until)
	if err != nil {
		return usagef("--until: %v", err)
	}
	tokens, err := loadTokenFile(*tokenFile)
	if err != nil {
		return err
	}
	plan, err := sc.Plan(*seed)
	if err != nil {
		return err
	}
	keys, err := loadKeysFile(*keysFile)
	if err != nil {
		return err
	}
	clients := map[string]*client.Client{}
	for _, p := range sc.Parties {
		tok, ok := tokens[p.Name]
		if !ok {
			return usagef("--token-file has no token for party %q", p.Name)
		}
		clients[p.Name] = client.New(*server, tok)
		if key, ok := keys[p.Name]; ok {
			clients[p.Name] = clients[p.Name].WithKey(key)
		}
	}
	for name := range keys {
		if _, ok := clients[name]; !ok {
			return usagef("--keys names party %q, which is not in the scenario", name)
		}
	}
	r, err := sim.NewRunner(plan, clients, sim.Options{
		Speed: float64(speed), FromS: fromS, UntilS: untilS, AckDelay: *ackDelay,
		Logf: func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) },
	})
	if err != nil {
		return usageError{err}
	}
	stopProgress := showProgress(stdout, sc, &r.Stats, untilOr(untilS, plan.EndS))
	err = r.Run(ctx)
	stopProgress()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func untilOr(untilS, endS float64) float64 {
	if untilS > 0 && untilS < endS {
		return untilS
	}
	return endS
}

// showProgress prints the run's progress until the returned function is
// called: a bar redrawn in place on a terminal, a plain line every ten
// seconds otherwise (logs, pipes, CI).
func showProgress(w io.Writer, sc *sim.Scenario, st *sim.Stats, endS float64) func() {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	every := 10 * time.Second
	if tty {
		every = 250 * time.Millisecond
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(w)
				}
				fmt.Fprintln(w, progressLine(sc, st, endS, false))
				return
			case <-t.C:
				if tty {
					fmt.Fprint(w, "\r"+progressLine(sc, st, endS, true)+"\x1b[K")
				} else {
					fmt.Fprintln(w, progressLine(sc, st, endS, false))
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

func progressLine(sc *sim.Scenario, st *sim.Stats, endS float64, bar bool) string {
	t := st.SimTimeS()
	clock := sc.Epoch.Add(time.Duration(t * float64(time.Second))).UTC().Format("15:04:05")
	counts := fmt.Sprintf("sim %s  reports %d  volumes %d  alerts %d  acks %d  escalations %d",
		clock, st.ReportsSent.Load(), st.VolumesDeclared.Load(), st.AlertsSeen.Load(), st.Acks.Load(), st.Escalations.Load())
	if !bar || endS <= 0 {
		return counts
	}
	const width = 24
	n := int(t / endS * width)
	n = max(0, min(width, n))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "] " + counts
}

// loadKeysFile reads the parties' signing keys named in path (lines
// "PARTY KEYFILE", as a token file; a relative KEYFILE is relative to
// path's directory). No path, no keys.
func loadKeysFile(path string) (map[string]ed25519.PrivateKey, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--keys: %v", err)
	}
	defer f.Close()
	files, err := parseTokens(f)
	if err != nil {
		return nil, usagef("--keys %s: %v", path, err)
	}
	keys := map[string]ed25519.PrivateKey{}
	for party, file := range files {
		if party == "" {
			return nil, usagef("--keys %s: want lines 'PARTY KEYFILE'", path)
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(path), file)
		}
		key, err := partykey.ReadFile(file)
		if err != nil {
			return nil, usagef("--keys %s: party %s: %v", path, party, err)
		}
		keys[party] = key
	}
	return keys, nil
}
