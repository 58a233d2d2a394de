package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/logcheck"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/translog"
	"github.com/deconflict/deconflict/internal/witness"
)

// TrustOptions sizes the measurements of the trust machinery (issue
// "trust no operator"): the Merkle tree on append, signed ingest, proofs
// at size, and a party's check catching up.
type TrustOptions struct {
	Records     int // records appended, with and without the tree
	Batch       int // records per transaction
	SignedBatch int // reports per position batch
	Batches     int // position batches each party posts (from each client)
	// SignedClients is how many clients post at once in the second
	// measurement of signed ingest (the first posts from one client).
	SignedClients int
	ProofRecords  int // tree size for the inclusion proof timing
	Proofs        int // inclusion proofs timed
	CheckRecords  int // records a party's check catches up with
}

// TrustResult holds each figure next to its baseline of the same run.
type TrustResult struct {
	Records        int     `json:"records"`
	AppendPerS     float64 `json:"append_per_s"`
	AppendTreePerS float64 `json:"append_with_tree_per_s"`
	// The same per CPU second of the process.
	AppendPerCPUS       float64 `json:"append_per_cpu_s"`
	AppendTreePerCPUS   float64 `json:"append_with_tree_per_cpu_s"`
	SignedBatch         int     `json:"signed_batch"`
	UnsignedReportsPerS float64 `json:"unsigned_reports_per_s"`
	SignedReportsPerS   float64 `json:"signed_reports_per_s"`
	// The same per CPU second of the process (client and server): what
	// the signatures cost, apart from the time spent waiting for a CPU on
	// a loaded machine.
	UnsignedReportsPerCPUS float64 `json:"unsigned_reports_per_cpu_s"`
	SignedReportsPerCPUS   float64 `json:"signed_reports_per_cpu_s"`
	// The same with SignedClients clients posting at once.
	SignedClients             int     `json:"signed_clients"`
	UnsignedConcurrentPerS    float64 `json:"unsigned_concurrent_reports_per_s"`
	SignedConcurrentPerS      float64 `json:"signed_concurrent_reports_per_s"`
	UnsignedConcurrentPerCPUS float64 `json:"unsigned_concurrent_reports_per_cpu_s"`
	SignedConcurrentPerCPUS   float64 `json:"signed_concurrent_reports_per_cpu_s"`
	ProofRecords              int     `json:"proof_records"`
	ProofBuildS               float64 `json:"proof_tree_build_s"`
	ProofP50Us                float64 `json:"inclusion_proof_p50_us"`
	ProofP99Us                float64 `json:"inclusion_proof_p99_us"`
	CheckRecords              int     `json:"check_records"`
	CheckS                    float64 `json:"check_catch_up_s"`
	CheckCPUS                 float64 `json:"check_catch_up_cpu_s"` // the process's CPU time (server export and check)
	LoadAverage               string  `json:"load_average"`
}

// Trust runs the four measurements.
func Trust(o TrustOptions, progress Progress) (TrustResult, error) {
	res := TrustResult{Records: o.Records, SignedBatch: o.SignedBatch, SignedClients: o.SignedClients, ProofRecords: o.ProofRecords, CheckRecords: o.CheckRecords}
	var err error
	progress("append: %d records, with and without the Merkle tree", o.Records)
	if res.AppendPerS, res.AppendTreePerS, res.AppendPerCPUS, res.AppendTreePerCPUS, err = appendWithTree(o); err != nil {
		return res, err
	}
	progress("ingest over HTTP: batches of %d, unsigned and signed", o.SignedBatch)
	seq, err := signedIngest(o, 1)
	if err != nil {
		return res, err
	}
	res.UnsignedReportsPerS, res.SignedReportsPerS, res.UnsignedReportsPerCPUS, res.SignedReportsPerCPUS = seq.unsigned, seq.signed, seq.unsignedCPU, seq.signedCPU
	progress("ingest over HTTP: batches of %d from %d clients at once, unsigned and signed", o.SignedBatch, o.SignedClients)
	conc, err := signedIngest(o, o.SignedClients)
	if err != nil {
		return res, err
	}
	res.UnsignedConcurrentPerS, res.SignedConcurrentPerS, res.UnsignedConcurrentPerCPUS, res.SignedConcurrentPerCPUS = conc.unsigned, conc.signed, conc.unsignedCPU, conc.signedCPU
	progress("inclusion proofs at %d records", o.ProofRecords)
	if res.ProofBuildS, res.ProofP50Us, res.ProofP99Us, err = proofsAtSize(o); err != nil {
		return res, err
	}
	progress("a party's check catching up %d records", o.CheckRecords)
	if res.CheckS, res.CheckCPUS, err = checkCatchUp(o, progress); err != nil {
		return res, err
	}
	res.LoadAverage = LoadAverage()
	return res, nil
}

func benchContent(i int) any {
	return map[string]any{"id": fmt.Sprintf("m-%d", i), "party": "alpha", "to": []string{"bravo"}, "kind": "notice",
		"text": audit.Seal(map[string]any{"text": "position report"}, "alpha", "bravo")}
}

// appendRounds is how many rounds appendWithTree alternates the two sides
// in; the tree catches up at the end of each, as the server's does at each
// tick.
const appendRounds = 10

// appendWithTree appends the records through the audit log, in
// transactions of Batch, to two stores in alternating rounds: one alone
// (today's append), one whose Merkle tree follows it the way the server's
// does (audit.Log.SyncTree at the end of each round, the server's periodic
// job: the new records read back a page at a time, their leaf hashes
// appended to the file-backed tree, which is then synced). Each side's
// time is its appends plus, for the tree's side, the catch-up; the tree
// holds every record at the end. It returns records per second of each
// side, on the wall clock and per CPU second of the process.
func appendWithTree(o TrustOptions) (plain, withTree, plainCPU, withTreeCPU float64, err error) {
	type side struct {
		st      store.Store
		lg      *audit.Log
		tree    *translog.Tree
		file    *translog.FileHashes
		n       int
		elapsed time.Duration
		cpu     time.Duration
	}
	var sides [2]*side // 0: alone, 1: with the tree
	for i := range sides {
		dir, st, done, err := tempSQLite("deconflict-bench-trust-")
		if err != nil {
			return 0, 0, 0, 0, err
		}
		defer done()
		_, key, _ := ed25519.GenerateKey(nil)
		sides[i] = &side{st: st, lg: audit.NewLog(key, audit.DefaultEvery)}
		if i == 1 {
			fh, err := translog.OpenFileHashes(filepath.Join(dir, "tree"))
			if err != nil {
				return 0, 0, 0, 0, err
			}
			defer fh.Close()
			sides[i].file = fh
			if sides[i].tree, err = translog.NewTree(fh); err != nil {
				return 0, 0, 0, 0, err
			}
		}
	}
	ctx := context.Background()
	syncTree := func(s *side) error {
		_, err := s.lg.SyncTree(s.tree, func(seq int64, limit int) (page []store.AuditRecord, err error) {
			err = s.st.View(ctx, func(tx store.Tx) error {
				page, err = tx.AuditFrom(seq, limit)
				return err
			})
			return page, err
		})
		return err
	}
	// As the server does at startup, before any write.
	if err := syncTree(sides[1]); err != nil {
		return 0, 0, 0, 0, err
	}
	t0 := time.Now()
	round := func(s *side, records int) error {
		start, cpu0 := time.Now(), cpuTime()
		for s.n < records {
			err := s.st.Update(ctx, func(tx store.Tx) error {
				for j := s.n; j < min(s.n+o.Batch, records); j++ {
					if _, err := s.lg.Append(tx, "alpha", "message_posted", audit.Everyone, benchContent(j), t0.Add(time.Duration(j)*time.Millisecond)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			s.n = min(s.n+o.Batch, records)
		}
		if s.tree != nil {
			if err := syncTree(s); err != nil {
				return err
			}
			if err := s.file.Sync(); err != nil { // as the server does at each new checkpoint, beside its push
				return err
			}
		}
		s.elapsed += time.Since(start)
		s.cpu += cpuTime() - cpu0
		return nil
	}
	for r := 1; r <= appendRounds; r++ {
		records := o.Records * r / appendRounds
		order := []*side{sides[0], sides[1]}
		if r%2 == 0 {
			order[0], order[1] = order[1], order[0]
		}
		for _, s := range order {
			if err := round(s, records); err != nil {
				return 0, 0, 0, 0, err
			}
		}
	}
	if got := sides[1].tree.Size(); got != int64(o.Records) {
		return 0, 0, 0, 0, fmt.Errorf("the tree holds %d records, want %d", got, o.Records)
	}
	perS := func(d time.Duration) float64 { return float64(o.Records) / d.Seconds() }
	return perS(sides[0].elapsed), perS(sides[1].elapsed), perS(sides[0].cpu), perS(sides[1].cpu), nil
}

// ingestRates are the reports per second of wall clock and per CPU second
// of the process (client and server) of unsigned and signed batches.
type ingestRates struct {
	unsigned, signed, unsignedCPU, signedCPU float64
}

// signedIngest posts position batches over HTTP for a party without a key
// and one with a key (every batch signed), in alternating rounds: in each
// round every one of clients posts one batch of its own aircraft at once,
// first for one party, then for the other (the order alternates), and the
// round's wall clock and CPU time are counted to its party. With one
// client the batches are sequential: each signed batch's wait for its
// durable commit (nonce and statement) is on the clock; with several, as
// when feeds post side by side, one batch's commit overlaps the others'
// work.
func signedIngest(o TrustOptions, clients int) (ingestRates, error) {
	dir, st, done, err := tempSQLite("deconflict-bench-signed-")
	if err != nil {
		return ingestRates{}, err
	}
	defer done()
	ctx := context.Background()
	svc, err := service.New(ctx, service.Config{Store: st, DataDir: dir})
	if err != nil {
		return ingestRates{}, err
	}
	defer svc.Close(ctx)
	srv := httptest.NewServer(api.NewHandler(svc, api.Options{RatePerSecond: 1e6, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9}))
	defer srv.Close()
	op := party.Principal{Party: party.OperatorName, Operator: true}
	key, _ := partykey.Generate()
	plainTok, err := svc.AddParty(ctx, op, "plain")
	if err != nil {
		return ingestRates{}, err
	}
	signerTok, err := svc.AddParty(ctx, op, "signer", partykey.Public(key))
	if err != nil {
		return ingestRates{}, err
	}
	parties := map[string]*client.Client{
		"plain":  client.New(srv.URL, plainTok),
		"signer": client.New(srv.URL, signerTok).WithKey(key),
	}
	altM := map[string]float64{"plain": 3000, "signer": 9000}
	batch := func(name string, c int) []client.Report {
		// Every batch is of now: a report more than a few seconds ahead
		// of the server's clock is refused (api.MaxFutureS), and a
		// refused batch is not the ingest measured here.
		now := time.Now()
		rs := make([]client.Report, o.SignedBatch)
		for i := range rs {
			// Spread over the globe so the engine has little pair work;
			// the clients' aircraft between one another's; the two parties
			// 6 km apart in altitude, so that neither's batches raise
			// alerts (commits, resolutions) with the other's aircraft.
			lat := -60 + 120*(float64(i)+float64(c)/float64(clients))/float64(o.SignedBatch)
			lon := -170 + 340*rand.Float64()
			rs[i] = client.Report{Aircraft: fmt.Sprintf("%s-%d-%d", name, c, i), Time: now,
				LatDeg: lat, LonDeg: lon, AltM: altM[name], VelEastMps: 200}
		}
		return rs
	}
	elapsed := map[string]time.Duration{}
	cpu := map[string]time.Duration{}
	reports := map[string]int{}
	for round := range o.Batches {
		order := []string{"plain", "signer"}
		if round%2 == 1 {
			order = []string{"signer", "plain"}
		}
		for _, name := range order {
			batches := make([][]client.Report, clients)
			for c := range batches {
				batches[c] = batch(name, c)
			}
			errs := make([]error, clients)
			var wg sync.WaitGroup
			start, cpu0 := time.Now(), cpuTime()
			for c := range batches {
				wg.Go(func() {
					r, err := parties[name].PostPositions(ctx, batches[c])
					switch {
					case err != nil:
						errs[c] = fmt.Errorf("%s: %w", name, err)
					case len(r.Rejected) > 0:
						errs[c] = fmt.Errorf("%s: %d reports of a batch refused, the first: %s", name, len(r.Rejected), r.Rejected[0].Error)
					}
				})
			}
			wg.Wait()
			elapsed[name] += time.Since(start)
			cpu[name] += cpuTime() - cpu0
			if err := errors.Join(errs...); err != nil {
				return ingestRates{}, err
			}
			reports[name] += clients * o.SignedBatch
		}
	}
	return ingestRates{
		unsigned: float64(reports["plain"]) / elapsed["plain"].Seconds(), signed: float64(reports["signer"]) / elapsed["signer"].Seconds(),
		unsignedCPU: float64(reports["plain"]) / cpu["plain"].Seconds(), signedCPU: float64(reports["signer"]) / cpu["signer"].Seconds(),
	}, nil
}

// proofsAtSize builds a file-backed tree of ProofRecords leaves and times
// inclusion proofs of random leaves against its full size.
func proofsAtSize(o TrustOptions) (buildS, p50, p99 float64, err error) {
	dir, err := os.MkdirTemp("", "deconflict-bench-proofs-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	fh, err := translog.OpenFileHashes(filepath.Join(dir, "tree"))
	if err != nil {
		return 0, 0, 0, err
	}
	defer fh.Close()
	tree, err := translog.NewTree(fh)
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	const chunk = 1 << 16
	leaves := make([]translog.Hash, 0, chunk)
	var n [8]byte
	for i := 0; i < o.ProofRecords; i++ {
		binary.BigEndian.PutUint64(n[:], uint64(i))
		leaves = append(leaves, sha256.Sum256(n[:]))
		if len(leaves) == chunk || i == o.ProofRecords-1 {
			if _, err := tree.AppendLeafHashes(leaves); err != nil {
				return 0, 0, 0, err
			}
			leaves = leaves[:0]
		}
	}
	buildS = time.Since(start).Seconds()
	size := tree.Size()
	root, err := tree.Root(size)
	if err != nil {
		return 0, 0, 0, err
	}
	times := make([]time.Duration, o.Proofs)
	for i := range times {
		idx := rand.Int64N(size)
		start := time.Now()
		leaf, err := tree.LeafHashAt(idx)
		if err != nil {
			return 0, 0, 0, err
		}
		p, err := tree.InclusionProof(idx, size)
		times[i] = time.Since(start)
		if err != nil {
			return 0, 0, 0, err
		}
		if err := translog.VerifyInclusion(leaf, idx, size, root, p); err != nil {
			return 0, 0, 0, err
		}
	}
	slices.Sort(times)
	return buildS, us(percentile(times, 50)), us(percentile(times, 99)), nil
}

// checkCatchUp fills a server's record with CheckRecords records, lets the
// party's witness cosign it, and times one `witness check` that catches up
// with all of them (export over HTTP, chain, tree rebuilt, root compared).
func checkCatchUp(o TrustOptions, progress Progress) (wallS, cpuS float64, err error) {
	dir, st, done, err := tempSQLite("deconflict-bench-check-")
	if err != nil {
		return 0, 0, err
	}
	defer done()
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	lg := audit.NewLog(key, audit.DefaultEvery)
	t0 := time.Now().Add(-time.Hour)
	for i := 0; i < o.CheckRecords; i += 1000 {
		err := st.Update(ctx, func(tx store.Tx) error {
			for j := i; j < min(i+1000, o.CheckRecords); j++ {
				if _, err := lg.Append(tx, "alpha", "message_posted", audit.Everyone, benchContent(j), t0.Add(time.Duration(j)*time.Microsecond)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
	}
	progress("  %d records written; starting the server (it builds its tree)", o.CheckRecords)
	if err := os.WriteFile(filepath.Join(dir, audit.KeyFile), mustPEM(key), 0o600); err != nil {
		return 0, 0, err
	}
	svc, err := service.New(ctx, service.Config{Store: st, DataDir: dir})
	if err != nil {
		return 0, 0, err
	}
	defer svc.Close(ctx)
	srv := httptest.NewServer(api.NewHandler(svc, api.Options{RatePerSecond: 1e6, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9}))
	defer srv.Close()
	op := party.Principal{Party: party.OperatorName, Operator: true}
	tok, err := svc.AddParty(ctx, op, "alpha")
	if err != nil {
		return 0, 0, err
	}
	_, vkey := svc.LogKey()
	wdir, err := os.MkdirTemp("", "deconflict-bench-witness-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(wdir)
	_, wkey, _ := ed25519.GenerateKey(nil)
	ws, err := witness.NewServer("alpha.bench/witness", wkey, wdir, []string{vkey})
	if err != nil {
		return 0, 0, err
	}
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	r := svc.Rules()
	r.Witnesses = []rules.Witness{{Party: "alpha", URL: wsrv.URL, VKey: ws.VerifierKey()}}
	// Proposed by the operator, accepted by alpha, the one party.
	prop, err := svc.ProposeRules(ctx, op, r)
	if err != nil {
		return 0, 0, err
	}
	if _, err := svc.AnswerRules(ctx, party.Principal{Party: "alpha"}, prop.Version, true, "", prop.RulesSHA256); err != nil {
		return 0, 0, err
	}
	if err := svc.PublishLog(ctx); err != nil {
		return 0, 0, err
	}
	c := &logcheck.Checker{Server: srv.URL, Token: tok, Dir: wdir}
	start, cpu0 := time.Now(), cpuTime()
	got, err := c.Check(ctx)
	if err != nil {
		return 0, 0, err
	}
	took, tookCPU := time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds()
	if got.NewRecords < int64(o.CheckRecords) {
		return 0, 0, fmt.Errorf("the check verified %d records, want %d", got.NewRecords, o.CheckRecords)
	}
	return took, tookCPU, nil
}

func mustPEM(key ed25519.PrivateKey) []byte {
	b, err := partykey.EncodePEM(key)
	if err != nil {
		panic(err)
	}
	return b
}

// WriteText writes the figures with their baselines and the bars.
func (res TrustResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "trust machinery, load %s\n", res.LoadAverage)
	fmt.Fprintf(w, "  append %d records: %.0f rec/s with the Merkle tree, %.0f rec/s without: ratio %.2f (bar: at least 0.5); per CPU second %.0f and %.0f: ratio %.2f\n",
		res.Records, res.AppendTreePerS, res.AppendPerS, res.AppendTreePerS/res.AppendPerS,
		res.AppendTreePerCPUS, res.AppendPerCPUS, res.AppendTreePerCPUS/res.AppendPerCPUS)
	fmt.Fprintf(w, "  position batches of %d over HTTP from one client: %.0f reports/s signed, %.0f unsigned: ratio %.2f (bar: at least 0.9); per CPU second %.0f and %.0f: ratio %.2f\n",
		res.SignedBatch, res.SignedReportsPerS, res.UnsignedReportsPerS, res.SignedReportsPerS/res.UnsignedReportsPerS,
		res.SignedReportsPerCPUS, res.UnsignedReportsPerCPUS, res.SignedReportsPerCPUS/res.UnsignedReportsPerCPUS)
	fmt.Fprintf(w, "  the same from %d clients at once: %.0f reports/s signed, %.0f unsigned: ratio %.2f; per CPU second %.0f and %.0f: ratio %.2f\n",
		res.SignedClients, res.SignedConcurrentPerS, res.UnsignedConcurrentPerS, res.SignedConcurrentPerS/res.UnsignedConcurrentPerS,
		res.SignedConcurrentPerCPUS, res.UnsignedConcurrentPerCPUS, res.SignedConcurrentPerCPUS/res.UnsignedConcurrentPerCPUS)
	fmt.Fprintf(w, "  inclusion proof at %d records (tree built in %.1f s): p50 %.1f us, p99 %.1f us (bar: p99 at most 1 ms)\n",
		res.ProofRecords, res.ProofBuildS, res.ProofP50Us, res.ProofP99Us)
	_, err := fmt.Fprintf(w, "  witness check catching up %d new records: %.1f s, %.1f s of CPU (server export and check) (bar: at most 60 s)\n", res.CheckRecords, res.CheckS, res.CheckCPUS)
	return err
}
