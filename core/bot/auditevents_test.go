package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/schedule"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestLocksAreAuditedTakenBusyForcedAndExpiredWithThePerson(t *testing.T) {
	ctx := context.Background()
	tb := startBot(t, botOptions{people: map[string][]string{"alice": {"mem:alice"}}})
	h := tb.bot.HostService("deploy")
	lock := func(owner string, ttl int64) bool {
		t.Helper()
		r, err := h.Lock(ctx, &pluginv1.LockRequest{Name: "env/demo", Owner: owner, Reason: "testing", TtlSeconds: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetAcquired()
	}
	if !lock("alice", 0) || lock("bob", 0) || !lock("alice", 0) {
		t.Fatal("alice takes the lock, bob is refused, alice renews it")
	}
	if r, err := h.Unlock(ctx, &pluginv1.UnlockRequest{Name: "env/demo", Owner: "bob", Force: true}); err != nil || !r.GetReleased() {
		t.Fatalf("forced unlock: %v %v", r, err)
	}
	if !lock("bob", 1) {
		t.Fatal("bob takes the free lock")
	}
	// Let bob's lock lapse (its TTL is one second), then alice takes it.
	time.Sleep(1100 * time.Millisecond)
	if !lock("alice", 0) {
		t.Fatal("alice takes the lapsed lock")
	}
	if r, err := h.Unlock(ctx, &pluginv1.UnlockRequest{Name: "env/demo", Owner: "alice"}); err != nil || !r.GetReleased() {
		t.Fatalf("unlock: %v %v", r, err)
	}
	want := []string{
		"alice alice taken testing", "bob  busy held by alice", "alice alice renewed ", "alice alice forced released by bob",
		"bob  taken testing", "bob  expired taken over by alice", "alice alice taken testing", "alice alice released ",
	}
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := tb.store.AuditWhere(ctx, store.AuditFilter{Command: "deploy/lock"})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for i := len(entries) - 1; i >= 0; i-- { // oldest first
			e := entries[i]
			if e.Text != "env/demo" {
				t.Errorf("entry names lock %q, want env/demo without the plugin's prefix", e.Text)
			}
			got = append(got, e.UserID+" "+e.Person+" "+e.Outcome+" "+e.Detail)
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lock audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestJobsAreAuditedFromEnqueueToTheirEndAndWhenARestartInterruptedThem(t *testing.T) {
	ctx := context.Background()
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, before: func(st *store.Store) {
		// A job the last process died under.
		if _, err := st.EnqueueJob(ctx, store.Job{Plugin: "crashy", Kind: "say", Payload: []byte("x"), OriginRequestID: "old-1",
			Notify: chat.MessageRef{Adapter: "mem", Room: "general"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ClaimJob(ctx, "dead-worker", time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	}})
	tb.expect("was interrupted by restart")
	tb.say("chima job hi")
	tb.expectAll("queued job 2", "working on hi", "job said hi")
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := tb.store.AuditWhere(ctx, store.AuditFilter{Command: "crashy/job"})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			if !strings.HasPrefix(e.Via, "job #") {
				continue // crashy's own command named job
			}
			got = append(got, e.Via+" "+e.Outcome)
			if e.Via == "job #2" && e.RequestID == "" {
				t.Errorf("job 2's entry %+v has no request id: it must name the command that enqueued it", e)
			}
		}
		if len(got) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := "job #1 interrupted,job #2 enqueued,job #2 started,job #2 succeeded"
	if strings.Join(got, ",") != want {
		t.Errorf("job audit = %q, want %q", strings.Join(got, ","), want)
	}
}

func TestAPluginThatRestartsWithANewManifestGetsItsNewSchedules(t *testing.T) {
	var sched *schedule.Scheduler
	tb := startBot(t, botOptions{
		plugins:  []string{"runner"},
		settings: map[string]map[string]any{"runner": {"tick_cron": "@daily"}},
		scheduler: func(b func() *bot.Bot, st *store.Store) interface{ Run(context.Context) } {
			s, err := schedule.New(schedule.Options{Store: slots{st}, Run: func(ctx context.Context, sp schedule.Spec, slot time.Time) (string, string) {
				return b().RunPluginSchedule(ctx, sp, slot)
			}})
			if err != nil {
				t.Fatal(err)
			}
			sched = s
			return s
		},
	})
	crons := func() string {
		var out []string
		for _, sp := range sched.Specs() {
			out = append(out, sp.Name+" "+sp.Cron)
		}
		return strings.Join(out, ", ")
	}
	if got := crons(); got != "runner:tick @daily" {
		t.Fatalf("schedules = %q, want runner:tick @daily", got)
	}
	// What the host reports when the plugin comes back after an upgrade.
	m := proto.Clone(tb.host.Manifest("runner")).(*pluginv1.Manifest)
	m.Schedules = []*pluginv1.ScheduleSpec{
		{Name: "tick", Cron: "@hourly", JobKind: "tick"},
		{Name: "tock", Cron: "0 25 * * *", JobKind: "tick"},
	}
	tb.bot.PluginChanged("runner", m, pluginhost.StateRunning)
	if got := crons(); got != "runner:tick @hourly" {
		t.Fatalf("schedules after the new manifest = %q, want runner:tick @hourly", got)
	}
	if p := tb.bot.PluginProblems("runner"); len(p) != 1 || !strings.Contains(p[0], `schedule "tock"`) {
		t.Errorf("problems = %q; want the bad tock", p)
	}
	// A manifest that fixed it clears the problem.
	m.Schedules = m.Schedules[:1]
	tb.bot.PluginChanged("runner", m, pluginhost.StateRunning)
	if err := tb.bot.SchedulesHealth(); err != nil {
		t.Errorf("SchedulesHealth = %v after a good manifest", err)
	}
}

func TestALockHeldByAJobIsAuditedReleasedWhenTheJobEnds(t *testing.T) {
	ctx := context.Background()
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	tb.say("chima job hang")
	tb.expectAll("queued job 1", "working on hang")
	h := tb.bot.HostService("crashy")
	if r, err := h.Lock(ctx, &pluginv1.LockRequest{Name: "env/demo", Owner: "alice", JobId: 1}); err != nil || !r.GetAcquired() {
		t.Fatalf("lock: %v %v", r, err)
	}
	if ok, err := tb.bot.Jobs().Cancel(ctx, 1); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := tb.store.AuditWhere(ctx, store.AuditFilter{Command: "crashy/lock", Outcome: "released"})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 1 {
			if e := entries[0]; e.Text != "env/demo" || e.UserID != "alice" || e.Detail != "with job #1, cancelled" || e.Via != "lock of job #1" {
				t.Errorf("release entry = %+v; want env/demo of alice, with job #1, cancelled", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("released entries = %+v; want the job's lock once", entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
