package client

import (
	"reflect"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/alert"
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
