package logcheck

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/translog"
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

// TestAKeyThatIsNoKeyIsNotPinned: the first check pins the log's key. A
// served key that is no verifier key (the server's fault, or an answer
// garbled on the way) is a failure to check and pins nothing: pinned, it
// made every later check, with the log's real key, an INCONSISTENT
// "the log's key changed", and the party's witness withhold its
// cosignatures until someone removed the pin by hand.
func TestAKeyThatIsNoKeyIsNotPinned(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := translog.NewLogKey("log.example/test", priv)
	if err != nil {
		t.Fatal(err)
	}
	vkey := "not a key"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"origin": lk.Origin(), "vkey": vkey})
	}))
	defer srv.Close()
	c := &Checker{Server: srv.URL, Token: "t", Dir: t.TempDir(), HTTP: srv.Client()}
	_, err = c.Check(context.Background())
	var f *Finding
	if err == nil || errors.As(err, &f) {
		t.Fatalf("check of a key that is no key: %v, want a failure to check", err)
	}
	vkey = lk.VerifierKey()
	// The check goes on past the key (and fails for want of the witness's
	// state in the directory): no finding about the key.
	if _, err := c.Check(context.Background()); errors.As(err, &f) {
		t.Errorf("check with the log's real key: %v", err)
	}
}
