package webtest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// streamEvent is one event as the page's parser emits it.
type streamEvent struct {
	Event string  `json:"event"`
	Data  *string `json:"data"`
	ID    *string `json:"id"`
	Retry *int    `json:"retry"`
}

func str(s string) *string { return &s }

// The event stream is parsed in the page (fetch and a stream reader, since
// EventSource cannot send the token in a header): check it on the line
// rules of the HTML standard, with chunks split anywhere.
func TestEventStreamParserInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	page := openConsoleAlone(t)

	stream := ": stream of coalition\nretry: 1000\n\n" +
		"id: 41\r\nevent: alert_raised\r\ndata: {\"id\":41}\r\n\r\n" +
		"id: 42\revent: message\rdata: line one\rdata: line two\r\r" +
		"data:no space\n: a comment between events\n\n" +
		"id: 43\nevent: ack\ndata: x\nunknown: field\nretry: soon\n\n" +
		"event: ignored-without-data\n\n" +
		"data: unterminated"
	want := []streamEvent{
		{Retry: new(1000)},
		{Event: "alert_raised", Data: str(`{"id":41}`), ID: str("41")},
		{Event: "message", Data: str("line one\nline two"), ID: str("42")},
		{Data: str("no space")},
		{Event: "ack", Data: str("x"), ID: str("43")},
	}
	// Whole, one character at a time, and split inside every CRLF.
	splits := map[string][]string{
		"whole":       {stream},
		"characters":  strings.Split(stream, ""),
		"inside CRLF": strings.SplitAfter(stream, "\r"),
	}
	for name, chunks := range splits {
		arg, _ := json.Marshal(chunks)
		s := eval[string](t, page, `JSON.stringify(deconflict.parseEventStream(`+string(arg)+`))`)
		var got []streamEvent
		if err := json.Unmarshal([]byte(s), &got); err != nil {
			t.Fatalf("%s: %v in %s", name, err, s)
		}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("%s:\n got %s\nwant %s", name, g, w)
		}
	}
}
