package asterix

import "fmt"

// Reason says why a block (or a frame of a recording) was skipped. The
// feed counts skipped input per reason.
type Reason uint8

const (
	ReasonNone Reason = iota
	// ReasonTruncatedBlock: the block's LEN counts more octets than there are.
	ReasonTruncatedBlock
	// ReasonBadBlockLength: the block's LEN is below 3 (its own header).
	ReasonBadBlockLength
	// ReasonTrailingBytes: one or two octets after the last block of a
	// datagram or frame, too few for a block header.
	ReasonTrailingBytes
	// ReasonFSPECPastEnd: a record's FSPEC runs past the end of its block.
	ReasonFSPECPastEnd
	// ReasonItemPastEnd: an item runs past the end of its block.
	ReasonItemPastEnd
	// ReasonUndefinedItem: the FSPEC (or a compound item's primary
	// subfield) names an item the category's UAP does not define.
	ReasonUndefinedItem
	// ReasonBadExplicitLength: an explicit-length item (RE, SP) gives a
	// length of 0.
	ReasonBadExplicitLength
	// ReasonBadFrame: the framing around the blocks is broken (a FINAL
	// frame without its trailer, a GPS record cut short, a pcap packet that
	// is not Ethernet/IPv4/UDP, an IP fragment).
	ReasonBadFrame
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:              "none",
	ReasonTruncatedBlock:    "truncated_block",
	ReasonBadBlockLength:    "bad_block_length",
	ReasonTrailingBytes:     "trailing_bytes",
	ReasonFSPECPastEnd:      "fspec_past_end",
	ReasonItemPastEnd:       "item_past_end",
	ReasonUndefinedItem:     "undefined_item",
	ReasonBadExplicitLength: "bad_explicit_length",
	ReasonBadFrame:          "bad_frame",
}

// String is the reason's name as the feed's counters print it.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Reasons lists every reason a block can be skipped for, in order.
func Reasons() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := ReasonNone + 1; r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

// Error is a malformed block: its category, why, and where.
type Error struct {
	Reason   Reason
	Category int
	// Record is the index of the record within the block at fault (-1 for
	// the block header).
	Record int
	// Item is the item at fault, when there is one.
	Item Item
	// Offset is the octet offset within the block where decoding stopped.
	Offset int
}

func (e *Error) Error() string {
	s := fmt.Sprintf("asterix CAT%03d block: %s at octet %d", e.Category, e.Reason, e.Offset)
	if e.Record >= 0 {
		s += fmt.Sprintf(", record %d", e.Record)
	}
	if e.Item != 0 {
		s += ", item " + e.Item.String()
	}
	return s
}
