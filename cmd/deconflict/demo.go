package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/sim"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/web"
	"github.com/deconflict/deconflict/internal/witness"
)

func init() {
	register(command{
		name:    "demo",
		summary: "run the server and the syria-2015 scenario in one process, with the console",
		run:     runDemo,
	})
}

// demoOptions are the knobs of one demo run.
type demoOptions struct {
	For      time.Duration // wall time; 0 runs until interrupted or the day ends
	Data     string        // data directory; a fresh temporary one when empty
	Listen   string
	Scenario string
	Speed    float64
	Seed     uint64
	AckDelay time.Duration
	UntilS   float64 // scenario time to stop at (0: the end of the day)
	// NoResolution runs the same traffic with planners and pilots that
	// ignore the service's resolutions.
	NoResolution bool
	Out          io.Writer
}

// demoSummary is what a demo run did, for the final lines and for tests.
type demoSummary struct {
	Wall            time.Duration
	FromS, ToS      float64
	Reports         int64
	Rejected        int64
	Volumes         int64
	VolumesActive   int64
	KeyRetries      int64
	VolumeConflicts int64
	// Resolution: whether planners and pilots acted on resolutions, the
	// strategic conflicts met and resolved through alternatives, the
	// manoeuvres flown, and the pairs that really lost separation.
	Resolution         bool
	StrategicConflicts int64
	StrategicResolved  int64
	Manoeuvres         int64
	Losses             int64
	Acks               int64
	Escalations        int64
	AlertsByLevel      map[string]int // alerts that reached each level
	Alerts             []sim.AlertRecord
	Audit              audit.Summary
	AuditErr           error
	// Witnesses are the parties' witnesses as the log saw them at the end.
	Witnesses []witness.Status
	Scenario  *sim.Scenario
}

// minDemoSpeed is the slowest the demo runs: a day of the scenario in
// ten, and deadlines to acknowledge ten times their agreed length.
const minDemoSpeed = 0.1

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opt := demoOptions{Out: stdout, Scenario: "syria-2015"}
	fs.DurationVar(&opt.For, "for", 0, "stop after this wall-clock time and print a summary (default: until Ctrl-C)")
	fs.StringVar(&opt.Data, "data", "", "data directory (default: a fresh temporary directory, removed at the end)")
	fs.StringVar(&opt.Listen, "listen", "127.0.0.1:8080", "address of the server and console")
	speed := speedFlag(10)
	fs.Var(&speed, "speed", "scenario seconds per wall-clock second")
	fs.Uint64Var(&opt.Seed, "seed", 1, "seed of the scenario's variations")
	fs.DurationVar(&opt.AckDelay, "ack-delay", 0, "wall time the parties take to acknowledge (default: 10 scenario seconds, at most 1 s)")
	fs.BoolVar(&opt.NoResolution, "no-resolution", false, "the same traffic with planners and pilots that ignore alternatives and suggestions")
	if err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if speed == 0 {
		return usagef("--speed: the demo needs a factor (deadlines are scaled by it), not max")
	}
	if speed < minDemoSpeed {
		// The deadlines to acknowledge are scaled by it: far slower
		// than real time, they went beyond what the rules take, and the
		// demo failed once its server was up, naming a rule.
		return usagef("--speed %g: at least %g (ten times slower than real time); the deadlines to acknowledge are scaled by it", float64(speed), minDemoSpeed)
	}
	opt.Speed = float64(speed)
	if opt.For < 0 {
		return usagef("--for must not be negative")
	}
	ctx, stop := signalContext()
	defer stop()
	sum, err := demo(ctx, opt)
	if err != nil {
		return err
	}
	printSummary(stdout, sum)
	if sum.AuditErr != nil {
		return fmt.Errorf("the audit log does not verify: %w", sum.AuditErr)
	}
	return nil
}

// demo runs the server in-process on a fresh embedded store, creates the
// scenario's parties, and runs the scenario against it from its demo start
// (shortly before the first designed encounter) at opt.Speed, until ctx is
// done, opt.For has passed or the scenario ends. Then it stops the server
// and verifies the audit log.
func demo(ctx context.Context, opt demoOptions) (demoSummary, error) {
	out := opt.Out
	sc, err := loadScenario(opt.Scenario)
	if err != nil {
		return demoSummary{}, err
	}
	plan, err := sc.Plan(opt.Seed)
	if err != nil {
		return demoSummary{}, err
	}
	if opt.AckDelay <= 0 {
		opt.AckDelay = min(time.Second, time.Duration(10/opt.Speed*float64(time.Second)))
	}
	dir := opt.Data
	if dir == "" {
		if dir, err = os.MkdirTemp("", "deconflict-demo-"); err != nil {
			return demoSummary{}, err
		}
		defer os.RemoveAll(dir)
	} else if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		return demoSummary{}, usagef("--data %s is not empty: the demo needs a fresh directory", dir)
	}
	st, err := openStore(dir, "")
	if err != nil {
		return demoSummary{}, err
	}
	closeStore := sync.OnceValue(st.Close)
	defer closeStore()

	// The server runs until the demo is over, not until ctx ends, so that
	// it shuts down after the simulator and signs its final checkpoint.
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	type readyInfo struct {
		base string
		svc  *service.Service
	}
	ready := make(chan readyInfo, 1)
	served := make(chan error, 1)
	go func() {
		served <- server.Run(srvCtx, server.Config{
			Store: st, DataDir: dir, Listen: opt.Listen, Console: web.Handler(),
			Ready: func(base string, svc *service.Service) { ready <- readyInfo{base, svc} },
		})
	}()
	var info readyInfo
	select {
	case info = <-ready:
	case err := <-served:
		return demoSummary{}, fmt.Errorf("starting the server: %w", err)
	}

	clients := map[string]*client.Client{}
	tokens := map[string]string{}
	var tokenLines strings.Builder
	keyFiles := map[string]string{}
	partyKeys := audit.PartyKeys{}
	for _, p := range sc.Parties {
		// Each party signs its writes with its own key (the console
		// imports the same file to sign in the browser).
		key, err := partykey.Generate()
		if err != nil {
			return demoSummary{}, err
		}
		keyFiles[p.Name] = filepath.Join(dir, p.Name+"-key.pem")
		if err := partykey.WriteFile(keyFiles[p.Name], key); err != nil {
			return demoSummary{}, err
		}
		partyKeys[p.Name] = map[string]ed25519.PublicKey{partykey.ID(partykey.Public(key)): partykey.Public(key)}
		tok, err := info.svc.CreateParty(ctx, p.Name, partykey.Public(key))
		if err != nil {
			return demoSummary{}, fmt.Errorf("creating party %s: %w", p.Name, err)
		}
		clients[p.Name] = client.New(info.base, tok).WithKey(key)
		tokens[p.Name] = tok
		fmt.Fprintf(&tokenLines, "%s %s\n", p.Name, tok)
	}
	tokenFile := filepath.Join(dir, "demo-tokens.txt")
	if err := os.WriteFile(tokenFile, []byte(tokenLines.String()), 0o600); err != nil {
		return demoSummary{}, err
	}
	// Each party runs its own witness (here, inside the demo process),
	// which cosigns the record's checkpoints while they stay consistent.
	_, logVKey := info.svc.LogKey()
	var witnesses []rules.Witness
	for _, p := range sc.Parties {
		wkey, err := partykey.Generate()
		if err != nil {
			return demoSummary{}, err
		}
		ws, err := witness.NewServer(p.Name+".demo/witness", wkey, filepath.Join(dir, "witness-"+p.Name), []string{logVKey})
		if err != nil {
			return demoSummary{}, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return demoSummary{}, err
		}
		hs := &http.Server{Handler: ws, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(l) }()
		defer hs.Close()
		witnesses = append(witnesses, rules.Witness{Party: p.Name, URL: "http://" + l.Addr().String(), VKey: ws.VerifierKey()})
	}
	// The scenario's rules and the witnesses, with the deadlines to
	// acknowledge scaled: time runs opt.Speed times faster than real time,
	// and so must they, or nothing would ever escalate. The operator
	// proposes them and every party accepts, as the rules by agreement ask.
	r, err := rules.Amend(info.svc.Rules(), sc.Rules)
	if err != nil {
		return demoSummary{}, fmt.Errorf("the scenario's rules: %w", err)
	}
	r.Witnesses = witnesses
	scale := func(s float64) float64 { return max(1, s/opt.Speed) }
	r.AckDeadlineS, r.AckDeadlineHighestS, r.EscalationDeadlineS = scale(r.AckDeadlineS), scale(r.AckDeadlineHighestS), scale(r.EscalationDeadlineS)
	operator := party.Principal{Party: party.OperatorName, Operator: true}
	prop, err := info.svc.ProposeRules(ctx, operator, r)
	if err != nil {
		return demoSummary{}, fmt.Errorf("proposing the demo's rules: %w", err)
	}
	for _, p := range sc.Parties {
		if _, err := clients[p.Name].AcceptRules(ctx, prop.Version); err != nil {
			return demoSummary{}, fmt.Errorf("%s accepting the demo's rules: %w", p.Name, err)
		}
	}
	if r = info.svc.Rules(); r.Version != prop.Version {
		return demoSummary{}, fmt.Errorf("the demo's rules (version %d) are not in force after every party accepted", prop.Version)
	}

	resolution := "planners take alternatives, pilots follow suggestions"
	if opt.NoResolution {
		resolution = "resolutions ignored"
	}
	fmt.Fprintf(out, "deconflict demo: scenario %s at %gx (%s), data in %s\n", sc.Name, opt.Speed, resolution, dir)
	fmt.Fprintf(out, "console: %s/  (paste a token to log in)\n", info.base)
	for _, p := range sc.Parties {
		fmt.Fprintf(out, "  login as %-10s %s  (signing key for the console: %s)\n", p.Name, tokens[p.Name], keyFiles[p.Name])
	}
	fmt.Fprintf(out, "tokens for `deconflict sim|feed --token-file`: %s\n", tokenFile)
	fmt.Fprintf(out, "deadlines scaled to the speed: acknowledge within %gs (%s: %gs), escalation after %gs more\n",
		r.AckDeadlineS, r.Highest().Name, r.AckDeadlineHighestS, r.EscalationDeadlineS)

	runCtx := ctx
	if opt.For > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, opt.For)
		defer cancel()
	}
	pr := &eventPrinter{out: out, plan: plan, seen: map[string]bool{}, level: map[string]string{}}
	runner, err := sim.NewRunner(plan, clients, sim.Options{
		Speed: opt.Speed, FromS: sc.DemoStartS, UntilS: opt.UntilS, AckDelay: opt.AckDelay, Resolve: !opt.NoResolution,
		OnEvent: pr.print,
		Logf:    func(format string, args ...any) { pr.line("note: " + fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return demoSummary{}, err
	}
	pr.stats, pr.runner = &runner.Stats, runner
	started := time.Now()
	runErr := runner.Run(runCtx)
	wall := time.Since(started)
	pr.close()
	if runErr != nil && !errors.Is(runErr, context.Canceled) && !errors.Is(runErr, context.DeadlineExceeded) {
		return demoSummary{}, runErr
	}
	fmt.Fprintln(out, "stopping the server")
	stopServer()
	if err := <-served; err != nil {
		return demoSummary{}, fmt.Errorf("server: %w", err)
	}

	sum := demoSummary{
		Witnesses: info.svc.LogStatus(ctx).Witnesses,
		Wall:      wall, FromS: sc.DemoStartS, ToS: runner.Stats.SimTimeS(), Scenario: sc,
		Reports: runner.Stats.ReportsSent.Load(), Rejected: runner.Stats.ReportsRejected.Load(),
		Volumes: runner.Stats.VolumesDeclared.Load(), VolumesActive: runner.Stats.VolumesActive.Load(),
		KeyRetries:      runner.Stats.KeyRetries.Load(),
		VolumeConflicts: runner.Stats.VolumeConflicts.Load(), Acks: runner.Stats.Acks.Load(),
		Escalations: runner.Stats.Escalations.Load(), Alerts: runner.Alerts(), AlertsByLevel: map[string]int{},
		Resolution:         !opt.NoResolution,
		StrategicConflicts: runner.Stats.StrategicConflicts.Load(), StrategicResolved: runner.Stats.StrategicResolved.Load(),
		Manoeuvres: runner.Stats.Manoeuvres.Load(), Losses: runner.Stats.LossesOfSeparation.Load(),
	}
	for _, a := range sum.Alerts {
		for l := range a.Levels {
			sum.AlertsByLevel[l]++
		}
	}
	// After Ctrl-C ctx is done, but the record is still worth checking.
	sum.Audit, sum.AuditErr = verifyAudit(context.WithoutCancel(ctx), st, dir, partyKeys)
	return sum, nil
}

// verifyAudit exports the whole audit log of the stopped server and checks
// it with its public key and the parties' keys, as an analyst would.
func verifyAudit(ctx context.Context, st store.Store, dir string, partyKeys audit.PartyKeys) (audit.Summary, error) {
	key, err := audit.LoadOrCreateKey(dir)
	if err != nil {
		return audit.Summary{}, err
	}
	var buf bytes.Buffer
	err = st.View(ctx, func(tx store.Tx) error {
		return audit.NewLog(key, 1000).Export(tx, &buf, "", 1, time.Now())
	})
	if err != nil {
		return audit.Summary{}, fmt.Errorf("exporting the audit log: %w", err)
	}
	return audit.VerifyWithPartyKeys(&buf, key.Public().(ed25519.PublicKey), partyKeys)
}

// eventPrinter prints each alert change, escalation, settled hotline item
// and strategic conflict once (both parties receive most of them), as one readable line.
type eventPrinter struct {
	out    io.Writer
	plan   *sim.Plan
	stats  *sim.Stats
	runner *sim.Runner
	mu     sync.Mutex
	seen   map[string]bool
	level  map[string]string // alert id -> last level printed
	closed bool              // set when the run is over: late lines are dropped
}

func (p *eventPrinter) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

func (p *eventPrinter) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	clock := "--:--:--"
	if p.stats != nil {
		t := p.stats.SimTimeS()
		clock = p.plan.Scenario.Epoch.Add(time.Duration(t * float64(time.Second))).UTC().Format("15:04:05")
	}
	fmt.Fprintf(p.out, "%s %s\n", clock, s)
}

// describeUnanswered names the recipients a settled item no longer waits
// for, marking those revoked by then.
func describeUnanswered(s client.Settlement) string {
	names := make([]string, 0, len(s.Unanswered))
	for _, party := range s.Unanswered {
		if slices.Contains(s.Revoked, party) {
			party += " (revoked)"
		}
		names = append(names, party)
	}
	return strings.Join(names, ", ")
}

// levelChanged keeps the alert lines to what matters: raised, a change of
// level, cleared; not every refinement of the timing.
func (p *eventPrinter) levelChanged(kind string, a client.Alert) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	last, seen := p.level[a.ID]
	p.level[a.ID] = a.Level
	return kind != "alert_updated" || !seen || last != a.Level
}

func (p *eventPrinter) once(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[key] {
		return false
	}
	p.seen[key] = true
	return true
}

func (p *eventPrinter) print(_ string, ev client.Event) {
	switch ev.Kind {
	case "alert_raised", "alert_updated", "alert_cleared":
		var a client.Alert
		if json.Unmarshal(ev.Data, &a) != nil {
			return
		}
		// A transition with a resolution is one event per party: print the
		// transition once, and each party's suggestion.
		if p.once(fmt.Sprint(a.ID, ev.Kind, a.Level, a.Time.UnixNano())) && p.levelChanged(ev.Kind, a) {
			p.line(describeAlert(ev.Kind, a))
		}
		if a.Resolution == nil {
			return
		}
		for _, ar := range a.Resolution.Aircraft {
			if s := ar.Suggestion; s != nil && s.Kind != client.ManoeuvreMaintain && p.once(fmt.Sprint("sugg", a.ID, ar.Aircraft, s.Kind, s.TurnDeg, s.ClimbM)) {
				p.line(describeSuggestion(ar, a.Level))
			}
		}
	case "escalated":
		var m client.Message
		if json.Unmarshal(ev.Data, &m) != nil || !p.once("esc/"+m.ID) {
			return
		}
		var missing []string
		for _, to := range m.To {
			if !m.AckedBy(to) {
				missing = append(missing, to)
			}
		}
		about := m.Thread
		if m.Ref != nil && m.Ref.AlertID != "" && p.runner != nil {
			if a, ok := p.runner.Alert(m.Ref.AlertID); ok {
				var names []string
				for _, id := range a.Aircraft {
					if f := p.plan.Flight(id); f != nil {
						names = append(names, fmt.Sprintf("%s (%s)", f.Callsign, f.Party))
					}
				}
				about = strings.Join(names, " x ")
			}
		}
		p.line(fmt.Sprintf("ESCALATED %s %s: not acknowledged in time by %s", m.Kind, about, strings.Join(missing, ", ")))
	case "message":
		var m client.Message
		if json.Unmarshal(ev.Data, &m) != nil || m.Settled == nil || !p.once("settled/"+m.ID) {
			return
		}
		p.line(fmt.Sprintf("SETTLED %s %s: %s; no longer waits for %s", m.Kind, m.Thread, m.Settled.Reason, describeUnanswered(*m.Settled)))
	case "volume_conflict":
		var vols []client.Volume
		if json.Unmarshal(ev.Data, &vols) != nil {
			var wrapped struct{ Volumes []client.Volume }
			json.Unmarshal(ev.Data, &wrapped)
			vols = wrapped.Volumes
		}
		// The event may overtake the answer that tells the simulator which
		// flight a new volume is for: name the flights a moment later.
		time.AfterFunc(500*time.Millisecond, func() { p.volumeConflict(vols) })
	}
}

// volumeConflict prints a strategic conflict once per pair of flights
// (flights declare chains of volumes).
func (p *eventPrinter) volumeConflict(vols []client.Volume) {
	var names []string
	for _, v := range vols {
		name := v.Party + " volume " + v.ID
		if p.runner != nil {
			if f := p.runner.FlightOfVolume(v.ID); f != nil {
				name = fmt.Sprintf("%s (%s)", f.Callsign, f.Party)
			}
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 || !p.once("vc/"+strings.Join(names, "/")) {
		return
	}
	p.line("STRATEGIC conflict of declared volumes: " + strings.Join(names, " x "))
}

func describeAlert(kind string, a client.Alert) string {
	var who []string
	for _, ac := range a.Aircraft {
		name := ac.Callsign
		if name == "" {
			name = ac.Aircraft
		}
		who = append(who, fmt.Sprintf("%s (%s)", name, ac.Party))
	}
	verb := strings.TrimPrefix(kind, "alert_")
	head := fmt.Sprintf("ALERT %-7s %-8s %s %s", verb, a.Level, a.Kind, strings.Join(who, " x "))
	switch {
	case kind == "alert_cleared":
		return head + " (" + a.Reason + ")"
	case a.Kind == "conflict":
		return fmt.Sprintf("%s: loss of separation in %.0f s, closest %.1f NM / %.0f ft in %.0f s",
			head, a.TInS, geo.MToNM(a.DHCPAM), geo.MToFeet(a.DVCPAM), a.TCPAS)
	}
	return head
}

// describeSuggestion is one aircraft's suggestion as a line.
func describeSuggestion(ar client.AircraftResolution, level string) string {
	s := ar.Suggestion
	what := ""
	switch s.Kind {
	case client.ManoeuvreTurn:
		what = fmt.Sprintf("turn right %.0f° to track %03.0f", s.TurnDeg, s.TrackDeg)
	case client.ManoeuvreClimb, client.ManoeuvreDescend:
		what = fmt.Sprintf("%s %.0f ft to %.0f ft", s.Kind, math.Abs(geo.MToFeet(s.ClimbM)), geo.MToFeet(s.AltM))
	}
	return fmt.Sprintf("SUGGEST %-8s %s (%s): %s", level, ar.Callsign, ar.Party, what)
}

func printSummary(w io.Writer, s demoSummary) {
	clock := func(t float64) string {
		return s.Scenario.Epoch.Add(time.Duration(t * float64(time.Second))).UTC().Format("15:04:05")
	}
	fmt.Fprintf(w, "\nsummary: %s of wall time, scenario %s to %s\n", s.Wall.Round(time.Second), clock(s.FromS), clock(s.ToS))
	fmt.Fprintf(w, "  reports          %d sent, %d rejected\n", s.Reports, s.Rejected)
	fmt.Fprintf(w, "  volumes          %d declared, %d activated (the others conflict and stay accepted), %d awareness-key retries\n",
		s.Volumes, s.VolumesActive, s.KeyRetries)
	tactical := 0
	for _, a := range s.Alerts {
		if a.Kind == "conflict" {
			tactical++
		}
	}
	fmt.Fprintf(w, "  conflicts        %d strategic (volumes), %d tactical\n", s.VolumeConflicts, tactical)
	levels := make([]string, 0, len(s.AlertsByLevel))
	for l, n := range s.AlertsByLevel {
		levels = append(levels, fmt.Sprintf("%s %d", l, n))
	}
	sort.Strings(levels)
	fmt.Fprintf(w, "  alerts by level  %s (%d alerts)\n", strings.Join(levels, ", "), len(s.Alerts))
	if s.Resolution {
		fmt.Fprintf(w, "  resolution       %d strategic conflicts raised, %d resolved by an alternative; %d suggestions flown\n",
			s.StrategicConflicts, s.StrategicResolved, s.Manoeuvres)
	} else {
		fmt.Fprintf(w, "  resolution       off: alternatives and suggestions ignored\n")
	}
	fmt.Fprintf(w, "  losses of separation %d\n", s.Losses)
	fmt.Fprintf(w, "  acknowledgments  %d\n", s.Acks)
	fmt.Fprintf(w, "  escalations      %d\n", s.Escalations)
	if s.AuditErr != nil {
		fmt.Fprintf(w, "  audit            FAILED: %v\n", s.AuditErr)
	} else {
		fmt.Fprintf(w, "  audit            %d records verified (hash chain, %d signed checkpoints, signed head, %d statements signed by the parties)\n", s.Audit.Records, s.Audit.Checkpoints, s.Audit.Statements)
	}
	for _, st := range s.Witnesses {
		state := "cosigning"
		if st.Failing != "" {
			state = "failing: " + st.Failing
		}
		fmt.Fprintf(w, "  witness %-9s %d checkpoints cosigned, the latest of size %d (%s)\n", st.Party, st.Cosigned, st.Size, state)
	}
}
