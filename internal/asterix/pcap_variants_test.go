package asterix

import (
	"bytes"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// serialize builds a packet of the layers, lengths and checksums computed.
func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// TestPcapVariants: the captures recorders write besides Ethernet, IPv4
// and libpcap (the recordings' kind) give their UDP payloads too: pcapng,
// an 802.1Q VLAN tag, IPv6, Linux cooked capture (tcpdump -i any), raw IP
// link types; an IPv4 fragment or a packet that is not UDP is a bad frame
// that reading goes on after.
func TestPcapVariants(t *testing.T) {
	ref := reference.ReadFile(t, filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"))
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	src4, dst4 := net.IP{10, 0, 0, 1}, net.IP{232, 1, 1, 1}
	src6, dst6 := net.ParseIP("fd00::1"), net.ParseIP("ff05::62")
	udp4 := func() (*layers.IPv4, *layers.UDP) {
		ip := &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolUDP, SrcIP: src4, DstIP: dst4}
		u := &layers.UDP{SrcPort: 40000, DstPort: 8600}
		u.SetNetworkLayerForChecksum(ip)
		return ip, u
	}
	udp6 := func() (*layers.IPv6, *layers.UDP) {
		ip := &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolUDP, SrcIP: src6, DstIP: dst6}
		u := &layers.UDP{SrcPort: 40000, DstPort: 8600}
		u.SetNetworkLayerForChecksum(ip)
		return ip, u
	}
	eth := func(typ layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{1, 0, 0x5e, 1, 1, 1}, EthernetType: typ}
	}
	ip4, u4 := udp4()
	plain := serialize(t, eth(layers.EthernetTypeIPv4), ip4, u4, gopacket.Payload(ref))
	ip4, u4 = udp4()
	vlan := serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 62, Type: layers.EthernetTypeIPv4}, ip4, u4, gopacket.Payload(ref))
	ip6, u6 := udp6()
	v6 := serialize(t, eth(layers.EthernetTypeIPv6), ip6, u6, gopacket.Payload(ref))
	ip4, u4 = udp4()
	raw := serialize(t, ip4, u4, gopacket.Payload(ref))
	// Linux cooked capture v1 (16-octet header: packet type, ARPHRD_ETHER,
	// address length and address, protocol), then IPv6.
	ip6, u6 = udp6()
	sll := append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x86, 0xdd}, serialize(t, ip6, u6, gopacket.Payload(ref))...)
	ip4, u4 = udp4()
	ip4.Flags = layers.IPv4MoreFragments
	fragment := serialize(t, eth(layers.EthernetTypeIPv4), ip4, u4, gopacket.Payload(ref))
	tcpIP := &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolTCP, SrcIP: src4, DstIP: dst4}
	tcp := &layers.TCP{SrcPort: 1, DstPort: 2}
	tcp.SetNetworkLayerForChecksum(tcpIP)
	notUDP := serialize(t, eth(layers.EthernetTypeIPv4), tcpIP, tcp, gopacket.Payload(ref))

	pcap := func(link layers.LinkType, packets ...[]byte) []byte {
		var b bytes.Buffer
		w := pcapgo.NewWriter(&b)
		if err := w.WriteFileHeader(65536, link); err != nil {
			t.Fatal(err)
		}
		for _, p := range packets {
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(p), Length: len(p)}, p); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	pcapng := func(link layers.LinkType, packets ...[]byte) []byte {
		var b bytes.Buffer
		w, err := pcapgo.NewNgWriter(&b, link)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range packets {
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(p), Length: len(p), InterfaceIndex: 0}, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	for name, c := range map[string]struct {
		capture []byte
		good    int // frames read whole (each the reference block)
		bad     int // frames skipped as bad
	}{
		"pcap":                    {pcap(layers.LinkTypeEthernet, plain, plain), 2, 0},
		"pcapng":                  {pcapng(layers.LinkTypeEthernet, plain, vlan, v6), 3, 0},
		"802.1Q VLAN tag":         {pcap(layers.LinkTypeEthernet, vlan), 1, 0},
		"IPv6":                    {pcap(layers.LinkTypeEthernet, v6), 1, 0},
		"raw IP":                  {pcap(layers.LinkTypeRaw, raw), 1, 0},
		"Linux cooked IPv6":       {pcap(layers.LinkTypeLinuxSLL, sll), 1, 0},
		"fragment and not UDP":    {pcap(layers.LinkTypeEthernet, fragment, plain, notUDP, plain), 2, 2},
		"pcapng with a fragment":  {pcapng(layers.LinkTypeEthernet, plain, fragment, plain), 2, 1},
		"truncated packet record": {pcap(layers.LinkTypeEthernet, plain, plain)[:24+16+len(plain)+20], 1, 1},
	} {
		t.Run(name, func(t *testing.T) {
			if f := Detect(c.capture); f != FramingPcap {
				t.Fatalf("detected as %v", f)
			}
			fr, _, err := NewFrameReader(bytes.NewReader(c.capture), FramingAuto)
			if err != nil {
				t.Fatal(err)
			}
			good, bad := 0, 0
			for {
				fm, err := fr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				var fe *FrameError
				if errors.As(err, &fe) {
					if fe.Reason != ReasonBadFrame {
						t.Fatalf("frame error %v", fe)
					}
					bad++
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(fm.Payload, ref) || !fm.Time.Equal(at) {
					t.Fatalf("frame %d: %d octets at %v, want the reference block's %d at %v", good, len(fm.Payload), fm.Time, len(ref), at)
				}
				good++
			}
			if good != c.good || bad != c.bad {
				t.Fatalf("%d frames read, %d bad; want %d and %d", good, bad, c.good, c.bad)
			}
		})
	}
}
