package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// TestFeedASTERIXFile: a recording is replayed to the server, every track
// a report with its altitude source; the summary counts per category.
func TestFeedASTERIXFile(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var out, errOut bytes.Buffer
	err := feedMain(context.Background(), []string{"asterix", "--file", filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"),
		"--party", "coalition", "--server", srv.URL, "--token", "t", "--speed", "0"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	got := fake.accepted()
	if len(got) != 7 || got[0].Aircraft != "406EC8" || got[0].AltSource != "geometric" {
		t.Fatalf("server got %+v", got)
	}
	if !strings.Contains(out.String(), "feed asterix done: sent=7 ") || !strings.Contains(out.String(), "cat062=7/1") {
		t.Errorf("output %q", out.String())
	}
	for _, args := range [][]string{
		{"asterix", "--party", "coalition", "--token", "t"},
		{"asterix", "--file", "x", "--udp", "127.0.0.1:0", "--token", "t"},
		{"asterix", "--udp", "127.0.0.1:0", "--pcap", "--token", "t"},
		{"asterix", "--file", "x", "--framing", "hdlc", "--token", "t"},
		{"asterix", "--file", "x", "--radar", "91,0,0", "--token", "t"},
		{"asterix", "--file", "x", "--radar", "45,16", "--token", "t"},
		{"asterix", "--file", "x", "--speed", "-1", "--token", "t"},
		{"asterix", "--file", "/etc/hostname", "--server", srv.URL, "--token", "t"},
	} {
		var e bytes.Buffer
		if err := feedMain(context.Background(), args, &out, &e); err == nil {
			t.Errorf("%v accepted", args)
		} else if _, usage := err.(usageError); !usage {
			t.Errorf("%v: %v is not a usage error", args, err)
		}
	}
}

// TestFeedASTERIXUDP: datagrams sent to the feed's UDP port, corrupt ones
// among them, become reports; the corrupt ones are counted per reason and
// do not stop the feed.
func TestFeedASTERIXUDP(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ref := reference.ReadFile(t, filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"))
	probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.LocalAddr().String()
	probe.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- feedMain(ctx, []string{"asterix", "--udp", addr, "--party", "coalition", "--server", srv.URL, "--token", "t"}, &out, &errOut)
	}()
	for !strings.Contains(errOut.String(), "listening on") {
		select {
		case err := <-done:
			t.Fatalf("feed ended: %v\n%s", err, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The reference block's time of day is stamped on today's date; far
	// from the clock, the feed stamps the time of receipt.
	for _, d := range [][]byte{ref[:100], {62, 0, 1}, ref, append(bytes.Clone(ref), 1, 2)} {
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(fake.accepted()) < 14 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if got := fake.accepted(); len(got) != 14 {
		t.Fatalf("server got %d reports", len(got))
	}
	for _, want := range []string{"malformed_truncated_block=1", "malformed_bad_block_length=1", "malformed_trailing_bytes=1", "cat062=14/2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s: %q", want, out.String())
		}
	}
}
