// Package logcheck owns a party's check of the published record, run on
// the party's premises beside its witness (deconflict witness check): the
// log's checkpoint is signed by the log's key (pinned at the first check),
// carries a fresh cosignature of the party's own witness, is consistent
// with what that witness holds, and the records exported since the last
// check rebuild exactly the tree the checkpoint commits to, with an intact
// hash chain and, given the party's keys, every record of the party covered
// by a statement it signed; and it is cosigned by the witness of every other
// party too, under keys the party pinned (Checker.WitnessKeys), so that no
// party accepts a checkpoint the others' witnesses have not also cosigned
// (one log for everyone: not a fork of its own shown to each). A failure is
// a Finding: INCONSISTENT (with the evidence, kept in the state directory:
// the conflicting checkpoints or the first record that differs), STALE (no
// fresh cosignature of the party's own witness for longer than the rules
// allow) or UNCOSIGNED (none of another party's witness for as long). While an INCONSISTENT finding lasts, the party's witness
// cosigns nothing (witness.WithheldFile), so that every party sees in the
// published checkpoints that this one does not verify the record.
package logcheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/translog"
	"github.com/deconflict/deconflict/internal/witness"
)

// Kinds of Finding.
const (
	Inconsistent = "INCONSISTENT"
	Stale        = "STALE"
	// Uncosigned: the checkpoint lacks the cosignature of another
	// party's witness, and that witness's latest cosignature the check
	// knows of (on a checkpoint this one extends) is older than the rules
	// allow, or there is none: the log may be showing this party a view
	// the other parties' witnesses have not seen (a split view).
	Uncosigned = "UNCOSIGNED"
)

// Finding is what a failed check found.
type Finding struct {
	Kind     string // Inconsistent, Stale or Uncosigned
	What     string
	Evidence string // file in the state directory holding the evidence
}

func (f *Finding) Error() string {
	s := f.Kind + ": " + f.What
	if f.Evidence != "" {
		s += " (evidence: " + f.Evidence + ")"
	}
	return s
}

// Result describes a check that passed.
type Result struct {
	Size         int64 // the checkpoint verified
	NewRecords   int64 // records verified by this check
	Witness      string
	CosignedAt   time.Time
	CheckedSince int64 // the tree size the previous check had reached
	// Others are the other parties' witnesses the check required, by
	// party, sorted: each cosigned the checkpoint verified, or (Graced) a
	// checkpoint it extends, at CosignedAt, within the rules' age.
	Others []OtherWitness
	// Notes are what the check saw that is no fault of the record but
	// that the party should know: a witness key served in the rules that
	// is not the one the party pinned.
	Notes []string
}

// OtherWitness is another party's witness as a check that passed found it.
type OtherWitness struct {
	Party      string
	Name       string // the witness's name in its cosignatures
	CosignedAt time.Time
	Size       int64 // the size of the checkpoint it cosigned at CosignedAt
	Graced     bool  // not on the checkpoint verified, but on one it extends, recently enough
}

// Checker checks one server's log.
type Checker struct {
	Server string // base URL
	Token  string
	Dir    string // the witness's state directory; the checker keeps its own under Dir/check
	HTTP   *http.Client
	Now    func() time.Time
	// PartyKeys, when set, are the keys of the party (and any other whose
	// keys it knows): every record of theirs must be covered by a signed
	// statement that verifies (audit.VerifyWithPartyKeys).
	PartyKeys audit.PartyKeys
	// Bind, with PartyKeys, checks that the records each statement covers
	// say what its request asked (service.BindStatement).
	Bind audit.Binder
	// WitnessKeys are the cosignature verifier keys of the other parties'
	// witnesses, by party, as the party pinned them in its own
	// configuration (learned from each party, not from the server). The
	// checkpoint the check accepts must be cosigned by each of them and
	// by the witness of every party the served rules name, whose key must
	// be pinned here (the check fails otherwise). A witness that is just
	// slow is allowed the rules' witness_max_age_s since its latest
	// cosignature of a checkpoint the accepted one extends. Keys served by
	// the operator are never used to verify: an operator showing each
	// party its own fork would serve keys it holds for the others.
	WitnessKeys map[string]string
}

const checkDir = "check"

// ErrAnswerTooLarge is an answer of the server longer than maxAnswer: a
// failure to check, as a server that cannot be reached.
var ErrAnswerTooLarge = errors.New("logcheck: the server's answer is larger than any of its kind")

func (c *Checker) path(name string) string { return filepath.Join(c.Dir, checkDir, name) }

// maxAnswer bounds the answers get reads: a log key, the rules, a
// checkpoint, a consistency proof, all far smaller. The server is not
// trusted: an answer without end must not fill the party's memory.
const maxAnswer = 8 << 20

func (c *Checker) get(ctx context.Context, path string) ([]byte, error) {
	body, err := c.open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnswer {
		return nil, fmt.Errorf("GET %s: %w (more than %d bytes)", path, ErrAnswerTooLarge, maxAnswer)
	}
	return b, nil
}

// open GETs path and returns the body of a 200 answer to read as it comes.
func (c *Checker) open(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.Server, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, &statusError{path: path, status: resp.StatusCode, body: string(bytes.TrimSpace(b))}
	}
	return resp.Body, nil
}

// statusError is the server's answer other than 200: it answered, and
// refused (unlike a server that could not be reached).
type statusError struct {
	path   string
	status int
	body   string
}

// Error shows the server's body escaped (printable.Escape): the server is
// not trusted, and what it answers ends up in the party's terminal and in
// the finding its witness serves back.
func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.path, e.status, printable.Escape(e.body))
}

// refused reports whether the answer refuses the request for what it asks
// (a 4xx), not for now: a 408, 429 (the party's own rate limit) or 5xx (a
// busy server, a store that does not answer) says nothing of the log.
func (e *statusError) refused() bool {
	return e.status >= 400 && e.status < 500 && e.status != http.StatusRequestTimeout && e.status != http.StatusTooManyRequests
}

// notAProofError is a consistency proof the server answered whole that is
// no proof (not JSON, not hashes): it answered, as much as with a refusal,
// so a log that must prove itself and answers this cannot.
type notAProofError struct{ err error }

func (e *notAProofError) Error() string { return e.err.Error() }
func (e *notAProofError) Unwrap() error { return e.err }

func (c *Checker) getJSON(ctx context.Context, path string, out any) error {
	b, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// evidence keeps parts in a new file of the state directory and returns
// its path.
func (c *Checker) evidence(kind string, parts ...string) string {
	dir := c.path("evidence")
	_ = os.MkdirAll(dir, 0o700)
	name := filepath.Join(dir, c.Now().UTC().Format("20060102T150405.000Z")+"-"+strings.ToLower(kind)+".txt")
	_ = os.WriteFile(name, []byte(strings.Join(parts, "\n")), 0o600)
	return name
}

// evidenceWith is evidence whose last part is the export kept in f,
// copied from the file.
func (c *Checker) evidenceWith(kind, what string, f *os.File) string {
	name := c.evidence(kind, what, "")
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return name
	}
	defer out.Close()
	if _, err := f.Seek(0, io.SeekStart); err == nil {
		_, _ = io.Copy(out, f)
	}
	return name
}

// maxEvidenceTail bounds what is kept of an export after the record that
// did not verify.
const maxEvidenceTail = 64 << 20

// Check runs one check. A *Finding is a detected fault; any other error is
// a failure to check (server unreachable, bad state directory). An
// INCONSISTENT finding also makes the party's witness withhold its
// cosignatures (witness.WithheldFile) until a check passes again.
func (c *Checker) Check(ctx context.Context) (Result, error) {
	res, err := c.check(ctx)
	withheld := filepath.Join(c.Dir, witness.WithheldFile)
	var f *Finding
	if errors.As(err, &f) {
		// What a finding says quotes what the server served (a key, an
		// answer, a record's fields), and is shown in the party's
		// terminal, kept for the witness and served by it to the log:
		// control and invisible formatting characters in it are escaped,
		// so that no one can make it read otherwise than it is (a
		// carriage return and "OK: ..." over the finding, a bidi override).
		f.What = printable.Escape(f.What)
	}
	switch {
	case err == nil:
		if rerr := os.Remove(withheld); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return res, rerr
		}
	case errors.As(err, &f) && f.Kind == Inconsistent:
		if werr := os.WriteFile(withheld, []byte(f.Error()+"\n"), 0o600); werr != nil {
			return res, fmt.Errorf("%w (and keeping the finding for the witness: %v)", err, werr)
		}
	}
	return res, err
}

func (c *Checker) check(ctx context.Context) (Result, error) {
	if c.HTTP == nil {
		// Catching up with a million records is one long export.
		c.HTTP = &http.Client{Timeout: 10 * time.Minute}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := os.MkdirAll(c.path(""), 0o700); err != nil {
		return Result{}, err
	}
	var key struct {
		Origin string `json:"origin"`
		VKey   string `json:"vkey"`
	}
	if err := c.getJSON(ctx, "/v1/log/key", &key); err != nil {
		return Result{}, err
	}
	// The log's key is pinned at the first check: a log presenting another
	// key is another log.
	pinned, err := os.ReadFile(c.path("log.vkey"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// Only a verifier key is pinned: one pinned that is none made
		// every later check, with the log's real key, a key changed.
		if _, err := translog.LogVerifier(key.VKey); err != nil {
			return Result{}, fmt.Errorf("the log's key served at the first check: %w", err)
		}
		if err := os.WriteFile(c.path("log.vkey"), []byte(key.VKey+"\n"), 0o600); err != nil {
			return Result{}, err
		}
	case err != nil:
		return Result{}, err
	case strings.TrimSpace(string(pinned)) != key.VKey:
		return Result{}, &Finding{Kind: Inconsistent, What: fmt.Sprintf("the log's key changed from %s to %s", strings.TrimSpace(string(pinned)), key.VKey),
			Evidence: c.evidence(Inconsistent, "pinned "+string(pinned), "served "+key.VKey)}
	}
	logV, err := translog.LogVerifier(key.VKey)
	if err != nil {
		return Result{}, err
	}
	witnessVKey, heldSigned, held, holds, err := witness.ReadState(c.Dir, key.Origin, logV)
	if err != nil {
		return Result{}, err
	}
	wv, err := translog.WitnessVerifier(witnessVKey)
	if err != nil {
		return Result{}, err
	}
	var rules servedRules
	if err := c.getJSON(ctx, "/v1/rules", &rules); err != nil {
		return Result{}, err
	}
	others, notes, err := c.requiredWitnesses(wv, rules.Witnesses)
	if err != nil {
		return Result{}, err
	}
	signed, err := c.get(ctx, "/v1/log/checkpoint")
	if err != nil {
		return Result{}, err
	}
	published := signed
	cp, cosigs, err := translog.Open(signed, key.Origin, logV, wv)
	if err != nil {
		return Result{}, &Finding{Kind: Inconsistent, What: "the published checkpoint does not verify with the log's key: " + err.Error(),
			Evidence: c.evidence(Inconsistent, string(signed))}
	}
	// Consistency with what the party's own witness holds: the same tree
	// or a later one that extends it. unproven is why the two could not be
	// shown consistent now (the proof not answered): the check then ends
	// there, but after the staleness check, so that a log that never
	// proves it (whether it cannot or will not) is found STALE in the end.
	var unproven error
	if holds {
		conflict := func(why string) error {
			return &Finding{Kind: Inconsistent, What: fmt.Sprintf("the published checkpoint (size %d, root %x) and the one the witness cosigned (size %d, root %x) conflict: %s",
				cp.Size, cp.Root[:8], held.Size, held.Root[:8], why), Evidence: c.evidence(Inconsistent, "published:", string(signed), "held by the witness:", string(heldSigned))}
		}
		switch {
		case cp.Size < held.Size:
			// The witness cosigned a later checkpoint than the one
			// published: the log publishes a checkpoint once every
			// witness answered, so one that answered first holds it
			// while the others are pushed to. That is no fork if the
			// log proves that the later one extends the published one;
			// it is then the checkpoint checked (its records and the
			// witness's cosignature on it). A log that cannot is smaller
			// than it was.
			proof, err := c.consistency(ctx, cp.Size, held.Size)
			var answered *statusError
			var noProof *notAProofError
			if errors.As(err, &answered) && answered.refused() || errors.As(err, &noProof) {
				return Result{}, conflict(fmt.Sprintf("the log is smaller than it was (records removed, or an older copy restored), and cannot prove the one the witness cosigned extends the published one: %v", err))
			}
			if err != nil {
				unproven = err
				break
			}
			if err := translog.VerifyConsistency(cp.Size, cp.Root, held.Size, held.Root, proof); err != nil {
				return Result{}, conflict("the log is smaller than it was, and the one the witness cosigned does not extend the published one (a fork)")
			}
			var heldCosigs map[string]translog.Cosignature
			if _, heldCosigs, err = translog.Open(heldSigned, key.Origin, logV, wv); err != nil {
				return Result{}, err
			}
			signed, cp, cosigs = heldSigned, held, heldCosigs
		case cp.Size == held.Size && cp.Root != held.Root:
			return Result{}, conflict("two trees of the same size (a fork)")
		case cp.Size > held.Size:
			// As above: a log that answers no proof, or refuses it, is
			// inconsistent; one whose proof is not answered now is
			// checked for staleness first, so that a log that never
			// proves it is found STALE in the end.
			proof, err := c.consistency(ctx, held.Size, cp.Size)
			var answered *statusError
			var noProof *notAProofError
			if errors.As(err, &answered) && answered.refused() || errors.As(err, &noProof) {
				return Result{}, conflict(fmt.Sprintf("the log cannot prove the published checkpoint extends the one the witness cosigned: %v", err))
			}
			if err != nil {
				unproven = err
				break
			}
			if err := translog.VerifyConsistency(held.Size, held.Root, cp.Size, cp.Root, proof); err != nil {
				return Result{}, conflict("the log does not extend the checkpoint the witness cosigned (a fork)")
			}
		}
	}
	// A fresh cosignature of the party's own witness: on the published
	// checkpoint, or (while a new checkpoint is being cosigned) on the one
	// the witness holds, which the published one was just shown to extend.
	maxAge := witnessMaxAge(rules.WitnessMaxAgeS)
	co, onPublished := cosigs[wv.Name()]
	last := co.Time
	if !onPublished && holds {
		if _, hc, err := translog.Open(heldSigned, key.Origin, logV, wv); err == nil {
			last = hc[wv.Name()].Time
		}
	}
	// While the witness withholds its cosignatures (an earlier check found
	// the record bent), their age says nothing of the log: the records
	// are checked again instead.
	_, werr := os.Stat(filepath.Join(c.Dir, witness.WithheldFile))
	withholding := werr == nil
	if !withholding && (last.IsZero() || c.Now().Sub(last) > maxAge) {
		when := "never"
		if !last.IsZero() {
			when = last.UTC().Format(time.RFC3339)
		}
		what := fmt.Sprintf("no cosignature of %s for longer than %s: the published checkpoint (size %d) is not cosigned by it, and it last cosigned at %s", wv.Name(), maxAge, cp.Size, when)
		if onPublished {
			what = fmt.Sprintf("the latest cosignature of %s, on the published checkpoint (size %d), is from %s, older than %s: the log stopped pushing to it", wv.Name(), cp.Size, when, maxAge)
		}
		return Result{}, &Finding{Kind: Stale, What: what, Evidence: c.evidence(Stale, what, string(signed))}
	}
	if unproven != nil {
		return Result{}, fmt.Errorf("the log did not prove that one of the published checkpoint (size %d) and the one the witness cosigned (size %d) extends the other: %w", cp.Size, held.Size, unproven)
	}
	res, err := c.records(ctx, cp, signed)
	if err != nil {
		return Result{}, err
	}
	// The records rebuild the checkpoint's tree: it is the one this party
	// would accept, if every other party's witness saw it too.
	res.Others, err = c.othersCosigned(key.Origin, logV, others, cp, signed, published, maxAge)
	var f *Finding
	if errors.As(err, &f) && f.Kind == Uncosigned && len(notes) > 0 {
		f.What += " (" + strings.Join(notes, "; ") + ")"
	}
	if err != nil {
		return Result{}, err
	}
	res.Witness, res.CosignedAt, res.Notes = wv.Name(), last, notes
	return res, nil
}

// witnessMaxAge is the age a cosignature of the party's witness may have,
// from the witness_max_age_s the server serves, within the rules' bounds
// (1 s to rules.MaxWitnessMaxAgeS): the rules come from the server the
// check does not trust, and one that served a year (or 9e9 s) as the
// agreed age kept a log that stopped showing the party its new records
// from ever being found STALE.
func witnessMaxAge(servedS float64) time.Duration {
	s := servedS
	if !(s >= 1) { // NaN too
		s = 1
	}
	s = min(s, rules.MaxWitnessMaxAgeS)
	return time.Duration(s * float64(time.Second))
}

func (c *Checker) consistency(ctx context.Context, from, size int64) ([]translog.Hash, error) {
	b, err := c.get(ctx, "/v1/log/proof/consistency?from="+strconv.FormatInt(from, 10)+"&size="+strconv.FormatInt(size, 10))
	if err != nil {
		return nil, err
	}
	return parseProof(b)
}

// parseProof reads the server's answer of a consistency proof,
// {"proof":["<hex>",..]}; anything else is a *notAProofError.
func parseProof(b []byte) ([]translog.Hash, error) {
	var out struct {
		Proof []string `json:"proof"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, &notAProofError{fmt.Errorf("consistency proof: %w", err)}
	}
	proof := make([]translog.Hash, len(out.Proof))
	for i, s := range out.Proof {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != len(translog.Hash{}) {
			if len(s) > 2*len(translog.Hash{})+1 {
				s = s[:2*len(translog.Hash{})+1] + "..." // 8 MiB of it is no help
			}
			return nil, &notAProofError{fmt.Errorf("consistency proof: %q is not a hash", s)}
		}
		proof[i] = translog.Hash(b)
	}
	return proof, nil
}

// records fetches the records after the last check, checks their chain,
// rebuilds the tree with them and compares it with the checkpoint.
func (c *Checker) records(ctx context.Context, cp translog.Checkpoint, signed []byte) (Result, error) {
	fh, err := translog.OpenFileHashes(c.path("tree.hashes"))
	if err != nil {
		return Result{}, err
	}
	defer fh.Close()
	tree, err := translog.NewTree(fh)
	if err != nil {
		return Result{}, err
	}
	checked := tree.Size()
	res := Result{Size: cp.Size, CheckedSince: checked}
	if checked > cp.Size {
		return Result{}, &Finding{Kind: Inconsistent, What: fmt.Sprintf("the published checkpoint has size %d but this party already verified %d records", cp.Size, checked),
			Evidence: c.evidence(Inconsistent, string(signed))}
	}
	if checked == cp.Size {
		return res, nil
	}
	var keyInfo audit.KeyInfo
	if err := c.getJSON(ctx, "/v1/audit/key", &keyInfo); err != nil {
		return Result{}, err
	}
	pub, err := audit.ParsePublicKey(keyInfo.PublicKey)
	if err != nil {
		return Result{}, err
	}
	body, err := c.open(ctx, "/v1/audit?from="+strconv.FormatInt(checked+1, 10))
	if err != nil {
		return Result{}, err
	}
	defer body.Close()
	// The chain: every hash recomputed, every link, the signed head; the
	// verification gives the records' leaf hashes too. It reads the export
	// as the server writes it, so that on two cores the server's export
	// and the check run side by side. A copy is kept for the evidence, in
	// a file: a record of hotline traffic exports as some 700-900 bytes,
	// so catching up with a million records is most of a gigabyte, which
	// a party's witness host need not hold in memory.
	kept, err := os.CreateTemp(c.path(""), "export-*.jsonl")
	if err != nil {
		return Result{}, err
	}
	defer func() {
		kept.Close()
		os.Remove(kept.Name())
	}()
	keep := bufio.NewWriterSize(kept, 1<<16)
	sum, err := audit.VerifyWith(io.TeeReader(body, keep), pub, audit.VerifyOptions{PartyKeys: c.PartyKeys, Bind: c.Bind})
	if err != nil {
		// The rest of the export is evidence too, up to a bound: an export
		// that does not verify may not end either.
		if _, cerr := io.Copy(keep, io.LimitReader(body, maxEvidenceTail)); cerr != nil {
			return Result{}, fmt.Errorf("reading the export: %w", cerr)
		}
	}
	if ferr := keep.Flush(); ferr != nil {
		return Result{}, fmt.Errorf("keeping a copy of the export: %w", ferr)
	}
	if err != nil {
		var ae *audit.Error
		what := "the export does not verify: " + err.Error()
		if errors.As(err, &ae) && ae.Seq > 0 {
			what = fmt.Sprintf("record %d: %s", ae.Seq, ae.Problem)
		}
		return Result{}, &Finding{Kind: Inconsistent, What: what, Evidence: c.evidenceWith(Inconsistent, what, kept)}
	}
	// The leaves, in order, up to the checkpoint's size.
	if sum.Records > 0 && sum.FirstSeq != checked+1 {
		return Result{}, fmt.Errorf("the export gave record %d where %d was expected", sum.FirstSeq, checked+1)
	}
	leaves := sum.Leaves[:min(int64(len(sum.Leaves)), cp.Size-checked)]
	if int64(len(leaves)) < cp.Size-checked {
		return Result{}, &Finding{Kind: Inconsistent, What: fmt.Sprintf("the checkpoint commits to %d records but the export ends at record %d", cp.Size, checked+int64(len(leaves))),
			Evidence: c.evidence(Inconsistent, string(signed))}
	}
	if _, err := tree.AppendLeafHashes(leaves); err != nil {
		return Result{}, err
	}
	root, err := tree.Root(cp.Size)
	if err != nil {
		return Result{}, err
	}
	if root != cp.Root {
		// Find the first record that differs: the largest size whose
		// rebuilt prefix the checkpoint's tree still extends.
		lo, hi := checked, cp.Size-1 // the prefix of size lo is known good
		for lo < hi {
			mid := (lo + hi + 1) / 2
			r, err := tree.Root(mid)
			if err != nil {
				return Result{}, err
			}
			proof, err := c.consistency(ctx, mid, cp.Size)
			if err == nil && translog.VerifyConsistency(mid, r, cp.Size, cp.Root, proof) == nil {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		_ = tree.Truncate(checked)
		seq := lo + 1
		what := fmt.Sprintf("record %d as exported is not the record the cosigned checkpoint of size %d commits to (altered after it was logged)", seq, cp.Size)
		line, err := recordLine(kept, seq)
		if err != nil {
			return Result{}, fmt.Errorf("reading the copy of the export: %w", err)
		}
		return Result{}, &Finding{Kind: Inconsistent, What: what, Evidence: c.evidence(Inconsistent, what, "record: "+string(line), "checkpoint:", string(signed))}
	}
	if err := fh.Sync(); err != nil {
		return Result{}, err
	}
	res.NewRecords = cp.Size - checked
	return res, nil
}

// recordLine is the line of record seq in the export kept in f (nil when
// none).
func recordLine(f *os.File, seq int64) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	prefix := []byte(`{"seq":` + strconv.FormatInt(seq, 10) + `,`)
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		if bytes.HasPrefix(line, prefix) {
			return bytes.TrimSuffix(line, []byte("\n")), nil
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
