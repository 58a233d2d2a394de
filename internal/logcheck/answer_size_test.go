package logcheck

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestAnswerLargerThanAnyOfItsKindIsRefused: the server is not trusted by
// the party that checks it. An answer larger than any key, rules,
// checkpoint or proof (here a log key of 9 MiB) is refused as such,
// unread beyond the limit, and pins nothing: it was read whole into
// memory, however long the server kept sending, and pinned as the log's
// key.
func TestAnswerLargerThanAnyOfItsKindIsRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"origin":"log","vkey":"`+strings.Repeat("a", 9<<20)+`"}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	c := &Checker{Server: srv.URL, Token: "t", Dir: dir, HTTP: srv.Client()}
	_, err := c.Check(context.Background())
	if !errors.Is(err, ErrAnswerTooLarge) {
		t.Errorf("check: %v, want ErrAnswerTooLarge", err)
	}
	if _, serr := os.Stat(c.path("log.vkey")); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("a log key was pinned (%v)", serr)
	}
}
