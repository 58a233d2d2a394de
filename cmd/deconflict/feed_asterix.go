package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/asterix"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/feed"
	"github.com/deconflict/deconflict/internal/geo"
)

const feedASTERIXUsage = "deconflict feed asterix (--udp ADDR | --file FILE) --party NAME --server URL (--token T | --token-file F) [--key FILE] [--pcap] [--framing auto|raw|pcap|final|gps] [--radar LAT,LON,ALT_M] [--speed N] [--iface NAME]"

// feedASTERIX sends the position reports of an ASTERIX source: UDP
// datagrams (unicast or a multicast group) or a recording replayed at its
// pace.
func feedASTERIX(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("feed asterix", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: "+feedASTERIXUsage)
		fmt.Fprintln(stderr, "\nCAT062, CAT021 and CAT048 records become position reports; CAT034/065 and other categories are counted and")
		fmt.Fprintln(stderr, "skipped, as are malformed blocks (per reason, in the status lines and at the end).")
		fs.PrintDefaults()
	}
	var cf clientFlags
	cf.register(fs)
	udp := fs.String("udp", "", "listen for datagrams on ADDR (HOST:PORT; a multicast group is joined)")
	iface := fs.String("iface", "", "network interface to join a multicast group on (default: the system's choice)")
	file := fs.String("file", "", "replay a recording ('-' for standard input)")
	pcap := fs.Bool("pcap", false, "the recording is a pcap capture (same as --framing pcap)")
	framingName := fs.String("framing", "auto", "framing of the recording: auto (detect), raw, pcap, final or gps")
	radar := fs.String("radar", "", "position of the radar of CAT048 records: LAT,LON,ALT_M (degrees, degrees, meters above sea level)")
	speed := fs.Float64("speed", 1, "replay speed: N times the recorded pace (0: as fast as the server takes), "+jumpHelp)
	var pf pipelineFlags
	pf.register(fs)
	statusSet := false
	if err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	fs.Visit(func(f *flag.Flag) { statusSet = statusSet || f.Name == "status" })
	if !statusSet {
		pf.status = time.Minute
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if (*udp == "") == (*file == "") {
		return usagef("give exactly one source: --udp ADDR or --file FILE")
	}
	framing, err := asterix.ParseFraming(*framingName)
	if err != nil {
		return usagef("--framing: %v", err)
	}
	if *pcap {
		if framing != asterix.FramingAuto && framing != asterix.FramingPcap {
			return usagef("--pcap contradicts --framing %s", framing)
		}
		framing = asterix.FramingPcap
	}
	if *udp != "" && framing != asterix.FramingAuto {
		return usagef("--framing and --pcap are for --file: a UDP source carries data blocks")
	}
	if !(*speed >= 0 && *speed <= 1000) { // NaN too
		return usagef("--speed must be within 0..1000")
	}
	var radarPos *geo.LLA
	if *radar != "" {
		p, err := parseRadar(*radar)
		if err != nil {
			return usagef("--radar: %v", err)
		}
		radarPos = &p
	}
	var ifc *net.Interface
	if *iface != "" {
		if ifc, err = net.InterfaceByName(*iface); err != nil {
			return usagef("--iface: %v", err)
		}
	}
	dec := feed.NewASTERIXDecoder(radarPos)
	var conn *net.UDPConn
	if *udp != "" {
		if conn, err = feed.ListenUDP(*udp, ifc); err != nil {
			return usagef("--udp: %v", err)
		}
		defer conn.Close()
	}
	more := []fmt.Stringer{dec}
	pacer := replayPacer(*speed, stderr, "feed asterix")
	if conn == nil {
		more = replayStatus(pacer, dec)
	}
	p, err := pf.start(ctx, &cf, stdout, stderr, "feed asterix", more...)
	if err != nil {
		return err
	}
	if conn != nil {
		fmt.Fprintf(stderr, "feed asterix: listening on %s\n", conn.LocalAddr())
		err = feed.FollowUDP(ctx, conn, func(datagram []byte, at time.Time) error {
			return dec.Live(datagram, at, func(r client.Report) error { p.offer(r); return nil })
		})
	} else {
		err = withInput(*file, func(r io.Reader) error {
			fr, _, ferr := asterix.NewFrameReader(r, framing)
			if ferr != nil {
				return usagef("--file %s: %v", *file, ferr)
			}
			return dec.Replay(ctx, fr, pacer, p.in)
		})
	}
	return p.finish(err)
}

// parseRadar reads LAT,LON,ALT_M.
func parseRadar(s string) (geo.LLA, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return geo.LLA{}, fmt.Errorf("%q is not LAT,LON,ALT_M", s)
	}
	var v [3]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) {
			return geo.LLA{}, fmt.Errorf("%q is not a number", p)
		}
		v[i] = f
	}
	switch {
	case v[0] < -90 || v[0] > 90:
		return geo.LLA{}, fmt.Errorf("latitude %g outside [-90, 90]", v[0])
	case v[1] < -180 || v[1] > 180:
		return geo.LLA{}, fmt.Errorf("longitude %g outside [-180, 180]", v[1])
	case v[2] < -500 || v[2] > 10_000:
		return geo.LLA{}, fmt.Errorf("altitude %g m outside [-500, 10000]", v[2])
	}
	return geo.LLA{LatDeg: v[0], LonDeg: v[1], AltM: v[2]}, nil
}
