package sqlcore

// This file implements the store.Volumes role: 4D volumes, their change
// sequence and the volume lock.

import (
	"errors"
	"fmt"

	"github.com/deconflict/deconflict/internal/store"
)

// LockVolumes takes the dialect's lock; on SQLite it does nothing because
// every write transaction there already holds the database's single write
// lock (BEGIN IMMEDIATE) from its first statement to its commit.
func (t *Tx) LockVolumes() error {
	if err := t.writable("LockVolumes"); err != nil {
		return err
	}
	if t.d.LockVolumesSQL == "" {
		return nil
	}
	if err := t.queryAll(t.d.LockVolumesSQL, nil, func(Rows) error { return nil }); err != nil {
		return fmt.Errorf("store: lock volumes: %w", err)
	}
	return nil
}

const volCols = `id, party, version, state, priority, min_lat_deg, min_lon_deg, max_lat_deg, max_lon_deg,
	alt_lower_m, alt_upper_m, start_ns, end_ns, change_seq, body`

func scanVolume(r Rows) (store.Volume, error) {
	var v store.Volume
	var prio, start, end int64
	err := r.Scan(&v.ID, &v.Party, &v.Version, &v.State, &prio, &v.MinLatDeg, &v.MinLonDeg, &v.MaxLatDeg, &v.MaxLonDeg,
		&v.AltLowerM, &v.AltUpperM, &start, &end, &v.ChangeSeq, &v.Body)
	v.Priority = int(prio)
	v.Start, v.End = decTime(start), decTime(end)
	return v, err
}

func (t *Tx) PutVolume(v store.Volume, prevVersion string) (int64, error) {
	if err := t.writable("PutVolume"); err != nil {
		return 0, err
	}
	if v.ID == "" {
		return 0, errors.New("store: volume.ID is empty")
	}
	if err := checkText("volume.ID", v.ID, "volume.Party", v.Party, "volume.Version", v.Version, "volume.State", v.State); err != nil {
		return 0, err
	}
	if !validText(prevVersion) {
		return 0, fmt.Errorf("store: volume %q: expected version %q: %w", v.ID, prevVersion, store.ErrConflict)
	}
	start, err := encTime("volume.Start", v.Start)
	if err != nil {
		return 0, err
	}
	end, err := encTime("volume.End", v.End)
	if err != nil {
		return 0, err
	}
	// Check the precondition before taking a change sequence number, so a
	// refused write leaves the counter alone.
	var stored string
	err = t.queryOne(`SELECT version FROM volumes WHERE id = ?`, []any{v.ID}, &stored)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if prevVersion != "" {
			return 0, fmt.Errorf("store: volume %q does not exist (expected version %q): %w", v.ID, prevVersion, store.ErrConflict)
		}
	case err != nil:
		return 0, fmt.Errorf("store: volume %q: %w", v.ID, err)
	case prevVersion == "":
		return 0, fmt.Errorf("store: volume %q exists: %w", v.ID, store.ErrConflict)
	case stored != prevVersion:
		return 0, fmt.Errorf("store: volume %q is at version %q, not %q: %w", v.ID, stored, prevVersion, store.ErrConflict)
	}
	seq, err := t.bump("volume")
	if err != nil {
		return 0, err
	}
	args := []any{v.ID, v.Party, v.Version, v.State, int64(v.Priority), v.MinLatDeg, v.MinLonDeg, v.MaxLatDeg, v.MaxLonDeg,
		v.AltLowerM, v.AltUpperM, start, end, seq, nz(v.Body)}
	var n int64
	if prevVersion == "" {
		n, err = t.q.Exec(t.ctx, `INSERT INTO volumes (`+volCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, args...)
	} else {
		n, err = t.q.Exec(t.ctx, `UPDATE volumes SET party = ?, version = ?, state = ?, priority = ?,
			min_lat_deg = ?, min_lon_deg = ?, max_lat_deg = ?, max_lon_deg = ?, alt_lower_m = ?, alt_upper_m = ?,
			start_ns = ?, end_ns = ?, change_seq = ?, body = ? WHERE id = ? AND version = ?`,
			append(args[1:], v.ID, prevVersion)...)
	}
	if err != nil {
		return 0, fmt.Errorf("store: put volume %q: %w", v.ID, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("store: volume %q changed concurrently: %w", v.ID, store.ErrConflict)
	}
	return seq, nil
}

func (t *Tx) GetVolume(id string) (store.Volume, error) {
	if !validText(id) {
		return store.Volume{}, fmt.Errorf("store: volume %q: %w", id, store.ErrNotFound)
	}
	var out store.Volume
	found := false
	err := t.queryAll(`SELECT `+volCols+` FROM volumes WHERE id = ?`, []any{id}, func(r Rows) error {
		v, err := scanVolume(r)
		out, found = v, true
		return err
	})
	if err != nil {
		return store.Volume{}, fmt.Errorf("store: volume %q: %w", id, err)
	}
	if !found {
		return store.Volume{}, fmt.Errorf("store: volume %q: %w", id, store.ErrNotFound)
	}
	return out, nil
}

func (t *Tx) VolumesChangedSince(seq int64, limit int) ([]store.Volume, error) {
	if limit <= 0 {
		return nil, nil
	}
	out := make([]store.Volume, 0, min(limit, 1024))
	err := t.queryAll(`SELECT `+volCols+` FROM volumes WHERE change_seq > ? ORDER BY change_seq LIMIT ?`,
		[]any{seq, int64(limit)}, func(r Rows) error {
			v, err := scanVolume(r)
			out = append(out, v)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("store: volumes changed since %d: %w", seq, err)
	}
	return out, nil
}
