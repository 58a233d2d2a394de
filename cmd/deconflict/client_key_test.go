package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// keyedServer runs the real server on a fresh store with coalition and
// russia, each with a public key registered, and returns its URL, a token
// file of the parties and the operator, and each party's key file.
func keyedServer(t *testing.T) (base, tokFile string, keyFiles map[string]string, keys map[string]ed25519.PrivateKey) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keyFiles, keys = map[string]string{}, map[string]ed25519.PrivateKey{}
	for _, p := range []string{"coalition", "russia"} {
		key, err := partykey.Generate()
		if err != nil {
			t.Fatal(err)
		}
		keyFiles[p], keys[p] = filepath.Join(dir, p+"-key.pem"), key
		if err := partykey.WriteFile(keyFiles[p], key); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	tokens := map[string]string{}
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0", Ready: func(base string, svc *service.Service) {
			for p, key := range keys {
				tokens[p], _ = svc.CreateParty(context.Background(), p, partykey.Public(key))
			}
			ready <- base
		}})
	}()
	base = <-ready
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	tokFile = filepath.Join(dir, "tokens.txt")
	lines := "operator " + strings.TrimSpace(readFile(t, filepath.Join(dir, "operator.token"))) + "\n"
	for p, tok := range tokens {
		lines += p + " " + tok + "\n"
	}
	if err := os.WriteFile(tokFile, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	return base, tokFile, keyFiles, keys
}

// signedStatements returns, as "METHOD PATH", the statements of party in
// the record (the party's own export) that verify with key, and fails on
// one of the party's statements that does not.
func signedStatements(t *testing.T, base, tokFile, party string, key ed25519.PrivateKey) map[string]int {
	t.Helper()
	tokens, err := loadTokenFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := do(&http.Client{Timeout: 30 * time.Second}, "GET", base+"/v1/audit", tokens[party], nil)
	if err != nil || code != 200 {
		t.Fatalf("GET /v1/audit as %s: %d %v", party, code, err)
	}
	pub := partykey.Public(key)
	out := map[string]int{}
	for _, l := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
		line, err := audit.ParseLine(l)
		if err != nil {
			t.Fatalf("export line %s: %v", l, err)
		}
		r := line.Record
		if r == nil || r.Kind != audit.KindStatement || r.Actor != party {
			continue
		}
		var c struct {
			Statement httpsig.Statement `json:"statement"`
		}
		if err := json.Unmarshal(r.Content, &c); err != nil {
			t.Fatalf("statement %d: %v", r.Seq, err)
		}
		if c.Statement.KeyID != partykey.ID(pub) {
			t.Fatalf("statement %d of %s signed by keyid %s, not its key's %s", r.Seq, party, c.Statement.KeyID, partykey.ID(pub))
		}
		if err := c.Statement.Verify(pub); err != nil {
			t.Fatalf("statement %d of %s does not verify: %v", r.Seq, party, err)
		}
		u, err := url.Parse(c.Statement.TargetURI)
		if err != nil {
			t.Fatal(err)
		}
		out[c.Statement.Method+" "+u.Path]++
	}
	return out
}

// TestClientCommandsSignWithKey: every command that writes as a party
// takes --key FILE (sim: --keys, one key per party) and signs what it
// sends with it, so that a server holding the party's public key takes it;
// the record then holds a statement of the write that verifies with that
// key. Without the key the same write is refused (401).
func TestClientCommandsSignWithKey(t *testing.T) {
	base, tokFile, keyFiles, keys := keyedServer(t)
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append(args, "--server", base, "--token-file", tokFile)
		if code := runMain(args, &out, &errOut); code != want {
			t.Fatalf("%v exited %d, want %d: %s%s", args, code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	// Each command adds statements of the write it makes.
	step := func(name, party, want string, args ...string) {
		t.Helper()
		before := signedStatements(t, base, tokFile, party, keys[party])
		out := run(0, args...)
		after := signedStatements(t, base, tokFile, party, keys[party])
		if after[want] <= before[want] {
			t.Fatalf("%s: no new statement %q of %s signed with its key (before %v, after %v)\n%s", name, want, party, before, after, out)
		}
	}
	now := time.Now().UTC()
	jsonl := writeFile(t, "feed.jsonl", fmt.Sprintf("{\"aircraft\":\"C1\",\"time\":%q,\"lat\":35,\"lon\":36,\"alt_m\":5000}\n", now.Format(time.RFC3339Nano)))
	coalition := []string{"--party", "coalition", "--key", keyFiles["coalition"]}

	// Unsigned, a write of a party with a key is refused: the feed counts
	// the batch undeliverable.
	if out := run(0, "feed", "jsonl", "--file", jsonl, "--party", "coalition", "--status", "0"); !strings.Contains(out, "sent=0 ") || !strings.Contains(out, "undeliverable=1") {
		t.Fatalf("an unsigned feed was not refused:\n%s", out)
	}

	step("feed jsonl", "coalition", "POST /v1/positions", append([]string{"feed", "jsonl", "--file", jsonl, "--status", "0"}, coalition...)...)
	sbs := writeFile(t, "feed.sbs", strings.Join([]string{
		"MSG,1,1,1,4CA2D6,1,2015/10/07,06:00:00.000,2015/10/07,06:00:00.000,RYR5KH,,,,,,,,0,0,0,0",
		"MSG,4,1,1,4CA2D6,1,2015/10/07,06:00:00.100,2015/10/07,06:00:00.100,,,450,90,,,0,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:00.200,2015/10/07,06:00:00.200,,30000,,,36.0,37.0,,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:00.700,2015/10/07,06:00:00.700,,30000,,,36.0,37.001,,,0,0,0,0",
	}, "\n"))
	step("feed sbs", "coalition", "POST /v1/positions", append([]string{"feed", "sbs", "--file", sbs, "--status", "0"}, coalition...)...)
	step("feed asterix", "coalition", "POST /v1/positions", append([]string{"feed", "asterix", "--file", filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"), "--speed", "0"}, coalition...)...)
	step("replay", "coalition", "POST /v1/positions", append([]string{"replay", jsonl, "--speed", "max", "--status", "0"}, coalition...)...)

	geojson := writeFile(t, "volume.geojson", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"KEYED-1","alt_lower_m":1000,"alt_upper_m":2000},
		"geometry":{"type":"Polygon","coordinates":[[[36.0,35.0],[36.1,35.0],[36.1,35.1],[36.0,35.1],[36.0,35.0]]]}}]}`)
	step("volumes import", "coalition", "POST /v1/volumes", append([]string{"volumes", "import", "--geojson", "--file", geojson,
		"--start", now.Add(time.Hour).Format(time.RFC3339), "--end", now.Add(2 * time.Hour).Format(time.RFC3339)}, coalition...)...)

	change := writeFile(t, "change.json", `{"volume_visibility":"need_to_know"}`)
	run(0, "rules", "propose", "--file", change, "--party", "operator")
	step("rules accept", "coalition", "POST /v1/rules/2/accept", append([]string{"rules", "accept", "2"}, coalition...)...)
	step("rules reject", "russia", "POST /v1/rules/2/reject", "rules", "reject", "2", "--reason", "no", "--party", "russia", "--key", keyFiles["russia"])

	// sim writes as every party of its scenario, each with its own key.
	keysFile := writeFile(t, "keys", "coalition "+keyFiles["coalition"]+"\nrussia "+filepath.Base(keyFiles["russia"])+"\n")
	if err := os.Rename(keysFile, filepath.Join(filepath.Dir(keyFiles["russia"]), "keys")); err != nil {
		t.Fatal(err)
	}
	keysFile = filepath.Join(filepath.Dir(keyFiles["russia"]), "keys")
	before := map[string]map[string]int{}
	for p, key := range keys {
		before[p] = signedStatements(t, base, tokFile, p, key)
	}
	run(0, "sim", "--scenario", "syria-2015", "--speed", "max", "--from", "demo", "--until", "06:02", "--ack-delay", "0s", "--keys", keysFile)
	for p, key := range keys {
		after := signedStatements(t, base, tokFile, p, key)
		if after["POST /v1/positions"] <= before[p]["POST /v1/positions"] {
			t.Errorf("sim: no new position batch of %s signed with its key (before %v, after %v)", p, before[p], after)
		}
	}
	// A key file that is not a key is a usage error.
	run(2, "feed", "jsonl", "--file", jsonl, "--party", "coalition", "--key", jsonl)
	run(2, "sim", "--scenario", "syria-2015", "--keys", writeFile(t, "badkeys", "mars "+keyFiles["coalition"]+"\n"))
}
