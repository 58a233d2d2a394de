package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// This file holds what the tests running the real binary share: building
// and running it, its server processes, the HTTP and event-stream client,
// and the ledger of what the server answered as done.

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

// startServe runs `deconflict serve` with args on a free local port and
// waits up to limit (the machine may be loaded) for the address it serves
// on. The process is killed at the end of the test if still running.
func startServe(t *testing.T, bin string, limit time.Duration, args ...string) *serverProc {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--no-console"}, args...)
	cmd := exec.Command(bin, args...)
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
			if _, u, ok := strings.Cut(sc.Text(), "serving on "); ok {
				addr <- strings.TrimSpace(u)
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	select {
	case p.base = <-addr:
	case <-p.done:
		t.Fatal("deconflict serve exited before listening")
	case <-time.After(limit):
		t.Fatalf("deconflict serve did not start within %v", limit)
	}
	return p
}

func (p *serverProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and fails unless the process exits cleanly within limit.
func (p *serverProc) stop(t *testing.T, limit time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("no exit within %v of SIGTERM", limit)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
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

// sseEvent is one event as a client received it.
type sseEvent struct {
	ID   int64
	Kind string
	Data json.RawMessage
}

// getEvents opens /v1/events resuming after the event id after.
func getEvents(ctx context.Context, client *http.Client, base, token string, after int64) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Last-Event-ID", strconv.FormatInt(after, 10))
	return client.Do(req)
}

// readEvents calls each for every event of the stream r until it ends. An
// event counts once its blank line has arrived, as in a browser.
func readEvents(r io.Reader, each func(sseEvent)) {
	ev := sseEvent{ID: -1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			ev.ID, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			ev.Kind = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			ev.Data = json.RawMessage(v)
		}
		if line == "" && ev.ID >= 0 {
			each(ev)
			ev = sseEvent{ID: -1}
		}
	}
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

func newLedger() *ledger {
	return &ledger{volumes: map[string]string{}, messages: map[string]bool{}, acks: map[string]string{}}
}

// verify checks that every volume, message and acknowledgment the ledger
// holds as answered is in the store.
func (led *ledger) verify(tx store.Tx) error {
	for id, version := range led.volumes {
		v, err := tx.GetVolume(id)
		if err != nil {
			return fmt.Errorf("volume %s answered 201 is gone: %w", id, err)
		}
		if v.Version != version {
			return fmt.Errorf("volume %s: version %s, answered %s", id, v.Version, version)
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
		if !slices.ContainsFunc(acks, func(a store.Ack) bool { return a.Party == party }) {
			return fmt.Errorf("the acknowledgment of %s by %s answered 200 is gone", id, party)
		}
	}
	return nil
}

// postVolume declares the i-th volume of writer w on a spot of its own (no
// conflicts, no awareness key needed) and records it in the ledger if
// answered 201.
func postVolume(client *http.Client, base, token string, i int64, w int, led *ledger) bool {
	lat := -60 + float64(i%100)*1.2
	lon := -170 + float64(i/100)*1.5 + float64(w)*0.01
	now := time.Now().UTC()
	body := map[string]any{
		"footprint":   map[string]any{"type": "Circle", "center": []float64{lon, lat}, "radius_m": 1000},
		"alt_lower_m": 1000, "alt_upper_m": 2000, "start": now, "end": now.Add(time.Hour),
		"details": map[string]int64{"n": i},
	}
	code, b, err := do(client, "POST", base+"/v1/volumes", token, body)
	if err != nil || code != 201 {
		return false
	}
	var v struct{ ID, Version string }
	if json.Unmarshal(b, &v) == nil {
		led.mu.Lock()
		led.volumes[v.ID] = v.Version
		led.mu.Unlock()
	}
	return true
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
