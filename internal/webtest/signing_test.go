package webtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/translog"
	"github.com/deconflict/deconflict/internal/witness"
)

// TestConsoleSignsWrites: the coalition registers a key; the console
// imports its PKCS#8 PEM file into a non-extractable WebCrypto key kept in
// IndexedDB, and a message sent from the console is signed in the browser
// (the server refuses unsigned writes of a party with a key) and recorded
// as the coalition's signed statement. A witness that answers nothing puts
// the red banner up.
func TestConsoleSignsWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	be := startBackend(t)
	browser := startBrowser(t)
	key, err := partykey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := partykey.EncodePEM(key)
	keyID := partykey.ID(partykey.Public(key))
	be.call(t, coalition, "POST", "/v1/parties/coalition/keys", map[string]string{"public_key": partykey.Format(partykey.Public(key))}, nil)

	a := openTab(t, browser, coalition, false)
	a.do(t, chromedp.EmulateViewport(1600, 1000), chromedp.Navigate(be.url))
	a.do(t, chromedp.SendKeys(chromedp.ID("token"), be.tokens[coalition]), chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	a.waitFor(t, "the party name", `document.getElementById('party-name').textContent === `+jsString(coalition), 15*time.Second)
	a.waitFor(t, "the record status", `document.getElementById('record-status').textContent.startsWith('record ')`, 15*time.Second)
	a.do(t, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([`+jsString(string(pemBytes))+`], 'coalition.pem'));
		const input = document.getElementById('key-file');
		input.files = dt.files;
		input.dispatchEvent(new Event('change'));
	})()`))
	a.waitFor(t, "the imported key", `document.getElementById('key-status').textContent === `+jsString("keyid "+keyID[:10]+"…"), 15*time.Second)
	// The key kept in IndexedDB cannot be read back.
	a.waitFor(t, "a non-extractable stored key", `new Promise((resolve) => {
		const req = indexedDB.open('deconflict-keys');
		req.onsuccess = () => {
			const get = req.result.transaction('keys').objectStore('keys').get('coalition');
			get.onsuccess = () => resolve(get.result && get.result.key.extractable === false && get.result.key.algorithm.name === 'Ed25519');
		};
	})`, 10*time.Second)

	a.do(t,
		chromedp.SendKeys(chromedp.ID("compose-to"), airgroup),
		chromedp.SendKeys(chromedp.ID("compose-thread"), "signed-thread"),
		chromedp.SendKeys(chromedp.ID("compose-text"), "signed in the browser"),
		chromedp.Click(chromedp.CSS(`#compose button[type=submit]`)),
	)
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("GET", be.url+"/v1/audit", nil)
		req.Header.Set("Authorization", "Bearer "+be.tokens[coalition])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		s := string(body)
		if strings.Contains(s, `"kind":"statement"`) && strings.Contains(s, `"keyid":"`+keyID+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no signed statement of the coalition in the record; compose error %q", eval[string](t, a, `document.getElementById('compose-error').textContent`))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The coalition's own witness (in this process) and airgroup's, which
	// nobody answers at: the browser verifies the coalition's cosignature,
	// and the banner names airgroup.
	var r rules.Rules
	be.call(t, "operator", "GET", "/v1/rules", nil, &r)
	var logKey struct {
		Origin string `json:"origin"`
		VKey   string `json:"vkey"`
	}
	be.call(t, coalition, "GET", "/v1/log/key", nil, &logKey)
	cwKey, _ := partykey.Generate()
	cw, err := witness.NewServer("coalition.test/witness", cwKey, t.TempDir(), []string{logKey.VKey})
	if err != nil {
		t.Fatal(err)
	}
	cwSrv := httptest.NewServer(cw)
	defer cwSrv.Close()
	wkey, _ := partykey.Generate()
	_, vkey, err := witness.CosignerKeys("airgroup.test/witness", wkey)
	if err != nil {
		t.Fatal(err)
	}
	r.Witnesses = []rules.Witness{{Party: coalition, URL: cwSrv.URL, VKey: cw.VerifierKey()}, {Party: airgroup, URL: "http://127.0.0.1:1", VKey: vkey}}
	var proposal struct{ Version int64 }
	be.call(t, "operator", "PUT", "/v1/rules", r, &proposal)
	// Rules change by agreement: both parties accept (the coalition signs).
	ctx := context.Background()
	if _, err := client.New(be.url, be.tokens[coalition]).WithKey(key).AcceptRules(ctx, proposal.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(be.url, be.tokens[airgroup]).AcceptRules(ctx, proposal.Version); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "the red banner", `!document.getElementById('record-banner').hidden && document.getElementById('record-banner').textContent === 'record not verified by airgroup'`, 30*time.Second)
	a.waitFor(t, "the coalition's cosignature, verified in the browser", `document.getElementById('record-status').textContent.startsWith('record cosigned by coalition at size ')`, 30*time.Second)
	a.screenshot(t, "console-record-banner")

	// The browser's verification agrees with the Go one (x/mod/sumdb/note,
	// transparency-dev/formats) on the published checkpoint, on one whose
	// coalition cosignature was altered, and on one whose log signature no
	// longer matches its text.
	req, _ := http.NewRequest("GET", be.url+"/v1/log/checkpoint", nil)
	req.Header.Set("Authorization", "Bearer "+be.tokens[coalition])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	published, _ := io.ReadAll(res.Body)
	res.Body.Close()
	logV, err := translog.LogVerifier(logKey.VKey)
	if err != nil {
		t.Fatal(err)
	}
	cwV, err := translog.WitnessVerifier(cw.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	// The coalition's cosignature line with one byte of its signature flipped.
	var alteredCosig []byte
	for _, line := range strings.SplitAfter(string(published), "\n") {
		if rest, ok := strings.CutPrefix(line, "— coalition.test/witness "); ok {
			blob, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
			if err != nil {
				t.Fatal(err)
			}
			blob[len(blob)-1] ^= 1
			line = "— coalition.test/witness " + base64.StdEncoding.EncodeToString(blob) + "\n"
		}
		alteredCosig = append(alteredCosig, line...)
	}
	lines := strings.SplitN(string(published), "\n", 3)
	alteredSize := []byte(lines[0] + "\n" + lines[1] + "0\n" + lines[2])
	witnesses := `[{"party":"coalition","vkey":` + jsString(cw.VerifierKey()) + `},{"party":"airgroup","vkey":` + jsString(vkey) + `}]`
	for _, c := range []struct {
		name string
		note []byte
	}{{"published", published}, {"altered cosignature", alteredCosig}, {"altered size", alteredSize}} {
		_, goCosigs, goErr := translog.Cosigned(c.note, logKey.Origin, logV, cwV)
		_, goByCoalition := goCosigs[cwV.Name()]
		goByCoalition = goByCoalition && goErr == nil
		goLogOK := true
		if _, _, err := translog.Open(c.note, logKey.Origin, logV); err != nil {
			goLogOK = false
		}
		js := eval[string](t, a, `window.deconflict.verifyCheckpoint(`+jsString(string(c.note))+`, `+jsString(logKey.VKey)+`, `+witnesses+`, 600, Date.now()).then((r) => JSON.stringify(r))`)
		var got struct {
			OK       bool `json:"ok"`
			Cosigned []struct {
				Party string `json:"party"`
			} `json:"cosigned"`
			Unverified []string `json:"unverified"`
		}
		if err := json.Unmarshal([]byte(js), &got); err != nil {
			t.Fatal(err)
		}
		jsByCoalition := len(got.Cosigned) == 1 && got.Cosigned[0].Party == coalition
		if got.OK != goLogOK || jsByCoalition != goByCoalition {
			t.Errorf("%s: the browser says log signature %v, cosigned by coalition %v (%s); Go says %v, %v (%v)", c.name, got.OK, jsByCoalition, js, goLogOK, goByCoalition, goErr)
		}
		if !slices.Contains(got.Unverified, airgroup) {
			t.Errorf("%s: airgroup's witness, which never cosigned, counted as verified: %s", c.name, js)
		}
	}
	if !strings.Contains(string(published), "— coalition.test/witness ") {
		t.Fatalf("the published checkpoint has no coalition cosignature:\n%s", published)
	}
}
