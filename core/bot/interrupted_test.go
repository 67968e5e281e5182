package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/store"
)

// pendingInterrupted lists the interrupted jobs whose plugin has not heard
// of them yet.
func pendingInterrupted(t *testing.T, st *store.Store) []string {
	t.Helper()
	keys, err := st.KVList(context.Background(), "chima:interrupted-jobs", "")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// pendingAfterHeard is pendingInterrupted once the plugin's call that heard
// of the job has ended: the plugin says so in chat a moment before the call
// ends and the core forgets the job.
func pendingAfterHeard(t *testing.T, st *store.Store) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := pendingInterrupted(t, st)
		if len(p) == 0 || time.Now().After(deadline) {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// queueACrash queues job 2, which makes the plugin exit, behind job 1, and
// lets it run once its command was answered: the crash then happens under
// the job, not under the command that queued it.
func queueACrash(t *testing.T, tb *testBot) {
	t.Helper()
	tb.say("chima job hang")
	tb.expectAll("queued job 1", "working on hang")
	tb.say("chima job exit")
	tb.expect("queued job 2")
	if ok, err := tb.bot.Jobs().Cancel(context.Background(), 1); err != nil || !ok {
		t.Fatalf("cancel job 1: %v %v", ok, err)
	}
}

// expectPast waits for a message containing want, past the progress of the
// crashing job (which may or may not be flushed before it dies).
func (tb *testBot) expectPast(want string) chattest.Sent {
	tb.t.Helper()
	for {
		s := tb.next()
		text := s.Out.PlainText()
		if strings.Contains(text, want) {
			return s
		}
		if text != "working on exit" {
			tb.t.Fatalf("bot said %q, want it to contain %q", text, want)
		}
	}
}

func TestJobWhosePluginCrashesEndsInterruptedAndTheRestartedPluginHearsOfIt(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	queueACrash(t, tb)
	s := tb.expectPast("heard that job 2 (exit) was interrupted because the crashy plugin crashed")
	if s.Ref.Room != "general" {
		t.Errorf("the plugin told room %q, want the job's room general", s.Ref.Room)
	}
	j := waitJob(t, tb.store, 2)
	if j.State != store.JobInterrupted || j.Detail != "interrupted because the crashy plugin crashed" {
		t.Fatalf("job 2 = %s %q, want interrupted because the plugin crashed", j.State, j.Detail)
	}
	if p := pendingAfterHeard(t, tb.store); len(p) != 0 {
		t.Fatalf("jobs still pending after the plugin heard: %v", p)
	}
	// The queue goes on.
	tb.say("chima job after")
	tb.expectAll("queued job 3", "working on after", "job said after")
}

func TestJobWhosePluginStaysDownIsReportedAndItsPluginHearsOfItWhenBack(t *testing.T) {
	db := t.TempDir() + "/chima.db"
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, dbPath: db, maxRestarts: -1})
	queueACrash(t, tb)
	tb.expectPast(`The job saying "exit" was interrupted because the crashy plugin crashed. The crashy plugin is down; it will record the end when it is back`)
	if j := waitJob(t, tb.store, 2); j.State != store.JobInterrupted {
		t.Fatalf("job 2 = %s %q, want interrupted", j.State, j.Detail)
	}
	if p := pendingInterrupted(t, tb.store); len(p) != 1 {
		t.Fatalf("pending interrupted jobs = %v, want job 2", p)
	}
	tb.stop()

	// The next bot's plugin hears of it, once.
	tb = startBot(t, botOptions{plugins: []string{"crashy"}, dbPath: db})
	tb.expect("heard that job 2 (exit) was interrupted because the crashy plugin crashed")
	if p := pendingAfterHeard(t, tb.store); len(p) != 0 {
		t.Fatalf("jobs still pending after the plugin heard: %v", p)
	}
	tb.say("chima echo done")
	tb.expect("done")
}
