package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// buildBinary compiles the real deconflict binary into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "deconflict")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// runCLI runs the binary to completion and returns its stdout.
func runCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("deconflict %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// serverProc is one running `deconflict serve`.
type serverProc struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
}

func startServer(t *testing.T, bin, data string) *serverProc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--no-console", "--log-level", "error")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "serving on "); ok {
				addr <- strings.TrimSpace(url)
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case p.base = <-addr:
	case <-p.done:
		t.Fatal("server exited before listening")
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30 s")
	}
	return p
}

func (p *serverProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// ledger is what clients were told succeeded.
type ledger struct {
	mu       sync.Mutex
	volumes  map[string]string // id -> version answered 201
	messages map[string]bool   // id answered 201
	acks     map[string]string // message id -> party whose ack was answered 200
	toAck    []string          // messages to russia not yet acknowledged
	events   []int64           // ids seen by the operator's stream, in order
	marker   int64             // id of the rules_changed event of the final round
}

func do(client *http.Client, method, url, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestKill9Durability starts the real binary, writes under load, kills it
// with SIGKILL at random moments 20 times, restarts it each time, and
// checks that every write answered 2xx is there and that the event ids
// seen across all the restarts continue without a gap or a duplicate.
func TestKill9Durability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	tokens := map[string]string{}
	for _, p := range []string{"coalition", "russia"} {
		tokens[p] = lastLine(runCLI(t, bin, "party", "add", p, "--data", data))
	}
	operator := lastLine(runCLI(t, bin, "party", "add", "operator", "--operator", "--data", data))

	rng := rand.New(rand.NewPCG(1, 2))
	led := &ledger{volumes: map[string]string{}, messages: map[string]bool{}, acks: map[string]string{}}
	client := &http.Client{Timeout: 10 * time.Second}
	var n int64 // volumes created so far, to place each on its own spot

	const kills = 20
	for round := 0; round <= kills; round++ {
		srv := startServer(t, bin, data)
		ctx, cancel := context.WithCancel(context.Background())
		streamCtx, stopStream := context.WithCancel(context.Background())
		var wg, swg sync.WaitGroup
		// The operator's stream sees every event; it resumes where it was.
		swg.Add(1)
		go func() {
			defer swg.Done()
			streamEvents(streamCtx, srv.base, operator, led)
		}()
		for w, party := range []string{"coalition", "russia", "coalition"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					led.mu.Lock()
					n++
					i := n
					led.mu.Unlock()
					// Every volume on its own spot: no conflicts, no key needed.
					lat := -60 + float64(i%100)*1.2
					lon := -170 + float64(i/100)*1.5 + float64(w)*0.01
					now := time.Now().UTC()
					body := map[string]any{
						"footprint":   map[string]any{"type": "Circle", "center": []float64{lon, lat}, "radius_m": 1000},
						"alt_lower_m": 1000, "alt_upper_m": 2000, "start": now, "end": now.Add(time.Hour),
						"details": map[string]int64{"n": i},
					}
					code, b, err := do(client, "POST", srv.base+"/v1/volumes", tokens[party], body)
					if err != nil || code != 201 {
						continue
					}
					var v struct{ ID, Version string }
					if json.Unmarshal(b, &v) == nil {
						led.mu.Lock()
						led.volumes[v.ID] = v.Version
						led.mu.Unlock()
					}
					otherWrites(client, srv.base, tokens, party, i, led)
				}
			}()
		}
		if round == kills {
			// The last round ends cleanly: stop writing, append one last
			// event of our own (a new rules version), wait for the stream
			// to reach it, then stop the stream.
			time.Sleep(300 * time.Millisecond)
			cancel()
			wg.Wait()
			code, b, err := do(client, "PUT", srv.base+"/v1/rules", operator, json.RawMessage(currentRules(t, client, srv.base, operator)))
			if err != nil || code != 200 {
				t.Fatalf("PUT /v1/rules: %d %s %v", code, b, err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				led.mu.Lock()
				reached := led.marker > 0
				led.mu.Unlock()
				if reached {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the stream did not reach the final event within 60 s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			stopStream()
			swg.Wait()
			_ = srv.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-srv.done:
			case <-time.After(20 * time.Second):
				t.Fatal("no exit within 20 s of SIGTERM")
			}
			if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit status %d after SIGTERM", code)
			}
			break
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		srv.kill()
		cancel()
		stopStream()
		wg.Wait()
		swg.Wait()
	}

	st, err := sqlite.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var last int64
	err = st.View(context.Background(), func(tx store.Tx) error {
		for id, version := range led.volumes {
			v, err := tx.GetVolume(id)
			if err != nil {
				return fmt.Errorf("volume %s answered 201 is gone: %w", id, err)
			}
			if v.Version != version {
				return fmt.Errorf("volume %s: version %s, answered %s", id, v.Version, version)
			}
		}
		var err error
		last, err = tx.LastEventID()
		if err != nil {
			return err
		}
		evs, err := tx.EventsAfter(0, int(last)+1)
		if err != nil {
			return err
		}
		for i, e := range evs {
			if e.ID != int64(i+1) {
				return fmt.Errorf("stored event %d has id %d", i+1, e.ID)
			}
		}
		for id := range led.messages {
			if _, err := tx.GetMessage(id); err != nil {
				return fmt.Errorf("message %s answered 201 is gone: %w", id, err)
			}
		}
		for id, party := range led.acks {
			acks, err := tx.AcksFor(id)
			if err != nil {
				return err
			}
			found := false
			for _, a := range acks {
				found = found || a.Party == party
			}
			if !found {
				return fmt.Errorf("the acknowledgment of %s by %s answered 200 is gone", id, party)
			}
		}
		// The clean shutdown of the last round signed the whole chain.
		head, err := tx.LastAudit()
		if err != nil {
			return err
		}
		cps, err := tx.CheckpointsFrom(head.Seq)
		if err != nil {
			return err
		}
		if len(cps) == 0 {
			return fmt.Errorf("audit record %d, the last, has no checkpoint after a graceful shutdown", head.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(led.volumes) == 0 {
		t.Fatal("no write succeeded: the test proved nothing")
	}
	for i, id := range led.events {
		if id != int64(i+1) {
			t.Fatalf("the stream saw id %d at position %d (gap or duplicate across restarts)", id, i+1)
		}
	}
	// Jobs of the server (alert hysteresis, expiry) may append events after
	// the final marker; the stream must have seen everything up to it.
	if int64(len(led.events)) < led.marker || led.marker > last {
		t.Fatalf("the stream saw %d events, the final marker is %d, the store holds %d", len(led.events), led.marker, last)
	}
	if len(led.messages) == 0 || len(led.acks) == 0 {
		t.Fatal("no message or acknowledgment succeeded: the test proved nothing")
	}
	t.Logf("%d kills; answered 2xx and present: %d volumes, %d messages, %d acknowledgments; %d events without a gap",
		kills, len(led.volumes), len(led.messages), len(led.acks), last)
}

// currentRules reads the rules in force, to put them back as a new version.
func currentRules(t *testing.T, client *http.Client, base, token string) []byte {
	t.Helper()
	code, b, err := do(client, "GET", base+"/v1/rules", token, nil)
	if err != nil || code != 200 {
		t.Fatalf("GET /v1/rules: %d %v", code, err)
	}
	return b
}

// streamEvents follows /v1/events with resume until ctx ends, appending
// every id to the ledger.
func streamEvents(ctx context.Context, base, token string, led *ledger) {
	for ctx.Err() == nil {
		led.mu.Lock()
		var after int64
		if len(led.events) > 0 {
			after = led.events[len(led.events)-1]
		}
		led.mu.Unlock()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Last-Event-ID", strconv.FormatInt(after, 10))
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		// An event counts once its blank line has arrived, as in a browser.
		var id int64 = -1
		var kind string
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				id, _ = strconv.ParseInt(v, 10, 64)
			}
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				kind = v
			}
			if line == "" && id >= 0 {
				led.mu.Lock()
				led.events = append(led.events, id)
				if kind == "rules_changed" {
					led.marker = id
				}
				led.mu.Unlock()
				id, kind = -1, ""
			}
		}
		resp.Body.Close()
	}
}

// otherWrites adds to the load: positions, a hotline message to russia and,
// as russia, the acknowledgment of an earlier one.
func otherWrites(client *http.Client, base string, tokens map[string]string, party string, i int64, led *ledger) {
	now := time.Now().UTC()
	rep := map[string]any{"reports": []any{map[string]any{"aircraft": fmt.Sprintf("%s-%d", party, i%50), "time": now,
		"lat": 30 + float64(i%50)*0.3, "lon": float64(i%7) * 5, "alt_m": 5000, "vel_east_mps": 150}}}
	_, _, _ = do(client, "POST", base+"/v1/positions", tokens[party], rep)
	if party == "coalition" {
		code, b, err := do(client, "POST", base+"/v1/hotline/messages", tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "request", "text": fmt.Sprintf("request %d", i)})
		var m struct{ ID string }
		if err == nil && code == 201 && json.Unmarshal(b, &m) == nil {
			led.mu.Lock()
			led.messages[m.ID] = true
			led.toAck = append(led.toAck, m.ID)
			led.mu.Unlock()
		}
		return
	}
	led.mu.Lock()
	if len(led.toAck) == 0 {
		led.mu.Unlock()
		return
	}
	id := led.toAck[0]
	led.toAck = led.toAck[1:]
	led.mu.Unlock()
	code, _, err := do(client, "POST", base+"/v1/hotline/messages/"+id+"/ack", tokens["russia"], map[string]string{"reply": "ok"})
	led.mu.Lock()
	if err == nil && code == 200 {
		led.acks[id] = "russia"
	} else {
		led.toAck = append(led.toAck, id) // try again later
	}
	led.mu.Unlock()
}
