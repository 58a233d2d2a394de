package asterix

import (
	"encoding/binary"
	"math/bits"
)

// NextBlock splits the first data block off p, a datagram or a recorded
// frame holding one or more blocks back to back: CAT (1 octet), LEN (2
// octets, big-endian, counting the whole block), records. When p does not
// start with a whole block it returns the reason; the rest of p cannot be
// framed then.
func NextBlock(p []byte) (block, rest []byte, r Reason) {
	if len(p) < 3 {
		return nil, nil, ReasonTrailingBytes
	}
	n := int(binary.BigEndian.Uint16(p[1:3]))
	if n < 3 {
		return nil, nil, ReasonBadBlockLength
	}
	if n > len(p) {
		return nil, nil, ReasonTruncatedBlock
	}
	return p[:n], p[n:], ReasonNone
}

// Decoder decodes data blocks. Its zero value is ready; it reuses one
// buffer of records, so the records a call returns are valid until the
// next call. A Decoder is not safe for concurrent use.
type Decoder struct {
	records []Record
}

func uapOf(cat int) uap {
	switch cat {
	case Cat021:
		return uap021
	case Cat034:
		return uap034
	case Cat048:
		return uap048
	case Cat062:
		return uap062
	case Cat065:
		return uap065
	}
	return nil
}

// Block decodes the records of one whole data block (as NextBlock returns
// it). Blocks of a category this package does not decode give no records
// and no error. A malformed block gives an *Error and no records.
func (d *Decoder) Block(block []byte) ([]Record, error) {
	if len(block) < 3 {
		return nil, &Error{Reason: ReasonTruncatedBlock, Record: -1}
	}
	cat := int(block[0])
	if n := int(binary.BigEndian.Uint16(block[1:3])); n != len(block) {
		r := ReasonTruncatedBlock
		if n < 3 {
			r = ReasonBadBlockLength
		}
		return nil, &Error{Reason: r, Category: cat, Record: -1}
	}
	u := uapOf(cat)
	if u == nil {
		return nil, nil
	}
	d.records = d.records[:0]
	for p, i := 3, 0; p < len(block); i++ {
		d.records = append(d.records, Record{Cat: cat})
		n, r, it, at := decodeRecord(u, block[p:], &d.records[len(d.records)-1])
		if r != ReasonNone {
			d.records = d.records[:0]
			return nil, &Error{Reason: r, Category: cat, Record: i, Item: it, Offset: p + at}
		}
		p += n
	}
	return d.records, nil
}

// decodeRecord decodes the record at the start of b into rec and returns
// its length, or the reason, the item and the offset at which it failed.
func decodeRecord(u uap, b []byte, rec *Record) (n int, r Reason, at Item, off int) {
	present, p, r := presence(b)
	if r != ReasonNone {
		return 0, r, 0, 0
	}
	for present != 0 {
		k := bits.TrailingZeros64(present)
		present &^= 1 << k
		if k >= len(u) || u[k].f.kind == kindNone {
			return 0, ReasonUndefinedItem, 0, p
		}
		f := &u[k]
		l := f.f.n
		if f.f.kind != kindFixed {
			if l, r = f.f.length(b[p:]); r != ReasonNone {
				return 0, r, f.item, p
			}
		} else if len(b)-p < l {
			return 0, ReasonItemPastEnd, f.item, p
		}
		if f.kept {
			rec.set(f, b[p:p+l])
		}
		p += l
	}
	return p, ReasonNone, 0, 0
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// signed returns the low n bits of v as a two's complement number.
func signed(v uint32, n uint) int32 { return int32(v<<(32-n)) >> (32 - n) }

// sixBitChars decodes the 8 characters of 6 bits each of a Mode S
// identification (ICAO Annex 10 Vol IV, 3.1.2.9.1.2: codes 1 to 26 the
// letters, 32 the space, 48 to 57 the digits). The other codes are not
// characters of an identification and read as blanks, as Wireshark's
// dissector reads them.
func sixBitChars(dst *[8]byte, b []byte) {
	v := uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
	for i := range dst {
		c := byte(v>>(42-6*i)) & 0x3f
		switch {
		case c >= 1 && c <= 26:
			c += 'A' - 1
		case c >= '0' && c <= '9':
		default:
			c = ' '
		}
		dst[i] = c
	}
}

// asciiChars copies the ASCII characters of a callsign (I062/390 CSN)
// from b to dst. Octets that are not printable ASCII (controls, DEL, the
// upper half) are not characters of a callsign and read as blanks, as
// sixBitChars reads its codes that are no characters: the callsign
// becomes a report's, and a control character or a byte that is not UTF-8
// there makes the server refuse the whole batch it travels in.
func asciiChars(dst, b []byte) {
	for i := range dst {
		c := b[i]
		if c < ' ' || c > '~' {
			c = ' '
		}
		dst[i] = c
	}
}

// set reads the value of one item the Record keeps; v holds exactly the
// item's octets.
func (rec *Record) set(f *uapField, v []byte) {
	switch f.item {
	case i021SourceID, i034SourceID, i048SourceID, i062SourceID, i065SourceID:
		rec.SAC, rec.SIC = v[0], v[1]
		rec.Has |= HasSource
	case i034MessageType, i065MessageType:
		rec.MessageType = v[0]
		rec.Has |= HasMessageType
	case i034TimeOfDay, i048TimeOfDay, i062TimeOfTrack, i065TimeOfDay:
		rec.TimeOfDay, rec.TimeOfDayItem = be24(v), f.item
	case i062TrackNumber:
		rec.TrackNumber = be16(v)
		rec.Has |= HasTrackNumber
	case i021TrackNumber, i048TrackNumber:
		rec.TrackNumber = be16(v) & 0x0fff
		rec.Has |= HasTrackNumber
	case i021Address, i048Address:
		rec.Address = be24(v)
		rec.Has |= HasAddress
	case i021Mode3A, i048Mode3A, i062Mode3A:
		rec.Mode3A = be16(v) & 0x0fff
		rec.Has |= HasMode3A
	case i021Identification, i048Identification:
		sixBitChars(&rec.Callsign, v)
	case i062Identification:
		sixBitChars(&rec.Callsign, v[1:]) // after STI and spare bits
	case i062Position:
		rec.Lat = int32(binary.BigEndian.Uint32(v[0:4]))
		rec.Lon = int32(binary.BigEndian.Uint32(v[4:8]))
		rec.PositionItem = f.item
	case i062Velocity:
		rec.VX, rec.VY = int16(be16(v[0:2])), int16(be16(v[2:4]))
		rec.Has |= HasCartesianVelocity
		rec.VelocityItem = f.item
	case i062DerivedData:
		if adr := f.f.subfield(v, 0); adr != nil {
			rec.Address = be24(adr)
			rec.Has |= HasAddress
		}
		if id := f.f.subfield(v, 1); id != nil {
			sixBitChars(&rec.CallsignADD, id)
		}
	case i062FlightPlan:
		if cs := f.f.subfield(v, 1); cs != nil {
			asciiChars(rec.CallsignFPL[:], cs)
		}
	case i062TrackStatus:
		// Sixth octet, bit 5: SFC, "surface target" (edition 1.17 on).
		if len(v) >= 6 {
			rec.OnGround = v[5]&0x10 != 0
			rec.Has |= HasOnGround
		}
	case i062MeasuredFL, i021FlightLevel:
		rec.FlightLevel, rec.FlightLevelItem, rec.FlightLevelValid = int16(be16(v)), f.item, true
	case i048FlightLevel:
		// V (bit 16) and G (bit 15), then 14 bits of two's complement.
		rec.FlightLevel = int16(signed(uint32(be16(v)), 14))
		rec.FlightLevelItem = f.item
		rec.FlightLevelValid = v[0]&0xc0 == 0
	case i062GeometricAlt, i021GeometricHeight:
		rec.GeometricAlt, rec.GeometricAltItem = int16(be16(v)), f.item
	case i062BarometricAlt:
		rec.BaroAltQNH = v[0]&0x80 != 0
		rec.BaroAlt = int16(signed(uint32(be16(v)), 15))
		rec.Has |= HasBaroAlt
	case i062VerticalRate:
		rec.VerticalRate, rec.VerticalRateItem = int16(be16(v)), f.item
	case i021BaroVertRate:
		rec.VerticalRate, rec.VerticalRateItem = int16(signed(uint32(be16(v)), 15)), f.item
	case i021GeoVertRate:
		// The barometric rate (FRN 24, decoded first) is preferred.
		if rec.VerticalRateItem != i021BaroVertRate {
			rec.VerticalRate, rec.VerticalRateItem = int16(signed(uint32(be16(v)), 15)), f.item
		}
	case i021GroundVector:
		rec.GroundSpeed, rec.Heading = be16(v[0:2])&0x7fff, be16(v[2:4])
		rec.Has |= HasPolarVelocity
		rec.VelocityItem = f.item
	case i048PolarVelocity:
		rec.GroundSpeed, rec.Heading = be16(v[0:2]), be16(v[2:4])
		rec.Has |= HasPolarVelocity
		rec.VelocityItem = f.item
	case i048Polar:
		rec.Rho, rec.Theta = be16(v[0:2]), be16(v[2:4])
		rec.Has |= HasPolar
	case i048Capability:
		// STAT, bits 13/11: 0 and 2 airborne, 1 and 3 on the ground; the
		// other values say nothing either way.
		switch v[0] >> 2 & 7 {
		case 0, 2:
			rec.OnGround = false
			rec.Has |= HasOnGround
		case 1, 3:
			rec.OnGround = true
			rec.Has |= HasOnGround
		}
	case i021Descriptor:
		// First extension, bit 7: GBS, ground bit set.
		if len(v) >= 2 {
			rec.OnGround = v[1]&0x40 != 0
			rec.Has |= HasOnGround
		}
	case i021Position:
		// The high-resolution I021/131 (FRN 7, decoded after) wins.
		rec.Lat, rec.Lon = signed(be24(v[0:3]), 24), signed(be24(v[3:6]), 24)
		rec.PositionItem = f.item
	case i021PositionHighRes:
		rec.Lat = int32(binary.BigEndian.Uint32(v[0:4]))
		rec.Lon = int32(binary.BigEndian.Uint32(v[4:8]))
		rec.PositionItem = f.item
	case i021TimePosition:
		rec.PositionTime, rec.PositionTimeItem = be24(v), f.item
		if rec.TimeOfDayItem != i021TimeReception {
			rec.TimeOfDay, rec.TimeOfDayItem = be24(v), f.item
		}
	case i021TimeReception:
		// Of the CAT021 times, the dump's time of day is I021/073 first.
		rec.TimeOfDay, rec.TimeOfDayItem = be24(v), f.item
	case i021TimeTransmit:
		if rec.TimeOfDayItem == 0 {
			rec.TimeOfDay, rec.TimeOfDayItem = be24(v), f.item
		}
	}
}
