package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// Verifying an export: the service appends records (bravo's private
// details sealed), exports the log as alpha sees it, and anyone holding the
// public key checks every link and signature. Changing one byte of a record
// is found, naming the line.
func ExampleVerify() {
	dir, _ := os.MkdirTemp("", "audit-example-")
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	log := audit.NewLog(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)), 2) // a checkpoint every 2 records
	t0 := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	var export bytes.Buffer
	err = st.Update(context.Background(), func(tx store.Tx) error {
		for i, party := range []string{"alpha", "bravo", "bravo"} {
			content := map[string]any{"volume": fmt.Sprintf("v%d", i), "details": audit.Seal(map[string]any{"mission": "survey"}, party)}
			if _, err := log.Append(tx, party, "volume_created", audit.Everyone, content, t0.Add(time.Duration(i)*time.Second)); err != nil {
				return err
			}
		}
		return log.Export(tx, &export, "alpha", 1, t0.Add(time.Minute))
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	sum, err := audit.Verify(bytes.NewReader(export.Bytes()), log.PublicKey())
	fmt.Printf("records %d to %d, %d checkpoint(s), %d details shown by hash only, err %v\n",
		sum.FirstSeq, sum.LastSeq, sum.Checkpoints, sum.Redacted, err)

	tampered := strings.Replace(export.String(), `"volume":"v1"`, `"volume":"v7"`, 1)
	_, err = audit.Verify(strings.NewReader(tampered), log.PublicKey())
	var bad *audit.Error
	if errors.As(err, &bad) {
		fmt.Printf("tampered: record %d on line %d\n", bad.Seq, bad.Line)
	}
	// Output:
	// records 1 to 3, 1 checkpoint(s), 2 details shown by hash only, err <nil>
	// tampered: record 2 on line 2
}
