package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

func init() {
	register(command{
		name:    "volumes",
		summary: "import airspace files (GeoJSON, OpenAir) as volumes, or export the volumes as GeoJSON, KML or OpenAir",
		run:     runVolumes,
	})
}

func runVolumes(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signalContext()
	defer stop()
	if len(args) == 0 || (args[0] != "import" && args[0] != "export") {
		fmt.Fprintln(stderr, "usage: deconflict volumes import --file F (--geojson | --openair) --party NAME --server URL (--token T | --token-file F) [--key FILE] [--start T --end T] [--ground-m M] [--unlimited-m M] [--dry-run]")
		fmt.Fprintln(stderr, "       deconflict volumes export --format geojson|kml|openair --party NAME --server URL (--token T | --token-file F) [--out FILE]")
		return usagef("volumes: import or export comes first")
	}
	if args[0] == "import" {
		return volumesImport(ctx, args[1:], stdout, stderr)
	}
	return volumesExport(ctx, args[1:], stdout, stderr)
}

// volumesImport asks the server what each airspace of the file would
// become (POST /v1/volumes/preview, which writes nothing), then declares
// each one that conflicts with nothing, one POST /v1/volumes each, and
// reports every item: declared, conflicting (with whom, and the
// alternatives once the server offers them) or refused (reason and line).
// A request refused with 429 and Retry-After (the party's request rate, or
// its preview budget, spent) is sent again once the delay is over, and the
// import goes on; each declaration keeps its Idempotency-Key through its
// sends, so that none is made twice.
func volumesImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("volumes import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	file := fs.String("file", "", "the airspace file")
	geojson := fs.Bool("geojson", false, "the file is GeoJSON (RFC 7946): one volume per feature, the volume fields as properties")
	openair := fs.Bool("openair", false, "the file is OpenAir: one volume per airspace (per activation interval)")
	start := fs.String("start", "", "RFC 3339: the window of airspaces without activation times; activation intervals are cut to --start/--end")
	end := fs.String("end", "", "RFC 3339: see --start")
	groundM := fs.Float64("ground-m", 0, "ground elevation in meters under heights above ground (AGL)")
	unlimitedM := fs.Float64("unlimited-m", 0, "altitude in meters of an unlimited upper limit (UNL; default FL660, 20,117 m, a band from GND higher than the default rules' max_alt_range_m of 15,000 m allow: such airspace is refused until this is at most its lower limit plus max_alt_range_m)")
	dryRun := fs.Bool("dry-run", false, "report what would be declared, declare nothing")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	if *file == "" || *geojson == *openair {
		return usagef("volumes import: --file and exactly one of --geojson and --openair are required")
	}
	format := "openair"
	if *geojson {
		format = "geojson"
	}
	q := url.Values{}
	for _, t := range []struct{ name, v string }{{"start", *start}, {"end", *end}} {
		if t.v == "" {
			continue
		}
		if _, err := time.Parse(time.RFC3339, t.v); err != nil {
			return usagef("volumes import: --%s %q is not an RFC 3339 time", t.name, t.v)
		}
		q.Set(t.name, t.v)
	}
	if *groundM != 0 {
		q.Set("ground_m", strconv.FormatFloat(*groundM, 'f', -1, 64))
	}
	if *unlimitedM != 0 {
		q.Set("unlimited_m", strconv.FormatFloat(*unlimitedM, 'f', -1, 64))
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return usagef("volumes import: %v", err)
	}
	cl, err := cf.client(ctx, stderr)
	if err != nil {
		return err
	}
	var items []client.PreviewItem
	err = waitOut429(ctx, stderr, "preview", func() (err error) {
		items, err = cl.PreviewVolumes(ctx, format, q, data)
		return err
	})
	if err != nil {
		var p *client.Problem
		if errors.As(err, &p) && p.Status == 400 {
			return usagef("volumes import: %s: %s", *file, p.Detail)
		}
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHERE\tNAME\tRESULT\tDETAIL")
	counts := map[string]int{}
	for _, it := range items {
		result, detail := it.Status, ""
		switch it.Status {
		case "ok":
			result = "would declare"
			if !*dryRun {
				v, err := declareOnce(ctx, stderr, cl, where(it), *it.Input)
				result, detail = declareOutcome(v, err)
				if result == "" {
					return fmt.Errorf("volumes import: %s: %w", where(it), err)
				}
			}
		case "conflicting":
			detail = conflictDetail(it.Conflicts, it.Alternatives, it.AlternativesOmitted)
		case "refused":
			detail = it.Reason
		}
		counts[result]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", where(it), it.Name, result, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, k := range []string{"declared", "would declare", "conflicting", "refused"} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	fmt.Fprintf(stdout, "%d items: %s\n", len(items), strings.Join(parts, ", "))
	if n := counts["conflicting"] + counts["refused"]; n > 0 {
		return fmt.Errorf("volumes import: %d of %d items not declared", n, len(items))
	}
	return nil
}

// declareOnce declares in, waiting out any 429 with Retry-After (nothing
// was done: the server refuses those unread) and sending it again under the
// same Idempotency-Key: should an earlier send have been done after all
// (its answer lost, and the client's own resend refused with 429), the
// server answers with that one's answer and does not declare it again.
func declareOnce(ctx context.Context, stderr io.Writer, cl *client.Client, what string, in client.VolumeInput) (client.Volume, error) {
	kctx := client.WithIdempotencyKey(ctx, rand.Text())
	var v client.Volume
	sends := 0
	err := waitOut429(ctx, stderr, what, func() (err error) {
		sends++
		v, err = cl.CreateVolume(kctx, in)
		if errors.Is(err, client.ErrReplayed) && sends > 1 {
			// The key is this item's alone: the replayed answer is
			// that of an earlier send of this declaration.
			err = nil
		}
		return err
	})
	return v, err
}

// maxImportWait bounds how long the import waits out 429s for one request,
// all its Retry-Afters together: the server's own delays are seconds (its
// request rate) to about a minute (a preview of the most items with the
// preview budget spent); a server asking for more, or refusing again and
// again, is not waited on for ever: the import stops with its 429.
const maxImportWait = 10 * time.Minute

// waitOut429 calls send, and again after the server's Retry-After for as
// long as it is refused with 429 and Retry-After (a party's request rate or
// budget: the server refuses those before it reads or does anything), up to
// maxImportWait in all; any other outcome is send's. A 429 without
// Retry-After (a limit such as too-many-volumes) is not waited on.
func waitOut429(ctx context.Context, stderr io.Writer, what string, send func() error) error {
	return waitOut429Within(ctx, stderr, what, maxImportWait, send)
}

// waitOut429Within is waitOut429 waiting at most limit in all.
func waitOut429Within(ctx context.Context, stderr io.Writer, what string, limit time.Duration, send func() error) error {
	var waited time.Duration
	for {
		err := send()
		var p *client.Problem
		if !errors.As(err, &p) || p.Status != http.StatusTooManyRequests || p.RetryAfter <= 0 {
			return err
		}
		if p.RetryAfter > limit-waited {
			return fmt.Errorf("%s: refused with 429 after waiting %v, and the server asks to wait %v more (at most %v in all are waited): %w",
				what, waited, p.RetryAfter, limit, err)
		}
		fmt.Fprintf(stderr, "%s: %s (429); sending it again after Retry-After, %v\n", what, p.Title, p.RetryAfter)
		if serr := client.Sleep(ctx, p.RetryAfter); serr != nil {
			return errors.Join(err, serr)
		}
		waited += p.RetryAfter
	}
}

// declareOutcome reads the answer to one declaration: "" for an error
// that is not about the item (the import stops there).
func declareOutcome(v client.Volume, err error) (result, detail string) {
	var p *client.Problem
	switch {
	case err == nil:
		return "declared", fmt.Sprintf("id %s version %s state %s", v.ID, v.Version, v.State)
	case errors.As(err, &p) && p.Status == 409:
		// Someone declared a conflicting volume since the preview.
		return "conflicting", conflictDetail(p.Missing, p.Alternatives, p.AlternativesOmitted) + " " + p.Detail
	case errors.As(err, &p) && p.Status == 400:
		return "refused", p.Detail
	}
	return "", ""
}

func where(it client.PreviewItem) string {
	if it.Feature != nil {
		return "feature " + strconv.Itoa(*it.Feature)
	}
	return "line " + strconv.Itoa(it.Line)
}

func conflictDetail(with []client.Volume, alternatives []client.Alternative, omitted string) string {
	var ids []string
	for _, v := range with {
		ids = append(ids, fmt.Sprintf("%s's %s@%s", v.Party, v.ID, v.Version))
	}
	s := "with " + strings.Join(ids, ", ")
	for _, a := range alternatives {
		s += fmt.Sprintf("; alternative %.0f-%.0f m %s to %s (%s", a.AltLowerM, a.AltUpperM,
			a.Start.UTC().Format(time.RFC3339), a.End.UTC().Format(time.RFC3339), a.Change)
		if a.ClimbM != 0 {
			s += fmt.Sprintf(" %+.0f m", a.ClimbM)
		}
		if a.ShiftS != 0 {
			s += fmt.Sprintf(" %+.0f s", a.ShiftS)
		}
		s += ")"
	}
	if omitted != "" {
		// Not "no alternative": none was searched.
		s += fmt.Sprintf("; alternatives not searched (%s: the party's budget of searches is spent; ask again later)", omitted)
	}
	return s
}

// volumesExport writes the volumes the party may see (its own in full,
// the others' reduced) in the format asked.
func volumesExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("volumes export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	format := fs.String("format", "geojson", "geojson, kml or openair")
	out := fs.String("out", "", "file to write (default: standard output)")
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	switch *format {
	case "geojson", "kml", "openair":
	default:
		return usagef("volumes export: --format %q is not geojson, kml or openair", *format)
	}
	cl, err := cf.client(ctx, stderr)
	if err != nil {
		return err
	}
	data, err := cl.VolumesAs(ctx, *format)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(data)
		return err
	}
	return os.WriteFile(*out, data, 0o644)
}
