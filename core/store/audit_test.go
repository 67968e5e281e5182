package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestAuditRoundTripsEveryField(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	in := AuditEntry{
		Time:      base.Add(-time.Minute),
		RequestID: "req-1",
		Adapter:   "slack",
		Room:      "C123",
		UserID:    "U42",
		UserName:  "ada",
		Text:      "chima deploy project-x/main to edge",
		Plugin:    "deploy",
		Command:   "deploy",
		Outcome:   "ok",
		Detail:    "job #7",
		Duration:  1234567 * time.Microsecond,
	}
	id, err := s.RecordAudit(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("Audit returned %d entries, want 1", len(got))
	}
	want := in
	want.ID = id
	g := got[0]
	if !g.Time.Equal(want.Time) {
		t.Errorf("Time = %v, want %v", g.Time, want.Time)
	}
	g.Time, want.Time = time.Time{}, time.Time{}
	if g != want {
		t.Errorf("Audit()[0] = %+v, want %+v", g, want)
	}
}

func TestAuditFillsTimeAndListsNewestFirst(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	var ids []int64
	for i := range 5 {
		clock.set(base.Add(time.Duration(i) * time.Second))
		id, err := s.RecordAudit(ctx, AuditEntry{Command: "c"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// An entry with an explicit, older time sorts by that time.
	old, err := s.RecordAudit(ctx, AuditEntry{Time: base.Add(-time.Hour), Command: "old"})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		limit int
		want  []int64
	}{
		{"limit cuts the oldest", 3, []int64{ids[4], ids[3], ids[2]}},
		{"all, explicit old time last", 10, []int64{ids[4], ids[3], ids[2], ids[1], ids[0], old}},
		{"zero means default", 0, []int64{ids[4], ids[3], ids[2], ids[1], ids[0], old}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Audit(ctx, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, e := range got {
				gotIDs = append(gotIDs, e.ID)
			}
			if len(gotIDs) != len(tt.want) {
				t.Fatalf("ids = %v, want %v", gotIDs, tt.want)
			}
			for i := range gotIDs {
				if gotIDs[i] != tt.want[i] {
					t.Fatalf("ids = %v, want %v", gotIDs, tt.want)
				}
			}
		})
	}
	got, _ := s.Audit(ctx, 1)
	if !got[0].Time.Equal(base.Add(4 * time.Second)) {
		t.Errorf("zero Time recorded as %v, want the store clock %v", got[0].Time, base.Add(4*time.Second))
	}
}

func TestRecordAuditsWritesEveryEntryOfALargeBatchInOrder(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	var batch []AuditEntry
	for i := range 150 { // more than one multi-row INSERT
		batch = append(batch, AuditEntry{Time: time.UnixMilli(int64(1000 + i)), RequestID: fmt.Sprintf("r%d", i), Command: "hello", Outcome: "ok"})
	}
	if err := s.RecordAudits(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(ctx, 200)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 150 || got[0].RequestID != "r149" || got[149].RequestID != "r0" {
		t.Fatalf("got %d entries, first %q last %q", len(got), got[0].RequestID, got[len(got)-1].RequestID)
	}
}
