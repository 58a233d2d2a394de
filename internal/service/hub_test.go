package service

import (
	"runtime"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

func ev(id int64, audience ...string) store.Event {
	return store.Event{ID: id, Kind: "k", Audience: audience}
}

func TestHubAudienceOrderAndDuplicates(t *testing.T) {
	h := newHub(10)
	a := h.subscribe("a", false)
	b := h.subscribe("b", false)
	op := h.subscribe("operator", true)
	if a.Start() != 10 {
		t.Fatalf("start %d", a.Start())
	}
	h.publish([]store.Event{ev(9, "*"), ev(11, "a"), ev(12, "b"), ev(13, "*"), ev(12, "a")})
	got := func(s *Subscription) []int64 {
		var ids []int64
		evs, _ := s.Take(nil)
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		return ids
	}
	check := func(name string, s *Subscription, want ...int64) {
		ids := got(s)
		if len(ids) != len(want) {
			t.Fatalf("%s got %v, want %v", name, ids, want)
		}
		for i := range ids {
			if ids[i] != want[i] {
				t.Fatalf("%s got %v, want %v", name, ids, want)
			}
		}
	}
	// 9 is before the start and the second 12 a repeat: neither is sent.
	check("a", a, 11, 13)
	check("b", b, 12, 13)
	check("operator", op, 11, 12, 13)
}

func TestHubCutsOffSlowSubscriber(t *testing.T) {
	h := newHub(0)
	slow := h.subscribe("a", false)
	var evs []store.Event
	for i := int64(1); i <= subscriberBuffer+1; i++ {
		evs = append(evs, ev(i, "a"))
	}
	h.publish(evs)
	<-slow.Ready()
	got, open := slow.Take(nil)
	if open || len(got) != subscriberBuffer {
		t.Fatalf("received %d before the cut (still open: %v), want %d and the end", len(got), open, subscriberBuffer)
	}
	if h.count() != 0 {
		t.Fatalf("%d subscribers left", h.count())
	}
	slow.Close() // closing again is harmless
}

// Many open streams must not cost memory for what they might queue: a
// subscription holds only what its client has not taken (150 streams
// replaying history raised the server from 60 to 223 MB when each held a
// buffer for 4096 events). A thousand subscriptions that took a burst of
// events each cost less than 2 KiB apiece afterwards.
func TestHubSubscriptionsHoldOnlyWhatIsQueued(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h := newHub(0)
	const n = 1000
	before := heap()
	subs := make([]*Subscription, n)
	for i := range subs {
		subs[i] = h.subscribe("a", false)
	}
	// A burst of 300 events, taken by every subscriber.
	var burst []store.Event
	for i := int64(1); i <= 300; i++ {
		burst = append(burst, ev(i, "a"))
	}
	h.publish(burst)
	var got []store.Event
	for _, s := range subs {
		<-s.Ready()
		var open bool
		if got, open = s.Take(got[:0]); !open || len(got) != len(burst) {
			t.Fatalf("took %d events (open: %v), want %d", len(got), open, len(burst))
		}
	}
	per := float64(int64(heap())-int64(before)) / n
	t.Logf("%.0f bytes per idle subscription", per)
	if per > 2048 {
		t.Errorf("%d idle subscriptions hold %.0f bytes each, want at most 2 KiB", n, per)
	}
	runtime.KeepAlive(subs)
	runtime.KeepAlive(burst)
}
