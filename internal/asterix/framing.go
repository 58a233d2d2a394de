package asterix

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Framing is how a recording wraps its data blocks.
type Framing int

const (
	// FramingAuto: detect from the content (Detect).
	FramingAuto Framing = iota
	// FramingRaw: data blocks back to back.
	FramingRaw
	// FramingPcap: a libpcap (or pcapng) capture of Ethernet (or Linux
	// cooked, or raw IP) frames carrying IPv4 or IPv6 UDP datagrams, each
	// payload one or more data blocks.
	FramingPcap
	// FramingFinal: FINAL frames: byte count N (2 octets, big-endian,
	// counting the whole frame), board (1), line (1), recording day (1),
	// time of day (3 octets, 10 ms), N-12 octets of data blocks, trailer
	// A5 A5 A5 A5.
	FramingFinal
	// FramingGPS: a 2200-octet file header, then each data block followed by
	// 10 octets whose octets 7 to 9 are a time of day in 1/128 s.
	FramingGPS
)

var framingNames = map[Framing]string{
	FramingAuto: "auto", FramingRaw: "raw", FramingPcap: "pcap", FramingFinal: "final", FramingGPS: "gps",
}

func (f Framing) String() string {
	if s, ok := framingNames[f]; ok {
		return s
	}
	return fmt.Sprintf("framing(%d)", int(f))
}

// ParseFraming reads a framing name: auto, raw, pcap, final or gps.
func ParseFraming(s string) (Framing, error) {
	for f, name := range framingNames {
		if name == s {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown framing %q (want auto, raw, pcap, final or gps)", s)
}

// Frame is one unit of a recording: a UDP payload, a FINAL frame's data, or
// one block of a raw or GPS recording; and the time the recorder stamped
// on it, when it did.
type Frame struct {
	Payload []byte
	// Time is the capture time of a pcap packet (zero otherwise).
	Time time.Time
	// TimeOfDay is the recorder's time of day (FINAL, GPS), valid when
	// HasTimeOfDay.
	TimeOfDay    time.Duration
	HasTimeOfDay bool
}

// FrameError is a part of a recording that could not be framed and was
// skipped; reading goes on after it.
type FrameError struct {
	Reason Reason
	// Skipped is how many octets were passed over.
	Skipped int
	Msg     string
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("asterix framing: %s (%d octets skipped): %s", e.Reason, e.Skipped, e.Msg)
}

// FrameReader reads the frames of a recording.
type FrameReader interface {
	// Next returns the next frame (its Payload valid until the next call),
	// io.EOF at the end, or a *FrameError for input it skipped (call Next
	// again). Any other error ends the recording.
	Next() (Frame, error)
}

// detectWindow is how much of the start of a recording Detect looks at.
const detectWindow = 8192

// gpsHeaderLen and gpsTrailerLen are the sizes of the GPS format's file
// header and of the octets after each block.
const (
	gpsHeaderLen  = 2200
	gpsTrailerLen = 10
)

var finalTrailer = []byte{0xa5, 0xa5, 0xa5, 0xa5}

// plausibleBlock reports whether b starts with the header of a data block
// of a category this package decodes, with a length that fits its header.
func plausibleBlock(b []byte) bool {
	if len(b) < 3 || !Decoded(int(b[0])) {
		return false
	}
	return binary.BigEndian.Uint16(b[1:3]) >= 3
}

// chainOK reports whether the first blocks of b, each followed by gap
// octets, have plausible headers: the first two (or one, if the recording
// ends or the window does after it).
func chainOK(b []byte, gap int) bool {
	for i := 0; i < 2; i++ {
		if i > 0 && len(b) == 0 {
			return true
		}
		if !plausibleBlock(b) {
			// Other categories occur between decoded ones; accept any
			// category for the second block as long as its length fits.
			if i == 0 || len(b) < 3 || b[0] == 0 || binary.BigEndian.Uint16(b[1:3]) < 3 {
				return false
			}
		}
		n := int(binary.BigEndian.Uint16(b[1:3])) + gap
		if n >= len(b) {
			return true
		}
		b = b[n:]
	}
	return true
}

// Detect names the framing of a recording from its first octets (at least
// the first few kilobytes, or the whole recording if shorter): pcap by its
// magic number, FINAL by its trailer, GPS by a block after its 2200-octet
// header, raw by a block at the start. It returns FramingAuto when it
// cannot tell.
func Detect(head []byte) Framing {
	if len(head) >= 4 {
		switch binary.LittleEndian.Uint32(head) {
		case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a:
			return FramingPcap
		}
	}
	if len(head) >= 12 {
		n := int(binary.BigEndian.Uint16(head))
		if n >= 12 && n <= len(head) && bytes.Equal(head[n-4:n], finalTrailer) && chainOK(head[8:n-4], 0) {
			return FramingFinal
		}
	}
	if len(head) > gpsHeaderLen && chainOK(head[gpsHeaderLen:], gpsTrailerLen) {
		return FramingGPS
	}
	if chainOK(head, 0) {
		return FramingRaw
	}
	return FramingAuto
}

// NewFrameReader returns a reader of the recording r in framing f
// (FramingAuto detects it from the content).
func NewFrameReader(r io.Reader, f Framing) (FrameReader, Framing, error) {
	br := bufio.NewReaderSize(r, 1<<17)
	if f == FramingAuto {
		head, err := br.Peek(detectWindow)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, f, err
		}
		if f = Detect(head); f == FramingAuto {
			return nil, f, errors.New("cannot tell the framing of the recording (raw, pcap, final or gps): name it")
		}
	}
	switch f {
	case FramingRaw:
		return &rawReader{r: br}, f, nil
	case FramingFinal:
		return &finalReader{r: br}, f, nil
	case FramingGPS:
		return &gpsReader{r: br}, f, nil
	case FramingPcap:
		pr, err := newPcapReader(br)
		return pr, f, err
	}
	return nil, f, fmt.Errorf("unknown framing %v", f)
}

// rawReader reads data blocks back to back.
type rawReader struct{ r *bufio.Reader }

func (rr *rawReader) Next() (Frame, error) {
	n, err := blockLength(rr.r)
	if err != nil {
		return Frame{}, err
	}
	block, err := rr.r.Peek(n)
	if len(block) < n {
		m, _ := rr.r.Discard(len(block))
		return Frame{}, &FrameError{Reason: ReasonTruncatedBlock, Skipped: m, Msg: fmt.Sprintf("block of %d octets, %d left: %v", n, len(block), err)}
	}
	// The payload stays valid until the next Peek, which is the next call.
	rr.r.Discard(n)
	return Frame{Payload: block}, nil
}

// blockLength returns the length of the data block that r starts with,
// read from its header (CAT, LEN) without consuming it: io.EOF at the end
// of the input, a FrameError (the octets passed over counted) for a
// header cut short or a length below the header's own three octets.
func blockLength(r *bufio.Reader) (int, error) {
	head, err := r.Peek(3)
	if len(head) == 0 && errors.Is(err, io.EOF) {
		return 0, io.EOF
	}
	if len(head) < 3 {
		n, _ := r.Discard(len(head))
		return 0, &FrameError{Reason: ReasonTrailingBytes, Skipped: n, Msg: "recording ends inside a block header"}
	}
	n := int(binary.BigEndian.Uint16(head[1:3]))
	if n < 3 {
		skipped := resync(r, 1, func(b []byte) bool { return plausibleBlock(b) })
		return 0, &FrameError{Reason: ReasonBadBlockLength, Skipped: skipped, Msg: fmt.Sprintf("block length %d", n)}
	}
	return n, nil
}

// resync discards octets from r, starting with skip of them, until ok
// holds for what follows (ok sees at least the next 16 octets, fewer at the
// end of the input) or the input ends, and returns how many it discarded.
func resync(r *bufio.Reader, skip int, ok func([]byte) bool) int {
	n, _ := r.Discard(skip)
	for {
		b, _ := r.Peek(16)
		if len(b) == 0 || ok(b) {
			return n
		}
		m, _ := r.Discard(1)
		n += m
	}
}

// finalReader reads FINAL frames.
type finalReader struct{ r *bufio.Reader }

func (fr *finalReader) Next() (Frame, error) {
	head, err := fr.r.Peek(2)
	if len(head) == 0 && errors.Is(err, io.EOF) {
		return Frame{}, io.EOF
	}
	if len(head) < 2 {
		n, _ := fr.r.Discard(len(head))
		return Frame{}, &FrameError{Reason: ReasonBadFrame, Skipped: n, Msg: "recording ends inside a frame header"}
	}
	n := int(binary.BigEndian.Uint16(head))
	frame, _ := fr.r.Peek(max(n, 12))
	switch {
	case n < 12:
		return Frame{}, fr.skipToFrame(fmt.Sprintf("frame length %d below the 12 octets of header and trailer", n))
	case len(frame) < n:
		m, _ := fr.r.Discard(len(frame))
		return Frame{}, &FrameError{Reason: ReasonBadFrame, Skipped: m, Msg: fmt.Sprintf("frame of %d octets, %d left", n, len(frame))}
	case !bytes.Equal(frame[n-4:n], finalTrailer):
		return Frame{}, fr.skipToFrame("frame without its A5A5A5A5 trailer")
	}
	tod := time.Duration(be24(frame[5:8])) * 10 * time.Millisecond
	fr.r.Discard(n)
	return Frame{Payload: frame[8 : n-4], TimeOfDay: tod, HasTimeOfDay: true}, nil
}

// skipToFrame passes over a broken frame: it discards octets until a
// whole frame with its trailer starts (or the input ends).
func (fr *finalReader) skipToFrame(msg string) error {
	skipped := resync(fr.r, 1, func([]byte) bool {
		head, _ := fr.r.Peek(2)
		if len(head) < 2 {
			return false
		}
		n := int(binary.BigEndian.Uint16(head))
		if n < 12 {
			return false
		}
		frame, _ := fr.r.Peek(n)
		return len(frame) == n && bytes.Equal(frame[n-4:], finalTrailer)
	})
	return &FrameError{Reason: ReasonBadFrame, Skipped: skipped, Msg: msg}
}

// gpsReader reads the GPS recording format.
type gpsReader struct {
	r          *bufio.Reader
	pastHeader bool
}

func (gr *gpsReader) Next() (Frame, error) {
	if !gr.pastHeader {
		gr.pastHeader = true
		if n, err := gr.r.Discard(gpsHeaderLen); err != nil {
			return Frame{}, &FrameError{Reason: ReasonBadFrame, Skipped: n, Msg: "recording shorter than the GPS file header"}
		}
	}
	n, err := blockLength(gr.r)
	if err != nil {
		return Frame{}, err
	}
	rec, _ := gr.r.Peek(n + gpsTrailerLen)
	if len(rec) < n+gpsTrailerLen {
		m, _ := gr.r.Discard(len(rec))
		return Frame{}, &FrameError{Reason: ReasonTruncatedBlock, Skipped: m, Msg: fmt.Sprintf("block of %d octets and its %d GPS octets, %d left", n, gpsTrailerLen, len(rec))}
	}
	gps := rec[n:]
	tod := time.Duration(be24(gps[6:9])) * time.Second / 128
	gr.r.Discard(n + gpsTrailerLen)
	return Frame{Payload: rec[:n], TimeOfDay: tod, HasTimeOfDay: true}, nil
}

// pcapReader reads the UDP payloads of a capture.
type pcapReader struct {
	read     func() ([]byte, gopacket.CaptureInfo, error)
	linkType layers.LinkType
	failed   bool
}

func newPcapReader(r *bufio.Reader) (*pcapReader, error) {
	magic, _ := r.Peek(4)
	if len(magic) == 4 && binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a {
		ng, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("pcapng: %w", err)
		}
		return &pcapReader{read: ng.ZeroCopyReadPacketData, linkType: ng.LinkType()}, nil
	}
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	return &pcapReader{read: pr.ZeroCopyReadPacketData, linkType: pr.LinkType()}, nil
}

func (pr *pcapReader) Next() (Frame, error) {
	if pr.failed {
		return Frame{}, io.EOF
	}
	data, ci, err := pr.read()
	if errors.Is(err, io.EOF) {
		return Frame{}, io.EOF
	}
	if err != nil {
		// A capture cannot be framed past a broken packet record.
		pr.failed = true
		return Frame{}, &FrameError{Reason: ReasonBadFrame, Msg: err.Error()}
	}
	payload, why := udpPayload(data, pr.linkType)
	if why != "" {
		return Frame{}, &FrameError{Reason: ReasonBadFrame, Skipped: len(data), Msg: why}
	}
	return Frame{Payload: payload, Time: ci.Timestamp}, nil
}

// udpPayload strips the link, network and transport headers of a captured
// packet, or says why it is not a whole UDP datagram.
func udpPayload(data []byte, link layers.LinkType) ([]byte, string) {
	p := gopacket.NewPacket(data, link, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			return nil, "IPv4 fragment"
		}
	}
	udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if !ok {
		if el := p.ErrorLayer(); el != nil {
			return nil, "not a UDP datagram: " + el.Error().Error()
		}
		return nil, "not a UDP datagram"
	}
	return udp.Payload, ""
}
