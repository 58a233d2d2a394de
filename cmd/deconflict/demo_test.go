package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/sim"
)

// TestDemoAlertsAcknowledgesAndEscalatesTheDesignedEncounters runs the demo
// headless over the scenario's busy quarter of an hour (at 40x: about 22 s
// of wall time), planners and pilots ignoring resolutions (with them the
// designed encounters are resolved before they happen), and checks, through what each party received, that every
// designed encounter was found and alerted to both sides at every level,
// acknowledged by both unless a party deliberately ignores it (then it
// escalated), that strategic conflicts were reported, and that the audit
// log verifies.
func TestDemoAlertsAcknowledgesAndEscalatesTheDesignedEncounters(t *testing.T) {
	sc, err := sim.Builtin("syria-2015")
	if err != nil {
		t.Fatal(err)
	}
	lastS := 0.0
	for _, e := range sc.Encounters {
		lastS = max(lastS, e.AtS)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sum, err := demo(ctx, demoOptions{
		Scenario: "syria-2015", Speed: 40, Seed: 1, AckDelay: 200 * time.Millisecond,
		Listen: "127.0.0.1:0", UntilS: lastS + 60, Out: &out, NoResolution: true,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	printSummary(&out, sum)
	t.Log(out.String())

	noAck := map[string]map[string]bool{}
	for _, p := range sc.Parties {
		noAck[p.Name] = map[string]bool{}
		for _, id := range p.NoAck {
			noAck[p.Name][id] = true
		}
	}
	escalatedOnPurpose := 0
	for _, e := range sc.Encounters {
		pair := []string{e.A, e.B}
		sort.Strings(pair)
		var found *sim.AlertRecord
		for i, a := range sum.Alerts {
			if a.Kind == "conflict" && fmt.Sprint(a.Aircraft) == fmt.Sprint(pair) {
				found = &sum.Alerts[i]
			}
		}
		if found == nil {
			t.Errorf("encounter %s x %s: no conflict alert", e.A, e.B)
			continue
		}
		// Crewed pairs rise through the three levels of the cylinder;
		// a drone and a crewed aircraft at the same height through
		// DO-365's corrective and warning levels.
		want := []string{"advisory", "caution", "warning"}
		if drone(sc, e.A) != drone(sc, e.B) {
			want = []string{"corrective", "warning"}
		}
		for _, level := range want {
			if !found.Levels[level] {
				t.Errorf("encounter %s x %s: never at level %s (levels %v)", e.A, e.B, level, found.Levels)
			}
		}
		for _, p := range sc.Parties {
			if !found.Parties[p.Name] {
				t.Errorf("encounter %s x %s: not alerted to %s", e.A, e.B, p.Name)
			}
			ignores := noAck[p.Name][e.A] || noAck[p.Name][e.B]
			switch {
			case ignores && found.Acked[p.Name]:
				t.Errorf("encounter %s x %s: acknowledged by %s, which ignores it", e.A, e.B, p.Name)
			case ignores && !found.Escalated:
				t.Errorf("encounter %s x %s: left unacknowledged by %s but not escalated", e.A, e.B, p.Name)
			case ignores:
				escalatedOnPurpose++
			case !found.Acked[p.Name]:
				t.Errorf("encounter %s x %s: not acknowledged by %s", e.A, e.B, p.Name)
			}
		}
	}
	if escalatedOnPurpose == 0 {
		t.Error("no designed escalation")
	}
	if sum.Escalations < 1 || sum.VolumeConflicts < 1 || sum.Volumes < 1 || sum.Reports < 1 || sum.Rejected != 0 {
		t.Errorf("summary %+v", sum)
	}
	if sum.AuditErr != nil || sum.Audit.Records < 1 {
		t.Errorf("audit: %v (%d records)", sum.AuditErr, sum.Audit.Records)
	}
	if sum.Audit.Statements < 1 {
		t.Errorf("no statement signed by the parties verified: %+v", sum.Audit)
	}
	// Each party's witness cosigned the record, up to its last checkpoint.
	if len(sum.Witnesses) != 2 {
		t.Fatalf("witnesses %+v", sum.Witnesses)
	}
	for _, w := range sum.Witnesses {
		if w.Cosigned < 1 || w.Failing != "" || w.Size != int64(sum.Audit.Records) {
			t.Errorf("witness of %s: %+v (the record has %d records)", w.Party, w, sum.Audit.Records)
		}
	}
	for _, want := range []string{"console: http://127.0.0.1:", "login as coalition", "login as russia", "ALERT raised", "ESCALATED", "STRATEGIC", "summary:", "witness coalition", "checkpoints cosigned"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo printed no %q", want)
		}
	}
}

// TestDemoStopsCleanlyOnInterrupt: Ctrl-C (the context ending) in the
// middle of the run stops the simulator and the server, and the record of
// what happened until then still verifies.
func TestDemoStopsCleanlyOnInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	go func() {
		// Interrupt once the first alert is on screen.
		for ctx.Err() == nil && !strings.Contains(out.String(), "ALERT raised") {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	sum, err := demo(ctx, demoOptions{Scenario: "syria-2015", Speed: 20, Seed: 2, AckDelay: 100 * time.Millisecond,
		Listen: "127.0.0.1:0", Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if sum.AuditErr != nil || sum.Audit.Records < 1 || len(sum.Alerts) < 1 || sum.Reports < 1 {
		t.Errorf("after the interrupt: audit %v (%d records), %d alerts, %d reports\n%s",
			sum.AuditErr, sum.Audit.Records, len(sum.Alerts), sum.Reports, out.String())
	}
	if !strings.Contains(out.String(), "stopping the server") {
		t.Errorf("no orderly stop:\n%s", out.String())
	}
}

// lockedBuffer is a bytes.Buffer safe to read while the demo writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoResolutionPreventsLossesOfSeparation runs the demo's busy
// quarter of an hour twice at high speed, the same traffic: with planners
// taking the alternatives of conflicting declarations and pilots flying
// their aircraft's suggestions at caution, no pair of aircraft of the two
// parties comes closer than the separation minima; with both ignoring
// them (--no-resolution), the designed encounters lose separation.
func TestDemoResolutionPreventsLossesOfSeparation(t *testing.T) {
	sc, err := sim.Builtin("syria-2015")
	if err != nil {
		t.Fatal(err)
	}
	lastS := 0.0
	for _, e := range sc.Encounters {
		lastS = max(lastS, e.AtS)
	}
	run := func(noResolution bool) demoSummary {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		sum, err := demo(ctx, demoOptions{
			Scenario: "syria-2015", Speed: 40, Seed: 1, AckDelay: 200 * time.Millisecond,
			Listen: "127.0.0.1:0", UntilS: lastS + 120, Out: &out, NoResolution: noResolution,
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		printSummary(&out, sum)
		t.Logf("no resolution %v:\n%s", noResolution, out.String())
		return sum
	}
	with, without := run(false), run(true)
	if with.Losses != 0 {
		t.Errorf("with resolutions, %d pairs lost separation", with.Losses)
	}
	if without.Losses == 0 {
		t.Error("without resolutions no pair lost separation: the scenario proves nothing")
	}
	if with.StrategicConflicts == 0 || with.StrategicResolved == 0 {
		t.Errorf("with resolutions, %d strategic conflicts raised and %d resolved: want some of each", with.StrategicConflicts, with.StrategicResolved)
	}
	if with.AuditErr != nil || without.AuditErr != nil {
		t.Errorf("audit: %v, %v", with.AuditErr, without.AuditErr)
	}
}

// drone reports whether the scenario's sortie flies a type of class uas.
func drone(sc *sim.Scenario, sortie string) bool {
	for _, so := range sc.Sorties {
		if so.ID != sortie {
			continue
		}
		for _, ty := range sc.AircraftTypes {
			if ty.Name == so.Type {
				return ty.Class == "uas"
			}
		}
	}
	return false
}

// TestDemoSaysWhyAnItemWasSettled: the demo prints what becomes of the
// hotline; an item settled without some recipients' acknowledgments (the
// proposal of the rules it asked them to answer closed) is printed once,
// with why and whom it no longer waits for, as the escalations are,
// rather than ending its story unsaid.
func TestDemoSaysWhyAnItemWasSettled(t *testing.T) {
	var out bytes.Buffer
	p := &eventPrinter{out: &out, seen: map[string]bool{}, level: map[string]string{}}
	m := client.Message{ID: "m1", From: "deconflict", To: []string{"coalition", "russia", "delta"}, Thread: "rules:4",
		Kind: "rules_proposal", State: "acknowledged", Acks: []client.Ack{{Party: "russia"}},
		Settled: &client.Settlement{Reason: "the proposal of the rules version 4 was rejected by russia",
			Unanswered: []string{"coalition", "delta"}, Revoked: []string{"delta"}}}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// Every recipient receives the event: it is said once.
	for _, party := range m.To {
		p.print(party, client.Event{Kind: "message", Data: data})
	}
	// An item as it stands before it is settled says nothing.
	open := m
	open.ID, open.State, open.Settled = "m2", "open", nil
	if data, err = json.Marshal(open); err != nil {
		t.Fatal(err)
	}
	p.print("coalition", client.Event{Kind: "message", Data: data})
	got := out.String()
	want := "SETTLED rules_proposal rules:4: the proposal of the rules version 4 was rejected by russia; no longer waits for coalition, delta (revoked)"
	if strings.Count(got, "SETTLED") != 1 || !strings.Contains(got, want) {
		t.Errorf("printed %q, want one line with %q", got, want)
	}
}

// TestDemoRefusesACrawl: a speed far below real time is refused naming
// the flag before anything starts; the deadlines scaled by it went beyond
// what the rules take, and the demo failed with its server up, naming
// ack_deadline_s.
func TestDemoRefusesACrawl(t *testing.T) {
	for _, speed := range []string{"0.000001", "0.05"} {
		var stdout, stderr bytes.Buffer
		code := runMain([]string{"demo", "--speed", speed, "--for", "1s", "--listen", "127.0.0.1:0"}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "--speed ") || !strings.Contains(stderr.String(), ": at least 0.1") || stdout.Len() != 0 {
			t.Errorf("--speed %s: exit %d, stdout %q, stderr %q", speed, code, stdout.String(), stderr.String())
		}
	}
}
