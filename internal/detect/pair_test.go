package detect

import (
	"encoding/csv"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// referenceDir finds ../shared/reference beside the repository root, where
// CI places the independent reference encounters.
func referenceDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	ref := filepath.Join(dir, "..", "shared", "reference")
	if _, err := os.Stat(filepath.Join(ref, "encounters.csv")); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("reference encounters absent: %s/encounters.csv does not exist (CI places ../shared beside the clone)", ref)
	}
	return ref
}

// readCSV reads a whole small CSV into maps keyed by header name.
func readCSV(t testing.TB, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		m := make(map[string]string, len(rec))
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		rows = append(rows, m)
	}
	return rows
}

func num(t testing.TB, row map[string]string, col string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(row[col], 64)
	if err != nil {
		t.Fatalf("id %s column %s: %v", row["id"], col, err)
	}
	return v
}

func TestPairMatchesReference(t *testing.T) {
	ref := referenceDir(t)
	in := readCSV(t, filepath.Join(ref, "encounters.csv"))
	want := readCSV(t, filepath.Join(ref, "encounters_expected.csv"))
	if len(in) != len(want) || len(in) == 0 {
		t.Fatalf("%d encounters but %d expected rows", len(in), len(want))
	}
	const tol = 1e-3
	for i, row := range in {
		exp := want[i]
		if row["id"] != exp["id"] {
			t.Fatalf("row %d: id %s vs expected id %s", i, row["id"], exp["id"])
		}
		v := func(c string) float64 { return num(t, row, c) }
		got := Pair(
			Vec3{v("own_x_m"), v("own_y_m"), v("own_z_m")},
			Vec3{v("own_vx_mps"), v("own_vy_mps"), v("own_vz_mps")},
			Vec3{v("int_x_m"), v("int_y_m"), v("int_z_m")},
			Vec3{v("int_vx_mps"), v("int_vy_mps"), v("int_vz_mps")},
			Cylinder{v("D_m"), v("H_m")}, v("T_s"))
		wantConflict := exp["conflict"] == "1"
		if got.Conflict != wantConflict {
			t.Errorf("id %s (%s): conflict %v, want %v (%+v)", row["id"], row["kind"], got.Conflict, wantConflict, got)
			continue
		}
		check := func(name string, g float64) {
			w := num(t, exp, name)
			if math.Abs(g-w) > tol {
				t.Errorf("id %s (%s): %s = %.6f, want %.6f", row["id"], row["kind"], name, g, w)
			}
		}
		if wantConflict {
			check("t_in_s", got.TInS)
			check("t_out_s", got.TOutS)
		} else if exp["t_in_s"] != "" || exp["t_out_s"] != "" {
			t.Errorf("id %s: expected file has an interval without a conflict", row["id"])
		}
		check("t_cpa_s", got.TCPAS)
		check("d_h_cpa_m", got.DHCPAM)
		check("d_v_cpa_m", got.DVCPAM)
	}
}
