package schedule

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAPluginsSchedulesAreSetReplacedAndDroppedWithItsManifest(t *testing.T) {
	ctx := context.Background()
	var r runs
	now := at("2026-01-10T02:59:00Z")
	s, err := New(Options{
		Schedules: []Spec{{Name: "nightly-db", Cron: "0 3 * * *", Timezone: "UTC", Command: "backup db-prod"}},
		Store:     openStore(t, filepath.Join(t.TempDir(), "chima.db")), Run: r.run,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		var out []string
		for _, sp := range s.Specs() {
			out = append(out, sp.Name)
		}
		return out
	}
	// Before Start, as at boot: the plugins describe themselves first.
	errs := s.SetPlugin(ctx, "backup", []Spec{
		{Name: "backup:verify", Cron: "30 3 * * *", Timezone: "UTC", Job: Job{Kind: "verify"}},
		{Name: "backup:broken", Cron: "0 25 * * *", Timezone: "UTC", Job: Job{Kind: "verify"}},
		{Name: "nightly-db", Cron: "@daily", Job: Job{Kind: "verify"}},
	})
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "schedule backup:broken: bad cron spec") ||
		!strings.Contains(errs[1].Error(), "schedule nightly-db: the name is taken") {
		t.Fatalf("SetPlugin errors = %v; want the bad cron and the taken name, by name", errs)
	}
	if got, want := names(), []string{"nightly-db", "backup:verify"}; !slices.Equal(got, want) {
		t.Fatalf("schedules = %v, want %v", got, want)
	}
	if sp := s.Specs()[1]; sp.Plugin != "backup" {
		t.Errorf("the plugin's schedule says plugin %q, want backup", sp.Plugin)
	}
	s.Start(ctx, now)
	s.Tick(ctx, at("2026-01-10T03:30:00Z"))
	s.Wait()
	if got := sorted(r.got()); !slices.Equal(got, []string{"backup:verify@2026-01-10T03:30:00Z", "nightly-db@2026-01-10T03:00:00Z"}) {
		t.Fatalf("runs = %v; want both schedules' slots", got)
	}

	// The plugin restarts with a new manifest: verify moved to 04:00,
	// a new one came.
	now = at("2026-01-10T03:31:00Z")
	if errs := s.SetPlugin(ctx, "backup", []Spec{
		{Name: "backup:verify", Cron: "0 4 * * *", Timezone: "UTC", Job: Job{Kind: "verify"}},
		{Name: "backup:prune", Cron: "0 5 * * *", Timezone: "UTC", Job: Job{Kind: "prune"}},
	}); len(errs) != 0 {
		t.Fatal(errs)
	}
	s.Tick(ctx, at("2026-01-10T05:00:00Z"))
	s.Wait()
	if got := sorted(r.got()[2:]); !slices.Equal(got, []string{"backup:prune@2026-01-10T05:00:00Z", "backup:verify@2026-01-10T04:00:00Z"}) {
		t.Fatalf("runs after the new manifest = %v; want verify at its new time and prune", got)
	}

	// A manifest without schedules drops them; the config's stay.
	s.SetPlugin(ctx, "backup", nil)
	if got, want := names(), []string{"nightly-db"}; !slices.Equal(got, want) {
		t.Fatalf("schedules = %v, want %v", got, want)
	}
}

func TestAPluginScheduleAddedWhileRunningWakesTheScheduler(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan string, 4)
	s, err := New(Options{
		Store: openStore(t, filepath.Join(t.TempDir(), "chima.db")),
		Run: func(_ context.Context, sp Spec, _ time.Time) (string, string) {
			ran <- sp.Name
			return "req", "enqueued"
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	// With no schedule at all Run waits for one: once it has started.
	for started := false; !started; {
		s.mu.Lock()
		started = s.started
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	s.SetPlugin(ctx, "p", []Spec{{Name: "p:tick", Cron: "@every 1s", Job: Job{Kind: "tick"}}})
	select {
	case name := <-ran:
		if name != "p:tick" {
			t.Fatalf("ran %s", name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the schedule added while running never fired")
	}
	cancel()
	<-done
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
