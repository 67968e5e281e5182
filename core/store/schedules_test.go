package store

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestScheduleSlotIsClaimedOnceAcrossStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chima.db")
	a, b := openAt(t, path), openAt(t, path)
	ctx := context.Background()
	slot := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.ClaimScheduleSlot(ctx, "nightly-db", slot)
			if err != nil {
				t.Errorf("ClaimScheduleSlot: %v", err)
			}
			wins <- ok
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for ok := range wins {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("slot claimed %d times, want once", n)
	}
	// Another slot, or another schedule at the same slot, is free.
	for _, c := range []struct {
		schedule string
		slot     time.Time
	}{{"nightly-db", slot.Add(24 * time.Hour)}, {"hourly", slot}} {
		ok, err := b.ClaimScheduleSlot(ctx, c.schedule, c.slot)
		if err != nil || !ok {
			t.Errorf("ClaimScheduleSlot(%s, %s) = %v, %v; want true", c.schedule, c.slot, ok, err)
		}
	}
}

func TestLastScheduleRunIsTheLatestSlotWithItsOutcome(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, ok, err := s.LastScheduleRun(ctx, "nightly-db"); ok || err != nil {
		t.Fatalf("LastScheduleRun of a schedule that never ran = %v, %v; want none", ok, err)
	}
	first := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	second := first.Add(24 * time.Hour)
	for _, slot := range []time.Time{second, first} { // claim order does not matter
		if ok, err := s.ClaimScheduleSlot(ctx, "nightly-db", slot); !ok || err != nil {
			t.Fatalf("ClaimScheduleSlot(%s) = %v, %v", slot, ok, err)
		}
	}
	if err := s.FinishScheduleSlot(ctx, "nightly-db", second, "denied", "req-2"); err != nil {
		t.Fatalf("FinishScheduleSlot: %v", err)
	}
	r, ok, err := s.LastScheduleRun(ctx, "nightly-db")
	if err != nil || !ok {
		t.Fatalf("LastScheduleRun = %v, %v", ok, err)
	}
	if !r.Slot.Equal(second) || r.Outcome != "denied" || r.RequestID != "req-2" || r.FinishedAt.IsZero() {
		t.Errorf("LastScheduleRun = %+v; want slot %s, outcome denied, request req-2, finished", r, second)
	}
}
