package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// AuditOptions sizes the audit log measurement.
type AuditOptions struct {
	Records int // records appended
	Batch   int // records per transaction
}

// AuditResult is the audit log's throughput next to its baselines: append
// against inserting ready-made records, export against reading the rows,
// verify against one SHA-256 over the export's bytes.
type AuditResult struct {
	Records      int     `json:"records"`
	Batch        int     `json:"batch"`
	ExportMB     float64 `json:"export_mb"`
	Checkpoints  int     `json:"checkpoints"`
	ExportedRows int     `json:"exported_rows"`
	AppendS      float64 `json:"append_s"`
	BaseAppendS  float64 `json:"baseline_append_s"`
	ExportS      float64 `json:"export_s"`
	BaseExportS  float64 `json:"baseline_export_s"`
	VerifyS      float64 `json:"verify_s"`
	BaseVerifyS  float64 `json:"baseline_verify_s"`
	LoadAverage  string  `json:"load_average"`
}

// Audit times the audit log on the embedded store against in-process
// baselines: appending (canonical JSON, sealing, hashing, checkpoints)
// against inserting ready-made records, exporting against reading the rows,
// and verifying against hashing the export's bytes once.
func Audit(o AuditOptions) (AuditResult, error) {
	res := AuditResult{Records: o.Records, Batch: o.Batch}
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "deconflict-bench-audit-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	open := func(name string) (store.Store, error) { return sqlite.Open(ctx, filepath.Join(tmp, name)) }
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return res, err
	}
	lg := audit.NewLog(key, audit.DefaultEvery)
	t0 := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	content := func(i int) any {
		return map[string]any{"id": fmt.Sprintf("v-%d", i), "party": "alpha", "alt_lower_m": 3000, "alt_upper_m": 6000,
			"footprint": map[string]any{"type": "Circle", "center": []float64{36.2, 35.1}, "radius_m": 20000},
			"details":   audit.Seal(map[string]any{"mission": "survey", "n": i}, "alpha")}
	}
	appendAll := func(st store.Store, one func(tx store.Tx, i int) error) (time.Duration, error) {
		start := time.Now()
		for i := 0; i < o.Records; i += o.Batch {
			err := st.Update(ctx, func(tx store.Tx) error {
				for j := i; j < min(i+o.Batch, o.Records); j++ {
					if err := one(tx, j); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}

	base, err := open("baseline")
	if err != nil {
		return res, err
	}
	defer base.Close()
	raw, err := audit.Canonical(content(0))
	if err != nil {
		return res, err
	}
	fake := make([]byte, audit.HashSize)
	baseAppend, err := appendAll(base, func(tx store.Tx, i int) error {
		return tx.AppendAudit(store.AuditRecord{Seq: int64(i + 1), Time: t0, Actor: "alpha", Kind: "volume_created", Content: raw, PrevHash: fake, Hash: fake})
	})
	if err != nil {
		return res, err
	}
	st, err := open("audit")
	if err != nil {
		return res, err
	}
	defer st.Close()
	projAppend, err := appendAll(st, func(tx store.Tx, i int) error {
		_, err := lg.Append(tx, "alpha", "volume_created", audit.Everyone, content(i), t0.Add(time.Duration(i)*time.Millisecond))
		return err
	})
	if err != nil {
		return res, err
	}

	var exp bytes.Buffer
	start := time.Now()
	if err := st.View(ctx, func(tx store.Tx) error { return lg.Export(tx, &exp, "bravo", 1, time.Now()) }); err != nil {
		return res, err
	}
	projExport := time.Since(start)
	start = time.Now()
	rows := 0
	err = st.View(ctx, func(tx store.Tx) error {
		for next := int64(1); ; {
			page, err := tx.AuditFrom(next, 1000)
			if err != nil || len(page) == 0 {
				return err
			}
			rows += len(page)
			next = page[len(page)-1].Seq + 1
		}
	})
	if err != nil {
		return res, err
	}
	baseExport := time.Since(start)

	start = time.Now()
	sum, err := audit.Verify(bytes.NewReader(exp.Bytes()), lg.PublicKey())
	if err != nil {
		return res, err
	}
	projVerify := time.Since(start)
	start = time.Now()
	_ = sha256.Sum256(exp.Bytes())
	baseVerify := time.Since(start)

	res.ExportMB = float64(exp.Len()) / 1e6
	res.Checkpoints = sum.Checkpoints
	res.ExportedRows = rows
	res.AppendS, res.BaseAppendS = projAppend.Seconds(), baseAppend.Seconds()
	res.ExportS, res.BaseExportS = projExport.Seconds(), baseExport.Seconds()
	res.VerifyS, res.BaseVerifyS = projVerify.Seconds(), baseVerify.Seconds()
	res.LoadAverage = LoadAverage()
	return res, nil
}

// WriteText writes the rates and time ratios for a person.
func (res AuditResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "audit log on SQLite: %d records, %d per transaction, export %.1f MB, %d checkpoints, load %s\n",
		res.Records, res.Batch, res.ExportMB, res.Checkpoints, res.LoadAverage)
	line := func(what string, projS, baseS float64, unit string, work float64) {
		fmt.Fprintf(w, "  %-8s %10.0f %s/s   baseline %10.0f %s/s   time ratio %.2fx\n", what,
			work/projS, unit, work/baseS, unit, projS/baseS)
	}
	line("append", res.AppendS, res.BaseAppendS, "rec", float64(res.Records))
	line("export", res.ExportS, res.BaseExportS, "rec", float64(res.ExportedRows))
	line("verify", res.VerifyS, res.BaseVerifyS, "MB", res.ExportMB)
	_, err := fmt.Fprintln(w, "  baselines: append = raw AppendAudit of a ready record; export = reading the rows; verify = one SHA-256 over the export's bytes")
	return err
}
