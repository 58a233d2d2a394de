package webtest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"
)

// idLike is what a thread must never be called in the console: the id of
// an alert or a volume.
var idLike = regexp.MustCompile(`^(volume|alert):[0-9a-f]{12,}$`)

type namedThread struct {
	Key, Name, State, Label string
}

// TestThreadNamesInBrowser gives the console's hotline a set of messages
// as the API sends them and checks what a person reads: each thread named
// by what it is about (callsigns, a volume's party, band and window),
// never by its id, its state for the reader, and the order, with what
// needs action first; and the countdown to a deadline, urgent in its last
// third.
func TestThreadNamesInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	page := openConsoleAlone(t)

	t0 := time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	msg := func(id, thread, from string, to []string, state string, created time.Duration, acks ...string) map[string]any {
		var ks []map[string]any
		for _, p := range acks {
			ks = append(ks, map[string]any{"party": p, "time": at(created + time.Second)})
		}
		return map[string]any{"id": id, "thread": thread, "from": from, "to": to, "kind": "alert", "text": "x", "state": state,
			"created": at(created), "deadline": at(created + 30*time.Second), "escalation_deadline": at(created + 150*time.Second), "acks": ks}
	}
	volume := func(id, party string, lowerFL, upperFL float64, start, end time.Duration) map[string]any {
		return map[string]any{"id": id, "party": party, "version": "v1", "alt_lower_m": lowerFL * 30.48, "alt_upper_m": upperFL * 30.48, "start": at(start), "end": at(end)}
	}
	const alertID, volID, otherVolID, knownVolID = "4677e2348af10cd417d30593", "02959458ac3965e2dfc956e9", "aaaa9458ac3965e2dfc956e9", "bbbb9458ac3965e2dfc956e9"
	me := []string{"russia"}
	both := []string{"coalition", "russia"}

	// An alert waiting for russia's acknowledgment, with its subject.
	a1 := msg("m1", "alert:"+alertID, "deconflict", both, "open", 0, "coalition")
	a1["subject"] = map[string]any{"aircraft": []map[string]any{{"party": "coalition", "aircraft": "CO-9", "callsign": "VIPER9"}, {"party": "russia", "aircraft": "RF-1", "callsign": "SU24-1"}}}
	a1["level"] = "warning"
	// A strategic conflict russia acknowledged, escalated because the
	// coalition did not.
	v1 := msg("m2", "volume:"+volID, "deconflict", both, "escalated", -time.Minute, "russia")
	v1["kind"] = "volume_conflict"
	v1["subject"] = map[string]any{"volumes": []map[string]any{volume(volID, "coalition", 220, 240, 0, 2*time.Hour), volume(otherVolID, "russia", 230, 250, time.Hour, 3*time.Hour)}}
	// A volume thread without a subject (an older item): named from the
	// volumes the console knows, done.
	v2 := msg("m3", "volume:"+knownVolID, "deconflict", both, "acknowledged", -2*time.Minute, "coalition", "russia")
	// A message russia sent, waiting for the coalition; one in a thread
	// the service named; and an alert whose subject is unknown, done.
	w := msg("m4", "ops-1", "russia", []string{"coalition"}, "open", -3*time.Minute)
	w["kind"], w["text"] = "request", "keep FL240 clear"
	tn := msg("m5", "t-0123456789abcdef01234567", "coalition", me, "acknowledged", -4*time.Minute, "russia")
	tn["kind"], tn["text"] = "notice", "Tanker on station over the Mediterranean until 08:00Z"
	gone := msg("m6", "alert:ffff2348af10cd417d30593", "deconflict", both, "acknowledged", -5*time.Minute, "coalition", "russia")
	// Two more that need russia: the one escalated comes first.
	esc := msg("m7", "alert:eeee2348af10cd417d30593", "deconflict", both, "escalated", -6*time.Minute)
	esc["subject"] = map[string]any{"aircraft": []map[string]any{{"party": "russia", "aircraft": "RF-7", "callsign": "U0007"}}}
	later := msg("m8", "alert:dddd2348af10cd417d30593", "deconflict", both, "open", 20*time.Second)
	later["subject"] = a1["subject"]

	// A proposal of the rules russia answered.
	rp := msg("m9", "rules:7", "deconflict", both, "acknowledged", -7*time.Minute, "coalition", "russia")
	rp["kind"] = "rules_proposal"

	msgs, _ := json.Marshal([]any{a1, v1, v2, w, tn, gone, esc, later, rp})
	// Tomorrow, and past midnight: the date and the day it ends say so.
	vols, _ := json.Marshal([]any{volume(knownVolID, "coalition", 100, 150, 41*time.Hour, 43*time.Hour)})
	got := eval[[]namedThread](t, page, `deconflict.nameThreads(`+string(msgs)+`, 'russia', [], `+string(vols)+`, Date.parse(`+jsString(at(0))+`))`)

	want := []namedThread{
		{Key: "alert:eeee2348af10cd417d30593", Name: "Outside its volumes: U0007 (russia)", State: "action"},
		{Key: "alert:" + alertID, Name: "Conflict VIPER9 ↔ SU24-1", State: "action"},
		{Key: "alert:dddd2348af10cd417d30593", Name: "Conflict VIPER9 ↔ SU24-1", State: "action"},
		{Key: "volume:" + volID, Name: "Volume conflict: coalition FL220–FL240 06:00–08:00Z ↔ russia FL230–FL250 07:00–09:00Z", State: "escalated"},
		{Key: "ops-1", Name: "ops-1", State: "waiting"},
		{Key: "volume:" + knownVolID, Name: "Volume coalition FL100–FL150 25 Nov 23:00–01:00Z+1", State: "done"},
		{Key: "t-0123456789abcdef01234567", Name: "notice from coalition: Tanker on station over the Mediterranean until…", State: "done"},
		{Key: "alert:ffff2348af10cd417d30593", Name: "Alert raised at 05:55Z", State: "done"},
		{Key: "rules:7", Name: "Rules proposal v7", State: "done"},
	}
	if len(got) != len(want) {
		t.Fatalf("threads %+v, want %d of them", got, len(want))
	}
	for i := range want {
		if got[i].Key != want[i].Key || got[i].Name != want[i].Name || got[i].State != want[i].State {
			t.Errorf("thread %d: %+v, want %+v", i, got[i], want[i])
		}
		if idLike.MatchString(got[i].Name) {
			t.Errorf("thread %d is named by its id: %q", i, got[i].Name)
		}
	}
	// Done threads: the "done" state says so; the others say whom they
	// wait for.
	for _, th := range got {
		if th.Key == "ops-1" && th.Label != "Waiting for coalition" {
			t.Errorf("ops-1 reads %q", th.Label)
		}
		if th.Key == "volume:"+volID && th.Label != "ESCALATED · waiting for coalition" {
			t.Errorf("the escalated volume thread reads %q", th.Label)
		}
	}

	// The deadline of a1 runs 30 s from its creation: 20 s in it is still
	// calm, past 20 s (its last third) urgent, then overdue; once escalated
	// the next escalation counts down over the escalation period.
	type cd struct {
		Text   string  `json:"text"`
		Urgent bool    `json:"urgent"`
		LeftMs float64 `json:"leftMs"`
	}
	a1JSON, _ := json.Marshal(a1)
	v1JSON, _ := json.Marshal(v1)
	rules := `{"escalation_deadline_s": 120}`
	for _, c := range []struct {
		m      []byte
		after  time.Duration
		text   string
		urgent bool
	}{
		{a1JSON, 10 * time.Second, "deadline in 0:20", false},
		{a1JSON, 19 * time.Second, "deadline in 0:11", false},
		{a1JSON, 21 * time.Second, "deadline in 0:09", true},
		{a1JSON, 31 * time.Second, "deadline overdue", true},
		{v1JSON, 0, "next escalation in 2:00", false},
		{v1JSON, 70 * time.Second, "next escalation in 0:50", false},
		{v1JSON, 81 * time.Second, "next escalation in 0:39", true},
	} {
		var m map[string]any
		_ = json.Unmarshal(c.m, &m)
		created, _ := time.Parse(time.RFC3339, m["created"].(string))
		if m["state"] == "escalated" {
			created, _ = time.Parse(time.RFC3339, m["deadline"].(string))
		}
		now := created.Add(c.after).UnixMilli()
		got := eval[cd](t, page, `deconflict.countdown(`+string(c.m)+`, `+rules+`, `+jsonNumber(now)+`)`)
		if got.Text != c.text || got.Urgent != c.urgent {
			t.Errorf("%s %v after: %+v, want %q urgent %v", m["id"], c.after, got, c.text, c.urgent)
		}
	}

	// The times of acknowledgments and messages: to the second, with the
	// date when not of today (UTC), the year when not of this year.
	for _, c := range []struct {
		at, now time.Time
		want    string
	}{
		{t0.Add(59 * time.Second), t0, "06:00:59Z"},
		{t0.Add(-6*time.Hour - time.Second), t0, "23 Nov 23:59:59Z"},
		{t0, t0.Add(18*time.Hour - time.Second), "06:00:00Z"},
		{t0, t0.Add(18 * time.Hour), "24 Nov 06:00:00Z"},
		{t0, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "24 Nov 2026 06:00:00Z"},
	} {
		if got := eval[string](t, page, `deconflict.formatClock(`+jsonNumber(c.at.UnixMilli())+`, `+jsonNumber(c.now.UnixMilli())+`)`); got != c.want {
			t.Errorf("formatClock(%v) at %v: %q, want %q", c.at, c.now, got, c.want)
		}
	}
	// A thread named by the time its alert was raised says the day when
	// it is not today.
	msgs, _ = json.Marshal([]any{gone})
	for _, c := range []struct {
		now  time.Time
		want string
	}{{t0, "Alert raised at 05:55Z"}, {t0.Add(24 * time.Hour), "Alert raised at 24 Nov 05:55Z"}} {
		got := eval[[]namedThread](t, page, `deconflict.nameThreads(`+string(msgs)+`, 'russia', [], [], `+jsonNumber(c.now.UnixMilli())+`)`)
		if len(got) != 1 || got[0].Name != c.want {
			t.Errorf("at %v the thread is %+v, want %q", c.now, got, c.want)
		}
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestConflictItemNamesEveryVolumeInBrowser: the item of a volume write in
// conflict with many of another party's volumes (one item for all of
// them) reads, in the console, how many and each of them, not as a
// conflict with the first alone.
func TestConflictItemNamesEveryVolumeInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	page := openConsoleAlone(t)
	t0 := time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	vol := func(id, party string, lowerFL, upperFL float64) map[string]any {
		return map[string]any{"id": id, "party": party, "version": "v1", "alt_lower_m": lowerFL * 30.48, "alt_upper_m": upperFL * 30.48, "start": at(0), "end": at(2 * time.Hour)}
	}
	vs := []map[string]any{vol("a1", "coalition", 220, 240)}
	for i := range 3 {
		vs = append(vs, vol(fmt.Sprintf("r%d", i), "russia", float64(230+10*i), float64(250+10*i)))
	}
	m, _ := json.Marshal(map[string]any{"id": "m1", "thread": "volume:a1", "from": "deconflict", "to": []string{"coalition", "russia"},
		"kind": "volume_conflict", "text": "x", "state": "open", "created": at(0), "deadline": at(time.Minute), "escalation_deadline": at(3 * time.Minute),
		"acks": []any{}, "subject": map[string]any{"volumes": vs}})
	got := eval[string](t, page, `deconflict.itemText(`+string(m)+`, Date.parse(`+jsString(at(0))+`))`)
	want := "Volume coalition FL220–FL240 06:00–08:00Z conflicts with 3 volumes of russia: russia FL230–FL250 06:00–08:00Z; russia FL240–FL260 06:00–08:00Z; russia FL250–FL270 06:00–08:00Z."
	if got != want {
		t.Errorf("the item reads\n%q\nwant\n%q", got, want)
	}
}
