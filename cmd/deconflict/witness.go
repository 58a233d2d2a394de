package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/logcheck"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/witness"
)

func init() {
	register(command{
		name:    "witness",
		summary: "run a party's C2SP tlog-witness that cosigns the server's record",
		run:     runWitness,
	})
}

const witnessUsage = `usage:
  deconflict witness --listen ADDR --key FILE --state DIR --log-vkey VKEY [--name NAME]
      serve the C2SP tlog-witness protocol (POST /add-checkpoint) for the log
      whose signed-note verifier key is VKEY (GET /v1/log/key of the server;
      repeat --log-vkey for several logs). The witness cosigns a checkpoint
      only when it is consistent with the last one it cosigned, which it
      keeps in DIR; a refused checkpoint is kept in DIR/evidence.
      KEY: an Ed25519 PKCS#8 PEM file (deconflict key new). The witness's
      verifier key, which the agreed rules name, is printed at start.
  deconflict witness check --server URL --token-file F --state DIR [--party P] [--party-keys KEYS]
      [--witness PARTY=VKEY ...] [--witness-keys WKEYS]
      one check of the server's record by the party whose token F holds, beside
      its witness (same DIR): the published checkpoint is signed by the log's
      key (pinned at the first check), cosigned by the party's witness within
      the rules' witness_max_age_s, consistent with what the witness holds, and
      the records since the last check rebuild exactly its tree with an intact
      hash chain; with KEYS ('NAME ed25519:<base64>' lines, the party's own keys),
      every record of the party is covered by a statement it signed, and says
      what the signed request asked. The checkpoint must also be cosigned by the
      witness of every other party, each under the key pinned here (--witness,
      repeatable, or WKEYS: lines 'PARTY VKEY'), learned from that party itself:
      the rules the server serves must name no witness whose key is not pinned,
      and every pinned one is required whatever they name; a witness that has
      not cosigned the newest checkpoint yet is allowed witness_max_age_s since
      its latest cosignature of one this one extends. Exit 0 when all hold;
      exit 3 with a line starting with INCONSISTENT:, STALE: or UNCOSIGNED:
      naming the evidence, which is kept in DIR/check.`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runWitness(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(stdout, witnessUsage)
		return nil
	}
	if len(args) > 0 && args[0] == "check" {
		return runWitnessCheck(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("witness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7380", "address to listen on")
	keyPath := fs.String("key", "", "the witness's Ed25519 private key (PKCS#8 PEM)")
	state := fs.String("state", "", "directory keeping the latest cosigned checkpoint of each log")
	name := fs.String("name", "", "the witness's name in its cosignatures (default: witness/<key id>)")
	var logs stringList
	fs.Var(&logs, "log-vkey", "signed-note verifier key of a log to witness (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usagef("witness takes no arguments, got %q\n%s", pos, witnessUsage)
	case *keyPath == "" || *state == "":
		return usagef("--key FILE and --state DIR are required\n%s", witnessUsage)
	case len(logs) == 0:
		return usagef("--log-vkey VKEY is required (the server's GET /v1/log/key)\n%s", witnessUsage)
	}
	key, err := partykey.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = "witness/" + partykey.ID(partykey.Public(key))[:16]
	}
	if err := os.MkdirAll(*state, 0o700); err != nil {
		return err
	}
	srv, err := witness.NewServer(*name, key, *state, logs)
	if err != nil {
		return usagef("%v", err)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "witness %s listening on http://%s\n", srv.Name(), l.Addr())
	fmt.Fprintf(stdout, "vkey %s\n", srv.VerifierKey())
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- hs.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func runWitnessCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("witness check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "base URL of the deconflict server")
	tokenFile := fs.String("token-file", "", "file with the party's token, or lines 'PARTY TOKEN'")
	partyName := fs.String("party", "", "the party whose token to take from --token-file")
	state := fs.String("state", "", "the party's witness state directory")
	partyKeysFile := fs.String("party-keys", "", "file of lines 'NAME ed25519:<base64>' (the party's own keys): each of its records must be covered by a statement it signed")
	var pinned stringList
	fs.Var(&pinned, "witness", "PARTY=VKEY: the cosignature key of another party's witness, learned from that party (repeatable): the checkpoint must carry its cosignature")
	witnessKeysFile := fs.String("witness-keys", "", "file of lines 'PARTY VKEY' (the other parties' witness keys, as --witness)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *server == "" || *tokenFile == "" || *state == "" {
		return usagef("--server, --token-file and --state are required\n%s", witnessUsage)
	}
	tokens, err := loadTokenFile(*tokenFile)
	if err != nil {
		return err
	}
	token, ok := tokens[*partyName]
	if !ok {
		return usagef("--token-file %s has no token for party %q", *tokenFile, *partyName)
	}
	c := &logcheck.Checker{Server: *server, Token: token, Dir: *state, Bind: service.BindStatement}
	if *partyKeysFile != "" {
		f, err := os.Open(*partyKeysFile)
		if err != nil {
			return usageError{err}
		}
		c.PartyKeys, err = audit.ParsePartyKeys(f)
		f.Close()
		if err != nil {
			return usagef("--party-keys %s: %v", *partyKeysFile, err)
		}
	}
	if c.WitnessKeys, err = pinnedWitnessKeys(pinned, *witnessKeysFile); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := c.Check(ctx)
	var f *logcheck.Finding
	if errors.As(err, &f) {
		fmt.Fprintln(stdout, f.Error())
		return exitError{code: 3, err: f}
	}
	if err != nil {
		// A failure to check may quote the server's answer.
		return escapedError{err}
	}
	printWitnessCheck(stdout, res)
	return nil
}

// printWitnessCheck prints a check that passed. The names come from the
// party's witness state and the server's answers: they are shown escaped
// (printable.Escape), as the findings are, so that a control or bidi
// character in one cannot make the OK lines read otherwise than they are.
func printWitnessCheck(stdout io.Writer, res logcheck.Result) {
	fmt.Fprintf(stdout, "OK: checkpoint of size %d cosigned by %s at %s; %d new records verified (from %d)\n",
		res.Size, printable.Escape(res.Witness), res.CosignedAt.UTC().Format(time.RFC3339), res.NewRecords, res.CheckedSince)
	for _, o := range res.Others {
		on := "it"
		if o.Graced {
			on = fmt.Sprintf("size %d, which it extends (within witness_max_age_s)", o.Size)
		}
		fmt.Fprintf(stdout, "witness of %s (%s): cosigned %s at %s\n", printable.Escape(o.Party), printable.Escape(o.Name), on, o.CosignedAt.UTC().Format(time.RFC3339))
	}
	for _, n := range res.Notes {
		fmt.Fprintln(stdout, "note: "+printable.Escape(n))
	}
}

// pinnedWitnessKeys reads the other parties' witness keys the party
// pinned: flags "PARTY=VKEY" and the lines "PARTY VKEY" of file, checked
// together as audit verify checks its --witness-keys (a party or a
// witness name twice is refused).
func pinnedWitnessKeys(flags []string, file string) (map[string]string, error) {
	var lines strings.Builder
	for _, f := range flags {
		p, k, ok := strings.Cut(f, "=")
		if !ok || strings.ContainsAny(f, " \t\n") {
			return nil, usagef("--witness %q: want PARTY=VKEY", f)
		}
		lines.WriteString(p + " " + k + "\n")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageError{err}
		}
		lines.Write(b)
		lines.WriteString("\n")
	}
	if lines.Len() == 0 {
		return nil, nil
	}
	keys, err := audit.ParseWitnessKeys(strings.NewReader(lines.String()))
	if err != nil {
		return nil, usagef("--witness / --witness-keys: %v", err)
	}
	return keys, nil
}
