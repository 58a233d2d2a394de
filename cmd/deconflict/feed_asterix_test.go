package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
		// NaN passed both bounds: every report was stamped centuries ago.
		{"asterix", "--file", filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"), "--speed", "NaN", "--server", srv.URL, "--token", "t"},
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

// TestFeedASTERIXRadarAndFraming: CAT048 records become reports only with
// --radar (without it they are counted as no_radar), at barometric
// altitudes; a recording's framing can be named (--framing, --pcap) and a
// wrong one is read as broken frames, counted, not decoded.
func TestFeedASTERIXRadarAndFraming(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	run := func(file string, extra ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		args := append([]string{"asterix", "--file", filepath.Join(reference.ASTERIXRecordings(t), file),
			"--party", "coalition", "--server", srv.URL, "--token", "t", "--speed", "0"}, extra...)
		if err := feedMain(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	if out := run("cc_parsegps.gps"); !strings.Contains(out, "sent=0 ") || strings.Contains(out, "no_radar=0") || len(fake.accepted()) != 0 {
		t.Fatalf("CAT048 without --radar: %d reports\n%s", len(fake.accepted()), out)
	}
	out := run("cc_parsegps.gps", "--radar", "45.8,16.0,200", "--framing", "gps")
	got := fake.accepted()
	if len(got) == 0 || !strings.Contains(out, "no_radar=0") || !strings.Contains(out, "cat048=15/12") {
		t.Fatalf("CAT048 with --radar: %d reports\n%s", len(got), out)
	}
	for _, r := range got {
		if r.AltSource != "barometric" || math.Abs(r.LatDeg-45.8) > 5 || math.Abs(r.LonDeg-16) > 7 {
			t.Errorf("CAT048 report %+v", r)
		}
	}
	if out := run("cc_cat_062_065.pcap", "--pcap"); !strings.Contains(out, "cat062=2/1") {
		t.Errorf("--pcap: %s", out)
	}
	if out := run("jade_062_one2.ff", "--framing", "raw"); strings.Contains(out, "cat062=") || !strings.Contains(out, "malformed_") {
		t.Errorf("a FINAL recording read as raw: %s", out)
	}
}

// TestFeedASTERIXUDP: datagrams sent to the feed's UDP port, corrupt ones
// among them, become reports; the corrupt ones are counted per reason and
// do not stop the feed. The counts are in the status lines printed while
// the feed runs (every --status, a minute by default), not only at the end.
func TestFeedASTERIXUDP(t *testing.T) {
	probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.LocalAddr().String()
	probe.Close()
	out := feedOverUDP(t, addr, []string{"--status", "20ms"}, func() (net.Conn, error) { return net.Dial("udp", addr) })
	running := false
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " feed asterix: ") && strings.Contains(line, "malformed_truncated_block=1") &&
			strings.Contains(line, "malformed_bad_block_length=1") && strings.Contains(line, "cat062=14/2") {
			running = true
		}
	}
	if !running {
		t.Errorf("no status line while running counts the malformed datagrams:\n%s", out)
	}
}

// feedOverUDP runs feed asterix listening on addr (with the extra flags),
// sends it, through the connection dial makes once the feed listens, the
// reference block among corrupt datagrams, and checks that its 14 reports
// reach the server and the corrupt datagrams are counted per reason. With
// --status among the extra flags, it waits for a status line that counts
// them all before it stops the feed. It returns the feed's output.
func feedOverUDP(t *testing.T, addr string, extra []string, dial func() (net.Conn, error)) string {
	t.Helper()
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ref := reference.ReadFile(t, filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		args := append([]string{"asterix", "--udp", addr, "--party", "coalition", "--server", srv.URL, "--token", "t"}, extra...)
		done <- feedMain(ctx, args, &out, &errOut)
	}()
	for !strings.Contains(errOut.String(), "listening on") {
		select {
		case err := <-done:
			t.Fatalf("feed ended: %v\n%s", err, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	conn, err := dial()
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
	for slices.Contains(extra, "--status") && !strings.Contains(out.String(), "cat062=14/2") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if got := fake.accepted(); len(got) != 14 {
		t.Fatalf("server got %d reports\n%s%s", len(got), out.String(), errOut.String())
	}
	for _, want := range []string{"malformed_truncated_block=1", "malformed_bad_block_length=1", "malformed_trailing_bytes=1", "cat062=14/2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s: %q", want, out.String())
		}
	}
	return out.String()
}

// netnsChildEnv marks the child process that runs a test in network
// namespaces of its own.
const netnsChildEnv = "DECONFLICT_TEST_IN_NETNS"

// TestFeedASTERIXMulticast: the feed joins a multicast group on the
// interface --iface names, and decodes and posts what is sent to the
// group; the kernel lists its membership on that interface. So that no
// datagram leaves the test, the test runs again in a child process cloned
// into new user and network namespaces, where the loopback interface is
// brought up with multicast on and is the only one. Where namespaces
// cannot be made, it says why and runs on the host's network instead,
// joining the group on the interface the system chooses.
func TestFeedASTERIXMulticast(t *testing.T) {
	const group = "239.255.62.1:8600"
	if os.Getenv(netnsChildEnv) == "" {
		err := runInNetNS(t)
		if err == nil {
			return
		}
		t.Logf("no network namespace for the test (%v): multicast on the host's network", err)
		feedOverUDP(t, group, nil, func() (net.Conn, error) { return net.Dial("udp4", group) })
		return
	}
	lo := loopbackWithMulticast(t)
	feedOverUDP(t, group, []string{"--iface", lo.Name}, func() (net.Conn, error) {
		// 239.255.62.1 is 01 3E FF EF in the kernel's (little-endian) hex.
		igmp, err := os.ReadFile("/proc/net/igmp")
		if err != nil {
			return nil, err
		}
		if !joinedOn(string(igmp), lo.Name, "013EFFEF") {
			t.Errorf("the group is not joined on %s:\n%s", lo.Name, igmp)
		}
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInet4Addr(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, [4]byte{127, 0, 0, 1})
			}); err != nil {
				return err
			}
			return serr
		}}
		return d.Dial("udp4", group)
	})
}

// runInNetNS runs the calling test again in a child process cloned into
// new user and network namespaces (a network namespace alone when the
// user namespace is refused and the process may make it), failing the test
// when the child fails. It returns an error only when no child could be
// started.
func runInNetNS(t *testing.T) error {
	t.Helper()
	var startErr error
	for _, flags := range []uintptr{syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET, syscall.CLONE_NEWNET} {
		cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
		if flags&syscall.CLONE_NEWUSER != 0 {
			cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
			cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			startErr = errors.Join(startErr, err)
			continue
		}
		err := cmd.Wait()
		t.Logf("in its own network namespace:\n%s", out.String())
		if err != nil || !strings.Contains(out.String(), "--- PASS: "+t.Name()) {
			t.Fatalf("the test in its own network namespace: %v", err)
		}
		return nil
	}
	return startErr
}

// loopbackWithMulticast brings the loopback interface of a fresh network
// namespace up with multicast on, and returns it.
func loopbackWithMulticast(t *testing.T) *net.Interface {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_MULTICAST)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("lo up with multicast: %v", err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if ifs, _ := net.Interfaces(); len(ifs) != 1 || lo.Flags&net.FlagMulticast == 0 {
		t.Fatalf("want only lo, with multicast: %v", ifs)
	}
	return lo
}

// joinedOn reports whether /proc/net/igmp lists the group (in the
// kernel's hex) under the interface.
func joinedOn(igmp, iface, group string) bool {
	in := false
	for _, line := range strings.Split(igmp, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, " ") && f[0] != "Idx":
			in = f[1] == iface
		case in && len(f) > 0 && f[0] == group:
			return true
		}
	}
	return false
}

// FuzzParseRadar: --radar either gives a position within the ranges it
// checks, which reads back the same when written out, or an error.
func FuzzParseRadar(f *testing.F) {
	for _, s := range []string{"45.8,16.0,200", " -33.9 , 151.2 , 10 ", "91,0,0", "45,16", "NaN,0,0", "1e400,0,0", "0x1p-2,0,0", "45,16,200,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseRadar(s)
		if err != nil {
			return
		}
		if !(p.LatDeg >= -90 && p.LatDeg <= 90 && p.LonDeg >= -180 && p.LonDeg <= 180 && p.AltM >= -500 && p.AltM <= 10_000) {
			t.Fatalf("%q accepted as %+v", s, p)
		}
		again, err := parseRadar(strconv.FormatFloat(p.LatDeg, 'g', -1, 64) + "," + strconv.FormatFloat(p.LonDeg, 'g', -1, 64) + "," + strconv.FormatFloat(p.AltM, 'g', -1, 64))
		if err != nil || again != p {
			t.Fatalf("%q read as %+v, written back read as %+v (%v)", s, p, again, err)
		}
	})
}
