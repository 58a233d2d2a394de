package asterix

import (
	"encoding/csv"
	"io"
	"strconv"
)

// CSVColumns are the columns of the dump format, those of the reference
// recording's expected values (../shared/reference/asterix/README.md).
var CSVColumns = []string{
	"rec", "block", "rec_in_block", "cat", "sac", "sic", "msg_type", "tod_s", "tod_item",
	"track_number", "icao24", "callsign", "callsign_380", "mode3a", "lat_deg", "lon_deg", "pos_item",
	"rho_nm", "theta_deg", "fl", "fl_item", "geo_alt_ft", "geo_alt_item", "baro_alt_fl",
	"vx_mps", "vy_mps", "gs_kt", "heading_deg", "vel_item", "vrate_ftpm", "vrate_item", "agree",
}

// CSVWriter writes records in the dump format: one row per record of
// CAT021, 034, 048, 062 and 065, each value the item's raw integer times
// its LSB, written exactly; an empty cell for an item not in the record.
// The agree column (a property of the reference set: whether two decoders
// agreed) stays empty.
type CSVWriter struct {
	w    *csv.Writer
	rows int
	row  []string
}

// NewCSVWriter writes the header line and returns the writer.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	c := &CSVWriter{w: csv.NewWriter(w), row: make([]string, len(CSVColumns))}
	if err := c.w.Write(CSVColumns); err != nil {
		return nil, err
	}
	return c, nil
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
func itoa(v int) string    { return strconv.Itoa(v) }

// Write writes the row of record r, the inBlock-th record of the block-th
// block of the input (blocks of every category counted, from 0).
func (c *CSVWriter) Write(block, inBlock int, r *Record) error {
	if !Decoded(r.Cat) {
		return nil
	}
	row := c.row
	for i := range row {
		row[i] = ""
	}
	row[0], row[1], row[2], row[3] = itoa(c.rows), itoa(block), itoa(inBlock), itoa(r.Cat)
	c.rows++
	if r.Has&HasSource != 0 {
		row[4], row[5] = itoa(int(r.SAC)), itoa(int(r.SIC))
	}
	if r.Has&HasMessageType != 0 {
		row[6] = itoa(int(r.MessageType))
	}
	if r.TimeOfDayItem != 0 {
		row[7], row[8] = num(r.TimeOfDaySeconds()), r.TimeOfDayItem.String()
	}
	if r.Has&HasTrackNumber != 0 {
		row[9] = itoa(int(r.TrackNumber))
	}
	if r.Has&HasAddress != 0 {
		row[10] = r.AddressHex()
	}
	row[11] = r.CallsignText()
	row[12] = r.CallsignADDText()
	if r.Has&HasMode3A != 0 {
		row[13] = r.Mode3AOctal()
	}
	if r.PositionItem != 0 {
		lat, lon := r.LatLonDeg()
		row[14], row[15], row[16] = num(lat), num(lon), r.PositionItem.String()
	}
	if r.Has&HasPolar != 0 {
		row[17], row[18] = num(r.RhoNM()), num(r.ThetaDeg())
	}
	if r.FlightLevelItem != 0 {
		row[19], row[20] = num(r.FlightLevelFL()), r.FlightLevelItem.String()
	}
	if r.GeometricAltItem != 0 {
		row[21], row[22] = num(r.GeometricAltFt()), r.GeometricAltItem.String()
	}
	if r.Has&HasBaroAlt != 0 {
		row[23] = num(r.BaroAltFL())
	}
	if r.Has&HasCartesianVelocity != 0 {
		e, n := r.VelocityMps()
		row[24], row[25] = num(e), num(n)
	}
	if r.Has&HasPolarVelocity != 0 {
		row[26], row[27] = num(r.GroundSpeedKt()), num(r.HeadingDeg())
	}
	if r.VelocityItem != 0 {
		row[28] = r.VelocityItem.String()
	}
	if r.VerticalRateItem != 0 {
		row[29], row[30] = num(r.VerticalRateFpm()), r.VerticalRateItem.String()
	}
	return c.w.Write(row)
}

// Rows is the number of records written.
func (c *CSVWriter) Rows() int { return c.rows }

// Flush writes what is buffered and returns the first write error.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}
