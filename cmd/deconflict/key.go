package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/deconflict/deconflict/internal/partykey"
)

func init() {
	register(command{
		name:    "key",
		summary: "create a party's own Ed25519 signing key",
		run:     runKey,
	})
}

const keyUsage = `usage:
  deconflict key new --out FILE
      write a new Ed25519 private key to FILE (PKCS#8 PEM, mode 0600; an
      existing FILE is never overwritten) and print its key id and, alone on
      the last line, its public key as ed25519:<base64>, the form that
      party add --public-key takes.`

func runKey(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, keyUsage)
		return nil
	}
	if args[0] != "new" {
		return usagef("unknown verb %q\n%s", args[0], keyUsage)
	}
	fs := flag.NewFlagSet("key new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the private key to (required)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("key new takes no arguments, got %q", pos)
	}
	if *out == "" {
		return usagef("--out FILE is required")
	}
	key, err := partykey.Generate()
	if err != nil {
		return err
	}
	if err := partykey.WriteFile(*out, key); err != nil {
		return err
	}
	pub := partykey.Public(key)
	fmt.Fprintf(stdout, "private key written to %s (keep it; the server never needs it)\n", *out)
	fmt.Fprintf(stdout, "keyid %s\n", partykey.ID(pub))
	fmt.Fprintln(stdout, partykey.Format(pub))
	return nil
}
