package bench

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

// raisedWatcher follows one party's event stream from now on and signals
// the arrival of alert_raised events by aircraft id.
type raisedWatcher struct {
	mu      sync.Mutex
	waiting map[string]chan struct{}
}

func (w *raisedWatcher) expect(aircraft string) chan struct{} {
	c := make(chan struct{})
	w.mu.Lock()
	w.waiting[aircraft] = c
	w.mu.Unlock()
	return c
}

func (w *raisedWatcher) saw(ev client.Event) error {
	if ev.Kind != "alert_raised" {
		return nil
	}
	var a client.Alert
	if json.Unmarshal(ev.Data, &a) != nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ac := range a.Aircraft {
		if c, ok := w.waiting[ac.Aircraft]; ok {
			close(c)
			delete(w.waiting, ac.Aircraft)
		}
	}
	return nil
}

// watchRaised follows c's event stream from now on until ctx ends. It
// returns once the server has answered, so that every alert raised after
// it returns is seen.
func watchRaised(ctx context.Context, c *client.Client) (*raisedWatcher, error) {
	w := &raisedWatcher{waiting: map[string]chan struct{}{}}
	answered := make(chan error, 1)
	var once sync.Once
	hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		once.Do(func() {
			if err == nil && resp.StatusCode != http.StatusOK {
				err = errors.New("events: " + strconv.Itoa(resp.StatusCode))
			}
			answered <- err
		})
		return resp, err
	})}
	go func() { _ = c.WithHTTPClient(hc).Events(ctx, client.FromNow, w.saw) }()
	select {
	case err := <-answered:
		return w, err
	case <-ctx.Done():
		return w, ctx.Err()
	}
}

// roundTrip is an http.RoundTripper of a function.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// measureLatency creates head-on encounters away from the crowd, each in
// its own spot: a russia aircraft is reported to the last replica, then a
// coalition aircraft 20 km away flying at it to the first; one sample is
// the time from sending that second report to the alert_raised event at
// both parties' streams, coalition's on the first replica and russia's on
// the last.
func measureLatency(ctx context.Context, d *deployment, samples int, encounter *int) ([]time.Duration, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	last := len(d.bases) - 1
	coalition, russia := d.replica("coalition", 0), d.replica("russia", last)
	wc, err := watchRaised(sctx, coalition)
	if err != nil {
		return nil, err
	}
	wr, err := watchRaised(sctx, russia)
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	for range samples {
		i := *encounter
		*encounter++
		lat := -10 + float64(i%40)*0.5
		lon := 10 + float64(i/40)*0.5
		other := aircraft{party: "russia", id: "LR" + strconv.Itoa(i), latDeg: lat, lonDeg: lon, altM: 6000, velEastMps: -200}
		own := aircraft{party: "coalition", id: "LC" + strconv.Itoa(i), latDeg: lat, lonDeg: lon - 0.18, altM: 6000, velEastMps: 200}
		if err := post(ctx, russia, batchBody(nil, []aircraft{other}, time.Now())); err != nil {
			return nil, err
		}
		if last > 0 {
			// The first report's relay is not part of the measure.
			time.Sleep(20 * time.Millisecond)
		}
		gotC, gotR := wc.expect(own.id), wr.expect(own.id)
		t0 := time.Now()
		if err := post(ctx, coalition, batchBody(nil, []aircraft{own}, t0)); err != nil {
			return nil, err
		}
		for _, c := range []chan struct{}{gotC, gotR} {
			select {
			case <-c:
			case <-time.After(10 * time.Second):
				return nil, errors.New("no alert_raised within 10 s at both parties' streams")
			}
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}
