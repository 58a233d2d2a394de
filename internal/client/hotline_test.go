package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// TestMessageReadsEveryFieldTheServerSends: the server's hotline item
// carries subject (the callsigns of an alert's aircraft, the volumes of a
// conflict), level and escalations, which the client's decoding dropped:
// a program on the client could not name an item for people, nor tell a
// warning from an advisory, nor how often it escalated.
func TestMessageReadsEveryFieldTheServerSends(t *testing.T) {
	for _, c := range []struct{ server, client reflect.Type }{
		{reflect.TypeFor[hotline.Message](), reflect.TypeFor[Message]()},
		{reflect.TypeFor[hotline.Ref](), reflect.TypeFor[MessageRef]()},
		{reflect.TypeFor[hotline.Acknowledgment](), reflect.TypeFor[Ack]()},
		{reflect.TypeFor[hotline.Settlement](), reflect.TypeFor[Settlement]()},
		{reflect.TypeFor[hotline.Subject](), reflect.TypeFor[MessageSubject]()},
		{reflect.TypeFor[hotline.SubjectAircraft](), reflect.TypeFor[SubjectAircraft]()},
		{reflect.TypeFor[hotline.SubjectVolume](), reflect.TypeFor[SubjectVolume]()},
	} {
		have := jsonNames(c.client)
		for name := range jsonNames(c.server) {
			if !have[name] {
				t.Errorf("the server's %v sends %q, which the client's %v does not read", c.server, name, c.client)
			}
		}
	}
}

// TestMessagesReadTheServersAnswer: against a real server, an alert's
// hotline item that escalated reads through Messages as GET
// /v1/hotline/messages sends it, every field of it.
func TestMessagesReadTheServersAnswer(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var skew atomic.Int64
	start := time.Now()
	svc, err := service.New(ctx, service.Config{Store: st, Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(svc, api.Options{}))
	t.Cleanup(func() {
		svc.EndStreams()
		srv.Close()
		_ = svc.Close(context.Background())
	})
	operator := party.Principal{Party: party.OperatorName, Operator: true}
	tokens := map[string]string{}
	for _, name := range []string{"coalition", "russia"} {
		if tokens[name], err = svc.AddParty(ctx, operator, name); err != nil {
			t.Fatal(err)
		}
	}
	// Head on at one altitude, 20 km apart, closing at 400 m/s.
	for name, r := range map[string]Report{
		"russia":    {Aircraft: "RF-1", Callsign: "FALCON1", Time: start, LatDeg: 35, LonDeg: 36.1, AltM: 6000, VelEastMps: -200},
		"coalition": {Aircraft: "US-1", Callsign: "EAGLE1", Time: start, LatDeg: 35, LonDeg: 35.88, AltM: 6000, VelEastMps: 200},
	} {
		if res, err := New(srv.URL, tokens[name]).PostPositions(ctx, []Report{r}); err != nil || res.Accepted != 1 {
			t.Fatalf("%s's report: %+v, %v", name, res, err)
		}
	}
	// Nobody acknowledges: the item escalates.
	skew.Store(int64(rules.Default().LongestDeadline() + time.Second))
	svc.Tick(ctx)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/hotline/messages", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tokens["coalition"])
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sent struct{ Messages []map[string]any }
	err = json.NewDecoder(resp.Body).Decode(&sent)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(sent.Messages) != 1 {
		t.Fatalf("the server's answer: %d %+v %v", resp.StatusCode, sent, err)
	}
	// The fields this test is about are in the answer.
	want := sent.Messages[0]
	if want["kind"] != "alert" || want["subject"] == nil || want["level"] == nil || want["escalations"] != 1.0 {
		t.Fatalf("the server sent no escalated alert item with a subject and a level: %v", want)
	}

	read, err := New(srv.URL, tokens["coalition"]).Messages(ctx, "", time.Time{})
	if err != nil || len(read) != 1 {
		t.Fatalf("Messages = %+v, %v", read, err)
	}
	m := read[0]
	if m.Level == "" || m.Escalations != 1 || m.Subject == nil || len(m.Subject.Aircraft) != 2 {
		t.Errorf("the client read level %q, %d escalations, subject %+v", m.Level, m.Escalations, m.Subject)
	}
	again, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(again, &got); err != nil {
		t.Fatal(err)
	}
	for name, v := range want {
		if !reflect.DeepEqual(got[name], v) {
			t.Errorf("%s: the server sent %v, the client read %v", name, v, got[name])
		}
	}
}
