package bot_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/store"
)

// auditOf returns the entries of request id.
func auditOf(t *testing.T, st *store.Store, id string) []store.AuditEntry {
	t.Helper()
	all, err := st.Audit(context.Background(), 200)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEntry
	for _, e := range all {
		if e.RequestID == id {
			out = append(out, e)
		}
	}
	return out
}

var admin = map[string]config.Role{"admin": {Users: []string{"mem:alice"}, Permissions: []string{"*"}}}

func TestAnAllowedCommandsDecisionIsInTheAuditWhileItRunsAndItsOutcomeFillsTheSameEntry(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, roles: admin})
	tb.say("chima sleep 1s")
	// While the plugin sleeps, the decision is on disk.
	deadline := time.Now().Add(10 * time.Second)
	var running store.AuditEntry
	for running.ID == 0 {
		all, err := tb.store.AuditWhere(context.Background(), store.AuditFilter{Command: "sleep"})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) > 0 {
			running = all[0]
		} else if time.Now().After(deadline) {
			t.Fatal("no audit entry while the command runs: the decision is not recorded before the plugin is called")
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if running.Outcome != store.OutcomeRunning || store.Decision(running.Outcome) != "allowed" || running.UserID != "alice" || running.Plugin != "crashy" {
		t.Fatalf("entry while running = %+v, want outcome running by alice", running)
	}
	tb.expect("slept")
	tb.stop() // flushes the outcome
	entries := auditOf(t, reopen(t, tb.db), running.RequestID)
	if len(entries) != 1 || entries[0].ID != running.ID || entries[0].Outcome != "ok" || entries[0].Duration <= 0 {
		t.Fatalf("entries of the request = %+v, want the decision's row (id %d) with outcome ok and a duration", entries, running.ID)
	}
}

func TestADeniedCommandIsOneEntryWithItsDecision(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	res, _ := tb.bot.Process(context.Background(), msg("bob", "general", "chima admin"))
	tb.stop()
	entries := auditOf(t, reopen(t, tb.db), res.RequestID)
	if len(entries) != 1 || entries[0].Outcome != "denied" || store.Decision(entries[0].Outcome) != "denied" {
		t.Fatalf("entries = %+v, want one denied", entries)
	}
}

func TestAFailingAuditWriteIsCountedReportedAndRunsNothing(t *testing.T) {
	m := bot.NewMetrics()
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, roles: admin, metrics: m})
	// The disk refuses audit rows, as a full disk would: through a second
	// connection, a trigger that fails every insert.
	db, err := sql.Open("sqlite", tb.db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TRIGGER audit_full BEFORE INSERT ON audit_log BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`)

	res, _ := tb.bot.Process(context.Background(), msg("alice", "general", "chima echo hi"))
	if res.Outcome != "error" {
		t.Errorf("outcome %q with the audit log failing, want error", res.Outcome)
	}
	said := tb.next().Out.PlainText()
	if !strings.Contains(said, "audit log cannot be written") || strings.Contains(said, "hi\n") {
		t.Errorf("bot said %q, want it to refuse because the audit log cannot be written", said)
	}
	if got := testutil.ToFloat64(m.AuditWriteFailures); got < 1 {
		t.Errorf("chima_audit_write_failures_total = %v, want at least 1", got)
	}
	if err := tb.bot.AuditHealth(); err == nil || !strings.Contains(err.Error(), "disk is full") {
		t.Errorf("AuditHealth() = %v, want the write's error", err)
	}

	exec(`DROP TRIGGER audit_full`)
	res, _ = tb.bot.Process(context.Background(), msg("alice", "general", "chima echo back"))
	if res.Outcome != "ok" {
		t.Errorf("outcome %q once the audit log is writable, want ok", res.Outcome)
	}
	if err := tb.bot.AuditHealth(); err != nil {
		t.Errorf("AuditHealth() = %v after a write succeeded, want nil", err)
	}
}

func TestCommandsRunningWhenTheBotDiedAreMarkedInterruptedByTheNextBot(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, before: func(st *store.Store) {
		if _, err := st.RecordDecisions(context.Background(), []store.AuditEntry{{RequestID: "dead-1", Command: "sleep", Outcome: store.OutcomeRunning}}); err != nil {
			t.Fatal(err)
		}
	}})
	tb.bot.RecoverInterruptedJobs(context.Background()) // as Run's caller does at start
	entries := auditOf(t, tb.store, "dead-1")
	if len(entries) != 1 || entries[0].Outcome != store.OutcomeInterrupted {
		t.Fatalf("entries = %+v, want one interrupted", entries)
	}
}

// msg is a message from user in room of the test bot's adapter.
func msg(user, room, text string) chat.Message {
	return chat.Message{Ref: chat.MessageRef{Adapter: "mem", Room: room}, User: chat.User{ID: user, Name: user}, Text: text}
}

// reopen opens the store at path once the bot that used it has stopped.
func reopen(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
