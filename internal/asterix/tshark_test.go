package asterix

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/testutil/reference"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The decoder is checked against an independent one: the ASTERIX dissector
// of Wireshark's tshark (Debian's package, installed by
// scripts/install-test-deps.sh), which is generated from machine-readable
// specifications and shares no code with this package. Both decode the same
// capture; every value of the dump format must agree within half an LSB.

// maxTsharkFrames bounds the frames compared per recording (the 30-minute
// recordings have tens of thousands); DECONFLICT_TSHARK_ALL=1 compares all.
const maxTsharkFrames = 2000

func tsharkPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		if testing.Short() {
			t.Skip("tshark comparison")
		}
		t.Fatal("tshark is needed to check the decoder against an independent one: run scripts/install-test-deps.sh")
	}
	return p
}

// packet is one link-layer frame of a capture.
type packet struct {
	data []byte
	at   time.Time
}

// udpPacket wraps payload in a UDP datagram (port 8600) in IPv4 in Ethernet.
func udpPacket(t testing.TB, payload []byte, at time.Time) packet {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{232, 1, 1, 1}}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 8600}
	udp.SetNetworkLayerForChecksum(ip)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return packet{data: bytes.Clone(buf.Bytes()), at: at}
}

// writeCapture writes Ethernet frames as a pcap file.
func writeCapture(t testing.TB, path string, packets []packet) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range packets {
		ci := gopacket.CaptureInfo{Timestamp: p.at, CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
}

// packetsOf returns the packets of a recording for both decoders: a pcap
// file's own Ethernet frames (so that tshark strips the headers itself),
// the frames of the other framings wrapped in UDP datagrams, at most
// maxTsharkFrames of them unless all are asked for; and the number of data
// blocks they hold as this package frames them. The strip items are taken
// out of every record of the frames of the other framings (withoutItem).
func packetsOf(t *testing.T, path string, strip ...Item) ([]packet, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	limit := maxTsharkFrames
	if os.Getenv("DECONFLICT_TSHARK_ALL") != "" {
		limit = math.MaxInt
	}
	var packets []packet
	if Detect(data) == FramingPcap {
		if len(strip) > 0 {
			t.Fatalf("%s: items are taken out of the other framings only", path)
		}
		r, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != layers.LinkTypeEthernet {
			t.Fatalf("%s: link type %v", path, r.LinkType())
		}
		for len(packets) < limit {
			data, ci, err := r.ReadPacketData()
			if err != nil {
				break
			}
			packets = append(packets, packet{data: data, at: ci.Timestamp})
		}
	} else {
		fr, _, err := NewFrameReader(bytes.NewReader(data), FramingAuto)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
		for len(packets) < limit {
			fm, err := fr.Next()
			if err != nil {
				break
			}
			payload := fm.Payload
			for _, it := range strip {
				payload = withoutItem(t, payload, it)
			}
			packets = append(packets, udpPacket(t, payload, start.Add(time.Duration(len(packets))*time.Second)))
		}
	}
	blocks := 0
	var s Stream
	for _, p := range packets {
		payload, why := udpPayload(p.data, layers.LinkTypeEthernet)
		if why != "" {
			t.Fatalf("%s: %s", path, why)
		}
		if err := s.Payload(&Frame{Payload: payload}, func(*Block) error { blocks++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return packets, blocks
}

// tsharkMessages decodes a capture with tshark and returns one flat map of
// field name to displayed value per ASTERIX record (and "cat" and "block",
// the block's index in the capture), in order, and the blocks of the
// packets tshark could not dissect (it flags them malformed), of the
// categories decoded here.
func tsharkMessages(t *testing.T, tshark, capture string) (msgs []map[string]string, malformed map[string]bool) {
	t.Helper()
	cmd := exec.Command(tshark, "-r", capture, "-d", "udp.port==1-65535,asterix",
		"-T", "json", "--no-duplicate-keys", "-J", "asterix")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, stderr.String())
	}
	var packets []struct {
		Source struct {
			Layers map[string]json.RawMessage `json:"layers"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(out, &packets); err != nil {
		t.Fatalf("tshark JSON: %v", err)
	}
	malformed = map[string]bool{}
	blockIndex := 0
	for _, p := range packets {
		raw, ok := p.Source.Layers["asterix"]
		if !ok {
			continue
		}
		_, bad := p.Source.Layers["_ws.malformed"]
		for _, block := range oneOrMany(t, raw) {
			index := strconv.Itoa(blockIndex)
			blockIndex++
			var b struct {
				Category string          `json:"asterix.category"`
				Messages json.RawMessage `json:"asterix.message"`
			}
			if err := json.Unmarshal(block, &b); err != nil {
				t.Fatal(err)
			}
			// Only blocks of the categories compared matter (tshark does
			// not know some of the others in goa_sample.ast).
			if cat, _ := strconv.Atoi(b.Category); bad && Decoded(cat) {
				malformed[index] = true
			}
			if b.Messages == nil {
				continue
			}
			for _, m := range oneOrMany(t, b.Messages) {
				var tree any
				if err := json.Unmarshal(m, &tree); err != nil {
					t.Fatal(err)
				}
				flat := map[string]string{"cat": b.Category, "block": index}
				flatten(tree, "", flat)
				msgs = append(msgs, flat)
			}
		}
	}
	return msgs, malformed
}

func oneOrMany(t *testing.T, raw json.RawMessage) []json.RawMessage {
	t.Helper()
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		var many []json.RawMessage
		if err := json.Unmarshal(raw, &many); err != nil {
			t.Fatal(err)
		}
		return many
	}
	return []json.RawMessage{raw}
}

func flatten(v any, name string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			flatten(c, k, out)
		}
	case []any:
		for _, c := range v {
			flatten(c, name, out)
		}
	case string:
		if _, seen := out[name]; !seen {
			out[name] = v
		}
	}
}

// tsharkFields names, per category and dump column, the tshark fields
// that give it, in order of preference (the dump's rules of choice).
var tsharkFields = map[int]map[string][]string{
	21: {"tod_s": {"073_VALUE", "071_VALUE", "077_VALUE"}, "track_number": {"161_TRNUM"}, "icao24": {"080_VALUE"},
		"callsign": {"170_VALUE"}, "mode3a": {"070_MODE3A"}, "lat_deg": {"131_LAT", "130_LAT"},
		"fl": {"145_VALUE"}, "geo_alt_ft": {"140_VALUE"}, "gs_kt": {"160_GS"}, "heading_deg": {"160_TA"},
		"vrate_ftpm": {"155_BVR", "157_GVR"}},
	34: {"tod_s": {"030_VALUE"}, "msg_type": {"000_VALUE"}},
	48: {"tod_s": {"140_VALUE"}, "track_number": {"161_TRN"}, "icao24": {"220_VALUE"}, "callsign": {"240_VALUE"},
		"mode3a": {"070_MODE3A"}, "rho_nm": {"040_RHO"}, "theta_deg": {"040_THETA"}, "fl": {"090_FL"},
		"gs_kt": {"200_GSP"}, "heading_deg": {"200_HDG"}},
	62: {"tod_s": {"070_VALUE"}, "track_number": {"040_VALUE"}, "icao24": {"380_ADR_VALUE"},
		"callsign": {"245_CHR", "245_VALUE"}, "callsign_380": {"380_ID_VALUE"}, "mode3a": {"060_MODE3A"},
		"lat_deg": {"105_LAT"}, "fl": {"136_VALUE"}, "geo_alt_ft": {"130_VALUE"}, "baro_alt_fl": {"135_CTB"},
		"vx_mps": {"185_VX"}, "vy_mps": {"185_VY"}, "vrate_ftpm": {"220_VALUE"}},
	65: {"tod_s": {"030_VALUE"}, "msg_type": {"000_VALUE"}},
}

// itemColumns are the columns that name the item a value came from.
var itemColumns = map[string]string{
	"tod_s": "tod_item", "lat_deg": "pos_item", "fl": "fl_item", "geo_alt_ft": "geo_alt_item",
	"vx_mps": "vel_item", "gs_kt": "vel_item", "vrate_ftpm": "vrate_item",
}

// tsharkRow turns tshark's values of one record into the cells of the dump
// format (numbers in the format's units, or text).
func tsharkRow(t *testing.T, m map[string]string) map[string]string {
	t.Helper()
	cat, _ := strconv.Atoi(m["cat"])
	row := map[string]string{"cat": m["cat"], "block": m["block"]}
	field := func(name string) string { return fmt.Sprintf("asterix.%03d_%s", cat, name) }
	intOf := func(s string) int64 {
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			t.Fatalf("tshark value %q: %v", s, err)
		}
		return v
	}
	if v, ok := m[field("010_SAC")]; ok {
		row["sac"] = strconv.FormatInt(intOf(v), 10)
		row["sic"] = strconv.FormatInt(intOf(m[field("010_SIC")]), 10)
	}
	for col, names := range tsharkFields[cat] {
		for _, n := range names {
			v, ok := m[field(n)]
			if !ok {
				continue
			}
			switch col {
			case "track_number", "msg_type":
				v = strconv.FormatInt(intOf(v), 10)
			case "icao24":
				v = fmt.Sprintf("%06x", intOf(v))
			case "mode3a":
				v = fmt.Sprintf("%04o", intOf(v))
			case "callsign", "callsign_380":
				v = strings.TrimRight(v, " ")
			case "gs_kt": // NM/s
				gs, _ := strconv.ParseFloat(v, 64)
				v = strconv.FormatFloat(gs*3600, 'f', -1, 64)
			case "lat_deg":
				row["lon_deg"] = m[field(n[:3]+"_LON")]
			}
			if v != "" {
				row[col] = v
			}
			if ic, ok := itemColumns[col]; ok {
				row[ic] = fmt.Sprintf("I%03d/%s", cat, n[:3])
			}
			break
		}
	}
	return row
}

// tolerance is half the LSB of the value of a column, in its unit.
var tolerance = map[string]float64{
	"tod_s": TimeOfDayLSB / 2, "lat_deg": LatLon021HighLSB / 2, "lon_deg": LatLon021HighLSB / 2,
	"rho_nm": RhoLSB / 2, "theta_deg": AngleLSB / 2, "heading_deg": AngleLSB / 2,
	"fl": FlightLevelLSB / 2, "baro_alt_fl": FlightLevelLSB / 2, "geo_alt_ft": GeometricAltLSB / 2,
	"vx_mps": VelocityLSB / 2, "vy_mps": VelocityLSB / 2, "gs_kt": GroundSpeedLSB / 2,
	"vrate_ftpm": VerticalRateLSB / 2,
}

// readDump decodes a recording with this package and returns its rows.
func readDump(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	stats, _, err := Dump(f, FramingAuto, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n := stats.MalformedTotal(); n != 0 {
		t.Errorf("%s: %d malformed blocks or frames: %s", path, n, stats)
	}
	return parseCSV(t, out.Bytes())
}

func parseCSV(t *testing.T, b []byte) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	for _, r := range recs[1:] {
		row := map[string]string{}
		for i, v := range r {
			if v != "" {
				row[recs[0][i]] = v
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// compareRows reports every cell where got (this decoder) and want differ
// beyond tolerance; it compares the columns of want and any extra column of
// got that is not an index.
func compareRows(t *testing.T, name string, got, want []map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, the other decoder %d", name, len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		cols := map[string]bool{}
		for c := range want[i] {
			cols[c] = true
		}
		for c := range got[i] {
			switch c {
			case "rec", "rec_in_block", "agree":
			default:
				cols[c] = true
			}
		}
		for c := range cols {
			g, w := got[i][c], want[i][c]
			if g == w {
				continue
			}
			if tol, ok := tolerance[c]; ok && g != "" && w != "" {
				gv, _ := strconv.ParseFloat(g, 64)
				wv, _ := strconv.ParseFloat(w, 64)
				if math.Abs(gv-wv) <= tol {
					continue
				}
				// I048/090 is a 14-bit two's complement flight level
				// (edition 1.31, 5.2.8 and the reference's README); tshark
				// reads it unsigned, so a negative level differs by 2^14 LSB.
				if c == "fl" && want[i]["cat"] == "48" && math.Abs(gv-wv) == (1<<14)*FlightLevelLSB {
					continue
				}
			}
			if bad++; bad <= 20 {
				t.Errorf("%s record %d (cat %s) %s: got %q, other decoder %q", name, i, want[i]["cat"], c, g, w)
			}
		}
	}
	if bad > 20 {
		t.Errorf("%s: %d differing cells in all", name, bad)
	}
}

func recordings(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(reference.ASTERIXRecordings(t), "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".md") {
			out = append(out, f)
		}
	}
	if len(out) < 20 {
		t.Fatalf("want the twenty recordings of ../shared/recordings/asterix, found %d", len(out))
	}
	return append(out, filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"))
}

// tsharkFails names the recordings where tshark 4.0.17 is known to fail on
// some blocks (it flags them malformed), the items it fails on, and why.
// Those blocks are compared again with those items taken out of every
// record (withoutItem): tshark then reads them whole, so every other value
// of the dump format in them is still checked against it, and this
// package's reading of the stripped blocks must be its reading of the
// original ones. The items themselves are checked only by the records
// tiling their blocks exactly.
var tsharkFails = map[string]struct {
	items []Item
	why   string
}{
	// The records carry a composed track number I062/510 of several
	// extents (the FX bit of each 3-octet extent set); tshark reads only
	// the first extent and loses its place in the record.
	"zr_cat62.ast": {[]Item{62510}, "multi-extent I062/510"},
	// I062/340 with subfields SID, MDC and MDA: tshark stops inside it
	// and starts a second record in the middle of the first. Without
	// I062/340, the record ends with I062/510 (one extent), which tshark
	// then fails on too.
	"jas_cat062ed1.16.bin": {[]Item{62340, 62510}, "I062/340, and I062/510 at the end of a record"},
}

// withoutItem returns the data blocks of payload with item it taken out of
// every record: its FSPEC bit cleared (the FSPEC shortened when its last
// octets are left empty), its octets removed, each block's LEN fixed.
// Items are found by this package's reading of the records; a wrong
// reading leaves octets that tshark then reads as garbage.
func withoutItem(t testing.TB, payload []byte, it Item) []byte {
	t.Helper()
	var out []byte
	for rest := payload; len(rest) > 0; {
		block, r, reason := NextBlock(rest)
		if reason != ReasonNone {
			t.Fatalf("payload: %v", reason)
		}
		rest = r
		if int(block[0]) != it.Category() {
			out = append(out, block...)
			continue
		}
		u := uapOf(int(block[0]))
		nb := []byte{block[0], 0, 0}
		for p := 3; p < len(block); {
			present, fspecLen, reason := presence(block[p:])
			if reason != ReasonNone {
				t.Fatalf("record at %d: %v", p, reason)
			}
			q := p + fspecLen
			var items []byte
			var kept uint64
			for left := present; left != 0; {
				k := bits.TrailingZeros64(left)
				left &^= 1 << k
				n, reason := u[k].f.length(block[q:])
				if reason != ReasonNone {
					t.Fatalf("record at %d, FRN %d: %v", p, k+1, reason)
				}
				if u[k].item != it {
					items = append(items, block[q:q+n]...)
					kept |= 1 << k
				}
				q += n
			}
			nb = append(nb, fspec(kept)...)
			nb = append(nb, items...)
			p = q
		}
		binary.BigEndian.PutUint16(nb[1:], uint16(len(nb)))
		out = append(out, nb...)
	}
	return out
}

// fspec encodes the presence bits of FRNs (bit k for FRN k+1) as an FSPEC:
// seven FRNs per octet from its most significant bit, the least
// significant bit (FX) set when another octet follows.
func fspec(present uint64) []byte {
	var out []byte
	for {
		o := bits.Reverse8(uint8(present & 0x7f))
		present >>= 7
		if present == 0 {
			return append(out, o)
		}
		out = append(out, o|1)
	}
}

// TestAgreesWithTshark decodes every recording with this package and with
// tshark and compares every value of the dump format. All recordings go
// into one capture, so that tshark starts once.
func TestAgreesWithTshark(t *testing.T) {
	tshark := tsharkPath(t)
	type span struct {
		name       string
		from, upto int // block indices in the capture
		// original is the recording an item was taken out of.
		original string
	}
	var (
		all   []packet
		spans []span
		next  int
	)
	for _, path := range recordings(t) {
		packets, blocks := packetsOf(t, path)
		spans = append(spans, span{name: filepath.Base(path), from: next, upto: next + blocks})
		next += blocks
		all = append(all, packets...)
		if f, ok := tsharkFails[filepath.Base(path)]; ok {
			packets, blocks := packetsOf(t, path, f.items...)
			name := filepath.Base(path) + "_without"
			for _, it := range f.items {
				name += "_" + strings.ReplaceAll(it.String(), "/", "_")
			}
			spans = append(spans, span{name: name, from: next, upto: next + blocks, original: path})
			next += blocks
			all = append(all, packets...)
		}
	}
	capture := filepath.Join(t.TempDir(), "all.pcap")
	writeCapture(t, capture, all)
	rows := readDump(t, capture)
	msgs, malformed := tsharkMessages(t, tshark, capture)
	for _, sp := range spans {
		t.Run(sp.name, func(t *testing.T) {
			in := func(block string) bool {
				b, err := strconv.Atoi(block)
				return err == nil && b >= sp.from && b < sp.upto
			}
			bad := 0
			for b := range malformed {
				if in(b) {
					bad++
				}
			}
			if _, known := tsharkFails[sp.name]; known != (bad > 0) {
				t.Fatalf("tshark fails on %d blocks; known to fail: %v", bad, known)
			}
			var got, want []map[string]string
			for _, row := range rows {
				if in(row["block"]) && !malformed[row["block"]] {
					got = append(got, row)
				}
			}
			for _, m := range msgs {
				if !in(m["block"]) || malformed[m["block"]] {
					continue
				}
				switch m["cat"] {
				case "21", "34", "48", "62", "65":
					want = append(want, tsharkRow(t, m))
				}
			}
			if len(want) == 0 && bad == 0 {
				t.Fatal("tshark found no record")
			}
			compareRows(t, sp.name, got, want)
			if sp.original != "" {
				// Taking the item out changed nothing else: the rows are
				// those of the original recording (but for the indices of
				// the rows and blocks in the capture).
				orig := readDump(t, sp.original)
				if len(orig) < len(got) {
					t.Fatalf("%d rows, the original %d", len(got), len(orig))
				}
				for i := range got {
					for _, c := range CSVColumns {
						if c != "rec" && c != "block" && got[i][c] != orig[i][c] {
							t.Errorf("row %d %s: %q, the original %q", i, c, got[i][c], orig[i][c])
						}
					}
				}
			}
		})
	}
}
