// Package silentsource is a TCP source that accepts every connection and
// sends nothing on it: a feed's source that stays connected but has gone
// silent. It is imported by tests only.
package silentsource

import (
	"net"
	"testing"
)

// Start listens on a loopback port until the test ends. It returns the
// address and the connections accepted, each held open, in the order they
// came (up to four waiting to be taken).
func Start(t testing.TB) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c // held open, sending nothing
		}
	}()
	return ln.Addr().String(), conns
}
