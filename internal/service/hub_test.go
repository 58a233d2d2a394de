package service

import (
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
