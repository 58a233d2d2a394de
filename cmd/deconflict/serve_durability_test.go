package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

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
	led := newLedger()
	client := &http.Client{Timeout: 10 * time.Second}
	var n int64 // volumes created so far, to place each on its own spot

	const kills = 20
	for round := 0; round <= kills; round++ {
		srv := startServe(t, bin, 30*time.Second, "--data", data, "--log-level", "error")
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
					if !postVolume(client, srv.base, tokens[party], i, w, led) {
						continue
					}
					otherWrites(client, srv.base, tokens, party, i, led)
				}
			}()
		}
		if round == kills {
			// The last round ends cleanly: stop writing, append one last
			// event of our own (a proposal of the rules), wait for the stream
			// to reach it, then stop the stream.
			// Write for a moment, and on a machine too loaded to have
			// completed any message or acknowledgment between the kills,
			// until one of each has (the checks below need them).
			time.Sleep(300 * time.Millisecond)
			for wait := time.Now().Add(60 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
				led.mu.Lock()
				enough := len(led.messages) > 0 && len(led.acks) > 0
				led.mu.Unlock()
				if enough {
					break
				}
			}
			cancel()
			wg.Wait()
			// A patient client: this write must succeed for the test to
			// mean anything, and a loaded machine may be slow to answer.
			client := &http.Client{Timeout: 60 * time.Second}
			code, b, err := do(client, "PUT", srv.base+"/v1/rules", operator, json.RawMessage(currentRules(t, client, srv.base, operator)))
			if err != nil || code != 202 {
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
			srv.stop(t, 20*time.Second)
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
		if err := led.verify(tx); err != nil {
			return err
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

// currentRules reads the rules in force, to propose them again.
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
		resp, err := getEvents(ctx, &http.Client{}, base, token, after)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		readEvents(resp.Body, func(e sseEvent) {
			led.mu.Lock()
			led.events = append(led.events, e.ID)
			if e.Kind == "rules_proposed" {
				led.marker = e.ID
			}
			led.mu.Unlock()
		})
		resp.Body.Close()
	}
}
