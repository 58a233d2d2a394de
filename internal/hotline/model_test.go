package hotline

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"pgregory.net/rapid"
)

// modelMsg is what the lifecycle should have made of one message.
type modelMsg struct {
	from        string
	to          []string
	deadline    time.Time // acknowledgment deadline
	next        time.Time // escalation deadline
	escalations int
	acked       []string
}

func (m *modelMsg) done() bool {
	for _, p := range m.to {
		if !slices.Contains(m.acked, p) {
			return false
		}
	}
	return true
}

// TestLifecycleMatchesModel runs random posts, acknowledgments (by
// recipients, senders and outsiders) and clock advances with escalation,
// and compares every message with a plain model of the rules after each
// step.
func TestLifecycleMatchesModel(t *testing.T) {
	e := newEnv(t, "")
	parties := []string{"alpha", "bravo", "charlie", "delta"}
	esc := sec(e.r.EscalationDeadlineS)
	clock := t0
	rapid.Check(t, func(rt *rapid.T) {
		model := map[string]*modelMsg{}
		var ids []string
		for step := range rapid.IntRange(1, 12).Draw(rt, "steps") {
			switch rapid.IntRange(0, 2).Draw(rt, fmt.Sprintf("action%d", step)) {
			case 0:
				from := rapid.SampledFrom(parties).Draw(rt, "from")
				var others []string
				for _, p := range parties {
					if p != from {
						others = append(others, p)
					}
				}
				to := rapid.SliceOfNDistinct(rapid.SampledFrom(others), 1, 3, rapid.ID).Draw(rt, "to")
				m, _ := e.post(from, NewMessage{To: to, Kind: KindRequest, Text: "r"}, clock)
				dl := clock.Add(sec(e.r.AckDeadlineS))
				model[m.ID] = &modelMsg{from: from, to: to, deadline: dl, next: dl.Add(esc)}
				ids = append(ids, m.ID)
			case 1:
				if len(ids) == 0 {
					continue
				}
				id := rapid.SampledFrom(ids).Draw(rt, "id")
				p := rapid.SampledFrom(parties).Draw(rt, "party")
				mm := model[id]
				_, _, err := e.ack(id, p, "", clock)
				switch {
				case slices.Contains(mm.to, p):
					if err != nil {
						rt.Fatalf("ack by recipient %s: %v", p, err)
					}
					if !slices.Contains(mm.acked, p) {
						mm.acked = append(mm.acked, p)
					}
				case p == mm.from:
					if !errors.Is(err, ErrNotRecipient) {
						rt.Fatalf("ack by sender: %v", err)
					}
				default:
					if !errors.Is(err, ErrNotFound) {
						rt.Fatalf("ack by outsider: %v", err)
					}
				}
			case 2:
				clock = clock.Add(time.Duration(rapid.IntRange(1, 200).Draw(rt, "advance_s")) * time.Second)
				e.escalate(clock)
				for _, mm := range model {
					if mm.done() {
						continue
					}
					current := mm.deadline
					if mm.escalations > 0 {
						current = mm.next
					}
					if current.After(clock) {
						continue
					}
					mm.escalations++
					mm.next = current.Add(esc)
					if !mm.next.After(clock) {
						mm.next = clock.Add(esc)
					}
				}
			}
			e.view(func(tx store.Tx) error {
				for id, mm := range model {
					got, err := Get(tx, "", id)
					if err != nil {
						return err
					}
					state := StateOpen
					switch {
					case mm.done():
						state = StateAcknowledged
					case mm.escalations > 0:
						state = StateEscalated
					}
					var acked []string
					for _, a := range got.Acks {
						acked = append(acked, a.Party)
					}
					if got.State != state || got.Escalations != mm.escalations || !sameSet(acked, mm.acked) ||
						(mm.escalations > 0 && !got.EscalationDeadline.Equal(mm.next)) || !got.Deadline.Equal(mm.deadline) {
						rt.Fatalf("message %s: got state %s, %d escalations, acks %v, next %v; model %s, %d, %v, %v",
							id, got.State, got.Escalations, acked, got.EscalationDeadline, state, mm.escalations, mm.acked, mm.next)
					}
				}
				return nil
			})
		}
		// The checks share the store: this one's messages are
		// acknowledged, so that the next ones' escalations are not held
		// back behind an ever longer list of open ones (Escalate takes a
		// batch at a time), nor their posts by the bound on a party's
		// open messages to another.
		for id, mm := range model {
			for _, p := range mm.to {
				if !slices.Contains(mm.acked, p) {
					if _, _, err := e.ack(id, p, "", clock); err != nil {
						rt.Fatalf("ack by recipient %s: %v", p, err)
					}
				}
			}
		}
	})
}
