package service

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/track"
)

// TestTakeoverDoesNotClearAnAlertOnAPictureOlderThanTheLeadersNoNews: as
// TestTakeoverDoesNotClearAnAlertOfItsIDOnAnOlderPicture, but the russian
// climb, which brings the conflict back on the leader, tells nothing new
// of the alert: the leader commits nothing for it, and the store's last
// transition of the alert is its raise, older than the other replica's
// picture of both aircraft. That picture is older than the leader's all
// the same (it lacks the climb): the other replica, taking over, does not
// clear the alert when its engine's wait ends, and the relayed climb is
// the store's alert, under its id — not an end that never was followed by
// the same conflict raised under a new id. The leader recorded what it
// saw by its periodic job, or at its shutdown.
func TestTakeoverDoesNotClearAnAlertOnAPictureOlderThanTheLeadersNoNews(t *testing.T) {
	for _, shutdown := range []bool{false, true} {
		t.Run(fmt.Sprintf("leader shut down %v", shutdown), func(t *testing.T) { noNewsTakeover(t, shutdown) })
	}
}

// noNewsTakeover plays
// TestTakeoverDoesNotClearAnAlertOnAPictureOlderThanTheLeadersNoNews.
func noNewsTakeover(t *testing.T, shutdown bool) {
	p := newReplicaPair(t)
	raised, id, rClimbed := p.leaderAloneHasTheRussianClimb(t, 0)
	p.wantEvents(t, "after the russian climb (no news)", raised...)
	if got := p.open(0); !slices.Equal(got, []string{id}) {
		t.Fatalf("after the russian climb the leader's engine has %v, want %s", got, id)
	}
	if got := p.open(1); !slices.Equal(got, []string{id}) {
		t.Fatalf("before its takeover the second replica's engine has %v, want %s waiting out its clear", got, id)
	}
	if shutdown {
		if err := p.svc[0].Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	} else {
		p.svc[0].Tick(context.Background())
	}
	p.takesOverAndKeepsTheStores(t, 1, "once the engine's wait would have ended", raised, id, rClimbed)
}

// TestLeaderKeepsTheLaterReportTimesRecorded: a leader records its report
// times of the aircraft of its open alerts, keeping a time recorded before
// (by a leader whose picture was ahead of its engine's) when it is later,
// and letting go of the aircraft of no alert open: a third leader taking
// over from this one's older picture learns what the first had seen.
func TestLeaderKeepsTheLaterReportTimesRecorded(t *testing.T) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	p.raise(t, 0, c, r)
	ahead := c.Time.Add(3 * time.Second)
	gone := track.Key{Party: "navy", Aircraft: "N1"}
	before := map[track.Key]time.Time{{Party: "russia", Aircraft: r.Aircraft}: ahead, gone: ahead}
	putReportTimes(t, p.st, before)
	p.clock.advance(time.Second)
	moved := eastM(c, 200)
	moved.Time = p.clock.now()
	p.ingest(t, 0, "coalition", moved)
	p.svc[0].Tick(context.Background())
	want := map[track.Key]time.Time{
		{Party: "coalition", Aircraft: c.Aircraft}: moved.Time,
		{Party: "russia", Aircraft: r.Aircraft}:    ahead,
	}
	if got := readReportTimesOf(t, p.st); !maps.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("the leader recorded %v, want %v", got, want)
	}
}

// putReportTimes writes the leader's record of its report times.
func putReportTimes(t *testing.T, st store.Store, times map[track.Key]time.Time) {
	t.Helper()
	var rs []reportTime
	for k, at := range times {
		rs = append(rs, reportTime{Party: k.Party, Aircraft: k.Aircraft, Time: at})
	}
	raw, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutMeta(reportTimesMeta, raw) }); err != nil {
		t.Fatal(err)
	}
}

// readReportTimesOf reads the leader's record of its report times.
func readReportTimesOf(t *testing.T, st store.Store) map[track.Key]time.Time {
	t.Helper()
	var out map[track.Key]time.Time
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		out, err = readReportTimes(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnreadableReportTimesAreSaid: a record of report times in the store
// that cannot be decoded is taken as none, by a takeover (which then
// judges the store's alerts from their transitions alone) and by the
// leader's next record (which overwrites it), and the log says so both
// times: a takeover that quietly lost what the last leader had seen would
// clear on an older picture with nobody knowing why.
func TestUnreadableReportTimesAreSaid(t *testing.T) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	_, id := p.raise(t, 0, c, r)
	p.relay(t, 1, reportOf("coalition", c), reportOf("russia", r))
	p.svc[0].Tick(context.Background())
	err := p.st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutMeta(reportTimesMeta, []byte(`{"not":"a list"`))
	})
	if err != nil {
		t.Fatal(err)
	}
	logs, logger := newLogBuffer()
	p.svc[1].log = logger
	p.handOver(t, 1)
	p.clock.advance(time.Second)
	p.svc[1].Tick(context.Background())
	p.wantListsTheStores(t, 1, "after the takeover", id)
	said := logs.String()
	for _, want := range []string{"taking over detection: the alerts open in the store are judged from their transitions alone",
		"recording the report times of the alerts' aircraft: the last record is overwritten"} {
		if !strings.Contains(said, "level=WARN") || !strings.Contains(said, want) {
			t.Errorf("the log does not say %q:\n%s", want, said)
		}
	}
	if err := p.st.View(context.Background(), func(tx store.Tx) error {
		_, err := readReportTimes(tx)
		return err
	}); err != nil {
		t.Fatalf("the record after the new leader's tick: %v", err)
	}
}
