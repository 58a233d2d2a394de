package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/clock"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/service"
)

// TestPositionTimesOutsideTheProfile: a report's time that Go's time.Parse
// (and encoding/json) reads as some instant but RFC 3339 does not write is
// that report's rejection naming its time, on the fast decoder and on
// encoding/json's path alike; the other reports of the batch are taken.
// Before, "+24:00" read as the day before, a one-digit hour and a comma
// were accepted, and a tenth fraction digit was dropped.
func TestPositionTimesOutsideTheProfile(t *testing.T) {
	now := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	bad := []string{
		"2026-11-24T7:00:00Z",             // one-digit hour
		"2026-11-24T07:00:00,5Z",          // comma
		"2026-11-25T07:00:00+24:00",       // the same instant as now, by Go's reading
		"2026-11-24T07:00:00.1234567891Z", // a tenth digit
		"2026-11-24t07:00:00z",            // lower case
		"2026-11-24T06:59:60Z",            // a leap second
	}
	rl := rules.Default()
	for _, slow := range []bool{false, true} {
		var items []string
		for i, ts := range append(bad, now.Format(time.RFC3339)) {
			callsign := fmt.Sprintf("CS%d", i)
			if slow {
				callsign = `C\u0053` + callsign // an escape: encoding/json's path
			}
			items = append(items, fmt.Sprintf(`{"aircraft":"A%d","callsign":"%s","time":"%s","lat":35,"lon":36,"alt_m":6000}`, i, callsign, ts))
		}
		body := `{"reports":[` + strings.Join(items, ",") + `]}`
		if _, fast := decodeBatchFast([]byte(body)); fast == slow {
			t.Errorf("slow %v: the fast decoder took it %v", slow, fast)
		}
		ok, index, rejected, err := parsePositions(strings.NewReader(body), "coalition", now, &rl)
		if err != nil {
			t.Fatalf("slow %v: the batch is refused: %v", slow, err)
		}
		if len(ok) != 1 || index[0] != len(bad) || !ok[0].Time.Equal(now) {
			t.Errorf("slow %v: accepted %v at %v, want only the last", slow, index, ok)
		}
		if len(rejected) != len(bad) {
			t.Fatalf("slow %v: rejected %+v", slow, rejected)
		}
		for i, r := range rejected {
			if r.Index != i || !strings.HasPrefix(r.Error, fmt.Sprintf("reports[%d].time: ", i)) || !strings.Contains(r.Error, "RFC 3339") {
				t.Errorf("slow %v: %s: rejection %+v", slow, bad[i], r)
			}
		}
	}
}

// TestTimesOutsideTheProfileAreA400NamingTheField: a query parameter or a
// volume's window in a form Go reads but RFC 3339 does not write is a 400
// problem+json naming the field, and nothing is written.
func TestTimesOutsideTheProfileAreA400NamingTheField(t *testing.T) {
	e := newEnv(t, Options{})
	for _, bad := range []string{"2026-11-24T8:00:00Z", "2026-11-24T08:00:00,5Z", "2026-11-25T08:00:00+24:00"} {
		code, body, _ := e.do("GET", "/v1/hotline/messages?since="+url.QueryEscape(bad), e.tokens["coalition"], nil)
		var p Problem
		_ = json.Unmarshal(body, &p)
		if code != 400 || p.Field != "since" || !strings.Contains(p.Detail, "RFC 3339") {
			t.Errorf("since=%s: %d %s", bad, code, body)
		}
		v := circleVolume(35, 36, "cap", nil)
		v["start"] = bad
		code, body, _ = e.do("POST", "/v1/volumes", e.tokens["coalition"], v)
		p = Problem{}
		_ = json.Unmarshal(body, &p)
		if code != 400 || p.Field != "start" {
			t.Errorf("start %s: %d %s", bad, code, body)
		}
	}
	var list struct{ Volumes []json.RawMessage }
	e.mustDo("GET", "/v1/volumes?bbox=30,30,40,40&alt=0,20000", e.tokens["coalition"], nil, 200, &list)
	if len(list.Volumes) != 0 {
		t.Errorf("volumes written: %s", list.Volumes)
	}
}

// TestAServiceClockWrongFromTheStartIsToldByTheReports: a single service
// whose clock is an hour ahead from its start (nothing steps: the guard
// has nothing to see) refuses every report timed true now as an hour
// old; the reports of two parties, sampled before they are judged, raise
// the operator's alarm once they have said so for clock.ReportSustain,
// and the service's time stays its own. Before, nothing told the
// operator.
func TestAServiceClockWrongFromTheStartIsToldByTheReports(t *testing.T) {
	var logs syncBuffer
	e := newEnvConfig(t, openTestStore(t), Options{}, func(c *service.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	e.advance(time.Hour)
	ctx := context.Background()
	post := func(party, aircraft string) {
		t.Helper()
		now := time.Now().UTC().Format(time.RFC3339Nano)
		var out struct {
			Rejected []Rejection `json:"rejected"`
		}
		e.mustDo("POST", "/v1/positions", e.tokens[party], `{"reports":[{"aircraft":"`+aircraft+`","time":"`+now+`","lat":35,"lon":36,"alt_m":6000}]}`, http.StatusAccepted, &out)
		if len(out.Rejected) != 1 || !strings.Contains(out.Rejected[0].Error, "old") {
			t.Fatalf("a report timed now to a service an hour ahead: rejected %+v, want refused as too old", out.Rejected)
		}
	}
	// A batch of each party every second of the service's time.
	seconds := int((clock.ReportSustain + 2*clock.ReportMinSamples*clock.ReportSampleEvery) / time.Second)
	for i := range seconds {
		post("coalition", "C1")
		post("russia", "R1")
		e.advance(time.Second)
		e.svc.Tick(ctx)
		if i < int(clock.ReportSustain/time.Second) && e.svc.ReportClock().Alarm {
			t.Fatalf("the alarm raised after %d s, before %v", i+1, clock.ReportSustain)
		}
	}
	st := e.svc.ReportClock()
	if !st.Alarm || (st.Offset+time.Hour).Abs() > 2*time.Minute || !slices.Equal(st.Parties, []string{"coalition", "russia"}) {
		t.Fatalf("after %d s of reports of two parties an hour behind the service: %+v", seconds, st)
	}
	if log := logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "CLOCK WRONG: the service's time is at least 1h") {
		t.Errorf("no alarm in the log:\n%s", log)
	}
	if off := time.Until(e.svc.Now()); off < time.Hour {
		t.Errorf("the service's time moved toward the parties': %v ahead of the host's", off)
	}
}
