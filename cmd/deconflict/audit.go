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
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
)

func init() {
	register(command{
		name:    "audit",
		summary: "export the audit log, verify an export, print the public key, write the timeline of an alert",
		run:     runAudit,
	})
}

const auditUsage = `usage:
  deconflict audit export --data DIR [--store URL] [--party P] [--from SEQ] [--out FILE]
      write the audit log as JSON lines (stdout by default), signed at its end, then
      the transparency log checkpoint the server last published (with its
      cosignatures) when the store holds one (else a note on stderr says why not).
      --party P: as party P sees it (other parties' private details by hash only);
      without it, the operator's full export.
  deconflict audit verify FILE|--file FILE --key KEY [--party-keys KEYS] [--witness-keys WKEYS]
      check every hash link and every signature of an export (FILE "-" is stdin).
      KEY: a file holding the public key (base64, or the JSON of GET /v1/audit/key,
      or the server's PEM signing key), or the base64 public key itself.
      KEYS: lines 'NAME ed25519:<base64>'; every record of such a party (once a key
      of it is registered) must follow a statement it signed that verifies, and
      the records a statement covers must say what its request asked.
      WKEYS: lines 'PARTY VKEY' (the witnesses' cosignature keys; by default those
      of the latest rules in the export): every cosignature on the log checkpoint
      ending the export must be one of theirs and verify.
      Exit status 0 with a summary when good, 1 naming the first bad record.
  deconflict audit key --data DIR
      print the public key of the data directory's signing key, as GET /v1/audit/key does
      (the directory and the key are created when missing, as the server's first start would).
  deconflict audit timeline --file EXPORT --html OUT.html [--alert ID | --thread NAME] [--key KEY]
      write the timeline of one alert or hotline thread as a self-contained HTML page
      (who said what when, acknowledgments, escalations, the map at each step);
      --list prints the alerts and threads of the export.`

func runAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, auditUsage)
		return nil
	}
	verb, args := args[0], args[1:]
	switch verb {
	case "export":
		return runAuditExport(args, stdout, stderr)
	case "verify":
		return runAuditVerify(args, stdout, stderr)
	case "key":
		return runAuditKey(args, stdout, stderr)
	case "timeline":
		return runAuditTimeline(args, stdout, stderr)
	}
	return usagef("unknown verb %q\n%s", verb, auditUsage)
}

// signingKey loads the signing key at path, by default the one in data.
func signingKey(path, data string) (ed25519.PrivateKey, error) {
	if path == "" {
		if data == "" {
			return nil, usagef("--data DIR (or --signing-key FILE) is required")
		}
		path = filepath.Join(data, audit.KeyFile)
	}
	key, err := audit.LoadKey(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no audit signing key at %s (the server creates it on its first start)", path)
	}
	return key, err
}

func runAuditExport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	viewer := fs.String("party", "", "export as this party sees it (default: the operator's full export)")
	from := fs.Int64("from", 1, "first sequence number")
	out := fs.String("out", "", "output file (default stdout)")
	keyPath := fs.String("signing-key", "", "signing key file (default DIR/"+audit.KeyFile+")")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("audit export takes no arguments, got %q", pos)
	}
	if *from < 1 {
		return usagef("--from: %d is not a sequence number (they start at 1)", *from)
	}
	if *viewer == party.OperatorName {
		*viewer = ""
	}
	key, err := signingKey(*keyPath, sf.data)
	if err != nil {
		return err
	}
	st, err := sf.open()
	if err != nil {
		return err
	}
	defer st.Close()
	w := stdout
	var f *os.File
	if *out != "" {
		if f, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	lg := audit.NewLog(key, 0)
	var note string
	err = st.View(context.Background(), func(tx store.Tx) error {
		if *viewer != "" {
			if _, err := tx.PartyByName(*viewer); errors.Is(err, store.ErrNotFound) {
				return usagef("--party: no party %q", *viewer)
			} else if err != nil {
				return err
			}
		}
		var last int64
		switch rec, err := tx.LastAudit(); {
		case err == nil:
			last = rec.Seq
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := lg.Export(tx, w, *viewer, *from, time.Now()); err != nil {
			return err
		}
		// Like an export over HTTP, end with the log checkpoint the
		// server last published, with its cosignatures.
		signed, err := tx.GetMeta(service.LogCheckpointMeta)
		switch {
		case errors.Is(err, store.ErrNotFound):
			note = "no transparency log checkpoint in this store (a server on it publishes one when it starts and as the record grows): the export ends with its signed head"
			return nil
		case err != nil:
			return err
		}
		size, err := checkpointSize(signed)
		switch {
		case err != nil:
			note = fmt.Sprintf("the stored log checkpoint is unreadable (%v): the export ends with its signed head", err)
		case size > last:
			note = fmt.Sprintf("the stored log checkpoint covers %d records but the store holds %d (an older copy of the data?): the export ends with its signed head", size, last)
		default:
			return audit.WriteLogCheckpoint(w, signed)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(stderr, "note: "+note)
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			return err
		}
		return f.Close()
	}
	return nil
}

func runAuditVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyArg := fs.String("key", "", "public key: a file (base64, /v1/audit/key JSON or the PEM signing key) or base64")
	file := fs.String("file", "", "the export to verify (or give it as the argument)")
	partyKeysFile := fs.String("party-keys", "", "file of lines 'NAME ed25519:<base64>': check every signed statement of these parties")
	witnessKeysFile := fs.String("witness-keys", "", "file of lines 'PARTY VKEY' (each party's witness cosignature key): every cosignature on the final log checkpoint must be one of theirs and verify (default: the witnesses of the latest rules in the export)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *file != "" {
		pos = append(pos, *file)
	}
	if len(pos) != 1 {
		return usagef("audit verify needs exactly one FILE\n%s", auditUsage)
	}
	var partyKeys audit.PartyKeys
	if *partyKeysFile != "" {
		f, err := os.Open(*partyKeysFile)
		if err != nil {
			return usageError{err}
		}
		partyKeys, err = audit.ParsePartyKeys(f)
		f.Close()
		if err != nil {
			return usagef("--party-keys %s: %v", *partyKeysFile, err)
		}
	}
	opts := audit.VerifyOptions{PartyKeys: partyKeys, Bind: service.BindStatement}
	if *witnessKeysFile != "" {
		f, err := os.Open(*witnessKeysFile)
		if err != nil {
			return usageError{err}
		}
		opts.WitnessKeys, err = audit.ParseWitnessKeys(f)
		f.Close()
		if err != nil {
			return usagef("--witness-keys %s: %v", *witnessKeysFile, err)
		}
	}
	if *keyArg == "" {
		return usagef("--key is required")
	}
	pub, err := publicKeyArg(*keyArg)
	if err != nil {
		return usageError{err}
	}
	var in io.Reader = os.Stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return usageError{err}
		}
		defer f.Close()
		in = f
	}
	sum, err := audit.VerifyWith(in, pub, opts)
	if err != nil {
		return fmt.Errorf("BAD: %w", err)
	}
	printVerifyReport(stdout, sum, partyKeys != nil)
	return nil
}

// printVerifyReport prints what audit verify found. The viewer, the
// cosigning parties' names and the notes come from the export (its head,
// its rules, its log checkpoint), which whoever made it chose: they are
// shown escaped (printable.Escape), so that a control or bidi character in
// them can neither drive the terminal nor make an OK line read otherwise
// than it is.
func printVerifyReport(stdout io.Writer, sum audit.Summary, partyKeys bool) {
	esc := printable.Escape
	viewer := esc(sum.Viewer)
	if viewer == "" {
		viewer = "the operator"
	}
	fmt.Fprintf(stdout, "OK: %d records (seq %d to %d), %d checkpoints, last signed by a checkpoint: seq %d, unsigned tail: %d records (covered by the head signed %s for %s), %d records shown by their commitment only, %d private details shown by hash only\n",
		sum.Records, sum.FirstSeq, sum.LastSeq, sum.Checkpoints, sum.LastCheckpointSeq, sum.UnsignedTail,
		sum.HeadTime.Format(time.RFC3339), viewer, sum.Hidden, sum.Redacted)
	switch {
	case sum.LogVerified:
		fmt.Fprintf(stdout, "OK: the records rebuild the transparency log checkpoint of size %d that ends the export (%d cosignatures on it)\n", sum.LogSize, sum.LogSignatures)
	case sum.LogSize > 0:
		fmt.Fprintf(stdout, "note: %s\n", esc(sum.LogNote))
	default:
		fmt.Fprintln(stdout, "note: the export does not end with a transparency log checkpoint")
	}
	switch {
	case sum.LogSize == 0:
	case sum.WitnessKeysFrom == "":
		fmt.Fprintln(stdout, "note: no witness keys (none given with --witness-keys, none in the rules of the export): the cosignatures were not checked")
	default:
		fmt.Fprintf(stdout, "OK: every cosignature on the log checkpoint is of a witness the %s keys name and verifies: cosigned by %s\n",
			map[string]string{"given": "--witness-keys", "rules": "export's rules"}[sum.WitnessKeysFrom], esc(orNone(sum.LogCosignedBy)))
	}
	if partyKeys {
		fmt.Fprintf(stdout, "OK: %d signed statements verified with the parties' keys, each bound to what its records say, and every record of a party with a key follows one\n", sum.Statements)
	}
	if sum.RulesAcceptancesBound > 0 {
		fmt.Fprintf(stdout, "OK: %d acceptances of the rules name the digest of the rules they accept, each that of the rules the export records for its version\n", sum.RulesAcceptancesBound)
	}
	if sum.RulesAcceptancesUnbound > 0 {
		fmt.Fprintf(stdout, "note: %d acceptances of the rules were recorded before acceptances named the content accepted (rules_sha256): they bind their version only, and were verified as before\n", sum.RulesAcceptancesUnbound)
	}
	if sum.Anchor != nil {
		fmt.Fprintf(stdout, "note: the export starts at record %d; its link to record %d (prev_hash %x) is not checked here: compare it with that record's hash in an earlier export\n",
			sum.FirstSeq, sum.FirstSeq-1, sum.Anchor)
	}
}

// escapedError shows an error that may quote what an export or a server
// holds with printable.Escape, keeping what it wraps for errors.As.
type escapedError struct{ err error }

func (e escapedError) Error() string { return printable.Escape(e.err.Error()) }
func (e escapedError) Unwrap() error { return e.err }

// publicKeyArg reads --key: a file when one exists at that path, else the
// base64 key itself.
func publicKeyArg(arg string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(arg)
	if errors.Is(err, os.ErrNotExist) {
		return audit.ParsePublicKey(arg)
	}
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		key, err := audit.LoadKey(arg)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		return key.Public().(ed25519.PublicKey), nil
	}
	pub, err := audit.ParsePublicKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("--key %s: %w", arg, err)
	}
	return pub, nil
}

func runAuditKey(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", os.Getenv("DECONFLICT_DATA"), "data directory (env DECONFLICT_DATA)")
	keyPath := fs.String("signing-key", "", "signing key file (default DIR/"+audit.KeyFile+")")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("audit key takes no arguments")
	}
	var key ed25519.PrivateKey
	if *keyPath != "" || *data == "" {
		key, err = signingKey(*keyPath, *data)
	} else {
		key, err = dataDirKey(*data, stderr)
	}
	if err != nil {
		return err
	}
	info := audit.PublicKeyInfo(key.Public().(ed25519.PublicKey))
	fmt.Fprintf(stdout, "{\"alg\":%q,\"public_key\":%q}\n", info.Alg, info.PublicKey)
	return nil
}

// dataDirKey is the signing key of the data directory, which a new user's
// first command may be asked for: the directory is created (for its owner
// alone) and the key with it when missing, as the server would at its
// first start, which then uses this key.
func dataDirKey(data string, stderr io.Writer) (ed25519.PrivateKey, error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	path := filepath.Join(data, audit.KeyFile)
	_, statErr := os.Stat(path)
	key, err := audit.LoadOrCreateKey(data)
	if err != nil {
		return nil, err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		fmt.Fprintf(stderr, "created the audit signing key %s (the server started on %s signs with it)\n", path, data)
	}
	return key, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// checkpointSize reads the tree size of a C2SP checkpoint note (its second
// line), unverified: audit verify checks the note.
func checkpointSize(signed []byte) (int64, error) {
	lines := strings.SplitN(string(signed), "\n", 3)
	if len(lines) < 3 {
		return 0, errors.New("not a checkpoint note")
	}
	return strconv.ParseInt(lines[1], 10, 64)
}
