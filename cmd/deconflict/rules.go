package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/rules"
)

func init() {
	register(command{
		name:    "rules",
		summary: "show the agreed rules, propose a change, accept or reject one",
		run:     runRules,
	})
}

const rulesUsage = `usage:
  deconflict rules show [--server URL --token-file F]
      print the rules in force and the open proposals, field by field
  deconflict rules propose --file F [--server URL --token-file F]
      propose the fields of the rules in F (a JSON object; fields left out
      keep their value) with the operator's token; every party must accept
  deconflict rules accept VERSION [--server URL --token-file F --party P --key FILE]
      accept the proposal of VERSION as the token's party
  deconflict rules reject VERSION [--reason TEXT] [--server URL --token-file F --party P --key FILE]
      reject it (one rejection closes it)
  --key FILE (the party's signing key, deconflict key new) signs the write,
  as the server requires of a party that registered a public key`

func runRules(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, rulesUsage)
		return nil
	}
	verb := args[0]
	fs := flag.NewFlagSet("rules "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	file := fs.String("file", "", "propose: JSON object of the rules fields to change")
	reason := fs.String("reason", "", "reject: why")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	version := func() (int64, error) {
		if len(pos) != 1 {
			return 0, usagef("rules %s takes the VERSION of a proposal\n%s", verb, rulesUsage)
		}
		v, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || v < 1 {
			return 0, usagef("VERSION %q: want a rules version, 1 or more", pos[0])
		}
		return v, nil
	}
	switch verb {
	case "show":
		if len(pos) != 0 {
			return usagef("rules show takes no arguments, got %q", pos)
		}
		cl, err := cf.client(ctx, stderr)
		if err != nil {
			return err
		}
		return showRules(ctx, cl, stdout)
	case "propose":
		if *file == "" || len(pos) != 0 {
			return usagef("rules propose takes --file F and no arguments\n%s", rulesUsage)
		}
		body, err := os.ReadFile(*file)
		if err != nil {
			return usagef("--file: %v", err)
		}
		cl, err := cf.client(ctx, stderr)
		if err != nil {
			return err
		}
		p, err := cl.ProposeRules(ctx, body)
		if err != nil {
			return err
		}
		printProposal(stdout, p.Proposal)
		return nil
	case "accept", "reject":
		v, err := version()
		if err != nil {
			return err
		}
		cl, err := cf.client(ctx, stderr)
		if err != nil {
			return err
		}
		var p client.RulesAnswer
		if verb == "accept" {
			p, err = cl.AcceptRules(ctx, v)
		} else {
			p, err = cl.RejectRules(ctx, v, *reason)
		}
		if err != nil {
			return err
		}
		printProposal(stdout, p.Proposal)
		return nil
	}
	return usagef("unknown verb %q\n%s", verb, rulesUsage)
}

func showRules(ctx context.Context, cl *client.Client, w io.Writer) error {
	r, err := cl.Rules(ctx)
	if err != nil {
		return err
	}
	ps, err := cl.RulesProposals(ctx)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "rules in force: version %d\n%s\n", r.Version, b)
	if len(ps) == 0 {
		fmt.Fprintln(w, "no open proposal")
	}
	for _, p := range ps {
		fmt.Fprintln(w)
		printProposal(w, p)
	}
	return nil
}

// printProposal writes a proposal as people read it: what changes, who
// answered, who is awaited.
func printProposal(w io.Writer, p rules.Proposal) {
	fmt.Fprintf(w, "proposal of version %d by %s (against version %d): %s\n", p.Version, p.ProposedBy, p.Base, p.State)
	for _, c := range p.Changes {
		fmt.Fprintf(w, "  %-24s %s -> %s\n", c.Field, c.Old, c.New)
	}
	if len(p.Changes) == 0 {
		fmt.Fprintln(w, "  (no field changes)")
	}
	if p.RulesSHA256 != "" {
		// What an acceptance names: the digest of the rules proposed.
		fmt.Fprintf(w, "  content rules_sha256 %s\n", printable.Escape(p.RulesSHA256))
	}
	for _, a := range p.Answers {
		verdict := "accepted"
		if !a.Accepted {
			verdict = "rejected"
			if a.Reason != "" {
				verdict += ": " + a.Reason
			}
		}
		fmt.Fprintf(w, "  %s %s at %s\n", a.Party, verdict, a.Time.Format(time.RFC3339))
	}
	if len(p.WaitingFor) > 0 {
		fmt.Fprintf(w, "  waiting for %s\n", strings.Join(p.WaitingFor, ", "))
	}
}
