package schedule

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/store"
)

// storeSlots is *store.Store as a schedule Store.
type storeSlots struct{ *store.Store }

func (s storeSlots) LastSlot(ctx context.Context, name string) (time.Time, string, bool, error) {
	r, ok, err := s.LastScheduleRun(ctx, name)
	return r.Slot, r.Outcome, ok, err
}

func openStore(t *testing.T, path string) Store {
	t.Helper()
	s, err := store.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return storeSlots{s}
}

// runs records the slots a Runner was handed.
type runs struct {
	mu    sync.Mutex
	slots []string
}

func (r *runs) run(_ context.Context, s Spec, slot time.Time) (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slots = append(r.slots, s.Name+"@"+slot.UTC().Format(time.RFC3339))
	return "req", "ok"
}

func (r *runs) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.slots...)
}

func newScheduler(t *testing.T, st Store, r *runs, specs ...Spec) *Scheduler {
	t.Helper()
	s, err := New(Options{Schedules: specs, Store: st, Run: r.run})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseAcceptsCronSecondsAndDescriptorsAndRejectsMistakes(t *testing.T) {
	tests := []struct {
		name, spec, tz string
		wantErr        string
	}{
		{"five fields", "0 3 * * *", "Europe/Berlin", ""},
		{"six fields with seconds", "*/10 * * * * *", "UTC", ""},
		{"descriptor", "@daily", "", ""},
		{"every", "@every 2s", "", ""},
		{"bad field", "0 25 * * *", "", "bad cron spec"},
		{"too few fields", "0 3 *", "", "bad cron spec"},
		{"empty", " ", "", "empty cron spec"},
		{"unknown zone", "0 3 * * *", "Mars/Olympus", "unknown time zone"},
		{"zone in the spec", "CRON_TZ=UTC 0 3 * * *", "", "timezone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.spec, tt.tz)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Parse(%q, %q): %v", tt.spec, tt.tz, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Parse(%q, %q) = %v; want an error containing %q", tt.spec, tt.tz, err, tt.wantErr)
			}
		})
	}
}

func TestNextSlotIsReadInTheScheduleTimezone(t *testing.T) {
	c, err := Parse("0 3 * * *", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 03:00 in Berlin in winter is 02:00 UTC.
	if got, want := c.Next(at("2026-01-10T00:00:00Z")), at("2026-01-10T02:00:00Z"); !got.Equal(want) {
		t.Errorf("Next = %s, want %s", got.UTC(), want)
	}
}

func TestEverySlotsAreTheSameWhenerAsked(t *testing.T) {
	c, err := Parse("@every 2s", "")
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Next(at("2026-01-10T00:00:00Z").Add(100*time.Millisecond)), c.Next(at("2026-01-10T00:00:01Z").Add(900*time.Millisecond))
	if !a.Equal(b) || !a.Equal(at("2026-01-10T00:00:02Z")) {
		t.Errorf("Next from two instants of one period = %s and %s; want both 00:00:02", a, b)
	}
}

func TestTwoSchedulersOnOneStoreFireASlotOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chima.db")
	spec := Spec{Name: "nightly-db", Cron: "0 3 * * *", Timezone: "UTC", Command: "backup db-prod"}
	var r runs
	a := newScheduler(t, openStore(t, path), &r, spec)
	b := newScheduler(t, openStore(t, path), &r, spec)
	ctx := context.Background()
	start := at("2026-01-10T02:59:00Z")
	a.Start(ctx, start)
	b.Start(ctx, start)
	var wg sync.WaitGroup
	for _, s := range []*Scheduler{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); s.Tick(ctx, at("2026-01-10T03:00:00Z")) }()
	}
	wg.Wait()
	a.Wait()
	b.Wait()
	if got := r.got(); len(got) != 1 || got[0] != "nightly-db@2026-01-10T03:00:00Z" {
		t.Fatalf("runs = %v; want the 03:00 slot once", got)
	}
}

func TestSlotsMissedWhileDownRunOnceWithCatchUpElseNever(t *testing.T) {
	lastFired := at("2026-01-10T03:00:00Z")
	restart := at("2026-01-15T12:00:00Z") // five nightly slots missed
	tests := []struct {
		name    string
		catchUp bool
		fired   bool // the schedule fired before the bot went down
		want    []string
	}{
		{"catch up runs the latest missed slot once", true, true, []string{"nightly-db@2026-01-15T03:00:00Z"}},
		{"without catch up missed slots are skipped", false, true, nil},
		{"a schedule that never fired missed nothing", true, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, filepath.Join(t.TempDir(), "chima.db"))
			ctx := context.Background()
			if tt.fired {
				if _, err := st.ClaimScheduleSlot(ctx, "nightly-db", lastFired); err != nil {
					t.Fatal(err)
				}
			}
			var r runs
			s := newScheduler(t, st, &r, Spec{Name: "nightly-db", Cron: "0 3 * * *", Timezone: "UTC", CatchUp: tt.catchUp})
			s.Start(ctx, restart)
			s.Wait()
			if got := r.got(); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("runs at start = %v; want %v", got, tt.want)
			}
			// A second start (a restart right after) does not run it again.
			again := newScheduler(t, st, &r, Spec{Name: "nightly-db", Cron: "0 3 * * *", Timezone: "UTC", CatchUp: tt.catchUp})
			again.Start(ctx, restart.Add(time.Minute))
			again.Wait()
			if got := r.got(); len(got) != len(tt.want) {
				t.Fatalf("runs after a second start = %v; want still %v", got, tt.want)
			}
			// The next slot fires as usual.
			s.Tick(ctx, at("2026-01-16T03:00:00Z"))
			s.Wait()
			if got := r.got(); len(got) != len(tt.want)+1 || got[len(got)-1] != "nightly-db@2026-01-16T03:00:00Z" {
				t.Fatalf("runs after the next slot = %v; want it to end with the 16th's", got)
			}
		})
	}
}

func TestTickBehindBySeveralSlotsFiresTheLatestOnce(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "chima.db"))
	var r runs
	s := newScheduler(t, st, &r, Spec{Name: "hourly", Cron: "0 * * * *", Timezone: "UTC"})
	ctx := context.Background()
	s.Start(ctx, at("2026-01-10T00:30:00Z"))
	s.Tick(ctx, at("2026-01-10T00:59:59Z")) // not due yet
	s.Tick(ctx, at("2026-01-10T03:10:00Z")) // 01:00, 02:00 and 03:00 are due
	s.Wait()
	if got := r.got(); len(got) != 1 || got[0] != "hourly@2026-01-10T03:00:00Z" {
		t.Fatalf("runs = %v; want the 03:00 slot once", got)
	}
}

func TestRunFiresOnTheInjectedClockAndRecordsTheOutcome(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "chima.db"))
	var mu sync.Mutex
	now := at("2026-01-10T00:00:00.5Z")
	waits := make(chan time.Duration)
	wake := make(chan time.Time)
	fired := make(chan struct{}, 4)
	s, err := New(Options{
		Schedules: []Spec{{Name: "tick", Cron: "@every 2s"}},
		Store:     st,
		Run: func(context.Context, Spec, time.Time) (string, string) {
			fired <- struct{}{}
			return "req-1", "ok"
		},
		Now:   func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		After: func(d time.Duration) <-chan time.Time { waits <- d; return wake },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	if d := <-waits; d != 1500*time.Millisecond {
		t.Errorf("first wait = %s, want 1.5s (to the 2s slot)", d)
	}
	mu.Lock()
	now = at("2026-01-10T00:00:02Z")
	mu.Unlock()
	wake <- now
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("the slot did not fire")
	}
	<-waits // waiting for the next slot
	cancel()
	<-done
	slot, outcome, ok, err := st.LastSlot(context.Background(), "tick")
	if err != nil || !ok || !slot.Equal(at("2026-01-10T00:00:02Z")) || outcome != "ok" {
		t.Errorf("LastSlot = %s, %q, %v, %v; want 00:00:02, ok", slot, outcome, ok, err)
	}
}

func TestFormatListsNextRunAndLastOutcome(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "chima.db"))
	ctx := context.Background()
	specs := []Spec{
		{Name: "nightly-db", Cron: "0 3 * * *", Timezone: "UTC", Command: "backup db-prod", Room: "slack:ops", As: "alice"},
		{Name: "weekly", Cron: "@weekly", Timezone: "UTC", Command: "report", Room: "general", As: "bob"},
	}
	if _, err := st.ClaimScheduleSlot(ctx, "nightly-db", at("2026-01-10T03:00:00Z")); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishScheduleSlot(ctx, "nightly-db", at("2026-01-10T03:00:00Z"), "denied", "r"); err != nil {
		t.Fatal(err)
	}
	list, err := List(ctx, specs, st, at("2026-01-10T12:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	text := Format(list)
	for _, want := range []string{
		"nightly-db: `backup db-prod` in slack:ops as alice",
		"next: 2026-01-11 03:00:00 UTC; last: 2026-01-10 03:00:00 UTC, denied",
		"weekly: `report`", "last: never ran",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Format() =\n%s\nwant it to contain %q", text, want)
		}
	}
}
