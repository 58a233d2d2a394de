package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/logcheck"
)

// hostile is what an export's head, its rules or a server may hold in a
// name: a terminal escape that clears the screen, a carriage return that
// writes over the line, a right-to-left override.
const hostile = "x\x1b[2J\rOK: forged\u202e"

// noTerminalControl fails when out holds a character of hostile that
// reaches the terminal as it is.
func noTerminalControl(t *testing.T, what, out string) {
	t.Helper()
	if strings.ContainsAny(out, "\x1b\r\u202e") {
		t.Errorf("%s prints a control or bidi character as it is: %q", what, out)
	}
	if !strings.Contains(out, `x\x1b[2J\x0dOK: forged\u202e`) {
		t.Errorf("%s does not show the name escaped: %q", what, out)
	}
}

// TestAuditVerifyEscapesTheExportsNames: the viewer of the head, the
// parties whose witnesses cosigned and the note on the log checkpoint are
// the export's; audit verify's OK lines show them escaped.
func TestAuditVerifyEscapesTheExportsNames(t *testing.T) {
	for _, c := range []struct {
		name string
		sum  audit.Summary
	}{
		{"the viewer", audit.Summary{Viewer: hostile}},
		{"the cosigners", audit.Summary{LogSize: 3, LogVerified: true, WitnessKeysFrom: "rules", LogCosignedBy: []string{"alpha", hostile}}},
		{"the log note", audit.Summary{LogSize: 3, LogNote: hostile}},
	} {
		var out bytes.Buffer
		printVerifyReport(&out, c.sum, false)
		noTerminalControl(t, c.name, out.String())
	}
}

// TestWitnessCheckEscapesTheWitnessName: the OK line of witness check
// shows the witness's name escaped, as its findings are.
func TestWitnessCheckEscapesTheWitnessName(t *testing.T) {
	var out bytes.Buffer
	printWitnessCheck(&out, logcheck.Result{Size: 4, Witness: hostile, CosignedAt: time.Unix(0, 0)})
	noTerminalControl(t, "witness check", out.String())
}

// TestAuditTimelineEscapesTheReadError: a record the timeline cannot read
// is named by its kind, which is the export's: the error shows it escaped.
func TestAuditTimelineEscapesTheReadError(t *testing.T) {
	_, _, export := exportedAuditData(t, 2)
	raw, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte(`"kind":"message_posted"`))
	j := bytes.Index(raw[i:], []byte(`"content":{`))
	if i < 0 || j < 0 {
		t.Fatalf("no message in the export:\n%s", raw)
	}
	// An alert whose aircraft are not a list: the kind is named.
	edited := bytes.Clone(raw[:i])
	edited = append(edited, "\"kind\":\"alert_\\u001b[2J\\r\u202e\""...)
	edited = append(edited, raw[i+len(`"kind":"message_posted"`):i+j]...)
	edited = append(edited, `"content":{"aircraft":"x",`...)
	edited = append(edited, raw[i+j+len(`"content":{`):]...)
	if err := os.WriteFile(export, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd("audit", "timeline", "--file", export, "--list")
	if code != 1 || !strings.Contains(stderr, `alert_\x1b[2J\x0d\u202e`) || strings.ContainsAny(stderr, "\x1b\r\u202e") {
		t.Fatalf("exit %d, %q: want the kind escaped", code, stderr)
	}
}
