package client

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/hotline"
)

// jsonNames lists the JSON names of t's fields.
func jsonNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
}

// TestAlertReadsEveryFieldTheServerSends: a field the server adds to an
// alert (recorded_late, rules_version, an aircraft's stale) was dropped
// by the client's decoding, and a program on the client never saw it.
func TestAlertReadsEveryFieldTheServerSends(t *testing.T) {
	for _, c := range []struct{ server, client reflect.Type }{
		{reflect.TypeFor[alert.Alert](), reflect.TypeFor[Alert]()},
		{reflect.TypeFor[alert.Aircraft](), reflect.TypeFor[AlertAircraft]()},
	} {
		have := jsonNames(c.client)
		for name := range jsonNames(c.server) {
			if !have[name] {
				t.Errorf("the server's %v sends %q, which the client's %v does not read", c.server, name, c.client)
			}
		}
	}
}

// TestMessageReadsWhyItWasSettled: the item of a proposal of the rules
// that closed without a recipient's answer is settled, and says why and
// whom it no longer waits for; the client's decoding dropped "settled",
// and a program on the client (the command-line tool) could not say why
// the item was acknowledged.
func TestMessageReadsWhyItWasSettled(t *testing.T) {
	at := time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)
	sent, err := json.Marshal(hotline.Message{ID: "m1", From: "deconflict", To: []string{"coalition", "russia"},
		Thread: "rules:4", Kind: "rules_proposal", State: "acknowledged", Created: at,
		Settled: &hotline.Settlement{Time: at.Add(time.Minute), Reason: "the proposal of the rules version 4 was rejected by russia",
			Unanswered: []string{"coalition", "delta"}, Revoked: []string{"delta"}}})
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := json.Unmarshal(sent, &m); err != nil {
		t.Fatal(err)
	}
	read, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	if err := json.Unmarshal(sent, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(read, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got["settled"], want["settled"]) {
		t.Errorf("the client read settled as %v, the server sent %v", got["settled"], want["settled"])
	}
}
