package api

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A preview cut short before its first item (its client gone once the
// file is sent) is still charged the reading of its file, as a preview
// refused before its items are known is (an item per 100 KB read: a
// 10 MB file was parsed in what 20 items take to check). Given back every
// item it did not check, it cost nothing: a party could have the server
// read, parse and cut into items file after file, each closed as soon as
// sent, without its budget of preview items ever paying.
func TestPreviewCutShortPaysForReadingItsFile(t *testing.T) {
	e := newEnv(t, Options{PreviewItemsPerSecond: 0.001, PreviewPositionsPerSecond: 0.001, PreviewPositionsBurst: 1e6})
	now := time.Now().UTC().Truncate(time.Second)
	path := fmt.Sprintf("/v1/volumes/preview?format=openair&start=%s&end=%s", now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	file := polygonsOpenAir(20, 999)
	readCost := float64((len(file) + 99_999) / 100_000)
	if readCost < 5 {
		t.Fatalf("the file is %d bytes: too small to tell its reading's cost", len(file))
	}
	before := e.previewItemsHeld("coalition")

	// The client is gone once the file is sent.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, "POST", path, cancelAtEOF{strings.NewReader(file), cancel})
	r.Header.Set("Authorization", "Bearer "+e.tokens["coalition"])
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, r)
	if !strings.Contains(rec.Body.String(), "cancelled") {
		t.Fatalf("a preview whose client is gone: %d %s, want it cancelled", rec.Code, rec.Body)
	}

	if used := before - e.previewItemsHeld("coalition"); used < readCost-0.5 {
		t.Fatalf("a preview of a %d-byte file cut short before its first item was charged %g items, want the %g of its reading", len(file), used, readCost)
	}
}

// cancelAtEOF is a request body whose client goes once it is all read.
type cancelAtEOF struct {
	io.Reader
	cancel context.CancelFunc
}

func (c cancelAtEOF) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}
