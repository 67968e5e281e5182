package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/schedule"
	"github.com/chimaops/chima/core/store"
)

// slots is *store.Store as a schedule.Store.
type slots struct{ *store.Store }

func (s slots) LastSlot(ctx context.Context, name string) (time.Time, string, bool, error) {
	r, ok, err := s.LastScheduleRun(ctx, name)
	return r.Slot, r.Outcome, ok, err
}

func TestAPluginsScheduleEnqueuesItsJobEachSlotAndABadOneIsReported(t *testing.T) {
	tb := startBot(t, botOptions{
		plugins: []string{"runner"},
		settings: map[string]map[string]any{"runner": {
			"tick_cron": "@every 1s", "tick_room": "general", "tick_payload": "hi",
			"bad_cron": "0 25 * * *", "bad_kind": "nope",
		}},
		scheduler: func(b func() *bot.Bot, st *store.Store) interface{ Run(context.Context) } {
			s, err := schedule.New(schedule.Options{Store: slots{st}, Run: func(ctx context.Context, sp schedule.Spec, slot time.Time) (string, string) {
				return b().RunPluginSchedule(ctx, sp, slot)
			}})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
	tb.expect("tick job ran: hi")

	e := tb.auditUntil("of the scheduled job's enqueue", func(e store.AuditEntry) bool {
		return e.Via == "schedule runner:tick" && e.Outcome == "enqueued"
	})
	if e.TriggeredBy != "chima" || e.Plugin != "runner" || e.Command != "job" || !strings.HasPrefix(e.Text, "tick job #") || !strings.HasPrefix(e.RequestID, "schedule:runner:tick@") {
		t.Errorf("enqueue entry = %+v; want the runner's tick job, triggered by chima, under the slot's request", e)
	}
	tb.auditUntil("of the job's start", func(x store.AuditEntry) bool {
		return x.Command == "job" && x.Outcome == "started" && x.RequestID == e.RequestID
	})
	tb.auditUntil("of the job's end", func(x store.AuditEntry) bool {
		return x.Command == "job" && x.Outcome == "succeeded" && x.RequestID == e.RequestID
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, ok, err := tb.store.LastScheduleRun(context.Background(), "runner:tick")
		if err == nil && ok && r.Outcome == "job succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last run of runner:tick = %+v, %v, %v; want its job's end", r, ok, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	health := tb.bot.SchedulesHealth()
	if health == nil || !strings.Contains(health.Error(), `plugin runner: schedule "broken" (manifest schedules[1]): bad cron spec "0 25 * * *"`) ||
		!strings.Contains(health.Error(), `schedule "unknown-kind" (manifest schedules[2]): job kind "nope" is not one of the plugin's job kinds (tick)`) {
		t.Errorf("SchedulesHealth = %v; want the bad cron and the unknown job kind, by schedule", health)
	}
	if p := tb.bot.PluginProblems("runner"); len(p) != 2 {
		t.Errorf("PluginProblems = %q; want 2", p)
	}
}
