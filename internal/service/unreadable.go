package service

import (
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
)

// unreadableLogEvery is how often the ERROR naming one stored hotline
// message that cannot be read is logged again: every snapshot, list and
// escalation tick passes over it, and one line per pass would bury the log.
const unreadableLogEvery = 10 * time.Minute

// maxUnreadableRemembered bounds the messages unreadableMessages
// remembers; past it the log of a new one is not rate-limited, and the
// counter counts it each time it is passed over.
const maxUnreadableRemembered = 10_000

// unreadableMessages remembers the stored hotline messages this process
// found it cannot read: when each was last logged.
type unreadableMessages struct {
	mu       sync.Mutex
	lastLog  map[string]time.Time
	onceSeen map[string]bool
}

// passOverMessage is the hotline.PassOver of the service: an ERROR naming
// the message (at most once per unreadableLogEvery per message) and the
// counter of the unreadable messages met (once per message).
func (s *Service) passOverMessage(e *hotline.UnreadableError) {
	now := s.now()
	u := &s.unreadable
	u.mu.Lock()
	if u.lastLog == nil {
		u.lastLog, u.onceSeen = map[string]time.Time{}, map[string]bool{}
	}
	first := !u.onceSeen[e.ID]
	last, logged := u.lastLog[e.ID]
	log := !logged || now.Sub(last) >= unreadableLogEvery || now.Before(last)
	if len(u.onceSeen) < maxUnreadableRemembered {
		u.onceSeen[e.ID] = true
		if log {
			u.lastLog[e.ID] = now
		}
	}
	u.mu.Unlock()
	if first {
		s.m.HotlineUnreadable.Inc()
	}
	if log {
		s.log.Error("a stored hotline message cannot be read: it is passed over, neither listed, in snapshots, nor escalated, until it is repaired",
			"message", e.ID, "err", e.Err, "repeats_every", unreadableLogEvery.String())
	}
}
