package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/bench"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/traffic"
)

// benchMode is one family of measurements of `deconflict bench` (package
// bench does the measuring): its flags, parsed here.
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
	for _, m := range []benchMode{
		{"", "whole-airspace detection (--scenario global|theatre|metro --aircraft N): full cycle and updates against brute force", runBenchAirspace},
		{"--volumes", "strategic volume checks (--volumes N): index against a scan of N volumes, and dense-area writes on SQLite", runBenchVolumes},
		{"--startup", "server start time on a data directory holding N volumes, against an empty one", runBenchStartup},
		{"--http", "HTTP position ingest (reports/s) and report-to-SSE alert latency against the in-process engine", runBenchHTTP},
		{"--replicas", "HTTP ingest and report-to-SSE alert latency: two replicas on PostgreSQL next to one on SQLite", runBenchReplicas},
		{"--audit", "audit log: append, export and verify throughput against raw store writes, raw reads and plain SHA-256", runBenchAudit},
		{"--resolution", "tactical resolution: bands of one aircraft against its 20 nearest (CPU time) against testing every candidate, and HTTP ingest with resolutions against without", runBenchResolution},
		{"--asterix-feed", "an ASTERIX feed replaying a recording (--recording F) as fast as it goes against the HTTP ingest of the server it feeds", runBenchASTERIXFeed},
	} {
		registerBenchMode(m)
	}
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

// progressTo prints a mode's progress lines on w.
func progressTo(w io.Writer, prefix string) bench.Progress {
	return func(format string, a ...any) { fmt.Fprintf(w, prefix+format+"\n", a...) }
}

// textWriter is a result that writes itself for a person.
type textWriter interface{ WriteText(io.Writer) error }

// printResult writes res as one JSON object or as text.
func printResult(stdout io.Writer, asJSON bool, res textWriter) error {
	if asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	return res.WriteText(stdout)
}

func knownScenario(s string) error {
	if !slices.Contains(traffic.Scenarios(), s) {
		return usagef("scenario: unknown %q (want one of %v)", s, traffic.Scenarios())
	}
	return nil
}

func runBenchAirspace(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.AirspaceOptions
	fs.StringVar(&o.Scenario, "scenario", "global", "traffic scenario: "+strings.Join(traffic.Scenarios(), " or "))
	fs.IntVar(&o.Aircraft, "aircraft", 25000, "number of aircraft (metro: of drones, with 200 manned aircraft)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the traffic generator")
	fs.IntVar(&o.Parties, "parties", 4, "number of parties the aircraft belong to")
	fs.IntVar(&o.Hubs, "hubs", 0, fmt.Sprintf("hubs of the global scenario (default %d) or depots and hospitals of metro (default %d)", traffic.DefaultHubs, traffic.MetroHubs))
	fs.Float64Var(&o.CellKM, "cell-km", 0, fmt.Sprintf("grid cell edge in km for every class pair (default: sized per pair, %g km between manned aircraft)", detect.DefaultCellM/1000.0))
	fs.Float64Var(&o.SliceS, "slice-s", 0, fmt.Sprintf("grid time slice in seconds for every class pair (default: sized per pair, %g s between manned aircraft)", float64(detect.DefaultSliceS)))
	fs.IntVar(&o.Repeats, "repeats", 5, "full-cycle runs (the median is reported)")
	fs.IntVar(&o.BruteForceRuns, "brute-force-samples", 0, "brute-force runs (median reported); 0 = 3 up to 12,000 aircraft, else 1")
	fs.BoolVar(&o.SkipBruteForce, "skip-brute-force", false, "leave out the brute force (minutes at 100,000 aircraft); the conflict sets are then not compared")
	fs.IntVar(&o.Updates, "updates", 5000, "single-report updates timed")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the run up to the brute force to this file")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	switch {
	case o.Aircraft < 2:
		return usagef("--aircraft must be at least 2")
	case o.Hubs < 0 || o.Hubs == 1:
		return usagef("--hubs must be 0 (the scenario's default) or at least 2")
	case o.Parties < 1:
		return usagef("--parties must be at least 1")
	case o.CellKM < 0:
		return usagef("--cell-km must not be negative")
	case o.SliceS < 0:
		return usagef("--slice-s must not be negative")
	case o.Repeats < 1:
		return usagef("--repeats must be at least 1")
	case o.BruteForceRuns < 0:
		return usagef("--brute-force-samples must not be negative")
	case o.SkipBruteForce && o.BruteForceRuns > 0:
		return usagef("--skip-brute-force and --brute-force-samples exclude each other")
	case o.Updates < 1:
		return usagef("--updates must be at least 1")
	}
	if err := knownScenario(o.Scenario); err != nil {
		return err
	}
	res, err := bench.Airspace(o, progressTo(stderr, "bench "))
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, res)
}

func runBenchVolumes(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --volumes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.VolumesOptions
	fs.IntVar(&o.Volumes, "volumes", 100_000, "number of stored volumes for the check benchmark")
	fs.IntVar(&o.Queries, "queries", 5000, "conflict checks timed through the index")
	fs.IntVar(&o.ScanQueries, "scan-queries", 200, "conflict checks timed by scanning every volume (the baseline)")
	fs.IntVar(&o.Writers, "writers", 16, "concurrent writers of the dense-area benchmark (0 skips it)")
	fs.IntVar(&o.Parties, "parties", 4, "parties of the dense-area writers (at least 2)")
	fs.Float64Var(&o.Seconds, "seconds", 10, "duration of the dense-area benchmark")
	fs.Float64Var(&o.SideM, "side-m", 1000, "side of the busy square every dense-area volume overlaps")
	fs.StringVar(&o.Dir, "dir", "", "directory of the SQLite store of the dense-area benchmark (default: a fresh temporary one)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	switch {
	case o.Volumes < 1:
		return usagef("--volumes must be at least 1")
	case o.Queries < 1 || o.ScanQueries < 1:
		return usagef("--queries and --scan-queries must be at least 1")
	case o.Writers < 0:
		return usagef("--writers must not be negative")
	case o.Parties < 2:
		return usagef("--parties must be at least 2")
	case o.Seconds <= 0 || o.SideM <= 0:
		return usagef("--seconds and --side-m must be above zero")
	}
	res, err := bench.Volumes(o, stderr)
	if err != nil && res.Dense == nil {
		return err
	}
	// A conflict committed unannounced is reported with the figures.
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if e := enc.Encode(res); e != nil {
			return e
		}
	} else if e := res.WriteText(stdout); e != nil {
		return e
	}
	return err
}

func runBenchStartup(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --startup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("startup", true, "select this mode")
	var o bench.StartupOptions
	fs.IntVar(&o.Volumes, "volumes", 100_000, "volumes in the data directory")
	fs.IntVar(&o.Runs, "runs", 3, "starts measured on each directory (median)")
	fs.StringVar(&o.Dir, "dir", "", "data directory holding the volumes: filled when it has no store yet, kept afterwards (default: a temp dir)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the starts with volumes to this file")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	if o.Volumes < 0 || o.Runs < 1 {
		return usagef("--volumes >= 0 and --runs >= 1")
	}
	res, err := bench.Startup(o, progressTo(stderr, "bench --startup: "))
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, res)
}

func runBenchHTTP(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("http", true, "select this mode")
	var o bench.HTTPOptions
	loadFlags(fs, &o.LoadOptions, 25_000, 200)
	fs.StringVar(&o.Scenario, "scenario", "global", "traffic: "+strings.Join(traffic.Scenarios(), " or "))
	fs.IntVar(&o.ObserverAircraft, "observer-aircraft", 200, "aircraft of the party whose GET /v1/tracks is timed")
	fs.IntVar(&o.TracksSamples, "tracks-samples", 500, "GET /v1/tracks timed")
	fs.IntVar(&o.NeedToKnowRounds, "need-to-know-rounds", 3, "turns of ingest without and with need to know")
	asJSON := fs.Bool("json", false, "print one JSON object")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	if err := checkLoad(o.LoadOptions); err != nil {
		return err
	}
	if o.ObserverAircraft < 1 || o.TracksSamples < 1 || o.NeedToKnowRounds < 1 {
		return usagef("--observer-aircraft, --tracks-samples and --need-to-know-rounds >= 1")
	}
	if err := knownScenario(o.Scenario); err != nil {
		return err
	}
	res, err := bench.HTTP(context.Background(), o, progressTo(stderr, "bench --http: "))
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, res)
}

func runBenchResolution(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --resolution", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("resolution", true, "select this mode")
	var o bench.ResolutionOptions
	loadFlags(fs, &o.LoadOptions, 25_000, 1)
	fs.StringVar(&o.Scenario, "scenario", "global", "traffic: "+strings.Join(traffic.Scenarios(), " or "))
	fs.IntVar(&o.Scenes, "scenes", 500, "aircraft whose bands are computed")
	fs.IntVar(&o.Intruders, "intruders", 20, "nearest aircraft each one's bands are computed against")
	fs.DurationVar(&o.OnDemandEvery, "on-demand-every", 5*time.Second, "during the ingest with resolutions, ask for each open alert's resolution this often (0: events only)")
	fs.Float64Var(&o.ResolutionWorkPerSecond, "resolution-work-per-second", 0, "each party's budget of resolutions on demand on the servers, as serve's flag (0: serve's default); the on-demand client's requests refused by it are counted and reported")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	if err := checkLoad(o.LoadOptions); err != nil {
		return err
	}
	if !(o.ResolutionWorkPerSecond >= 0) {
		return usagef("--resolution-work-per-second: must be 0 (the default) or above, got %g", o.ResolutionWorkPerSecond)
	}
	if o.Scenes < 1 || o.Intruders < 1 || o.Intruders >= o.Aircraft {
		return usagef("--scenes >= 1, --intruders >= 1 and below --aircraft")
	}
	if err := knownScenario(o.Scenario); err != nil {
		return err
	}
	res, err := bench.Resolution(context.Background(), o, progressTo(stderr, "bench --resolution: "))
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, res)
}

// loadFlags registers the flags of the HTTP load, with the mode's default
// number of aircraft and of latency samples.
func loadFlags(fs *flag.FlagSet, o *bench.LoadOptions, aircraft, samples int) {
	fs.IntVar(&o.Aircraft, "aircraft", aircraft, "tracks in the airspace")
	fs.IntVar(&o.Batch, "batch", 1000, "reports per request")
	fs.IntVar(&o.Clients, "clients", 4, "concurrent ingest clients, spread over the replicas")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each ingest measurement")
	fs.IntVar(&o.Samples, "samples", samples, "conflicts created for each latency measurement")
}

func checkLoad(o bench.LoadOptions) error {
	if o.Aircraft < 2 || o.Batch < 1 || o.Clients < 1 || o.Samples < 1 {
		return usagef("--aircraft >= 2, --batch, --clients and --samples >= 1")
	}
	return nil
}

func runBenchReplicas(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --replicas", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("replicas", true, "select this mode")
	var o bench.ReplicasOptions
	// Not --store: DECONFLICT_STORE, set for a server, must never point
	// the benchmark at the server's database.
	fs.StringVar(&o.StoreURL, "bench-store", "", "an EMPTY PostgreSQL database (postgres://...); empty starts a throwaway cluster with the PostgreSQL binaries installed here (env DECONFLICT_BENCH_STORE)")
	loadFlags(fs, &o.LoadOptions, 10_000, 100)
	asJSON := fs.Bool("json", false, "print one JSON array")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	if err := checkLoad(o.LoadOptions); err != nil {
		return err
	}
	sides, err := bench.Replicas(context.Background(), o, progressTo(stderr, "bench --replicas: "))
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(sides)
	}
	return bench.WriteReplicasText(stdout, o, sides)
}

func runBenchAudit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("audit", true, "select this mode")
	var o bench.AuditOptions
	fs.IntVar(&o.Records, "records", 20000, "records to append")
	fs.IntVar(&o.Batch, "batch", 100, "records per transaction")
	asJSON := fs.Bool("json", false, "print one JSON object")
	trust := fs.Bool("trust", true, "also measure the transparency log and signatures (tree on append, signed ingest, proofs, witness check)")
	var to bench.TrustOptions
	fs.IntVar(&to.SignedBatch, "signed-batch", 1000, "reports per signed position batch")
	fs.IntVar(&to.Batches, "signed-batches", 100, "position batches each party posts (from each client), alternating with the other party")
	fs.IntVar(&to.SignedClients, "signed-clients", 4, "clients posting at once in the second measurement of signed ingest (the first: one)")
	fs.IntVar(&to.ProofRecords, "proof-records", 10_000_000, "tree size for the inclusion proof timing")
	fs.IntVar(&to.Proofs, "proofs", 10_000, "inclusion proofs timed")
	fs.IntVar(&to.CheckRecords, "check-records", 1_000_000, "records a party's witness check catches up with")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	if o.Records < 1 || o.Batch < 1 {
		return usagef("--records and --batch must be positive")
	}
	if *trust && (to.SignedBatch < 1 || to.Batches < 1 || to.SignedClients < 1 || to.ProofRecords < 1 || to.Proofs < 1 || to.CheckRecords < 1) {
		return usagef("--signed-batch, --signed-batches, --signed-clients, --proof-records, --proofs and --check-records must be positive")
	}
	res, err := bench.Audit(o)
	if err != nil {
		return err
	}
	if err := printResult(stdout, *asJSON, res); err != nil || !*trust {
		return err
	}
	to.Records, to.Batch = o.Records, o.Batch
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	tr, err := bench.Trust(to, progress)
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, tr)
}

func runBenchASTERIXFeed(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --asterix-feed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("asterix-feed", true, "select this mode")
	var o bench.ASTERIXFeedOptions
	fs.StringVar(&o.Recording, "recording", "", "an ASTERIX recording, e.g. ../shared/recordings/asterix/jade_062_30min.ff")
	fs.IntVar(&o.Clients, "clients", 4, "concurrent clients measuring the server's ingest")
	fs.IntVar(&o.Rounds, "rounds", 3, "runs of each measurement, alternated (medians reported)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "least length of each measurement")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	switch {
	case o.Recording == "":
		return usagef("--recording is required")
	case o.Clients < 1 || o.Rounds < 1:
		return usagef("--clients and --rounds must be at least 1")
	case o.Duration <= 0:
		return usagef("--duration must be above zero")
	}
	res, err := bench.ASTERIXFeed(context.Background(), o, progressTo(stderr, "bench --asterix-feed: "))
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, res)
}
