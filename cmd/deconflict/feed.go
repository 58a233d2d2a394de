package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/feed"
	"github.com/deconflict/deconflict/internal/namedlines"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/printable"
)

func init() {
	register(command{
		name:    "feed",
		summary: "send a live feed to a server: SBS-1/BaseStation (TCP or file), ASTERIX (UDP or recording) or JSON lines",
		run:     runFeed,
	})
}

// clientFlags are the flags that say which server to talk to as which party.
type clientFlags struct {
	server, party, token, tokenFile string
	// keyFile is the party's own signing key: every write is signed with
	// it, as the server requires of a party that registered a public key.
	keyFile string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", envOr("DECONFLICT_SERVER", "http://127.0.0.1:8080"), "server base URL (env DECONFLICT_SERVER)")
	fs.StringVar(&c.party, "party", "", "party the reports belong to (picks its token in --token-file)")
	fs.StringVar(&c.token, "token", os.Getenv("DECONFLICT_TOKEN"), "bearer token of the party (env DECONFLICT_TOKEN)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file with the token, or lines 'PARTY TOKEN'")
	fs.StringVar(&c.keyFile, "key", "", "the party's Ed25519 signing key (PKCS#8 PEM, deconflict key new): signs every write")
}

// client returns an API client for the party, checking (when the server
// answers) that the token really is the party's.
func (c *clientFlags) client(ctx context.Context, stderr io.Writer) (*client.Client, error) {
	token := c.token
	if c.tokenFile != "" {
		tokens, err := loadTokenFile(c.tokenFile)
		if err != nil {
			return nil, err
		}
		if t, ok := tokens[c.party]; ok {
			token = t
		} else if t, ok := tokens[""]; ok {
			token = t
		} else {
			return nil, usagef("--token-file %s has no token for party %q", c.tokenFile, c.party)
		}
	}
	if token == "" {
		return nil, usagef("--token or --token-file is required")
	}
	if err := printable.Check(token); err != nil {
		return nil, usagef("--token: %v", err)
	}
	cl := client.New(c.server, token)
	if c.keyFile != "" {
		key, err := partykey.ReadFile(c.keyFile)
		if err != nil {
			return nil, usagef("--key: %v", err)
		}
		cl = cl.WithKey(key)
	}
	mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	me, err := cl.Me(mctx)
	switch {
	case err == nil && c.party != "" && me.Party != c.party:
		return nil, usagef("the token acts as party %q, not %q", me.Party, c.party)
	case err != nil && !client.Retryable(err):
		return nil, fmt.Errorf("server %s refuses the token: %w", c.server, err)
	case err != nil:
		fmt.Fprintf(stderr, "server %s not reachable yet (%v); will keep trying\n", c.server, err)
	}
	return cl, nil
}

// loadTokenFile reads a token file (see parseTokens).
func loadTokenFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--token-file: %v", err)
	}
	defer f.Close()
	tokens, err := parseTokens(f)
	if err != nil {
		return nil, usagef("--token-file %s: %v", path, err)
	}
	// A control character cannot go in the Authorization header: every
	// request would fail before it leaves, which the clients take for a
	// server not reachable yet and retry without end.
	for _, party := range slices.Sorted(maps.Keys(tokens)) {
		if err := printable.Check(tokens[party]); err != nil {
			if party == "" {
				return nil, usagef("--token-file %s: the token %v", path, err)
			}
			return nil, usagef("--token-file %s: the token of %s %v", path, printable.Escape(party), err)
		}
	}
	return tokens, nil
}

// parseTokens reads either one bare token (returned under the party ""),
// or lines "PARTY TOKEN", each party once; blank lines and # comments
// are skipped.
func parseTokens(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	err := namedlines.Each(r, func(fields []string) error {
		var party, token string
		switch len(fields) {
		case 1:
			token = fields[0]
		case 2:
			party, token = fields[0], fields[1]
		default:
			return errors.New("want 'PARTY TOKEN'")
		}
		// Named twice, the first token would silently give way to the
		// second, which may be the stale one.
		if _, twice := out[party]; twice {
			if party == "" {
				return errors.New("a second bare token")
			}
			return fmt.Errorf("party %q named twice", party)
		}
		out[party] = token
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no token in it")
	}
	return out, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runFeed(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signalContext()
	defer stop()
	return feedMain(ctx, args, stdout, stderr)
}

func feedMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "asterix" {
		return feedASTERIX(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || (args[0] != "sbs" && args[0] != "jsonl") {
		fmt.Fprintln(stderr, "usage: deconflict feed sbs (--connect HOST:PORT [--dial-timeout D] [--idle-timeout D] | --file FILE) --party NAME --server URL (--token T | --token-file F) [--key FILE]")
		fmt.Fprintln(stderr, "       deconflict feed jsonl --file FILE|- --party NAME --server URL (--token T | --token-file F) [--key FILE]")
		fmt.Fprintln(stderr, "       "+feedASTERIXUsage)
		return usagef("feed: the format (sbs, jsonl or asterix) comes first")
	}
	format := args[0]
	fs := flag.NewFlagSet("feed "+format, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	connect := fs.String("connect", "", "BaseStation source HOST:PORT (sbs only; e.g. dump1090's port 30003)")
	idleTimeout := fs.Duration("idle-timeout", feed.DefaultIdleTimeout, "with --connect: a source that sends nothing for this long is said to have gone silent, dropped and connected again")
	dialTimeout := fs.Duration("dial-timeout", feed.DefaultDialTimeout, fmt.Sprintf("with --connect: a connection attempt unanswered for this long is given up, said, and tried again with backoff (%v to %v)", feed.MinDialTimeout, feed.MaxDialTimeout))
	file := fs.String("file", "", "read from FILE ('-' for standard input); an sbs recording plays at its own pace, "+jumpHelp)
	var pf pipelineFlags
	pf.register(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if (*connect == "") == (*file == "") || (format == "jsonl" && *connect != "") {
		return usagef("give exactly one source: --file, or --connect for sbs")
	}
	if *idleTimeout <= 0 {
		return usagef("--idle-timeout must be above zero (e.g. 30s)")
	}
	if err := feed.CheckDialTimeout(*dialTimeout); err != nil {
		return usagef("--dial-timeout %v", err)
	}
	var more []fmt.Stringer
	dec := feed.NewSBSDecoder(nil)
	pacer := replayPacer(1, stderr, "feed sbs")
	switch {
	case format == "sbs" && *file != "":
		more = replayStatus(pacer, dec)
	case format == "sbs":
		more = append(more, dec)
	}
	p, err := pf.start(ctx, &cf, stdout, stderr, "feed", more...)
	if err != nil {
		return err
	}
	stats := p.stats
	dec.Stats = stats
	switch {
	case *connect != "":
		src := &feed.TCPSource{Addr: *connect, IdleTimeout: *idleTimeout, DialTimeout: *dialTimeout, Dial: dialSource, Stats: stats,
			Logf: func(format string, args ...any) { fmt.Fprintf(stderr, "feed sbs: "+format+"\n", args...) }}
		err = src.Follow(ctx, func(line string) error {
			if r, ok := dec.Live(line, time.Now()); ok {
				p.offer(r)
			}
			return nil
		})
	case format == "sbs":
		// A recorded BaseStation file plays at its own pace, re-stamped
		// onto the wall clock, as if it were live.
		err = withInput(*file, func(r io.Reader) error {
			return dec.Replay(ctx, r, pacer, p.in)
		})
	default:
		// JSON lines keep their own times: the producer is live.
		err = withInput(*file, func(r io.Reader) error {
			return feed.ReadLines(ctx, r, stats, func(line string) error {
				if strings.TrimSpace(line) == "" {
					return nil
				}
				rep, perr := feed.ParseJSONLine([]byte(line))
				if perr != nil {
					stats.Skip(feed.JSONSkipReason(perr))
					fmt.Fprintf(stderr, "skipped: %v\n", perr)
					return nil
				}
				return p.send(ctx, rep)
			})
		})
	}
	return p.finish(err)
}

// dialSource connects to a live source (a net.Dialer's when nil): tests
// put a source that never answers in its place.
var dialSource func(ctx context.Context, network, addr string) (net.Conn, error)

// jumpHelp says, in a flag's help, what a replay does where a recording's
// time jumps.
var jumpHelp = fmt.Sprintf("except where its time jumps: a gap of more than %v is not waited for, and a step back that would stamp reports over %v before the last is replayed from now, each said on stderr; a replay that falls over %v behind its pace stamps its reports now, not in the past, said on stderr and counted (fell_behind)",
	feed.DefaultMaxGap, feed.MaxStampBack, feed.DefaultMaxLag)

// replayPacer paces a recording at speed (0: as fast as the server
// takes), saying on stderr, after name, where the recording's time jumps.
func replayPacer(speed float64, stderr io.Writer, name string) *feed.Pacer {
	return &feed.Pacer{Speed: speed, Logf: func(format string, args ...any) {
		fmt.Fprintf(stderr, name+": "+format+"\n", args...)
	}}
}

// replayStatus is what the status lines of a replay paced by pacer say
// after the feed's counters: dec's, and, when it is paced, how often and
// how far it fell behind the recording's pace.
func replayStatus(pacer *feed.Pacer, dec fmt.Stringer) []fmt.Stringer {
	if pacer.Speed > 0 {
		return []fmt.Stringer{dec, pacer}
	}
	return []fmt.Stringer{dec}
}

func withInput(name string, fn func(io.Reader) error) error {
	if name == "-" {
		return fn(os.Stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return usagef("--file: %v", err)
	}
	defer f.Close()
	return fn(f)
}

// pipeline is a running Sender with its periodic status lines.
type pipeline struct {
	in     chan client.Report
	stats  *feed.Stats
	more   []fmt.Stringer
	out    io.Writer
	name   string
	done   chan struct{}
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// pipelineFlags are the sending flags that feed and replay share.
type pipelineFlags struct {
	batch  int
	status time.Duration
}

func (pf *pipelineFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&pf.batch, "batch", feed.DefaultMaxBatch, fmt.Sprintf("reports per POST (at most %d)", feed.BatchLimit))
	fs.DurationVar(&pf.status, "status", 10*time.Second, "interval of the status lines")
}

// check refuses a batch the server would not take: the Sender would
// otherwise fall back to its default without a word.
func (pf *pipelineFlags) check() error {
	if pf.batch < 1 || pf.batch > feed.BatchLimit {
		return usagef("--batch must be within 1..%d", feed.BatchLimit)
	}
	return nil
}

// start checks the flags, makes the party's client and starts sending;
// the status lines print the feed's counters and those of more (a
// decoder's).
func (pf *pipelineFlags) start(ctx context.Context, cf *clientFlags, stdout, stderr io.Writer, name string, more ...fmt.Stringer) (*pipeline, error) {
	if err := pf.check(); err != nil {
		return nil, err
	}
	cl, err := cf.client(ctx, stderr)
	if err != nil {
		return nil, err
	}
	return startPipeline(ctx, cl, &feed.Stats{}, *pf, stdout, name, more...), nil
}

// startPipeline starts the sender and the status lines, which print the
// feed's counters and those of more (a decoder's).
func startPipeline(ctx context.Context, cl *client.Client, stats *feed.Stats, pf pipelineFlags, out io.Writer, name string, more ...fmt.Stringer) *pipeline {
	// The sender outlives ctx by a moment so that what was read is flushed.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &pipeline{in: make(chan client.Report, 4*pf.batch), stats: stats, more: more, out: out, name: name, done: make(chan struct{}), cancel: cancel}
	s := &feed.Sender{Post: cl.PostPositions, Stats: stats, MaxBatch: pf.batch}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		s.Run(sctx, p.in)
	}()
	go func() {
		defer p.wg.Done()
		if pf.status <= 0 {
			return
		}
		t := time.NewTicker(pf.status)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				fmt.Fprintf(out, "%s %s: %s\n", time.Now().UTC().Format(time.TimeOnly), name, p.status())
			}
		}
	}()
	return p
}

// status is the line of counters.
func (p *pipeline) status() string {
	line := p.stats.String()
	for _, m := range p.more {
		line += " " + m.String()
	}
	return line
}

// offer queues r of a live source without waiting: when the queue has no
// room (the server takes the reports slower than they come: away, or the
// party's budget of reports spent), the oldest report queued is dropped
// for it and counted undeliverable, so that what reaches the server when
// it takes reports again is the newest the source gave. Waiting held up
// the reading: the source's lines waited in the socket and were stamped
// when read, late, a position of the past sent as the aircraft's present.
func (p *pipeline) offer(r client.Report) {
	for range 2 {
		select {
		case p.in <- r:
			return
		default:
		}
		select {
		case <-p.in:
			p.stats.Undeliver(1, feed.UndeliverableQueueFull, "")
		default:
		}
	}
	p.stats.Undeliver(1, feed.UndeliverableQueueFull, "")
}

func (p *pipeline) send(ctx context.Context, r client.Report) error {
	select {
	case p.in <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish flushes what is queued (giving up after 10 s), prints the final
// counters, why lines were skipped and why reports were undeliverable, and
// returns err, the reading's, unless it is the cancellation
// that ended it.
func (p *pipeline) finish(err error) error {
	close(p.in)
	close(p.done)
	timer := time.AfterFunc(10*time.Second, p.cancel)
	p.wg.Wait()
	timer.Stop()
	p.cancel()
	fmt.Fprintf(p.out, "%s done: %s\n", p.name, p.status())
	for _, why := range []string{p.stats.SkippedSummary(), p.stats.UndeliverableSummary()} {
		if why != "" {
			fmt.Fprintf(p.out, "%s %s\n", p.name, why)
		}
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
