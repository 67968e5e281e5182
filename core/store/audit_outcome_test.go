package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestADecisionIsRecordedFirstAndItsOutcomeReplacesRunningByID(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	ids, err := s.RecordDecisions(ctx, []AuditEntry{
		{RequestID: "r1", Command: "deploy", Outcome: OutcomeRunning},
		{RequestID: "r2", Command: "sleep", Outcome: OutcomeRunning},
	})
	if err != nil || len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("RecordDecisions = %v, %v; want two ids", ids, err)
	}
	got, _ := s.Audit(ctx, 10)
	for _, e := range got {
		if e.Outcome != OutcomeRunning {
			t.Fatalf("before its outcome, entry %+v is not running", e)
		}
	}
	if err := s.RecordOutcomes(ctx, []AuditOutcome{{ID: ids[0], Outcome: "ok", Detail: "job #1", Duration: time.Second}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Audit(ctx, 10)
	byReq := map[string]AuditEntry{}
	for _, e := range got {
		byReq[e.RequestID] = e
	}
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2: the outcome updates the decision's row, it adds none", len(got))
	}
	if e := byReq["r1"]; e.Outcome != "ok" || e.Detail != "job #1" || e.Duration != time.Second || e.Command != "deploy" {
		t.Errorf("r1 = %+v, want its outcome filled in and the rest kept", e)
	}
	if e := byReq["r2"]; e.Outcome != OutcomeRunning {
		t.Errorf("r2 = %+v, want still running", e)
	}
	if err := s.RecordOutcomes(ctx, []AuditOutcome{{ID: 9999, Outcome: "ok"}}); err == nil {
		t.Error("the outcome of an entry that does not exist was accepted")
	}
}

func TestEntriesStillRunningAtStartAreMarkedInterrupted(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	ids, err := s.RecordDecisions(ctx, []AuditEntry{{RequestID: "dead", Outcome: OutcomeRunning}, {RequestID: "done", Outcome: OutcomeRunning}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordOutcomes(ctx, []AuditOutcome{{ID: ids[1], Outcome: "ok"}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.InterruptRunningAudits(ctx, "the bot stopped")
	if err != nil || n != 1 {
		t.Fatalf("InterruptRunningAudits = %d, %v; want 1", n, err)
	}
	got, _ := s.Audit(ctx, 10)
	for _, e := range got {
		want := map[string]string{"dead": OutcomeInterrupted, "done": "ok"}[e.RequestID]
		if e.Outcome != want {
			t.Errorf("%s: outcome %q, want %q", e.RequestID, e.Outcome, want)
		}
	}
}

func TestAuditWhereFiltersByUserCommandOutcomeAndTime(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	entries := []AuditEntry{
		{RequestID: "a", Adapter: "slack", UserID: "U1", UserName: "alice", Plugin: "deploy", Command: "deploy", Outcome: "ok"},
		{RequestID: "b", Adapter: "shell", UserID: "alice", UserName: "alice", Plugin: "deploy", Command: "deploy", Outcome: "denied"},
		{RequestID: "c", Adapter: "slack", UserID: "U2", UserName: "bob", Plugin: "hello", Command: "hello", Outcome: "ok"},
		{RequestID: "d", Adapter: "slack", UserID: "U1", UserName: "alice", Plugin: "core", Command: "lock", Outcome: OutcomeRunning},
		{RequestID: "e", Adapter: "shell", UserID: "bob", UserName: "bob", Command: "", Outcome: "rejected"},
	}
	for i, e := range entries {
		clock.set(base.Add(time.Duration(i) * time.Hour))
		if _, err := s.RecordAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		f    AuditFilter
		want []string // request ids, newest first
	}{
		{"no filter lists all", AuditFilter{}, []string{"e", "d", "c", "b", "a"}},
		{"adapter-qualified user is that adapter's", AuditFilter{User: "slack:U1"}, []string{"d", "a"}},
		{"plain user matches the id or name on any adapter", AuditFilter{User: "alice"}, []string{"d", "b", "a"}},
		{"command by name", AuditFilter{Command: "deploy"}, []string{"b", "a"}},
		{"command as plugin/command", AuditFilter{Command: "hello/hello"}, []string{"c"}},
		{"exact outcome", AuditFilter{Outcome: "ok"}, []string{"c", "a"}},
		{"allowed is every decision that ran", AuditFilter{Outcome: "allowed"}, []string{"d", "c", "a"}},
		{"since keeps the newer", AuditFilter{Since: base.Add(3 * time.Hour)}, []string{"e", "d"}},
		{"filters combine", AuditFilter{User: "alice", Command: "deploy", Outcome: "ok"}, []string{"a"}},
		{"limit after filter", AuditFilter{User: "alice", Limit: 2}, []string{"d", "b"}},
		{"nothing matches", AuditFilter{User: "carol"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.AuditWhere(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.RequestID)
			}
			if !slices.Equal(ids, c.want) {
				t.Errorf("AuditWhere(%+v) = %v, want %v", c.f, ids, c.want)
			}
		})
	}
}

func TestDecisionOfAnOutcome(t *testing.T) {
	for outcome, want := range map[string]string{
		"ok": "allowed", "running": "allowed", "interrupted": "allowed", "error": "allowed", "timeout": "allowed",
		"denied": "denied", "rejected": "rejected", "unavailable": "unavailable", "": "",
	} {
		if got := Decision(outcome); got != want {
			t.Errorf("Decision(%q) = %q, want %q", outcome, got, want)
		}
	}
}
