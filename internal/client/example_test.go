package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/deconflict/deconflict/internal/client"
)

// Following the event stream: the handler sees every event once, in order,
// even though this server drops the stream after every two events; the
// client reconnects and resumes with Last-Event-ID. Returning ErrStop ends
// the stream without error.
func ExampleClient_Events() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last, _ := strconv.Atoi(r.Header.Get("Last-Event-ID"))
		fmt.Printf("(connected, Last-Event-ID %q)\n", r.Header.Get("Last-Event-ID"))
		w.Header().Set("Content-Type", "text/event-stream")
		for id := last + 1; id <= last+2; id++ {
			fmt.Fprintf(w, "id: %d\nevent: alert_raised\ndata: {\"id\":%d,\"kind\":\"alert_raised\",\"data\":{}}\n\n", id, id)
		}
	}))
	defer srv.Close()

	c := client.New(srv.URL, "token-of-alpha")
	err := c.Events(context.Background(), 0, func(ev client.Event) error {
		fmt.Println("event", ev.ID, ev.Kind)
		if ev.ID == 5 {
			return client.ErrStop
		}
		return nil
	})
	fmt.Println("err:", err)
	// Output:
	// (connected, Last-Event-ID "")
	// event 1 alert_raised
	// event 2 alert_raised
	// (connected, Last-Event-ID "2")
	// event 3 alert_raised
	// event 4 alert_raised
	// (connected, Last-Event-ID "4")
	// event 5 alert_raised
	// err: <nil>
}
