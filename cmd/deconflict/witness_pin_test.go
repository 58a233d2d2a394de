package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWitnessCheckPinsTheOtherWitnesses runs the real binaries: the
// server, coalition's and russia's witnesses, and coalition's check. With
// the rules naming russia's witness, coalition's check must be given its
// key (--witness or --witness-keys): without it the check fails naming
// russia, and with it the check requires russia's cosignature, which a
// witness that just stopped answering is allowed for witness_max_age_s.
func TestWitnessCheckPinsTheOtherWitnesses(t *testing.T) {
	e := newTrustEnv(t)
	var key struct{ VKey string }
	e.getJSON("/v1/log/key", e.tokens["coalition"], &key)
	rkey := filepath.Join(t.TempDir(), "russia-witness.pem")
	runCLI(t, e.bin, "key", "new", "--out", rkey)
	rcmd, rurl, rvkey := startWitness(t, e.bin, "--key", rkey, "--state", filepath.Join(t.TempDir(), "russia-witness"), "--log-vkey", key.VKey, "--name", "russia.test/witness")
	e.setRules(func(r map[string]any) {
		r["witnesses"] = []map[string]string{{"party": "coalition", "url": e.wurl, "vkey": e.wvkey}, {"party": "russia", "url": rurl, "vkey": rvkey}}
	})
	e.exchange("one")
	e.waitLog(e.tokens["coalition"], "no checkpoint of all the records cosigned by both witnesses", func(st logStatus, records int64) bool {
		return st.Size == records && len(st.CosignedBy) == 2
	})

	code, out := e.check()
	if code != 1 || !strings.Contains(out, "the witness of russia, whose key this party has not pinned") {
		t.Fatalf("rules naming russia's witness, its key not pinned: exit %d\n%s\nwant a failure to check naming russia", code, out)
	}
	if code, out := e.check("--witness", "russia=not-a-key"); code != 2 {
		t.Fatalf("--witness russia=not-a-key: exit %d\n%s\nwant 2", code, out)
	}
	code, out = e.check("--witness", "russia="+rvkey)
	if code != 0 || !strings.HasPrefix(out, "OK: ") || !strings.Contains(out, "\nwitness of russia (russia.test/witness): cosigned it at ") {
		t.Fatalf("russia's witness pinned and cosigning: exit %d\n%s", code, out)
	}

	// Russia's witness stops: the next checkpoint is cosigned by
	// coalition's alone, and russia's is allowed its age.
	_ = rcmd.Process.Kill()
	_ = rcmd.Wait()
	e.exchange("two")
	e.cosigned()
	keys := filepath.Join(t.TempDir(), "witness-keys")
	if err := os.WriteFile(keys, []byte("russia "+rvkey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = e.check("--witness-keys", keys)
	if code != 0 || !strings.Contains(out, "\nwitness of russia (russia.test/witness): cosigned size ") {
		t.Fatalf("russia's witness just stopped: exit %d\n%s\nwant OK, russia's witness allowed on an earlier checkpoint", code, out)
	}
}
