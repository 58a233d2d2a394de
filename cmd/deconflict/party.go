package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
)

func init() {
	register(command{
		name:    "party",
		summary: "manage parties and their tokens: add, rotate, revoke, list",
		run:     runParty,
	})
}

const partyUsage = `usage:
  deconflict party add NAME [--operator] [--public-key ed25519:KEY]... [--witness-url URL --witness-vkey VKEY] --data DIR
                                                     create a party; prints its token alone on the last line;
                                                     with a public key, every write of the party must be signed;
                                                     with a witness (its URL and cosignature verifier key), the
                                                     rules name it: at once when the store has no rules yet (the
                                                     initial rules), else as a proposal every party accepts
                                                     (deconflict rules accept VERSION), the new party included
  deconflict party rotate NAME --data DIR             revoke the party's tokens and print a new one
  deconflict party revoke NAME --data DIR             revoke every token of the party
  deconflict party list --data DIR                    list parties`

func runParty(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, partyUsage)
		return nil
	}
	verb := args[0]
	fs := flag.NewFlagSet("party "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	operator := fs.Bool("operator", false, "add: create the operator (its name is "+party.OperatorName+")")
	var publicKeys stringList
	fs.Var(&publicKeys, "public-key", "add: the party's Ed25519 public key, ed25519:<base64> (deconflict key new prints it; repeatable): its writes must then be signed")
	witnessURL := fs.String("witness-url", "", "add: the URL of the party's witness (deconflict witness), to which the log pushes its checkpoints")
	witnessVKey := fs.String("witness-vkey", "", "add: the cosignature verifier key of the party's witness (deconflict witness prints it)")
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	wantName := verb != "list"
	if wantName && len(pos) != 1 {
		return usagef("party %s needs exactly one NAME\n%s", verb, partyUsage)
	}
	if !wantName && len(pos) != 0 {
		return usagef("party list takes no NAME")
	}
	switch verb {
	case "add", "rotate", "revoke", "list":
	default:
		return usagef("unknown verb %q\n%s", verb, partyUsage)
	}
	st, err := sf.open()
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	const actor = "cli"
	switch verb {
	case "add":
		name := pos[0]
		if *operator && name != party.OperatorName {
			return usagef("the operator is named %q", party.OperatorName)
		}
		keys, err := party.ParsePublicKeys("--public-key", publicKeys)
		if err != nil {
			return usageError{err}
		}
		np := service.NewParty{Name: name, Operator: *operator, Keys: keys}
		switch {
		case (*witnessURL == "") != (*witnessVKey == ""):
			return usagef("--witness-url and --witness-vkey go together")
		case *witnessURL != "":
			np.Witness = &rules.Witness{URL: *witnessURL, VKey: *witnessVKey}
		}
		created, err := service.AddPartyWith(ctx, st, actor, np, now)
		var ne *fielderr.Error
		if errors.As(err, &ne) {
			return usageError{err}
		}
		if err != nil {
			return err
		}
		switch {
		case np.Witness == nil:
		case created.WitnessInForce:
			fmt.Fprintf(stdout, "the witness of %s is named by the initial rules (version %d), in force\n", name, created.WitnessVersion)
		default:
			fmt.Fprintf(stdout, "the witness of %s is proposed as rules version %d: in force once every party accepted it (deconflict rules accept %d), %s included\n",
				name, created.WitnessVersion, created.WitnessVersion, name)
		}
		fmt.Fprintf(stdout, "party %s created; its token (shown once):\n%s\n", name, created.Token)
	case "rotate":
		tok, err := service.RotateParty(ctx, st, actor, pos[0], now)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "party %s: previous tokens revoked; new token (shown once):\n%s\n", pos[0], tok)
	case "revoke":
		if err := service.RevokeParty(ctx, st, actor, pos[0], now); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "party %s: every token revoked\n", pos[0])
	case "list":
		ps, err := service.ListParties(ctx, st)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tOPERATOR\tDISABLED\tTOKENS\tCREATED")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%v\t%v\t%d\t%s\n", p.Name, p.Operator, p.Disabled, p.ActiveTokens, p.Created.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return nil
}
