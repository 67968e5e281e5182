package store

import (
	"context"
	"testing"
	"time"
)

func TestTheAuditKeepsThePersonAndWhatTriggeredEveryKindOfWrite(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.RecordAudit(ctx, AuditEntry{RequestID: "one", Adapter: "slack", UserID: "U1", Person: "alice", TriggeredBy: "cistatus"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAudits(ctx, []AuditEntry{{RequestID: "many", Adapter: "shell", UserID: "alice", Person: "alice"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordAuditBatch(ctx,
		[]AuditEntry{{RequestID: "decided", Adapter: "mattermost", UserID: "9x", Person: "alice", TriggeredBy: "chima", Outcome: OutcomeRunning}},
		[]AuditEntry{{RequestID: "final", Adapter: "shell", UserID: "bob", Outcome: "denied"}}, nil); err != nil {
		t.Fatal(err)
	}
	all, err := s.AuditWhere(ctx, AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byReq := map[string]AuditEntry{}
	for _, e := range all {
		byReq[e.RequestID] = e
	}
	for req, want := range map[string][2]string{
		"one": {"alice", "cistatus"}, "many": {"alice", ""}, "decided": {"alice", "chima"}, "final": {"", ""},
	} {
		if e := byReq[req]; e.Person != want[0] || e.TriggeredBy != want[1] {
			t.Errorf("%s: person %q, triggered by %q; want %q, %q", req, e.Person, e.TriggeredBy, want[0], want[1])
		}
	}

	tests := []struct {
		name string
		f    AuditFilter
		want int
	}{
		{"a person across adapters", AuditFilter{Person: "alice"}, 3},
		{"a person nobody is", AuditFilter{Person: "carol"}, 0},
		{"what a plugin triggered", AuditFilter{TriggeredBy: "cistatus"}, 1},
		{"a person and a time", AuditFilter{Person: "alice", Since: time.Now().Add(time.Hour)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AuditWhere(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("%+v: %d entries, want %d: %+v", tt.f, len(got), tt.want, got)
			}
		})
	}
}

func TestScheduleRunsListsFiredSlotsOldestFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	base := time.UnixMilli(1_700_000_000_000)
	for _, d := range []time.Duration{2 * time.Minute, 0, time.Minute} {
		if ok, err := s.ClaimScheduleSlot(ctx, "n", base.Add(d)); !ok || err != nil {
			t.Fatalf("claim: %v, %v", ok, err)
		}
	}
	runs, err := s.ScheduleRuns(ctx, "n", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || !runs[0].Slot.Equal(base.Add(time.Minute)) || !runs[1].Slot.Equal(base.Add(2*time.Minute)) {
		t.Errorf("runs = %+v; want the newest two, oldest first", runs)
	}
}
