package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// syncBuffer is a log the test reads while the server writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAStepOfTheHostsClockLosesNoAlert: two aircraft of rival parties
// converge and their alert is raised; then the host's clock is set an hour
// ahead (the parties' feeds go on stamping true time). The service keeps
// its time: at the next expiry job the tracks are live and the alert
// still raised, and new reports are accepted, not refused as an hour old;
// the operator sees the alarm in the log and the metrics, and it clears
// when the clock is set right. Following the host's clock, as the service
// did, the expiry job took both tracks for an hour stale and cleared the
// alert, and every report was refused as "more than 60 s old".
func TestAStepOfTheHostsClockLosesNoAlert(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var hostStep atomic.Int64 // nanoseconds the host's clock was set ahead
	hostNow := func() time.Time { return time.Now().Add(time.Duration(hostStep.Load())) }
	logs := &syncBuffer{}
	var svc *service.Service
	tokens := map[string]string{}
	base := startedWith(t, Config{Store: st, DataDir: dir, Listen: "127.0.0.1:0", Now: hostNow,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, func(s *service.Service) {
		svc = s
		for _, p := range []string{"coalition", "russia"} {
			tok, err := s.CreateParty(ctx, p)
			if err != nil {
				t.Error(err)
			}
			tokens[p] = tok
		}
	})

	// report posts one position of a party's aircraft stamped with the
	// true time, on a head-on course with the other 20 km away; it returns
	// the rejections.
	report := func(partyName, aircraft string, lonDeg, velEastMps float64) []string {
		t.Helper()
		body := fmt.Sprintf(`{"reports":[{"aircraft":%q,"time":%q,"lat":35,"lon":%v,"alt_m":6000,"vel_east_mps":%v}]}`,
			aircraft, time.Now().UTC().Format(time.RFC3339Nano), lonDeg, velEastMps)
		req, _ := http.NewRequest("POST", base+"/v1/positions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[partyName])
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out struct{ Rejected []struct{ Error string } }
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &out) != nil {
			t.Fatalf("posting %s's report: %d %s", aircraft, resp.StatusCode, b)
		}
		var rejected []string
		for _, r := range out.Rejected {
			rejected = append(rejected, r.Error)
		}
		return rejected
	}
	converge := func() {
		t.Helper()
		if rej := report("coalition", "C1", 36, 200); rej != nil {
			t.Fatalf("C1's report stamped now was refused: %q", rej)
		}
		if rej := report("russia", "R1", 36.2, -200); rej != nil {
			t.Fatalf("R1's report stamped now was refused: %q", rej)
		}
	}
	operator := party.Principal{Operator: true}
	alertIDs := func() []string {
		var ids []string
		for _, a := range svc.Alerts(operator) {
			ids = append(ids, a.ID)
		}
		return ids
	}
	alarm := func() string {
		mfs, err := svc.Metrics().Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "deconflict_clock_") {
				v := math.Round(mf.GetMetric()[0].GetGauge().GetValue())
				if v == 0 {
					v = 0 // not -0
				}
				got = append(got, fmt.Sprintf("%s=%.0f", mf.GetName(), v))
			}
		}
		return strings.Join(got, " ")
	}

	converge()
	raised := alertIDs()
	if len(raised) != 1 {
		t.Fatalf("converging aircraft: alerts %q, want one", raised)
	}
	const quiet = "deconflict_clock_reference_offset_seconds=0 deconflict_clock_reports_offset_seconds=0 deconflict_clock_step_alarm=0"
	if got := alarm(); got != quiet {
		t.Fatalf("metrics before the step: %s", got)
	}

	hostStep.Store(int64(time.Hour))
	svc.Tick(ctx) // the expiry job, with the service's time
	if n := len(svc.Tracks(operator, detect.World)); n != 2 {
		t.Errorf("after the host's clock was set an hour ahead: %d live tracks, want 2", n)
	}
	if got := alertIDs(); len(got) != 1 || got[0] != raised[0] {
		t.Errorf("after the host's clock was set an hour ahead: alerts %q, want %q still raised", got, raised)
	}
	converge()
	svc.Tick(ctx)
	if got := alertIDs(); len(got) != 1 || got[0] != raised[0] {
		t.Errorf("after new reports: alerts %q, want %q", got, raised)
	}
	if got, want := alarm(), "deconflict_clock_reference_offset_seconds=3600 deconflict_clock_reports_offset_seconds=0 deconflict_clock_step_alarm=1"; got != want {
		t.Errorf("metrics during the step: %s, want %s", got, want)
	}
	if log := logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "1h0m0s ahead") || !strings.Contains(log, "restart the service") {
		t.Errorf("no alarm in the log:\n%s", log)
	}

	hostStep.Store(0)
	svc.Tick(ctx)
	if got := alarm(); got != quiet {
		t.Errorf("metrics after the host's clock was set right: %s", got)
	}
	if log := logs.String(); !strings.Contains(log, "clock step alarm cleared") {
		t.Errorf("the alarm's clearing is not in the log:\n%s", log)
	}
	converge()
	if got := alertIDs(); len(got) != 1 || got[0] != raised[0] {
		t.Errorf("after the clock was set right: alerts %q, want %q", got, raised)
	}
}
